"""What a workload gets from a backing service it uses (a database, a cache): one small interface, so AppService
never learns about each kind.

A backing service component (DatabaseCluster, Cache) provides:
- `connection_env()`: where it is, as plain settings for the workload's ConfigMap (nothing secret);
- `secret_refs()`: its credentials as env read from its own Secret by the kubelet (never a literal in a spec);
- `rollout_secrets()`: the secret values whose change must restart the workload's pods (env from a Secret is read
  when a container starts), folded into the pod template's keyed checksum;
- `client_names`: who may connect (the pods' app.kubernetes.io/name); it opens its NetworkPolicies to them itself;
- `keda_sources()`: its name -> what a KEDA trigger of its users (postgresql, redis) reads it with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pulumi

from components.autoscaling import SecretKey


@dataclass
class SecretRef:
    """An env variable read from a key of a Secret another component owns (e.g. database credentials)."""

    env_name: str
    secret_name: str
    key: str


class BackingService(Protocol):
    def connection_env(self) -> dict[str, str]: ...

    def secret_refs(self) -> list[SecretRef]: ...

    def rollout_secrets(self) -> dict[str, pulumi.Output[str]]: ...

    @property
    def client_names(self) -> list[str]: ...

    def keda_sources(self) -> dict[str, SecretKey]: ...


def connection_env(services: list[BackingService]) -> dict[str, str]:
    return {key: value for service in services for key, value in service.connection_env().items()}


def secret_refs(services: list[BackingService]) -> list[SecretRef]:
    return [ref for service in services for ref in service.secret_refs()]


def keda_sources(services: list[BackingService]) -> dict:
    """Backing service name -> what a KEDA trigger of its users reads it with (components.autoscaling)."""
    return {key: value for service in services for key, value in service.keda_sources().items()}


def rollout_secrets(services: list[BackingService]) -> dict[str, pulumi.Output[str]]:
    return {key: value for service in services for key, value in service.rollout_secrets().items()}
