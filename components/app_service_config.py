"""The `services[]` stack config key: one components.app_service.AppService each."""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from typing import Any, Literal, Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator

from components.config_base import (
    CONFIG_KEY,
    DNS_1035_LABEL,
    DNS_LABEL,
    ENV_NAME,
    IAM_ROLE_ARN,
    LABEL_KEY,
    PRIVATE_IPV4_RANGES,
    PRIVATE_IPV6_RANGES,
    CamelModel,
    ContainerResources,
    misplaced_key,
    missing_key,
    pinned_image,
)
from components import cron_schedule
from components.autoscaling_config import Autoscaling, VerticalScaling
from components.hardening import ALLOW_TOKEN_ANNOTATION, IRSA_ANNOTATION

HTTPS_PORT = 443
PROD_ENVIRONMENT = "prod"  # stack_config.Environment.PROD, which this module cannot import (stack_config imports it)
STS_EGRESS_EXAMPLES = (
    "your STS VPC endpoint's addresses, e.g. {name: aws-sts, cidrs: [10.0.32.0/24], ports: [{port: 443}]}, or the "
    "internet: {name: aws-apis, cidrs: [0.0.0.0/0], allowInternet: true, reason: 'STS and the AWS APIs the role is "
    "for: AWS publishes no fixed addresses for them', ports: [{port: 443}]}"
)


class HealthChecks(CamelModel):
    """Web services are probed over HTTP on their port. A worker has none: it is probed by running `command` in the
    container (exit 0: healthy) or over HTTP on a health `port` of its own, one of the two."""

    port: Optional[int] = Field(default=None, ge=1024, le=65535)
    command: Optional[list[str]] = Field(default=None, min_length=1)
    liveness_path: str = Field(default="/healthz", pattern=r"^/")
    readiness_path: str = Field(default="/readyz", pattern=r"^/")
    # How long a new pod may take to start before liveness judges it. At most 600 s: Pulumi's Deployment await gives
    # up after 10 minutes, so a pod allowed longer would fail `pulumi up` before it may even be judged.
    startup_seconds: int = Field(default=150, ge=5, le=600)
    # None keeps liveness every 10 s and readiness every 5 s.
    period_seconds: Optional[int] = Field(default=None, ge=1, le=60)
    failure_threshold: int = Field(default=3, ge=1, le=10)

    @model_validator(mode="after")
    def one_way_to_probe(self) -> "HealthChecks":
        if self.port is not None and self.command is not None:
            raise ValueError("set 'port' (HTTP probes on that port) or 'command' (exec probes), not both")
        return self


class Shutdown(CamelModel):
    """A stopping pod keeps serving for drainSeconds (a preStop sleep) while load balancers and kube-proxy stop
    sending it requests, then gets SIGTERM and the rest of gracePeriodSeconds to finish what it accepted."""

    drain_seconds: int = Field(default=10, ge=1, le=60)
    grace_period_seconds: int = Field(default=30, ge=2, le=300)

    @model_validator(mode="after")
    def grace_period_outlasts_the_drain(self) -> "Shutdown":
        if self.grace_period_seconds <= self.drain_seconds:
            raise ValueError(
                f"gracePeriodSeconds ({self.grace_period_seconds}) must exceed drainSeconds ({self.drain_seconds}): the "
                "kubelet kills the container when the grace period ends, so the app would get no time after SIGTERM to "
                f"finish its requests. Raise gracePeriodSeconds (e.g. {self.drain_seconds + 20}) or lower drainSeconds"
            )
        return self


def executable_named(command: list[str], example: str) -> list[str]:
    """A validator's check of a container command: its first word names the executable."""
    if not command[0].strip():
        raise ValueError(f"command[0] is empty; name the executable, e.g. {example}")
    return command


