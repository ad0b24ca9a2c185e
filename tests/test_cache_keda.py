"""KEDA's redis trigger on a cache (the analytics worker's queue): the ScaledObject asks the Sentinels (or the one
node, or the external endpoint) for a list's length with the cache's password from a TriggerAuthentication, the
cache admits KEDA's operator, and the stack config refuses a trigger on a cache the service does not use."""

from __future__ import annotations

import pulumi

from components.app_service import AppService, AppServiceArgs
from components.app_service_config import ServiceConfig
from components.autoscaling_config import KedaSettings
from components.cache import Cache, CacheArgs
from components.cache_config import CacheConfig, cache_problems
from tests.helpers import by_kind, one, register
from tests.test_cache import CACHE, EXTERNAL, NAMESPACE
from tools import schemas

RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"}}
TRIGGER = {"type": "redis", "cache": "sessions", "listName": "analytics:jobs", "listLength": 20, "activationListLength": 1}


def render(cache_overrides: dict, trigger: dict = TRIGGER, outside=(), base: dict = CACHE) -> list:
    config = CacheConfig.model_validate({**base, **cache_overrides})
    service = ServiceConfig.model_validate(
        {"name": "api", "image": "api:1.0.0", "port": 8080, "resources": RESOURCES,
         "autoscaling": {"minReplicas": 2, "maxReplicas": 8, "keda": {"triggers": [trigger]}}}
    )  # fmt: skip

    def program():
        password = pulumi.Output.secret("external-password") if config.external else None
        cache = Cache(config.name, CacheArgs(cache=config, namespace=NAMESPACE, external_password=password, outside_clients=list(outside)))
        AppService("api", AppServiceArgs(service=service, namespace=NAMESPACE, image="r.example.com/api:1.0.0", backing_services=[cache]))

    return register(program)


def test_with_failover_keda_asks_the_sentinels_with_the_caches_password():
    resources = render({})
    (trigger,) = one(resources, "ScaledObject")["spec"]["triggers"]
    assert trigger["type"] == "redis-sentinel"
    assert trigger["metadata"] == {
        "addresses": f"sessions-sentinel.{NAMESPACE}.svc:26379",
        "sentinelMaster": "sessions",
        "listName": "analytics:jobs",
        "listLength": "20",
        "activationListLength": "1",
    }
    authentication = one(resources, "TriggerAuthentication")
    assert trigger["authenticationRef"] == {"name": authentication["metadata"]["name"]}
    assert authentication["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "sessions-auth", "key": "password"},
        {"parameter": "sentinelPassword", "name": "sessions-auth", "key": "password"},
    ]
    assert "HorizontalPodAutoscaler" not in {r.inputs.get("kind") for r in resources if r.is_kubernetes_object}
    assert schemas.validate_all([r.inputs for r in resources if r.is_kubernetes_object]) == []


def test_a_single_node_or_an_external_cache_is_read_directly():
    (trigger,) = one(render({"replicas": 0, "failover": None}), "ScaledObject")["spec"]["triggers"]
    assert trigger["type"] == "redis" and trigger["metadata"]["address"] == f"sessions.{NAMESPACE}.svc:6379"
    assert "enableTLS" not in trigger["metadata"]
    external = render({"name": "sessions"}, base=EXTERNAL)
    (trigger,) = one(external, "ScaledObject")["spec"]["triggers"]
    assert trigger["metadata"]["address"] == "10.20.30.40:6380" and trigger["metadata"]["enableTLS"] == "true"
    assert one(external, "TriggerAuthentication")["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "sessions-auth", "key": "password"}]


def test_the_cache_admits_kedas_operator_when_a_trigger_reads_it():
    keda = KedaSettings().operator_peer
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(render({}, outside=[keda]), "NetworkPolicy")}
    assert keda in policies["sessions-data"]["ingress"][0]["from"]
    assert keda in policies["sessions-sentinels"]["ingress"][0]["from"]
    without = {p["metadata"]["name"]: p["spec"] for p in by_kind(render({}), "NetworkPolicy")}
    assert keda not in without["sessions-data"]["ingress"][0]["from"]


def test_a_trigger_on_a_cache_the_service_does_not_use_is_refused():
    raw = {
        "environment": "local",
        "services": [{"name": "api", "autoscaling": {"keda": {"triggers": [{"type": "prometheus"}, TRIGGER]}}}, {"name": "web"}],
        "caches": [{"name": "sessions", "usedBy": ["web"]}],
    }
    assert cache_problems(raw, "platform", "local") == [
        "platform:services[0].autoscaling.keda.triggers[1].cache: 'sessions' is not a cache 'api' uses (its usedBy), so "
        "KEDA has no password to read it with; use one of none, or add 'api' to that cache's usedBy: "
        "`pulumi config set --stack local --path 'caches[0].usedBy[1]' api`"
    ]
    raw["caches"][0]["usedBy"].append("api")
    assert cache_problems(raw, "platform", "local") == []
