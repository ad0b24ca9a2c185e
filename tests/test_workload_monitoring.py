"""Monitoring of workers and cron jobs (#17): what is scraped how, which alerts each kind gets, and their PromQL."""

from __future__ import annotations

import promql_parser
import pytest

from components.app_service_config import ServiceConfig
from components.monitoring import Monitoring, MonitoringArgs
from components.monitoring_config import MonitoringConfig
from tests.helpers import by_kind, one, register
from tests.test_monitoring import REQUIRED_KEYS, parse_promql, rules_of
from tools import schemas

RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"}}


def service(**fields) -> ServiceConfig:
    return ServiceConfig.model_validate({"image": "app:1.0.0", "resources": RESOURCES, **fields})


SERVICES = [
    service(name="web", port=8080, metrics={"port": 9090}),
    service(name="analytics", kind="worker", health={"port": 8086}, metrics={"port": 9091, "path": "/stats"}),
    service(name="quiet", kind="worker", health={"command": ["/bin/check"]}),  # no metrics port
    service(name="report", kind="cron", schedule="30 2 * * *", activeDeadlineSeconds=1800),
]


@pytest.fixture(scope="module")
def monitoring():
    args = MonitoringArgs(config=MonitoringConfig(), namespace="apps", services=list(SERVICES))
    return register(lambda: Monitoring("mon", args))


def alerts(resources, name: str) -> list[dict]:
    return [rule for rule in rules_of(resources) if rule["alert"] == name]


def test_web_is_scraped_through_its_service_a_worker_through_its_pods(monitoring):
    assert [m["metadata"]["name"] for m in by_kind(monitoring, "ServiceMonitor")] == ["web"]
    pod_monitor = one(monitoring, "PodMonitor")  # only the worker with a metrics port; no monitor without one
    assert pod_monitor["metadata"]["name"] == "analytics"
    spec = pod_monitor["spec"]
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": "analytics"}}
    (endpoint,) = spec["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/stats")
    # job="analytics", as a ServiceMonitor would name it, so alerts and dashboards select workers as web services.
    assert endpoint["relabelings"] == [{"action": "replace", "targetLabel": "job", "replacement": "analytics"}]
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(monitoring, "NetworkPolicy")}
    assert sorted(policies) == ["metrics-analytics", "metrics-web"]
    assert policies["metrics-analytics"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9091}]
    assert schemas.validate_all(by_kind(monitoring, "PodMonitor") + by_kind(monitoring, "ServiceMonitor")) == []


def test_service_based_alerts_only_for_web_services(monitoring):
    for name in ("ServiceUnavailable", "ServiceErrorBudgetBurnFast", "ServiceLatencyBudgetBurnSlow"):
        assert [rule["labels"]["service"] for rule in alerts(monitoring, name)] == ["web"], name
    assert sorted(rule["labels"]["service"] for rule in alerts(monitoring, "WorkerUnavailable")) == ["analytics", "quiet"]


def test_dashboards_for_deployments_only_and_http_panels_only_for_web(monitoring):
    dashboards = {c["metadata"]["name"]: c for c in by_kind(monitoring, "ConfigMap")}
    assert sorted(dashboards) == ["dashboard-analytics", "dashboard-quiet", "dashboard-web"]
    assert "5xx" not in dashboards["dashboard-analytics"]["data"]["analytics.json"]
    assert "5xx" in dashboards["dashboard-web"]["data"]["web.json"]


def test_a_cron_job_alerts_on_a_failed_run_and_an_overdue_success(monitoring):
    (failed,) = alerts(monitoring, "CronJobFailed")
    (overdue,) = alerts(monitoring, "CronJobOverdue")
    for rule in (failed, overdue):
        assert rule["labels"]["service"] == "report" and rule["labels"]["namespace"] == "apps"
        assert all(rule["annotations"].get(key) for key in REQUIRED_KEYS)
        parse_promql(rule["expr"])
    # kube-state-metrics: failed Jobs, owned by this CronJob, that started after its last success.
    assert 'kube_job_owner{namespace="apps", owner_kind="CronJob", owner_name="report"}' in failed["expr"]
    assert 'kube_job_status_failed{namespace="apps"} > 0' in failed["expr"]
    assert 'kube_cronjob_status_last_successful_time{namespace="apps", cronjob="report"}' in failed["expr"]
    # A day between runs, 600 s late at most, 1800 s a run, an hour of slack.
    allowed = 24 * 3600 + 600 + 1800 + 3600
    assert Monitoring.cron_job_allowed_age_seconds(SERVICES[3]) == allowed
    assert f"time() - max(kube_cronjob_status_last_successful_time{{namespace=\"apps\", cronjob=\"report\"}}) > {allowed}" in overdue["expr"]
    assert "kube_cronjob_created" in overdue["expr"]  # a CronJob that never succeeded is overdue too


def test_the_cron_alerts_are_built_as_intended():
    """The structure, not only the text: the failed-run alert compares against the last success or fires without one;
    the overdue alert is a threshold on the age of the last success, or of the CronJob when it never succeeded."""
    args = MonitoringArgs(config=MonitoringConfig(), namespace="apps", services=[SERVICES[3]])
    rules = rules_of(register(lambda: Monitoring("mon", args)))
    by_name = {rule["alert"]: promql_parser.parse(rule["expr"]) for rule in rules}
    failed, overdue = by_name["CronJobFailed"], by_name["CronJobOverdue"]

    def inner(node):
        return inner(node.expr) if isinstance(node, promql_parser.ParenExpr) else node

    for rule in (failed, overdue):
        assert str(rule.op) == "or"
        assert str(inner(rule.lhs).op) == ">" and str(inner(rule.rhs).op) == "unless"
    assert str(inner(inner(overdue.rhs).lhs).op) == ">"  # the never-succeeded CronJob's age, judged alike


@pytest.mark.parametrize(
    "schedule, deadline, gap",
    [("*/10 * * * *", 300, 600), ("0 6 * * MON", 3600, 7 * 86400), ("@monthly", 600, 31 * 86400)],
)
def test_the_allowed_age_follows_the_schedule(schedule, deadline, gap):
    cron = service(name="job", kind="cron", schedule=schedule, activeDeadlineSeconds=deadline, startingDeadlineSeconds=60)
    assert Monitoring.cron_job_allowed_age_seconds(cron) == gap + 60 + deadline + 3600
