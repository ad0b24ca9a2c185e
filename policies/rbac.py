"""RBAC hygiene: no binding to cluster-admin, no wildcard in a Role or ClusterRole.

A wildcard grants whatever the cluster serves, now and later: `resources: ["*"]` includes Secrets and every custom
resource an operator installs next year, `verbs: ["*"]` includes `escalate`, `bind` and `impersonate`. A binding to
cluster-admin grants all of it at once. Each rule is a pure function over the plain object returning messages
that name the field path and the fix; the policies around them are thin.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import ResourceValidationPolicy, Severity

from .pod_security import get, group_and_kind, items

RBAC_GROUP = "rbac.authorization.k8s.io"
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")
ROLE_KINDS = ("Role", "ClusterRole")
CLUSTER_ADMIN = "cluster-admin"
# Fields of a PolicyRule where "*" means everything. resourceNames has no wildcard ("*" there is a literal name).
WILDCARD_FIELDS = ("apiGroups", "resources", "verbs", "nonResourceURLs")


# --- pure checks --------------------------------------------------------------------------------------------


def check_cluster_admin_binding(binding: Any) -> list[str]:
    role_ref = get(binding, "roleRef")
    if get(role_ref, "kind") != "ClusterRole" or get(role_ref, "name") != CLUSTER_ADMIN:
        return []
    scope = "in its namespace" if get(binding, "kind") == "RoleBinding" else "in the whole cluster"
    return [
        f"roleRef is the ClusterRole {CLUSTER_ADMIN}, which grants every verb on every resource {scope}, Secrets and "
        "RBAC included: bind a Role that lists the resources and verbs the subjects need (the stack's `access` "
        "roles view, edit and deployer, README \"Team access\")"
    ]


def wildcard_entries(field: str, values: Any) -> list[str]:
    """The entries of a rule's field that match more than one thing.

    "*" everywhere; in resources also "*/<subresource>" (that subresource of every resource). In nonResourceURLs
    only the bare "*": a trailing "*" there is a prefix ("/healthz/*"), which names what it grants.
    """
    wildcards = []
    for value in items(values):
        if not isinstance(value, str):
            continue
        if value == "*" or (field == "resources" and value.startswith("*/")):
            wildcards.append(value)
    return wildcards


def check_wildcards(role: Any) -> list[str]:
    messages = []
    for index, rule in enumerate(items(get(role, "rules"))):
        for field in WILDCARD_FIELDS:
            for value in wildcard_entries(field, get(rule, field)):
                messages.append(
                    f"rules[{index}].{field} contains {value!r}, which grants whatever the cluster serves now and "
                    f"later (Secrets and escalate/bind/impersonate included): list the {field} this role needs"
                )
    return messages


# --- the policies -------------------------------------------------------------------------------------------


def _is_rbac(args, kinds: tuple[str, ...]) -> bool:
    group, kind = group_and_kind(args.resource_type)
    return group == RBAC_GROUP and kind in kinds


def _validate_cluster_admin_binding(args, report_violation) -> None:
    if _is_rbac(args, BINDING_KINDS):
        for message in check_cluster_admin_binding(args.props):
            report_violation(message)


def _validate_wildcards(args, report_violation) -> None:
    if _is_rbac(args, ROLE_KINDS):
        for message in check_wildcards(args.props):
            report_violation(message)


no_cluster_admin_binding = ResourceValidationPolicy(
    name="rbac-no-cluster-admin-binding",
    description="No RoleBinding or ClusterRoleBinding may grant the ClusterRole cluster-admin.",
    validate=_validate_cluster_admin_binding,
    severity=Severity.CRITICAL,
)
no_wildcards = ResourceValidationPolicy(
    name="rbac-no-wildcards",
    description="Roles and ClusterRoles must list their apiGroups, resources, verbs and nonResourceURLs: no '*'.",
    validate=_validate_wildcards,
    severity=Severity.HIGH,
)
POLICIES: list = [no_cluster_admin_binding, no_wildcards]


def _of_kinds(kinds: tuple[str, ...]):
    def applies(resource_type: str, kind: str | None, api_version: str | None) -> bool:
        return kind is None or kind in kinds

    return applies


# Which resources a policy can report on at all (see policies.pack.APPLIES_TO).
APPLIES_TO: dict = {no_cluster_admin_binding: _of_kinds(BINDING_KINDS), no_wildcards: _of_kinds(ROLE_KINDS)}
