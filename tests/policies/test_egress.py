"""egress-unrestricted through the analyzer: a passing and a failing manifest per case, per-stack enforcement, and the
shipped stacks."""

from __future__ import annotations

import copy

import pytest

from components import hardening
from policies import egress
from tests.policies.conftest import DEL, SET, apply, run
from tools.analyzer import analyze, load_policy_config
from tools.engine import RecordedResource

POLICY = "egress-unrestricted"
PARTNER_API = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "api", "namespace": "shop"},
    "spec": {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "api"}},
        "policyTypes": ["Ingress", "Egress"],
        "egress": [
            {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "db"}}}], "ports": [{"protocol": "TCP", "port": 5432}]},
            {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"protocol": "TCP", "port": 443}]},
        ],
    },
}
INTERNET = "spec.egress[1].to[0].ipBlock"
REASON = ("metadata.annotations", {egress.EGRESS_REASON_ANNOTATION: "webhooks: customers' URLs, anywhere"})
DATABASE_POD_SELECTOR = {
    "matchLabels": {"cnpg.io/cluster": "orders"},
    "matchExpressions": [{"key": "cnpg.io/podRole", "operator": "NotIn", "values": ["pooler"]}],
}

# (case id, changes to PARTNER_API, must it be reported?, fragment the message names)
CASES = [
    ("specific networks", [], False, None),
    ("every IPv4 address", [(SET, INTERNET, {"cidr": "0.0.0.0/0"})], True, "spec.egress[1] lets the pods reach every address (ipBlock 0.0.0.0/0) on TCP 443"),
    ("every IPv6 address", [(SET, INTERNET, {"cidr": "::/0"})], True, "every address (ipBlock ::/0)"),
    ("the internet minus the private ranges", [(SET, INTERNET, {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]})], True, "(ipBlock 0.0.0.0/0, except 1 range(s))"),
    ("no `to`", [(DEL, "spec.egress[1].to", None)], True, "every destination (no `to`) on TCP 443"),
    ("no `to` and no ports", [(SET, "spec.egress[1]", {})], True, "every destination (no `to`) on every port"),
    ("an empty `to`", [(SET, "spec.egress[1].to", [])], True, "every destination (no `to`)"),
    ("DNS anywhere", [(SET, "spec.egress[1]", {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]})], False, None),
    ("a port range from DNS anywhere", [(SET, "spec.egress[1]", {"ports": [{"protocol": "UDP", "port": 53, "endPort": 65535}]})], True, "every destination (no `to`) on UDP 53-65535"),
    ("DNS and more anywhere", [(SET, "spec.egress[1]", {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 80}]})], True, "on UDP 53, TCP 80"),
    ("reasoned", [(SET, INTERNET, {"cidr": "0.0.0.0/0"}), (SET, *REASON)], False, None),
    ("a blank reason", [(SET, INTERNET, {"cidr": "0.0.0.0/0"}), (SET, "metadata.annotations", {egress.EGRESS_REASON_ANNOTATION: " "})], True, "say why in the annotation platform.example.com/egress-reason"),
    ("ingress only", [(SET, INTERNET, {"cidr": "0.0.0.0/0"}), (SET, "spec.policyTypes", ["Ingress"])], False, None),
    ("a database's backups, unreasoned", [(SET, "spec.podSelector", DATABASE_POD_SELECTOR), (SET, INTERNET, {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]})], True, "(ipBlock 0.0.0.0/0, except 1 range(s))"),
]  # fmt: skip


def manifest(changes: list) -> dict:
    return apply(changes, copy.deepcopy(PARTNER_API))


@pytest.mark.parametrize(("case", "changes", "reported", "fragment"), CASES, ids=[case[0] for case in CASES])
def test_cases(case, changes, reported, fragment):
    findings = [f for f in run([manifest(changes)], policies=egress.POLICIES) if f.policy == POLICY]
    assert bool(findings) is reported, [f.message for f in findings]
    if reported:
        (finding,) = findings
        assert fragment in finding.message
        assert "narrow spec.egress[1].to to the CIDRs they call" in finding.message


def test_every_open_rule_is_reported():
    changes = [(SET, "spec.egress[0]", {"ports": [{"port": 8080}]}), (SET, INTERNET, {"cidr": "::/0"})]
    messages = [f.message for f in run([manifest(changes)], policies=egress.POLICIES)]
    assert [message.split(" lets")[0] for message in messages] == ["spec.egress[0]", "spec.egress[1]"]


def test_a_destination_not_known_yet_is_judged_later():
    resource = RecordedResource(
        urn="urn:pulumi:test::platform::kubernetes:networking.k8s.io/v1:NetworkPolicy::api",
        type="kubernetes:networking.k8s.io/v1:NetworkPolicy",
        name="api",
        inputs=manifest([(SET, "spec.egress[1].to", "04da6b54-80e4-46f7-96ec-b56ff0331ba9")]),
    )
    assert analyze([resource], policies=egress.POLICIES) == []


@pytest.mark.parametrize(("stack", "level"), [("local", "advisory"), ("staging", "advisory"), ("prod", "mandatory")])
def test_enforcement_per_stack(stack, level):
    config = load_policy_config(f"policies/config/{stack}.json")
    findings = run([manifest([(SET, INTERNET, {"cidr": "0.0.0.0/0"})])], policies=egress.POLICIES, policy_config=config)
    assert [(f.policy, f.enforcement) for f in findings] == [(POLICY, level)]


def test_the_component_writes_the_key_the_pack_reads():
    assert hardening.EGRESS_REASON_ANNOTATION == egress.EGRESS_REASON_ANNOTATION


def test_the_shipped_stacks_are_clean_and_the_databases_way_to_s3_says_why(rendered):
    opened = []
    for stack, rendering in rendered.items():
        config = load_policy_config(f"policies/config/{stack}.json")
        assert analyze(rendering.resources, policies=egress.POLICIES, policy_config=config) == [], stack
        opened += [
            (stack, r.inputs["metadata"]["name"])
            for r in rendering.resources
            if r.is_kubernetes_object
            and r.inputs["kind"] == "NetworkPolicy"
            and any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for rule in r.inputs["spec"].get("egress", []) for peer in rule.get("to", []))
        ]
    # S3 has no fixed addresses (staging and prod); local backs up to MinIO in the cluster. prod's api calls AWS's APIs.
    assert sorted(opened) == [("prod", "api"), ("prod", "orders-database"), ("staging", "orders-database")]
    database_policy = next(r for r in rendered["prod"].resources if r.name == "orders-db-netpol")
    assert "on AWS S3" in database_policy.inputs["metadata"]["annotations"][egress.EGRESS_REASON_ANNOTATION]
