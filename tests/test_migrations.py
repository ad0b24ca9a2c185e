"""services[].migrations: the Job an AppService runs before its Deployment rolls, alone and in the prod stack."""

from __future__ import annotations

import json
import re

import pulumi
import pytest

from components.app_service import (
    AppService,
    AppServiceArgs,
    SecretRef,
    migrations_job_name,
    migrations_name,
)
from components.app_service_config import ServiceConfig
from tests.helpers import by_kind, one, register, unwrap
from tools import engine, schemas
from tools.analyzer import analyze, load_policy_config

RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"}}
DIGEST = "sha256:" + "b" * 64
IMAGE = f"registry.example.com/api@{DIGEST}"
COMMAND = ["/app/migrate", "up"]
PROD_POLICY_CONFIG = load_policy_config("policies/config/prod.json")


def service(**overrides) -> ServiceConfig:
    fields = {
        "name": "api",
        "image": f"api@{DIGEST}",
        "port": 8081,
        "resources": RESOURCES,
        "migrations": {"command": COMMAND, "timeoutSeconds": 600},
        **overrides,
    }
    return ServiceConfig.model_validate(fields)


def render(opts: pulumi.ResourceOptions | None = None, **arg_overrides) -> list[engine.RecordedResource]:
    def program():
        args = {
            "service": service(),
            "namespace": "apps",
            "image": IMAGE,
            "secret_values": {"API_TOKEN": pulumi.Output.secret("s3cr3t-value")},
            "secret_refs": [SecretRef("DATABASE_PASSWORD", "orders-app", "password")],
            **arg_overrides,
        }
        AppService("api", AppServiceArgs(**args), opts=opts)

    return register(program)


@pytest.fixture(scope="module")
def migrating():
    return render()


def recorded(resources: list[engine.RecordedResource], kind: str) -> engine.RecordedResource:
    (resource,) = [r for r in resources if r.is_kubernetes_object and r.inputs["kind"] == kind]
    return resource


def test_the_job_is_named_after_image_and_command_under_a_stable_logical_name(migrating):
    job = recorded(migrating, "Job")
    assert job.name == "api-migrations"
    assert job.type == "kubernetes:batch/v1:Job"
    name = unwrap(job.inputs)["metadata"]["name"]
    assert re.fullmatch(r"api-migrations-[0-9a-f]{8}", name)
    assert name == migrations_job_name("api", IMAGE, COMMAND)


def test_a_new_image_or_command_is_a_new_job_and_nothing_else_is():
    base = migrations_job_name("api", IMAGE, COMMAND)
    assert migrations_job_name("api", IMAGE.replace("b" * 64, "c" * 64), COMMAND) != base
    assert migrations_job_name("api", IMAGE, [*COMMAND, "--verbose"]) != base
    other_timeout = render(service=service(migrations={"command": COMMAND, "timeoutSeconds": 900}))
    assert one(other_timeout, "Job")["metadata"]["name"] == base
    # A 40-character service name (the longest allowed) still gives a valid 63-character object name.
    assert len(migrations_job_name("a" * 40, IMAGE, COMMAND)) <= 63


