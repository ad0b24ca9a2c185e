"""RBAC policies through the analyzer: a table of passing and failing manifests per rule."""

from __future__ import annotations

import copy

import pytest

from policies import rbac
from tests.policies.conftest import DEL, SET, apply, run

ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "deployments-reader", "namespace": "shop"},
    "rules": [{"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "verbs": ["get", "list", "watch"]}],
}
CLUSTER_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "health-reader"},
    "rules": [{"nonResourceURLs": ["/healthz", "/livez"], "verbs": ["get"]}],
}
ROLE_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "team-reads-deployments", "namespace": "shop"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployments-reader"},
    "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "shop-team"}],
}
CLUSTER_ROLE_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "team-reads-health"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "health-reader"},
    "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "shop-team"}],
}
CLUSTER_ADMIN = [(SET, "roleRef.kind", "ClusterRole"), (SET, "roleRef.name", "cluster-admin")]
RULE = "rules[0]"

# (policy, case id, manifest, changes, must it be reported?, fragment the message names)
CASES = [
    ("rbac-no-cluster-admin-binding", "cluster-wide", CLUSTER_ROLE_BINDING, CLUSTER_ADMIN, True, "in the whole cluster"),
    ("rbac-no-cluster-admin-binding", "in a namespace", ROLE_BINDING, CLUSTER_ADMIN, True, "in its namespace, Secrets and RBAC included"),
    ("rbac-no-cluster-admin-binding", "the built-in view role", ROLE_BINDING, [(SET, "roleRef.kind", "ClusterRole"), (SET, "roleRef.name", "view")], False, None),
    ("rbac-no-cluster-admin-binding", "a namespaced Role that is only named so", ROLE_BINDING, [(SET, "roleRef.name", "cluster-admin")], False, None),
    ("rbac-no-wildcards", "every verb", ROLE, [(SET, f"{RULE}.verbs", ["*"])], True, "rules[0].verbs contains '*'"),
    ("rbac-no-wildcards", "every resource", ROLE, [(SET, f"{RULE}.resources", ["deployments", "*"])], True, "rules[0].resources contains '*'"),
    ("rbac-no-wildcards", "every API group", ROLE, [(SET, f"{RULE}.apiGroups", ["*"])], True, "rules[0].apiGroups contains '*'"),
    ("rbac-no-wildcards", "a subresource of every resource", ROLE, [(SET, f"{RULE}.resources", ["*/scale"])], True, "contains '*/scale'"),
    ("rbac-no-wildcards", "every non-resource URL", CLUSTER_ROLE, [(SET, f"{RULE}.nonResourceURLs", ["*"])], True, "rules[0].nonResourceURLs contains '*'"),
    ("rbac-no-wildcards", "a cluster role's second rule", CLUSTER_ROLE, [(SET, "rules", [*CLUSTER_ROLE["rules"], {"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}])], True, "rules[1].resources"),
    ("rbac-no-wildcards", "a non-resource URL prefix", CLUSTER_ROLE, [(SET, f"{RULE}.nonResourceURLs", ["/healthz/*"])], False, None),
    ("rbac-no-wildcards", "'*' as a resource name is literal", ROLE, [(SET, f"{RULE}.resourceNames", ["*"])], False, None),
    ("rbac-no-wildcards", "a role without rules", ROLE, [(DEL, "rules", None)], False, None),
]  # fmt: skip


def _with(changes: list, manifest: dict) -> dict:
    return apply(changes, copy.deepcopy(manifest))


@pytest.mark.parametrize("manifest", [ROLE, CLUSTER_ROLE, ROLE_BINDING, CLUSTER_ROLE_BINDING], ids=lambda m: m["kind"])
def test_the_unchanged_manifests_pass(manifest):
    assert run([copy.deepcopy(manifest)], policies=rbac.POLICIES) == []


@pytest.mark.parametrize(
    ("policy", "manifest", "changes", "violates", "fragment"),
    [pytest.param(policy, manifest, changes, violates, fragment, id=f"{policy}: {case}") for policy, case, manifest, changes, violates, fragment in CASES],
)
def test_rule(policy, manifest, changes, violates, fragment):
    findings = run([_with(changes, manifest)], policies=rbac.POLICIES)
    messages = [finding.message for finding in findings if finding.policy == policy]
    assert bool(messages) == violates, findings
    if violates:
        assert any(fragment in message for message in messages), messages


def test_each_wildcard_is_reported_once_with_its_place():
    role = _with([(SET, f"{RULE}.verbs", ["*"]), (SET, f"{RULE}.apiGroups", ["*"])], ROLE)
    messages = sorted(finding.message for finding in run([role], policies=rbac.POLICIES))
    assert len(messages) == 2
    assert messages[0].startswith("rules[0].apiGroups contains '*'") and messages[1].startswith("rules[0].verbs contains '*'")


def test_every_rule_has_a_passing_and_a_failing_case():
    covered = {(policy, violates) for policy, _, _, _, violates, _ in CASES}
    for policy in rbac.POLICIES:
        assert (policy.name, True) in covered and (policy.name, False) in covered, policy.name


def test_applicability_leaves_out_only_what_a_policy_cannot_report():
    assert rbac.APPLIES_TO[rbac.no_cluster_admin_binding]("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "ClusterRoleBinding", "rbac.authorization.k8s.io/v1")
    assert not rbac.APPLIES_TO[rbac.no_cluster_admin_binding]("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "ClusterRole", "rbac.authorization.k8s.io/v1")
    assert rbac.APPLIES_TO[rbac.no_wildcards]("kubernetes:rbac.authorization.k8s.io/v1:Role", "Role", "rbac.authorization.k8s.io/v1")
    assert not rbac.APPLIES_TO[rbac.no_wildcards]("kubernetes:core/v1:Secret", "Secret", "v1")
    # Kind not readable as a plain string (a secret, an unknown value): the policy must run.
    assert rbac.APPLIES_TO[rbac.no_wildcards]("kubernetes:rbac.authorization.k8s.io/v1:Role", None, None)
