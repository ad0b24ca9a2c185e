"""The shipped stacks' caches: prod with failover, persistence, PDBs, isolation, monitoring and api reading its
connection from the cache's Secret; staging with failover; local a single node. And the config errors that tie caches
to the rest of a stack, through the whole stack load (file, key path and a fix that works)."""

from __future__ import annotations

import copy
import json

import pytest

from components import cache as cc
from tests.helpers import by_kind, pod_spec
from tests.test_config import api, load, problems_for, stack_values
from tools import analyzer, preview


def named(resources, kind: str, name: str) -> dict:
    return next(o for o in by_kind(resources, kind) if o["metadata"]["name"] == name)


def test_prod_runs_the_cache_with_failover_persistence_and_budgets(rendered):
    prod = rendered["prod"].resources
    data = named(prod, "StatefulSet", "cache")
    assert data["spec"]["replicas"] == 3
    (claim,) = data["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "gp3"
    assert "appendonly yes" in named(prod, "ConfigMap", "cache-config")["data"][cc.SERVER_CONF]
    assert named(prod, "StatefulSet", "cache-sentinel")["spec"]["replicas"] == 3
    for workload in ("cache", "cache-sentinel"):
        spread = pod_spec(named(prod, "StatefulSet", workload))["topologySpreadConstraints"]
        assert {"kubernetes.io/hostname": "DoNotSchedule"}.items() <= {c["topologyKey"]: c["whenUnsatisfiable"] for c in spread}.items()
        budget = named(prod, "PodDisruptionBudget", workload)["spec"]
        assert budget["maxUnavailable"] == 1 and budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    for container in pod_spec(data)["containers"] + pod_spec(data)["initContainers"]:
        assert "@sha256:" in container["image"], container["name"]
    protected = {r.name for r in prod if r.protect and r.type == cc.STATEFULSET_TYPE}
    assert "cache-data" in protected


def test_prod_admits_only_the_caches_users_and_monitors_it(rendered):
    prod = rendered["prod"]
    users = sorted(next(c for c in prod_config().caches if c.name == "cache").used_by)
    assert "api" in users
    assert users == ["analytics", "api"]
    policy = named(prod.resources, "NetworkPolicy", "cache-data")["spec"]
    clients = policy["ingress"][0]["from"]
    # Its users, and KEDA's operator for analytics' redis trigger on the jobs list.
    users_pods = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}} for name in users]
    assert clients == users_pods + [prod_config().keda.operator_peer]
    rules = [rule for group in by_kind(prod.resources, "PrometheusRule")[0]["spec"]["groups"] for rule in group["rules"]]
    cache_alerts = {rule["alert"] for rule in rules if rule["labels"].get("cache") == "cache"}
    assert cache_alerts == {
        "CacheDown", "CacheMemoryNearMaxmemory", "CacheEvicting", "CacheRejectingConnections", "CacheNoPrimary",
        "CacheReplicationBroken",
    }  # fmt: skip
    dashboard = named(prod.resources, "ConfigMap", "dashboard-cache-cache")
    panels = json.loads(dashboard["data"]["cache-cache.json"])["panels"]
    assert any("redis_memory_used_bytes" in target["expr"] for panel in panels for target in panel["targets"])
    assert by_kind(prod.resources, "PodMonitor")


