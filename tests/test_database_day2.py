"""Day 2 for databases: restore and point-in-time recovery, the connection pooler, the pinned PostgreSQL image."""

from __future__ import annotations

import json

import pytest

from components import database_cluster as dbc
from components.connection_pooler import PGBOUNCER_METRICS_PORT, pooler_name
from components.database_cluster_config import CNPG_OPERATOR_VERSION, DEFAULT_PGBOUNCER_IMAGE, DEFAULT_POSTGRES_IMAGE, OPERATOR_DEFAULT_IMAGES
from tests.helpers import by_kind, one, unwrap
from tests.test_database_cluster import (
    AWS_IRSA,
    MINIO,
    PROMETHEUS,
    Pod,
    app_pod,
    can_reach,
    database_pod,
    named,
    network_policies,
    pooler_pod,
    render_database,
)
from tests.test_config import problems_for, stack_values
from tools import analyzer, engine, schemas

POOLER = {"instances": 2, "poolMode": "transaction", "maxClientConnections": 500, "defaultPoolSize": 20}
EXTERNAL = {"bucket": "old-platform-backups", "path": "platform", "serverName": "orders"}

LOCAL_VALUES, LOCAL_SECRET_KEYS = stack_values("local")
ORDERS = LOCAL_VALUES["databases"][0]


def errors_for(stack: str, overrides: dict) -> list[str]:
    """The problems `load` reports for the stack file with some top-level keys replaced (None: removed)."""

    def replace(values, secret_keys):
        values.update(overrides)
        for key in [key for key, value in overrides.items() if value is None]:
            values.pop(key)

    return problems_for(replace, stack=stack)


# --- the pinned PostgreSQL image ----------------------------------------------------------------------------


def test_the_postgres_image_is_pinned_to_the_operators_default():
    # Moving the operator without moving the images would change PostgreSQL under the data: this catches it.
    assert CNPG_OPERATOR_VERSION in OPERATOR_DEFAULT_IMAGES
    assert one(render_database(None), "Cluster")["spec"]["imageName"] == DEFAULT_POSTGRES_IMAGE
    assert DEFAULT_POSTGRES_IMAGE.rsplit(":", 1)[1].startswith("18.")
    pinned = "ghcr.io/cloudnative-pg/postgresql:17.6-system-trixie@sha256:" + "a" * 64
    assert one(render_database(None, imageName=pinned), "Cluster")["spec"]["imageName"] == pinned


@pytest.mark.parametrize(
    "image",
    ["ghcr.io/cloudnative-pg/postgresql", "ghcr.io/cloudnative-pg/postgresql:latest", "postgres@sha256:" + "a" * 64],
)
def test_an_image_without_a_major_version_tag_is_refused(image):
    (problem,) = errors_for("local", {"databases": [{**ORDERS, "imageName": image}]})
    assert "databases[0].imageName" in problem and "major version" in problem


def test_prod_policy_requires_the_postgres_image_digest(rendered):
    prod_cluster = one(rendered["prod"].resources, "Cluster")
    assert "@sha256:" in prod_cluster["spec"]["imageName"]
    assert "@sha256:" in one(rendered["prod"].resources, "Pooler")["spec"]["template"]["spec"]["containers"][0]["image"]


# --- restore and point-in-time recovery ---------------------------------------------------------------------


def restored(backups=MINIO, **restore):
    return render_database(backups, name="orders-restored", restore=restore)


def test_restore_from_a_database_of_the_stack_reads_its_archive_and_writes_a_new_one():
    resources = restored(source="orders")
    spec = one(resources, "Cluster")["spec"]
    assert spec["bootstrap"] == {
        "recovery": {
            "source": "orders-backups",
            # After recovery CloudNativePG sets the owner's password from our Secret: the services' credentials work.
            "database": "orders_restored",
            "owner": "orders_restored",
            "secret": {"name": "orders-restored-app"},
        }
    }
    assert spec["externalClusters"] == [
        {
            "name": "orders-backups",
            "plugin": {
                "name": dbc.BARMAN_CLOUD_PLUGIN,
                "parameters": {"barmanObjectName": "orders-backups", "serverName": "orders"},
            },
        }
    ]
    # Its own archive: its own ObjectStore, and barman's server name is the new cluster's name, never the source's.
    (store,) = by_kind(resources, "ObjectStore")
    assert store["metadata"]["name"] == "orders-restored-backups"
    assert spec["plugins"][0]["parameters"] == {"barmanObjectName": "orders-restored-backups"}
    assert "serverName" not in spec["plugins"][0]["parameters"]


