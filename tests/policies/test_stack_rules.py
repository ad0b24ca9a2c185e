"""The network and data-safety rules, run through the policy SDK's analyzer (tools.analyzer) as the CLI runs them."""

from __future__ import annotations

import pytest

from policies import stack_rules
from tools.analyzer import analyze
from tools.engine import RecordedResource

NS = "apps"


def resource(obj, *, name=None, protect=False, dependencies=()):
    """A Kubernetes object as a program would have registered it."""
    api_version = obj["apiVersion"] if "/" in obj["apiVersion"] else f"core/{obj['apiVersion']}"
    type_ = f"kubernetes:{api_version}:{obj['kind']}"
    name = name or obj["metadata"].get("name") or obj["kind"].lower()
    return RecordedResource(
        urn=f"urn:pulumi:test::platform::{type_}::{name}",
        type=type_,
        name=name,
        inputs=obj,
        protect=protect,
        dependencies=list(dependencies),
    )


def run(resources, policy, policy_config=None):
    result = analyze(resources, policies=stack_rules.POLICIES, policy_config=policy_config)
    return [f for f in result if f.policy == policy]


def namespace(name=NS):
    return resource({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def deployment(name="api", *, replicas=None, labels=None, ns=NS, k8s_name=True):
    labels = labels or {"app": name}
    spec = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": name, "image": "a:1"}]}},
    }
    if replicas is not None:
        spec["replicas"] = float(replicas)  # wire form: numbers are floats
    metadata = {"namespace": ns, **({"name": name} if k8s_name else {})}
    return resource({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}, name=name)


def network_policy(name, spec, ns=NS):
    return resource(
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}
    )


DNS_EGRESS = [{"ports": [{"port": 53.0, "protocol": "UDP"}, {"port": 53.0, "protocol": "TCP"}]}]


def default_deny(ns=NS, **overrides):
    spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": DNS_EGRESS, **overrides}
    return network_policy("default-deny", spec, ns)


# --- namespace-default-deny ---------------------------------------------------------------------------------


def test_a_namespace_with_a_default_deny_passes():
    assert run([namespace(), deployment(), default_deny()], "namespace-default-deny") == []


def test_a_namespace_without_workloads_needs_no_default_deny():
    config_map = resource({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": NS}})
    assert run([namespace(), config_map], "namespace-default-deny") == []


def test_a_namespace_with_workloads_and_no_default_deny_is_reported_on_the_namespace():
    ns = namespace()
    [finding] = run([ns, deployment()], "namespace-default-deny")
    assert finding.urn == ns.urn
    assert finding.enforcement == "mandatory"
    assert "namespace 'apps' runs Deployment apps/api" in finding.message
    assert "spec.podSelector: {}" in finding.message and "spec.policyTypes: [Ingress, Egress]" in finding.message


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"policyTypes": ["Ingress"]}, "spec.policyTypes lacks Egress"),
        ({"podSelector": {"matchLabels": {"app": "api"}}}, "spec.podSelector is not {}"),
        ({"ingress": [{}]}, "spec.ingress allows traffic"),
        ({"egress": [{}]}, "spec.egress allows more than DNS"),
        ({"egress": [{"ports": [{"port": 443.0}]}]}, "spec.egress allows more than DNS"),
    ],
)
def test_near_miss_default_deny_policies_are_explained(overrides, problem):
    [finding] = run([namespace(), deployment(), default_deny(**overrides)], "namespace-default-deny")
    assert f"NetworkPolicy apps/default-deny: {problem}" in finding.message


def test_workloads_without_a_namespace_run_in_default_and_cnpg_clusters_count():
    cluster = resource(
        {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "db", "namespace": "data"}, "spec": {}}
    )
    messages = sorted(f.message for f in run([deployment(ns=None) , cluster], "namespace-default-deny"))
    assert messages[0].startswith("namespace 'data' runs Cluster data/db")
    assert messages[1].startswith("namespace 'default' runs Deployment default/api")


def test_the_default_deny_must_be_in_the_same_namespace():
    [finding] = run([deployment(), default_deny(ns="other")], "namespace-default-deny")
    assert "namespace 'apps'" in finding.message


