"""The one place that says how a pod runs here: the Kubernetes "restricted" Pod Security Standard, and then some.

Every workload the platform renders takes its security contexts, scratch volume and labels from these
functions, so hardening is decided once and a reviewer reads it once.
"""

from __future__ import annotations

from typing import Any

# A writable scratch directory: the root filesystem is read-only, and most runtimes still want /tmp.
SCRATCH_VOLUME = "tmp"
SCRATCH_MOUNT_PATH = "/tmp"
SCRATCH_SIZE_LIMIT = "64Mi"
# The policy pack's opt-out for a pod that must call the Kubernetes API (policies/workload.py reads the same key).
ALLOW_TOKEN_ANNOTATION = "platform.example.com/allow-service-account-token"
# IAM roles for service accounts (IRSA): the EKS pod identity webhook gives every new pod of a ServiceAccount with this
# annotation a projected token for AWS STS, whether or not the Kubernetes API token is mounted (README, "Workload
# identity"). Services set it from `serviceAccount.awsRoleArn`, databases from `backups.credentials.roleArn`.
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
# Why a NetworkPolicy lets pods reach the internet, for reviewers and the policy pack (policies/egress.py reads the same
# key): services write it from `egress[].reason`, databases for their way to backups on S3.
EGRESS_REASON_ANNOTATION = "platform.example.com/egress-reason"


def pod_security_context(uid: int, gid: int) -> dict[str, Any]:
    """Pod-level settings: never root, the runtime's default seccomp profile, files owned by the app's group."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "fsGroup": gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container-level settings, repeated from the pod level so each container is safe on its own."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def scratch_volume() -> dict[str, Any]:
    return {"name": SCRATCH_VOLUME, "emptyDir": {"sizeLimit": SCRATCH_SIZE_LIMIT}}


def scratch_volume_mount() -> dict[str, Any]:
    return {"name": SCRATCH_VOLUME, "mountPath": SCRATCH_MOUNT_PATH}


def standard_labels(name: str, component: str, part_of: str = "platform") -> dict[str, str]:
    """The recommended app.kubernetes.io labels; `name` is also what selectors and network policies match."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": part_of,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector_labels(name: str) -> dict[str, str]:
    """The labels a workload's selector matches: immutable on a Deployment, so kept minimal."""
    return {"app.kubernetes.io/name": name}


def one_at_a_time_disruption(match_labels: dict[str, str]) -> dict[str, Any]:
    """A PodDisruptionBudget spec: one pod at a time may be evicted, so drains make progress while the rest keeps
    serving; a pod that never became ready (a crash loop) may always be evicted, or it would block a drain for good."""
    return {"maxUnavailable": 1, "selector": {"matchLabels": match_labels}, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
