"""Stack configuration: read once from Pulumi config, validated by pydantic, handed to the components.

`load(stack, project, read_value, is_secret)` returns a `StackConfig` or raises `ConfigError` with every
problem at once, each naming the stack file, the key path and the fix. Nothing here touches resources,
so a bad stack file stops the program before anything is registered.
"""

from __future__ import annotations

import ipaddress
import json
import re
from enum import Enum
from typing import Any, Callable, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# The policy pack's own detectors (no Pulumi imports): a plain value the pack would call a secret is refused here.
from policies.secret_detectors import is_secret_name, judge_text, secret_shape

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"  # what Service names must be
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
CONFIG_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

# Top-level keys of the `platform:` namespace, in the order the docs list them.
TOP_LEVEL_KEYS = (
    "environment", "kubernetes", "namespace", "imageRegistry", "quota", "containerDefaults", "services",
    "databases", "backups", "cnpg",  # CloudNativePG databases and their backups
    "ingress", "monitoring", "addons",  # the way in, monitoring, local cluster add-ons
    "podSecurity",  # the namespace's Pod Security Admission version
)  # fmt: skip


def image_tag(image: str) -> str | None:
    """The tag of an image reference, None without one (a registry's "host:port/" is not a tag)."""
    last_segment = image.rsplit("/", 1)[-1]
    return last_segment.rsplit(":", 1)[1] if ":" in last_segment else None


