"""Every policy of the pack, in one list: what `__main__.py` serves and what tools/analyzer runs."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel

from . import autoscaling, cache, cron_jobs, egress, pod_security, rbac, secrets, stack_rules, workload

PACK_NAME = "platform-policies"
# Anything not configured otherwise blocks the deployment; policies/config/*.json relax it per stack.
DEFAULT_ENFORCEMENT = EnforcementLevel.MANDATORY


ALL_POLICIES = (
    pod_security.POLICIES + workload.POLICIES + secrets.POLICIES + stack_rules.POLICIES + egress.POLICIES + rbac.POLICIES
    + autoscaling.POLICIES + cron_jobs.POLICIES + cache.POLICIES
)

# policy -> applies(resource_type, kind, api_version): False when the policy cannot report anything on such a
# resource (its own first test would return). tools.analyzer leaves those out of the request; the CLI runs all.
APPLIES_TO = {
    **pod_security.APPLIES_TO,
    **workload.APPLIES_TO,
    **secrets.APPLIES_TO,
    **stack_rules.APPLIES_TO,
    **egress.APPLIES_TO,
    **rbac.APPLIES_TO,
    **autoscaling.APPLIES_TO,
    **cron_jobs.APPLIES_TO,
    **cache.APPLIES_TO,
}
