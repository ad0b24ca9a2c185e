"""A service's ways out of the cluster (`services[].egress`): config errors, the rendered NetworkPolicy, and what the
pods can reach through it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components import app_service, hardening
from components.app_service_config import EgressRule, egress_problems
from components.config_base import PRIVATE_IPV4_RANGES
from tests.helpers import one
from tests.test_app_service import render_service, service
from tests.test_config import problems_for, web
from tests.test_database_cluster import Pod, app_pod, can_reach, network_policies
from tools import engine, schemas

PAYMENTS = {"name": "payments", "cidrs": ["203.0.113.0/24"], "ports": [{"port": 443}]}
SYSLOG = {"name": "syslog", "cidrs": ["198.51.100.7/32"], "ports": [{"port": 514, "protocol": "UDP"}]}
WEBHOOKS = {
    "name": "webhooks",
    "cidrs": ["0.0.0.0/0", "::/0"],
    "ports": [{"port": 443}],
    "allowInternet": True,
    "reason": "customers' webhook URLs, anywhere on the internet",
}


def egress_errors(**entry) -> str:
    with pytest.raises(ValidationError) as raised:
        EgressRule.model_validate(entry)
    return str(raised.value)


# --- config -------------------------------------------------------------------------------------------------


def test_an_entry_defaults_to_tcp_and_keeps_its_networks():
    rule = EgressRule.model_validate({**PAYMENTS, "cidrs": ["203.0.113.0/24", "2001:DB8::/32"]})
    assert [(port.port, port.protocol) for port in rule.ports] == [(443, "TCP")]
    assert rule.cidrs == ["203.0.113.0/24", "2001:db8::/32"]
    assert rule.allow_internet is False and rule.reason is None


@pytest.mark.parametrize(
    ("cidrs", "fragment"),
    [
        (["203.0.113.7"], "'203.0.113.7' has no prefix length; one address is '203.0.113.7/32'"),
        (["2001:db8::1"], "one address is '2001:db8::1/128'"),
        (["203.0.113.7/24"], "'203.0.113.7/24' has host bits set; the network is '203.0.113.0/24'"),
        (["api.example.com/32"], "is not a CIDR like 203.0.113.0/24"),
        (["203.0.113.0/33"], "is not a CIDR like 203.0.113.0/24"),
        (["203.0.113.0/24", "203.0.113.0/24"], "appear more than once"),
    ],
)
def test_cidrs_must_be_networks(cidrs, fragment):
    assert fragment in egress_errors(**{**PAYMENTS, "cidrs": cidrs})


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"ports": []}, "ports"),
        ({"ports": [{"port": 0}]}, "greater than or equal to 1"),
        ({"ports": [{"port": 65536}]}, "less than or equal to 65535"),
        ({"ports": [{"port": 443, "protocol": "SCTP"}]}, "'TCP' or 'UDP'"),
        ({"name": "Payments API"}, "name"),
        ({"cidrs": []}, "cidrs"),
    ],
)
def test_ports_protocols_and_names_are_checked(change, fragment):
    assert fragment in egress_errors(**{**PAYMENTS, **change})


@pytest.mark.parametrize("everywhere", ["0.0.0.0/0", "::/0"])
def test_every_address_needs_allow_internet(everywhere):
    message = egress_errors(**{**PAYMENTS, "cidrs": [everywhere]})
    assert f"cidrs ['{everywhere}'] mean every address on the internet" in message
    assert "set allowInternet: true on this entry" in message
    assert EgressRule.model_validate({**PAYMENTS, "cidrs": [everywhere], "allowInternet": True}).allow_internet


def test_allow_internet_and_reason_only_where_they_mean_something():
    assert "allowInternet: true, but cidrs list no 0.0.0.0/0 or ::/0" in egress_errors(**PAYMENTS, allowInternet=True)
    assert "'reason' explains an internet entry" in egress_errors(**PAYMENTS, reason="the payment provider")
    assert "'reason' is empty" in egress_errors(**{**WEBHOOKS, "reason": "  "})


def test_entry_names_are_unique_per_service():
    with pytest.raises(ValidationError, match=r"egress names \['payments'\] appear more than once"):
        service(egress=[PAYMENTS, {**PAYMENTS, "cidrs": ["198.51.100.0/24"]}])
    assert [entry.name for entry in service(egress=[PAYMENTS, SYSLOG]).egress] == ["payments", "syslog"]


def test_the_stack_file_reports_every_address_without_allow_internet_at_its_key():
    problems = problems_for(lambda values, _: web(values).update(egress=[{**PAYMENTS, "cidrs": ["0.0.0.0/0"]}]))
    (problem,) = [p for p in problems if "egress" in p]
    assert problem.startswith("platform:services[0].egress[0]: egress 'payments': cidrs ['0.0.0.0/0'] mean every address")


def raw_stack(environment: str, entry: dict) -> dict:
    return {"environment": environment, "services": [{"name": "web"}, {"name": "api", "egress": [PAYMENTS, entry]}]}


def test_prod_needs_a_reason_for_the_internet():
    reasonless = {key: value for key, value in WEBHOOKS.items() if key != "reason"}
    (problem,) = egress_problems(raw_stack("prod", reasonless), "platform", "prod")
    assert problem.startswith("platform:services[1].egress[1].reason: egress 'webhooks' of service 'api' opens the internet")
    assert "`pulumi config set --stack prod --path 'services[1].egress[1].reason' '<reason>'`" in problem
    assert egress_problems(raw_stack("prod", {**reasonless, "reason": " "}), "platform", "prod") == [problem]
    assert egress_problems(raw_stack("prod", WEBHOOKS), "platform", "prod") == []
    assert egress_problems(raw_stack("staging", reasonless), "platform", "staging") == []


def test_malformed_raw_values_are_left_to_the_models():
    assert egress_problems({"environment": "prod", "services": [{"egress": "none"}, "api", {"egress": [None]}]}, "p", "prod") == []


# --- the rendered NetworkPolicy ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def egress_service():
    return render_service(service=service(egress=[WEBHOOKS, SYSLOG, PAYMENTS]), callees=[app_service.Peer("api", 8081)])


def test_entries_become_ip_block_rules_after_the_callees(egress_service):
    policy = one(egress_service, "NetworkPolicy")
    assert policy["spec"]["egress"] == [
        {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "api"}}}], "ports": [{"protocol": "TCP", "port": 8081}]},
        {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"protocol": "TCP", "port": 443}]},
        {"to": [{"ipBlock": {"cidr": "198.51.100.7/32"}}], "ports": [{"protocol": "UDP", "port": 514}]},
        {
            "to": [
                {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_IPV4_RANGES)}},
                {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10"]}},
            ],
            "ports": [{"protocol": "TCP", "port": 443}],
        },
    ]
    assert schemas.validate(policy) == []


def test_reasons_go_on_the_network_policy_only_when_every_internet_entry_has_one(egress_service):
    annotations = one(egress_service, "NetworkPolicy")["metadata"]["annotations"]
    assert annotations == {hardening.EGRESS_REASON_ANNOTATION: "webhooks: customers' webhook URLs, anywhere on the internet"}
    reasonless = {key: value for key, value in WEBHOOKS.items() if key != "reason"}
    partly = render_service(service=service(egress=[WEBHOOKS, {**reasonless, "name": "feeds", "cidrs": ["0.0.0.0/0"]}]))
    assert "annotations" not in one(partly, "NetworkPolicy")["metadata"]
    assert "annotations" not in one(render_service(service=service(egress=[PAYMENTS])), "NetworkPolicy")["metadata"]


# --- what the pods can reach (tests/test_database_cluster.py's evaluator) ------------------------------------


@pytest.fixture(scope="module")
def reach(egress_service):
    rendering = engine.Rendering("platform", "test", egress_service, outputs={}, placeholder_keys=[])
    policies, web_pod = network_policies(rendering), app_pod(rendering, "web")
    return lambda destination, port: can_reach(policies, web_pod, destination, port)


def test_the_allowed_address_and_port_are_reachable(reach):
    assert reach("203.0.113.10", 443)
    assert reach("93.184.216.34", 443) and reach("2606:2800:220:1:248:1893:25c8:1946", 443)  # through the internet entry
    assert reach(Pod.of("apps", {"app.kubernetes.io/name": "api"}), 8081)


def test_other_ports_addresses_and_protocols_are_not(reach):
    assert not reach("203.0.113.10", 80)
    assert not reach("192.0.2.1", 80)
    assert not reach("198.51.100.7", 514)  # UDP only: the evaluator's connections are TCP
    assert not reach(Pod.of("apps", {"app.kubernetes.io/name": "db"}), 5432)


@pytest.mark.parametrize("private", ["10.1.2.3", "172.20.0.10", "192.168.1.1", "100.64.0.5", "169.254.169.254", "fd00:ec2::254"])
def test_the_internet_entry_reaches_nothing_private(reach, private):
    assert not reach(private, 443)


def test_without_entries_nothing_outside_is_reachable():
    rendering = engine.Rendering("platform", "test", render_service(), outputs={}, placeholder_keys=[])
    assert not can_reach(network_policies(rendering), app_pod(rendering, "web"), "203.0.113.10", 443)

