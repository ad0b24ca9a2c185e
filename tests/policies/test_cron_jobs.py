"""Bounded batch work (job-run-deadline, cronjob-no-overlapping-runs, cronjob-starting-deadline) over plain manifests,
through the policy SDK's analyzer; and the shipped stacks' CronJobs and Jobs pass them."""

from __future__ import annotations

import copy

import pytest

from policies import cron_jobs, pack
from tests.policies.conftest import hardened_deployment, policies_hit, run

RULES = {"job-run-deadline", "cronjob-no-overlapping-runs", "cronjob-starting-deadline"}


def pod_template() -> dict:
    template = copy.deepcopy(hardened_deployment()["spec"]["template"])
    template["spec"]["restartPolicy"] = "Never"
    return template


def bounded_cron_job() -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "report", "namespace": "shop"},
        "spec": {
            "schedule": "30 2 * * *",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "jobTemplate": {"spec": {"activeDeadlineSeconds": 1800, "backoffLimit": 2, "template": pod_template()}},
        },
    }


def bounded_job() -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "backfill", "namespace": "shop"},
        "spec": {"activeDeadlineSeconds": 900, "backoffLimit": 2, "template": pod_template()},
    }


def findings_of(obj: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in run([obj]):
        found.setdefault(finding.policy, []).append(finding.message)
    return found


def test_the_rules_are_in_the_pack():
    assert {policy.name for policy in cron_jobs.POLICIES} == RULES
    assert all(policy in pack.ALL_POLICIES for policy in cron_jobs.POLICIES)


@pytest.mark.parametrize("make", [bounded_cron_job, bounded_job])
def test_bounded_batch_work_passes_every_rule(make):
    assert policies_hit(run([make()])) & RULES == set()


FAILING = [
    # (id, manifest maker, mutation, the rule, fragments of its message)
    ("cron-no-deadline", bounded_cron_job, lambda o: o["spec"]["jobTemplate"]["spec"].pop("activeDeadlineSeconds"),
     "job-run-deadline", ["spec.jobTemplate.spec.activeDeadlineSeconds is not set", "services[].activeDeadlineSeconds"]),
    ("cron-zero-deadline", bounded_cron_job, lambda o: o["spec"]["jobTemplate"]["spec"].update(activeDeadlineSeconds=0),
     "job-run-deadline", ["a hung run never ends"]),
    ("job-no-deadline", bounded_job, lambda o: o["spec"].pop("activeDeadlineSeconds"),
     "job-run-deadline", ["spec.activeDeadlineSeconds is not set", "tasks[].timeoutSeconds"]),
    ("allow", bounded_cron_job, lambda o: o["spec"].update(concurrencyPolicy="Allow"),
     "cronjob-no-overlapping-runs", ["spec.concurrencyPolicy is 'Allow'", "Forbid", "Replace"]),
    ("concurrency-unset", bounded_cron_job, lambda o: o["spec"].pop("concurrencyPolicy"),
     "cronjob-no-overlapping-runs", ["is not set (Allow)"]),
    ("no-starting-deadline", bounded_cron_job, lambda o: o["spec"].pop("startingDeadlineSeconds"),
     "cronjob-starting-deadline", ["spec.startingDeadlineSeconds is not set", "100 missed schedules"]),
]


@pytest.mark.parametrize(
    "make, mutate, rule, fragments", [case[1:] for case in FAILING], ids=[case[0] for case in FAILING]
)
def test_unbounded_batch_work_fails_exactly_its_rule(make, mutate, rule, fragments):
    obj = make()
    mutate(obj)
    found = findings_of(obj)
    assert set(found) & RULES == {rule}
    (message,) = found[rule]
    for fragment in fragments:
        assert fragment in message, message


def test_pss_still_judges_the_templates_of_jobs_and_cron_jobs():
    """The bounded-batch rules add to the pod rules, which reach CronJob and Job templates (POD_TEMPLATE_PATHS)."""
    for make, spec_path in ((bounded_cron_job, ("spec", "jobTemplate", "spec", "template")), (bounded_job, ("spec", "template"))):
        obj = make()
        template = obj
        for key in spec_path:
            template = template[key]
        template["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
        assert "pss-restricted-privilege-escalation" in policies_hit(run([obj])), make.__name__


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_shipped_cron_jobs_and_jobs_are_bounded(stack, rendered):
    objects = [o for o in rendered[stack].kubernetes_objects() if o["kind"] in ("CronJob", "Job")]
    assert any(o["kind"] == "CronJob" for o in objects)
    assert policies_hit(run(objects)) & RULES == set()