def prod_config():
    values, secret_keys = stack_values("prod")
    return load(values, secret_keys, "prod")


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_api_reads_the_cache_from_its_secret_and_web_gets_nothing(rendered, stack):
    resources = rendered[stack].resources
    env = pod_spec(named(resources, "Deployment", "api"))["containers"][0]["env"]
    by_name = {variable["name"]: variable for variable in env}
    for name, key in (("REDIS_PASSWORD", "password"), ("REDIS_URL", "url")):
        assert by_name[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": "cache-auth", "key": key}}}
    settings = named(resources, "ConfigMap", "api-config")["data"]
    if stack == "local":
        assert settings["REDIS_HOST"] == "cache.platform.svc" and settings["REDIS_PORT"] == "6379"
        assert [s["metadata"]["name"] for s in by_kind(resources, "StatefulSet")] == ["cache"]
    else:
        assert settings["REDIS_SENTINELS"] == "cache-sentinel.platform.svc:26379" and settings["REDIS_MASTER_NAME"] == "cache"
    assert not [key for key in named(resources, "ConfigMap", "web-config")["data"] if key.startswith("REDIS_")]


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_the_cache_password_never_shows_and_every_cache_pod_meets_restricted(rendered, stack):
    rendering = rendered[stack]
    secret = named(rendering.resources, "Secret", "cache-auth")
    password = secret["stringData"]["password"]
    result = preview.run_preview(stack, rendering=rendering)
    assert password not in preview.format_text(result) + json.dumps(result.manifests)
    caches = [r for r in rendering.resources if r.type == cc.STATEFULSET_TYPE]
    assert caches
    findings = analyzer.analyze(caches, policy_config={"all": "mandatory"}, stack_policies=False)
    assert [(f.policy, f.message) for f in findings] == []


# --- config errors through the whole stack load ------------------------------------------------------------------


def cache(values):
    return values["caches"][0]


def test_an_unknown_user_is_named_with_the_services_there_are():
    problems = problems_for(lambda v, s: cache(v).update(usedBy=["api", "apii"]))
    assert any(p.startswith("platform:caches[0].usedBy[1]: 'apii' is not a service") and "--path 'caches[0].usedBy[1]'" in p for p in problems)


def test_a_cache_nobody_uses_is_refused():
    problems = problems_for(lambda v, s: cache(v).update(usedBy=[]))
    assert any(p.startswith("platform:caches[0].usedBy: cache 'cache' is used by no service") for p in problems)


def test_a_prod_cache_without_failover_is_refused_with_the_commands_that_fix_it():
    def single(values, secret_keys):
        cache(values).pop("failover")
        cache(values)["replicas"] = 0

    problems = problems_for(single, "prod")
    assert any(
        p.startswith("platform:caches[0].failover: prod cache 'cache' has no failover")
        and "pulumi config set --stack prod --path 'caches[0].replicas' 2" in p
        for p in problems
    )


def test_maxmemory_above_the_limit_is_refused():
    problems = problems_for(lambda v, s: cache(v).update(maxmemory="1Gi"))
    assert problems == [
        "platform:caches[0].maxmemory: 1Gi is not below the container's memory limit 128Mi; the container would be "
        "OOM-killed before Valkey evicts a key. Remove it to derive it from the limit with headroom "
        "(`pulumi config rm --stack local --path 'caches[0].maxmemory'`) or set one below the limit"
    ]
    values, secret_keys = stack_values("local")
    cache(values)["maxmemory"] = "100Mi"
    assert load(values, secret_keys).caches[0].maxmemory == "100Mi"


def test_prod_cache_images_need_a_digest():
    problems = problems_for(lambda v, s: cache(v).update(image="docker.io/valkey/valkey:8.1.4"), "prod")
    assert any(p.startswith("platform:caches[0].image: 'docker.io/valkey/valkey:8.1.4' is pinned by tag") for p in problems)


def test_an_external_cache_needs_its_password_encrypted():
    def external(values, secret_keys):
        values["caches"][0] = {"name": "cache", "usedBy": ["api"], "external": {"host": "cache.example.internal", "passwordKey": "cache-password"}}
        values["cache-password"] = "plaintext-password"

    problems = problems_for(external)
    assert any(p.startswith("platform:cache-password: stored in plaintext") for p in problems)


def test_the_cache_env_must_not_clash_with_the_services_own():
    problems = problems_for(lambda v, s: api(v).setdefault("env", {}).update(REDIS_URL="redis://elsewhere:6379"))
    assert any(p.startswith("platform:caches[0].envPrefix: cache 'cache' gives service 'api' ['REDIS_URL']") for p in problems)


# --- what make e2e does with the caches (e2e/run.py, e2e/operators.py) ------------------------------------------


def test_e2e_binds_a_volume_for_every_cache_claim_and_waits_for_the_cache_pods(rendered):
    from e2e import operators
    from e2e.run import desired_replicas

    objects = rendered["prod"].kubernetes_objects()
    kinds = [o for o in objects if o.get("kind") in ("Cluster", "StatefulSet")]
    volumes = [o for o in operators.storage_objects("prod", kinds) if o["kind"] == "PersistentVolume"]
    # orders: 3 instances x (data + WAL) on gp3; the cache: 3 data nodes on gp3. The Sentinels claim nothing.
    assert sorted(v["spec"]["storageClassName"] for v in volumes) == ["gp3"] * (6 + 3)

    class Kube:
        def list(self, api_version, kind, namespace):
            return [o for o in objects if o["apiVersion"] == api_version and o["kind"] == kind and o["metadata"]["namespace"] == namespace]

    desired = desired_replicas(Kube(), "platform")
    assert desired["cache"] == 3 and desired["cache-sentinel"] == 3


def test_e2e_counts_the_cache_pods_the_statefulset_controller_runs(rendered):
    """podsAdmitted on the local stack as the API server would list it once every pod runs: web's and api's pods
    through their ReplicaSets, the cache's through its StatefulSet."""
    from types import SimpleNamespace

    from e2e.run import pods_admitted

    # Copies: the rendering is the session's, shared by every test.
    workloads = [copy.deepcopy(o) for o in rendered["local"].kubernetes_objects() if o["kind"] in ("Deployment", "StatefulSet")]
    assert sorted(w["metadata"]["name"] for w in workloads) == ["api", "cache", "web"]
    pods = []
    for workload in workloads:
        name, replicas = workload["metadata"]["name"], int(workload["spec"].get("replicas", 1))
        workload["status"] = {"readyReplicas": replicas}
        owner = {"kind": "StatefulSet", "name": name} if workload["kind"] == "StatefulSet" else {"kind": "ReplicaSet", "name": f"{name}-5d8f9c7b6"}
        pods += [{"metadata": {"name": f"{name}-{i}", "ownerReferences": [owner]}, "status": {"phase": "Running"}} for i in range(replicas)]

    class Kube:
        def list(self, api_version, kind, namespace):
            if kind == "Pod":
                return pods
            return [w for w in workloads if w["kind"] == kind]

    notes = []
    run = SimpleNamespace(note=notes.append)
    assert pods_admitted(SimpleNamespace(kube=Kube()), "platform", run) == 3
    assert notes == []
    pods.pop()  # the cache's pod never ran (refused by Pod Security Admission, say)
    with pytest.raises(AssertionError):
        pods_admitted(SimpleNamespace(kube=Kube()), "platform", run)
