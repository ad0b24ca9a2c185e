"""Monitoring on its own and in every shipped stack: monitors, alerts that parse, dashboards that load."""

from __future__ import annotations

import json
import re

import promql_parser
import pytest

from components.monitoring import MonitoredDatabase, Monitoring, MonitoringArgs
from components.app_service_config import ServiceConfig
from components.monitoring_config import SEVERITIES, MonitoringConfig
from tests.helpers import by_kind, one, register, unwrap
from tools import schemas

RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"}}
SERVICES = [
    ServiceConfig.model_validate(
        {"name": "web", "image": "web:1.0.0", "port": 8080, "resources": RESOURCES, "metrics": {"port": 9090},
         "autoscaling": {"minReplicas": 2, "maxReplicas": 6}}
    ),
    ServiceConfig.model_validate({"name": "worker", "image": "worker:1.0.0", "port": 8082, "resources": RESOURCES}),
]
DATABASES = [MonitoredDatabase("orders", instances=3, backed_up=True), MonitoredDatabase("cache", instances=1, backed_up=False)]
REQUIRED_KEYS = ("summary", "description", "runbook_url")


def render(config: MonitoringConfig | None = None, services=SERVICES, databases=DATABASES):
    args = MonitoringArgs(config=config or MonitoringConfig(), namespace="apps", services=list(services), databases=list(databases))
    return register(lambda: Monitoring("mon", args))


@pytest.fixture(scope="module")
def monitoring():
    return render()


def rules_of(resources) -> list[dict]:
    return [rule for group in one(resources, "PrometheusRule")["spec"]["groups"] for rule in group["rules"]]


def parse_promql(expr: str):
    """Parses with the Prometheus grammar (promql-parser); Grafana's $__rate_interval is a range like 5m."""
    return promql_parser.parse(expr.replace("$__rate_interval", "5m"))


def test_the_parser_rejects_what_prometheus_rejects():
    # Otherwise "every expression parses" would prove nothing.
    for broken in ("sum(rate(x[5m])", "rate(x)", "no_such_function(x)", "x > bool", 'x{a="b"'):
        with pytest.raises(ValueError):
            parse_promql(broken)


def test_everything_is_schema_valid_namespaced_and_parented(monitoring):
    (component,) = [r for r in monitoring if r.type == "platform:monitoring:Monitoring"]
    assert all(r.parent == component.urn for r in monitoring if r is not component)
    objects = [unwrap(r.inputs) for r in monitoring if r.is_kubernetes_object]
    assert all(obj["metadata"]["namespace"] == "apps" for obj in objects)
    assert schemas.validate_all(objects) == []


def test_service_monitor_only_for_services_with_metrics(monitoring):
    monitor = one(monitoring, "ServiceMonitor")
    assert monitor["metadata"]["name"] == "web"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": "web"}}
    assert spec["namespaceSelector"] == {"matchNames": ["apps"]}
    assert spec["endpoints"] == [{"port": "metrics", "path": "/metrics", "scheme": "http", "interval": "30s"}]


def test_databases_get_no_second_pod_monitor(monitoring):
    # Each DatabaseCluster makes its own PodMonitor; this component only alerts on the databases.
    assert by_kind(monitoring, "PodMonitor") == []


def test_only_prometheus_reaches_the_metrics_port(monitoring):
    (policy,) = by_kind(monitoring, "NetworkPolicy")
    assert policy["metadata"]["name"] == "metrics-web"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 9090}],
            }
        ],
    }


def test_every_alert_is_complete_and_its_promql_parses(monitoring):
    rules = rules_of(monitoring)
    assert len(rules) >= 10
    for rule in rules:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"]), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert all(rule["annotations"].get(key) for key in REQUIRED_KEYS), rule["alert"]
        assert rule["annotations"]["runbook_url"] == f"https://runbooks.example.com/{rule['alert']}"
        assert rule["for"]
        parse_promql(rule["expr"])
        assert 'namespace="apps"' in rule["expr"], rule["alert"]