class Model(BaseModel):
    """Stack files use camelCase keys; unknown keys are typos and rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class CamelModel(Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, alias_generator=camel)


class Environment(str, Enum):
    LOCAL = "local"
    STAGING = "staging"
    PROD = "prod"


# The smallest replica count each environment accepts: prod survives a node and a zone loss.
MIN_REPLICAS = {Environment.LOCAL: 1, Environment.STAGING: 2, Environment.PROD: 3}


class KubernetesTarget(CamelModel):
    """Which cluster: a kubeconfig context on this machine, or a kubeconfig held in secret config.

    With `renderDirectory` the kubernetes provider writes every object as YAML into that folder instead of
    applying it (for GitOps repositories, or a preview with no cluster); a cluster is then optional.
    """

    context: Optional[str] = None
    kubeconfig_secret_key: Optional[str] = Field(default=None, pattern=CONFIG_KEY)
    render_directory: Optional[str] = Field(default=None, min_length=1)
    # pulumi-kubernetes writes Secret values into the rendered files in plaintext: the user must say they know.
    render_secrets_in_plaintext: bool = False

    @model_validator(mode="after")
    def one_source(self) -> "KubernetesTarget":
        sources = (self.context is not None) + (self.kubeconfig_secret_key is not None)
        if sources > 1 or (sources == 0 and self.render_directory is None):
            raise ValueError(
                "set exactly one of 'context' (a kubeconfig context, e.g. kind-platform) or "
                "'kubeconfigSecretKey' (the name of a secret config key holding a kubeconfig)"
                + ("" if sources else ", or 'renderDirectory' to write YAML instead of applying it")
            )
        if self.render_directory is not None and not self.render_secrets_in_plaintext:
            raise ValueError(
                "with 'renderDirectory', pulumi-kubernetes writes the stack's Secrets into the folder in plaintext; "
                "keep that folder out of git (or encrypt it, e.g. SOPS) and set 'renderSecretsInPlaintext: true' "
                "to say so"
            )
        return self


class ComputeAmounts(CamelModel):
    cpu: str = Field(pattern=QUANTITY)
    memory: str = Field(pattern=QUANTITY)


class ContainerResources(CamelModel):
    requests: ComputeAmounts
    limits: ComputeAmounts


class NamespaceQuota(CamelModel):
    """ResourceQuota for the whole namespace: caps what a mistake (or a runaway HPA) can take from the cluster."""

    requests_cpu: str = Field(pattern=QUANTITY)
    requests_memory: str = Field(pattern=QUANTITY)
    limits_cpu: str = Field(pattern=QUANTITY)
    limits_memory: str = Field(pattern=QUANTITY)
    pods: int = Field(ge=1)


class ContainerDefaults(CamelModel):
    """LimitRange: what a container gets when it declares nothing, and the most one container may ask for."""

    default_request: ComputeAmounts
    default_limit: ComputeAmounts
    max: ComputeAmounts


class Autoscaling(CamelModel):
    min_replicas: int = Field(ge=1)
    max_replicas: int = Field(ge=1)
    target_cpu_percent: int = Field(default=70, ge=10, le=100)

    @model_validator(mode="after")
    def bounds_in_order(self) -> "Autoscaling":
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) is below minReplicas ({self.min_replicas})")
        return self


class HealthChecks(CamelModel):
    liveness_path: str = Field(default="/healthz", pattern=r"^/")
    readiness_path: str = Field(default="/readyz", pattern=r"^/")


class MetricsEndpoint(CamelModel):
    """Where a service serves Prometheus metrics; a separate port keeps them off the public route."""

    port: int = Field(ge=1024, le=65535)
    path: str = Field(default="/metrics", pattern=r"^/")


class ServiceConfig(CamelModel):
    # A Kubernetes Service is named after it: a DNS-1035 label (it starts with a letter), not just a DNS label.
    name: str = Field(pattern=DNS_1035_LABEL, max_length=40)
    image: str
    port: int = Field(ge=1024, le=65535)
    replicas: int = Field(default=1, ge=1)
    autoscaling: Optional[Autoscaling] = None
    resources: ContainerResources
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, str] = Field(default_factory=dict)
    health: HealthChecks = HealthChecks()
    calls: list[str] = Field(default_factory=list)
    metrics: Optional[MetricsEndpoint] = None
    run_as_user: int = Field(default=10001, ge=1)
    run_as_group: int = Field(default=10001, ge=1)

    @field_validator("image")
    @classmethod
    def image_is_pinned(cls, image: str) -> str:
        if DIGEST.search(image):
            return image
        tag = image_tag(image)
        if tag is None:
            raise ValueError(f"image '{image}' has no tag; pin a version, e.g. '{image}:1.2.3' or '{image}@sha256:<digest>'")
        if tag == "latest":
            raise ValueError(
                f"image '{image}' uses the mutable tag 'latest'; pin a version, e.g. "
                f"'{image[: -len(':latest')]}:1.2.3' or a digest '@sha256:<digest>'"
            )
        return image

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

    @property
    def min_replicas(self) -> int:
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas


# --- databases (CloudNativePG) and their backups -------------------------------------------------------------

PG_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
# What a service using a database gets, each as <envPrefix>_<suffix> (components.database_cluster fills them in).
DATABASE_ENV_SUFFIXES = ("HOST", "PORT", "NAME", "USER", "PASSWORD", "URL")
IAM_ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$"
# Settings CloudNativePG manages itself and refuses in spec.postgresql.parameters.
CNPG_FIXED_PARAMETERS = frozenset(
    {
        "archive_command", "archive_mode", "cluster_name", "config_file", "data_directory", "full_page_writes",
        "hba_file", "hot_standby", "ident_file", "listen_addresses", "log_destination", "logging_collector",
        "port", "primary_conninfo", "primary_slot_name", "restore_command", "ssl", "ssl_ca_file", "ssl_cert_file",
        "ssl_key_file", "synchronous_standby_names", "unix_socket_directories", "wal_level",
    }
)


class VolumeSettings(CamelModel):
    """A PersistentVolumeClaim per instance: its size, and the storage class (the cluster default if unset)."""

    size: str = Field(pattern=QUANTITY)
    storage_class: Optional[str] = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class DatabaseBackup(CamelModel):
    """Per database: whether it is backed up (to the stack's `backups` bucket) and when base backups run."""

    enabled: bool = True
    # CloudNativePG schedules have six fields, seconds first.
    schedule: str = "0 0 3 * * *"

    @field_validator("schedule")
    @classmethod
    def six_field_cron(cls, schedule: str) -> str:
        if len(schedule.split()) != 6:
            raise ValueError(
                f"schedule '{schedule}' needs six cron fields, seconds first (CloudNativePG's format), "
                "e.g. '0 0 3 * * *' for 03:00 every day"
            )
        return schedule


class DatabaseConfig(CamelModel):
    """One PostgreSQL cluster (CloudNativePG) and the services allowed to use it."""

    name: str = Field(pattern=DNS_LABEL, max_length=40)
    instances: int = Field(default=1, ge=1, le=9)
    storage: VolumeSettings
    wal_storage: Optional[VolumeSettings] = None
    resources: ContainerResources
    parameters: dict[str, str] = Field(default_factory=dict)
    used_by: list[str] = Field(default_factory=list)
    database: Optional[str] = Field(default=None, pattern=PG_IDENTIFIER)  # default: the name, '-' -> '_'
    owner: Optional[str] = Field(default=None, pattern=PG_IDENTIFIER)  # default: the database name
    enable_superuser_access: bool = False
    env_prefix: str = Field(default="DATABASE", pattern=r"^[A-Z][A-Z0-9_]*$")
    backup: DatabaseBackup = DatabaseBackup()

    @field_validator("parameters", mode="before")
    @classmethod
    def parameters_as_strings(cls, parameters: Any) -> Any:
        """YAML reads `max_connections: 200` as a number and `on` as true; PostgreSQL wants the text."""
        if not isinstance(parameters, dict):
            return parameters
        as_text = {True: "on", False: "off"}
        return {
            key: as_text[value] if isinstance(value, bool) else str(value) if isinstance(value, (int, float)) else value
            for key, value in parameters.items()
        }

    @field_validator("parameters")
    @classmethod
    def parameters_not_managed_by_cnpg(cls, parameters: dict[str, str]) -> dict[str, str]:
        fixed = sorted(set(parameters) & CNPG_FIXED_PARAMETERS)
        if fixed:
            raise ValueError(f"{fixed} are managed by CloudNativePG and cannot be set; remove them")
        return parameters

    @property
    def database_name(self) -> str:
        return self.database or self.name.replace("-", "_")

    @property
    def owner_name(self) -> str:
        return self.owner or self.database_name


class BackupCredentials(CamelModel):
    """How the database pods reach the bucket: an IAM role (preferred) or static keys held in secret config."""

    iam_role: bool = False
    role_arn: Optional[str] = Field(default=None, pattern=IAM_ROLE_ARN)  # IRSA: annotates the pods' ServiceAccount
    access_key_id_key: Optional[str] = Field(default=None, pattern=CONFIG_KEY)  # names of secret config keys
    secret_access_key_key: Optional[str] = Field(default=None, pattern=CONFIG_KEY)

    @model_validator(mode="after")
    def one_kind_of_credentials(self) -> "BackupCredentials":
        keys = (self.access_key_id_key, self.secret_access_key_key)
        if self.role_arn and not self.iam_role:
            raise ValueError("'roleArn' is only used with 'iamRole: true'; set iamRole: true or drop roleArn")
        if self.iam_role and any(keys):
            raise ValueError("use either 'iamRole: true' or the static key names, not both")
        if not self.iam_role and not all(keys):
            raise ValueError(
                "set 'iamRole: true' (with 'roleArn' for IRSA), or both 'accessKeyIdKey' and 'secretAccessKeyKey' "
                "(names of secret config keys, set with `pulumi config set --secret`)"
            )
        return self

    @property
    def static_keys(self) -> bool:
        return not self.iam_role


class BackupsConfig(CamelModel):
    """The stack's backup bucket (S3 or S3-compatible), shared by its databases, each under its own path."""

    bucket: str
    region: str = "us-east-1"
    endpoint: Optional[str] = Field(default=None, pattern=r"^https?://[^/\s]+/?$")  # as the database pods reach it
    admin_endpoint: Optional[str] = Field(default=None, pattern=r"^https?://[^/\s]+/?$")  # as `pulumi up` reaches it
    retention_days: int = Field(default=30, ge=1, le=3650)
    compression: Literal["gzip", "bzip2", "lz4", "snappy"] = "gzip"
    encryption: Literal["AES256", "aws:kms"] = "AES256"
    credentials: BackupCredentials

    @field_validator("bucket")
    @classmethod
    def valid_bucket_name(cls, bucket: str) -> str:
        from components.backup_bucket import bucket_name_problems  # the bucket's own rules, in one place

        problems = bucket_name_problems(bucket)
        if problems:
            raise ValueError("; ".join(problems).replace("bucket_name ", "bucket "))
        return bucket

    @model_validator(mode="after")
    def aws_region_without_endpoint(self) -> "BackupsConfig":
        # Without an endpoint the bucket is on AWS, which knows only its own region names (MinIO takes any).
        if self.endpoint is None and not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", self.region):
            raise ValueError(f"region '{self.region}' is not an AWS region name like 'eu-west-1'")
        return self


class CnpgSettings(CamelModel):
    """Where the CloudNativePG operator runs, and how database pods reach the Kubernetes API (they must)."""

    operator_namespace: str = Field(default="cnpg-system", pattern=DNS_LABEL)
    api_server_cidrs: list[str] = Field(default_factory=list)
    api_server_ports: list[int] = Field(default_factory=lambda: [443, 6443], min_length=1)

    @field_validator("api_server_cidrs")
    @classmethod
    def cidrs_are_valid(cls, cidrs: list[str]) -> list[str]:
        bad = []
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                bad.append(cidr)
        if bad:
            raise ValueError(f"{bad} are not CIDRs like '10.96.0.1/32'")
        return cidrs


# --- the way in (Gateway API or Ingress, cert-manager), monitoring and local add-ons --------------------------

HOSTNAME = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Gateway API's Duration (GEP-2257), as its CRDs validate it: 1 to 4 numbers with h, m, s or ms.
GATEWAY_DURATION = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"
PROMETHEUS_DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
PROMETHEUS_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
ACME_PRODUCTION_EXAMPLE = "https://acme-v02.api.letsencrypt.org/directory"


def gateway_duration_ms(duration: str) -> int:
    """A Gateway API duration ("1m30s") in milliseconds."""
    unit_ms = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}
    return sum(int(number) * unit_ms[unit] for number, unit in re.findall(r"([0-9]+)(ms|h|m|s)", duration))


