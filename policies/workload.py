"""Workload hygiene beyond the Pod Security Standards: what the platform's hardened defaults promise.

Every pod-bearing kind is judged through its pod template (see pod_security.pod_template); the image rule also judges
the PostgreSQL image of a CloudNativePG Cluster. Each rule is a pure function returning messages that name the field
path and the fix; the policies around them are thin.
"""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import PolicyConfigSchema, ResourceValidationPolicy, Severity

from .operator_pods import OPERATOR_SUPPLIED_IMAGE
from .pod_security import PodTemplate, containers, get, group_and_kind, is_windows, pod_template, runs_pods

ALLOW_TOKEN_ANNOTATION = "platform.example.com/allow-service-account-token"
REQUIRED_RESOURCES = ("cpu", "memory")
# A digest as the OCI distribution spec writes it: "@<algorithm>:<hex>", e.g. "@sha256:<64 hex digits>".
DIGEST = re.compile(r"@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
CNPG_CLUSTER = ("postgresql.cnpg.io", "Cluster")


# --- pure checks --------------------------------------------------------------------------------------------


def check_read_only_root_filesystem(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    if is_windows(pod_spec):
        return []  # Windows containers cannot have a read-only root filesystem
    return [
        f"{where}.securityContext.readOnlyRootFilesystem is not true: set it to true and mount an emptyDir "
        "where the process must write (e.g. /tmp)"
        for container, where in containers(pod_spec, spec_path)
        if get(container, "securityContext", "readOnlyRootFilesystem") is not True
    ]


def check_resources(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    messages = []
    for container, where in containers(pod_spec, spec_path):
        if ".ephemeralContainers[" in where:
            continue  # the API forbids resources on ephemeral containers
        missing = [
            f"{kind}.{resource}"
            for kind in ("requests", "limits")
            for resource in REQUIRED_RESOURCES
            if get(container, "resources", kind, resource) in (None, "")
        ]
        if missing:
            messages.append(
                f"{where}.resources is missing {', '.join(missing)}: set cpu and memory requests and limits "
                "so the scheduler can place the pod and one container cannot starve the node"
            )
    return messages


def image_problem(image: Any, *, require_digest: bool) -> str | None:
    """Why an image reference is not pinned, or None when it is."""
    if not isinstance(image, str) or not image:
        return "is not set: name an image with a version tag or a digest"
    if DIGEST.search(image):
        return None
    if require_digest:
        return f"is {image!r} without a digest: pin it as {image.split('@')[0]}@sha256:<digest>"
    last_segment = image.rsplit("/", 1)[-1]  # a registry "host:port/" must not count as a tag
    if ":" not in last_segment:
        return f"is {image!r} without a tag (which means latest): add a version tag or a digest"
    if last_segment.rsplit(":", 1)[1] == "latest":
        return f"is {image!r}: replace the latest tag by a version tag or a digest"
    return None


def check_images(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata", require_digest=False) -> list[str]:
    messages = []
    for container, where in containers(pod_spec, spec_path):
        if get(container, "image") == OPERATOR_SUPPLIED_IMAGE:
            continue
        problem = image_problem(get(container, "image"), require_digest=require_digest)
        if problem:
            messages.append(f"{where}.image {problem}")
    return messages


def check_database_image(cluster: Any, *, require_digest=False) -> list[str]:
    """A CloudNativePG Cluster's PostgreSQL image: without one the operator picks its own default, which changes
    with an operator upgrade, and so would the PostgreSQL version under a running database."""
    fix = "pin it in the stack's databases[].imageName"
    image = get(cluster, "spec", "imageName")
    if image in (None, ""):
        return [
            "spec.imageName is not set, so CloudNativePG runs its operator's default PostgreSQL image, which an operator "
            f"upgrade changes: {fix}, a version tag matching the operator (a digest too where digests are required)"
        ]
    problem = image_problem(image, require_digest=require_digest)
    return [f"spec.imageName {problem} ({fix})"] if problem else []


def token_allowed(*metadatas: Any) -> bool:
    """The opt-out annotation, on the object or (for workloads) on its pod template."""
    return any(get(metadata, "annotations", ALLOW_TOKEN_ANNOTATION) == "true" for metadata in metadatas)


def check_pod_token(pod_spec, pod_metadata, *, spec_path="spec", metadata_path="metadata") -> list[str]:
    if get(pod_spec, "automountServiceAccountToken") is False:
        return []
    return [
        f"{spec_path}.automountServiceAccountToken is not false: set it to false (most pods never call the "
        f'Kubernetes API), or annotate the object with {ALLOW_TOKEN_ANNOTATION}: "true" if this one must'
    ]


def check_service_account_token(service_account: Any) -> list[str]:
    if get(service_account, "automountServiceAccountToken") is False:
        return []
    return [
        "automountServiceAccountToken is not false: set it to false on the ServiceAccount, or annotate it "
        f'with {ALLOW_TOKEN_ANNOTATION}: "true" if its pods must call the Kubernetes API'
    ]


def check_namespace(obj: Any) -> list[str]:
    namespace = get(obj, "metadata", "namespace")
    if namespace in (None, ""):
        return ["metadata.namespace is not set, so the workload lands in default: set the application's namespace"]
    if namespace == "default":
        return ["metadata.namespace is default: deploy into the application's own namespace"]
    return []


# --- the policies -------------------------------------------------------------------------------------------


def _template_or_none(args) -> PodTemplate | None:
    return pod_template(args.resource_type, args.props)


def _report_all(report_violation, messages: list[str]) -> None:
    for message in messages:
        report_violation(message)


def _template_paths(template: PodTemplate) -> dict[str, str]:
    return {"spec_path": template.spec_path, "metadata_path": template.metadata_path}


def _validate_read_only_root(args, report_violation) -> None:
    template = _template_or_none(args)
    if template:
        _report_all(report_violation, check_read_only_root_filesystem(template.spec, template.metadata, **_template_paths(template)))


def _validate_resources(args, report_violation) -> None:
    template = _template_or_none(args)
    if template:
        _report_all(report_violation, check_resources(template.spec, template.metadata, **_template_paths(template)))


def _validate_images(args, report_violation) -> None:
    # Config-schema defaults are filled in by the CLI only; in-process the property may be missing.
    require_digest = bool(args.get_config().get("requireDigest", False))
    if group_and_kind(args.resource_type) == CNPG_CLUSTER:
        _report_all(report_violation, check_database_image(args.props, require_digest=require_digest))
        return
    template = _template_or_none(args)
    if template:
        messages = check_images(template.spec, template.metadata, **_template_paths(template), require_digest=require_digest)
        _report_all(report_violation, messages)


def _validate_token(args, report_violation) -> None:
    if args.resource_type == "kubernetes:core/v1:ServiceAccount":
        if not token_allowed(get(args.props, "metadata")):
            _report_all(report_violation, check_service_account_token(args.props))
        return
    template = _template_or_none(args)
    if template and not token_allowed(get(args.props, "metadata"), template.metadata):
        _report_all(report_violation, check_pod_token(template.spec, template.metadata, **_template_paths(template)))


def _validate_namespace(args, report_violation) -> None:
    if _template_or_none(args) is not None:
        _report_all(report_violation, check_namespace(args.props))


POLICIES: list = [
    ResourceValidationPolicy(
        name="workload-read-only-root-filesystem",
        description="Containers must run with a read-only root filesystem.",
        validate=_validate_read_only_root,
        severity=Severity.MEDIUM,
    ),
    ResourceValidationPolicy(
        name="workload-resources",
        description="Containers must set cpu and memory requests and limits.",
        validate=_validate_resources,
        severity=Severity.MEDIUM,
    ),
    ResourceValidationPolicy(
        name="workload-image-pinned",
        description=(
            "Container images and CloudNativePG Clusters' PostgreSQL images must be pinned: a version tag (never latest) "
            "or, with requireDigest, a digest."
        ),
        validate=_validate_images,
        severity=Severity.HIGH,
        config_schema=PolicyConfigSchema(
            properties={
                "requireDigest": {
                    "type": "boolean",
                    "default": False,
                    "description": "Require every image to be pinned by digest (image@sha256:...), not only by tag.",
                }
            }
        ),
    ),
    ResourceValidationPolicy(
        name="workload-service-account-token",
        description="Pods and ServiceAccounts must not mount a service account token unless annotated to need it.",
        validate=_validate_token,
        severity=Severity.MEDIUM,
    ),
    ResourceValidationPolicy(
        name="workload-namespace",
        description="Workloads must run in their application's namespace, never in default.",
        validate=_validate_namespace,
        severity=Severity.MEDIUM,
    ),
]


def _runs_pods_or_is_service_account(resource_type: str, kind: str | None = None, api_version: str | None = None) -> bool:
    return resource_type == "kubernetes:core/v1:ServiceAccount" or runs_pods(resource_type)


def _runs_pods_or_is_a_database(resource_type: str, kind: str | None = None, api_version: str | None = None) -> bool:
    return group_and_kind(resource_type) == CNPG_CLUSTER or runs_pods(resource_type)


_APPLIES_TO_BY_NAME = {
    "workload-service-account-token": _runs_pods_or_is_service_account,
    "workload-image-pinned": _runs_pods_or_is_a_database,
}
# Which resources a policy can report on at all (see policies.pack.APPLIES_TO).
APPLIES_TO: dict = {policy: _APPLIES_TO_BY_NAME.get(policy.name, runs_pods) for policy in POLICIES}
