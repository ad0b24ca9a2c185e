"""Small helpers for tests: running a component alone under the mocks, reading wire-form objects."""

from __future__ import annotations

from typing import Any, Callable

from tools import engine

POD_BEARING_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob")


def register(program: Callable[[], Any], stack: str = "test") -> list[engine.RecordedResource]:
    """Runs a small program (e.g. one component) under the mocks and returns what it registered."""
    resources, _ = engine.run_program(program, project="platform", stack=stack)
    return resources


def unwrap(value: Any) -> Any:
    """Wire form with secrets unwrapped and numbers normalized, for asserting on values."""
    return engine.normalize_numbers(engine.unwrap_secrets(value))


def by_kind(resources: list[engine.RecordedResource], kind: str) -> list[dict[str, Any]]:
    return [unwrap(r.inputs) for r in resources if r.is_kubernetes_object and r.inputs.get("kind") == kind]


def one(resources: list[engine.RecordedResource], kind: str) -> dict[str, Any]:
    objects = by_kind(resources, kind)
    assert len(objects) == 1, f"expected one {kind}, found {len(objects)}"
    return objects[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def secret_leaves(value: Any, inside_secret: bool = False) -> list[tuple[Any, bool]]:
    """Every scalar leaf with whether it sits inside a Pulumi secret."""
    if engine.is_secret(value):
        return secret_leaves(value["value"], True)
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in secret_leaves(item, inside_secret)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in secret_leaves(item, inside_secret)]
    return [(value, inside_secret)]
