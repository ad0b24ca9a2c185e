"""Kinds of workload in the stack config (#17): web, worker, cron; each bad input names the file, the key and the fix."""

from __future__ import annotations

import pytest

from components import cron_schedule
from tests.test_config import PROJECT, load, problems_for, stack_values

WORKER = {
    "name": "analytics",
    "kind": "worker",
    "image": "analytics:1.3.0",
    "command": ["/app/analytics"],
    "args": ["consume"],
    "health": {"port": 8086},
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
}
CRON = {
    "name": "report",
    "kind": "cron",
    "image": "report:1.0.4",
    "command": ["/app/report"],
    "schedule": "30 2 * * *",
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
}


def with_workload(workload: dict, **changes):
    """A mutation adding a worker or cron job (with changes; None removes a key) to the local stack, as services[2]."""

    def mutate(values, secret_keys):
        added = {**workload, **changes}
        values["services"].append({key: value for key, value in added.items() if value is not None})

    return mutate


def one_problem(mutation, stack: str = "local") -> str:
    problems = problems_for(mutation, stack)
    assert len(problems) == 1, problems
    return problems[0]


def test_a_worker_and_a_cron_job_load_with_their_defaults():
    values, secret_keys = stack_values("local")
    with_workload(WORKER)(values, secret_keys)
    with_workload(CRON)(values, secret_keys)
    config = load(values, secret_keys)
    web, _, worker, cron = config.services
    assert web.kind == "web" and web.port == 8080  # today's stack files keep their meaning
    assert (worker.kind, worker.port, worker.command, worker.args) == ("worker", None, ["/app/analytics"], ["consume"])
    assert (cron.concurrency_policy, cron.active_deadline_seconds, cron.backoff_limit) == ("Forbid", 3600, 2)
    assert cron.failed_jobs_history_limit >= 1
    assert cron.longest_run_interval_seconds == 24 * 3600


BAD_INPUTS = [
    # (id, mutation, fragments of the one problem)
    (
        "web-without-port",
        lambda v, s: v["services"][0].pop("port"),
        ["platform:services[0].port: missing (a web service serves HTTP", "pulumi config set --stack local --path 'services[0].port'"],
    ),
    (
        "worker-with-port",
        with_workload(WORKER, port=8080),
        ["platform:services[2].port: a worker has no Service", "health.port", "`pulumi config rm --stack local --path 'services[2].port'`"],
    ),
    (
        "cron-with-port",
        with_workload(CRON, port=8080),
        ["platform:services[2].port: a cron job's pods run to completion", "pulumi config rm --stack local --path 'services[2].port'"],
    ),
    (
        "worker-without-probe",
        with_workload(WORKER, health=None),
        ["platform:services[2].health", "set health.command", "or health.port"],
    ),
    (
        "worker-with-two-probes",
        with_workload(WORKER, health={"port": 8086, "command": ["/app/healthcheck"]}),
        ["platform:services[2].health", "not both"],
    ),
    (
        "web-with-exec-probe",
        lambda v, s: v["services"][0].update(health={"command": ["/bin/true"]}),
        ["platform:services[0].health", "a web service is probed over HTTP on its port"],
    ),
    (
        "cron-with-health",
        with_workload(CRON, health={"livenessPath": "/live"}),
        ["platform:services[2].health: a cron job's pods run to completion and are not probed", "pulumi config rm"],
    ),
    (
        "cron-with-replicas",
        with_workload(CRON, replicas=2),
        ["platform:services[2].replicas: a cron job has no replicas", "pulumi config rm --stack local --path 'services[2].replicas'"],
    ),
    (
        "cron-with-autoscaling",
        with_workload(CRON, autoscaling={"minReplicas": 1, "maxReplicas": 2}),
        ["platform:services[2].autoscaling: a cron job has no autoscaling", "pulumi config rm"],
    ),
    (
        "cron-with-metrics",
        with_workload(CRON, metrics={"port": 9090}),
        ["platform:services[2].metrics: a cron job has no metrics", "alerts on failed and overdue runs"],
    ),
    (
        "cron-without-schedule",
        with_workload(CRON, schedule=None),
        ["platform:services[2].schedule: missing (a cron job runs on a schedule", "pulumi config set --stack local --path 'services[2].schedule'"],
    ),
    (
        "schedule-on-a-worker",
        with_workload(WORKER, schedule="0 * * * *"),
        ["platform:services[2].schedule: only a cron job (kind: cron) runs on a schedule", "pulumi config rm --stack local --path 'services[2].schedule'"],
    ),
    (
        "cron-key-on-web",
        lambda v, s: v["services"][0].update(activeDeadlineSeconds=60),
        ["platform:services[0].activeDeadlineSeconds: a cron job's setting", "pulumi config rm --stack local --path 'services[0].activeDeadlineSeconds'"],
    ),
    (
        "bad-minute",
        with_workload(CRON, schedule="61 2 * * *"),
        ["platform:services[2].schedule: minute (0-59): 61 is outside 0-59", "(got '61 2 * * *')"],
    ),
    (
        "bad-month-name",
        with_workload(CRON, schedule="0 2 1 JANUARY *"),
        ["platform:services[2].schedule: month (1-12 or JAN-DEC): 'JANUARY' is not a number or a name"],
    ),
    (
        "seconds-field",
        with_workload(CRON, schedule="0 0 2 * * *"),
        ["platform:services[2].schedule: has 6 field(s); Kubernetes reads five", "'0 3 * * *'"],
    ),
    (
        "tz-in-schedule",
        with_workload(CRON, schedule="CRON_TZ=Europe/Berlin 0 2 * * *"),
        ["platform:services[2].schedule", "set 'timeZone' instead"],
    ),
    (
        "unknown-macro",
        with_workload(CRON, schedule="@every 1h"),
        ["platform:services[2].schedule: '@every 1h' is not a macro Kubernetes knows", "@daily"],
    ),
    (
        "never-runs",
        with_workload(CRON, schedule="0 0 31 2 *"),
        ["platform:services[2].schedule: '0 0 31 2 *' never runs"],
    ),
    (
        "unknown-time-zone",
        with_workload(CRON, timeZone="Europe/Atlantis"),
        ["platform:services[2].timeZone: is not an IANA time zone", "Europe/Berlin", "(got 'Europe/Atlantis')"],
    ),
    (
        "concurrency-allow",
        with_workload(CRON, concurrencyPolicy="Allow"),
        ["platform:services[2].concurrencyPolicy", "'Forbid' or 'Replace'"],
    ),
    (
        "unbounded-deadline",
        with_workload(CRON, activeDeadlineSeconds=7 * 86400),
        ["platform:services[2].activeDeadlineSeconds", "less than or equal to 86400"],
    ),
    (
        "no-failed-history",
        with_workload(CRON, failedJobsHistoryLimit=0),
        ["platform:services[2].failedJobsHistoryLimit", "greater than or equal to 1"],
    ),
    (
        "empty-command",
        with_workload(WORKER, command=[" "]),
        ["platform:services[2].command", "command[0] is empty"],
    ),
    (
        "route-to-a-worker",
        lambda v, s: (with_workload(WORKER)(v, s), v["ingress"]["hosts"][0]["routes"].append({"path": "/a", "service": "analytics"})),
        ["platform:ingress.hosts[0].routes[", "'analytics' is a worker, which serves no requests", "route to a web service"],
    ),
    (
        "call-into-a-cron-job",
        lambda v, s: (with_workload(CRON)(v, s), v["services"][0]["calls"].append("report")),
        ["platform:services[0].calls[1]: 'report' is a cron", "pulumi config rm --stack local --path 'services[0].calls[1]'"],
    ),
]