# --- database-network-isolated ------------------------------------------------------------------------------


def cluster(name="db", *, ns=NS, protect=False, **spec):
    obj = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": name, "namespace": ns}, "spec": spec}
    return resource(obj, protect=protect)


APP_PEER = {"podSelector": {"matchLabels": {"app": "api"}}}


def db_policy(selector=None, ingress=None, name="db-ingress"):
    spec = {
        "podSelector": selector if selector is not None else {"matchLabels": {"cnpg.io/cluster": "db"}},
        "policyTypes": ["Ingress"],
        "ingress": ingress if ingress is not None else [{"from": [APP_PEER], "ports": [{"port": 5432.0}]}],
    }
    return network_policy(name, spec)


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"cnpg.io/cluster": "db"}},
        {"matchLabels": {"cnpg.io/cluster": "db", "cnpg.io/podRole": "instance"}},
        {"matchExpressions": [{"key": "cnpg.io/cluster", "operator": "In", "values": ["db"]}]},
    ],
)
def test_a_cluster_whose_pods_only_the_app_reaches_passes(selector):
    assert run([cluster(), db_policy(selector)], "database-network-isolated") == []


def test_a_cluster_without_a_network_policy_is_reported():
    db = cluster()
    [finding] = run([db, default_deny()], "database-network-isolated")
    assert finding.urn == db.urn
    assert "spec.podSelector.matchLabels {cnpg.io/cluster: db}" in finding.message
    assert "port 5432 only from the application's pods" in finding.message


def test_a_policy_for_the_primary_only_does_not_isolate_the_replicas():
    selector = {"matchLabels": {"cnpg.io/cluster": "db", "cnpg.io/instanceRole": "primary"}}
    [finding] = run([cluster(), db_policy(selector)], "database-network-isolated")
    assert "no NetworkPolicy in namespace 'apps' selects the pods of Cluster apps/db" in finding.message


@pytest.mark.parametrize(
    ("ingress", "opening"),
    [
        ([{"ports": [{"port": 5432.0}]}], "any source"),
        ([{"from": [APP_PEER]}, {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}], "every address (ipBlock 0.0.0.0/0)"),
        ([{"from": [{"namespaceSelector": {}}], "ports": [{"port": "postgresql"}]}], "any pod in any namespace"),
        ([{"from": [{"podSelector": {}}], "ports": [{"port": 5000.0, "endPort": 6000.0}]}], "any pod in the namespace"),
    ],
)
def test_rules_opening_5432_to_everyone_are_reported(ingress, opening):
    [finding] = run([cluster(), db_policy(ingress=ingress)], "database-network-isolated")
    assert "NetworkPolicy apps/db-ingress spec.ingress[" in finding.message
    assert f"allows port 5432 of Cluster apps/db from {opening}" in finding.message
    assert "restrict spec.ingress[" in finding.message


def test_open_rules_on_other_ports_pass():
    ingress = [{"from": [APP_PEER], "ports": [{"port": 5432.0}]}, {"ports": [{"port": 9187.0}]}]  # metrics
    assert run([cluster(), db_policy(ingress=ingress)], "database-network-isolated") == []


def test_a_broad_policy_also_selecting_the_database_opens_it():
    allow_all = network_policy("allow-all", {"podSelector": {}, "ingress": [{}]})
    [finding] = run([cluster(), db_policy(), allow_all], "database-network-isolated")
    assert "NetworkPolicy apps/allow-all spec.ingress[0]" in finding.message


# --- service-exposure ---------------------------------------------------------------------------------------


