"""ClusterAddons: the operators the platform's custom resources need, installed with Helm on a local cluster.

`pulumi up --stack local` on a fresh kind cluster works because this installs, when the stack asks for them
(`addons:`), pinned Helm releases of cert-manager, the CloudNativePG operator with its Barman Cloud plugin,
Envoy Gateway (with its GatewayClass), kube-prometheus-stack, KEDA and the Vertical Pod Autoscaler. Staging and
prod expect their cluster's owners to have installed them (README, "Cluster add-ons"); the stack config refuses
`addons` there.

Decisions worth knowing:

- Envoy Gateway is the Gateway API controller: a conformant implementation of the standard channel,
  HTTPRoute timeouts included, whose proxies run in its own namespace (the namespace the Ingress
  component's NetworkPolicy admits). Its chart also installs the Gateway API CRDs. Traefik would serve
  Gateway API too, but is first an Ingress controller with its own CRDs; Envoy Gateway does one thing.
- Helm releases get fixed names: kube-prometheus-stack's Prometheus selects monitors by `release: <name>`,
  and the operators' pod labels (which NetworkPolicies name) derive from them too. The Prometheus selectors
  are set to the stack's `monitoring.selectorLabels` explicitly, so they match whatever the stack says.
- Each release goes to the namespace the rest of the stack expects it in (the stack config's
  `ingress.controllerNamespace`, `monitoring.namespace`, `cnpg.operatorNamespace`), created by Helm without
  Pod Security labels: add-on pods (node-exporter needs the host) run there, never in the platform namespace.
- Order: cert-manager comes after Envoy Gateway (its Gateway API support needs the CRDs at start), the
  Barman Cloud plugin after cert-manager and CloudNativePG (its TLS certificates and its CRD owner).
  Components that use the CRDs depend on the releases through `ingress_dependencies`,
  `monitoring_dependencies`, `database_dependencies` and `autoscaling_dependencies`.
- KEDA and the VPA are the versions tools/crds holds their CRDs from (components.autoscaling KEDA_VERSION and
  VPA_VERSION): the offline preview validates ScaledObjects and VPAs against what these releases install.
- Grafana's admin password is generated (pulumi-random) and reaches Grafana through a Secret the chart
  reads (`grafana.admin.existingSecret`), never through the release's values: a secret inside `values`
  would make Pulumi hide all of them in every preview. So the monitoring namespace is created here (with
  that Secret) rather than by Helm; the chart's well-known default password is never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import readiness
from components.database_cluster import BARMAN_CLOUD_PLUGIN_VERSION
from components.database_cluster_config import CNPG_OPERATOR_VERSION
from components.addons_config import AddonsConfig
from components.autoscaling import KEDA_VERSION, VPA_CHART_VERSION, VPA_VERSION


@dataclass(frozen=True)
class Chart:
    """A pinned Helm chart: `repo` for a classic chart repository, None when `chart` is an oci:// reference."""

    chart: str
    version: str
    repo: Optional[str]
    app_version: str  # what the chart deploys, for readers and for the version-coupling tests


CERT_MANAGER = Chart("cert-manager", "v1.21.0", "https://charts.jetstack.io", "v1.21.0")
CNPG_OPERATOR = Chart("cloudnative-pg", "0.29.0", "https://cloudnative-pg.github.io/charts", CNPG_OPERATOR_VERSION)
# The chart's own default plugin version differs; the image tags are set to the one DatabaseCluster targets.
BARMAN_CLOUD = Chart("plugin-barman-cloud", "0.7.1", "https://cloudnative-pg.github.io/charts", f"v{BARMAN_CLOUD_PLUGIN_VERSION}")
ENVOY_GATEWAY = Chart("oci://docker.io/envoyproxy/gateway-helm", "v1.8.4", None, "v1.8.4")
KEDA = Chart("keda", KEDA_VERSION, "https://kedacore.github.io/charts", f"v{KEDA_VERSION}")
VPA = Chart("vertical-pod-autoscaler", VPA_CHART_VERSION, "https://kubernetes.github.io/autoscaler", VPA_VERSION)
KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "88.6.0", "https://prometheus-community.github.io/helm-charts", "88.6.0")

CERT_MANAGER_NAMESPACE = "cert-manager"
ENVOY_GATEWAY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
GRAFANA_ADMIN_SECRET = "grafana-admin"


@dataclass
class ClusterAddonsArgs:
    addons: AddonsConfig
    gateway_namespace: str = "envoy-gateway-system"  # the stack's ingress.controllerNamespace
    gateway_class_name: str = "eg"  # the stack's ingress.gatewayClassName
    monitoring_namespace: str = "monitoring"  # the stack's monitoring.namespace
    monitor_selector_labels: Optional[dict[str, str]] = None  # the stack's monitoring.selectorLabels
    cnpg_namespace: str = "cnpg-system"  # the stack's cnpg.operatorNamespace
    cert_manager_gateway_api: bool = True  # cert-manager solves ACME HTTP-01 through Gateways
    keda_namespace: str = "keda"
    vpa_namespace: str = "vpa-system"


