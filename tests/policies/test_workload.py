"""Workload policies through the analyzer: a table of edges per rule, config (requireDigest) and its fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pulumi_policy import ResourceValidationArgs

from policies import workload
from tests.policies.conftest import DEL, SET, apply, hardened_deployment, policies_hit, run, set_field
from tools.analyzer import load_policy_config

POD = "spec.template.spec"
WEB = f"{POD}.containers[0]"
INIT = f"{POD}.initContainers[0]"
DIGEST = "sha256:" + "a" * 64
ALLOW = ("metadata", "annotations", workload.ALLOW_TOKEN_ANNOTATION)
TEMPLATE_ALLOW = ("spec", "template", "metadata", "annotations", workload.ALLOW_TOKEN_ANNOTATION)
PROD_CONFIG = Path(__file__).resolve().parents[2] / "policies" / "config" / "prod.json"

def hardened_job() -> dict:
    """The hardened Deployment's pod template run to completion: every pod-template path is the same."""
    deployment = hardened_deployment()
    template = deployment["spec"]["template"]
    template["spec"]["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "shop"},
        "spec": {"backoffLimit": 2, "activeDeadlineSeconds": 600, "template": template},  # bounded (job-run-deadline)
    }


# (policy, case id, changes to the workload (a Deployment or a Job), must it be reported?, fragment the message names)
CASES = [
    ("workload-read-only-root-filesystem", "not set", [(DEL, f"{WEB}.securityContext.readOnlyRootFilesystem", None)], True, f"{WEB} (container \"web\").securityContext.readOnlyRootFilesystem"),
    ("workload-read-only-root-filesystem", "false on the init container", [(SET, f"{INIT}.securityContext.readOnlyRootFilesystem", False)], True, "initContainers[0]"),
    ("workload-read-only-root-filesystem", "windows pods are exempt", [(SET, f"{POD}.os.name", "windows"), (DEL, f"{WEB}.securityContext.readOnlyRootFilesystem", None)], False, None),
    ("workload-resources", "no memory limit", [(DEL, f"{WEB}.resources.limits.memory", None)], True, "resources is missing limits.memory"),
    ("workload-resources", "init container without resources", [(DEL, f"{INIT}.resources", None)], True, "missing requests.cpu, requests.memory, limits.cpu, limits.memory"),
    ("workload-resources", "ephemeral containers cannot have resources", [(SET, f"{POD}.ephemeralContainers", [{"name": "debug", "image": "busybox:1.36"}])], False, None),
    ("workload-image-pinned", "no tag", [(SET, f"{WEB}.image", "nginx")], True, "image is 'nginx' without a tag"),
    ("workload-image-pinned", "latest", [(SET, f"{INIT}.image", "ghcr.io/example/web:latest")], True, "replace the latest tag"),
    ("workload-image-pinned", "registry port is not a tag", [(SET, f"{WEB}.image", "registry.local:5000/team/web")], True, "without a tag"),
    ("workload-image-pinned", "no image", [(DEL, f"{WEB}.image", None)], True, "image is not set"),
    ("workload-image-pinned", "registry port and a tag", [(SET, f"{WEB}.image", "registry.local:5000/team/web:2.0.1")], False, None),
    ("workload-image-pinned", "digest", [(SET, f"{WEB}.image", f"ghcr.io/example/web@{DIGEST}")], False, None),
    ("workload-image-pinned", "latest pinned by digest", [(SET, f"{WEB}.image", f"ghcr.io/example/web:latest@{DIGEST}")], False, None),
    ("workload-service-account-token", "not set", [(DEL, f"{POD}.automountServiceAccountToken", None)], True, f"{POD}.automountServiceAccountToken is not false"),
    ("workload-service-account-token", "true", [(SET, f"{POD}.automountServiceAccountToken", True)], True, "allow-service-account-token"),
    ("workload-service-account-token", "opt-out annotation must say true", [(SET, f"{POD}.automountServiceAccountToken", True), (SET, ALLOW, "false")], True, "automountServiceAccountToken"),
    ("workload-service-account-token", "annotated object", [(SET, f"{POD}.automountServiceAccountToken", True), (SET, ALLOW, "true")], False, None),
    ("workload-service-account-token", "annotated pod template", [(DEL, f"{POD}.automountServiceAccountToken", None), (SET, TEMPLATE_ALLOW, "true")], False, None),
    ("workload-namespace", "no namespace", [(DEL, "metadata.namespace", None)], True, "metadata.namespace is not set"),
    ("workload-namespace", "default", [(SET, "metadata.namespace", "default")], True, "metadata.namespace is default"),
    ("workload-namespace", "own namespace", [(SET, "metadata.namespace", "payments")], False, None),
]  # fmt: skip


@pytest.mark.parametrize("workload", [hardened_deployment, hardened_job], ids=["Deployment", "Job"])
@pytest.mark.parametrize(
    ("policy", "changes", "violates", "fragment"),
    [pytest.param(policy, changes, violates, fragment, id=f"{policy}: {case}") for policy, case, changes, violates, fragment in CASES],
)
def test_rule(policy, changes, violates, fragment, workload):
    assert run([workload()]) == []
    findings = run([apply(changes, workload())])
    messages = [finding.message for finding in findings if finding.policy == policy]
    assert bool(messages) == violates, findings
    if violates:
        assert any(fragment in message for message in messages), messages


