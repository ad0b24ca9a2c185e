"""DatabaseCluster alone and in the shipped stacks: CRDs, secrets, network isolation, backups and data safety."""

from __future__ import annotations

import dataclasses
import ipaddress
import json

import pulumi
import pytest

from components import database_cluster as dbc
from components.database_cluster import BackupTarget, DatabaseCluster, DatabaseClusterArgs
from components.backup_bucket_config import BackupsConfig
from components.config_base import PRIVATE_IPV4_RANGES
from components.database_cluster_config import CnpgSettings, DatabaseConfig
from tests.helpers import by_kind, one, register, unwrap
from tools import analyzer, engine, preview, schemas

NAMESPACE = "apps"
DATABASE = {
    "name": "orders",
    "instances": 3,
    "storage": {"size": "10Gi", "storageClass": "fast"},
    "walStorage": {"size": "2Gi", "storageClass": "fast"},
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    "parameters": {"max_connections": 200, "jit": False},
    "usedBy": ["api"],
    "backup": {"schedule": "0 30 2 * * *"},
}
MINIO = {
    "bucket": "platform-backups",
    "endpoint": "http://minio.minio.svc:9000",
    "retentionDays": 7,
    "compression": "snappy",
    "credentials": {"accessKeyIdKey": "backup-key-id", "secretAccessKeyKey": "backup-secret-key"},
}
AWS_IRSA = {
    "bucket": "platform-backups",
    "region": "eu-west-1",
    "retentionDays": 30,
    "encryption": "aws:kms",
    "credentials": {"iamRole": True, "roleArn": "arn:aws:iam::111122223333:role/db-backups"},
}
STATIC_SECRET_KEY = "static-secret-access-key-value"


def render_database(backups: dict | None = MINIO, protect: bool = False, spread_strictly: bool = False, **overrides):
    database = DatabaseConfig.model_validate({**DATABASE, **overrides})
    settings = BackupsConfig.model_validate(backups) if backups else None

    def program():
        target = None
        if settings is not None:
            keys = (pulumi.Output.secret("AKIASTATICKEY"), pulumi.Output.secret(STATIC_SECRET_KEY))
            target = BackupTarget(settings, *(keys if settings.credentials.static_keys else (None, None)))
        DatabaseCluster(
            "orders",
            DatabaseClusterArgs(
                database=database,
                namespace=NAMESPACE,
                cnpg=CnpgSettings(apiServerCidrs=["10.96.0.1/32"]),
                backup=target,
                restore_access=target if database.restore else None,
                spread_strictly=spread_strictly,
                protect=protect,
            ),
        )

    return register(program)


@pytest.fixture(scope="module")
def minio_db():
    return render_database(MINIO, protect=True, spread_strictly=True)


@pytest.fixture(scope="module")
def irsa_db():
    return render_database(AWS_IRSA)


def named(resources, name):
    (found,) = [r for r in resources if r.name == name]
    return found


# --- the component ------------------------------------------------------------------------------------------


def test_owns_its_objects_all_parented_to_it(minio_db):
    (component,) = [r for r in minio_db if r.type == "platform:database:DatabaseCluster"]
    assert component.name == "orders"
    kinds = sorted(r.inputs["kind"] for r in minio_db if r.is_kubernetes_object)
    assert kinds == sorted(
        ["Secret", "Secret", "ObjectStore", "Cluster", "ScheduledBackup", "PodMonitor", "NetworkPolicy", "NetworkPolicy"]
    )
    children = [r for r in minio_db if r is not component]
    assert children and all(r.parent == component.urn for r in children)
    assert all(unwrap(r.inputs)["metadata"]["namespace"] == NAMESPACE for r in children if r.is_kubernetes_object)


@pytest.mark.parametrize("variant", ["minio", "irsa", "no-backups"])
def test_custom_resources_validate_against_their_crds(variant, minio_db, irsa_db):
    resources = {"minio": minio_db, "irsa": irsa_db}.get(variant) or render_database(None)
    objects = [r.inputs for r in resources if r.is_kubernetes_object]
    expected = {"Cluster", "PodMonitor"} | ({"ObjectStore", "ScheduledBackup"} if variant != "no-backups" else set())
    assert expected <= {o["kind"] for o in objects}
    assert schemas.validate_all(objects) == []