def service(service_type=None):
    spec = {"ports": [{"port": 80.0}], **({"type": service_type} if service_type else {})}
    return resource({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": NS}, "spec": spec})


@pytest.mark.parametrize("service_type", [None, "ClusterIP"])
def test_cluster_ip_services_pass(service_type):
    assert run([service(service_type)], "service-exposure") == []


@pytest.mark.parametrize("service_type", ["LoadBalancer", "NodePort"])
def test_exposing_services_are_reported_by_default(service_type):
    [finding] = run([service(service_type)], "service-exposure")
    assert f"spec.type is {service_type}" in finding.message
    assert "allowedServiceTypes" in finding.message and "use spec.type: ClusterIP" in finding.message


def test_the_policy_config_can_allow_a_load_balancer():
    config = {"service-exposure": {"allowedServiceTypes": ["ClusterIP", "LoadBalancer"]}}
    assert run([service("LoadBalancer")], "service-exposure", config) == []
    assert len(run([service("NodePort")], "service-exposure", config)) == 1


def test_the_default_applies_without_config():
    # In-process there is no CLI to fill in schema defaults: the rule must fall back itself.
    assert stack_rules.service_exposure_findings(service("NodePort").inputs, None)
    assert stack_rules.service_exposure_findings(service("ClusterIP").inputs, None) == []


# --- ingress-tls --------------------------------------------------------------------------------------------


def ingress(rules, tls=None):
    spec = {"rules": rules, **({"tls": tls} if tls is not None else {})}
    return resource({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": NS}, "spec": spec})


@pytest.mark.parametrize(
    ("host", "tls_hosts"),
    [("api.example.com", ["api.example.com"]), ("api.example.com", ["*.example.com"])],
)
def test_ingress_hosts_covered_by_tls_pass(host, tls_hosts):
    assert run([ingress([{"host": host}], [{"hosts": tls_hosts, "secretName": "web-tls"}])], "ingress-tls") == []


@pytest.mark.parametrize(
    ("rules", "tls", "expected"),
    [
        ([{"host": "api.example.com"}], None, "spec.rules[0].host 'api.example.com' is not covered by spec.tls"),
        ([{"host": "a.b.example.com"}], [{"hosts": ["*.example.com"]}], "spec.rules[0].host 'a.b.example.com'"),
        ([{"http": {"paths": []}}], [{"hosts": ["api.example.com"]}], "spec.rules[0] has no host"),
    ],
)
def test_ingress_hosts_without_tls_are_reported(rules, tls, expected):
    [finding] = run([ingress(rules, tls)], "ingress-tls")
    assert finding.message.startswith(expected)
    assert "spec.tls[].hosts" in finding.message


def gateway():
    listeners = [
        {"name": "http", "protocol": "HTTP", "port": 80.0},
        {"name": "https", "protocol": "HTTPS", "port": 443.0, "tls": {"certificateRefs": [{"name": "web-tls"}]}},
    ]
    obj = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "web", "namespace": NS}, "spec": {"gatewayClassName": "cilium", "listeners": listeners}}
    return resource(obj)


BACKEND_RULE = {"backendRefs": [{"name": "api", "port": 80.0}]}
REDIRECT_RULE = {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301.0}}]}


def route(parent_ref, rules, name="api"):
    obj = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"parentRefs": [{"name": "web", **parent_ref}], "hostnames": ["api.example.com"], "rules": rules},
    }
    return resource(obj)


@pytest.mark.parametrize(
    ("parent_ref", "rules"),
    [
        ({"sectionName": "https"}, [BACKEND_RULE]),
        ({"port": 443.0}, [BACKEND_RULE]),
        ({"sectionName": "http"}, [REDIRECT_RULE]),
        ({}, [REDIRECT_RULE]),
        ({"name": "shared-gateway", "namespace": "infra"}, [BACKEND_RULE]),  # not in the stack: cannot be judged
    ],
)
def test_routes_on_https_or_redirecting_to_https_pass(parent_ref, rules):
    assert run([gateway(), route(parent_ref, rules)], "ingress-tls") == []


@pytest.mark.parametrize(
    ("parent_ref", "rules"),
    [
        ({"sectionName": "http"}, [BACKEND_RULE]),
        ({}, [BACKEND_RULE]),  # no sectionName: attaches to every listener, the HTTP one included
        ({"sectionName": "http"}, [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "http"}}]}]),
    ],
)
def test_routes_serving_plain_http_are_reported(parent_ref, rules):
    [finding] = run([gateway(), route(parent_ref, rules)], "ingress-tls")
    assert "spec.parentRefs[0] attaches to the plain-HTTP listener(s) http of Gateway apps/web" in finding.message
    assert "set spec.parentRefs[0].sectionName to the gateway's HTTPS listener" in finding.message


