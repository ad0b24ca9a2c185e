"""Cache alone: what it owns, hardening, isolation, secrets, memory and persistence, and an external cache's wiring.

The rendered config is started by real servers in tests/test_cache_servers.py; the shipped stacks' caches are judged
in tests/test_cache_stacks.py.
"""

from __future__ import annotations

import json

import pulumi
import pytest

from components import cache as cc
from components.cache import Cache, CacheArgs
from components.cache_config import CacheConfig, quantity_bytes
from tests.helpers import by_kind, one, pod_spec, register, secret_leaves, unwrap
from tools import analyzer, engine, preview, schemas

NAMESPACE = "apps"
CACHE = {
    "name": "sessions",
    "usedBy": ["api", "analytics"],
    "replicas": 2,
    "failover": {},
    "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    "persistence": {"mode": "aof", "size": "2Gi", "storageClass": "fast"},
}
EXTERNAL = {
    "name": "managed",
    "usedBy": ["api"],
    "external": {"host": "10.20.30.40", "port": 6380, "tls": True, "passwordKey": "managed-cache-password"},
}
EXTERNAL_PASSWORD = "external-cache-password-value"


def render_cache(spread_strictly: bool = False, protect: bool = False, **overrides):
    config = CacheConfig.model_validate({**CACHE, **overrides})

    def program():
        password = pulumi.Output.secret(EXTERNAL_PASSWORD) if config.external else None
        Cache(config.name, CacheArgs(cache=config, namespace=NAMESPACE, spread_strictly=spread_strictly, protect=protect, external_password=password))

    return register(program)


@pytest.fixture(scope="module")
def failover_cache():
    return render_cache(spread_strictly=True, protect=True)


@pytest.fixture(scope="module")
def single_cache():
    return render_cache(replicas=0, failover=None, persistence={"mode": "none"})


@pytest.fixture(scope="module")
def external_cache():
    return register(
        lambda: Cache(
            "managed",
            CacheArgs(cache=CacheConfig.model_validate(EXTERNAL), namespace=NAMESPACE, external_password=pulumi.Output.secret(EXTERNAL_PASSWORD)),
        )
    )


def statefulset(resources, name: str) -> dict:
    return next(s for s in by_kind(resources, "StatefulSet") if s["metadata"]["name"] == name)


def test_owns_its_objects_all_parented_to_it_and_schema_valid(failover_cache, single_cache):
    (component,) = [r for r in failover_cache if r.type == "platform:cache:Cache"]
    kinds = sorted(r.inputs["kind"] for r in failover_cache if r.is_kubernetes_object)
    assert kinds == sorted(
        ["ConfigMap", "Secret", "Service", "Service", "Service", "StatefulSet", "StatefulSet", "PodDisruptionBudget",
         "PodDisruptionBudget", "PodMonitor", "NetworkPolicy", "NetworkPolicy", "NetworkPolicy"]
    )  # fmt: skip
    children = [r for r in failover_cache if r is not component]
    assert all(r.parent == component.urn for r in children)
    for resources in (failover_cache, single_cache):
        objects = [r.inputs for r in resources if r.is_kubernetes_object]
        assert all(unwrap(o)["metadata"]["namespace"] == NAMESPACE for o in objects)
        assert schemas.validate_all(objects) == []
    # Without failover: one node, no Sentinels.
    assert [s["metadata"]["name"] for s in by_kind(single_cache, "StatefulSet")] == ["sessions"]


def test_every_pod_meets_restricted_and_the_pack_is_clean(failover_cache, single_cache):
    for resources in (failover_cache, single_cache):
        findings = analyzer.analyze(resources, policy_config={"all": "mandatory"}, stack_policies=False)
        assert [(f.policy, f.message) for f in findings] == []
    for workload in by_kind(failover_cache, "StatefulSet"):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 999
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"] + spec["initContainers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["limits"]["memory"]


def test_data_nodes_and_sentinels_spread_strictly_only_when_asked(failover_cache, single_cache):
    for name in ("sessions", "sessions-sentinel"):
        spread = pod_spec(statefulset(failover_cache, name))["topologySpreadConstraints"]
        by_key = {c["topologyKey"]: c["whenUnsatisfiable"] for c in spread}
        assert by_key == {"kubernetes.io/hostname": "DoNotSchedule", "topology.kubernetes.io/zone": "ScheduleAnyway"}
    spread = pod_spec(statefulset(single_cache, "sessions"))["topologySpreadConstraints"]
    assert {c["whenUnsatisfiable"] for c in spread} == {"ScheduleAnyway"}
    assert statefulset(failover_cache, "sessions")["spec"]["replicas"] == 3
    assert statefulset(failover_cache, "sessions-sentinel")["spec"]["replicas"] == 3