def _bad_labels(labels: dict[str, str]) -> list[str]:
    return [
        f"{key}={value}"
        for key, value in labels.items()
        if not re.match(LABEL_KEY, key) or len(key.rsplit("/", 1)[-1]) > 63 or not re.match(LABEL_VALUE, value) or len(value) > 63
    ]


class CertificateIssuer(CamelModel):
    """Where the public certificates come from: a local CA (self-signed root) or an ACME server (Let's Encrypt)."""

    kind: Literal["selfSigned", "acme"]
    server: Optional[str] = Field(default=None, pattern=r"^https://\S+$")  # the ACME directory URL
    email: Optional[str] = Field(default=None, pattern=EMAIL)  # the ACME account contact (expiry warnings)

    @model_validator(mode="after")
    def acme_needs_server_and_email(self) -> "CertificateIssuer":
        if self.kind == "acme":
            hints = {
                "server": f"server (the ACME directory URL, e.g. {ACME_PRODUCTION_EXAMPLE})",
                "email": "email (the account contact the CA writes to about expiring certificates)",
            }
            missing = [hints[key] for key, value in (("server", self.server), ("email", self.email)) if not value]
            if missing:
                raise ValueError(f"issuer kind 'acme' needs {' and '.join(missing)}")
        elif self.server or self.email:
            raise ValueError("issuer kind 'selfSigned' takes no 'server' or 'email' (those are for 'acme'); remove them")
        return self

    @property
    def is_acme_staging(self) -> bool:
        """An ACME staging directory (Let's Encrypt's and most others' have 'staging' in the URL): untrusted certs."""
        return self.kind == "acme" and "staging" in (self.server or "")


class RouteTimeouts(CamelModel):
    """HTTPRoute rule timeouts (Gateway API standard channel): the request limits every route gets."""

    request: str = Field(default="30s", pattern=GATEWAY_DURATION)  # the whole request, client to response
    backend_request: str = Field(default="15s", pattern=GATEWAY_DURATION)  # one try at the backend

    @model_validator(mode="after")
    def backend_within_request(self) -> "RouteTimeouts":
        # The CRD enforces this with a CEL rule, which offline schema validation does not run.
        if gateway_duration_ms(self.backend_request) > gateway_duration_ms(self.request):
            raise ValueError(f"backendRequest ({self.backend_request}) is longer than request ({self.request}); it must fit inside it")
        return self


