"""A service's own cloud identity (`services[].serviceAccount`): the IRSA annotation, what the EKS pod identity webhook
adds to the pods (with the Kubernetes API token still off), the way to STS, and the database's backup role made the
same way."""

from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from components import database_cluster as dbc
from components import hardening
from components.app_service import SERVICE_ACCOUNT_CHECKSUM_ANNOTATION
from components.app_service_config import ServiceAccountSettings
from components.backup_bucket_config import BackupCredentials
from policies import egress
from policies.pack import ALL_POLICIES
from tests.helpers import by_kind, one
from tests.test_app_service import render_service, service
from tests.test_config import api, problems_for
from tests.test_database_cluster import app_pod, can_reach, database_pod, network_policies
from tools import analyzer, engine, schemas

ROLE = "arn:aws:iam::111122223333:role/platform-prod-api"
# The way to STS the examples use: the internet on 443 (what the webhook's pods reach without a VPC endpoint).
AWS_APIS = {
    "name": "aws-apis",
    "cidrs": ["0.0.0.0/0"],
    "ports": [{"port": 443}],
    "allowInternet": True,
    "reason": "STS for the IRSA credentials, and S3: AWS publishes no fixed addresses for either",
}
# What upstream's webhook adds to a pod of an annotated ServiceAccount (aws/amazon-eks-pod-identity-webhook,
# pkg/handler/handler.go, getPodSpecPatch and addEnvToContainer; defaults from NewModifier and the README).
WEBHOOK_VOLUME = "aws-iam-token"
WEBHOOK_MOUNT_PATH = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
WEBHOOK_AUDIENCE = "sts.amazonaws.com"
PUBLIC_AWS_ADDRESS = "52.94.0.10"  # any public address stands for STS and S3: AWS fixes none for them
# The whole pack with egress-unrestricted, whether policies/pack.py registers it yet or not.
PACK = ALL_POLICIES + [policy for policy in egress.POLICIES if policy not in ALL_POLICIES]


def identity_service(**account):
    return service(serviceAccount={"awsRoleArn": ROLE, **account}, egress=[AWS_APIS])


@pytest.fixture(scope="module")
def with_role():
    annotations = {"eks.amazonaws.com/sts-regional-endpoints": "true"}
    return render_service(service=identity_service(annotations=annotations))


def pod_template(resources) -> dict:
    return one(resources, "Deployment")["spec"]["template"]


def mutated_by_the_webhook(pod_spec: dict, role_arn: str) -> dict:
    """The pod spec as the webhook patches it when the pod is created: its own projected token, env and mount."""
    spec = copy.deepcopy(pod_spec)
    token = {"serviceAccountToken": {"audience": WEBHOOK_AUDIENCE, "expirationSeconds": 86400, "path": "token"}}
    spec["volumes"] = [{"name": WEBHOOK_VOLUME, "projected": {"sources": [token]}}, *spec.get("volumes", [])]
    for container in spec["containers"] + spec.get("initContainers", []):
        container["env"] = container.get("env", []) + [
            {"name": "AWS_ROLE_ARN", "value": role_arn},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": f"{WEBHOOK_MOUNT_PATH}/token"},
        ]
        container["volumeMounts"] = container.get("volumeMounts", []) + [
            {"name": WEBHOOK_VOLUME, "readOnly": True, "mountPath": WEBHOOK_MOUNT_PATH}
        ]
    return spec


# --- the ServiceAccount and the pods ------------------------------------------------------------------------


def test_the_role_becomes_the_irsa_annotation_beside_the_given_ones(with_role):
    account = one(with_role, "ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/sts-regional-endpoints": "true",
        hardening.IRSA_ANNOTATION: ROLE,
    }
    assert hardening.IRSA_ANNOTATION == "eks.amazonaws.com/role-arn"  # the webhook's default annotation domain


def test_the_kubernetes_api_token_stays_off_with_a_role(with_role):
    assert one(with_role, "ServiceAccount")["automountServiceAccountToken"] is False
    assert pod_template(with_role)["spec"]["automountServiceAccountToken"] is False
    migrating = render_service(service=service(serviceAccount={"awsRoleArn": ROLE}, egress=[AWS_APIS], migrations={"command": ["/app/migrate"]}))
    (job,) = by_kind(migrating, "Job")
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "web"  # the same role for the migrations


def test_without_an_identity_the_objects_stay_as_they_were():
    plain = render_service()
    assert "annotations" not in one(plain, "ServiceAccount")["metadata"]
    assert SERVICE_ACCOUNT_CHECKSUM_ANNOTATION not in pod_template(plain)["metadata"]["annotations"]


def test_the_service_account_exists_before_the_pods(with_role):
    # The webhook reads the ServiceAccount when a pod is created; a pod created first would run without the role.
    (account,) = [r for r in with_role if r.type == "kubernetes:core/v1:ServiceAccount"]
    (deployment,) = [r for r in with_role if r.type == "kubernetes:apps/v1:Deployment"]
    assert account.urn in deployment.dependencies