def test_validation_would_catch_a_wrong_field(minio_db):
    cluster = one(minio_db, "Cluster")
    cluster["spec"]["storage"]["storageClassName"] = "fast"  # the PVC spelling, not CloudNativePG's
    assert [error.path for error in schemas.validate(cluster)] == ["spec.storage"]


def test_cluster_spec_follows_the_config(minio_db):
    spec = one(minio_db, "Cluster")["spec"]
    assert spec["instances"] == 3
    assert spec["storage"] == {"size": "10Gi", "storageClass": "fast"}
    assert spec["walStorage"] == {"size": "2Gi", "storageClass": "fast"}
    assert spec["resources"] == DATABASE["resources"]
    assert spec["postgresql"]["parameters"] == {"max_connections": "200", "jit": "off"}
    assert spec["enableSuperuserAccess"] is False
    assert spec["bootstrap"] == {"initdb": {"database": "orders", "owner": "orders", "secret": {"name": "orders-app"}}}
    assert spec["affinity"] == {
        "enablePodAntiAffinity": True,
        "topologyKey": "kubernetes.io/hostname",
        "podAntiAffinityType": "required",
    }
    assert "walStorage" not in one(render_database(None, walStorage=None), "Cluster")["spec"]


def test_instances_spread_only_preferably_outside_prod(irsa_db):
    assert one(irsa_db, "Cluster")["spec"]["affinity"]["podAntiAffinityType"] == "preferred"


def test_superuser_access_only_when_asked_for():
    assert one(render_database(None, enableSuperuserAccess=True), "Cluster")["spec"]["enableSuperuserAccess"] is True


def test_credentials_secret_is_basic_auth_and_a_pulumi_secret(minio_db):
    resource = named(minio_db, "orders-app-secret")
    assert engine.is_secret(resource.inputs["stringData"])
    secret = unwrap(resource.inputs)
    assert secret["type"] == "kubernetes.io/basic-auth"
    data = secret["stringData"]
    assert set(data) == {"username", "password", "uri"}
    assert data["username"] == "orders" and len(data["password"]) == dbc.PASSWORD_LENGTH
    assert data["uri"] == f"postgresql://orders:{data['password']}@orders-rw.{NAMESPACE}.svc:5432/orders?sslmode=require"


def test_the_password_is_secret_everywhere_it_goes(minio_db):
    password = unwrap(named(minio_db, "orders-app-secret").inputs)["stringData"]["password"]
    found_in = set()
    for resource in minio_db:
        for value, inside_secret in _leaves(resource.inputs):
            if isinstance(value, str) and password in value:
                assert inside_secret, resource.name
                found_in.add(resource.name)
    assert found_in == {"orders-app-secret"}  # as password and inside the uri
    rendering = engine.Rendering("platform", "test", minio_db, outputs={}, placeholder_keys=[])
    result = preview.run_preview("test", rendering=rendering)
    shown = preview.format_text(result) + json.dumps(result.manifests)
    assert password not in shown and STATIC_SECRET_KEY not in shown
    assert "orders-app-secret" in shown


def _leaves(value, inside_secret=False):
    if engine.is_secret(value):
        yield from _leaves(value["value"], True)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item, inside_secret)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, inside_secret)
    else:
        yield value, inside_secret


def test_backups_go_through_the_barman_cloud_plugin(minio_db):
    cluster = one(minio_db, "Cluster")["spec"]
    store = one(minio_db, "ObjectStore")
    assert cluster["plugins"] == [
        {
            "name": dbc.BARMAN_CLOUD_PLUGIN,
            "isWALArchiver": True,
            "parameters": {"barmanObjectName": store["metadata"]["name"]},
        }
    ]
    assert "backup" not in cluster  # not the deprecated in-tree barmanObjectStore
    configuration = store["spec"]["configuration"]
    assert configuration["destinationPath"] == f"s3://platform-backups/{NAMESPACE}/"
    assert configuration["endpointURL"] == "http://minio.minio.svc:9000"
    assert configuration["wal"] == {"compression": "snappy", "encryption": "AES256", "maxParallel": 2}
    assert configuration["data"] == {"compression": "snappy", "encryption": "AES256", "jobs": 2}
    assert store["spec"]["retentionPolicy"] == "7d"
    scheduled = one(minio_db, "ScheduledBackup")["spec"]
    assert scheduled["cluster"] == {"name": "orders"} and scheduled["schedule"] == "0 30 2 * * *"
    assert scheduled["method"] == "plugin" and scheduled["pluginConfiguration"] == {"name": dbc.BARMAN_CLOUD_PLUGIN}


