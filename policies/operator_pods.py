"""The pod an operator really creates from a custom resource's pod template: what the pack must judge.

CloudNativePG (the version components/database_cluster_config.py pins, 1.30) builds a Pooler's Deployment from the
Pooler's `spec.template`, but not as written (pkg/specs/pgbouncer/deployments.go, podspec builder `overwrite=true`):
- the pod's securityContext is replaced by its own (non-root uid 998/gid 996, fsGroup 996, the Cluster's seccomp
  profile, RuntimeDefault unless the Cluster names one);
- the `pgbouncer` container's securityContext is replaced by the one it gives every container it makes (drop ALL,
  no privilege escalation, read-only root filesystem, non-root; built from the Cluster's `spec.securityContext`);
- a `bootstrap-controller` init container is added (it copies the operator's binary into the pod), with that same
  securityContext and the resources of a `bootstrap-controller` init container the template declares, else the
  template's pod-level `resources`, else none (then the namespace's LimitRange default applies, and the quota
  counts it).
So a securityContext in the template is dead configuration, and an init container the template does not size is
invisible in the template. The platform's Clusters set neither `securityContext` nor `seccompProfile`
(tests/policies/test_operator_pods.py), which is what the defaults below assume; `make e2e` compares this model
with the Deployment the real operator creates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The bootstrap container runs the operator's own image, which the operator's installation chooses (its
# OPERATOR_IMAGE_NAME), not the stack: the image rules do not judge it.
OPERATOR_SUPPLIED_IMAGE = "<the operator's image>"
PGBOUNCER_CONTAINER = "pgbouncer"
BOOTSTRAP_CONTAINER = "bootstrap-controller"
POOLER_POD_SECURITY_CONTEXT = {
    "runAsNonRoot": True, "runAsUser": 998, "runAsGroup": 996, "fsGroup": 996, "seccompProfile": {"type": "RuntimeDefault"},
}  # fmt: skip
OPERATOR_CONTAINER_SECURITY_CONTEXT = {
    "seccompProfile": {"type": "RuntimeDefault"}, "capabilities": {"drop": ["ALL"]}, "privileged": False,
    "runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
}  # fmt: skip


def _named(containers: Any, name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The containers as plain dicts, and the one called `name` (appended when missing)."""
    result = [dict(container) for container in containers or () if isinstance(container, Mapping)]
    for container in result:
        if container.get("name") == name:
            return result, container
    result.append({"name": name})
    return result, result[-1]


def _sized(resources: Any) -> bool:
    return isinstance(resources, Mapping) and bool(resources.get("limits") or resources.get("requests"))


def cnpg_pooler_pod_spec(template_spec: Mapping) -> dict[str, Any]:
    """The pod spec of the pods CloudNativePG runs for a Pooler whose `spec.template.spec` is `template_spec`."""
    spec = dict(template_spec)
    spec["securityContext"] = dict(POOLER_POD_SECURITY_CONTEXT)
    containers, pgbouncer = _named(spec.get("containers"), PGBOUNCER_CONTAINER)
    pgbouncer["securityContext"] = dict(OPERATOR_CONTAINER_SECURITY_CONTEXT)
    init_containers, bootstrap = _named(spec.get("initContainers"), BOOTSTRAP_CONTAINER)
    bootstrap["securityContext"] = dict(OPERATOR_CONTAINER_SECURITY_CONTEXT)
    bootstrap["image"] = OPERATOR_SUPPLIED_IMAGE
    if not _sized(bootstrap.get("resources")):
        bootstrap["resources"] = dict(spec["resources"]) if _sized(spec.get("resources")) else {}
    spec["containers"], spec["initContainers"] = containers, init_containers
    return spec


# (API group, kind) -> the pod spec the operator builds from the object's template spec.
OPERATOR_BUILT_PODS = {("postgresql.cnpg.io", "Pooler"): cnpg_pooler_pod_spec}