def test_a_changed_role_or_annotation_rolls_the_pods(with_role):
    def checksum(resources):
        return pod_template(resources)["metadata"]["annotations"][SERVICE_ACCOUNT_CHECKSUM_ANNOTATION]

    before = checksum(with_role)
    other_role = render_service(service=identity_service(awsRoleArn=ROLE.replace("api", "worker"), annotations={"eks.amazonaws.com/sts-regional-endpoints": "true"}))
    other_annotation = render_service(service=identity_service(annotations={"eks.amazonaws.com/sts-regional-endpoints": "false"}))
    assert len({before, checksum(other_role), checksum(other_annotation)}) == 3


def test_what_the_webhook_adds_fits_the_hardened_pod(with_role):
    template = pod_template(with_role)
    spec = template["spec"]
    # The webhook skips a pod that already has its volume, and two mounts at one path make the pod invalid.
    assert WEBHOOK_VOLUME not in [volume["name"] for volume in spec["volumes"]]
    assert WEBHOOK_MOUNT_PATH not in [mount["mountPath"] for c in spec["containers"] for mount in c["volumeMounts"]]
    # A non-root container reads the projected token through the pod's fsGroup (the webhook's README).
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"] == 10001
    mutated = mutated_by_the_webhook(spec, ROLE)
    (container,) = mutated["containers"]
    # The token is a mount of its own: the read-only root filesystem stays, and the SDKs only read the file.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert mutated["automountServiceAccountToken"] is False
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**template["metadata"], "name": "web-5d8f7c9b6-x2k4q", "namespace": "apps"},
        "spec": mutated,
    }
    assert analyzer.analyze_manifests([pod], policies=PACK) == []


# --- config -------------------------------------------------------------------------------------------------


def account_errors(**fields) -> str:
    with pytest.raises(ValidationError) as raised:
        ServiceAccountSettings.model_validate(fields)
    return str(raised.value)


def test_the_irsa_annotation_comes_only_from_aws_role_arn():
    message = account_errors(annotations={hardening.IRSA_ANNOTATION: ROLE})
    assert f"'{hardening.IRSA_ANNOTATION}' is set from 'awsRoleArn'" in message and "move the ARN there" in message


def test_the_token_opt_out_is_refused():
    assert "would only silence the policy pack" in account_errors(annotations={hardening.ALLOW_TOKEN_ANNOTATION: "true"})


@pytest.mark.parametrize("key", ["-leading-dash", "example.com/" + "n" * 64, "has space", "Example.com/name", "a/b/c", ""])
def test_annotation_keys_are_checked_like_labels(key):
    assert f"annotation keys ['{key}'] are not valid" in account_errors(annotations={key: "x"})


def test_valid_annotation_keys_pass():
    annotations = {"eks.amazonaws.com/audience": "sts.amazonaws.com", "example.com/team": "payments", "owner": "x"}
    assert ServiceAccountSettings.model_validate({"annotations": annotations}).rendered_annotations == annotations


ARNS = [
    ("arn:aws:iam::111122223333:role/platform-prod-api", True),
    ("arn:aws-cn:iam::111122223333:role/teams/payments/api", True),
    ("arn:aws-us-gov:iam::111122223333:role/api+worker@shop", True),
    ("arn:aws:iam::11112222333:role/api", False),
    ("arn:aws:iam::111122223333:user/api", False),
    ("arn:aws:iam::111122223333:role/", False),
    ("arn:aws:sts::111122223333:assumed-role/api/session", False),
]


@pytest.mark.parametrize(("arn", "valid"), ARNS)
def test_services_and_database_backups_take_the_same_role_arns(arn, valid):
    def accepted(model, fields) -> bool:
        try:
            model.model_validate(fields)
            return True
        except ValidationError:
            return False

    assert accepted(ServiceAccountSettings, {"awsRoleArn": arn}) is valid
    assert accepted(BackupCredentials, {"iamRole": True, "roleArn": arn}) is valid
    if not valid:
        assert "is not an IAM role ARN like arn:aws:iam::111122223333:role/<name>" in account_errors(awsRoleArn=arn)


def test_the_database_annotates_its_pods_with_the_same_constant():
    assert dbc.IRSA_ANNOTATION is hardening.IRSA_ANNOTATION


@pytest.mark.parametrize(
    "entries",
    [
        [],
        [{"name": "partner", "cidrs": ["203.0.113.0/24"], "ports": [{"port": 443}]}],  # public, but not STS's
        [{**AWS_APIS, "ports": [{"port": 80}]}],
        [{**AWS_APIS, "ports": [{"port": 443, "protocol": "UDP"}]}],
    ],
    ids=["no egress", "a partner's network", "plain http", "udp"],
)
def test_a_role_needs_a_way_to_sts(entries):
    with pytest.raises(ValidationError, match=r"serviceAccount.awsRoleArn: the pods trade their token for AWS credentials at STS"):
        service(serviceAccount={"awsRoleArn": ROLE}, egress=entries)


