"""Each shipped stack file, rendered whole: what it deploys, and that all of it is hardened and schema-valid."""

from __future__ import annotations

from tests.helpers import POD_BEARING_KINDS, pod_spec, secret_leaves, unwrap
from tools import engine, schemas

# prod's api migrates its schema before each rollout: a Job (1), and its database a NetworkPolicy for it past the
# pooler (1).
MIGRATIONS = 1 + 1
# Per stack: the provider (1), the baseline (component + 4 objects), and per service (2 services) its component,
# ServiceAccount, ConfigMap, Secret, Deployment, Service, PDB, NetworkPolicy and checksum key (9), plus one
# HPA per autoscaled service (staging: api; prod: both).
# Databases: the backup bucket (1), and per database (1: orders) its component, password, credentials Secret,
# ObjectStore, Cluster, ScheduledBackup, PodMonitor and two NetworkPolicies (9), plus a backup-keys Secret where
# the stack uses static keys rather than an IAM role (local: MinIO), and a connection pooler where the stack has
# one (staging, prod): its component, Pooler, PDB, PodMonitor and NetworkPolicy (5).
POOLER = 1 + 4
DATABASES = {"local": 1 + 1 * 9 + 1, "staging": 1 + 1 * 9 + POOLER, "prod": 1 + 1 * 9 + POOLER}
# Ingress (one public host, routing to web and api): its component, the host's Certificate, HTTPRoute and a
# NetworkPolicy per routed service (5). local and staging make their own Gateway and redirect HTTPRoute (2) and
# their issuers: local a local CA (bootstrap Issuer, CA Certificate, CA Issuer: 3), staging an ACME Issuer and a
# NetworkPolicy for its solver pods (2). prod attaches to the cluster owners' Gateway with their ClusterIssuer: a
# ReferenceGrant for the certificate's Secret and the solver pods' NetworkPolicy (2).
INGRESS = {"local": 5 + 2 + 3, "staging": 5 + 2 + 2, "prod": 5 + 2}
# Monitoring: its component, one PrometheusRule, and per service a dashboard ConfigMap (2 services), a
# ServiceMonitor and a metrics NetworkPolicy per service with metrics (both).
MONITORING = 1 + 1 + 2 * 1 + 2 * 2
# staging and prod host an analytics worker (its component, ServiceAccount, ConfigMap, Deployment, PDB (2 replicas or
# more), NetworkPolicy and checksum key: 7; no Service, and no Secret: it has no secret settings) and a nightly report
# cron job (component, ServiceAccount, ConfigMap, CronJob, NetworkPolicy, checksum key: 6), and monitoring a dashboard
# for the worker (1; a cron job has none) and for its metrics a PodMonitor and its NetworkPolicy (2).
WORKLOADS = {"local": 0, "staging": 7 + 6 + 1 + 2, "prod": 7 + 6 + 1 + 2}
# Local add-ons: the component, seven Helm releases (KEDA and the VPA among them), the GatewayClass, and for Grafana
# the monitoring Namespace, a generated admin password and the Secret holding it.
ADDONS = {"local": 1 + 7 + 1 + 3, "staging": 0, "prod": 0}
# Autoscalers beyond the HPAs: staging's analytics ScaledObject; prod's analytics ScaledObject with the
# TriggerAuthentication of its postgresql trigger, and a VPA for each of its four workloads.
AUTOSCALERS = {"local": 0, "staging": 1, "prod": 2 + 4}
# Alert routing (prod: monitoring.alerting): the receivers' Secret and the AlertmanagerConfig.
ALERT_ROUTING = {"local": 0, "staging": 0, "prod": 2}
# Team access: the component, a Role per role used and a RoleBinding per grant (staging: the CI deployer; prod: an
# edit team and the CI deployer).
ACCESS = {"local": 0, "staging": 1 + 1 + 1, "prod": 1 + 2 + 2}
# Caches (one: cache): its component, password, ConfigMap, Secret, StatefulSet, headless and client Services, PDB,
# PodMonitor and NetworkPolicies for its nodes and its users (11), with failover (staging, prod) a Sentinel
# StatefulSet, their headless Service, PDB and NetworkPolicy (4); and monitoring a dashboard for it (1).
# In staging and prod the analytics worker's redis trigger on it has a TriggerAuthentication (1).
CACHES = {"local": 11 + 1, "staging": 11 + 4 + 1 + 1, "prod": 11 + 4 + 1 + 1}
EXPECTED_COUNTS = {
    stack: count + DATABASES[stack] + INGRESS[stack] + MONITORING + ALERT_ROUTING[stack] + ACCESS[stack] + ADDONS[stack] + CACHES[stack] + WORKLOADS[stack] + AUTOSCALERS[stack]
    for stack, count in {"local": 1 + 5 + 2 * 9, "staging": 1 + 5 + 2 * 9 + 1, "prod": 1 + 5 + 2 * 9 + 2 + MIGRATIONS}.items()
}
# Cluster-scoped kinds the stacks render (the local add-ons' GatewayClass): they have no namespace.
CLUSTER_SCOPED_KINDS = ("Namespace", "GatewayClass")