def test_static_backup_keys_live_in_a_secret_the_object_store_names(minio_db):
    keys = named(minio_db, "orders-backup-credentials")
    assert engine.is_secret(keys.inputs["stringData"])
    secret = unwrap(keys.inputs)
    references = one(minio_db, "ObjectStore")["spec"]["configuration"]["s3Credentials"]
    for reference in references.values():
        assert reference["name"] == secret["metadata"]["name"] and reference["key"] in secret["stringData"]
    assert secret["stringData"]["ACCESS_SECRET_KEY"] == STATIC_SECRET_KEY


def test_iam_role_credentials_use_no_keys(irsa_db):
    assert not [r for r in irsa_db if r.name == "orders-backup-credentials"]
    configuration = one(irsa_db, "ObjectStore")["spec"]["configuration"]
    assert configuration["s3Credentials"] == {"inheritFromIAMRole": True}
    assert "endpointURL" not in configuration
    assert configuration["wal"]["encryption"] == "aws:kms"
    annotations = one(irsa_db, "Cluster")["spec"]["serviceAccountTemplate"]["metadata"]["annotations"]
    assert annotations == {dbc.IRSA_ANNOTATION: "arn:aws:iam::111122223333:role/db-backups"}


def test_without_backups_there_is_no_archiving():
    resources = render_database(None)
    assert "plugins" not in one(resources, "Cluster")["spec"]
    assert not by_kind(resources, "ObjectStore") and not by_kind(resources, "ScheduledBackup")


def test_pod_monitor_matches_the_instances_and_prometheus(minio_db):
    monitor = one(minio_db, "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"] == {"matchLabels": {"cnpg.io/cluster": "orders", "cnpg.io/podRole": "instance"}}
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "metrics"}]


def test_protect_and_retain_only_the_data(minio_db, irsa_db):
    protected = sorted(r.name for r in minio_db if r.protect)
    assert protected == ["orders-app-secret", "orders-cluster"]
    assert all(r.retain_on_delete == r.protect for r in minio_db)
    assert not any(r.protect or r.retain_on_delete for r in irsa_db)


def test_no_api_server_addresses_means_no_open_egress():
    database = DatabaseConfig.model_validate(DATABASE)

    def program():
        DatabaseCluster("orders", DatabaseClusterArgs(database=database, namespace=NAMESPACE, cnpg=CnpgSettings()))

    policy = [p for p in by_kind(register(program), "NetworkPolicy") if p["metadata"]["name"] == "orders-database"][0]
    assert all(rule.get("to") for rule in policy["spec"]["egress"])


