"""The `services[]` stack config key: one components.app_service.AppService each."""

from __future__ import annotations

import re
from typing import Optional

from pydantic import Field, field_validator, model_validator

from components.config_base import CONFIG_KEY, DNS_1035_LABEL, ENV_NAME, CamelModel, ContainerResources, pinned_image


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
    shutdown: Shutdown = Shutdown()
    migrations: Optional[Migrations] = None
    calls: list[str] = Field(default_factory=list)
    metrics: Optional[MetricsEndpoint] = None
    run_as_user: int = Field(default=10001, ge=1)
    run_as_group: int = Field(default=10001, ge=1)

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

    @property
    def min_replicas(self) -> int:
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas
