"""Autoscaling (#17): the config models, the HPA / ScaledObject / TriggerAuthentication / VPA specs, and the objects
components.autoscaling renders (children of the calling component, schema-valid against tools/crds)."""

from __future__ import annotations

from decimal import Decimal

import pulumi
import pytest
from pydantic import ValidationError

from components.autoscaling import (
    AutoscalersArgs,
    ScaleTarget,
    SecretKey,
    hpa_spec,
    keda_specs,
    render_autoscalers,
    vpa_spec,
)
from components.autoscaling_config import Autoscaling, VerticalScaling, quantity
from tests.helpers import by_kind, one, register, unwrap
from tools import schemas

TARGET = ScaleTarget(name="analytics", container="analytics")
PROMETHEUS = {
    "type": "prometheus",
    "serverAddress": "http://prometheus.monitoring.svc:9090",
    "query": "sum(analytics_queue_depth)",
    "threshold": 100,
}
POSTGRESQL = {"type": "postgresql", "database": "orders", "query": "SELECT count(*) FROM jobs", "targetQueryValue": 20}
CRON = {"type": "cron", "timezone": "Europe/Berlin", "start": "0 8 * * 1-5", "end": "0 18 * * 1-5", "desiredReplicas": 4}


def autoscaling(**fields) -> Autoscaling:
    return Autoscaling.model_validate({"minReplicas": 2, "maxReplicas": 10, **fields})


def keda(**fields) -> Autoscaling:
    return autoscaling(keda={"triggers": [PROMETHEUS], **fields})


def args(**overrides) -> AutoscalersArgs:
    values = {"target": TARGET, "namespace": "apps", "labels": {"app.kubernetes.io/name": "analytics"}, **overrides}
    return AutoscalersArgs(**values)


# --- config models ------------------------------------------------------------------------------------------


def test_without_targets_the_hpa_scales_on_cpu_at_70_percent_as_before():
    assert autoscaling().hpa_targets == {"cpu": 70}
    assert autoscaling(targetMemoryPercent=80).hpa_targets == {"memory": 80}
    assert autoscaling(targetCpuPercent=60, targetMemoryPercent=80).scaled_resources == {"cpu", "memory"}


def test_keda_scales_on_no_resource_unless_a_cpu_or_memory_trigger_says_so():
    assert keda().hpa_targets == {} and keda().scaled_resources == set()
    with_cpu = autoscaling(keda={"triggers": [PROMETHEUS, {"type": "cpu", "utilizationPercent": 60}]})
    assert with_cpu.scaled_resources == {"cpu"}


@pytest.mark.parametrize(
    "trigger, field",
    [
        ({**PROMETHEUS, "serverAddress": "prometheus:9090"}, "serverAddress"),
        ({**PROMETHEUS, "threshold": 0}, "threshold"),
        ({**CRON, "timezone": "Mars/Olympus"}, "timezone"),
        ({**CRON, "start": "0 8 * *"}, "start"),
        ({**POSTGRESQL, "targetQueryValue": -1}, "targetQueryValue"),
        ({"type": "redis"}, "type"),
    ],
)
def test_a_bad_trigger_is_refused_at_its_key(trigger, field):
    with pytest.raises(ValidationError) as error:
        autoscaling(keda={"triggers": [trigger]})
    assert field in str(error.value)


def test_fallback_and_scale_to_zero_need_a_trigger_on_an_outside_source():
    cpu_only = [{"type": "cpu", "utilizationPercent": 60}]
    with pytest.raises(ValidationError, match="KEDA refuses a fallback on cpu/memory triggers only"):
        autoscaling(keda={"triggers": cpu_only, "fallback": {"failureThreshold": 3, "replicas": 4}})
    with pytest.raises(ValidationError, match="never wakes up"):
        autoscaling(keda={"triggers": cpu_only, "scaleToZero": True})


def test_an_applying_vpa_needs_max_allowed_and_bounds_in_order():
    with pytest.raises(ValidationError, match="set maxAllowed"):
        VerticalScaling.model_validate({"mode": "auto"})
    with pytest.raises(ValidationError, match="minAllowed.memory"):
        VerticalScaling.model_validate(
            {"mode": "recommend", "minAllowed": {"cpu": "100m", "memory": "2Gi"}, "maxAllowed": {"cpu": "1", "memory": "1Gi"}}
        )
    assert VerticalScaling.model_validate({}).mode == "recommend"


@pytest.mark.parametrize("text, value", [("250m", "0.25"), ("2", "2"), ("1.5", "1.5"), ("1Gi", str(2**30)), ("512Mi", str(2**29)), ("1k", "1000")])
def test_quantities_are_read_as_kubernetes_does(text, value):
    assert quantity(text) == Decimal(value)


# --- specs --------------------------------------------------------------------------------------------------


def test_hpa_spec_scales_on_each_resource_with_a_scale_down_window_by_default():
    spec = hpa_spec(TARGET, autoscaling(targetCpuPercent=60, targetMemoryPercent=80))
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "analytics"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
    assert [(m["resource"]["name"], m["resource"]["target"]["averageUtilization"]) for m in spec["metrics"]] == [
        ("cpu", 60),
        ("memory", 80),
    ]
    assert spec["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 300}}


def test_hpa_behavior_is_configurable():
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 600, "maxPercentPerMinute": 10}, "scaleUp": {"stabilizationWindowSeconds": 30}}
    spec = hpa_spec(TARGET, autoscaling(behavior=behavior))
    assert spec["behavior"] == {
        "scaleDown": {"stabilizationWindowSeconds": 600, "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]},
        "scaleUp": {"stabilizationWindowSeconds": 30},
    }


def test_scaled_object_carries_bounds_polling_cooldown_fallback_and_every_trigger():
    scaling = autoscaling(
        keda={
            "pollingIntervalSeconds": 15,
            "cooldownPeriodSeconds": 120,
            "fallback": {"failureThreshold": 3, "replicas": 6},
            "triggers": [PROMETHEUS, CRON, POSTGRESQL],
        }
    )
    spec, authentications = keda_specs(args(autoscaling=scaling, connection_secrets={"orders": SecretKey("orders-app", "uri")}))
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["pollingInterval"], spec["cooldownPeriod"]) == (2, 10, 15, 120)
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 6}
    assert "idleReplicaCount" not in spec
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 300}}
    prometheus, cron, postgresql = spec["triggers"]
    assert prometheus == {"type": "prometheus", "metadata": {"serverAddress": PROMETHEUS["serverAddress"], "query": PROMETHEUS["query"], "threshold": "100"}}
    assert cron["metadata"] == {"timezone": "Europe/Berlin", "start": "0 8 * * 1-5", "end": "0 18 * * 1-5", "desiredReplicas": "4"}
    # The credentials come from the database's Secret through a TriggerAuthentication, never from metadata.
    assert postgresql == {
        "type": "postgresql",
        "metadata": {"query": "SELECT count(*) FROM jobs", "targetQueryValue": "20"},
        "authenticationRef": {"name": "analytics-trigger-2"},
    }
    assert authentications == {"analytics-trigger-2": {"secretTargetRef": [{"parameter": "connection", "name": "orders-app", "key": "uri"}]}}


def test_scale_to_zero_is_keda_idle_replica_count_with_min_replicas_kept_while_active():
    spec, _ = keda_specs(args(autoscaling=keda(scaleToZero=True)))
    assert spec["idleReplicaCount"] == 0 and spec["minReplicaCount"] == 2


def test_resource_triggers_use_utilization():
    spec, _ = keda_specs(args(autoscaling=autoscaling(keda={"triggers": [PROMETHEUS, {"type": "memory", "utilizationPercent": 75}]})))
    assert spec["triggers"][1] == {"type": "memory", "metricType": "Utilization", "metadata": {"value": "75"}}


@pytest.mark.parametrize("mode, update_mode", [("recommend", "Off"), ("initial", "Initial"), ("auto", "Recreate")])
def test_vpa_modes(mode, update_mode):
    vertical = VerticalScaling.model_validate(
        {"mode": mode, "controlledResources": ["memory"], "minAllowed": {"cpu": "50m", "memory": "64Mi"}, "maxAllowed": {"cpu": "1", "memory": "1Gi"}}
    )
    spec = vpa_spec(TARGET, vertical)
    assert spec["updatePolicy"] == {"updateMode": update_mode}
    assert spec["resourcePolicy"]["containerPolicies"] == [
        {
            "containerName": "analytics",
            "controlledResources": ["memory"],
            "minAllowed": {"cpu": "50m", "memory": "64Mi"},
            "maxAllowed": {"cpu": "1", "memory": "1Gi"},
        }
    ]


def test_a_cron_job_vpa_targets_the_cron_job():
    target = ScaleTarget(name="report", container="report", kind="CronJob", api_version="batch/v1")
    assert vpa_spec(target, VerticalScaling())["targetRef"] == {"apiVersion": "batch/v1", "kind": "CronJob", "name": "report"}


# --- rendered objects ---------------------------------------------------------------------------------------


class Owner(pulumi.ComponentResource):
    def __init__(self, autoscalers_args: AutoscalersArgs):
        super().__init__("platform:test:Owner", "owner")
        render_autoscalers("analytics", autoscalers_args, parent=self)
        self.register_outputs({})


