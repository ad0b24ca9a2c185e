"""The `quota`, `containerDefaults` and `podSecurity` stack config keys: what components.namespace_baseline sets
on the namespace."""

from __future__ import annotations

from pydantic import Field

from components.config_base import QUANTITY, CamelModel, ComputeAmounts

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


class PodSecurity(CamelModel):
    """The Pod Security Standards version the namespace's admission pins (its `pod-security.kubernetes.io/*-version`
    labels). Unset: no pin, the cluster's default (latest unless the cluster is configured otherwise)."""

    version: str = Field(pattern=r"^(latest|v1\.([0-9]|[1-9][0-9]*))$")
