"""`tools.preview --diff` on workload changes (#17): a new schedule or command is an update of the same object; a
change of kind is the replacement it is (a worker is a different Deployment, and has no Service)."""

from __future__ import annotations

import json

import pytest

from tools import diff as stack_diff
from tools import engine, preview


def render_staging_with(change) -> dict:
    config, secret_keys = engine.stack_config("staging")
    services = json.loads(config["platform:services"])
    change({service["name"]: service for service in services})
    config = {**config, "platform:services": json.dumps(services)}
    return preview.snapshot(engine.render("staging", config=config, secret_keys=list(secret_keys)))


@pytest.fixture(scope="module")
def staging() -> dict:
    """The base, rendered from the same config reading as every changed head."""
    return render_staging_with(lambda services: None)


@pytest.fixture(scope="module")
def analytics_as_web() -> dict:
    def to_web(services):
        analytics = services["analytics"]
        # A web service in staging keeps two replicas at least (KEDA's scale to zero is a worker's).
        analytics.update(kind="web", port=8080, autoscaling={"minReplicas": 2, "maxReplicas": 4})
        del analytics["health"]

    return render_staging_with(to_web)


def changes_by_name(diff: stack_diff.StackDiff) -> dict[str, stack_diff.ResourceChange]:
    return {change.name: change for change in diff.changes}


def test_a_new_schedule_updates_the_cron_job(staging):
    head = render_staging_with(lambda services: services["report"].update(schedule="0 4 * * 1-5"))
    diff = stack_diff.diff_snapshots("staging", staging, head)
    changes = changes_by_name(diff)
    # The CronJob in place, and the overdue alert with it: Friday 04:00 to Monday 04:00 is longer than a day.
    assert {name: change.action for name, change in changes.items()} == {"report-cronjob": "update", "monitoring-rules": "update"}
    assert [(f.path, f.before, f.after) for f in changes["report-cronjob"].fields] == [("spec.schedule", "30 2 * * *", "0 4 * * 1-5")]
    assert any(f.path.endswith(".expr") and f"> {3 * 86400 + 600 + 1800 + 3600})" in f.after for f in changes["monitoring-rules"].fields)
    assert "~ kubernetes:batch/v1:CronJob report-cronjob" in stack_diff.format_text(diff)


def test_a_new_command_updates_the_deployment_in_place(staging):
    def change(services):
        services["analytics"].update(command=["/app/analytics-v2"], args=["consume", "--queue", "events-v2"])

    diff = stack_diff.diff_snapshots("staging", staging, render_staging_with(change))
    (change,) = diff.changes
    assert (change.name, change.action, change.replaced_by) == ("analytics-deployment", "update", [])
    paths = {f.path for f in change.fields}
    container = "spec.template.spec.containers[0]"
    assert {f"{container}.command[0]", f"{container}.args"} <= paths  # a list of another length, whole


def test_a_web_service_turned_worker_is_replaced_and_loses_its_service(staging, analytics_as_web):
    diff = stack_diff.diff_snapshots("staging", analytics_as_web, staging)
    changes = changes_by_name(diff)
    deployment = changes["analytics-deployment"]
    assert deployment.action == "replace"
    assert ("spec.selector", stack_diff.IMMUTABLE) in deployment.replaced_by
    assert changes["analytics-service"].action == "remove"  # nothing may call a worker
    text = stack_diff.format_text(diff)
    assert "+- kubernetes:apps/v1:Deployment analytics-deployment" in text
    assert "replaced because spec.selector changed" in text


def test_a_worker_turned_web_service_is_replaced_and_gains_a_service(staging, analytics_as_web):
    changes = changes_by_name(stack_diff.diff_snapshots("staging", staging, analytics_as_web))
    assert changes["analytics-deployment"].action == "replace"
    assert changes["analytics-service"].action == "add"


def test_a_cron_job_turned_worker_is_other_objects(staging):
    def to_worker(services):
        report = services["report"]
        for key in ("schedule", "timeZone", "activeDeadlineSeconds"):
            report.pop(key)
        report.update(kind="worker", health={"command": ["/app/report", "healthcheck"]})

    changes = changes_by_name(stack_diff.diff_snapshots("staging", staging, render_staging_with(to_worker)))
    assert changes["report-cronjob"].action == "remove"
    assert changes["report-deployment"].action == "add"


def test_unchanged_config_is_no_change(staging, rendered):
    assert stack_diff.diff_snapshots("staging", staging, render_staging_with(lambda services: None)).changes == []
    # and the base is the shipped stack as every other test renders it
    assert staging.keys() == preview.snapshot(rendered["staging"]).keys()
