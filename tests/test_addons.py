"""Local cluster add-ons: pinned Helm releases in the namespaces the stack expects, installed before what needs them."""

from __future__ import annotations

import re

import pytest

from components import addons as addons_module
from components.addons import ClusterAddons, ClusterAddonsArgs
from components.database_cluster import BARMAN_CLOUD_PLUGIN_VERSION
from components.database_cluster_config import CNPG_OPERATOR_VERSION
from components.addons_config import AddonsConfig
from tests.helpers import register, unwrap
from tools import engine, schemas

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
ALL_ON = AddonsConfig(cert_manager=True, cnpg=True, gateway_controller=True, kube_prometheus_stack=True)
EXACT_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+$")  # no ranges, no "latest"


def render(addons: AddonsConfig = ALL_ON, **overrides):
    args = ClusterAddonsArgs(addons=addons, **overrides)
    return register(lambda: ClusterAddons("addons", args))


@pytest.fixture(scope="module")
def all_on():
    return render(
        gateway_namespace="edge-system",
        gateway_class_name="edge",
        monitoring_namespace="observability",
        monitor_selector_labels={"prometheus": "platform"},
        cnpg_namespace="postgres-operator",
    )


def releases(resources) -> dict[str, engine.RecordedResource]:
    return {r.inputs["name"]: r for r in resources if r.type == RELEASE_TYPE}


def test_every_release_is_pinned_named_and_namespaced(all_on):
    found = releases(all_on)
    assert set(found) == {"envoy-gateway", "cert-manager", "cnpg", "barman-cloud", "kube-prometheus-stack"}
    namespaces = {name: r.inputs["namespace"] for name, r in found.items()}
    assert namespaces == {
        "envoy-gateway": "edge-system",
        "cert-manager": "cert-manager",
        "cnpg": "postgres-operator",
        "barman-cloud": "postgres-operator",  # the plugin must live with the operator
        "kube-prometheus-stack": "observability",
    }
    (component,) = [r for r in all_on if r.type == "platform:addons:ClusterAddons"]
    for name, release in found.items():
        inputs = release.inputs
        assert EXACT_VERSION.match(inputs["version"]), (name, inputs["version"])
        # Helm creates each add-on's namespace, but the monitoring one (created first for Grafana's Secret).
        assert inputs["createNamespace"] is (name != "kube-prometheus-stack")
        assert release.parent == component.urn
        if inputs["chart"].startswith("oci://"):
            assert "repositoryOpts" not in inputs or not inputs["repositoryOpts"].get("repo")
        else:
            assert inputs["repositoryOpts"]["repo"].startswith("https://"), name


def test_charts_match_the_versions_the_components_target(all_on):
    found = releases(all_on)
    assert addons_module.CNPG_OPERATOR.app_version == CNPG_OPERATOR_VERSION
    plugin_values = unwrap(found["barman-cloud"].inputs["values"])
    assert plugin_values["image"]["tag"] == plugin_values["sidecarImage"]["tag"] == f"v{BARMAN_CLOUD_PLUGIN_VERSION}"
    assert found["envoy-gateway"].inputs["chart"] == "oci://docker.io/envoyproxy/gateway-helm"
    cert_manager = unwrap(found["cert-manager"].inputs["values"])
    assert cert_manager["crds"]["enabled"] is True
    assert cert_manager["config"]["enableGatewayAPI"] is True


def test_install_order(all_on):
    found = releases(all_on)
    urn = {name: r.urn for name, r in found.items()}
    assert urn["envoy-gateway"] in found["cert-manager"].dependencies  # Gateway API CRDs before cert-manager starts
    assert {urn["cnpg"], urn["cert-manager"]} <= set(found["barman-cloud"].dependencies)
    (gateway_class,) = [r for r in all_on if r.type == "kubernetes:gateway.networking.k8s.io/v1:GatewayClass"]
    assert urn["envoy-gateway"] in gateway_class.dependencies


