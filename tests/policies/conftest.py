"""Shared pieces of the policy tests: a fully hardened workload, helpers to mutate it, and an analyzer run."""

from __future__ import annotations

import copy

import pytest

from tools.analyzer import Finding, analyze_manifests

HARDENED_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "runAsGroup": 10001,
                    "fsGroup": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "initContainers": [
                    {
                        "name": "migrate",
                        "image": "ghcr.io/example/web:1.4.2",
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"cpu": "200m", "memory": "128Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
                "containers": [
                    {
                        "name": "web",
                        "image": "ghcr.io/example/web:1.4.2",
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"cpu": "500m", "memory": "256Mi"},
                        },
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                        "readinessProbe": {"tcpSocket": {"port": 8080}},
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }
                ],
                "volumes": [
                    {"name": "tmp", "emptyDir": {}},
                    {"name": "config", "configMap": {"name": "web"}},
                ],
            },
        },
    },
}


def hardened_deployment() -> dict:
    """A fresh copy: tests mutate it."""
    return copy.deepcopy(HARDENED_DEPLOYMENT)


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def container(obj: dict, index: int = 0) -> dict:
    return pod_spec(obj)["containers"][index]


def security_context(obj: dict, index: int = 0) -> dict:
    return container(obj, index).setdefault("securityContext", {})


def run(objects: list[dict], **kwargs) -> list[Finding]:
    return analyze_manifests(objects, **kwargs)


def policies_hit(findings: list[Finding]) -> set[str]:
    return {finding.policy for finding in findings}


@pytest.fixture(autouse=True)
def _no_engine_environment(monkeypatch):
    """The analyzer re-reads these if set; a developer's shell must not change test results."""
    for variable in ("PULUMI_PROJECT", "PULUMI_STACK", "PULUMI_DRY_RUN", "PULUMI_CONFIG"):
        monkeypatch.delenv(variable, raising=False)


def _tokens(path) -> list:
    """"spec.containers[0].securityContext" -> ["spec", "containers", 0, "securityContext"]; tuples pass through."""
    if isinstance(path, tuple):
        return list(path)
    tokens: list = []
    for part in path.split("."):
        name, *indexes = part.replace("]", "").split("[")
        tokens.append(name)
        tokens.extend(int(index) for index in indexes)
    return tokens


def set_field(root: dict, path, value) -> None:
    """Sets a nested field, creating mappings on the way."""
    *parents, last = _tokens(path)
    node = root
    for token in parents:
        node = node[token] if isinstance(token, int) else node.setdefault(token, {})
    node[last] = value


def delete_field(root: dict, path) -> None:
    *parents, last = _tokens(path)
    node = root
    for token in parents:
        node = node[token]
    del node[last]


def template(obj: dict) -> dict:
    """The pod template (metadata + spec) of the hardened Deployment: mutation paths start here."""
    return obj["spec"]["template"]


SET, DEL = "set", "del"


def apply(changes: list, obj: dict, root=lambda obj: obj) -> dict:
    """Applies (SET|DEL, path, value) changes to `root(obj)` (the object itself, or e.g. its pod template)."""
    for op, path, value in changes:
        if op == SET:
            set_field(root(obj), path, value)
        else:
            delete_field(root(obj), path)
    return obj