@pytest.mark.parametrize("mutation, fragments", [(m, f) for _, m, f in BAD_INPUTS], ids=[i for i, _, _ in BAD_INPUTS])
def test_bad_workload_input_names_file_key_and_fix(mutation, fragments):
    problem = one_problem(mutation)
    for fragment in fragments:
        assert fragment in problem, problem


def test_every_problem_of_several_workloads_is_reported_at_once():
    def mutate(values, secret_keys):
        with_workload(WORKER, port=8080)(values, secret_keys)
        with_workload(CRON, name="nightly", schedule="0 25 * * *", timeZone="Mars/Olympus")(values, secret_keys)

    problems = problems_for(mutate)
    keys = sorted(problem.split(": ", 1)[0] for problem in problems)
    assert keys == [f"{PROJECT}:services[2].port", f"{PROJECT}:services[3].schedule", f"{PROJECT}:services[3].timeZone"]


def test_a_worker_needs_no_replica_minimum_but_web_still_does():
    """The environment's replica minimum keeps requests served; a worker's backlog waits (staging: 2 for web)."""
    values, secret_keys = stack_values("staging")
    values["services"][2]["replicas"] = 1
    assert load(values, secret_keys, "staging").services[2].replicas == 1
    problems = problems_for(lambda v, s: v["services"][0].update(replicas=1), "staging")
    assert any("service 'web' runs 1 replica(s); staging needs at least 2" in problem for problem in problems)


@pytest.mark.parametrize(
    "schedule, gap_hours",
    [
        ("30 2 * * *", 24),
        ("@hourly", 1),
        ("@weekly", 7 * 24),
        ("*/15 9-17 * * MON-FRI", 2 * 24 + 15.25),  # Friday 17:45 to Monday 09:00
        ("0 9,17 * * *", 16),
        ("0 0 1,15 * *", 17 * 24),  # the 15th to the 1st of a 31-day month
        ("0 12 1 * MON", 7 * 24),  # both day fields restricted: either matches (cron's rule)
        ("0 0 29 2 *", 4 * 365 * 24 + 24),  # every leap year
        ("5/20 * * * *", 20 / 60),  # 'N/step' runs from N to the end: :05, :25, :45, then :05
        ("5 * * * *", 1),
        ("0 0 * * ?", 24),
    ],
)
def test_the_longest_gap_between_runs_follows_cron_rules(schedule, gap_hours):
    assert cron_schedule.parse(schedule).longest_gap_seconds() == round(gap_hours * 3600)


@pytest.mark.parametrize(
    "schedule, fragment",
    [
        ("* * * *", "has 4 field(s)"),
        ("*/0 * * * *", "minute (0-59): '*/0': the step after '/' must be a positive number"),
        ("0 24 * * *", "hour (0-23): 24 is outside 0-23"),
        ("0 0 0 * *", "day of month (1-31): 0 is outside 1-31"),
        ("0 0 * * 7", "day of week (0-6 or SUN-SAT): 7 is outside 0-6"),
        ("0 0 * * FRI-MON", "'FRI-MON' runs backwards"),
        ("0,,5 * * * *", "'' is empty"),
        ("TZ=UTC 0 0 * * *", "timeZone"),
    ],
)
def test_each_bad_field_is_named(schedule, fragment):
    with pytest.raises(ValueError) as raised:
        cron_schedule.parse(schedule)
    assert fragment in str(raised.value)


def test_every_problem_of_one_schedule_is_reported():
    with pytest.raises(ValueError) as raised:
        cron_schedule.parse("61 25 * 13 *")
    message = str(raised.value)
    assert "minute (0-59)" in message and "hour (0-23)" in message and "month (1-12 or JAN-DEC)" in message