def test_a_section_name_that_names_no_listener_is_reported():
    [finding] = run([gateway(), route({"sectionName": "htps"}, [BACKEND_RULE])], "ingress-tls")
    assert finding.message.startswith("spec.parentRefs[0].sectionName 'htps' names no listener of Gateway apps/web")


# --- prod-database-safety -----------------------------------------------------------------------------------

PROD = {"prod-database-safety": {"environment": "prod"}}
BARMAN = {"barmanObjectStore": {"destinationPath": "s3://backups/db", "s3Credentials": {}}}
PLUGIN = {"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": True, "parameters": {"barmanObjectName": "db"}}


@pytest.mark.parametrize("backups", [{"backup": BARMAN}, {"plugins": [PLUGIN]}])
def test_a_safe_prod_database_passes(backups):
    assert run([cluster(protect=True, instances=3.0, **backups)], "prod-database-safety", PROD) == []


def test_an_unsafe_prod_database_is_reported_for_each_gap():
    messages = [f.message for f in run([cluster()], "prod-database-safety", PROD)]
    assert len(messages) == 3
    assert messages[0].startswith("spec.instances is 1; prod needs at least 3") and "set spec.instances: 3" in messages[0]
    assert messages[1].startswith("no backups are configured: set spec.backup.barmanObjectStore")
    assert messages[2].startswith("the resource option protect is not set") and "protect=True" in messages[2]


def test_plain_yaml_is_judged_on_its_spec_only_it_has_no_resource_options():
    """tools.check over rendered manifests: instances and backups are in the YAML, `protect` cannot be."""
    from tools.analyzer import analyze_manifests

    obj = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "metadata": {"name": "db", "namespace": NS}, "spec": {"instances": 1}}
    messages = [f.message for f in analyze_manifests([obj], policy_config=PROD, stack_policies=True) if "protect" in f.message or "instances" in f.message]
    assert len(messages) == 1 and messages[0].startswith("spec.instances is 1")


def test_a_barman_plugin_that_does_not_archive_wal_is_no_backup():
    plugin = {**PLUGIN, "isWALArchiver": False}
    [finding] = run([cluster(protect=True, instances=3.0, plugins=[plugin])], "prod-database-safety", PROD)
    assert "isWALArchiver: true" in finding.message


@pytest.mark.parametrize("config", [None, {"prod-database-safety": {"environment": "staging"}}])
def test_outside_prod_a_single_instance_is_fine(config):
    assert run([cluster()], "prod-database-safety", config) == []


# --- replicated-workload-has-pdb ----------------------------------------------------------------------------


def pdb(labels, ns=NS):
    obj = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "api", "namespace": ns}, "spec": {"maxUnavailable": 1.0, "selector": {"matchLabels": labels}}}
    return resource(obj)


def hpa(target_name, min_replicas, dependencies=()):
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", **({"name": target_name} if target_name else {})}, "maxReplicas": 10.0}
    if min_replicas is not None:
        spec["minReplicas"] = float(min_replicas)
    obj = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "api", "namespace": NS}, "spec": spec}
    return resource(obj, dependencies=dependencies)


def test_a_replicated_deployment_without_pdb_is_reported_as_advisory():
    [finding] = run([deployment(replicas=3)], "replicated-workload-has-pdb")
    assert finding.enforcement == "advisory"
    assert "Deployment apps/api runs at least 3 replicas (spec.replicas)" in finding.message
    assert "spec.template.metadata.labels {app: api}" in finding.message
    assert "PodDisruptionBudget whose spec.selector.matchLabels match" in finding.message


@pytest.mark.parametrize(
    "resources",
    [
        [deployment(replicas=3), pdb({"app": "api"})],
        [deployment(replicas=1)],
        [deployment()],  # no replicas, no HPA: one pod
        [deployment(), hpa("api", None)],  # the HPA's default minReplicas is 1
    ],
)
def test_single_replica_or_budgeted_workloads_pass(resources):
    assert run(resources, "replicated-workload-has-pdb") == []