def test_pdbs_let_drains_evict_unhealthy_pods(failover_cache):
    budgets = {b["metadata"]["name"]: b["spec"] for b in by_kind(failover_cache, "PodDisruptionBudget")}
    assert set(budgets) == {"sessions", "sessions-sentinel"}
    for name, spec in budgets.items():
        assert spec == {
            "maxUnavailable": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        }


def test_the_password_is_generated_and_secret_everywhere_it_goes(failover_cache):
    secret_resource = next(r for r in failover_cache if r.is_kubernetes_object and r.inputs["kind"] == "Secret")
    assert engine.is_secret(secret_resource.inputs["stringData"])
    data = unwrap(secret_resource.inputs)["stringData"]
    password = data["password"]
    assert len(password) == cc.PASSWORD_LENGTH
    assert set(data) == {"password", "url", cc.SERVER_AUTH_CONF, cc.SENTINEL_AUTH_CONF}
    assert f"requirepass {password}" in data[cc.SERVER_AUTH_CONF] and f"masterauth {password}" in data[cc.SERVER_AUTH_CONF]
    assert data["url"] == f"redis+sentinel://:{password}@sessions-sentinel.{NAMESPACE}.svc:26379/sessions/0"
    found_in = set()
    for resource in failover_cache:
        for value, inside_secret in secret_leaves(resource.inputs):
            if isinstance(value, str) and password in value:
                assert inside_secret, resource.name
                found_in.add(resource.name)
    assert found_in == {"sessions-auth"}  # the password itself, the URL and the config lines
    # Pods read it by reference only; never in the ConfigMap.
    assert password not in json.dumps(one(failover_cache, "ConfigMap"))
    rendering = engine.Rendering("platform", "test", failover_cache, outputs={}, placeholder_keys=[])
    result = preview.run_preview("test", rendering=rendering)
    assert password not in preview.format_text(result) + json.dumps(result.manifests)


def test_maxmemory_leaves_headroom_below_the_limit():
    limit = quantity_bytes("512Mi")
    for mode, share in (("none", 0.75), ("aof", 0.6), ("rdb", 0.6)):
        persistence = {"mode": mode} if mode == "none" else {"mode": mode, "size": "1Gi"}
        config = CacheConfig.model_validate({**CACHE, "persistence": persistence})
        assert cc.derived_maxmemory(config) == int(limit * share)
        assert f"maxmemory {int(limit * share)}\n" in cc.server_conf(config)
    config = CacheConfig.model_validate({**CACHE, "maxmemory": "300Mi", "maxmemoryPolicy": "volatile-ttl"})
    conf = cc.server_conf(config)
    assert f"maxmemory {300 * 2**20}\n" in conf and "maxmemory-policy volatile-ttl\n" in conf


def test_only_directives_valkey_8_and_redis_7_0_both_accept_are_rendered():
    for overrides in ({}, {"persistence": {"mode": "rdb", "size": "1Gi"}}, {"replicas": 1}):
        config = CacheConfig.model_validate({**CACHE, **overrides})
        password = "p4ssw0rd"
        server = cc.render_directives(cc.server_conf(config) + cc.server_auth_conf(password) + "replicaof h 6379\nreplica-announce-ip h\n")
        assert set(server) <= cc.PORTABLE_SERVER_DIRECTIVES, set(server) - cc.PORTABLE_SERVER_DIRECTIVES
        sentinel = cc.render_directives(cc.sentinel_conf(config) + cc.sentinel_auth_conf(config, password))
        assert set(sentinel) <= cc.PORTABLE_SENTINEL_DIRECTIVES, set(sentinel) - cc.PORTABLE_SENTINEL_DIRECTIVES
    # The start script writes only portable directives too.
    script = cc.start_script(CacheConfig.model_validate(CACHE))
    written = [line.split('"')[1] for line in script.splitlines() if line.strip().startswith("echo \"") and ">> \"$out\"" in line]
    assert set(cc.render_directives("\n".join(written))) <= cc.PORTABLE_SERVER_DIRECTIVES | cc.PORTABLE_SENTINEL_DIRECTIVES
    # Valkey-only or newer-Redis directives would stop one of the two engines at start-up.
    assert not {"primaryauth", "availability-zone", "dual-channel-replication-enabled", "locale-collate"} & (
        cc.PORTABLE_SERVER_DIRECTIVES | cc.PORTABLE_SENTINEL_DIRECTIVES
    )


