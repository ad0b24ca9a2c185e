"""Workers, cron jobs and one-off tasks rendered by AppService (#17): what each kind owns, and that every pod template
meets the restricted Pod Security Standard as the pack judges it."""

from __future__ import annotations

import pulumi
import pytest

from components.app_service import AppService, AppServiceArgs, SecretRef, migrations_job_name, one_off_job_name
from components.app_service_config import ServiceConfig
from policies import pod_security
from tests.helpers import POD_BEARING_KINDS, by_kind, one, pod_spec, register, unwrap

RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"}}
IMAGE = "registry.example.com/analytics:1.3.0"


def workload(**fields) -> ServiceConfig:
    return ServiceConfig.model_validate({"name": "analytics", "image": "analytics:1.3.0", "resources": RESOURCES, **fields})


URLS: dict[str, str | None] = {}  # each rendered workload's AppService.url


def render(service: ServiceConfig, **arg_overrides):
    def program():
        args = {"service": service, "namespace": "apps", "image": IMAGE, **arg_overrides}
        URLS[service.name] = AppService(service.name, AppServiceArgs(**args)).url

    return register(program)


def kinds(resources) -> list[str]:
    return sorted(r.inputs["kind"] for r in resources if r.is_kubernetes_object)


def restricted_violations(resources) -> list[tuple[str, str]]:
    pod_bearing = [r for r in resources if r.is_kubernetes_object and r.inputs["kind"] in POD_BEARING_KINDS]
    assert pod_bearing
    return [violation for r in pod_bearing for violation in pod_security.run_checks(pod_security.ALL_CHECKS, r.type, unwrap(r.inputs))]


WORKER = dict(
    kind="worker",
    command=["/app/analytics"],
    args=["consume", "--queue", "events"],
    metrics={"port": 9090},
    health={"port": 8086},
    replicas=2,
    shutdown={"drainSeconds": 5, "gracePeriodSeconds": 60},
)
CRON = dict(kind="cron", command=["/app/report"], args=["nightly"], schedule="30 2 * * *", timeZone="Europe/Dublin")


@pytest.fixture(scope="module")
def worker():
    return render(workload(**WORKER), secret_refs=[SecretRef("ORDERS_DATABASE_PASSWORD", "orders-app", "password")])


@pytest.fixture(scope="module")
def cron():
    return render(workload(name="report", **CRON))


