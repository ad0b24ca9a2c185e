"""The `services[]` stack config key: one components.app_service.AppService each."""

from __future__ import annotations

import re
from typing import Optional

from pydantic import Field, field_validator, model_validator

from components.config_base import CONFIG_KEY, DIGEST, DNS_1035_LABEL, ENV_NAME, CamelModel, ContainerResources, image_tag

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