def test_gateway_class_names_envoy_gateway(all_on):
    (gateway_class,) = [unwrap(r.inputs) for r in all_on if r.is_kubernetes_object and r.inputs["kind"] == "GatewayClass"]
    assert gateway_class["metadata"]["name"] == "edge"
    assert gateway_class["spec"] == {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"}
    assert schemas.validate(gateway_class) == []


def test_prometheus_selects_by_the_stacks_labels_and_grafana_has_a_generated_password(all_on):
    stack = releases(all_on)["kube-prometheus-stack"]
    wire = stack.inputs["values"]
    assert not engine.is_secret(wire)  # the values stay readable in a preview
    values = wire
    spec = values["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{kind}Selector"] == {"matchLabels": {"prometheus": "platform"}}
        assert spec[f"{kind}NamespaceSelector"] == {}
    dashboards = values["grafana"]["sidecar"]["dashboards"]
    assert (dashboards["label"], dashboards["labelValue"], dashboards["searchNamespace"]) == ("grafana_dashboard", "1", "ALL")
    # The admin password: generated, kept secret, handed over in a Secret the chart reads.
    assert values["grafana"]["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"}
    assert "adminPassword" not in values["grafana"]
    (secret,) = [r for r in all_on if r.is_kubernetes_object and r.inputs["kind"] == "Secret"]
    assert secret.inputs["metadata"] == {"name": "grafana-admin", "namespace": "observability"}
    assert engine.is_secret(secret.inputs["stringData"])
    assert unwrap(secret.inputs["stringData"])["admin-password"].startswith(engine.PLACEHOLDER_PREFIX)  # the generated one
    assert secret.urn in stack.dependencies and stack.inputs["createNamespace"] is False
    (namespace,) = [unwrap(r.inputs) for r in all_on if r.is_kubernetes_object and r.inputs["kind"] == "Namespace"]
    assert namespace["metadata"]["name"] == "observability"


def test_only_what_is_asked_for():
    resources = render(AddonsConfig(kube_prometheus_stack=True))
    assert set(releases(resources)) == {"kube-prometheus-stack"}
    assert sorted(r.inputs["kind"] for r in resources if r.is_kubernetes_object) == ["Namespace", "Secret"]
    cert_manager_alone = releases(render(AddonsConfig(cert_manager=True), cert_manager_gateway_api=False))
    assert set(cert_manager_alone) == {"cert-manager"}
    assert "config" not in unwrap(cert_manager_alone["cert-manager"].inputs["values"])
    assert cert_manager_alone["cert-manager"].dependencies == []


# --- the shipped stacks ------------------------------------------------------------------------------------------


def component(rendering: engine.Rendering, type_: str) -> engine.RecordedResource:
    (found,) = rendering.of_type(type_)
    return found


def test_local_installs_every_addon_and_waits_for_it(rendered):
    local = rendered["local"]
    found = releases(local.resources)
    assert set(found) == {"envoy-gateway", "cert-manager", "cnpg", "barman-cloud", "kube-prometheus-stack", "keda", "vpa"}
    urn = {name: r.urn for name, r in found.items()}
    (gateway_class,) = local.of_type("kubernetes:gateway.networking.k8s.io/v1:GatewayClass")
    ingress = component(local, "platform:ingress:Ingress")
    assert {urn["envoy-gateway"], urn["cert-manager"], gateway_class.urn} <= set(ingress.dependencies)
    assert urn["kube-prometheus-stack"] in component(local, "platform:monitoring:Monitoring").dependencies
    (database,) = local.of_type("platform:database:DatabaseCluster")
    assert {urn["cnpg"], urn["barman-cloud"], urn["kube-prometheus-stack"]} <= set(database.dependencies)
    # The releases land where the rest of the stack looks for them.
    assert found["envoy-gateway"].inputs["namespace"] == "envoy-gateway-system"
    assert found["kube-prometheus-stack"].inputs["namespace"] == "monitoring"
    assert found["cnpg"].inputs["namespace"] == "cnpg-system"
    # Services wait for KEDA and the VPA, whose CRDs their ScaledObjects and VPAs need.
    for app in local.of_type("platform:app:AppService"):
        assert {urn["keda"], urn["vpa"]} <= set(app.dependencies)
    assert found["keda"].inputs["namespace"] == "keda"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_staging_and_prod_install_no_addons(rendered, stack):
    assert rendered[stack].of_type(RELEASE_TYPE) == []
    assert rendered[stack].of_type("platform:addons:ClusterAddons") == []