def test_the_alerts_that_matter_are_there(monitoring):
    alerts = {(rule["alert"], rule["labels"].get("service") or rule["labels"].get("database")) for rule in rules_of(monitoring)}
    expected = {
        ("PodCrashLooping", None),
        ("PodNotReady", None),
        ("HpaMaxedOut", None),
        ("ServiceUnavailable", "web"),
        ("ServiceErrorBudgetBurnFast", "web"),
        ("ServiceErrorBudgetBurnSlow", "web"),
        ("ServiceLatencyBudgetBurnFast", "web"),
        ("ServiceLatencyBudgetBurnSlow", "web"),
        ("DatabaseDown", "orders"),
        ("DatabaseInstancesMissing", "orders"),
        ("DatabaseReplicationLag", "orders"),
        ("DatabaseBackupTooOld", "orders"),
        ("DatabaseWalArchivingFailing", "orders"),
        ("DatabaseStorageAlmostFull", "orders"),
        ("DatabaseDown", "cache"),
        ("DatabaseStorageAlmostFull", "cache"),
    }
    assert alerts == expected  # no SLO alerts for a service without metrics, no replication/backup alerts where moot
    critical = {rule["alert"] for rule in rules_of(monitoring) if rule["labels"]["severity"] == "critical"}
    assert critical == {"ServiceUnavailable", "ServiceErrorBudgetBurnFast", "ServiceLatencyBudgetBurnFast", "DatabaseDown"}


def test_alert_routing_can_route_every_severity_the_alerts_carry(monitoring):
    # monitoring.alerting.routes accepts exactly these severities (tests/test_alert_routing.py).
    assert {rule["labels"]["severity"] for rule in rules_of(monitoring)} == set(SEVERITIES)


def test_without_alerting_nothing_routes_alerts(monitoring):
    # Alerts then stay in the cluster's own Alertmanager routing; no receiver credentials are needed.
    assert by_kind(monitoring, "AlertmanagerConfig") == [] and by_kind(monitoring, "Secret") == []


def test_burn_rate_alerts_follow_the_objectives():
    config = MonitoringConfig.model_validate({"slo": {"availabilityPercent": 99.5, "latencyPercent": 95, "latencySeconds": 0.25}})
    rules = {rule["alert"]: rule["expr"] for rule in rules_of(render(config))}
    assert rules["ServiceErrorBudgetBurnFast"].count("(14.4 * 0.005)") == 2
    assert "[1h]" in rules["ServiceErrorBudgetBurnFast"] and "[5m]" in rules["ServiceErrorBudgetBurnFast"]
    assert rules["ServiceErrorBudgetBurnSlow"].count("(6 * 0.005)") == 2
    assert "[6h]" in rules["ServiceErrorBudgetBurnSlow"] and "[30m]" in rules["ServiceErrorBudgetBurnSlow"]
    assert 'le="0.25"' in rules["ServiceLatencyBudgetBurnFast"] and "(14.4 * 0.05)" in rules["ServiceLatencyBudgetBurnFast"]
    assert 'code=~"5.."' in rules["ServiceErrorBudgetBurnFast"]


def test_database_alerts_select_the_clusters_pods_and_volumes(monitoring):
    rules = {(rule["alert"], rule["labels"].get("database")): rule["expr"] for rule in rules_of(monitoring)}
    assert 'pod=~"orders-[0-9]+"' in rules[("DatabaseDown", "orders")]
    assert "< 3" in rules[("DatabaseInstancesMissing", "orders")]
    assert "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp" in rules[("DatabaseBackupTooOld", "orders")]
    assert f"> {26 * 3600}" in rules[("DatabaseBackupTooOld", "orders")]
    assert 'persistentvolumeclaim=~"cache-[0-9]+(-wal)?"' in rules[("DatabaseStorageAlmostFull", "cache")]


def test_metric_names_selector_labels_and_runbooks_come_from_config():
    config = MonitoringConfig.model_validate(
        {
            "selectorLabels": {"prometheus": "platform"},
            "runbookUrlTemplate": "https://wiki.example.org/runbooks/{alert}.md",
            "httpMetrics": {"requestsTotal": "app_http_requests_total", "statusLabel": "status"},
        }
    )
    resources = render(config)
    assert one(resources, "ServiceMonitor")["metadata"]["labels"]["prometheus"] == "platform"
    assert one(resources, "PrometheusRule")["metadata"]["labels"]["prometheus"] == "platform"
    rules = rules_of(resources)
    assert all(r["annotations"]["runbook_url"] == f"https://wiki.example.org/runbooks/{r['alert']}.md" for r in rules)
    fast = [r["expr"] for r in rules if r["alert"] == "ServiceErrorBudgetBurnFast"][0]
    assert 'app_http_requests_total{namespace="apps", job="web", status=~"5.."}' in fast


