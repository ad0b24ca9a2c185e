"""e2e/cron_runs.py's Job made from a CronJob: the shape `kubectl create job --from=cronjob/...` gives it, schema-valid
and restricted (what `make e2e` then proves against Pod Security Admission and kwok)."""

from __future__ import annotations

import json

from e2e import cron_runs
from policies import pod_security
from tools import engine, schemas


def test_a_job_from_the_report_cron_job_is_what_kubectl_makes(rendered):
    (cron_job,) = [o for o in rendered["prod"].kubernetes_objects() if o["kind"] == "CronJob"]
    cron_job = engine.unwrap_secrets(cron_job)
    cron_job["metadata"]["uid"] = "4f6c1d2e-0000-4000-8000-000000000001"  # the API server's, on a cluster
    job = cron_runs.job_from_cron_job(cron_job, "report-e2e-manual")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "CronJob", "name": "report", "uid": cron_job["metadata"]["uid"], "controller": True}
    ]
    assert job["metadata"]["labels"] == cron_job["spec"]["jobTemplate"]["metadata"]["labels"]
    assert job["spec"] == cron_job["spec"]["jobTemplate"]["spec"]
    assert job["spec"] is not cron_job["spec"]["jobTemplate"]["spec"]  # a copy: the CronJob stays as read
    assert schemas.validate_all([job]) == []
    assert pod_security.run_checks(pod_security.ALL_CHECKS, "kubernetes:batch/v1:Job", job) == []
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"  # kwok's pod-complete stage completes it


def test_the_secret_checksum_is_masked_in_a_cron_jobs_template_too(rendered):
    """An HMAC under a generated key: the real engine's differs from the offline preview's, in any pod template."""
    from components.app_service import SECRET_CHECKSUM_ANNOTATION
    from e2e import compare

    (cron_job,) = [engine.unwrap_secrets(o) for o in rendered["staging"].kubernetes_objects() if o["kind"] == "CronJob"]
    other = json.loads(json.dumps(cron_job))
    annotations = other["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"]
    annotations[SECRET_CHECKSUM_ANNOTATION] = "0" * 64
    assert compare.normalize(cron_job) == compare.normalize(other)
    other["spec"]["schedule"] = "0 4 * * *"  # the rest is still compared
    assert compare.normalize(cron_job) != compare.normalize(other)
    assert cron_job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"][SECRET_CHECKSUM_ANNOTATION] != compare.MASK