def test_a_budget_for_other_pods_does_not_count():
    [finding] = run([deployment(replicas=2), pdb({"app": "web"})], "replicated-workload-has-pdb")
    assert "Deployment apps/api" in finding.message


def test_the_hpa_floor_counts_when_the_deployment_leaves_replicas_to_it():
    [finding] = run([deployment(), hpa("api", 2)], "replicated-workload-has-pdb")
    assert "HorizontalPodAutoscaler apps/api spec.minReplicas" in finding.message
    assert run([deployment(), hpa("api", 2), pdb({"app": "api"})], "replicated-workload-has-pdb") == []


def test_a_keda_scaled_object_floor_counts_like_an_hpa():
    def scaled_object(min_replica_count):
        spec = {"scaleTargetRef": {"name": "api"}, "triggers": [{"type": "cron", "metadata": {}}]}  # kind: Deployment
        if min_replica_count is not None:
            spec["minReplicaCount"] = float(min_replica_count)
        return resource({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "api", "namespace": NS}, "spec": spec})

    [finding] = run([deployment(), scaled_object(3)], "replicated-workload-has-pdb")
    assert "runs at least 3 replicas (ScaledObject apps/api spec.minReplicaCount)" in finding.message
    assert run([deployment(), scaled_object(3), pdb({"app": "api"})], "replicated-workload-has-pdb") == []
    assert run([deployment(), scaled_object(None)], "replicated-workload-has-pdb") == []  # KEDA's default floor is 0


def test_an_hpa_finds_a_deployment_with_a_generated_name_through_its_dependencies():
    workload = deployment(k8s_name=False)  # auto-named: scaleTargetRef.name is not known to the policy
    [finding] = run([workload, hpa(None, 3, dependencies=[workload.urn])], "replicated-workload-has-pdb")
    assert finding.urn == workload.urn
    assert run([workload, hpa(None, 3)], "replicated-workload-has-pdb") == []  # no link: nothing to judge


def test_statefulsets_are_checked_too():
    obj = deployment(replicas=3).inputs | {"kind": "StatefulSet"}
    [finding] = run([resource(obj, name="api-sts")], "replicated-workload-has-pdb")
    assert finding.message.startswith("StatefulSet apps/api runs at least 3 replicas")


def test_values_unknown_during_preview_are_skipped_not_fatal():
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # what the engine sends for a value not known yet
    workload = deployment()
    workload.inputs["metadata"]["namespace"] = unknown
    replicated = deployment("web", replicas=3)
    replicated.inputs["spec"]["template"]["metadata"]["labels"] = {"app": unknown}
    result = analyze([workload, replicated, default_deny()], policies=stack_rules.POLICIES)
    assert [f for f in result if "can't run policy" in f.message] == []
    assert [f.policy for f in result] == []


# --- unique-object-names ------------------------------------------------------------------------------------


def netpol(name, ns=NS, *, logical):
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": {"podSelector": {}}}
    return resource(obj, name=logical)


def test_two_resources_that_are_one_object_are_reported_once_naming_both():
    [finding] = run([netpol("orders-database", logical="orders-db-netpol"), netpol("orders-database", logical="orders-database-netpol")], "unique-object-names")
    assert finding.urn.endswith("::orders-database-netpol")
    assert finding.message.startswith("NetworkPolicy apps/orders-database is also made by the resource 'orders-db-netpol'")


@pytest.mark.parametrize(
    "second",
    [
        lambda: netpol("orders-database", ns="other", logical="b"),  # another namespace
        lambda: resource({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "orders-database", "namespace": NS}}, name="b"),  # another kind
        lambda: netpol("orders", logical="b"),  # another name
    ],
    ids=["namespace", "kind", "name"],
)
def test_objects_differing_in_namespace_kind_or_name_are_fine(second):
    assert run([netpol("orders-database", logical="a"), second()], "unique-object-names") == []