def kube_objects(rendering: engine.Rendering) -> list[dict]:
    return [unwrap(r.inputs) for r in rendering.resources if r.is_kubernetes_object]


def test_resource_counts(rendered):
    assert {stack: len(r.resources) for stack, r in rendered.items()} == EXPECTED_COUNTS


def test_every_stack_deploys_web_and_api(stack_rendering):
    objects = kube_objects(stack_rendering)
    deployments = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "Deployment"}
    services = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "Service"}
    cron_jobs = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "CronJob"}
    # staging and prod add the design's analytics worker (a Deployment no Service selects) and nightly report.
    hosted = stack_rendering.stack != "local"
    assert deployments == {"web", "api"} | ({"analytics"} if hosted else set())
    assert cron_jobs == ({"report"} if hosted else set())
    assert {"web", "api"} <= services and not services & {"analytics", "report"}
    assert set(stack_rendering.outputs["services"]) == {"web", "api"}  # only what can be called has a URL


def test_names_are_deterministic(rendered):
    names = {stack: sorted(r.name for r in rendering.resources) for stack, rendering in rendered.items()}
    assert "api-hpa" in names["prod"] and "web-hpa" in names["prod"]
    assert "api-hpa" in names["staging"] and "web-hpa" not in names["staging"]
    assert not any(name.endswith("-hpa") for name in names["local"])
    assert sorted(r.urn for r in engine.render("local").resources) == sorted(r.urn for r in rendered["local"].resources)


def test_replicas_per_environment(rendered):
    minimum = {"local": 1, "staging": 2, "prod": 3}
    for stack, rendering in rendered.items():
        objects = kube_objects(rendering)
        hpas = {o["spec"]["scaleTargetRef"]["name"]: o["spec"] for o in objects if o["kind"] == "HorizontalPodAutoscaler"}
        # Web services only: a worker needs no replica minimum (its backlog waits; test_workload_kinds_config).
        for deployment in (o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] in ("web", "api")):
            name = deployment["metadata"]["name"]
            replicas = hpas[name]["minReplicas"] if name in hpas else deployment["spec"]["replicas"]
            assert replicas >= minimum[stack], (stack, name)
            assert (name in hpas) == ("replicas" not in deployment["spec"])
    web = [o for o in kube_objects(rendered["prod"]) if o["kind"] == "Deployment" and o["metadata"]["name"] in ("web", "api")]
    assert web and all("replicas" not in o["spec"] for o in web)


def test_every_pod_template_is_hardened(stack_rendering):
    pods = [o for o in kube_objects(stack_rendering) if o["kind"] in POD_BEARING_KINDS]
    assert pods
    for obj in pods:
        spec = pod_spec(obj)
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] > 0
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not any(key.startswith("host") for key in spec)
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["requests"] and container["resources"]["limits"]
            assert ":latest" not in container["image"] and (":" in container["image"] or "@" in container["image"])


def test_prod_pins_images_by_digest(rendered):
    images = [c["image"] for o in kube_objects(rendered["prod"]) if o["kind"] == "Deployment" for c in pod_spec(o)["containers"]]
    assert images and all("@sha256:" in image for image in images)


def test_nothing_lands_in_the_default_namespace(stack_rendering):
    # Local add-ons keep their objects in the add-ons' own namespaces (README, "Cluster add-ons").
    (addons,) = stack_rendering.of_type("platform:addons:ClusterAddons") or [None]
    for resource in stack_rendering.resources:
        if not resource.is_kubernetes_object:
            continue
        obj = unwrap(resource.inputs)
        if obj["kind"] in CLUSTER_SCOPED_KINDS:
            assert obj["metadata"]["name"] not in ("default", "") and "namespace" not in obj["metadata"]
        elif addons is not None and resource.parent == addons.urn:
            assert obj["metadata"]["namespace"] not in ("default", "platform", ""), obj
        else:
            assert obj["metadata"]["namespace"] == "platform", obj