def test_the_pods_are_hardened_and_configured_like_the_service(migrating):
    deployment_pod = one(migrating, "Deployment")["spec"]["template"]["spec"]
    (service_container,) = deployment_pod["containers"]
    job_pod = one(migrating, "Job")["spec"]["template"]["spec"]
    (container,) = job_pod["containers"]
    for key in ("securityContext", "volumes", "serviceAccountName"):
        assert job_pod[key] == deployment_pod[key], key
    assert job_pod["automountServiceAccountToken"] is False
    assert job_pod["enableServiceLinks"] is False
    assert job_pod["restartPolicy"] == "Never"
    for key in ("securityContext", "volumeMounts", "resources", "envFrom", "env", "image", "imagePullPolicy"):
        assert container[key] == service_container[key], key
    assert container["command"] == COMMAND
    assert container["envFrom"] == [{"configMapRef": {"name": "api-config"}}]
    assert [variable["name"] for variable in container["env"]] == ["API_TOKEN", "DATABASE_PASSWORD"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # A run-to-completion pod takes no traffic: no ports, probes or drain.
    assert not {"ports", "startupProbe", "livenessProbe", "readinessProbe", "lifecycle"} & set(container)


def test_the_pods_are_not_selected_by_the_services_objects(migrating):
    job = one(migrating, "Job")
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app.kubernetes.io/name"] == migrations_name("api") == "api-migrations"
    assert job["metadata"]["labels"] == pod_labels
    selectors = [
        one(migrating, "Service")["spec"]["selector"],
        one(migrating, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one(migrating, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        one(migrating, "Deployment")["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert not selector.items() <= pod_labels.items(), selector


def test_pulumi_waits_past_the_jobs_deadline_and_retries_a_failed_job_on_the_next_up(migrating):
    job = one(migrating, "Job")
    assert job["spec"]["activeDeadlineSeconds"] == 600
    assert job["metadata"]["annotations"] == {"pulumi.com/timeoutSeconds": "660", "pulumi.com/replaceUnready": "true"}
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["ttlSecondsAfterFinished"] == 7 * 24 * 3600


def test_the_deployment_rolls_only_after_the_job_and_the_job_after_its_settings(migrating):
    urns = {r.inputs["kind"]: r.urn for r in migrating if r.is_kubernetes_object}
    job = recorded(migrating, "Job")
    assert urns["Job"] in recorded(migrating, "Deployment").dependencies
    assert {urns["ConfigMap"], urns["Secret"], urns["ServiceAccount"]} <= set(job.dependencies)
    assert urns["Deployment"] not in job.dependencies


def test_without_migrations_there_is_no_job_to_wait_for(migrating):
    resources = render(service=service(migrations=None))
    assert by_kind(resources, "Job") == []
    with_job = set(recorded(migrating, "Deployment").dependencies) - {recorded(migrating, "Job").urn}
    assert set(recorded(resources, "Deployment").dependencies) == with_job


def test_the_job_is_never_protected_so_a_new_image_can_replace_it():
    resources = render(opts=pulumi.ResourceOptions(protect=True))
    assert recorded(resources, "Job").protect is False
    assert recorded(resources, "Deployment").protect is True


def test_an_image_of_their_own():
    own = f"registry.example.com/api-migrate@{DIGEST}"
    configured = service(migrations={"command": COMMAND, "image": f"api-migrate@{DIGEST}"})
    (container,) = one(render(service=configured, migrations_image=own), "Job")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == own
    with pytest.raises(ValueError, match="AppServiceArgs.migrations_image"):
        render(service=configured)


def test_the_job_is_schema_valid_and_clean_under_the_prod_pack(migrating):
    job = recorded(migrating, "Job")
    assert schemas.validate(job.inputs) == []
    assert schemas.validate(recorded(migrating, "Deployment").inputs) == []
    findings = analyze(migrating, policy_config=PROD_POLICY_CONFIG, stack_policies=False)
    assert findings == []


# --- in the prod stack, as /tmp/app-stack.yaml proposes it (api migrates) ------------------------------------


@pytest.fixture(scope="module")
def prod_with_migrations() -> engine.Rendering:
    config, secret_keys = engine.stack_config("prod")
    services = json.loads(config["platform:services"])
    next(s for s in services if s["name"] == "api")["migrations"] = {"command": COMMAND, "timeoutSeconds": 600}
    config["platform:services"] = json.dumps(services)
    return engine.render("prod", config=config, secret_keys=secret_keys)


def test_prod_runs_apis_migrations_before_its_rollout(prod_with_migrations):
    resources = prod_with_migrations.resources
    (job,) = [r for r in resources if r.type == "kubernetes:batch/v1:Job"]
    (api,) = [r for r in resources if r.type == "platform:app:AppService" and r.name == "api"]
    (deployment,) = [r for r in resources if r.type == "kubernetes:apps/v1:Deployment" and r.parent == api.urn]
    assert job.parent == api.urn and job.name == "api-migrations"
    assert job.urn in deployment.dependencies
    assert (job.protect, deployment.protect) == (False, True)
    (container,) = unwrap(job.inputs)["spec"]["template"]["spec"]["containers"]
    assert container["image"] == unwrap(deployment.inputs)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert {"DATABASE_USER", "DATABASE_PASSWORD", "DATABASE_URL"} <= {variable["name"] for variable in container["env"]}
    assert schemas.validate(job.inputs) == []
    findings = analyze(resources, policy_config=PROD_POLICY_CONFIG)
    assert [f for f in findings if f.urn == job.urn] == []
