"""A run of each CronJob made by hand, as `kubectl create job --from=cronjob/<name>` makes it, on the local control
plane: Pod Security Admission must admit its pod (the namespace enforces restricted) and kwok's pod-complete stage
completes it, so the Job controller marks the Job Complete.

What kubectl does (staging/src/k8s.io/kubectl/pkg/cmd/create/create_job.go, createJobFromCronJob): a Job with the
jobTemplate's spec, labels and annotations, the annotation `cronjob.kubernetes.io/instantiate: manual`, and an
ownerReference to the CronJob as its controller.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from e2e.kube import ApiError, Kube
from e2e.processes import wait_until

MANUAL_ANNOTATION = ("cronjob.kubernetes.io/instantiate", "manual")
SUFFIX = "e2e-manual"


def job_from_cron_job(cron_job: dict[str, Any], name: str) -> dict[str, Any]:
    template = cron_job["spec"]["jobTemplate"]
    template_metadata = template.get("metadata") or {}
    metadata = cron_job["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": metadata["namespace"],
            "labels": dict(template_metadata.get("labels") or {}),
            "annotations": {**(template_metadata.get("annotations") or {}), MANUAL_ANNOTATION[0]: MANUAL_ANNOTATION[1]},
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "CronJob", "name": metadata["name"], "uid": metadata["uid"], "controller": True}
            ],
        },
        "spec": copy.deepcopy(template["spec"]),
    }


def _condition(job: dict[str, Any] | None, kind: str) -> bool:
    conditions = ((job or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _events_about(kube: Kube, namespace: str, name: str) -> list[str]:
    events = kube.request("GET", f"/api/v1/namespaces/{namespace}/events?fieldSelector=involvedObject.name%3D{name}")
    return [f"{e.get('reason')}: {e.get('message', '')[:300]}" for e in (events or {}).get("items", [])]


def cron_job_runs_complete(kube: Kube, namespace: str, note) -> bool | None:
    """True when a hand-made run of every CronJob of the namespace completed; None when the namespace has none."""
    cron_jobs = kube.list("batch/v1", "CronJob", namespace)
    if not cron_jobs:
        return None
    completed = True
    for cron_job in cron_jobs:
        name = f"{cron_job['metadata']['name']}-{SUFFIX}"
        kube.create(job_from_cron_job(cron_job, name))

        def finished() -> bool:
            job = kube.get("batch/v1", "Job", name, namespace)
            return _condition(job, "Complete") or _condition(job, "Failed")

        try:
            wait_until(f"job {name}", finished, 120)
        except RuntimeError as error:
            note(f"{error}; events: {json.dumps(_events_about(kube, namespace, name))}")
        job = kube.get("batch/v1", "Job", name, namespace)
        ok = _condition(job, "Complete") and ((job or {}).get("status") or {}).get("succeeded", 0) >= 1
        if not ok:
            note(f"job {name} did not complete: {json.dumps((job or {}).get('status'))[:400]}")
        completed = completed and ok
        try:  # the CronJob would delete it with itself; gone now, the stack's destroy check sees only the stack's
            kube.request("DELETE", kube.path("batch/v1", "Job", namespace, name) + "?propagationPolicy=Background")
        except ApiError as error:
            note(f"job {name} not deleted: {error}")
    return completed