def render(**overrides):
    return register(lambda: Owner(args(**overrides)))


def _children_are_parented_and_schema_valid(resources):
    owner = next(r for r in resources if r.type == "platform:test:Owner")
    objects = [r for r in resources if r.is_kubernetes_object]
    assert objects and all(r.parent == owner.urn for r in objects)
    for resource in objects:
        assert schemas.validate(unwrap(resource.inputs)) == [], resource.name


def test_hpa_and_vpa_are_rendered_as_children_and_schema_valid():
    resources = render(autoscaling=autoscaling(targetMemoryPercent=80), vertical=VerticalScaling())
    _children_are_parented_and_schema_valid(resources)
    assert one(resources, "HorizontalPodAutoscaler")["spec"]["metrics"][0]["resource"]["name"] == "memory"
    assert one(resources, "VerticalPodAutoscaler")["spec"]["updatePolicy"]["updateMode"] == "Off"
    assert by_kind(resources, "ScaledObject") == []


def test_keda_renders_a_scaled_object_with_its_trigger_authentication_and_no_hpa_of_ours():
    scaling = autoscaling(keda={"triggers": [PROMETHEUS, POSTGRESQL], "fallback": {"failureThreshold": 3, "replicas": 4}, "scaleToZero": True})
    resources = render(autoscaling=scaling, connection_secrets={"orders": SecretKey("orders-app", "uri")})
    _children_are_parented_and_schema_valid(resources)
    assert by_kind(resources, "HorizontalPodAutoscaler") == []
    scaled = one(resources, "ScaledObject")
    assert scaled["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready", "pulumi.com/timeoutSeconds": "300"}
    authentication = one(resources, "TriggerAuthentication")
    assert authentication["metadata"]["name"] == scaled["spec"]["triggers"][1]["authenticationRef"]["name"]
    # The ScaledObject waits for the TriggerAuthentication it names.
    [scaled_resource] = [r for r in resources if r.inputs.get("kind") == "ScaledObject"]
    [auth_resource] = [r for r in resources if r.inputs.get("kind") == "TriggerAuthentication"]
    assert auth_resource.urn in scaled_resource.dependencies


def test_a_postgresql_trigger_without_the_database_secret_is_a_program_error():
    with pytest.raises(Exception, match="no connection Secret for database 'orders'"):
        render(autoscaling=autoscaling(keda={"triggers": [POSTGRESQL]}))


# --- the shipped stacks (#17: the analytics worker scaled by KEDA, VPA recommendations for every prod workload) -----


def _objects(rendering, kind):
    return {obj["metadata"]["name"]: obj for obj in by_kind(rendering.resources, kind)}


def test_prod_scales_analytics_by_keda_only_and_recommends_resources_for_every_workload(rendered):
    prod = rendered["prod"]
    scaled = _objects(prod, "ScaledObject")
    assert set(scaled) == {"analytics"}
    assert scaled["analytics"]["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "analytics"}
    assert {t["type"] for t in scaled["analytics"]["spec"]["triggers"]} == {"prometheus", "postgresql", "redis-sentinel"}
    assert "idleReplicaCount" not in scaled["analytics"]["spec"]  # prod keeps its floor
    hpa_targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in _objects(prod, "HorizontalPodAutoscaler").values()}
    assert "analytics" not in hpa_targets and hpa_targets == {"web", "api"}
    assert "replicas" not in _objects(prod, "Deployment")["analytics"]["spec"]  # KEDA's HPA owns the count
    authentications = [a["spec"]["secretTargetRef"] for a in _objects(prod, "TriggerAuthentication").values()]
    password = {"name": "cache-auth", "key": "password"}  # the redis trigger's, through the Sentinels (test_cache_keda.py)
    assert sorted(authentications, key=len) == [
        [{"parameter": "connection", "name": "orders-app", "key": "uri"}],
        [{"parameter": "password", **password}, {"parameter": "sentinelPassword", **password}],
    ]
    vpas = _objects(prod, "VerticalPodAutoscaler")
    workloads = {name for kind in ("Deployment", "CronJob") for name in _objects(prod, kind)} - {"orders-pooler-rw"}
    assert set(vpas) == workloads and {"web", "api", "analytics", "report"} <= workloads
    assert {vpa["spec"]["updatePolicy"]["updateMode"] for vpa in vpas.values()} == {"Off"}
    assert vpas["report"]["spec"]["targetRef"]["kind"] == "CronJob"


def test_staging_lets_the_analytics_worker_scale_to_zero(rendered):
    [scaled] = _objects(rendered["staging"], "ScaledObject").values()
    assert scaled["spec"]["idleReplicaCount"] == 0 and scaled["spec"]["minReplicaCount"] == 1
