"""NamespaceBaseline on its own: restricted admission, default-deny with DNS, quota and container defaults."""

from __future__ import annotations

import pytest

from components.namespace_baseline import NamespaceBaseline, NamespaceBaselineArgs
from components.namespace_baseline_config import ContainerDefaults, NamespaceQuota
from tests.helpers import one, register

QUOTA = NamespaceQuota(requestsCpu="2", requestsMemory="4Gi", limitsCpu="4", limitsMemory="8Gi", pods=20)
DEFAULTS = ContainerDefaults(
    defaultRequest={"cpu": "50m", "memory": "64Mi"},
    defaultLimit={"cpu": "250m", "memory": "256Mi"},
    max={"cpu": "1", "memory": "1Gi"},
)


@pytest.fixture(scope="module")
def baseline():
    return register(lambda: NamespaceBaseline("baseline", NamespaceBaselineArgs("apps", QUOTA, DEFAULTS)))


def test_namespace_enforces_the_restricted_standard_at_no_pinned_version_by_default(baseline):
    labels = one(baseline, "Namespace")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert f"pod-security.kubernetes.io/{mode}-version" not in labels
    assert one(baseline, "Namespace")["metadata"]["name"] == "apps"


def test_a_stack_can_pin_the_pod_security_version():
    pinned = register(lambda: NamespaceBaseline("baseline", NamespaceBaselineArgs("apps", QUOTA, DEFAULTS, pod_security_version="v1.30")))
    labels = one(pinned, "Namespace")["metadata"]["labels"]
    assert all(labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.30" for mode in ("enforce", "audit", "warn"))


def test_default_deny_both_ways_except_dns(baseline):
    policy = one(baseline, "NetworkPolicy")
    assert policy["metadata"]["namespace"] == "apps"
    spec = policy["spec"]
    assert spec["podSelector"] == {}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in spec
    (dns,) = spec["egress"]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}


def test_quota_and_limit_range_come_from_args(baseline):
    assert one(baseline, "ResourceQuota")["spec"]["hard"] == {
        "requests.cpu": "2",
        "requests.memory": "4Gi",
        "limits.cpu": "4",
        "limits.memory": "8Gi",
        "pods": "20",
    }
    (limit,) = one(baseline, "LimitRange")["spec"]["limits"]
    assert limit == {
        "type": "Container",
        "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
        "default": {"cpu": "250m", "memory": "256Mi"},
        "max": {"cpu": "1", "memory": "1Gi"},
    }


def test_children_are_parented_and_wait_for_the_namespace(baseline):
    component = [r for r in baseline if r.type == "platform:namespace:NamespaceBaseline"][0]
    namespace = [r for r in baseline if r.inputs.get("kind") == "Namespace"][0]
    children = [r for r in baseline if r is not component]
    assert all(r.parent == component.urn for r in children)
    assert all(namespace.urn in r.dependencies for r in children if r is not namespace)