class ClusterAddons(pulumi.ComponentResource):
    ingress_dependencies: list[pulumi.Resource]
    monitoring_dependencies: list[pulumi.Resource]
    database_dependencies: list[pulumi.Resource]
    autoscaling_dependencies: list[pulumi.Resource]

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:addons:ClusterAddons", name, None, opts)
        addons = args.addons
        self.ingress_dependencies, self.monitoring_dependencies, self.database_dependencies = [], [], []
        self.autoscaling_dependencies = []
        gateway = cert_manager = operator = None

        if addons.gateway_controller:
            gateway = self._release(f"{name}-envoy-gateway", "envoy-gateway", ENVOY_GATEWAY, args.gateway_namespace, {})
            gateway_class = readiness.custom_resource(
                f"{name}-gateway-class",
                api_version="gateway.networking.k8s.io/v1",
                kind="GatewayClass",
                metadata={"name": args.gateway_class_name, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
                spec={"controllerName": ENVOY_GATEWAY_CONTROLLER},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
            )
            self.ingress_dependencies += [gateway, gateway_class]

        if addons.cert_manager:
            values: dict[str, Any] = {"crds": {"enabled": True, "keep": True}}
            if args.cert_manager_gateway_api:
                values["config"] = {
                    "apiVersion": "controller.config.cert-manager.io/v1alpha1",
                    "kind": "ControllerConfiguration",
                    "enableGatewayAPI": True,
                }
            cert_manager = self._release(
                f"{name}-cert-manager",
                "cert-manager",
                CERT_MANAGER,
                CERT_MANAGER_NAMESPACE,
                values,
                depends_on=[gateway] if gateway is not None and args.cert_manager_gateway_api else [],
            )
            self.ingress_dependencies.append(cert_manager)

        if addons.cnpg:
            operator = self._release(f"{name}-cnpg", "cnpg", CNPG_OPERATOR, args.cnpg_namespace, {"crds": {"create": True}})
            plugin_tag = BARMAN_CLOUD.app_version
            plugin = self._release(
                f"{name}-barman-cloud",
                "barman-cloud",
                BARMAN_CLOUD,
                args.cnpg_namespace,
                {"image": {"tag": plugin_tag}, "sidecarImage": {"tag": plugin_tag}},
                depends_on=[operator] + ([cert_manager] if cert_manager is not None else []),
            )
            self.database_dependencies += [operator, plugin]

        if addons.kube_prometheus_stack:
            self.monitoring_dependencies.append(self._kube_prometheus_stack(name, args))
            # Each DatabaseCluster makes a PodMonitor: its CRD comes with kube-prometheus-stack.
            self.database_dependencies += self.monitoring_dependencies

        if addons.keda:
            self.autoscaling_dependencies.append(self._release(f"{name}-keda", "keda", KEDA, args.keda_namespace, {}))
        if addons.vpa:
            # The chart's defaults: recommender, updater and admission controller (for modes initial and auto), the
            # CRDs, and a self-signed certificate for the admission webhook.
            self.autoscaling_dependencies.append(self._release(f"{name}-vpa", "vpa", VPA, args.vpa_namespace, {}))

        self.register_outputs({})

    def _release(
        self,
        resource_name: str,
        release_name: str,
        chart: Chart,
        namespace: str,
        values: dict[str, Any],
        depends_on: list[pulumi.Resource] | None = None,
        timeout: int = 600,
        create_namespace: bool = True,
    ) -> k8s.helm.v3.Release:
        return k8s.helm.v3.Release(
            resource_name,
            name=release_name,  # fixed: selectors and pod labels derive from it (no auto-naming suffix)
            chart=chart.chart,
            version=chart.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo) if chart.repo else None,
            namespace=namespace,
            create_namespace=create_namespace,
            values=values,
            timeout=timeout,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on or []),
        )

    def _kube_prometheus_stack(self, name: str, args: ClusterAddonsArgs) -> k8s.helm.v3.Release:
        selector = {"matchLabels": dict(args.monitor_selector_labels or {"release": "kube-prometheus-stack"})}
        child = pulumi.ResourceOptions(parent=self)
        namespace = k8s.core.v1.Namespace(
            f"{name}-monitoring-namespace",
            metadata={
                "name": args.monitoring_namespace,
                # node-exporter reads the host (hostNetwork, hostPID, hostPath): this namespace cannot be restricted.
                "labels": {"pod-security.kubernetes.io/enforce": "privileged", "app.kubernetes.io/managed-by": "pulumi"},
            },
            opts=child,
        )
        admin_password = random.RandomPassword(f"{name}-grafana-admin", length=24, special=False, opts=child)
        admin_secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin-secret",
            metadata={"name": GRAFANA_ADMIN_SECRET, "namespace": args.monitoring_namespace},
            type="Opaque",
            string_data={"admin-user": "admin", "admin-password": pulumi.Output.secret(admin_password.result)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )
        values = {
            "prometheus": {
                "prometheusSpec": {
                    # Select the platform's monitors and rules in every namespace, by the stack's labels.
                    "serviceMonitorSelector": selector,
                    "podMonitorSelector": selector,
                    "ruleSelector": selector,
                    "serviceMonitorNamespaceSelector": {},
                    "podMonitorNamespaceSelector": {},
                    "ruleNamespaceSelector": {},
                    "retention": "3d",  # a laptop's disk
                }
            },
            "grafana": {
                # `kubectl -n <monitoring> get secret grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d`
                "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
                # Dashboards are ConfigMaps labelled grafana_dashboard: "1", in any namespace.
                "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "labelValue": "1", "searchNamespace": "ALL"}},
            },
            # kind binds these control-plane components to localhost: scraping them only produces false alerts.
            "kubeControllerManager": {"enabled": False},
            "kubeScheduler": {"enabled": False},
            "kubeEtcd": {"enabled": False},
            "kubeProxy": {"enabled": False},
        }
        return self._release(
            f"{name}-kube-prometheus-stack",
            "kube-prometheus-stack",
            KUBE_PROMETHEUS_STACK,
            args.monitoring_namespace,
            values,
            depends_on=[admin_secret],
            timeout=900,
            create_namespace=False,
        )