def test_point_in_time_recovery_stops_at_the_target_time():
    spec = one(restored(source="orders", targetTime="2026-11-29T23:30:00Z"), "Cluster")["spec"]
    assert spec["bootstrap"]["recovery"]["recoveryTarget"] == {"targetTime": "2026-11-29T23:30:00Z"}
    assert "recoveryTarget" not in one(restored(source="orders"), "Cluster")["spec"]["bootstrap"]["recovery"]


def test_restore_from_another_bucket_makes_a_read_only_object_store_for_it():
    resources = restored(source=EXTERNAL)
    stores = {o["metadata"]["name"]: o["spec"] for o in by_kind(resources, "ObjectStore")}
    source = stores["orders-restored-restore-source"]
    assert source["configuration"]["destinationPath"] == "s3://old-platform-backups/platform/"
    assert "retentionPolicy" not in source  # not ours to prune
    assert source["configuration"]["s3Credentials"] == stores["orders-restored-backups"]["configuration"]["s3Credentials"]
    spec = one(resources, "Cluster")["spec"]
    assert spec["externalClusters"][0]["plugin"]["parameters"] == {
        "barmanObjectName": "orders-restored-restore-source",
        "serverName": "orders",
    }
    cluster = named(resources, "orders-cluster")
    assert named(resources, "orders-restore-source").urn in cluster.dependencies


def test_restored_clusters_validate_against_their_crds():
    for resources in (restored(source="orders"), restored(source=EXTERNAL, targetTime="2026-11-29T23:30:00+01:00"), restored(AWS_IRSA, source="orders")):
        assert schemas.validate_all([r.inputs for r in resources if r.is_kubernetes_object]) == []


def with_databases(*databases, backups=True) -> dict:
    return {"databases": list(databases), **({} if backups else {"backups": None})}


def serious(findings) -> list:
    return [finding for finding in findings if finding.enforcement == "mandatory"]


@pytest.mark.parametrize(
    ("restore", "expected"),
    [
        ({"source": "orders", "targetTime": "yesterday"}, "is not an RFC 3339 timestamp"),
        ({"source": "orders", "targetTime": "2026-11-29T23:30:00"}, "needs a date, a time and a UTC offset"),
        ({"source": "orders", "targetTime": "2026-11-29"}, "needs a date, a time and a UTC offset"),
        ({"source": "orders", "targetTime": "2999-01-01T00:00:00Z"}, "is in the future"),
        ({"source": "reports"}, "is not a database of this stack"),
        ({"source": "Orders!"}, "is not a database name"),
        ({"source": {"bucket": "b", "path": "p"}}, "serverName"),
    ],
)
def test_bad_restores_are_config_errors(restore, expected):
    problems = errors_for("local", with_databases(ORDERS, {**ORDERS, "name": "orders-restored", "restore": restore}))
    assert any("databases[1].restore" in problem and expected in problem for problem in problems), problems


def test_restoring_onto_the_source_itself_is_refused():
    (problem,) = errors_for("local", with_databases({**ORDERS, "restore": {"source": "orders"}}))
    assert "databases[0].restore.source" in problem and "new name" in problem and "orders-restored" in problem


def test_a_source_without_backups_is_refused():
    unbacked = {**ORDERS, "backup": {"enabled": False}}
    problems = errors_for("local", with_databases(unbacked, {**ORDERS, "name": "orders-2", "restore": {"source": "orders"}}))
    [problem] = [p for p in problems if "has no backups to restore from" in p]  # each problem counts once
    assert problem.startswith("platform:databases[1].restore.source: ")
    problems = errors_for("local", with_databases(ORDERS, {**ORDERS, "name": "orders-2", "restore": {"source": EXTERNAL}}, backups=False))
    assert any("databases[1].restore" in p and "'backups'" in p for p in problems), problems