def test_object_store_egress_follows_the_endpoint():
    def rules(**backups):
        return dbc.object_store_egress(BackupsConfig.model_validate({**AWS_IRSA, **backups}))

    (aws,) = rules()
    assert aws["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_IPV4_RANGES)}}]
    assert aws["ports"] == [{"protocol": "TCP", "port": 443}]
    # A store outside AWS: no IRSA there (the config refuses roleArn with an endpoint), the node's role or static keys.
    minio, _ = rules(endpoint="http://minio.storage.svc.cluster.local:9000", credentials={"iamRole": True})
    assert minio["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "storage"}}}]
    assert minio["ports"] == [{"protocol": "TCP", "port": 9000}]
    by_ip, _ = rules(endpoint="https://192.168.1.20", credentials={"iamRole": True})
    assert by_ip["to"] == [{"ipBlock": {"cidr": "192.168.1.20/32"}}] and by_ip["ports"][0]["port"] == 443
    node_role = rules(credentials={"iamRole": True})
    assert [peer["ipBlock"]["cidr"] for peer in node_role[1]["to"]] == list(dbc.INSTANCE_CREDENTIAL_ENDPOINTS)


def test_services_get_locations_in_plain_and_credentials_by_reference():
    database = DatabaseConfig.model_validate({**DATABASE, "envPrefix": "ORDERS_DB", "database": "shop"})
    built = []

    def program():
        built.append(DatabaseCluster("orders", DatabaseClusterArgs(database=database, namespace=NAMESPACE, cnpg=CnpgSettings())))

    register(program)
    (cluster,) = built
    assert cluster.connection_env() == {
        "ORDERS_DB_HOST": f"orders-rw.{NAMESPACE}.svc",
        "ORDERS_DB_PORT": "5432",
        "ORDERS_DB_NAME": "shop",
    }
    assert [(r.env_name, r.secret_name, r.key) for r in cluster.secret_refs()] == [
        ("ORDERS_DB_USER", "orders-app", "username"),
        ("ORDERS_DB_PASSWORD", "orders-app", "password"),
        ("ORDERS_DB_URL", "orders-app", "uri"),
    ]


def test_replacement_fields_name_what_a_running_cluster_cannot_change(minio_db):
    cluster = named(minio_db, "orders-cluster").inputs
    moved = json.loads(json.dumps(cluster))
    moved["spec"]["storage"]["storageClass"] = "slow"
    moved["spec"]["instances"] = 5.0
    from tools import diff

    def snapshot(inputs):
        return {"urn": {"type": dbc.CLUSTER_TYPE, "name": "orders-cluster", "protect": True, "inputs": inputs}}

    # The engine updates the Cluster in place (a real preview says so, `make e2e`); the diff says it will not take.
    (change,) = diff.diff_snapshots("prod", snapshot(cluster), snapshot(moved)).changes
    assert (change.action, change.destroys_data, change.replaced_by) == ("update", False, [])
    assert [path for path, _ in change.refused_in_place] == ["spec.storage.storageClass"]
    assert change.restore_config == {"name": "orders-v2", "restore": {"source": "orders"}}
    assert "restore: {source: orders}" in diff.format_text(diff.diff_snapshots("prod", snapshot(cluster), snapshot(moved)))
    renamed = json.loads(json.dumps(cluster))
    renamed["metadata"]["name"] = "orders-2"
    (change,) = diff.diff_snapshots("prod", snapshot(cluster), snapshot(renamed)).changes
    assert (change.action, change.destroys_data) == ("replace", True)
    # The rename, done safely: the new name restored from the old one's backups (which stays until it is verified).
    assert change.restore_config == {"name": "orders-2", "restore": {"source": "orders"}}
    assert diff.to_json(diff.StackDiff("prod", [change]))["changes"][0]["restoreConfig"] == change.restore_config
    assert diff.diff_snapshots("prod", snapshot(cluster), snapshot(json.loads(json.dumps(cluster)))).changes == []
    assert set(dbc.REPLACEMENT_FIELDS) == {named(minio_db, n).type for n in ("orders-cluster", "orders-app-secret")}
    assert set(dbc.IN_PLACE_REFUSED_FIELDS) == {named(minio_db, n).type for n in ("orders-cluster", "orders-scheduled-backup")}


# --- network isolation: a small NetworkPolicy evaluator over the rendered stack ------------------------------


@dataclasses.dataclass(frozen=True)
class Pod:
    namespace: str
    labels: tuple  # sorted (key, value) pairs, so pods are hashable and printable

    @classmethod
    def of(cls, namespace: str, labels: dict) -> "Pod":
        return cls(namespace, tuple(sorted(labels.items())))


def selects(selector: dict | None, labels: dict) -> bool:
    """Kubernetes LabelSelector semantics; an empty selector selects everything."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def policy_types(spec: dict) -> set[str]:
    return set(spec.get("policyTypes") or ["Ingress"] + (["Egress"] if spec.get("egress") else []))


def peer_matches(peer: dict, policy_namespace: str, other) -> bool:
    if "ipBlock" in peer:
        if not isinstance(other, str):
            return False  # pod addresses are not modelled: ipBlocks only ever match the plain IPs asked about
        address = ipaddress.ip_address(other)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(excluded) for excluded in block.get("except", [])
        )
    if isinstance(other, str):
        return False
    labels = dict(other.labels)
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": other.namespace})
    else:
        in_namespace = other.namespace == policy_namespace
    return in_namespace and ("podSelector" not in peer or selects(peer["podSelector"], labels))


def port_matches(ports: list | None, port: int) -> bool:
    if not ports:
        return True
    return any(
        p.get("protocol", "TCP") == "TCP" and (p.get("port") is None or p["port"] <= port <= p.get("endPort", p["port"]))
        for p in ports
    )


def allows(policies: list[dict], direction: str, subject: Pod, other, port: int) -> bool:
    """Whether the policies let `subject` send (Egress) to or receive (Ingress) from `other` on `port`."""
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and selects(p["spec"]["podSelector"], dict(subject.labels))
        and direction in policy_types(p["spec"])
    ]
    if not selecting:
        return True  # not isolated in this direction
    return any(
        port_matches(rule.get("ports"), port)
        and (not rule.get(peers_key) or any(peer_matches(peer, p["metadata"]["namespace"], other) for peer in rule[peers_key]))
        for p in selecting
        for rule in p["spec"].get(rules_key) or []
    )


def can_reach(policies: list[dict], source: Pod, destination, port: int) -> bool:
    """Can `source` open a TCP connection to `destination` (a pod, or an IP outside the cluster) on `port`?"""
    if isinstance(destination, str):
        return allows(policies, "Egress", source, destination, port)
    return allows(policies, "Egress", source, destination, port) and allows(policies, "Ingress", destination, source, port)


def network_policies(rendering: engine.Rendering) -> list[dict]:
    return [unwrap(r.inputs) for r in rendering.resources if r.is_kubernetes_object and r.inputs["kind"] == "NetworkPolicy"]


def app_pod(rendering: engine.Rendering, name: str) -> Pod:
    (deployment,) = [
        o for o in by_kind(rendering.resources, "Deployment") if o["metadata"]["name"] == name
    ]
    return Pod.of(deployment["metadata"]["namespace"], deployment["spec"]["template"]["metadata"]["labels"])


def database_pod(rendering: engine.Rendering, name: str, role: str = "primary") -> Pod:
    (cluster,) = [o for o in by_kind(rendering.resources, "Cluster") if o["metadata"]["name"] == name]
    # What CloudNativePG puts on an instance pod, plus the Cluster's inheritedMetadata.
    labels = {
        "cnpg.io/cluster": name,
        "cnpg.io/podRole": "instance",
        "cnpg.io/instanceRole": role,
        "cnpg.io/instanceName": f"{name}-1",
        **cluster["spec"].get("inheritedMetadata", {}).get("labels", {}),
    }
    return Pod.of(cluster["metadata"]["namespace"], labels)


def pooler_pod(rendering, database: str) -> Pod:
    """What CloudNativePG puts on a pooler pod (pkg/specs/pgbouncer/deployments.go), plus the template's labels."""
    pooler = [o for o in by_kind(rendering.resources, "Pooler") if o["spec"]["cluster"]["name"] == database][0]
    labels = {
        "cnpg.io/poolerName": pooler["metadata"]["name"],
        "cnpg.io/cluster": database,
        "cnpg.io/podRole": "pooler",
        "app.kubernetes.io/name": "postgresql",
        **pooler["spec"]["template"]["metadata"]["labels"],
    }
    return Pod.of(pooler["metadata"]["namespace"], labels)


OPERATOR = Pod.of("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg", "app.kubernetes.io/instance": "cnpg"})
PROMETHEUS = Pod.of("monitoring", {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack"})


def test_only_the_using_service_reaches_the_database(stack_rendering):
    policies = network_policies(stack_rendering)
    api, web = app_pod(stack_rendering, "api"), app_pod(stack_rendering, "web")
    primary, replica = database_pod(stack_rendering, "orders"), database_pod(stack_rendering, "orders", "replica")
    # Through the pooler where the stack has one (staging, prod: tests/test_database_day2.py), else directly.
    pooled = bool(by_kind(stack_rendering.resources, "Pooler"))
    entry = pooler_pod(stack_rendering, "orders") if pooled else primary
    assert can_reach(policies, api, entry, 5432)
    assert can_reach(policies, api, primary, 5432) is not pooled
    assert can_reach(policies, api, replica, 5432) is not pooled  # replicas too: the same instance policy
    assert not can_reach(policies, web, entry, 5432) and not can_reach(policies, web, primary, 5432)
    assert not can_reach(policies, api, primary, 8000)  # the status port is the operator's
    assert not can_reach(policies, Pod.of("platform", {}), primary, 5432)
    assert not can_reach(policies, Pod.of("other", dict(api.labels)), primary, 5432)  # same labels, other namespace
    assert not can_reach(policies, primary, api, 8081)  # the database calls nobody back


def test_instances_the_operator_and_prometheus_get_what_they_need(stack_rendering):
    policies = network_policies(stack_rendering)
    primary, replica = database_pod(stack_rendering, "orders"), database_pod(stack_rendering, "orders", "replica")
    for port in (5432, 8000):
        assert can_reach(policies, replica, primary, port) and can_reach(policies, primary, replica, port)
        assert can_reach(policies, OPERATOR, primary, port)
    assert not can_reach(policies, Pod.of("elsewhere", dict(OPERATOR.labels)), primary, 8000)
    assert can_reach(policies, PROMETHEUS, primary, dbc.METRICS_PORT)
    assert not can_reach(policies, PROMETHEUS, primary, 5432)


def test_database_pods_reach_the_api_server_and_their_backups_only(rendered):
    local = rendered["local"]
    policies = network_policies(local)
    primary, api = database_pod(local, "orders"), app_pod(local, "api")
    assert can_reach(policies, primary, "10.96.0.1", 443) and can_reach(policies, primary, "172.18.0.3", 6443)
    assert not can_reach(policies, api, "10.96.0.1", 443)
    minio = Pod.of("minio", {"app": "minio"})
    assert can_reach(policies, primary, minio, 9000) and not can_reach(policies, api, minio, 9000)
    assert not can_reach(policies, primary, "93.184.216.34", 443)  # local backs up to MinIO, not the internet
    prod = rendered["prod"]
    prod_policies, prod_primary = network_policies(prod), database_pod(prod, "orders")
    assert can_reach(prod_policies, prod_primary, "52.218.1.1", 443)  # S3's public addresses
    assert not can_reach(prod_policies, prod_primary, "10.1.2.3", 5432)  # nothing private but the API server


def test_the_evaluator_sees_the_default_deny(stack_rendering):
    ours = {"orders-database", "orders-clients"}
    others = [p for p in network_policies(stack_rendering) if p["metadata"]["name"] not in ours]
    assert not can_reach(others, app_pod(stack_rendering, "api"), database_pod(stack_rendering, "orders"), 5432)
    assert can_reach([], app_pod(stack_rendering, "web"), database_pod(stack_rendering, "orders"), 5432)


# --- the shipped stacks -------------------------------------------------------------------------------------


def test_api_gets_the_database_settings_web_does_not(stack_rendering):
    config_maps = {o["metadata"]["name"]: o["data"] for o in by_kind(stack_rendering.resources, "ConfigMap")}
    pooled = bool(by_kind(stack_rendering.resources, "Pooler"))
    assert config_maps["api-config"]["DATABASE_HOST"] == ("orders-pooler-rw" if pooled else "orders-rw") + ".platform.svc"
    assert config_maps["api-config"]["DATABASE_PORT"] == "5432" and config_maps["api-config"]["DATABASE_NAME"] == "orders"
    assert not any(key.startswith("DATABASE_") for key in config_maps["web-config"])
    env = {
        e["name"]: e
        for o in by_kind(stack_rendering.resources, "Deployment")
        if o["metadata"]["name"] == "api"
        for e in o["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for name, key in (("DATABASE_USER", "username"), ("DATABASE_PASSWORD", "password"), ("DATABASE_URL", "uri")):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": "orders-app", "key": key}}}
        assert "value" not in env[name]


def test_database_password_never_shows_in_plaintext(stack_rendering):
    (secret,) = [r for r in stack_rendering.resources if r.name == "orders-app-secret"]
    password = unwrap(secret.inputs)["stringData"]["password"]
    for resource in stack_rendering.resources:
        for value, inside_secret in _leaves(resource.inputs):
            if isinstance(value, str) and password in value:
                assert inside_secret, resource.name
    assert password not in json.dumps(stack_rendering.outputs)
    result = preview.run_preview(stack_rendering.stack, rendering=stack_rendering)
    assert password not in preview.format_text(result) + json.dumps(result.manifests)


def test_prod_protects_and_retains_cluster_secret_and_bucket(rendered):
    for stack, rendering in rendered.items():
        data = {r.name: r for r in rendering.resources if r.name in ("orders-cluster", "orders-app-secret", "backup-bucket")}
        assert len(data) == 3, stack
        for resource in data.values():
            assert resource.protect is (stack == "prod") and resource.retain_on_delete is (stack == "prod"), (stack, resource.name)
        retained = sorted(r.name for r in rendering.resources if r.retain_on_delete)
        # Only the data outlives a destroy: the database's and the cache's (its credentials and data nodes' claims).
        assert retained == (sorted([*data, "cache-auth", "cache-data"]) if stack == "prod" else []), stack


def test_prod_protects_every_resource_so_destroy_deletes_nothing(rendered):
    # `make e2e` showed the engine deleting every unprotected resource before refusing at the protected Cluster.
    # Except the migration Job: every new image replaces it, which Pulumi refuses for a protected resource. It holds
    # no data, and a destroy that deletes it first deletes nothing that serves.
    assert [(r.type, r.name) for r in rendered["prod"].resources if not r.protect] == [("kubernetes:batch/v1:Job", "api-migrations")]
    for stack in ("local", "staging"):
        assert sorted(r.name for r in rendered[stack].resources if r.protect) == [], stack


def test_bucket_retention_matches_backup_retention(rendered):
    days = {"local": 7, "staging": 14, "prod": 30}
    for stack, rendering in rendered.items():
        (bucket,) = rendering.of_type("pulumi-python:dynamic:Resource")
        (store,) = by_kind(rendering.resources, "ObjectStore")
        assert bucket.inputs["retention_days"] == days[stack]
        assert store["spec"]["retentionPolicy"] == f"{days[stack]}d"
        assert store["spec"]["configuration"]["destinationPath"] == f"s3://{bucket.inputs['bucket_name']}/platform/"


def test_object_store_waits_for_the_bucket(stack_rendering):
    (bucket,) = stack_rendering.of_type("pulumi-python:dynamic:Resource")
    (store,) = [r for r in stack_rendering.resources if r.name == "orders-object-store"]
    assert bucket.urn in store.dependencies


def test_local_backups_use_minio_with_keys_from_secret_config(rendered):
    local = rendered["local"]
    (bucket,) = local.of_type("pulumi-python:dynamic:Resource")
    assert bucket.inputs["endpoint_url"] == "http://localhost:9000"  # where `pulumi up` reaches MinIO
    assert engine.is_secret(bucket.inputs["access_key_id"]) and engine.is_secret(bucket.inputs["secret_access_key"])
    (store,) = by_kind(local.resources, "ObjectStore")
    assert store["spec"]["configuration"]["endpointURL"] == "http://minio.minio.svc:9000"  # where the pods reach it
    assert "platform:backup-secret-access-key" in local.placeholder_keys


def test_instances_per_environment(rendered):
    instances = {stack: one(r.resources, "Cluster")["spec"]["instances"] for stack, r in rendered.items()}
    assert instances == {"local": 1, "staging": 2, "prod": 3}


def test_prod_database_passes_the_prod_database_policy_and_would_fail_unprotected(rendered):
    config = {"all": "mandatory", "prod-database-safety": {"environment": "prod"}}
    prod = rendered["prod"].resources
    findings = analyzer.analyze(prod, policy_config=config)
    assert [f for f in findings if f.enforcement == "mandatory"] == []
    unprotected = [dataclasses.replace(r, protect=False) if r.type == dbc.CLUSTER_TYPE else r for r in prod]
    findings = analyzer.analyze(unprotected, policy_config=config)
    assert [f.policy for f in findings] == ["prod-database-safety"]