def test_hpa_alert_ignores_autoscalers_pinned_at_one_size(monitoring):
    (expr,) = [rule["expr"] for rule in rules_of(monitoring) if rule["alert"] == "HpaMaxedOut"]
    assert "kube_horizontalpodautoscaler_spec_max_replicas" in expr
    assert 'kube_horizontalpodautoscaler_spec_min_replicas{namespace="apps"}' in expr.split(" and ")[1]


def test_no_autoscaler_no_hpa_alert():
    plain = [service.model_copy(update={"autoscaling": None}) for service in SERVICES]
    assert "HpaMaxedOut" not in {rule["alert"] for rule in rules_of(render(services=plain, databases=[]))}


def dashboards(resources) -> dict[str, dict]:
    found = {}
    for config_map in by_kind(resources, "ConfigMap"):
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((key, text),) = config_map["data"].items()
        found[key] = json.loads(text)
    return found


def test_a_dashboard_per_service_with_the_datasource_as_a_variable(monitoring):
    found = dashboards(monitoring)
    assert set(found) == {"web.json", "worker.json"}
    uids = [dashboard["uid"] for dashboard in found.values()]
    assert len(set(uids)) == len(uids) and all(len(uid) <= 40 for uid in uids)
    for dashboard in found.values():
        (variable,) = dashboard["templating"]["list"]
        assert (variable["name"], variable["type"], variable["query"]) == ("datasource", "datasource", "prometheus")
        assert dashboard["panels"]
        for panel in dashboard["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                parse_promql(target["expr"])
    # HTTP panels only where there are HTTP metrics to show.
    titles = {key: {panel["title"] for panel in dashboard["panels"]} for key, dashboard in found.items()}
    assert "Latency" in titles["web.json"] and "Latency" not in titles["worker.json"]
    assert {"CPU", "Memory (working set)", "Ready replicas"} <= titles["worker.json"]


# --- the shipped stacks ------------------------------------------------------------------------------------------


def test_every_stack_monitors_web_api_and_its_database(stack_rendering):
    objects = [unwrap(r.inputs) for r in stack_rendering.resources if r.is_kubernetes_object]
    monitors = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceMonitor"}
    assert monitors == {"web", "api"}
    pod_monitors = [o for o in objects if o["kind"] == "PodMonitor"]
    # The database's, made by the DatabaseCluster, and its pooler's where the stack has one (staging, prod); the
    # analytics worker's (no Service to follow) where the stack hosts it (staging, prod).
    pooled = any(o["kind"] == "Pooler" for o in objects)
    hosted = stack_rendering.stack != "local"
    expected = ["orders", "cache"] + (["orders-pooler-rw"] if pooled else []) + (["analytics"] if hosted else [])
    assert sorted(o["metadata"]["name"] for o in pod_monitors) == sorted(expected)
    for monitor in [o for o in objects if o["kind"] in ("ServiceMonitor", "PodMonitor", "PrometheusRule")]:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack", monitor["metadata"]["name"]
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    for alert in rules:
        assert all(alert["annotations"].get(key) for key in REQUIRED_KEYS) and alert["labels"]["severity"]
        parse_promql(alert["expr"])
    names = {r["alert"] for r in rules}
    assert {"DatabaseDown", "DatabaseBackupTooOld", "ServiceErrorBudgetBurnFast"} <= names
    # Only a cluster with replicas can lag: local runs one instance, staging and prod more.
    assert ("DatabaseReplicationLag" in names) == (stack_rendering.stack != "local")
    metrics_policies = [o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].startswith("metrics-")]
    assert len(metrics_policies) == (3 if hosted else 2)
    for policy in metrics_policies:
        (rule_in,) = policy["spec"]["ingress"]
        assert rule_in["from"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
        assert rule_in["ports"] == [{"protocol": "TCP", "port": 9090}]
    assert schemas.validate_all([o for o in objects if o["kind"] in ("ServiceMonitor", "PodMonitor", "PrometheusRule")]) == []
    dashboard_maps = [r for r in stack_rendering.resources if r.is_kubernetes_object and r.name.startswith("monitoring-") and r.inputs["kind"] == "ConfigMap"]
    assert set(dashboards(dashboard_maps)) == {"web.json", "api.json", "cache-cache.json"} | ({"analytics.json"} if hosted else set())