def test_restores_that_form_a_cycle_are_refused():
    problems = errors_for(
        "local",
        with_databases({**ORDERS, "name": "a", "restore": {"source": "b"}}, {**ORDERS, "name": "b", "restore": {"source": "a"}}),
    )
    assert any("cycle" in problem for problem in problems), problems


def test_a_restored_database_waits_for_its_source_in_the_stack():
    config, secret_keys = engine.stack_config("local")
    databases = json.loads(config["platform:databases"])
    restored_db = {**databases[0], "name": "orders-restored", "usedBy": [], "restore": {"source": databases[0]["name"]}}
    # Listed before its source: the program still creates the source first and makes the copy wait for it.
    config["platform:databases"] = json.dumps([restored_db, *databases])
    rendering = engine.render("local", config=config, secret_keys=secret_keys)
    copy = [r for r in rendering.resources if r.type == "platform:database:DatabaseCluster" and r.name == "orders-restored"][0]
    # The SDK turns a dependency on a component into one on its children: the source's Cluster among them.
    source_cluster = [r for r in rendering.resources if r.type == dbc.CLUSTER_TYPE and r.name == f"{databases[0]['name']}-cluster"][0]
    assert source_cluster.urn in copy.dependencies
    assert serious(analyzer.analyze(rendering.resources, policy_config=analyzer.load_policy_config("policies/config/local.json"))) == []
    assert schemas.validate_all([r.inputs for r in rendering.resources if r.is_kubernetes_object]) == []


# --- the connection pooler ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pooled():
    return render_database(MINIO, pooler=POOLER)


def test_the_pooler_is_pgbouncer_read_write_in_front_of_the_cluster(pooled):
    pooler = one(pooled, "Pooler")
    assert pooler["metadata"]["name"] == pooler_name("orders") == "orders-pooler-rw"
    spec = pooler["spec"]
    assert (spec["cluster"], spec["instances"], spec["type"]) == ({"name": "orders"}, 2, "rw")
    assert spec["pgbouncer"] == {
        "poolMode": "transaction",
        "parameters": {"max_client_conn": "500", "default_pool_size": "20"},
    }
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == DEFAULT_PGBOUNCER_IMAGE
    assert schemas.validate_all([r.inputs for r in pooled if r.is_kubernetes_object]) == []


def test_the_pooler_has_a_pdb_only_with_more_than_one_instance(pooled):
    (pdb,) = [o for o in by_kind(pooled, "PodDisruptionBudget")]
    assert pdb["spec"]["selector"] == {"matchLabels": {"cnpg.io/poolerName": "orders-pooler-rw"}}
    assert by_kind(render_database(MINIO, pooler={**POOLER, "instances": 1}), "PodDisruptionBudget") == []


def test_the_pooler_is_scraped_by_prometheus(pooled):
    monitors = {o["metadata"]["name"]: o for o in by_kind(pooled, "PodMonitor")}
    monitor = monitors["orders-pooler-rw"]
    assert monitor["spec"]["selector"] == {"matchLabels": {"cnpg.io/poolerName": "orders-pooler-rw"}}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_services_connect_through_the_pooler(rendered):
    for stack in ("staging", "prod"):
        config_maps = {o["metadata"]["name"]: o for o in by_kind(rendered[stack].resources, "ConfigMap")}
        api_env = config_maps["api-config"]["data"]
        assert api_env["DATABASE_HOST"] == f"orders-pooler-rw.{api_env['DATABASE_HOST'].split('.')[1]}.svc"
        assert api_env["DATABASE_PORT"] == "5432"
    # Where the stack says the database is: the pooler (the credentials' URL is built from the same host).
    assert rendered["prod"].outputs["databases"]["orders"]["host"].startswith("orders-pooler-rw.")


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_with_a_pooler_only_the_pooler_reaches_the_database(rendered, stack):
    rendering = rendered[stack]
    policies = network_policies(rendering)
    api, web = app_pod(rendering, "api"), app_pod(rendering, "web")
    pooler, primary = pooler_pod(rendering, "orders"), database_pod(rendering, "orders")
    assert can_reach(policies, api, pooler, 5432)
    assert not can_reach(policies, web, pooler, 5432)
    assert can_reach(policies, pooler, primary, 5432)
    assert not can_reach(policies, api, primary, 5432)  # no direct way around the pooler
    assert not can_reach(policies, pooler, primary, 8000)  # the status port stays the operator's and the instances'
    assert can_reach(policies, PROMETHEUS, pooler, PGBOUNCER_METRICS_PORT)
    assert not can_reach(policies, PROMETHEUS, pooler, 5432)
    assert can_reach(policies, pooler, "10.0.0.1", 443) or can_reach(policies, pooler, "10.96.0.1", 443)  # the API server


