"""AppService: one application workload of the stack, hardened by default, of one of three kinds.

- web: a Deployment behind a Service, with a HorizontalPodAutoscaler when it autoscales and a PodDisruptionBudget;
- worker: a Deployment no Service selects (probed by a command or on a health port), a PDB when replicated;
- cron: a CronJob whose runs are bounded (deadline, retries, history).

Every kind owns its ServiceAccount, NetworkPolicy, ConfigMap (plain settings), Secret (secret settings, when it has
any) and, with `migrations`, the Job that migrates before a rollout. Hardening comes from components.hardening; a
caller cannot switch it off through these args.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import backing_service, hardening
from components.autoscaling import AutoscalersArgs, ScaleTarget, SecretKey, render_autoscalers
from components.app_service_config import EgressRule, OneOffJob, ServiceConfig
from components.backing_service import BackingService, SecretRef
from components.config_base import PRIVATE_IPV4_RANGES, PRIVATE_IPV6_RANGES

HTTP_PORT_NAME = "http"
METRICS_PORT_NAME = "metrics"
HEALTH_PORT_NAME = "health"
COMPONENT_LABEL = "app.kubernetes.io/component"
STARTUP_PROBE_PERIOD_SECONDS = 5
LIVENESS_PERIOD_SECONDS = 10
READINESS_PERIOD_SECONDS = 5
# Rolls the pods when a secret value changes: an HMAC under a generated key, so it differs between engines
# (the offline preview's key is a placeholder) and is never compared by `make e2e`.
SECRET_CHECKSUM_ANNOTATION = "checksum/secret"
# Rolls the pods when the ServiceAccount's annotations change: identity webhooks (the EKS pod identity webhook for
# `awsRoleArn`) read them only when a pod is created, so running pods would keep the old role.
SERVICE_ACCOUNT_CHECKSUM_ANNOTATION = "checksum/service-account"

# pulumi-kubernetes waits for a Job's Complete condition (10 minutes unless this annotation or customTimeouts say
# otherwise) and fails the update on its Failed condition.
AWAIT_TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"
# A failed migration Job is replaced (so run again) by the next `pulumi up`, instead of being awaited again as it is.
REPLACE_UNREADY_ANNOTATION = "pulumi.com/replaceUnready"
# Pulumi waits this much past the Job's own deadline, so that `pulumi up` reports the Job's DeadlineExceeded with its
# pods' messages rather than a bare timeout: since Kubernetes 1.31 the Failed condition waits for the pods to stop.
MIGRATIONS_AWAIT_MARGIN_SECONDS = 60
# A database failover or a pooler restart fails a run; migration tools apply each step in a transaction, so a rerun
# is safe (migrations must be idempotent anyway).
MIGRATIONS_BACKOFF_LIMIT = 2
# A finished Job and its pods' logs stay a week, to read why a migration failed. Pulumi deletes a superseded Job
# itself; once the TTL has removed the last one, `pulumi refresh` forgets it and the next `pulumi up` runs it again.
MIGRATIONS_TTL_SECONDS = 7 * 24 * 3600
MIGRATIONS = "migrations"  # the one-off Job that runs before a rollout; tasks run after it


@dataclass
class Peer:
    """Another service this one talks to, or is called by: the pods' name label and the port."""

    name: str
    port: int


@dataclass
class AppServiceArgs:
    service: ServiceConfig
    namespace: str
    image: str  # fully qualified, pinned by tag or digest
    secret_values: dict[str, pulumi.Output[str]] = field(default_factory=dict)  # env name -> secret value
    secret_refs: list[SecretRef] = field(default_factory=list)  # env read from Secrets owned elsewhere
    # The databases and caches it uses: their settings go to its ConfigMap, their credentials to its env by reference,
    # and a change of their secrets rolls its pods (components.backing_service).
    backing_services: list[BackingService] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)  # services allowed to call this one
    callees: list[Peer] = field(default_factory=list)  # services this one may call
    spread_strictly: bool = False  # True: refuse to schedule two replicas on one node (prod)
    # The migrations' image as pulled, resolved like `image`; required when service.migrations.image is set.
    migrations_image: str | None = None
    task_images: dict[str, str] = field(default_factory=dict)  # the same, by task name, for tasks with an image
    # What the migration and task Jobs set over the service's env (e.g. its database's primary instead of the pooler).
    migrations_env: dict[str, str] = field(default_factory=dict)
    migrations_secret_refs: list[SecretRef] = field(default_factory=list)
    # Its databases by name -> the Secret key with a connection string, for KEDA's postgresql triggers.
    connection_secrets: dict[str, SecretKey] = field(default_factory=dict)