class PathRoute(CamelModel):
    path: str = Field(pattern=r"^/[A-Za-z0-9/_.~%!$&'()*+,;=:@-]*$", max_length=1024)
    service: str = Field(pattern=DNS_LABEL)

    @field_validator("path")
    @classmethod
    def normalized_path(cls, path: str) -> str:
        if "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
            raise ValueError(f"path '{path}' is not normalized ('//', '/./' or '/../'); write it as clients see it, e.g. '/api'")
        return path


class PublicHost(CamelModel):
    host: str = Field(pattern=HOSTNAME, max_length=253)  # no wildcards: HTTP-01 cannot issue them
    tls_secret_name: Optional[str] = Field(default=None, pattern=DNS_LABEL, max_length=63)
    routes: list[PathRoute] = Field(min_length=1)

    @model_validator(mode="after")
    def paths_unique(self) -> "PublicHost":
        paths = [route.path.rstrip("/") or "/" for route in self.routes]
        duplicates = sorted({path for path in paths if paths.count(path) > 1})
        if duplicates:
            raise ValueError(f"host '{self.host}' routes {duplicates} more than once; each path goes to one service")
        return self

    @property
    def slug(self) -> str:
        """The host as a DNS label, for object and listener names: www.example.com -> www-example-com."""
        return self.host.replace(".", "-")[:52].rstrip("-")

    @property
    def secret_name(self) -> str:
        return self.tls_secret_name or f"{self.slug}-tls"


class IngressConfig(CamelModel):
    """The public way in: Gateway API (default) or an Ingress, TLS from cert-manager, always."""

    mode: Literal["gateway", "ingress"] = "gateway"
    gateway_class_name: Optional[str] = Field(default=None, pattern=DNS_LABEL)
    ingress_class_name: Optional[str] = Field(default=None, pattern=DNS_LABEL)
    controller_namespace: str = Field(pattern=DNS_LABEL)  # where the gateway/ingress controller's proxies run
    controller_pod_labels: dict[str, str] = Field(default_factory=dict)  # narrows it to the proxy pods
    issuer: CertificateIssuer
    timeouts: RouteTimeouts = RouteTimeouts()
    annotations: dict[str, str] = Field(default_factory=dict)  # ingress mode: the controller's own limits
    hosts: list[PublicHost] = Field(min_length=1)

    @model_validator(mode="after")
    def fits_the_mode(self) -> "IngressConfig":
        problems = []
        if self.mode == "gateway":
            if not self.gateway_class_name:
                problems.append("mode 'gateway' needs 'gatewayClassName' (the GatewayClass of your controller, e.g. 'eg' for Envoy Gateway)")
            if self.annotations:
                problems.append("'annotations' are for mode 'ingress'; a Gateway's request limits are 'timeouts'")
        else:
            if not self.ingress_class_name:
                problems.append("mode 'ingress' needs 'ingressClassName' (the IngressClass of your controller, e.g. 'traefik')")
            if "timeouts" in self.model_fields_set:
                problems.append("'timeouts' are HTTPRoute fields (mode 'gateway'); in mode 'ingress' set your controller's annotations")
        hosts = [host.host for host in self.hosts]
        duplicates = sorted({host for host in hosts if hosts.count(host) > 1})
        if duplicates:
            problems.append(f"hosts {duplicates} appear more than once; list each host once with all its routes")
        slugs = [host.slug for host in self.hosts]
        if not duplicates and len(set(slugs)) != len(slugs):
            problems.append(f"hosts {hosts} give the same object name once dots become dashes; rename one")
        secrets = [host.secret_name for host in self.hosts]
        if len(set(secrets)) != len(secrets):
            problems.append(f"two hosts share a tlsSecretName ({sorted({s for s in secrets if secrets.count(s) > 1})}); each certificate needs its own Secret")
        bad = _bad_labels(self.controller_pod_labels)
        if bad:
            problems.append(f"controllerPodLabels {bad} are not valid Kubernetes labels")
        bad_keys = [key for key in self.annotations if not re.match(LABEL_KEY, key)]
        if bad_keys:
            problems.append(f"annotations {bad_keys} are not valid annotation keys")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class SloTargets(CamelModel):
    """Service level objectives every service with metrics is alerted on (error budget burn rates)."""

    availability_percent: float = Field(default=99.9, ge=90, lt=100)  # requests that are not 5xx
    latency_percent: float = Field(default=99.0, ge=50, lt=100)  # requests faster than latencySeconds
    latency_seconds: float = Field(default=0.5, gt=0, le=60)  # must be a bucket boundary of the histogram


class HttpMetricNames(CamelModel):
    """What the services call their HTTP metrics (the Prometheus client libraries' usual names by default)."""

    requests_total: str = Field(default="http_requests_total", pattern=METRIC_NAME)
    duration_bucket: str = Field(default="http_request_duration_seconds_bucket", pattern=METRIC_NAME)
    status_label: str = Field(default="code", pattern=PROMETHEUS_LABEL_NAME)


class DatabaseAlertThresholds(CamelModel):
    replication_lag_seconds: int = Field(default=30, ge=1)
    backup_max_age_hours: int = Field(default=26, ge=1)  # a daily backup plus slack
    storage_free_percent: int = Field(default=15, ge=1, le=50)


