"""AppService: one stateless web/API service, hardened by default.

Owns its Deployment, Service, ServiceAccount, HorizontalPodAutoscaler, PodDisruptionBudget, NetworkPolicy,
ConfigMap (plain settings) and Secret (secret settings). Hardening comes from components.hardening; a
caller cannot switch it off through these args.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import hardening
from components.app_service_config import ServiceConfig

HTTP_PORT_NAME = "http"
METRICS_PORT_NAME = "metrics"
# How long a new pod may take to come up before the liveness probe starts judging it.
STARTUP_GRACE_SECONDS = 150
STARTUP_PROBE_PERIOD_SECONDS = 5
# Rolls the pods when a secret value changes: an HMAC under a generated key, so it differs between engines
# (the offline preview's key is a placeholder) and is never compared by `make e2e`.
SECRET_CHECKSUM_ANNOTATION = "checksum/secret"


@dataclass
class Peer:
    """Another service this one talks to, or is called by: the pods' name label and the port."""

    name: str
    port: int


@dataclass
class SecretRef:
    """An env variable read from a key of a Secret another component owns (e.g. database credentials)."""

    env_name: str
    secret_name: str
    key: str


@dataclass
class AppServiceArgs:
    service: ServiceConfig
    namespace: str
    image: str  # fully qualified, pinned by tag or digest
    secret_values: dict[str, pulumi.Output[str]] = field(default_factory=dict)  # env name -> secret value
    secret_refs: list[SecretRef] = field(default_factory=list)  # env read from Secrets owned elsewhere
    callers: list[str] = field(default_factory=list)  # services allowed to call this one
    callees: list[Peer] = field(default_factory=list)  # services this one may call
    spread_strictly: bool = False  # True: refuse to schedule two replicas on one node (prod)


def config_checksum(env: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()


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


def http_probe(path: str, period_seconds: int, failure_threshold: int) -> dict:
    return {
        "httpGet": {"path": path, "port": HTTP_PORT_NAME},
        "periodSeconds": period_seconds,
        "failureThreshold": failure_threshold,
        "timeoutSeconds": 2,
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
        child = pulumi.ResourceOptions(parent=self)
        labels = hardening.standard_labels(service.name, "app")
        selector = hardening.selector_labels(service.name)

        def metadata(object_name: str) -> dict:
            return {"name": object_name, "namespace": args.namespace, "labels": labels}

        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=metadata(service.name),
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
        secret = k8s.core.v1.Secret(
            f"{name}-secrets",
            metadata=metadata(secret_name),
            type="Opaque",
            string_data={env_name: pulumi.Output.secret(value) for env_name, value in args.secret_values.items()},
            opts=child,
        )

        checksum_key = random.RandomPassword(f"{name}-checksum-key", length=32, special=False, opts=child)

        secret_env = [
            {"name": env_name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": env_name}}}
            for env_name in sorted(args.secret_values)
        ] + [
            {"name": ref.env_name, "valueFrom": {"secretKeyRef": {"name": ref.secret_name, "key": ref.key}}}
            for ref in args.secret_refs
        ]
        ports = [{"name": HTTP_PORT_NAME, "containerPort": service.port, "protocol": "TCP"}]
        if service.metrics:
            ports.append({"name": METRICS_PORT_NAME, "containerPort": service.metrics.port, "protocol": "TCP"})
        container = {
            "name": service.name,
            "image": args.image,
            "imagePullPolicy": "IfNotPresent",
            "ports": ports,
            "envFrom": [{"configMapRef": {"name": f"{service.name}-config"}}],
            "env": secret_env,
            "resources": {
                "requests": {"cpu": service.resources.requests.cpu, "memory": service.resources.requests.memory},
                "limits": {"cpu": service.resources.limits.cpu, "memory": service.resources.limits.memory},
            },
            "securityContext": hardening.container_security_context(),
            "volumeMounts": [hardening.scratch_volume_mount()],
            "startupProbe": http_probe(
                service.health.liveness_path,
                STARTUP_PROBE_PERIOD_SECONDS,
                STARTUP_GRACE_SECONDS // STARTUP_PROBE_PERIOD_SECONDS,
            ),
            "livenessProbe": http_probe(service.health.liveness_path, period_seconds=10, failure_threshold=3),
            "readinessProbe": http_probe(service.health.readiness_path, period_seconds=5, failure_threshold=3),
        }
        deployment_spec = {
            "selector": {"matchLabels": selector},
            # Surge one new pod before taking an old one down, so a rollout never dips below the PDB.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "revisionHistoryLimit": 5,
            "template": {
                "metadata": {
                    "labels": labels,
                    # A changed setting changes the pod template, so `pulumi up` rolls the pods.
                    "annotations": {
                        "checksum/config": config_checksum(service.env),
                        SECRET_CHECKSUM_ANNOTATION: secret_checksum(checksum_key.result, args.secret_values),
                    },
                },
                "spec": {
                    "serviceAccountName": service.name,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": hardening.pod_security_context(service.run_as_user, service.run_as_group),
                    "containers": [container],
                    "volumes": [hardening.scratch_volume()],
                    "topologySpreadConstraints": topology_spread(selector, args.spread_strictly),
                },
            },
        }
        if service.autoscaling is None:
            # With autoscaling on, replicas belong to the HPA: setting them here would fight it on every `up`.
            deployment_spec["replicas"] = service.replicas

        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata(service.name),
            spec=deployment_spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[service_account, config_map, secret]),
        )
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
        if service.autoscaling is not None:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa",
                metadata=metadata(service.name),
                spec={
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name},
                    "minReplicas": service.autoscaling.min_replicas,
                    "maxReplicas": service.autoscaling.max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {"type": "Utilization", "averageUtilization": service.autoscaling.target_cpu_percent},
                            },
                        }
                    ],
                },
                opts=child,
            )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=metadata(service.name),
            # One pod at a time may be evicted: drains make progress, replicated services keep serving.
            spec={"maxUnavailable": 1, "selector": {"matchLabels": selector}},
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata=metadata(service.name),
            spec=self._network_policy_spec(service, selector, args),
            opts=child,
        )

        self.service_name = service.name
        self.url = f"http://{service.name}.{args.namespace}.svc.cluster.local:{service.port}"
        self.register_outputs({"service_name": self.service_name, "url": self.url})

    @staticmethod
    def _network_policy_spec(service: ServiceConfig, selector: dict[str, str], args: AppServiceArgs) -> dict:
        """Who may call this service (its declared callers) and whom it may call (its declared callees)."""
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
        # Both directions are isolated by policyTypes; an empty rule list is left out, as the API server and the
        # kubernetes provider drop it (`make e2e` compares the provider's YAML with ours).
        rules = {key: value for key, value in (("ingress", ingress), ("egress", egress)) if value}
        return {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress", "Egress"], **rules}