def secret_ref_env(ref: SecretRef) -> dict:
    return {"name": ref.env_name, "valueFrom": {"secretKeyRef": {"name": ref.secret_name, "key": ref.key}}}


def one_off_name(service_name: str, purpose: str) -> str:
    """A one-off Job's pods' app.kubernetes.io/name ('<service>-migrations', '<service>-<task>'): not the service's
    own, so that its Service, PDB and NetworkPolicy never select them; a database admits them by this name."""
    return f"{service_name}-{purpose}"


def migrations_name(service_name: str) -> str:
    return one_off_name(service_name, MIGRATIONS)


def one_off_names(service: ServiceConfig) -> list[str]:
    """The pod names of a service's one-off Jobs: its migrations and tasks."""
    purposes = ([MIGRATIONS] if service.migrations else []) + [task.name for task in service.tasks]
    return [one_off_name(service.name, purpose) for purpose in purposes]


def one_off_job_name(pod_name: str, image: str, command: list[str], args: list[str] | None = None) -> str:
    """A new image, command or args is a new Job name, so Pulumi replaces the Job and it runs again (args only when
    set: the migrations' names from before args existed stay, and do not rerun)."""
    identity = {"image": image, "command": command, **({"args": args} if args is not None else {})}
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:8]
    return f"{pod_name}-{digest}"


def migrations_job_name(service_name: str, image: str, command: list[str]) -> str:
    return one_off_job_name(migrations_name(service_name), image, command)