class OneOffJob(CamelModel):
    """A Job run once per image and command (a new one is a new Job), with the service's settings, secrets and
    databases; `pulumi up` waits for it and stops if it fails."""

    command: list[str] = Field(min_length=1)
    args: Optional[list[str]] = None
    image: Optional[str] = None  # None: the service's image
    # The Job's deadline, retries included. At most an hour: `pulumi up` waits that long; run longer work as a cron job
    # or a worker instead.
    timeout_seconds: int = Field(default=300, ge=30, le=3600)

    @field_validator("command")
    @classmethod
    def names_an_executable(cls, command: list[str]) -> list[str]:
        return executable_named(command, "['/app/migrate', 'up']")

    @field_validator("image")
    @classmethod
    def image_is_pinned(cls, image: Optional[str]) -> Optional[str]:
        return None if image is None else pinned_image(image)


class Migrations(OneOffJob):
    """Runs before the service's new pods roll out (or its CronJob changes), straight against its databases' primary."""


class Task(OneOffJob):
    """A one-off task (a data backfill, a search reindex): runs after the service's rollout, again whenever its
    image, command or args change."""

    # Its Job is named '<service>-<task>-<8 hex>' and a Job's name is a label value (63 characters): a service name
    # has at most 40.
    name: str = Field(pattern=DNS_LABEL, max_length=13)


class MetricsEndpoint(CamelModel):
    """Where a service serves Prometheus metrics; a separate port keeps them off the public route."""

    port: int = Field(ge=1024, le=65535)
    path: str = Field(default="/metrics", pattern=r"^/")


