"""AppService on its own: secure defaults, and what each option changes."""

from __future__ import annotations

import pulumi
import pytest

from components.app_service import AppService, AppServiceArgs, Peer
from components.app_service_config import ServiceConfig
from tests.helpers import by_kind, one, register, unwrap
from tools import engine

RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"}}


def service(**overrides) -> ServiceConfig:
    fields = {"name": "web", "image": "web:1.0.0", "port": 8080, "resources": RESOURCES, **overrides}
    return ServiceConfig.model_validate(fields)


def render_service(secret_values: dict[str, str] | None = None, **arg_overrides):
    def program():
        args = {
            "service": service(),
            "namespace": "apps",
            "image": "registry.example.com/web:1.0.0",
            "secret_values": {name: pulumi.Output.secret(value) for name, value in (secret_values or {}).items()},
            **arg_overrides,
        }
        AppService("web", AppServiceArgs(**args))

    return register(program)


@pytest.fixture(scope="module")
def default_service():
    return render_service(secret_values={"API_TOKEN": "s3cr3t-value"})


def deployment_pod(resources) -> dict:
    return one(resources, "Deployment")["spec"]["template"]["spec"]


def test_owns_exactly_its_objects_all_parented_to_it(default_service):
    component = [r for r in default_service if r.type == "platform:app:AppService"]
    assert len(component) == 1
    kinds = sorted(r.inputs["kind"] for r in default_service if r.is_kubernetes_object)
    assert kinds == sorted(
        ["ServiceAccount", "ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"]
    )
    children = [r for r in default_service if r.type != "platform:app:AppService"]
    assert all(r.parent == component[0].urn for r in children)
    assert all(unwrap(r.inputs)["metadata"]["namespace"] == "apps" for r in children if r.is_kubernetes_object)