class MonitoringConfig(CamelModel):
    """Where Prometheus runs and how it finds what to scrape (kube-prometheus-stack's defaults unless set)."""

    namespace: str = Field(default="monitoring", pattern=DNS_LABEL)
    prometheus_pod_labels: dict[str, str] = Field(default_factory=lambda: {"app.kubernetes.io/name": "prometheus"})
    # kube-prometheus-stack selects ServiceMonitors, PodMonitors and PrometheusRules by `release: <release name>`.
    selector_labels: dict[str, str] = Field(default_factory=lambda: {"release": "kube-prometheus-stack"}, min_length=1)
    runbook_url_template: str = Field(default="https://runbooks.example.com/{alert}", pattern=r"^https://\S+$")
    scrape_interval: str = Field(default="30s", pattern=PROMETHEUS_DURATION)
    slo: SloTargets = SloTargets()
    http_metrics: HttpMetricNames = HttpMetricNames()
    databases: DatabaseAlertThresholds = DatabaseAlertThresholds()

    @field_validator("runbook_url_template")
    @classmethod
    def only_the_alert_placeholder(cls, template: str) -> str:
        import string

        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as error:  # a lone '{' or '}'
            raise ValueError(
                f"runbookUrlTemplate is not a template ({error}); write braces only around the placeholder: '{{alert}}'"
            ) from None
        fields = {name for _, name, _, _ in parsed if name is not None}
        if fields != {"alert"}:
            raise ValueError(f"runbookUrlTemplate needs exactly the placeholder '{{alert}}' (found {sorted(fields) or 'none'}), e.g. 'https://runbooks.example.com/{{alert}}'")
        # '{alert:d}' would fail when the alerts are written, '{alert!r}' or '{alert:>30}' put quotes or spaces in the URL.
        if any(spec or conversion for _, name, spec, conversion in parsed if name is not None):
            raise ValueError(
                "runbookUrlTemplate: write the placeholder as '{alert}', without a conversion ('!r') or format spec (':...')"
            )
        return template

    @field_validator("prometheus_pod_labels", "selector_labels")
    @classmethod
    def valid_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        bad = _bad_labels(labels)
        if bad:
            raise ValueError(f"{bad} are not valid Kubernetes labels")
        return labels

    def runbook_url(self, alert: str) -> str:
        return self.runbook_url_template.format(alert=alert)


class PodSecurity(CamelModel):
    """The Pod Security Standards version the namespace's admission pins (its `pod-security.kubernetes.io/*-version`
    labels). Unset: no pin, the cluster's default (latest unless the cluster is configured otherwise)."""

    version: str = Field(pattern=r"^(latest|v1\.([0-9]|[1-9][0-9]*))$")


class AddonsConfig(CamelModel):
    """Cluster add-ons the program installs with Helm (local clusters only; staging and prod bring their own)."""

    cert_manager: bool = False
    cnpg: bool = False  # the CloudNativePG operator and its Barman Cloud plugin
    gateway_controller: bool = False  # Envoy Gateway and its GatewayClass
    kube_prometheus_stack: bool = False

    @property
    def any(self) -> bool:
        return self.cert_manager or self.cnpg or self.gateway_controller or self.kube_prometheus_stack


