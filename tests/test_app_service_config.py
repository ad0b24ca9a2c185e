"""services[].shutdown, services[].health timing and services[].migrations: defaults, ranges, and the messages a
stack file's mistakes get (through stack_config.load, as `pulumi up` reports them)."""

from __future__ import annotations

import pytest

from components.app_service_config import HealthChecks, Migrations, Shutdown
from tests.test_config import api, load, problems_for, stack_values, web

DIGEST = "sha256:" + "a" * 64


def test_shutdown_is_always_on_with_defaults_and_health_timing_keeps_the_old_probes():
    values, secret_keys = stack_values("local")
    service = load(values, secret_keys).services[0]
    assert (service.shutdown.drain_seconds, service.shutdown.grace_period_seconds) == (10, 30)
    health = service.health
    assert (health.startup_seconds, health.period_seconds, health.failure_threshold) == (150, None, 3)
    assert service.migrations is None


def test_migrations_default_to_the_service_image_and_five_minutes():
    migrations = Migrations.model_validate({"command": ["/app/migrate", "up"]})
    assert (migrations.image, migrations.timeout_seconds) == (None, 300)


# (case id, change to the api service, fragments of one problem)
BAD_INPUTS = [
    (
        "grace-not-above-drain",
        {"shutdown": {"drainSeconds": 30, "gracePeriodSeconds": 30}},
        ["platform:services[1].shutdown", "gracePeriodSeconds (30) must exceed drainSeconds (30)", "Raise gracePeriodSeconds (e.g. 50)"],
    ),
    (
        "drain-above-the-default-grace",
        {"shutdown": {"drainSeconds": 45}},
        ["gracePeriodSeconds (30) must exceed drainSeconds (45)", "or lower drainSeconds"],
    ),
    ("no-drain", {"shutdown": {"drainSeconds": 0}}, ["platform:services[1].shutdown.drainSeconds", "greater than or equal to 1"]),
    ("endless-grace", {"shutdown": {"gracePeriodSeconds": 301}}, ["platform:services[1].shutdown.gracePeriodSeconds", "less than or equal to 300"]),
    ("shutdown-typo", {"shutdown": {"drainSecond": 5}}, ["platform:services[1].shutdown.drainSecond: unknown key"]),
    ("startup-too-long", {"health": {"startupSeconds": 601}}, ["platform:services[1].health.startupSeconds", "less than or equal to 600"]),
    ("startup-too-short", {"health": {"startupSeconds": 4}}, ["platform:services[1].health.startupSeconds", "greater than or equal to 5"]),
    ("period-zero", {"health": {"periodSeconds": 0}}, ["platform:services[1].health.periodSeconds", "greater than or equal to 1"]),
    ("period-too-long", {"health": {"periodSeconds": 61}}, ["platform:services[1].health.periodSeconds", "less than or equal to 60"]),
    ("threshold-zero", {"health": {"failureThreshold": 0}}, ["platform:services[1].health.failureThreshold", "greater than or equal to 1"]),
    ("migrations-without-command", {"migrations": {"timeoutSeconds": 60}}, ["platform:services[1].migrations.command: missing"]),
    ("migrations-empty-command", {"migrations": {"command": []}}, ["platform:services[1].migrations.command", "at least 1 item"]),
    ("migrations-blank-executable", {"migrations": {"command": [" ", "up"]}}, ["platform:services[1].migrations.command", "command[0] is empty"]),
    (
        "migrations-latest-image",
        {"migrations": {"command": ["migrate"], "image": "api-migrate:latest"}},
        ["platform:services[1].migrations.image", "mutable tag 'latest'", "'api-migrate:1.2.3'"],
    ),
    (
        "migrations-untagged-image",
        {"migrations": {"command": ["migrate"], "image": "api-migrate"}},
        ["platform:services[1].migrations.image", "has no tag", "'api-migrate@sha256:<digest>'"],
    ),
    (
        "migrations-timeout-too-short",
        {"migrations": {"command": ["migrate"], "timeoutSeconds": 29}},
        ["platform:services[1].migrations.timeoutSeconds", "greater than or equal to 30"],
    ),
    (
        "migrations-timeout-too-long",
        {"migrations": {"command": ["migrate"], "timeoutSeconds": 3601}},
        ["platform:services[1].migrations.timeoutSeconds", "less than or equal to 3600"],
    ),
]  # fmt: skip


@pytest.mark.parametrize("case_id, change, fragments", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_explained(case_id, change, fragments):
    problems = problems_for(lambda values, secret_keys: api(values).update(change))
    assert any(all(fragment in problem for fragment in fragments) for problem in problems), problems


def test_every_problem_of_these_keys_is_reported_at_once():
    def mutate(values, secret_keys):
        web(values).update(shutdown={"drainSeconds": 40})
        api(values).update(migrations={"command": ["migrate"], "image": "api:latest"}, health={"failureThreshold": 0})

    problems = problems_for(mutate)
    assert len(problems) == 3, problems
    where = [problem.split(":", 2)[1] for problem in problems]
    assert where == ["services[0].shutdown", "services[1].health.failureThreshold", "services[1].migrations.image"]


@pytest.mark.parametrize(
    "model, values",
    [
        (Shutdown, {"drainSeconds": 1, "gracePeriodSeconds": 2}),
        (Shutdown, {"drainSeconds": 60, "gracePeriodSeconds": 300}),
        (HealthChecks, {"startupSeconds": 5, "periodSeconds": 1, "failureThreshold": 1}),
        (HealthChecks, {"startupSeconds": 600, "periodSeconds": 60, "failureThreshold": 10}),
        (Migrations, {"command": ["migrate"], "image": f"registry.local:5000/api-migrate@{DIGEST}", "timeoutSeconds": 30}),
        (Migrations, {"command": ["migrate"], "image": "api-migrate:2.0.1", "timeoutSeconds": 3600}),
    ],
)
def test_the_edges_of_each_range_are_accepted(model, values):
    assert model.model_validate(values).model_dump(by_alias=True, exclude_unset=True) == values
