"""Alert routing (monitoring.alerting): an AlertmanagerConfig routing by severity, and the Secret its receivers read."""

from __future__ import annotations

import copy
import json

import pytest

import stack_config
from components.monitoring import ALERT_ROUTING_NAME, RECEIVER_SECRET_NAME, Monitoring, MonitoringArgs
from components.monitoring_config import AlertingConfig, MonitoringConfig, alerting_secret_keys
from tests.helpers import one, register, secret_leaves, unwrap
from tools import analyzer, engine, preview, schemas

NAMESPACE = "apps"
PAGER = {"pagerduty": {"routingKeyKey": "pagerduty-routing-key"}}
SLACK = {"slack": {"webhookUrlKey": "slack-webhook-url", "channel": "#platform-alerts"}}
WEBHOOK = {"webhook": {"urlKey": "tickets-webhook-url"}}
SECRET_VALUES = {
    "pagerduty-routing-key": "pd-routing-key-value-0001",
    "slack-webhook-url": "https://hooks.slack.com/services/T00000000/B00000000/slack-webhook-value",
    "tickets-webhook-url": "https://tickets.example.com/hooks/alerts?token=webhook-token-value",
}
# A pager and two ticket destinations: critical pages and is posted to Slack, warning opens a ticket.
ROUTED = {
    "receivers": {"pager": PAGER, "chat": SLACK, "tickets": WEBHOOK},
    "routes": [
        {"severity": "critical", "receiver": "pager"},
        {"severity": "critical", "receiver": "chat"},
        {"severity": "warning", "receiver": "tickets"},
    ],
}


def render(alerting: dict, receiver_secrets: dict = SECRET_VALUES):
    config = MonitoringConfig.model_validate({"alerting": alerting})
    args = MonitoringArgs(config=config, namespace=NAMESPACE, services=[], receiver_secrets=receiver_secrets)
    return register(lambda: Monitoring("mon", args))


@pytest.fixture(scope="module")
def routed():
    return render(ROUTED)


def named(resources, name: str) -> engine.RecordedResource:
    (resource,) = [r for r in resources if r.name == name]
    return resource


def credential(name: str) -> dict:
    return {"name": RECEIVER_SECRET_NAME, "key": name}


def route(severity: str, receiver: str, repeat: str) -> dict:
    return {
        "matchers": [{"name": "severity", "matchType": "=", "value": severity}],
        "receiver": receiver,
        "repeatInterval": repeat,
        "continue": True,
    }


# --- rendering ---------------------------------------------------------------------------------------------------