class StackConfig(CamelModel):
    environment: Environment
    kubernetes: KubernetesTarget
    namespace: str = Field(pattern=DNS_LABEL, max_length=63)
    image_registry: str = Field(min_length=1)
    quota: NamespaceQuota
    container_defaults: ContainerDefaults
    services: list[ServiceConfig] = Field(min_length=1)
    databases: list[DatabaseConfig] = Field(default_factory=list)
    backups: Optional[BackupsConfig] = None  # None: no backups (an error in prod, see _data_safety_problems)
    cnpg: CnpgSettings = CnpgSettings()
    ingress: Optional[IngressConfig] = None  # None: nothing public
    monitoring: MonitoringConfig = MonitoringConfig()
    addons: AddonsConfig = AddonsConfig()
    pod_security: Optional[PodSecurity] = None

    @field_validator("namespace")
    @classmethod
    def not_a_system_namespace(cls, namespace: str) -> str:
        if namespace == "default" or namespace.startswith("kube-"):
            raise ValueError(f"'{namespace}' is shared with the cluster; choose a namespace of the platform's own")
        return namespace

    @field_validator("image_registry")
    @classmethod
    def registry_without_trailing_slash(cls, registry: str) -> str:
        return registry.rstrip("/")

    @model_validator(mode="after")
    def services_fit_the_environment(self) -> "StackConfig":
        problems = []
        names = [service.name for service in self.services]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(f"service names must be unique; {duplicates} appear more than once")
        minimum = MIN_REPLICAS[self.environment]
        for service in self.services:
            unknown = sorted(set(service.calls) - set(names))
            if unknown:
                problems.append(f"service '{service.name}' calls {unknown}, which no service in this stack is named")
            if service.min_replicas < minimum:
                problems.append(
                    f"service '{service.name}' runs {service.min_replicas} replica(s); {self.environment.value} "
                    f"needs at least {minimum} (raise 'replicas' or 'autoscaling.minReplicas')"
                )
            if self.environment is Environment.PROD and service.autoscaling is None:
                problems.append(f"service '{service.name}' needs 'autoscaling' in prod (minReplicas >= 3)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def databases_fit_the_services(self) -> "StackConfig":
        problems = []
        names = [database.name for database in self.databases]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            problems.append(f"database names must be unique; {duplicates} appear more than once")
        services = {service.name for service in self.services}
        for index, database in enumerate(self.databases):
            where = f"databases[{index}]"
            unknown = sorted(set(database.used_by) - services)
            if unknown:
                problems.append(f"{where}.usedBy: database '{database.name}' is used by {unknown}, which no service in this stack is named")
            if database.name in services:
                # CloudNativePG names a ServiceAccount and a PodDisruptionBudget after the cluster.
                problems.append(f"{where}.name: '{database.name}' is also a service's name; the database's objects would collide with the service's, rename one")
        for service in self.services:
            used = self.databases_used_by(service.name)
            prefixes = [database.env_prefix for database in used]
            clashing = sorted({prefix for prefix in prefixes if prefixes.count(prefix) > 1})
            if clashing:
                problems.append(
                    f"service '{service.name}' uses databases {[d.name for d in used]} with the same envPrefix {clashing}; "
                    "give each database its own 'envPrefix' (e.g. ORDERS_DATABASE)"
                )
            injected = {f"{database.env_prefix}_{suffix}" for database in used for suffix in DATABASE_ENV_SUFFIXES}
            overlap = sorted(injected & (set(service.env) | set(service.secret_env)))
            if overlap:
                problems.append(f"service '{service.name}' sets {overlap} itself, but they come from its database; remove them from 'env'/'secretEnv'")
        if self.databases and not self.cnpg.api_server_cidrs:
            problems.append(
                "cnpg.apiServerCidrs: database pods must reach the Kubernetes API server (CloudNativePG's instance manager "
                "talks to it) and the namespace denies egress by default; set the API server's addresses, e.g. "
                "`kubectl get endpoints kubernetes -n default` and the 'kubernetes' Service IP, as CIDRs"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def databases_used_by(self, service_name: str) -> list[DatabaseConfig]:
        return [database for database in self.databases if service_name in database.used_by]

    def backs_up(self, database: DatabaseConfig) -> bool:
        """A database is backed up when the stack has a bucket and the database does not opt out."""
        return self.backups is not None and database.backup.enabled

    def image_for(self, service: ServiceConfig) -> str:
        """A service's image as pulled: its own registry if the image names one, else the stack's registry."""
        first_segment = service.image.split("/", 1)[0]
        names_a_registry = "/" in service.image and ("." in first_segment or ":" in first_segment or first_segment == "localhost")
        return service.image if names_a_registry else f"{self.image_registry}/{service.image}"


class ConfigError(Exception):
    """Every problem of one stack's config, each with where it is and how to fix it."""

    def __init__(self, stack_file: str, problems: list[str]):
        self.stack_file = stack_file
        self.problems = problems
        lines = [f"{stack_file} has {len(problems)} configuration problem(s):"]
        lines += [f"  - {problem}" for problem in problems]
        super().__init__("\n".join(lines))


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key_segment(part: Any, first: bool = False) -> str:
    """One step of a key path in `pulumi config set --path` syntax: .name, [0], or ["odd key"] (dots, spaces, ...)."""
    if isinstance(part, int):
        return f"[{part}]"
    if _PLAIN_KEY.fullmatch(str(part)):
        return str(part) if first else f".{part}"
    return f"[{json.dumps(str(part))}]"


def _key_path(location: tuple[Any, ...]) -> str:
    return "".join(_key_segment(part, first=index == 0) for index, part in enumerate(location))


def _describe(error: dict[str, Any], project: str, stack: str) -> str:
    path = _key_path(error["loc"])
    where = f"{project}:{path}" if path else f"{project}:<config>"
    if error["type"] == "missing":
        path_flag = " --path" if ("." in path or "[" in path) else ""
        return f"{where}: missing. Set it with `pulumi config set --stack {stack}{path_flag} '{path}' <value>`"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key; remove it or fix its spelling (README, 'Stack config', lists the keys)"
    value = error.get("input")
    name = next((part for part in reversed(error["loc"]) if isinstance(part, str)), "")
    if isinstance(value, (dict, list)):
        shown = ""
    elif (isinstance(value, str) and secret_shape(value)) or (is_secret_name(name) and value not in (None, "")):
        shown = " (the value is not shown: it looks like a secret)"  # config errors end up in CI logs
    else:
        shown = f" (got {value!r})"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}{shown}"


def _secret_keys_in(raw: dict[str, Any]) -> dict[str, str]:
    """The secret config keys named by the (possibly invalid) raw config, with what each is for.

    Read from the raw values rather than the model so that secret problems are reported together with
    every other problem, even when the rest of the config does not validate.
    """
    needed: dict[str, str] = {}
    kubernetes = raw.get("kubernetes")
    kubeconfig_key = kubernetes.get("kubeconfigSecretKey") if isinstance(kubernetes, dict) else None
    if isinstance(kubeconfig_key, str) and re.match(CONFIG_KEY, kubeconfig_key):  # else pydantic reports the name
        needed[kubeconfig_key] = "the kubeconfig of the target cluster"
    services = raw.get("services")
    for service in services if isinstance(services, list) else []:
        secret_env = service.get("secretEnv") if isinstance(service, dict) else None
        for env_name, key in secret_env.items() if isinstance(secret_env, dict) else []:
            if isinstance(key, str) and re.match(CONFIG_KEY, key):
                needed[key] = f"secret env {env_name} of service '{service.get('name')}'"
    backups = raw.get("backups")
    credentials = backups.get("credentials") if isinstance(backups, dict) else None
    for field, purpose in (("accessKeyIdKey", "access key id"), ("secretAccessKeyKey", "secret access key")):
        key = credentials.get(field) if isinstance(credentials, dict) else None
        if isinstance(key, str) and re.match(CONFIG_KEY, key):
            needed[key] = f"the {purpose} of the database backup bucket (backups.credentials.{field})"
    return needed


def _data_safety_problems(raw: dict[str, Any], project: str, stack: str) -> list[str]:
    """Databases the environment would not survive losing: too few instances, no backups.

    Read from the raw values (like the secret keys) so these are reported with every other problem.
    """
    environment = raw.get("environment")
    if not isinstance(environment, str) or environment not in {env.value for env in Environment}:
        return []  # a list or mapping is unhashable; pydantic reports the bad value
    minimum = MIN_REPLICAS[Environment(environment)]
    databases = raw.get("databases")
    databases = [d for d in databases if isinstance(d, dict)] if isinstance(databases, list) else []
    problems = []
    for index, database in enumerate(databases):
        name, instances = database.get("name"), database.get("instances", 1)
        if isinstance(instances, int) and not isinstance(instances, bool) and instances < minimum:
            problems.append(
                f"{project}:databases[{index}].instances: database '{name}' runs {instances} instance(s); {environment} "
                f"needs at least {minimum} so a failover keeps a replica. "
                f"Fix: `pulumi config set --stack {stack} --path 'databases[{index}].instances' {minimum}`"
            )
        backup = database.get("backup")
        if environment == Environment.PROD.value and isinstance(backup, dict) and backup.get("enabled") is False:
            problems.append(
                f"{project}:databases[{index}].backup.enabled: database '{name}' is not backed up; prod databases "
                "must be. Remove 'enabled: false' (backups then go to the stack's 'backups' bucket)"
            )
    if environment == Environment.PROD.value and databases and not isinstance(raw.get("backups"), dict):
        problems.append(
            f"{project}:backups: missing; prod databases must be backed up. Add 'backups' (bucket, region, "
            "retentionDays, credentials) to the stack file: README, 'Databases'"
        )
    return problems


def _prod_image_problems(raw: dict[str, Any], project: str, stack: str) -> list[str]:
    """Prod pins images by digest: the pack's workload-image-pinned requires it there (policies/config/prod.json,
    requireDigest), so a tag that loads elsewhere is refused here rather than by the pack after registration.

    Read from the raw values (like the secret keys) so these are reported with every other problem; images without
    a tag or with `latest` are reported by the model already.
    """
    if raw.get("environment") != Environment.PROD.value or not isinstance(raw.get("services"), list):
        return []
    problems = []
    for index, service in enumerate(raw["services"]):
        image = service.get("image") if isinstance(service, dict) else None
        if not isinstance(image, str) or DIGEST.search(image) or image_tag(image) in (None, "latest"):
            continue
        name = image.rsplit(":", 1)[0]
        problems.append(
            f"{project}:services[{index}].image: '{image}' is pinned by tag; prod pins images by digest (the policy "
            f"pack requires it there). Fix: `pulumi config set --stack {stack} --path 'services[{index}].image' "
            f"'{name}@sha256:<digest>'` (the digest: `docker buildx imagetools inspect {image}`)"
        )
    return problems


def _secret_problems(needed: dict[str, str], project: str, stack: str, read_value, is_secret) -> list[str]:
    problems = []
    for key, purpose in needed.items():
        fix = f"pulumi config set --secret --stack {stack} {key} <value>"
        if read_value(key) is None:
            problems.append(f"{project}:{key}: missing ({purpose}). Set it encrypted: `{fix}`")
        elif not is_secret(key):
            problems.append(
                f"{project}:{key}: stored in plaintext in Pulumi.{stack}.yaml, but it is {purpose}. "
                f"Remove it from the file and set it encrypted: `{fix}`"
            )
    return problems


def _suggested_secret_key(service_name: Any, env_name: str) -> str:
    """A config key for a secret env value, in the stack files' style: web + SESSION_KEY -> web-session-key."""
    prefix = service_name if isinstance(service_name, str) and re.match(DNS_LABEL, service_name) else "service"
    suffix = re.sub(r"[^a-z0-9]+", "-", env_name.lower()).strip("-") or "secret"
    return f"{prefix}-{suffix}"


def _env_path(index: int, env_name: str) -> str:
    return _key_path(("services", index, "env", env_name))


def _string_leaves(value: Any, location: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """(location, text) of every string in a raw config value, mapping keys not included."""
    if isinstance(value, str):
        return [(location, value)]
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _string_leaves(item, location + (key,))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _string_leaves(item, location + (index,))]
    return []


def _plaintext_secret_problems(raw: dict[str, Any], project: str, stack: str) -> list[str]:
    """Plain config values the policy pack would call secrets, with the same detectors (policies/secret_detectors.py).

    A service's `env` goes to its ConfigMap and is judged like ConfigMap data: by name, by shape, and each line
    of a multi-line value. Every other string of the config is judged by shape, as the pack judges labels and
    annotations (monitoring.selectorLabels, ingress.annotations and backups.credentials.roleArn become some): a
    credential has no place in plain config anyway (a URL with user:password as backups.endpoint). The value
    itself is never repeated (config errors end up in CI logs). Read from the raw values (like the secret keys)
    so these are reported with every other problem.
    """
    problems = []
    services = raw.get("services")
    for index, service in enumerate(services if isinstance(services, list) else []):
        env = service.get("env") if isinstance(service, dict) else None
        for env_name, value in env.items() if isinstance(env, dict) else []:
            reason = judge_text(env_name, value) if isinstance(value, str) else None
            if reason:
                key = _suggested_secret_key(service.get("name"), env_name)
                problems.append(
                    f"{project}:{_env_path(index, env_name)}: {reason}; a plain 'env' value is stored in plaintext in "
                    f"Pulumi.{stack}.yaml and in the service's ConfigMap. Set it encrypted: "
                    f"`pulumi config set --secret --stack {stack} {key} <value>`, then move {env_name} from 'env' to "
                    f"'secretEnv' ({env_name}: {key}), which mounts it from a Secret"
                )
    for location, text in _string_leaves(raw, ()):
        if location[:1] == ("services",) and location[2:3] == ("env",):
            continue  # judged above, by name as well
        shape = secret_shape(text)
        if shape:
            where = (
                "it becomes a label or annotation, which anyone who can list the object reads"
                if location[-2:-1] in (("selectorLabels",), ("annotations",)) or location[-1:] == ("roleArn",)
                else f"plain config is stored in plaintext in Pulumi.{stack}.yaml"
            )
            problems.append(
                f"{project}:{_key_path(location)}: looks like {shape}; {where}. Remove it: a credential belongs in "
                f"encrypted config (`pulumi config set --secret --stack {stack} <key> <value>`), which a service "
                "reads through 'secretEnv'"
            )
    return problems


def _edge_problems(raw: dict[str, Any], project: str, stack: str) -> list[str]:
    """What ties the way in and the add-ons to the rest of the stack: routes to unknown services, certificates
    browsers would not trust in prod, add-ons outside the local stack.

    Read from the raw values (like the secret keys) so these are reported with every other problem.
    """
    problems = []
    environment = raw.get("environment")
    services = raw.get("services")
    names = sorted({s.get("name") for s in services if isinstance(s, dict) and isinstance(s.get("name"), str)}) if isinstance(services, list) else []
    ingress = raw.get("ingress") if isinstance(raw.get("ingress"), dict) else {}
    hosts = ingress.get("hosts") if isinstance(ingress.get("hosts"), list) else []
    for i, host in enumerate(hosts):
        routes = host.get("routes") if isinstance(host, dict) and isinstance(host.get("routes"), list) else []
        for j, route in enumerate(routes):
            service = route.get("service") if isinstance(route, dict) else None
            if isinstance(service, str) and names and service not in names:
                problems.append(
                    f"{project}:ingress.hosts[{i}].routes[{j}].service: '{service}' is not a service of this stack; "
                    f"route to one of {names}"
                )
    issuer = ingress.get("issuer") if isinstance(ingress.get("issuer"), dict) else {}
    if environment == Environment.PROD.value and issuer:
        if issuer.get("kind") == "selfSigned":
            problems.append(
                f"{project}:ingress.issuer.kind: prod serves the public, whose browsers do not trust a local CA; use "
                f"kind: acme with server: {ACME_PRODUCTION_EXAMPLE} and an email"
            )
        elif issuer.get("kind") == "acme" and "staging" in str(issuer.get("server", "")):
            problems.append(
                f"{project}:ingress.issuer.server: '{issuer.get('server')}' is an ACME staging directory, whose "
                f"certificates browsers do not trust; prod uses a production directory, e.g. {ACME_PRODUCTION_EXAMPLE}"
            )
    addons = raw.get("addons") if isinstance(raw.get("addons"), dict) else {}
    enabled = [key for key, value in addons.items() if value is True]
    if enabled and environment in (Environment.STAGING.value, Environment.PROD.value):
        problems.append(
            f"{project}:addons: {enabled} would install cluster-wide operators from this stack; only the local stack "
            f"installs add-ons, {environment} expects its cluster's owners to have installed them (README, 'Cluster "
            f"add-ons'). Remove 'addons' from Pulumi.{stack}.yaml"
        )
    if addons.get("cnpg") is True and addons.get("certManager") is not True:
        problems.append(
            f"{project}:addons.cnpg: the Barman Cloud plugin installed with CloudNativePG gets its TLS certificates "
            "from cert-manager; set addons.certManager: true as well"
        )
    return problems


def load(
    stack: str,
    project: str,
    read_value: Callable[[str], Optional[str]],
    is_secret: Callable[[str], bool],
) -> StackConfig:
    """Builds the StackConfig from raw config values; raises ConfigError listing every problem.

    `read_value(key)` returns the raw string of `<project>:<key>` (None when unset), `is_secret(key)` whether
    it was stored with `--secret`. In the program both come from the Pulumi SDK.
    """
    problems: list[str] = []
    raw: dict[str, Any] = {}
    for key in TOP_LEVEL_KEYS:
        value = read_value(key)
        if value is None:
            continue
        try:
            raw[key] = json.loads(value) if value[:1] in ("{", "[") else value
        except json.JSONDecodeError as error:
            problems.append(f"{project}:{key}: not valid structured config ({error.msg}); check the YAML under it")
    config = None
    try:
        config = StackConfig.model_validate(raw)
    except ValidationError as errors:
        problems += [_describe(error, project, stack) for error in errors.errors()]
    problems += _secret_problems(_secret_keys_in(raw), project, stack, read_value, is_secret)
    problems += _data_safety_problems(raw, project, stack)
    problems += _prod_image_problems(raw, project, stack)
    problems += _edge_problems(raw, project, stack)
    problems += _plaintext_secret_problems(raw, project, stack)
    if problems or config is None:
        raise ConfigError(f"Pulumi.{stack}.yaml", problems)
    return config