def test_the_pack_judges_the_pod_cloudnativepg_builds_from_the_pooler(pooled):
    """Not the template as written (policies/operator_pods.py): the operator replaces its securityContexts and adds
    an init container, which the template must size."""
    from policies import pod_security

    pooler = named(pooled, "orders-pooler-pooler").inputs
    assert pod_security.runs_pods(named(pooled, "orders-pooler-pooler").type)
    assert serious(analyzer.analyze_manifests([pooler])) == []
    unsized = json.loads(json.dumps(pooler))
    del unsized["spec"]["template"]["spec"]["initContainers"]
    assert any('container "bootstrap-controller"' in f.message for f in serious(analyzer.analyze_manifests([unsized])))
    dead = json.loads(json.dumps(pooler))
    dead["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": True}
    assert serious(analyzer.analyze_manifests([dead])) == []  # overwritten by the operator: never reaches the API server


def test_pooler_config_errors_name_the_fix():
    too_many = {**ORDERS, "parameters": {"max_connections": 50}, "pooler": {"instances": 2, "defaultPoolSize": 30}}
    (problem,) = errors_for("local", with_databases(too_many))
    assert "databases[0]" in problem and "60 server connections" in problem and "defaultPoolSize" in problem


# --- migrations past the pooler -----------------------------------------------------------------------------


def migrations_pod(rendering) -> tuple[Pod, dict]:
    (job,) = by_kind(rendering.resources, "Job")
    return Pod.of(job["metadata"]["namespace"], job["spec"]["template"]["metadata"]["labels"]), job


def test_prod_migrations_connect_to_the_primary_past_the_pooler(rendered):
    prod = rendered["prod"]
    migrations, job = migrations_pod(prod)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {variable["name"]: variable for variable in container["env"]}
    # `env` entries win over the ConfigMap's (envFrom), which names the pooler for the service's own pods.
    assert env["DATABASE_HOST"] == {"name": "DATABASE_HOST", "value": "orders-rw.platform.svc"}
    assert env["DATABASE_PORT"] == {"name": "DATABASE_PORT", "value": "5432"}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "orders-app", "key": "direct-uri"}
    assert env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "orders-app", "key": "password"}
    (secret,) = [r for r in prod.resources if r.name == "orders-app-secret"]
    string_data = unwrap(secret.inputs)["stringData"]
    assert "@orders-rw.platform.svc:5432/" in string_data["direct-uri"]
    assert "@orders-pooler-rw.platform.svc:5432/" in string_data["uri"]

    policies = network_policies(prod)
    primary, pooler, api = database_pod(prod, "orders"), pooler_pod(prod, "orders"), app_pod(prod, "api")
    assert can_reach(policies, migrations, primary, 5432)
    assert not can_reach(policies, migrations, primary, 8000)
    assert not can_reach(policies, migrations, pooler, 5432)  # it has no business there
    assert not can_reach(policies, api, primary, 5432)  # the service itself still goes through the pooler
    assert not can_reach(policies, migrations, api, 8081)


def test_without_a_pooler_migrations_use_the_services_settings():
    config, secret_keys = engine.stack_config("local")
    services = json.loads(config["platform:services"])
    api = next(service for service in services if service["name"] == "api")
    api["migrations"] = {"command": ["/app/migrate", "up"]}
    config["platform:services"] = json.dumps(services)
    rendering = engine.render("local", config=config, secret_keys=secret_keys)
    migrations, job = migrations_pod(rendering)
    names = {variable["name"] for variable in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "DATABASE_HOST" not in names  # from the ConfigMap, like the service: the primary, as there is no pooler
    assert can_reach(network_policies(rendering), migrations, database_pod(rendering, "orders"), 5432)