def test_receivers_reference_their_credential_in_the_secret(routed):
    config = one(routed, "AlertmanagerConfig")
    assert config["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    receivers = {receiver["name"]: receiver for receiver in config["spec"]["receivers"]}
    assert receivers["unrouted"] == {"name": "unrouted"}
    assert receivers["pager"] == {"name": "pager", "pagerdutyConfigs": [{"routingKey": credential("pager"), "sendResolved": True}]}
    (slack,) = receivers["chat"]["slackConfigs"]
    assert slack["apiURL"] == credential("chat") and slack["channel"] == "#platform-alerts" and slack["sendResolved"] is True
    assert "{{ .Annotations.runbook_url }}" in slack["text"]
    assert receivers["tickets"] == {"name": "tickets", "webhookConfigs": [{"urlSecret": credential("tickets"), "sendResolved": True}]}
    assert set(receivers) == {"unrouted", "pager", "chat", "tickets"}


def test_routes_match_on_severity_under_a_root_that_sends_nothing(routed):
    root = one(routed, "AlertmanagerConfig")["spec"]["route"]
    assert root["receiver"] == "unrouted"
    assert (root["groupBy"], root["groupWait"], root["groupInterval"]) == (["alertname", "service", "database", "cache"], "30s", "5m")
    # Both routes of critical continue, so the pager and the channel are both notified.
    assert root["routes"] == [
        route("critical", "pager", "1h"),
        route("critical", "chat", "1h"),
        route("warning", "tickets", "12h"),
    ]


@pytest.mark.parametrize("tickets", [SLACK, WEBHOOK], ids=["slack", "webhook"])
def test_without_routes_critical_pages_and_warning_goes_to_tickets(tickets):
    alerting = {"receivers": {"oncall": PAGER, "team": tickets}}
    assert [(r.severity, r.receiver) for r in AlertingConfig.model_validate(alerting).effective_routes] == [
        ("critical", "oncall"),
        ("warning", "team"),
    ]
    routes = one(render(alerting), "AlertmanagerConfig")["spec"]["route"]["routes"]
    assert routes == [route("critical", "oncall", "1h"), route("warning", "team", "12h")]


def test_objects_sit_in_the_namespace_with_the_selector_labels_under_the_component(routed):
    (component,) = [r for r in routed if r.type == "platform:monitoring:Monitoring"]
    config, secret = named(routed, "mon-alert-routing"), named(routed, "mon-alert-receivers")
    assert config.parent == component.urn and secret.parent == component.urn
    assert secret.urn in config.dependencies  # the operator rejects a config whose Secret it cannot read yet
    routing = unwrap(config.inputs)["metadata"]
    assert (routing["name"], routing["namespace"], routing["labels"]["release"]) == (ALERT_ROUTING_NAME, NAMESPACE, "kube-prometheus-stack")
    assert unwrap(secret.inputs)["metadata"]["namespace"] == NAMESPACE


def test_the_secret_is_opaque_and_holds_pulumi_secrets_only(routed):
    resource = named(routed, "mon-alert-receivers")
    assert engine.is_secret(resource.inputs["stringData"])
    assert all(inside for _, inside in secret_leaves(resource.inputs["stringData"]))
    secret = unwrap(resource.inputs)
    assert secret["type"] == "Opaque" and secret["metadata"]["name"] == RECEIVER_SECRET_NAME
    assert secret["stringData"] == {
        "pager": SECRET_VALUES["pagerduty-routing-key"],
        "chat": SECRET_VALUES["slack-webhook-url"],
        "tickets": SECRET_VALUES["tickets-webhook-url"],
    }


def test_credentials_show_nowhere_in_plaintext(routed):
    # Passed as plain strings on purpose: they must still end up secret (pulumi-kubernetes wraps a Secret's data).
    found_in = set()
    for resource in routed:
        for value, inside_secret in secret_leaves(resource.inputs):
            if isinstance(value, str) and any(secret in value for secret in SECRET_VALUES.values()):
                assert inside_secret, resource.name
                found_in.add(resource.name)
    assert found_in == {"mon-alert-receivers"}
    result = preview.run_preview("test", rendering=engine.Rendering("platform", "test", routed, outputs={}, placeholder_keys=[]))
    shown = preview.format_text(result) + json.dumps(result.manifests)
    assert RECEIVER_SECRET_NAME in shown
    assert not any(secret in shown for secret in SECRET_VALUES.values())


def test_rendered_objects_are_schema_valid(routed):
    objects = [unwrap(r.inputs) for r in routed if r.is_kubernetes_object]
    assert {"AlertmanagerConfig", "Secret"} <= {o["kind"] for o in objects}
    assert schemas.validate_all(objects) == []


def test_the_crd_is_the_upstream_file_source_md_names():
    crd = json.loads((schemas.CRD_DIR / "monitoring.coreos.com" / "alertmanagerconfigs.json").read_text())
    assert crd["source_sha256"] in (schemas.CRD_DIR / "SOURCE.md").read_text()
    assert (crd["kind"], crd["scope"], list(crd["versions"])) == ("AlertmanagerConfig", "Namespaced", ["v1alpha1"])
    # Upstream writes the enum value `=` bare; read as YAML 1.1 by a careless loader it would not be the string "=".
    matchers = crd["versions"]["v1alpha1"]["properties"]["spec"]["properties"]["route"]["properties"]["matchers"]
    assert matchers["items"]["properties"]["matchType"]["enum"] == ["!=", "=", "=~", "!~"]


WRONG_FIELDS = [
    # (id, mutation of the spec, path of the error)
    ("misspelt-receiver-kind", lambda spec: spec["receivers"][1].update(pagerDutyConfigs=[]), "spec.receivers[1]"),
    ("duration-in-words", lambda spec: spec["route"].update(groupWait="half a minute"), "spec.route.groupWait"),
    ("receiver-as-a-list", lambda spec: spec["route"].update(receiver=["pager"]), "spec.route.receiver"),
    ("secret-ref-without-key", lambda spec: spec["receivers"][3]["webhookConfigs"][0]["urlSecret"].pop("key"), "spec.receivers[3].webhookConfigs[0].urlSecret"),
]


@pytest.mark.parametrize("case_id, mutate, path", WRONG_FIELDS, ids=[case[0] for case in WRONG_FIELDS])
def test_a_wrong_field_fails_validation(routed, case_id, mutate, path):
    config = copy.deepcopy(one(routed, "AlertmanagerConfig"))
    mutate(config["spec"])
    errors = schemas.validate(config)
    assert any(error.path == path for error in errors), [str(error) for error in errors]


def test_the_policy_pack_is_clean_on_the_rendered_objects(routed):
    assert analyzer.analyze(routed) == []
    # The same Secret as plain YAML (values no longer Pulumi secrets) is what the pack exists to refuse.
    findings = analyzer.analyze_manifests([unwrap(r.inputs) for r in routed if r.is_kubernetes_object])
    assert [f.policy for f in findings] == ["no-plaintext-secret-manifest"]


def test_a_receiver_secret_the_program_did_not_pass_is_a_programming_error():
    with pytest.raises(ValueError, match=r"receiver_secrets lacks \['slack-webhook-url'\]"):
        render(ROUTED, receiver_secrets={k: v for k, v in SECRET_VALUES.items() if k != "slack-webhook-url"})


# --- config errors, as `pulumi up` prints them -------------------------------------------------------------------


def local_values() -> tuple[dict, set[str]]:
    config, secret_keys = engine.stack_config("local")
    values = {key.split(":", 1)[1]: json.loads(raw) if raw[:1] in "{[" else raw for key, raw in config.items()}
    return values, {key.split(":", 1)[1] for key in secret_keys}


def problems_with(alerting) -> list[str]:
    values, secret_keys = local_values()
    values = copy.deepcopy(values)
    values.setdefault("monitoring", {})["alerting"] = alerting

    def read_value(key):
        value = values.get(key)
        return value if value is None or isinstance(value, str) else json.dumps(value)

    with pytest.raises(stack_config.ConfigError) as raised:
        stack_config.load("local", "platform", read_value, lambda key: key in secret_keys)
    return raised.value.problems


PASTED_PAGERDUTY_KEY = "0123456789abcdef0123456789abcdef"
PASTED_WEBHOOK_URL = "https://tickets.example.com/hooks/alerts?token=pasted-token-value"

BAD_ALERTING = [
    # (id, monitoring.alerting, fragments of one problem)
    ("no-receivers-key", {"routes": []}, ["platform:monitoring.alerting.receivers: missing"]),
    ("no-receivers", {"receivers": {}}, ["platform:monitoring.alerting.receivers", "no receivers", "routingKeyKey: pagerduty-routing-key"]),
    ("receiver-of-no-kind", {"receivers": {"pager": {}}}, ["platform:monitoring.alerting.receivers.pager", "exactly one of", "found none"]),
    ("receiver-of-two-kinds", {"receivers": {"pager": {**PAGER, **SLACK}}}, ["receivers.pager", "exactly one of", "['pagerduty', 'slack']"]),
    ("unknown-kind", {"receivers": {"pager": {"opsgenie": {"apiKeyKey": "x"}}}}, ["receivers.pager.opsgenie", "unknown key"]),
    ("misspelt-field", {"receivers": {"pager": {"pagerduty": {"routingKey": "pagerduty-routing-key"}}}},
     ["receivers.pager.pagerduty.routingKey", "unknown key"]),
    ("missing-channel", {"receivers": {"chat": {"slack": {"webhookUrlKey": "slack-webhook-url"}}}}, ["receivers.chat.slack.channel: missing"]),
    ("bad-channel", {"receivers": {"chat": {"slack": {"webhookUrlKey": "slack-webhook-url", "channel": "Platform Alerts"}}}},
     ["receivers.chat.slack.channel", "not a Slack channel", "'#platform-alerts'", "(got 'Platform Alerts')"]),
    ("bad-key-name", {"receivers": {"pager": {"pagerduty": {"routingKeyKey": "pager duty key"}}}},
     ["receivers.pager", "pagerduty.routingKeyKey names the secret config key", "pulumi config set --secret pagerduty-routing-key"]),
    ("bad-receiver-name", {"receivers": {"Pager Duty": PAGER}}, ["platform:monitoring.alerting.receivers", "'Pager Duty' must be a DNS label"]),
    ("reserved-receiver-name", {"receivers": {"unrouted": PAGER}}, ["receivers", "'unrouted' is taken by the route tree"]),
    ("unknown-severity", {"receivers": {"pager": PAGER}, "routes": [{"severity": "info", "receiver": "pager"}]},
     ["platform:monitoring.alerting.routes[0].severity", "not a severity of the platform's alerts", "'critical' (pages) or 'warning' (tickets)", "(got 'info')"]),
    ("unknown-receiver", {"receivers": {"pager": PAGER}, "routes": [{"severity": "critical", "receiver": "pagr"}]},
     ["platform:monitoring.alerting", "routes[0].receiver: 'pagr' is not a receiver", "['pager']"]),
    ("empty-routes", {"receivers": {"pager": PAGER}, "routes": []}, ["platform:monitoring.alerting", "routes is empty", "remove 'routes'"]),
    ("repeated-route", {"receivers": {"pager": PAGER}, "routes": [{"severity": "critical", "receiver": "pager"}] * 2},
     ["routes[1] repeats severity 'critical' to receiver 'pager'"]),
    ("unused-receiver", {"receivers": {"pager": PAGER, "chat": SLACK}, "routes": [{"severity": "critical", "receiver": "pager"}]},
     ["receivers ['chat'] get no alerts", "{severity: warning, receiver: chat}"]),
    ("no-pager-for-the-defaults", {"receivers": {"chat": SLACK}},
     ["without 'routes'", "0 pagerduty ([])", "{severity: critical, receiver: chat}"]),
    ("two-pagers-for-the-defaults", {"receivers": {"a": PAGER, "b": PAGER, "chat": SLACK}},
     ["without 'routes'", "2 pagerduty (['a', 'b'])", "Write the routes"]),
]


@pytest.mark.parametrize("case_id, alerting, fragments", BAD_ALERTING, ids=[case[0] for case in BAD_ALERTING])
def test_bad_alerting_config_is_explained(case_id, alerting, fragments):
    problems = problems_with(alerting)
    assert any(all(fragment in problem for fragment in fragments) for problem in problems), problems


@pytest.mark.parametrize(
    "receiver, pasted",
    [({"pagerduty": {"routingKeyKey": PASTED_PAGERDUTY_KEY}}, PASTED_PAGERDUTY_KEY), ({"webhook": {"urlKey": PASTED_WEBHOOK_URL}}, PASTED_WEBHOOK_URL)],
    ids=["pagerduty-key", "webhook-url"],
)
def test_a_credential_pasted_for_its_key_name_is_refused_without_being_printed(receiver, pasted):
    problems = problems_with({"receivers": {"pager": receiver}})
    assert any("receivers.pager" in problem and "or is the" in problem for problem in problems), problems
    assert pasted not in "\n".join(problems)
    assert alerting_secret_keys({"alerting": {"receivers": {"pager": receiver}}}) == {}


# --- the secret keys, from raw config ----------------------------------------------------------------------------


def test_secret_keys_come_with_what_they_are_for():
    assert alerting_secret_keys({"alerting": ROUTED}) == {
        "pagerduty-routing-key": "the PagerDuty routing key of alert receiver 'pager' (monitoring.alerting.receivers.pager.pagerduty.routingKeyKey)",
        "slack-webhook-url": "the Slack webhook URL of alert receiver 'chat' (monitoring.alerting.receivers.chat.slack.webhookUrlKey)",
        "tickets-webhook-url": "the webhook URL of alert receiver 'tickets' (monitoring.alerting.receivers.tickets.webhook.urlKey)",
    }
    assert sorted(alerting_secret_keys({"alerting": ROUTED})) == AlertingConfig.model_validate(ROUTED).secret_keys


@pytest.mark.parametrize(
    "raw_monitoring, expected",
    [
        (None, set()),
        ("monitoring", set()),
        ([{"alerting": ROUTED}], set()),
        ({"alerting": None}, set()),
        ({"alerting": ["pager"]}, set()),
        ({"alerting": {"receivers": [PAGER]}}, set()),
        ({"alerting": {"receivers": {"pager": "pagerduty"}}}, set()),
        ({"alerting": {"receivers": {"pager": {"pagerduty": "pagerduty-routing-key"}}}}, set()),
        ({"alerting": {"receivers": {"pager": {"pagerduty": {"routingKeyKey": 42}}}}}, set()),
        ({"alerting": {"receivers": {"pager": {"pagerduty": {"routingKeyKey": "not a key"}}}}}, set()),
        # Invalid as config (two kinds, a bad name, no routes to them), yet every key it names is still checked.
        ({"alerting": {"receivers": {"Bad Name": {**PAGER, **WEBHOOK}}, "routes": "all"}}, {"pagerduty-routing-key", "tickets-webhook-url"}),
    ],
    ids=["none", "string", "list", "alerting-null", "alerting-list", "receivers-list", "receiver-string",
         "settings-string", "key-number", "key-not-a-name", "invalid-but-named"],
)
def test_secret_keys_from_broken_raw_values_without_raising(raw_monitoring, expected):
    assert set(alerting_secret_keys(raw_monitoring)) == expected


@pytest.mark.parametrize("stored, fragments", [
    (None, ["platform:slack-webhook-url: missing (the Slack webhook URL of alert receiver 'chat'", "pulumi config set --secret --stack local slack-webhook-url <value>"]),
    ("plaintext", ["platform:slack-webhook-url: stored in plaintext in Pulumi.local.yaml", "Remove it from the file and set it encrypted"]),
])
def test_a_receiver_key_missing_or_in_plaintext_is_reported_as_the_stack_config_reports_secrets(stored, fragments):
    # The messages stack_config gives once it checks these keys with the others (/tmp/alerting-integration.md).
    values = {"pagerduty-routing-key": "set", "tickets-webhook-url": "set", "slack-webhook-url": stored}
    problems = stack_config._secret_problems(
        alerting_secret_keys({"alerting": ROUTED}),
        "platform",
        "local",
        read_value=values.get,
        is_secret=lambda key: key != "slack-webhook-url",
    )
    (problem,) = problems
    assert all(fragment in problem for fragment in fragments), problem