def test_persistence_on_a_claim_only_when_asked(failover_cache, single_cache):
    data = statefulset(failover_cache, "sessions")["spec"]
    (claim,) = data["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi" and claim["spec"]["storageClassName"] == "fast"
    assert data["persistentVolumeClaimRetentionPolicy"] == {"whenScaled": "Retain", "whenDeleted": "Retain"}
    single = statefulset(single_cache, "sessions")["spec"]
    assert "volumeClaimTemplates" not in single
    assert {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}} in single["template"]["spec"]["volumes"]
    assert "appendonly no" in one(single_cache, "ConfigMap")["data"][cc.SERVER_CONF]


def test_only_users_insiders_and_prometheus_reach_the_cache(failover_cache):
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(failover_cache, "NetworkPolicy")}
    users = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}} for name in ("analytics", "api")]
    nodes = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "sessions"}}}
    sentinels = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "sessions-sentinel"}}}
    data = policies["sessions-data"]
    assert data["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "sessions"}}
    assert data["policyTypes"] == ["Ingress", "Egress"]
    assert data["ingress"][0] == {"from": users, "ports": [{"protocol": "TCP", "port": 6379}]}
    assert data["ingress"][1] == {"from": [nodes, sentinels], "ports": [{"protocol": "TCP", "port": 6379}]}
    assert data["ingress"][2]["ports"] == [{"protocol": "TCP", "port": cc.EXPORTER_PORT}]
    assert data["ingress"][2]["from"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    assert len(data["ingress"]) == 3
    sentinel_policy = policies["sessions-sentinels"]
    assert sentinel_policy["ingress"] == [
        {"from": users, "ports": [{"protocol": "TCP", "port": 26379}]},
        {"from": [nodes, sentinels], "ports": [{"protocol": "TCP", "port": 26379}]},
    ]
    clients = policies["sessions-clients"]
    assert clients["podSelector"]["matchExpressions"][0]["values"] == ["analytics", "api"]
    assert clients["egress"] == [{"to": [nodes, sentinels], "ports": [{"protocol": "TCP", "port": 6379}, {"protocol": "TCP", "port": 26379}]}]


def test_no_users_means_no_open_rule():
    resources = render_cache(usedBy=[])
    data = next(p["spec"] for p in by_kind(resources, "NetworkPolicy") if p["metadata"]["name"] == "sessions-data")
    assert all(rule["from"] for rule in data["ingress"])
    assert "sessions-clients" not in {p["metadata"]["name"] for p in by_kind(resources, "NetworkPolicy")}


def test_exporter_sidecar_and_pod_monitor(failover_cache):
    spec = pod_spec(statefulset(failover_cache, "sessions"))
    exporter = next(c for c in spec["containers"] if c["name"] == "exporter")
    assert exporter["image"].startswith("docker.io/oliver006/redis_exporter:v")
    assert {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sessions-auth", "key": "password"}}} in exporter["env"]
    monitor = one(failover_cache, "PodMonitor")
    assert monitor["spec"] == {"selector": {"matchLabels": {"app.kubernetes.io/name": "sessions"}}, "podMetricsEndpoints": [{"port": "metrics"}]}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_prod_protects_and_retains_the_data_only(failover_cache):
    protected = {r.name for r in failover_cache if r.protect}
    assert protected == {"sessions-auth", "sessions-data"}
    assert {r.name for r in failover_cache if r.retain_on_delete} == protected


def test_services_get_locations_in_plain_and_credentials_by_reference():
    caches = {}

    def program():
        for overrides in ({}, {"replicas": 0, "failover": None}):
            config = CacheConfig.model_validate({**CACHE, **overrides})
            caches[bool(overrides)] = Cache(f"c{len(caches)}", CacheArgs(cache=config, namespace=NAMESPACE))
        caches["external"] = Cache(
            "managed", CacheArgs(cache=CacheConfig.model_validate(EXTERNAL), namespace=NAMESPACE, external_password=EXTERNAL_PASSWORD)
        )

    register(program)
    assert caches[False].connection_env() == {"REDIS_SENTINELS": f"sessions-sentinel.{NAMESPACE}.svc:26379", "REDIS_MASTER_NAME": "sessions"}
    assert caches[True].connection_env() == {"REDIS_HOST": f"sessions.{NAMESPACE}.svc", "REDIS_PORT": "6379"}
    assert caches["external"].connection_env() == {"REDIS_HOST": "10.20.30.40", "REDIS_PORT": "6380", "REDIS_TLS": "true"}
    for cache in caches.values():
        refs = {(ref.env_name, ref.key) for ref in cache.secret_refs()}
        assert refs == {("REDIS_PASSWORD", "password"), ("REDIS_URL", "url")}
        assert {ref.secret_name for ref in cache.secret_refs()} == {cache.secret_name}


def test_an_external_cache_deploys_nothing_but_its_wiring(external_cache):
    kinds = sorted(r.inputs["kind"] for r in external_cache if r.is_kubernetes_object)
    assert kinds == ["NetworkPolicy", "Secret"]
    assert not [r for r in external_cache if r.type.startswith("random:")]
    data = one(external_cache, "Secret")["stringData"]
    assert data == {"password": EXTERNAL_PASSWORD, "url": f"rediss://:{EXTERNAL_PASSWORD}@10.20.30.40:6380/0"}
    egress = one(external_cache, "NetworkPolicy")["spec"]
    assert egress["egress"] == [{"to": [{"ipBlock": {"cidr": "10.20.30.40/32"}}], "ports": [{"protocol": "TCP", "port": 6380}]}]
    assert egress["podSelector"]["matchExpressions"][0]["values"] == ["api"]


def test_a_changed_config_rolls_the_cache_pods():
    def checksum(resources):
        return statefulset(resources, "sessions")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(render_cache()) != checksum(render_cache(maxmemoryPolicy="noeviction"))
    assert checksum(render_cache()) == checksum(render_cache())


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"replicas": 0}, "'failover' promotes a replica"),
        ({"failover": None}, "'replicas' without 'failover'"),
        ({"failover": {"sentinels": 3, "quorum": 1}}, "set it to a majority"),
        ({"image": "docker.io/valkey/valkey:latest"}, "mutable tag 'latest'"),
        ({"persistence": {"mode": "aof"}}, "set 'size'"),
        ({"resources": None}, "'resources'"),
        ({**EXTERNAL, "replicas": 1}, "describe a cache deployed here"),
    ],
)
def test_config_refuses_what_cannot_work(overrides, message):
    with pytest.raises(ValueError, match=message):
        CacheConfig.model_validate({**CACHE, **overrides})