def test_a_worker_is_a_deployment_no_service_selects(worker):
    # No Secret: it has no secret settings (an empty one would be replaced on every `pulumi up`).
    assert kinds(worker) == sorted(["ServiceAccount", "ConfigMap", "Deployment", "PodDisruptionBudget", "NetworkPolicy"])
    (component,) = [r for r in worker if r.type == "platform:app:AppService"]
    assert all(r.parent == component.urn for r in worker if r is not component)
    assert URLS["analytics"] is None  # nothing calls a worker
    # Its selector names the kind (immutable: web <-> worker replaces the Deployment; test_workload_diff).
    selector = one(worker, "Deployment")["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "analytics", "app.kubernetes.io/component": "worker"}
    assert one(worker, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "analytics"}


def test_a_worker_runs_its_command_and_is_probed_on_its_health_port(worker):
    spec = pod_spec(one(worker, "Deployment"))
    (container,) = spec["containers"]
    assert container["command"] == ["/app/analytics"] and container["args"] == ["consume", "--queue", "events"]
    assert container["ports"] == [
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
        {"name": "health", "containerPort": 8086, "protocol": "TCP"},
    ]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "health", probe
    # Graceful shutdown as a web service's: stop taking work, then SIGTERM and the rest of the grace period.
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert spec["terminationGracePeriodSeconds"] == 60
    # Databases' credentials, settings and hardening as for web.
    assert {"name": "ORDERS_DATABASE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "orders-app", "key": "password"}}} in container["env"]
    assert container["envFrom"] == [{"configMapRef": {"name": "analytics-config"}}]
    assert one(worker, "Deployment")["spec"]["replicas"] == 2


def test_a_worker_takes_no_traffic(worker):
    policy = one(worker, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy  # isolated: only monitoring's own policy lets Prometheus reach the metrics port


def test_a_replicated_worker_has_a_disruption_budget_a_single_one_none(worker):
    assert one(worker, "PodDisruptionBudget")["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    single = render(workload(**{**WORKER, "replicas": 1}))
    assert by_kind(single, "PodDisruptionBudget") == []  # maxUnavailable 1 of 1 would protect nothing anyway


def test_a_worker_may_be_probed_by_a_command_and_serve_no_port():
    rendered = render(workload(kind="worker", health={"command": ["/app/healthcheck", "--quiet"]}))
    (container,) = pod_spec(one(rendered, "Deployment"))["containers"]
    assert "ports" not in container
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["exec"] == {"command": ["/app/healthcheck", "--quiet"]}, probe
    assert "command" not in container and "args" not in container  # unset: the image's own entrypoint


def test_a_health_port_shared_with_metrics_is_one_port():
    rendered = render(workload(kind="worker", metrics={"port": 9090}, health={"port": 9090, "livenessPath": "/live"}))
    (container,) = pod_spec(one(rendered, "Deployment"))["containers"]
    assert [port["name"] for port in container["ports"]] == ["metrics"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/live", "port": "metrics"}


def test_a_cron_job_is_a_bounded_cron_job(cron):
    assert kinds(cron) == sorted(["ServiceAccount", "ConfigMap", "CronJob", "NetworkPolicy"])
    cron_job = one(cron, "CronJob")
    spec = cron_job["spec"]
    assert cron_job["metadata"]["name"] == "report"
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == ("30 2 * * *", "Europe/Dublin", "Forbid")
    assert spec["startingDeadlineSeconds"] == 600
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
    job = spec["jobTemplate"]["spec"]
    assert (job["activeDeadlineSeconds"], job["backoffLimit"]) == (3600, 2)
    pod = pod_spec(cron_job)
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["command"] == ["/app/report"] and container["args"] == ["nightly"]
    assert not {"livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "ports"} & set(container)
    # The pods carry the service's name: its NetworkPolicy and its databases' policies select them.
    assert job["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "report"


def test_a_workload_with_secret_settings_has_its_secret():
    rendered = render(workload(name="report", **CRON), secret_values={"API_TOKEN": pulumi.Output.secret("t0ken-value")})
    assert one(rendered, "Secret")["metadata"]["name"] == "report-secrets"
    (container,) = pod_spec(one(rendered, "CronJob"))["containers"]
    assert {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "report-secrets", "key": "API_TOKEN"}}} in container["env"]


def test_a_cron_job_without_a_time_zone_leaves_it_to_the_cluster():
    spec = one(render(workload(name="report", kind="cron", schedule="@hourly", concurrencyPolicy="Replace")), "CronJob")["spec"]
    assert "timeZone" not in spec and spec["concurrencyPolicy"] == "Replace" and spec["schedule"] == "@hourly"


def test_every_kinds_pod_template_meets_restricted(worker, cron):
    tasks = render(workload(**WORKER, tasks=[{"name": "backfill", "command": ["/app/backfill"]}], migrations={"command": ["/app/migrate"]}))
    for rendered in (worker, cron, tasks):
        assert restricted_violations(rendered) == []


def test_migrations_and_tasks_share_one_job_builder():
    """A task runs like the migrations (its own pod name, the service's settings and secrets, awaited, replaced when
    its image, command or args change) but after the rollout, where migrations run before it."""
    service = workload(
        **WORKER,
        migrations={"command": ["/app/migrate", "up"]},
        tasks=[
            {"name": "backfill", "command": ["/app/backfill"], "args": ["--since", "2026-01-01"], "timeoutSeconds": 900},
            {"name": "reindex", "command": ["/app/reindex"], "image": "search-tools:2.1.0"},
        ],
    )
    rendered = render(service, task_images={"reindex": "registry.example.com/search-tools:2.1.0"})
    jobs = {job["metadata"]["labels"]["app.kubernetes.io/name"]: job for job in by_kind(rendered, "Job")}
    assert sorted(jobs) == ["analytics-backfill", "analytics-migrations", "analytics-reindex"]
    migrations, backfill, reindex = jobs["analytics-migrations"], jobs["analytics-backfill"], jobs["analytics-reindex"]
    assert migrations["metadata"]["name"] == migrations_job_name("analytics", IMAGE, ["/app/migrate", "up"])
    assert backfill["metadata"]["name"] == one_off_job_name("analytics-backfill", IMAGE, ["/app/backfill"], ["--since", "2026-01-01"])
    assert backfill["metadata"]["name"] != one_off_job_name("analytics-backfill", IMAGE, ["/app/backfill"], ["--since", "2026-02-01"])
    assert backfill["spec"]["activeDeadlineSeconds"] == 900
    assert backfill["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == str(900 + 60)
    (container,) = pod_spec(backfill)["containers"]
    assert (container["name"], container["command"], container["args"]) == ("backfill", ["/app/backfill"], ["--since", "2026-01-01"])
    assert container["envFrom"] == [{"configMapRef": {"name": "analytics-config"}}]
    assert pod_spec(reindex)["containers"][0]["image"] == "registry.example.com/search-tools:2.1.0"
    assert backfill["metadata"]["labels"]["app.kubernetes.io/component"] == "task"
    # Order: migrations before the Deployment, tasks after it.
    urns = {r.inputs.get("metadata", {}).get("name"): r for r in rendered if r.is_kubernetes_object}
    deployment = next(r for r in rendered if r.is_kubernetes_object and r.inputs["kind"] == "Deployment")
    assert urns[migrations["metadata"]["name"]].urn in deployment.dependencies
    assert deployment.urn in urns[backfill["metadata"]["name"]].dependencies


def test_a_task_with_its_own_image_needs_it_pulled():
    service = workload(**WORKER, tasks=[{"name": "reindex", "command": ["/app/reindex"], "image": "search-tools:2.1.0"}])
    with pytest.raises(Exception, match=r"task_images\['reindex'\]"):
        render(service)
