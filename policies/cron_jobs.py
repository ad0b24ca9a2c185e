"""Bounded batch work: what a platform team wants of every Job and CronJob, beyond the pod rules PSS applies to
their templates (pod_security.POD_TEMPLATE_PATHS covers both).

- `job-run-deadline`: a Job, and the Jobs a CronJob makes, end by a deadline (activeDeadlineSeconds). A hung run
  otherwise holds its resources (and quota) forever, and under concurrencyPolicy Forbid blocks every later run.
- `cronjob-no-overlapping-runs`: concurrencyPolicy Forbid or Replace. Allow (the default) starts a run while the
  previous one is still going: slow runs pile up, each holding a database connection and a pod of the quota.
- `cronjob-starting-deadline`: startingDeadlineSeconds set. Without it, a run missed while the controller was down
  starts whenever it comes back (a nightly report at noon), and after 100 missed schedules the controller stops
  starting the CronJob at all.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import ResourceValidationPolicy, Severity

from .pod_security import get, group_and_kind

JOB, CRON_JOB = ("batch", "Job"), ("batch", "CronJob")
BOUNDED_CONCURRENCY = ("Forbid", "Replace")
STACK_FILE_HINT = "stack file: services[].activeDeadlineSeconds of a kind: cron service, tasks[].timeoutSeconds, migrations.timeoutSeconds"


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def run_deadline_problems(resource_type: str, props: Any) -> list[str]:
    kind = group_and_kind(resource_type)
    if kind == JOB:
        path, deadline = "spec.activeDeadlineSeconds", get(props, "spec", "activeDeadlineSeconds")
    elif kind == CRON_JOB:
        path = "spec.jobTemplate.spec.activeDeadlineSeconds"
        deadline = get(props, "spec", "jobTemplate", "spec", "activeDeadlineSeconds")
    else:
        return []
    if _positive(deadline):
        return []
    return [
        f"{path} is not set, so a hung run never ends: it keeps its pod and quota and, under concurrencyPolicy Forbid, "
        f"blocks every later run. Set {path} to how long a run may take, retries included ({STACK_FILE_HINT})."
    ]


def overlapping_runs_problems(resource_type: str, props: Any) -> list[str]:
    if group_and_kind(resource_type) != CRON_JOB:
        return []
    policy = get(props, "spec", "concurrencyPolicy")
    if policy in BOUNDED_CONCURRENCY:
        return []
    shown = "is not set (Allow)" if policy is None else f"is {policy!r}"
    return [
        f"spec.concurrencyPolicy {shown}: a run starts while the previous one still runs, so slow runs pile up. Set it "
        "to Forbid (skip a run while one is going) or Replace (stop the old run) (stack file: services[].concurrencyPolicy)."
    ]


def starting_deadline_problems(resource_type: str, props: Any) -> list[str]:
    if group_and_kind(resource_type) != CRON_JOB or _positive(get(props, "spec", "startingDeadlineSeconds")):
        return []
    return [
        "spec.startingDeadlineSeconds is not set: a run missed while the controller was down starts whenever it is back, "
        "and after 100 missed schedules the CronJob stops starting runs. Set it to how late a run may still start "
        "(stack file: services[].startingDeadlineSeconds)."
    ]


def _policy(name: str, description: str, check) -> ResourceValidationPolicy:
    def validate(args, report_violation) -> None:
        for message in check(args.resource_type, args.props):
            report_violation(message)

    return ResourceValidationPolicy(name=name, description=description, validate=validate, severity=Severity.MEDIUM)


POLICIES: list = [
    _policy("job-run-deadline", "Jobs and the Jobs of CronJobs must end by a deadline (activeDeadlineSeconds).", run_deadline_problems),
    _policy("cronjob-no-overlapping-runs", "CronJobs must not start a run while one is going (concurrencyPolicy Forbid or Replace).", overlapping_runs_problems),
    _policy("cronjob-starting-deadline", "CronJobs must bound how late a missed run may start (startingDeadlineSeconds).", starting_deadline_problems),
]


def _batch(kinds: tuple[tuple[str, str], ...]):
    def applies(resource_type: str, kind: str | None = None, api_version: str | None = None) -> bool:
        return group_and_kind(resource_type) in kinds

    return applies


# Which resources a policy can report on at all (see policies.pack.APPLIES_TO).
APPLIES_TO: dict = {
    POLICIES[0]: _batch((JOB, CRON_JOB)),
    POLICIES[1]: _batch((CRON_JOB,)),
    POLICIES[2]: _batch((CRON_JOB,)),
}