def _every_address(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return network.prefixlen == 0


def _private(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    ranges = PRIVATE_IPV4_RANGES if network.version == 4 else PRIVATE_IPV6_RANGES
    return any(network.subnet_of(ipaddress.ip_network(private)) for private in ranges)


def _cidr_problem(cidr: str) -> str | None:
    """Why a string is not a CIDR NetworkPolicy ipBlocks take, and how to write it; None when it is one."""
    if "/" not in cidr:
        try:
            address = ipaddress.ip_address(cidr)
        except ValueError:
            return f"'{cidr}' is not a CIDR like 203.0.113.0/24 or 2001:db8::/32"
        return f"'{cidr}' has no prefix length; one address is '{cidr}/{address.max_prefixlen}'"
    try:
        ipaddress.ip_network(cidr)
    except ValueError:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return f"'{cidr}' is not a CIDR like 203.0.113.0/24 or 2001:db8::/32"
        return f"'{cidr}' has host bits set; the network is '{network}'"
    return None


class EgressPort(CamelModel):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP"] = "TCP"


class EgressRule(CamelModel):
    """A way out of the cluster for one service (the namespace denies every other egress but DNS): addresses and ports,
    named for the humans who review them."""

    name: str = Field(pattern=DNS_LABEL, max_length=63)
    cidrs: list[str] = Field(min_length=1)
    # Required: "every port" is rarely what a call to an API needs, and a reviewer should see which.
    ports: list[EgressPort] = Field(min_length=1)
    # 0.0.0.0/0 or ::/0 is the internet (without the private ranges): only when said so, and in prod with a reason
    # (egress_problems), which the NetworkPolicy carries for the policy pack.
    allow_internet: bool = False
    reason: Optional[str] = None

    @field_validator("cidrs")
    @classmethod
    def cidrs_are_networks(cls, cidrs: list[str]) -> list[str]:
        problems = [problem for problem in map(_cidr_problem, cidrs) if problem]
        if problems:
            raise ValueError("; ".join(problems))
        networks = [str(ipaddress.ip_network(cidr)) for cidr in cidrs]
        duplicates = sorted({network for network in networks if networks.count(network) > 1})
        if duplicates:
            raise ValueError(f"cidrs {duplicates} appear more than once; list each network once")
        return networks

    @model_validator(mode="after")
    def internet_only_when_meant(self) -> "EgressRule":
        everywhere = [cidr for cidr in self.cidrs if _every_address(ipaddress.ip_network(cidr))]
        problems = []
        if everywhere and not self.allow_internet:
            problems.append(
                f"egress '{self.name}': cidrs {everywhere} mean every address on the internet; list the addresses the "
                "service calls, or, for an API without fixed addresses, set allowInternet: true on this entry (and, in "
                "prod, a reason)"
            )
        if self.allow_internet and not everywhere:
            problems.append(
                f"egress '{self.name}': allowInternet: true, but cidrs list no 0.0.0.0/0 or ::/0; remove allowInternet "
                "(the listed addresses need none)"
            )
        if self.reason is not None and not self.allow_internet:
            problems.append(
                f"egress '{self.name}': 'reason' explains an internet entry (allowInternet: true); remove it, the "
                "entry's name and cidrs say what it is for"
            )
        elif self.reason is not None and not self.reason.strip():
            problems.append(
                f"egress '{self.name}': 'reason' is empty; say what the service calls there and why it has no fixed "
                "addresses"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def could_reach_sts(self) -> bool:
        """HTTPS to the internet or to private addresses (where an STS VPC endpoint lives): STS may be among them."""
        https = any(port.port == HTTPS_PORT and port.protocol == "TCP" for port in self.ports)
        return https and (self.allow_internet or any(_private(ipaddress.ip_network(cidr)) for cidr in self.cidrs))


def _valid_annotation_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(re.fullmatch(LABEL_KEY, key)) and len(name) <= 63 and len(prefix) <= 253


class ServiceAccountSettings(CamelModel):
    """The service's ServiceAccount: annotations for the cluster's webhooks, and an AWS IAM role (IRSA). Its Kubernetes
    API token stays unmounted whatever is set here: the EKS pod identity webhook projects a token of its own."""

    annotations: dict[str, str] = Field(default_factory=dict)
    aws_role_arn: Optional[str] = None

    @field_validator("aws_role_arn")
    @classmethod
    def role_arn_is_an_iam_role(cls, arn: Optional[str]) -> Optional[str]:
        if arn is not None and not re.fullmatch(IAM_ROLE_ARN, arn):
            raise ValueError("is not an IAM role ARN like arn:aws:iam::111122223333:role/<name>")
        return arn

    @field_validator("annotations")
    @classmethod
    def annotations_the_platform_does_not_own(cls, annotations: dict[str, str]) -> dict[str, str]:
        problems = []
        bad = [key for key in annotations if not _valid_annotation_key(key)]
        if bad:
            problems.append(
                f"annotation keys {bad} are not valid: [prefix/]name, the name 1-63 letters, digits, '-', '_' or '.' "
                "(starting and ending with a letter or digit), the prefix a DNS subdomain"
            )
        if IRSA_ANNOTATION in annotations:
            problems.append(
                f"'{IRSA_ANNOTATION}' is set from 'awsRoleArn' (checked as an IAM role ARN, and for a way to STS); "
                "move the ARN there"
            )
        if ALLOW_TOKEN_ANNOTATION in annotations:
            problems.append(
                f"'{ALLOW_TOKEN_ANNOTATION}' would only silence the policy pack: a service's pods never mount the "
                "Kubernetes API token (an AWS role needs none, 'awsRoleArn'); remove it"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return annotations

    @property
    def rendered_annotations(self) -> dict[str, str]:
        """What the ServiceAccount carries: the annotations, and the IRSA one with a role."""
        role = {IRSA_ANNOTATION: self.aws_role_arn} if self.aws_role_arn else {}
        return {**self.annotations, **role}


class ServiceConfig(CamelModel):
    # A Kubernetes Service is named after it: a DNS-1035 label (it starts with a letter), not just a DNS label.
    name: str = Field(pattern=DNS_1035_LABEL, max_length=40)
    # web: a Deployment behind a Service (routes and `calls` reach it); worker: a Deployment nothing calls (a queue
    # consumer); cron: a CronJob. Before the keys that depend on it: their validators read it.
    kind: Literal["web", "worker", "cron"] = "web"
    image: str
    # The container's entrypoint and its arguments, as Kubernetes' command and args; unset, the image's own.
    command: Optional[list[str]] = Field(default=None, min_length=1)
    args: Optional[list[str]] = None
    port: Optional[int] = Field(default=None, ge=1024, le=65535, validate_default=True)
    replicas: int = Field(default=1, ge=1)
    autoscaling: Optional[Autoscaling] = None  # HPA or KEDA (components/autoscaling_config.py)
    vertical: Optional[VerticalScaling] = None  # a VerticalPodAutoscaler
    resources: ContainerResources
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, str] = Field(default_factory=dict)
    health: HealthChecks = Field(default=HealthChecks(), validate_default=True)
    shutdown: Shutdown = Shutdown()
    migrations: Optional[Migrations] = None
    tasks: list[Task] = Field(default_factory=list)
    calls: list[str] = Field(default_factory=list)
    metrics: Optional[MetricsEndpoint] = None
    run_as_user: int = Field(default=10001, ge=1)
    run_as_group: int = Field(default=10001, ge=1)
    egress: list[EgressRule] = Field(default_factory=list)
    service_account: ServiceAccountSettings = ServiceAccountSettings()
    # A cron job's (kind: cron), as the CronJob's fields of the same names.
    schedule: Optional[str] = Field(default=None, validate_default=True)
    time_zone: Optional[str] = None  # None: the kube-controller-manager's zone (UTC on managed clusters)
    # Allow is left out: runs that pile up behind a slow one are what bounded cron jobs prevent (the pack refuses it).
    concurrency_policy: Literal["Forbid", "Replace"] = "Forbid"
    # A run missed by longer (controller down, Forbid behind a slow run) is skipped rather than started late.
    starting_deadline_seconds: int = Field(default=600, ge=10, le=86400)
    # A run's timeout, retries included: a hung run would otherwise hold the next ones back forever (Forbid).
    active_deadline_seconds: int = Field(default=3600, ge=30, le=86400)
    backoff_limit: int = Field(default=2, ge=0, le=10)
    successful_jobs_history_limit: int = Field(default=3, ge=0, le=10)
    # At least one: the failed-run alert reads the failed Job, which this keeps.
    failed_jobs_history_limit: int = Field(default=3, ge=1, le=10)

    @field_validator("image")
    @classmethod
    def image_is_pinned(cls, image: str) -> str:
        return pinned_image(image)

    @field_validator("command")
    @classmethod
    def command_names_an_executable(cls, command: Optional[list[str]]) -> Optional[list[str]]:
        return None if command is None else executable_named(command, "['/app/worker', '--queue', 'reports']")

    @field_validator("port")
    @classmethod
    def port_of_web_services_only(cls, port: Optional[int], info: ValidationInfo) -> Optional[int]:
        kind = info.data.get("kind")
        if kind == "web" and port is None:
            raise missing_key("a web service serves HTTP on it, behind its Service; a workload nobody calls is kind: worker")
        if kind == "worker" and port is not None:
            raise misplaced_key(
                "a worker has no Service and nothing calls it, so no port; serve metrics on 'metrics.port' and a health "
                "check on 'health.port', or set kind: web if it serves requests"
            )
        if kind == "cron" and port is not None:
            raise misplaced_key("a cron job's pods run to completion and nothing calls them, so no port")
        return port

    @field_validator("health")
    @classmethod
    def probes_fit_the_kind(cls, health: HealthChecks, info: ValidationInfo) -> HealthChecks:
        kind = info.data.get("kind")
        if kind == "web" and (health.port is not None or health.command is not None):
            raise ValueError(
                "health.port and health.command probe a worker; a web service is probed over HTTP on its port "
                "(livenessPath, readinessPath): remove them"
            )
        if kind == "worker" and health.port is None and health.command is None:
            raise ValueError(
                "a worker has no service port to probe: set health.command (run in the container, exit 0 when "
                "healthy, e.g. ['/app/healthcheck']) or health.port (HTTP probes on livenessPath/readinessPath there)"
            )
        if kind == "cron" and health.model_fields_set:
            raise misplaced_key(
                "a cron job's pods run to completion and are not probed; 'activeDeadlineSeconds' bounds a run instead"
            )
        return health

    @field_validator("replicas", "autoscaling", "shutdown", "metrics")
    @classmethod
    def not_for_cron_jobs(cls, value: Any, info: ValidationInfo) -> Any:
        if info.data.get("kind") == "cron":
            why = {
                "replicas": "each run is one pod (the Job's)",
                "autoscaling": "each run is one pod (the Job's); nothing scales",
                "shutdown": "a run ends by itself or at 'activeDeadlineSeconds'; nothing drains",
                "metrics": "its pods live too briefly to be scraped; the platform alerts on failed and overdue runs",
            }[info.field_name]
            raise misplaced_key(f"a cron job has no {info.field_name}: {why}")
        return value

    @field_validator("schedule")
    @classmethod
    def schedule_of_cron_jobs(cls, schedule: Optional[str], info: ValidationInfo) -> Optional[str]:
        kind = info.data.get("kind")
        if kind == "cron" and schedule is None:
            raise missing_key(f"a cron job runs on a schedule, e.g. {cron_schedule.EXAMPLE}")
        if kind in ("web", "worker") and schedule is not None:
            raise misplaced_key(f"only a cron job (kind: cron) runs on a schedule; this one is a {kind}")
        if schedule is not None:
            cron_schedule.parse(schedule)
        return schedule

    @field_validator(
        "time_zone",
        "concurrency_policy",
        "starting_deadline_seconds",
        "active_deadline_seconds",
        "backoff_limit",
        "successful_jobs_history_limit",
        "failed_jobs_history_limit",
    )
    @classmethod
    def keys_of_cron_jobs(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind in ("web", "worker"):
            raise misplaced_key(f"a cron job's setting (kind: cron); this one is a {kind}")
        return value

    @field_validator("time_zone")
    @classmethod
    def time_zone_is_known(cls, time_zone: Optional[str]) -> Optional[str]:
        if time_zone is not None and time_zone not in zoneinfo.available_timezones():
            raise ValueError(
                "is not an IANA time zone the cluster knows; use a name like 'Europe/Berlin', 'America/New_York' or "
                "'Etc/UTC' (`timedatectl list-timezones` lists them)"
            )
        return time_zone

    @field_validator("env", "secret_env")
    @classmethod
    def env_names_are_valid(cls, env: dict[str, str]) -> dict[str, str]:
        bad = [name for name in env if not re.fullmatch(ENV_NAME, name)]
        if bad:
            raise ValueError(f"invalid environment variable name(s) {bad}; use letters, digits and '_'")
        return env

    @field_validator("secret_env")
    @classmethod
    def secret_keys_are_config_keys(cls, secret_env: dict[str, str]) -> dict[str, str]:
        bad = [key for key in secret_env.values() if not re.fullmatch(CONFIG_KEY, key)]
        if bad:
            raise ValueError(f"secret config key name(s) {bad} are not valid config keys (letters, digits, '-', '_', '.')")
        return secret_env

    @model_validator(mode="after")
    def metrics_port_differs(self) -> "ServiceConfig":
        if self.metrics and self.port is not None and self.metrics.port == self.port:
            raise ValueError(f"metrics.port {self.port} is the service port; serve metrics on a port of their own")
        return self

    @model_validator(mode="after")
    def env_and_secret_env_disjoint(self) -> "ServiceConfig":
        both = sorted(set(self.env) & set(self.secret_env))
        if both:
            raise ValueError(f"{both} are in both 'env' and 'secretEnv'; keep each variable in one place")
        return self

    @field_validator("tasks")
    @classmethod
    def task_names_unique(cls, tasks: list[Task]) -> list[Task]:
        names = [task.name for task in tasks]
        duplicates = sorted({name for name in names if names.count(name) > 1} | ({"migrations"} & set(names)))
        if duplicates:
            raise ValueError(f"task names {duplicates} are taken (each task's own, 'migrations' the migrations'); rename them")
        return tasks

    @model_validator(mode="after")
    def egress_names_unique(self) -> "ServiceConfig":
        names = [entry.name for entry in self.egress]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"egress names {duplicates} appear more than once; give each entry its own name")
        return self

    @model_validator(mode="after")
    def aws_role_reaches_sts(self) -> "ServiceConfig":
        if self.service_account.aws_role_arn and not any(entry.could_reach_sts for entry in self.egress):
            raise ValueError(
                "serviceAccount.awsRoleArn: the pods trade their token for AWS credentials at STS "
                "(sts.<region>.amazonaws.com, TCP 443), and the namespace denies egress by default: add an egress "
                f"entry that reaches it, {STS_EGRESS_EXAMPLES}"
            )
        return self

    @property
    def min_replicas(self) -> int:
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas

    @property
    def is_web(self) -> bool:
        return self.kind == "web"

    @property
    def longest_run_interval_seconds(self) -> int:
        """A cron job's longest time between two scheduled runs."""
        return cron_schedule.parse(self.schedule).longest_gap_seconds()


def egress_problems(raw: dict[str, Any], project: str, stack: str) -> list[str]:
    """Prod's internet egress needs a reason: the NetworkPolicy carries it, and the policy pack (mandatory in prod)
    refuses unrestricted egress without one.

    Read from the raw values (the models do not know the environment), like stack_config's other cross-checks, so
    these are reported with every other problem.
    """
    if raw.get("environment") != PROD_ENVIRONMENT:
        return []
    problems = []
    services = raw.get("services") if isinstance(raw.get("services"), list) else []
    for i, service in enumerate(services):
        service = service if isinstance(service, dict) else {}
        entries = service.get("egress") if isinstance(service.get("egress"), list) else []
        for j, entry in enumerate(entries):
            entry = entry if isinstance(entry, dict) else {}
            reason = entry.get("reason")
            if entry.get("allowInternet") is True and not (isinstance(reason, str) and reason.strip()):
                path = f"services[{i}].egress[{j}].reason"
                problems.append(
                    f"{project}:{path}: egress '{entry.get('name')}' of service '{service.get('name')}' opens the "
                    "internet; prod needs a reason a reviewer can check (what it calls, and why that has no fixed "
                    f"addresses). Fix: `pulumi config set --stack {stack} --path '{path}' '<reason>'`, or list the "
                    "addresses in 'cidrs' instead of 0.0.0.0/0"
                )
    return problems


def kinds_by_name(raw: dict[str, Any]) -> dict[str, str]:
    """Each raw service's kind (web when unset), by name; services without a usable name or kind left out."""
    services = raw.get("services") if isinstance(raw.get("services"), list) else []
    return {
        service["name"]: service.get("kind", "web")
        for service in services
        if isinstance(service, dict) and isinstance(service.get("name"), str) and isinstance(service.get("kind", "web"), str)
    }


def calls_problems(raw: dict[str, Any], project: str, stack: str) -> list[str]:
    """`calls` reach a web service through its Service; a worker or cron job has none, so nothing can call it.

    Read from the raw values (like egress_problems) to name each entry's key path.
    """
    kinds = kinds_by_name(raw)
    problems = []
    services = raw.get("services") if isinstance(raw.get("services"), list) else []
    for i, service in enumerate(services):
        calls = service.get("calls") if isinstance(service, dict) and isinstance(service.get("calls"), list) else []
        for j, callee in enumerate(calls):
            kind = kinds.get(callee) if isinstance(callee, str) else None
            if kind in ("worker", "cron"):
                path = f"services[{i}].calls[{j}]"
                problems.append(
                    f"{project}:{path}: '{callee}' is a {kind}: it has no Service and takes no calls (give it work "
                    f"through a queue or a database). Fix: `pulumi config rm --stack {stack} --path '{path}'`, or make "
                    f"'{callee}' kind: web with a port"
                )
    return problems