def test_every_rule_has_a_passing_and_a_failing_case():
    covered = {(policy, violates) for policy, _, _, violates, _ in CASES}
    for policy in workload.POLICIES:
        assert (policy.name, True) in covered and (policy.name, False) in covered, policy.name


def service_account(**extra) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": "shop"}, **extra}


@pytest.mark.parametrize(
    ("account", "violates"),
    [
        (service_account(), True),
        (service_account(automountServiceAccountToken=True), True),
        (service_account(automountServiceAccountToken=False), False),
        ({**service_account(), "metadata": {"name": "ci", "annotations": {workload.ALLOW_TOKEN_ANNOTATION: "true"}}}, False),
    ],
)
def test_service_accounts_must_not_automount_their_token(account, violates):
    findings = run([account], policies=workload.POLICIES)
    assert ("workload-service-account-token" in policies_hit(findings)) == violates
    if violates:
        assert findings[0].message.startswith("automountServiceAccountToken is not false: set it to false on the ServiceAccount")


def test_only_workloads_are_held_to_a_namespace():
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
    assert run([config_map, service_account(automountServiceAccountToken=False)], policies=workload.POLICIES) == []


def tagged_deployment() -> dict:
    return hardened_deployment()  # every image has a version tag, none a digest


def test_require_digest_turns_tags_into_violations():
    config = {"workload-image-pinned": {"requireDigest": True}}
    findings = run([tagged_deployment()], policy_config=config)
    assert [f.policy for f in findings] == ["workload-image-pinned", "workload-image-pinned"]  # init + web
    assert "ghcr.io/example/web:1.4.2' without a digest: pin it as ghcr.io/example/web:1.4.2@sha256:<digest>" in findings[0].message


def test_require_digest_accepts_digests():
    obj = tagged_deployment()
    for path in (f"{WEB}.image", f"{INIT}.image"):
        set_field(obj, path, f"ghcr.io/example/web@{DIGEST}")
    assert run([obj], policy_config={"workload-image-pinned": {"requireDigest": True}}) == []


def test_the_prod_config_requires_digests_and_the_others_do_not():
    assert load_policy_config(PROD_CONFIG)["workload-image-pinned"] == {"requireDigest": True}
    assert policies_hit(run([tagged_deployment()], policy_config=load_policy_config(PROD_CONFIG))) == {"workload-image-pinned"}
    staging = PROD_CONFIG.with_name("staging.json")
    assert run([tagged_deployment()], policy_config=load_policy_config(staging)) == []


def test_the_image_policy_falls_back_to_its_default_without_config():
    """In-process nothing fills in schema defaults, so the policy itself must treat a missing requireDigest as false."""
    policy = next(p for p in workload.POLICIES if p.name == "workload-image-pinned")
    assert json.loads(json.dumps(policy.config_schema.properties))["requireDigest"]["default"] is False
    messages: list[str] = []

    def validate(image: str) -> list[str]:
        messages.clear()
        obj = hardened_deployment()
        set_field(obj, f"{WEB}.image", image)
        args = ResourceValidationArgs("kubernetes:apps/v1:Deployment", obj, "urn", "web", None, None, config=None)
        policy.validate(args, lambda message, urn=None: messages.append(message))
        return list(messages)

    assert validate("ghcr.io/example/web:1.4.2") == []
    assert len(validate("ghcr.io/example/web:latest")) == 1


@pytest.mark.parametrize(
    ("image", "require_digest", "pinned"),
    [
        ("nginx:1.27", False, True),
        ("nginx", False, False),
        ("localhost:5000/nginx", False, False),
        ("nginx:1.27", True, False),
        (f"nginx@{DIGEST}", True, True),
        ("nginx@sha256:short", True, False),
    ],
)
def test_image_problem(image, require_digest, pinned):
    assert (workload.image_problem(image, require_digest=require_digest) is None) == pinned


def database(**spec) -> dict:
    """A CloudNativePG Cluster as the platform renders it, with the given spec fields."""
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "orders", "namespace": "shop"},
        "spec": {"instances": 3, "storage": {"size": "10Gi"}, **spec},
    }


POSTGRES = "ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie"


@pytest.mark.parametrize(
    ("cluster", "require_digest", "fragment"),
    [
        (database(imageName=POSTGRES), False, None),
        (database(imageName=f"{POSTGRES}@{DIGEST}"), True, None),
        (database(), False, "spec.imageName is not set, so CloudNativePG runs its operator's default PostgreSQL image"),
        (database(imageName="ghcr.io/cloudnative-pg/postgresql:latest"), False, "replace the latest tag"),
        (database(imageName="ghcr.io/cloudnative-pg/postgresql"), False, "without a tag"),
        (database(imageName=POSTGRES), True, f"without a digest: pin it as {POSTGRES}@sha256:<digest>"),
    ],
    ids=["tag", "tag and digest, digest required", "no imageName", "latest", "no tag", "tag, digest required"],
)
def test_a_databases_postgresql_image_is_pinned_like_a_containers(cluster, require_digest, fragment):
    config = {"workload-image-pinned": {"requireDigest": require_digest}}
    findings = run([cluster], policies=workload.POLICIES, policy_config=config)
    if fragment is None:
        assert findings == []
        return
    (finding,) = findings
    assert finding.policy == "workload-image-pinned"
    assert fragment in finding.message and "databases[].imageName" in finding.message


def test_the_components_write_the_opt_out_the_pack_reads():
    from components import hardening

    assert hardening.ALLOW_TOKEN_ANNOTATION == workload.ALLOW_TOKEN_ANNOTATION
