"""Stack configuration: read once from Pulumi config, validated by pydantic, handed to the components.

`load(stack, project, read_value, is_secret)` returns a `StackConfig` or raises `ConfigError` with every
problem at once, each naming the stack file, the key path and the fix. Nothing here touches resources,
so a bad stack file stops the program before anything is registered.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Any, Callable, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
CONFIG_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

# Top-level keys of the `platform:` namespace, in the order the docs list them.
TOP_LEVEL_KEYS = ("environment", "kubernetes", "namespace", "imageRegistry", "quota", "containerDefaults", "services")


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
    """Which cluster: a kubeconfig context on this machine, or a kubeconfig held in secret config."""

    context: Optional[str] = None
    kubeconfig_secret_key: Optional[str] = Field(default=None, pattern=CONFIG_KEY)

    @model_validator(mode="after")
    def exactly_one_source(self) -> "KubernetesTarget":
        if (self.context is None) == (self.kubeconfig_secret_key is None):
            raise ValueError(
                "set exactly one of 'context' (a kubeconfig context, e.g. kind-platform) or "
                "'kubeconfigSecretKey' (the name of a secret config key holding a kubeconfig)"
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
    name: str = Field(pattern=DNS_LABEL, max_length=40)
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
        last_segment = image.rsplit("/", 1)[-1]
        if ":" not in last_segment:
            raise ValueError(f"image '{image}' has no tag; pin a version, e.g. '{image}:1.2.3' or '{image}@sha256:<digest>'")
        tag = last_segment.rsplit(":", 1)[1]
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


class StackConfig(CamelModel):
    environment: Environment
    kubernetes: KubernetesTarget
    namespace: str = Field(pattern=DNS_LABEL, max_length=63)
    image_registry: str = Field(min_length=1)
    quota: NamespaceQuota
    container_defaults: ContainerDefaults
    services: list[ServiceConfig] = Field(min_length=1)

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


def _key_path(location: tuple[Any, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _describe(error: dict[str, Any], project: str, stack: str) -> str:
    path = _key_path(error["loc"])
    where = f"{project}:{path}" if path else f"{project}:<config>"
    if error["type"] == "missing":
        path_flag = " --path" if ("." in path or "[" in path) else ""
        return f"{where}: missing. Set it with `pulumi config set --stack {stack}{path_flag} '{path}' <value>`"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key; remove it or fix its spelling (README, 'Stack config', lists the keys)"
    value = error.get("input")
    shown = "" if isinstance(value, (dict, list)) else f" (got {value!r})"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}{shown}"


def _secret_keys_in(raw: dict[str, Any]) -> dict[str, str]:
    """The secret config keys named by the (possibly invalid) raw config, with what each is for.

    Read from the raw values rather than the model so that secret problems are reported together with
    every other problem, even when the rest of the config does not validate.
    """
    needed: dict[str, str] = {}
    kubernetes = raw.get("kubernetes")
    if isinstance(kubernetes, dict) and isinstance(kubernetes.get("kubeconfigSecretKey"), str):
        needed[kubernetes["kubeconfigSecretKey"]] = "the kubeconfig of the target cluster"
    services = raw.get("services")
    for service in services if isinstance(services, list) else []:
        secret_env = service.get("secretEnv") if isinstance(service, dict) else None
        for env_name, key in secret_env.items() if isinstance(secret_env, dict) else []:
            if isinstance(key, str) and re.match(CONFIG_KEY, key):
                needed[key] = f"secret env {env_name} of service '{service.get('name')}'"
    return needed


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
    if problems or config is None:
        raise ConfigError(f"Pulumi.{stack}.yaml", problems)
    return config