def test_pod_is_hardened_by_default(default_service):
    pod = deployment_pod(default_service)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["runAsNonRoot"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert container["resources"] == RESOURCES
    assert container["image"] == "registry.example.com/web:1.0.0"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_service_account_does_not_mount_a_token(default_service):
    assert one(default_service, "ServiceAccount")["automountServiceAccountToken"] is False


def test_rollout_never_drops_below_the_disruption_budget(default_service):
    deployment = one(default_service, "Deployment")
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert one(default_service, "PodDisruptionBudget")["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
        # A crash-looping pod never blocks a node's drain.
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }


def test_topology_spread_is_soft_by_default_and_strict_on_request(default_service):
    soft = deployment_pod(default_service)["topologySpreadConstraints"]
    assert {c["topologyKey"]: c["whenUnsatisfiable"] for c in soft} == {
        "kubernetes.io/hostname": "ScheduleAnyway",
        "topology.kubernetes.io/zone": "ScheduleAnyway",
    }
    strict = deployment_pod(render_service(spread_strictly=True))["topologySpreadConstraints"]
    assert strict[0]["whenUnsatisfiable"] == "DoNotSchedule"


def test_secret_settings_live_in_a_secret_and_stay_pulumi_secrets(default_service):
    secret = [r for r in default_service if r.is_kubernetes_object and r.inputs["kind"] == "Secret"][0]
    assert engine.is_secret(secret.inputs["stringData"])
    assert unwrap(secret.inputs["stringData"]) == {"API_TOKEN": "s3cr3t-value"}
    (container,) = deployment_pod(default_service)["containers"]
    assert container["env"] == [
        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-secrets", "key": "API_TOKEN"}}}
    ]
    everything_but_the_secret = [r.inputs for r in default_service if r is not secret]
    assert "s3cr3t-value" not in repr(everything_but_the_secret)


def test_plain_settings_go_to_the_config_map():
    resources = render_service(service=service(env={"LOG_LEVEL": "info"}))
    assert one(resources, "ConfigMap")["data"] == {"LOG_LEVEL": "info"}
    (container,) = deployment_pod(resources)["containers"]
    assert container["envFrom"] == [{"configMapRef": {"name": "web-config"}}]


def checksums(resources) -> dict[str, str]:
    return one(resources, "Deployment")["spec"]["template"]["metadata"]["annotations"]


def test_changed_settings_roll_the_pods_without_revealing_secrets(default_service):
    before = checksums(default_service)
    after_secret_change = checksums(render_service(secret_values={"API_TOKEN": "rotated"}))
    after_config_change = checksums(render_service(service=service(env={"LOG_LEVEL": "debug"})))
    assert before["checksum/secret"] != after_secret_change["checksum/secret"]
    assert before["checksum/config"] == after_secret_change["checksum/config"]
    assert before["checksum/config"] != after_config_change["checksum/config"]
    # The annotation is plaintext (the Deployment stays readable) and keyed (not a bare hash of the value).
    import hashlib
    import json

    deployment = [r for r in default_service if r.inputs.get("kind") == "Deployment"][0]
    assert not engine.is_secret(deployment.inputs["spec"])
    bare = hashlib.sha256(json.dumps({"API_TOKEN": "s3cr3t-value"}, sort_keys=True).encode()).hexdigest()
    assert before["checksum/secret"] != bare


def test_fixed_replicas_without_autoscaling(default_service):
    assert one(default_service, "Deployment")["spec"]["replicas"] == 1
    assert by_kind(default_service, "HorizontalPodAutoscaler") == []


def test_autoscaling_leaves_replicas_to_the_hpa():
    resources = render_service(
        service=service(autoscaling={"minReplicas": 3, "maxReplicas": 9, "targetCpuPercent": 60})
    )
    assert "replicas" not in one(resources, "Deployment")["spec"]
    hpa = one(resources, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 9)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 60


def test_network_policy_allows_only_declared_callers_and_callees():
    resources = render_service(callers=["gateway"], callees=[Peer("api", 8081)])
    policy = one(resources, "NetworkPolicy")["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "web"}}
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}], "ports": [{"protocol": "TCP", "port": 8080}]}
    ]
    assert policy["egress"] == [
        {"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "api"}}}], "ports": [{"protocol": "TCP", "port": 8081}]}
    ]


def test_no_callers_means_no_ingress(default_service):
    policy = one(default_service, "NetworkPolicy")["spec"]
    assert "ingress" not in policy and "egress" not in policy  # isolated both ways, nothing allowed
    assert policy["policyTypes"] == ["Ingress", "Egress"]


def test_custom_uid_and_health_paths():
    resources = render_service(
        service=service(runAsUser=2000, runAsGroup=3000, health={"livenessPath": "/live", "readinessPath": "/ready"})
    )
    pod = deployment_pod(resources)
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (2000, 3000)
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"


def test_metrics_get_a_named_port_on_pod_and_service():
    resources = render_service(service=service(metrics={"port": 9090}))
    (container,) = deployment_pod(resources)["containers"]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    service_ports = one(resources, "Service")["spec"]["ports"]
    assert {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"} in service_ports


def test_env_from_secrets_owned_elsewhere():
    from components.app_service import SecretRef

    resources = render_service(secret_refs=[SecretRef("DATABASE_URL", "orders-db-app", "uri")])
    (container,) = deployment_pod(resources)["containers"]
    assert {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "orders-db-app", "key": "uri"}}} in container["env"]


def test_pods_drain_before_they_stop_by_default(default_service):
    pod = deployment_pod(default_service)
    (container,) = pod["containers"]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert pod["terminationGracePeriodSeconds"] == 30


def test_shutdown_timing_is_configurable():
    pod = deployment_pod(render_service(service=service(shutdown={"drainSeconds": 20, "gracePeriodSeconds": 45})))
    assert pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] == 20
    assert pod["terminationGracePeriodSeconds"] == 45


def probe_timing(container: dict) -> dict[str, tuple[int, int]]:
    probes = ("startupProbe", "livenessProbe", "readinessProbe")
    return {probe: (container[probe]["periodSeconds"], container[probe]["failureThreshold"]) for probe in probes}


def test_probe_timing_defaults_are_the_ones_before_the_knobs(default_service):
    (container,) = deployment_pod(default_service)["containers"]
    assert probe_timing(container) == {"startupProbe": (5, 30), "livenessProbe": (10, 3), "readinessProbe": (5, 3)}


def test_probe_timing_knobs():
    health = {"startupSeconds": 62, "periodSeconds": 15, "failureThreshold": 4}
    (container,) = deployment_pod(render_service(service=service(health=health)))["containers"]
    # The startup budget is rounded up to whole probe periods, so a pod always gets at least startupSeconds.
    assert probe_timing(container) == {"startupProbe": (5, 13), "livenessProbe": (15, 4), "readinessProbe": (15, 4)}