@pytest.mark.parametrize(
    "entry",
    [AWS_APIS, {"name": "aws-sts", "cidrs": ["10.0.32.0/24"], "ports": [{"port": 443}]}],
    ids=["the internet", "an STS VPC endpoint"],
)
def test_the_internet_or_a_vpc_endpoint_reach_sts(entry):
    assert service(serviceAccount={"awsRoleArn": ROLE}, egress=[entry]).service_account.aws_role_arn == ROLE


def test_the_stack_file_names_the_key_and_the_fix():
    (problem,) = problems_for(lambda values, _: api(values).update(serviceAccount={"awsRoleArn": ROLE}))
    assert problem.startswith("platform:services[1]: serviceAccount.awsRoleArn: the pods trade their token")
    assert "{name: aws-sts, cidrs: [10.0.32.0/24], ports: [{port: 443}]}" in problem and "allowInternet: true" in problem


def test_a_secret_in_an_annotation_is_refused_without_repeating_it():
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    problems = problems_for(lambda values, _: api(values).update(serviceAccount={"annotations": {"example.com/token": token}}))
    (problem,) = problems
    assert problem.startswith('platform:services[1].serviceAccount.annotations["example.com/token"]: looks like a GitHub token')
    assert "it becomes a label or annotation" in problem and token not in problem


# --- the way to STS -----------------------------------------------------------------------------------------


def test_database_pods_reach_sts_through_their_backups_way_out(rendered):
    # backups.credentials.roleArn (IRSA) in staging and prod: the object store's rule (public addresses, 443) is it.
    for stack in ("staging", "prod"):
        rendering = rendered[stack]
        policies = network_policies(rendering)
        assert one(rendering.resources, "Cluster")["spec"]["serviceAccountTemplate"]["metadata"]["annotations"]
        assert can_reach(policies, database_pod(rendering, "orders"), PUBLIC_AWS_ADDRESS, 443), stack
        assert not can_reach(policies, app_pod(rendering, "web"), PUBLIC_AWS_ADDRESS, 443), stack  # not through theirs


# What Pulumi.prod.yaml gets for `api` (/tmp/egress-integration.md): an external API, and a role with its way to STS.
PROD_API_ADDITIONS = {
    "egress": [
        {"name": "payments-api", "cidrs": ["203.0.113.0/24"], "ports": [{"port": 443}]},
        {**AWS_APIS, "reason": "STS (sts.eu-west-1.amazonaws.com) for the IRSA credentials, and S3: AWS publishes no fixed addresses for either"},
    ],
    "serviceAccount": {"awsRoleArn": ROLE},
}


@pytest.fixture(scope="module")
def prod_with_api_identity():
    config, secret_keys = engine.stack_config("prod")
    services = json.loads(config["platform:services"])
    (api_service,) = [s for s in services if s["name"] == "api"]
    api_service.update(copy.deepcopy(PROD_API_ADDITIONS))
    return engine.render("prod", config={**config, "platform:services": json.dumps(services)}, secret_keys=secret_keys)


def test_prod_api_with_a_role_and_egress_is_schema_valid_and_clean_under_the_pack(prod_with_api_identity):
    assert schemas.validate_all(prod_with_api_identity.kubernetes_objects()) == []
    config = analyzer.load_policy_config("policies/config/prod.json")
    assert analyzer.analyze(prod_with_api_identity.resources, policies=PACK, policy_config=config) == []
    accounts = {o["metadata"]["name"]: o["metadata"].get("annotations") for o in by_kind(prod_with_api_identity.resources, "ServiceAccount")}
    assert accounts["api"] == {hardening.IRSA_ANNOTATION: ROLE} and accounts["web"] is None
    (policy,) = [o for o in by_kind(prod_with_api_identity.resources, "NetworkPolicy") if o["metadata"]["name"] == "api"]
    assert policy["metadata"]["annotations"][egress.EGRESS_REASON_ANNOTATION].startswith("aws-apis: STS (sts.eu-west-1")


def test_prod_api_reaches_sts_and_its_partner_and_nothing_private(prod_with_api_identity):
    policies = network_policies(prod_with_api_identity)
    api_pod, web_pod = app_pod(prod_with_api_identity, "api"), app_pod(prod_with_api_identity, "web")
    assert can_reach(policies, api_pod, PUBLIC_AWS_ADDRESS, 443) and can_reach(policies, api_pod, "203.0.113.40", 443)
    assert not can_reach(policies, api_pod, PUBLIC_AWS_ADDRESS, 80)
    assert not can_reach(policies, api_pod, "169.254.169.254", 80)  # the node's credentials stay the node's
    assert not can_reach(policies, api_pod, "10.0.12.7", 443)  # the VPC: only through calls and databases
    assert not can_reach(policies, web_pod, PUBLIC_AWS_ADDRESS, 443)
