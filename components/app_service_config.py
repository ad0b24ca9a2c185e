"""The `services[]` stack config key: one components.app_service.AppService each."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

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
    pinned_image,
)
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
    liveness_path: str = Field(default="/healthz", pattern=r"^/")
    readiness_path: str = Field(default="/readyz", pattern=r"^/")
    # How long a new pod may take to start before liveness judges it. At most 600 s: Pulumi's Deployment await gives
    # up after 10 minutes, so a pod allowed longer would fail `pulumi up` before it may even be judged.
    startup_seconds: int = Field(default=150, ge=5, le=600)
    # None keeps liveness every 10 s and readiness every 5 s.
    period_seconds: Optional[int] = Field(default=None, ge=1, le=60)
    failure_threshold: int = Field(default=3, ge=1, le=10)


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


class Migrations(CamelModel):
    """A Job that runs before the service's new pods roll out; `pulumi up` waits for it and stops if it fails."""

    command: list[str] = Field(min_length=1)
    image: Optional[str] = None  # None: the service's image
    # The Job's deadline, retries included. At most an hour: longer blocks every rollout that long; run such a data
    # migration in the background instead.
    timeout_seconds: int = Field(default=300, ge=30, le=3600)

    @field_validator("command")
    @classmethod
    def names_an_executable(cls, command: list[str]) -> list[str]:
        if not command[0].strip():
            raise ValueError("command[0] is empty; name the executable, e.g. ['/app/migrate', 'up']")
        return command

    @field_validator("image")
    @classmethod
    def image_is_pinned(cls, image: Optional[str]) -> Optional[str]:
        return None if image is None else pinned_image(image)


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
    return bool(re.match(LABEL_KEY, key)) and len(name) <= 63 and len(prefix) <= 253


class ServiceAccountSettings(CamelModel):
    """The service's ServiceAccount: annotations for the cluster's webhooks, and an AWS IAM role (IRSA). Its Kubernetes
    API token stays unmounted whatever is set here: the EKS pod identity webhook projects a token of its own."""

    annotations: dict[str, str] = Field(default_factory=dict)
    aws_role_arn: Optional[str] = None

    @field_validator("aws_role_arn")
    @classmethod
    def role_arn_is_an_iam_role(cls, arn: Optional[str]) -> Optional[str]:
        if arn is not None and not re.match(IAM_ROLE_ARN, arn):
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
    image: str
    port: int = Field(ge=1024, le=65535)
    replicas: int = Field(default=1, ge=1)
    autoscaling: Optional[Autoscaling] = None  # HPA or KEDA (components/autoscaling_config.py)
    vertical: Optional[VerticalScaling] = None  # a VerticalPodAutoscaler
    resources: ContainerResources
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, str] = Field(default_factory=dict)
    health: HealthChecks = HealthChecks()
    shutdown: Shutdown = Shutdown()
    migrations: Optional[Migrations] = None
    calls: list[str] = Field(default_factory=list)
    metrics: Optional[MetricsEndpoint] = None
    run_as_user: int = Field(default=10001, ge=1)
    run_as_group: int = Field(default=10001, ge=1)
    egress: list[EgressRule] = Field(default_factory=list)
    service_account: ServiceAccountSettings = ServiceAccountSettings()

    @field_validator("image")
    @classmethod
    def image_is_pinned(cls, image: str) -> str:
        return pinned_image(image)

    @field_validator("env", "secret_env")
    @classmethod
    def env_names_are_valid(cls, env: dict[str, str]) -> dict[str, str]:
        bad = [name for name in env if not re.match(ENV_NAME, name)]
        if bad:
            raise ValueError(f"invalid environment variable name(s) {bad}; use letters, digits and '_'")
        return env

    @field_validator("secret_env")
    @classmethod
    def secret_keys_are_config_keys(cls, secret_env: dict[str, str]) -> dict[str, str]:
        bad = [key for key in secret_env.values() if not re.match(CONFIG_KEY, key)]
        if bad:
            raise ValueError(f"secret config key name(s) {bad} are not valid config keys (letters, digits, '-', '_', '.')")
        return secret_env

    @model_validator(mode="after")
    def metrics_port_differs(self) -> "ServiceConfig":
        if self.metrics and self.metrics.port == self.port:
            raise ValueError(f"metrics.port {self.port} is the service port; serve metrics on a port of their own")
        return self

    @model_validator(mode="after")
    def env_and_secret_env_disjoint(self) -> "ServiceConfig":
        both = sorted(set(self.env) & set(self.secret_env))
        if both:
            raise ValueError(f"{both} are in both 'env' and 'secretEnv'; keep each variable in one place")
        return self

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