def config_checksum(env: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()


def ip_block(cidr: str) -> dict:
    """A NetworkPolicy peer for a CIDR. Every address means the internet: the private ranges stay out (the cluster's
    pods, Services and nodes, the VPC, the instance metadata service), so `calls` and the databases' policies alone
    decide who reaches what inside, and no pod can fetch its node's IAM credentials."""
    network = ipaddress.ip_network(cidr)
    if network.prefixlen:
        return {"ipBlock": {"cidr": cidr}}
    private = PRIVATE_IPV4_RANGES if network.version == 4 else PRIVATE_IPV6_RANGES
    return {"ipBlock": {"cidr": cidr, "except": list(private)}}


def egress_rule(entry: EgressRule) -> dict:
    return {
        "to": [ip_block(cidr) for cidr in entry.cidrs],
        "ports": [{"protocol": port.protocol, "port": port.port} for port in entry.ports],
    }


def egress_reasons(entries: list[EgressRule]) -> dict[str, str]:
    """The reason annotation, when every internet entry gives one: it speaks for the whole NetworkPolicy, so one
    entry's reason must not vouch for another's open rule."""
    internet = sorted((entry for entry in entries if entry.allow_internet), key=lambda entry: entry.name)
    if not internet or any(entry.reason is None for entry in internet):
        return {}
    return {hardening.EGRESS_REASON_ANNOTATION: "; ".join(f"{entry.name}: {entry.reason.strip()}" for entry in internet)}


def secret_checksum(checksum_key: pulumi.Output[str], secret_values: dict[str, pulumi.Output[str]]) -> pulumi.Output[str]:
    """A keyed digest of the secret settings, safe to show in plaintext.

    Keyed with a generated per-service key, so the annotation cannot be used to guess a weak secret; and
    not secret itself, so the Deployment's spec stays readable in `pulumi preview`.
    """
    names = sorted(secret_values)

    def digest(values: list[str]) -> str:
        key, *secrets = values
        message = json.dumps(dict(zip(names, secrets)), sort_keys=True).encode()
        return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()

    return pulumi.Output.unsecret(pulumi.Output.all(checksum_key, *[secret_values[name] for name in names]).apply(digest))


def http_probe(path: str, period_seconds: int, failure_threshold: int, port_name: str = HTTP_PORT_NAME) -> dict:
    return {
        "httpGet": {"path": path, "port": port_name},
        "periodSeconds": period_seconds,
        "failureThreshold": failure_threshold,
        "timeoutSeconds": 2,
    }


def container_ports(service: ServiceConfig) -> list[dict]:
    """The ports a workload's container opens: web's HTTP port, a metrics port, a worker's health port (named after
    the metrics port when both are one)."""
    ports = []
    if service.port is not None:
        ports.append({"name": HTTP_PORT_NAME, "containerPort": service.port, "protocol": "TCP"})
    if service.metrics:
        ports.append({"name": METRICS_PORT_NAME, "containerPort": service.metrics.port, "protocol": "TCP"})
    health_port = service.health.port
    if health_port is not None and health_port not in (service.port, service.metrics and service.metrics.port):
        ports.append({"name": HEALTH_PORT_NAME, "containerPort": health_port, "protocol": "TCP"})
    return ports


def probes(service: ServiceConfig) -> dict:
    """Startup, liveness and readiness: HTTP on the service's port (web), on a worker's health port, or a worker's
    command run in the container."""
    health = service.health
    startup_failures = math.ceil(health.startup_seconds / STARTUP_PROBE_PERIOD_SECONDS)
    liveness_period = health.period_seconds or LIVENESS_PERIOD_SECONDS
    readiness_period = health.period_seconds or READINESS_PERIOD_SECONDS
    if health.command is not None:
        check = {"exec": {"command": list(health.command)}, "timeoutSeconds": 5}
        return {
            "startupProbe": {**check, "periodSeconds": STARTUP_PROBE_PERIOD_SECONDS, "failureThreshold": startup_failures},
            "livenessProbe": {**check, "periodSeconds": liveness_period, "failureThreshold": health.failure_threshold},
            "readinessProbe": {**check, "periodSeconds": readiness_period, "failureThreshold": health.failure_threshold},
        }
    port = next(
        port["name"] for port in container_ports(service) if port["containerPort"] in (health.port, service.port)
    )
    return {
        "startupProbe": http_probe(health.liveness_path, STARTUP_PROBE_PERIOD_SECONDS, startup_failures, port),
        "livenessProbe": http_probe(health.liveness_path, liveness_period, health.failure_threshold, port),
        "readinessProbe": http_probe(health.readiness_path, readiness_period, health.failure_threshold, port),
    }


def entrypoint(command: list[str] | None, args: list[str] | None) -> dict:
    """Kubernetes' command and args, each only when set (unset keeps the image's ENTRYPOINT and CMD)."""
    return {key: list(value) for key, value in (("command", command), ("args", args)) if value is not None}


def cron_job_spec(service: ServiceConfig, pod_template: dict) -> dict:
    """A bounded CronJob: no piled-up runs (Forbid or Replace), a deadline per run, few retries, a short history."""
    return {
        "schedule": service.schedule,
        **({"timeZone": service.time_zone} if service.time_zone else {}),
        "concurrencyPolicy": service.concurrency_policy,
        "startingDeadlineSeconds": service.starting_deadline_seconds,
        "successfulJobsHistoryLimit": service.successful_jobs_history_limit,
        "failedJobsHistoryLimit": service.failed_jobs_history_limit,
        "jobTemplate": {
            "metadata": {"labels": pod_template["metadata"]["labels"]},
            "spec": {
                "activeDeadlineSeconds": service.active_deadline_seconds,
                "backoffLimit": service.backoff_limit,
                "template": pod_template,
            },
        },
    }


def topology_spread(selector: dict[str, str], strictly: bool) -> list[dict]:
    """Replicas spread over nodes and zones; only prod refuses to schedule rather than double up on a node."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule" if strictly else "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
        },
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
        },
    ]


class AppService(pulumi.ComponentResource):
    service_name: str
    url: str

    def __init__(self, name: str, args: AppServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:app:AppService", name, None, opts)
        service = args.service
        if args.backing_services:
            service = service.model_copy(update={"env": {**service.env, **backing_service.connection_env(args.backing_services)}})
        # What restarts the pods when it changes: the service's secret settings and its backing services' secrets.
        rollout_secrets = {**args.secret_values, **backing_service.rollout_secrets(args.backing_services)}
        child = pulumi.ResourceOptions(parent=self)
        # A web service's component stays "app" (its objects keep today's labels); a worker's and a cron job's say so.
        labels = hardening.standard_labels(service.name, "app" if service.is_web else service.kind)
        selector = hardening.selector_labels(service.name)

        def metadata(object_name: str, annotations: dict[str, str] | None = None) -> dict:
            annotated = {"annotations": annotations} if annotations else {}
            return {"name": object_name, "namespace": args.namespace, "labels": labels, **annotated}

        service_account_annotations = service.service_account.rendered_annotations
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=metadata(service.name, service_account_annotations),
            # Also with an AWS role: the pod identity webhook mounts a token of its own (README, "Workload identity").
            automount_service_account_token=False,
            opts=child,
        )
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=metadata(f"{service.name}-config"),
            data=dict(service.env),
            opts=child,
        )
        secret_name = f"{service.name}-secrets"
        # Only with secret settings: the API server drops an empty stringData, so an empty Secret would differ from
        # its state on every refresh and be replaced on every `pulumi up` (make e2e showed it).
        secrets = [
            k8s.core.v1.Secret(
                f"{name}-secrets",
                metadata=metadata(secret_name),
                type="Opaque",
                string_data={env_name: pulumi.Output.secret(value) for env_name, value in args.secret_values.items()},
                opts=child,
            )
        ] if args.secret_values else []  # fmt: skip

        checksum_key = random.RandomPassword(f"{name}-checksum-key", length=32, special=False, opts=child)

        secret_env = [secret_ref_env(SecretRef(env_name, secret_name, env_name)) for env_name in sorted(args.secret_values)]
        secret_env += [secret_ref_env(ref) for ref in args.secret_refs + backing_service.secret_refs(args.backing_services)]
        ports = container_ports(service)
        # What the service's pods and its migration pods share: settings, secrets, resources and hardening.
        runtime = {
            "imagePullPolicy": "IfNotPresent",
            "envFrom": [{"configMapRef": {"name": f"{service.name}-config"}}],
            "env": secret_env,
            "resources": {
                "requests": {"cpu": service.resources.requests.cpu, "memory": service.resources.requests.memory},
                "limits": {"cpu": service.resources.limits.cpu, "memory": service.resources.limits.memory},
            },
            "securityContext": hardening.container_security_context(),
            "volumeMounts": [hardening.scratch_volume_mount()],
        }
        pod_runtime = {
            "serviceAccountName": service.name,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": hardening.pod_security_context(service.run_as_user, service.run_as_group),
            "volumes": [hardening.scratch_volume()],
        }
        container = {
            "name": service.name,
            "image": args.image,
            **entrypoint(service.command, service.args),
            **({"ports": ports} if ports else {}),
            **runtime,
        }
        pod_template = {
            "metadata": {
                "labels": labels,
                # A changed setting changes the pod template, so `pulumi up` rolls the pods (or the next run has it).
                "annotations": {
                    "checksum/config": config_checksum(service.env),
                    SECRET_CHECKSUM_ANNOTATION: secret_checksum(checksum_key.result, rollout_secrets),
                    **(
                        {SERVICE_ACCOUNT_CHECKSUM_ANNOTATION: config_checksum(service_account_annotations)}
                        if service_account_annotations
                        else {}
                    ),
                },
            },
            "spec": {**pod_runtime, "containers": [container]},
        }

        prerequisites = [service_account, config_map, *secrets]
        # A failed migration fails `pulumi up` here, before any pod of the new version starts.
        migrated = [
            self._one_off_job(name, args, job, MIGRATIONS, self._pulled(args, MIGRATIONS, job), runtime, pod_runtime, prerequisites)
            for job in [service.migrations]
            if job is not None
        ]
        after_migrations = pulumi.ResourceOptions(parent=self, depends_on=[*prerequisites, *migrated])
        self.deployment = self.cron_job = None
        if service.kind == "cron":
            container["terminationMessagePolicy"] = "FallbackToLogsOnError"  # the alert's reader sees why it failed
            pod_template["spec"]["restartPolicy"] = "Never"  # a failed run is retried as a new pod (backoffLimit)
            self.cron_job = k8s.batch.v1.CronJob(
                f"{name}-cronjob",
                metadata=metadata(service.name),
                spec=cron_job_spec(service, pod_template),
                opts=after_migrations,
            )
        else:
            container.update(probes(service))
            # Keeps serving while the endpoint's removal reaches every load balancer (a worker: stops taking work
            # before SIGTERM); the sleep action needs no shell.
            container["lifecycle"] = {"preStop": {"sleep": {"seconds": service.shutdown.drain_seconds}}}
            pod_template["spec"]["terminationGracePeriodSeconds"] = service.shutdown.grace_period_seconds
            pod_template["spec"]["topologySpreadConstraints"] = topology_spread(selector, args.spread_strictly)
            deployment_spec = {
                # A worker's selector names its kind: the selector is immutable, so turning a web service into a worker
                # (or back) replaces the Deployment, as the different workload it is, rather than patching one in place.
                "selector": {"matchLabels": selector if service.is_web else {**selector, COMPONENT_LABEL: service.kind}},
                # Surge one new pod before taking an old one down, so a rollout never dips below the PDB.
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "revisionHistoryLimit": 5,
                "template": pod_template,
            }
            if service.autoscaling is None:
                # With autoscaling on, replicas belong to the HPA: setting them here would fight it on every `up`.
                deployment_spec["replicas"] = service.replicas
            self.deployment = k8s.apps.v1.Deployment(
                f"{name}-deployment", metadata=metadata(service.name), spec=deployment_spec, opts=after_migrations
            )
        if service.is_web:
            k8s.core.v1.Service(
                f"{name}-service",
                metadata=metadata(service.name),
                spec={
                    "type": "ClusterIP",
                    "selector": selector,
                    "ports": [
                        {"name": port["name"], "port": port["containerPort"], "targetPort": port["name"], "protocol": "TCP"}
                        for port in ports
                    ],
                },
                opts=child,
            )
        cron = service.kind == "cron"
        render_autoscalers(
            name,
            AutoscalersArgs(
                target=ScaleTarget(service.name, service.name, *(("CronJob", "batch/v1") if cron else ())),
                namespace=args.namespace,
                labels=labels,
                autoscaling=service.autoscaling,
                vertical=service.vertical,
                connection_secrets={**backing_service.keda_sources(args.backing_services), **args.connection_secrets},
            ),
            parent=self,
        )
        if service.is_web or (service.kind == "worker" and (service.autoscaling is not None or service.replicas > 1)):
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=metadata(service.name),
                spec=hardening.one_at_a_time_disruption(selector),
                opts=child,
            )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata=metadata(service.name, egress_reasons(service.egress)),
            spec=self._network_policy_spec(service, selector, args),
            opts=child,
        )

        rolled_out = [self.deployment or self.cron_job]
        for task in service.tasks:  # after the rollout: a task may rely on what the new version deployed
            self._one_off_job(name, args, task, task.name, self._pulled(args, task.name, task), runtime, pod_runtime, rolled_out)

        self.service_name = service.name
        # None for a worker or cron job: nothing calls them.
        self.url = f"http://{service.name}.{args.namespace}.svc.cluster.local:{service.port}" if service.is_web else None
        self.register_outputs({"service_name": self.service_name, "url": self.url})

    def _one_off_job(
        self,
        name: str,
        args: AppServiceArgs,
        job: OneOffJob,
        purpose: str,
        image: str,
        runtime: dict,
        pod_runtime: dict,
        depends_on: list[pulumi.Resource],
    ) -> k8s.batch.v1.Job:
        """The Job of a one-off run (`purpose`: 'migrations' or a task's name), awaited by `pulumi up`.

        Its pods are named '<service>-<purpose>', not after the service, so that the service's Service, PDB and
        NetworkPolicy never select them; a database admits them by that name, straight to its primary."""
        service = args.service
        pod_name = one_off_name(service.name, purpose)
        labels = hardening.standard_labels(pod_name, "migrations" if purpose == MIGRATIONS else "task")
        overridden = set(args.migrations_env) | {ref.env_name for ref in args.migrations_secret_refs}
        env = (
            [variable for variable in runtime["env"] if variable["name"] not in overridden]
            + [{"name": env_name, "value": value} for env_name, value in sorted(args.migrations_env.items())]
            + [secret_ref_env(ref) for ref in args.migrations_secret_refs]
        )
        container = {"name": purpose, "image": image, **entrypoint(job.command, job.args), **runtime, "env": env}
        return k8s.batch.v1.Job(
            # The logical name stays while the object's name follows image and command: a new image is a replacement,
            # created under its new name before the old Job is deleted.
            f"{name}-{purpose}",
            metadata={
                "name": one_off_job_name(pod_name, image, job.command, job.args),
                "namespace": args.namespace,
                "labels": labels,
                "annotations": {
                    AWAIT_TIMEOUT_ANNOTATION: str(job.timeout_seconds + MIGRATIONS_AWAIT_MARGIN_SECONDS),
                    REPLACE_UNREADY_ANNOTATION: "true",
                },
            },
            spec={
                "backoffLimit": MIGRATIONS_BACKOFF_LIMIT,
                "activeDeadlineSeconds": job.timeout_seconds,
                "ttlSecondsAfterFinished": MIGRATIONS_TTL_SECONDS,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {**pod_runtime, "restartPolicy": "Never", "containers": [container]},
                },
            },
            # Never protected, not even in prod: Pulumi refuses to replace a protected resource, and every new image
            # replaces this Job. It holds no data.
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, protect=False),
        )

    @staticmethod
    def _pulled(args: AppServiceArgs, purpose: str, job: OneOffJob) -> str:
        """A one-off Job's image as pulled: its own (resolved by the caller) or the service's."""
        pulled = args.migrations_image if purpose == MIGRATIONS else args.task_images.get(purpose)
        if job.image is not None and pulled is None:
            where = "migrations_image" if purpose == MIGRATIONS else f"task_images['{purpose}']"
            raise ValueError(f"service '{args.service.name}' sets an image for '{purpose}': pass it as pulled in AppServiceArgs.{where}")
        return pulled or args.image

    @staticmethod
    def _network_policy_spec(service: ServiceConfig, selector: dict[str, str], args: AppServiceArgs) -> dict:
        """Who may call this service (its declared callers), whom it may call (its declared callees), and where outside
        the cluster it may go (its egress entries)."""
        ingress = [
            {
                "from": [{"podSelector": {"matchLabels": hardening.selector_labels(caller)}}],
                "ports": [{"protocol": "TCP", "port": service.port}],
            }
            for caller in sorted(args.callers)
        ]
        egress = [
            {
                "to": [{"podSelector": {"matchLabels": hardening.selector_labels(callee.name)}}],
                "ports": [{"protocol": "TCP", "port": callee.port}],
            }
            for callee in sorted(args.callees, key=lambda peer: peer.name)
        ]
        egress += [egress_rule(entry) for entry in sorted(service.egress, key=lambda entry: entry.name)]
        # Both directions are isolated by policyTypes; an empty rule list is left out, as the API server and the
        # kubernetes provider drop it (`make e2e` compares the provider's YAML with ours).
        rules = {key: value for key, value in (("ingress", ingress), ("egress", egress)) if value}
        return {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress", "Egress"], **rules}