def test_every_secret_value_is_still_a_pulumi_secret(stack_rendering):
    secrets = [r for r in stack_rendering.resources if r.is_kubernetes_object and r.inputs["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        for field in ("data", "stringData"):
            if field in secret.inputs:
                assert engine.is_secret(secret.inputs[field]), (secret.name, field)
    # Secret config values (placeholders here) appear nowhere outside a Pulumi secret.
    placeholders = {f"{engine.PLACEHOLDER_PREFIX}-{key}" for key in stack_rendering.placeholder_keys}
    assert placeholders
    for resource in stack_rendering.resources:
        for value, inside_secret in secret_leaves(resource.inputs):
            if isinstance(value, str) and value.startswith(engine.PLACEHOLDER_PREFIX):
                assert inside_secret, (resource.name, value)
    assert not any(engine.PLACEHOLDER_PREFIX in str(v) for v, _ in secret_leaves(stack_rendering.outputs))


def test_kubeconfig_comes_from_secret_config_in_prod(rendered):
    (provider,) = rendered["prod"].of_type("pulumi:providers:kubernetes")
    assert engine.is_secret(provider.inputs["kubeconfig"])
    (local_provider,) = rendered["local"].of_type("pulumi:providers:kubernetes")
    assert local_provider.inputs["context"] == "kind-platform"


def test_every_object_uses_the_stack_provider(stack_rendering):
    (provider,) = stack_rendering.of_type("pulumi:providers:kubernetes")
    for resource in stack_rendering.resources:
        if resource.type.startswith("kubernetes:"):
            assert resource.provider.startswith(provider.urn), resource.name


def test_service_to_service_traffic_is_declared(stack_rendering):
    policies = {
        o["metadata"]["name"]: o["spec"] for o in kube_objects(stack_rendering) if o["kind"] == "NetworkPolicy"
    }
    assert policies["api"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}]
    assert policies["web"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 8081}]
    assert policies["default-deny"]["podSelector"] == {}


def test_every_object_is_schema_valid(stack_rendering):
    objects = kube_objects(stack_rendering)
    assert len(objects) >= 15
    assert schemas.validate_all(objects) == []


# Secret keys that name an account rather than guard it (basic-auth and Grafana's admin user).
IDENTITY_KEYS = {"username", "admin-user"}


def test_every_secret_value_comes_from_secret_config_or_a_generated_password(stack_rendering):
    """The engine cannot tell a literal in a Secret from encrypted config (the SDK marks Secret data secret
    client-side), so this test does: each value must carry a secure-config placeholder or a generated password."""
    secrets = [r for r in stack_rendering.resources if r.is_kubernetes_object and r.inputs["kind"] == "Secret"]
    checked = 0
    for secret in secrets:
        obj = unwrap(secret.inputs)
        for key, value in {**obj.get("data", {}), **obj.get("stringData", {})}.items():
            if key in IDENTITY_KEYS:
                continue
            assert engine.PLACEHOLDER_PREFIX in str(value), f"{secret.name}: {key} is a literal, not secret config"
            checked += 1
    assert checked >= 4


def test_every_kubernetes_object_belongs_to_a_component(stack_rendering):
    components = {r.urn for r in stack_rendering.resources if r.type.startswith("platform:")}
    assert components
    orphans = [r.name for r in stack_rendering.resources if r.is_kubernetes_object and r.parent not in components]
    assert orphans == []


def test_urns_are_named_as_the_engine_names_them(rendered):
    # Measured by `make e2e` against the real CLI: no root-stack type in the chain, the parent's whole chain kept.
    resources = rendered["local"].resources
    by_urn = {r.urn: r for r in resources}
    for resource in resources:
        chain = resource.urn.split("::")[2]
        assert "pulumi:pulumi:Stack" not in chain
        parent = by_urn.get(resource.parent)
        expected = f"{parent.urn.split('::')[2]}${resource.type}" if parent else resource.type
        assert chain == expected, resource.urn
    assert "urn:pulumi:local::platform::platform:app:AppService::web" in by_urn