# --- what a service using the cache gets (components.backing_service) --------------------------------------------


def render_users(external_password: str) -> dict[str, dict]:
    """api uses an external cache with this password, web uses nothing: their Deployments by name."""
    from components.app_service import AppService, AppServiceArgs
    from components.app_service_config import ServiceConfig

    resources = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "256Mi"}}

    def program():
        cache = Cache(
            "managed", CacheArgs(cache=CacheConfig.model_validate(EXTERNAL), namespace=NAMESPACE, external_password=pulumi.Output.secret(external_password))
        )
        for name, used in (("api", [cache]), ("web", [])):
            config = ServiceConfig.model_validate({"name": name, "image": f"{name}:1.0.0", "port": 8080, "resources": resources, "env": {"LOG_LEVEL": "info"}})
            AppService(name, AppServiceArgs(service=config, namespace=NAMESPACE, image=f"r.example.com/{name}:1.0.0", backing_services=used))

    rendered = register(program)
    return {d["metadata"]["name"]: d for d in by_kind(rendered, "Deployment")} | {
        c["metadata"]["name"]: c for c in by_kind(rendered, "ConfigMap")
    }


def test_users_read_the_connection_by_reference_and_a_new_password_rolls_exactly_them():
    before, after = render_users("first-password-value"), render_users("second-password-value")
    env = pod_spec(before["api"])["containers"][0]["env"]
    assert {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "managed-auth", "key": "password"}}} in env
    assert {"name": "REDIS_URL", "valueFrom": {"secretKeyRef": {"name": "managed-auth", "key": "url"}}} in env
    assert all("value" not in variable for variable in env)
    assert before["api-config"]["data"] == {"LOG_LEVEL": "info", "REDIS_HOST": "10.20.30.40", "REDIS_PORT": "6380", "REDIS_TLS": "true"}
    assert "REDIS_HOST" not in before["web-config"]["data"]
    assert not [v for v in pod_spec(before["web"])["containers"][0].get("env", []) if v["name"].startswith("REDIS_")]

    def checksum(deployments, name):
        return deployments[name]["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]

    assert checksum(before, "api") != checksum(after, "api")
    assert checksum(before, "web") == checksum(after, "web")
    assert checksum(before, "api") == checksum(render_users("first-password-value"), "api")


def test_no_env_value_is_empty_so_the_api_server_keeps_what_we_render(failover_cache, single_cache):
    """The API server drops `value: ""` (make e2e found the single node's empty SENTINELS in the comparison)."""
    for resources in (failover_cache, single_cache):
        for workload in by_kind(resources, "StatefulSet"):
            spec = pod_spec(workload)
            for container in spec["containers"] + spec["initContainers"]:
                assert all(variable.get("value") != "" for variable in container.get("env", [])), container["name"]
