"""Ingress: the public way in to the platform's services, always over TLS.

Owns the cert-manager issuer(s) and one Certificate per public host, then either (mode `gateway`, the
default) a Gateway API `Gateway` with one HTTPS listener per host, one `HTTPRoute` per host and an
HTTP->HTTPS redirect route, or only the HTTPRoutes, attached to a Gateway the cluster's owners run
(`gatewayRef`), or (mode `ingress`) one networking.k8s.io/v1 `Ingress`; and a NetworkPolicy per routed service
letting only the controller's namespace reach that service's http port.

Decisions worth knowing:

- Gateway API is the default: ingress-nginx is retired, and Gateway API is the portable successor. Only
  standard-channel fields are used, so any conformant controller (Envoy Gateway locally) serves it.
- Request limits: every HTTPRoute rule gets `timeouts.request` and `timeouts.backendRequest` (standard
  channel since Gateway API v1.2). Body-size and rate limits have no portable field; they are
  controller-specific policies (Envoy Gateway's ClientTrafficPolicy/BackendTrafficPolicy) left to the
  controller's owners. In mode `ingress` the stack's `annotations` carry the controller's own limits.
- Plain HTTP only redirects: the HTTP listener's one route is a RequestRedirect (https, 301) with no
  backends, so nothing is ever served unencrypted (policies/stack_rules.py `ingress-tls` checks the same).
- Certificates are explicit `Certificate` objects rather than ingress-shim annotations: the same in both
  modes, visible in the preview, and their Secrets named by us. Issuers are namespaced (`Issuer`, not
  `ClusterIssuer`): the stack never changes cluster-wide state, and an ACME account key stays in this namespace.
- selfSigned means a local CA: a self-signed bootstrap issuer signs one CA certificate, and a CA issuer
  signs the host certificates, so a developer trusts one root (`kubectl get secret local-ca`) once.
- ACME uses HTTP-01 through this very Gateway (or IngressClass). cert-manager's solver pods run in this
  namespace, which denies all ingress by default: a second NetworkPolicy lets the controller reach them.
  With `solver.dns01` (Route53) cert-manager proves the zone instead: no solver pods, and wildcard hosts work.
- A ClusterIssuer (`issuer.kind: clusterIssuer`) is the cluster owners' exception to namespaced issuers: we
  only reference it. Its solvers are invisible to us, so the solver-pod NetworkPolicy stays (it may use HTTP-01).
- A shared Gateway (`gatewayRef`) is its owners': we attach routes to the listener it names and make no Gateway,
  no redirect (plain HTTP on it is theirs to redirect). Route attachment across namespaces needs no
  ReferenceGrant, only the listener's `allowedRoutes`. With an `issuer`, each host still gets its Certificate
  here, and a ReferenceGrant lets Gateways of that namespace use exactly its Secret (the listener's
  `certificateRefs` then name it); without one, the listener's own certificate serves our hosts.
- HSTS: every HTTPS response carries Strict-Transport-Security, set by the route (gateway mode, a
  ResponseHeaderModifier filter, standard channel) or by the controller's annotations (ingress mode: the plain
  Ingress has no header field; Hsts.ingress_annotations says which controllers read them).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import hardening, readiness
from components.ingress_config import IngressConfig, PublicHost

CERT_MANAGER_API_VERSION = "cert-manager.io/v1"
GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
# v1beta1, not v1: served since Gateway API v0.6, so it also works on clusters whose owners run older CRDs.
REFERENCE_GRANT_API_VERSION = "gateway.networking.k8s.io/v1beta1"
GATEWAY_NAME = "public"
HTTP_LISTENER = "http"
HTTPS_PORT = 443
HTTP_PORT = 80
LOCAL_CA_SECRET = "local-ca"
ACME_ACCOUNT_KEY_SECRET = "acme-account-key"
# cert-manager labels its HTTP-01 solver pods so, and they listen on this port.
ACME_SOLVER_POD_LABELS = {"acme.cert-manager.io/http01-solver": "true"}
ACME_SOLVER_PORT = 8089


@dataclass
class IngressArgs:
    config: IngressConfig
    namespace: str
    service_ports: dict[str, int]  # routed service name -> its http port (the Service's port "http")


def https_listener_name(host: PublicHost) -> str:
    return f"https-{host.slug}"[:63].rstrip("-")


def controller_peer(config: IngressConfig) -> dict:
    """The controller's proxies as a NetworkPolicy peer: its namespace, narrowed to its pods when labels are given."""
    peer: dict = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": config.controller_namespace}}}
    if config.controller_pod_labels:
        peer["podSelector"] = {"matchLabels": dict(config.controller_pod_labels)}
    return peer


def hsts_filter(config: IngressConfig) -> dict:
    """`set`, not `add`: the host has one policy whatever a backend sends (browsers read only the first header)."""
    return {
        "type": "ResponseHeaderModifier",
        "responseHeaderModifier": {"set": [{"name": "Strict-Transport-Security", "value": config.hsts.header_value}]},
    }


class Ingress(pulumi.ComponentResource):
    hosts: list[str]
    urls: dict[str, str]  # concrete hosts only: a wildcard is no address to open

    def __init__(self, name: str, args: IngressArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:ingress:Ingress", name, None, opts)
        config = args.config
        unknown = sorted({route.service for host in config.hosts for route in host.routes} - set(args.service_ports))
        if unknown:
            raise ValueError(f"Ingress {name!r}: routes name services without a port: {unknown}")
        self._prefix = name  # child resource names start with it
        self._args = args
        self._labels = hardening.standard_labels(GATEWAY_NAME, "ingress")

        if config.issuer is not None:
            self._certificates()
        if config.mode == "ingress":
            self._ingress()
        elif config.gateway_ref is not None:
            self._shared_gateway_routes()
        else:
            self._gateway()
        self._network_policies()

        self.hosts = [host.host for host in config.hosts]
        self.urls = {host.host: f"https://{host.host}/" for host in config.hosts if not host.is_wildcard}
        self.register_outputs({"hosts": self.hosts, "urls": self.urls})

    # --- helpers ------------------------------------------------------------------------------------------------

    def _metadata(self, object_name: str) -> dict:
        return {"name": object_name, "namespace": self._args.namespace, "labels": dict(self._labels)}

    def _custom(self, resource_name: str, api_version: str, kind: str, object_name: str, spec: dict, depends_on=None):
        return readiness.custom_resource(
            resource_name,
            api_version=api_version,
            kind=kind,
            metadata=self._metadata(object_name),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on or []),
        )

    # --- certificates -------------------------------------------------------------------------------------------

    def _certificates(self) -> None:
        name, config = self._prefix, self._args.config
        issuer_ref, issuer_resources = self._issuer()
        for host in config.hosts:
            self._custom(
                f"{name}-cert-{host.slug}",
                CERT_MANAGER_API_VERSION,
                "Certificate",
                host.slug,
                {
                    "secretName": host.secret_name,
                    "dnsNames": [host.host],
                    "issuerRef": issuer_ref,
                    # A fresh key on every renewal: a leaked key is only good until the next one.
                    "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                    "secretTemplate": {"labels": dict(self._labels)},
                },
                depends_on=issuer_resources,
            )

    def _issuer(self) -> tuple[dict, list[pulumi.Resource]]:
        """Creates the issuer(s) this stack owns; returns the issuerRef for the host certificates and what to wait for."""
        name, config = self._prefix, self._args.config
        if config.issuer.kind == "clusterIssuer":
            return {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": config.issuer.name}, []
        if config.issuer.kind == "selfSigned":
            bootstrap = self._custom(f"{name}-selfsigned-issuer", CERT_MANAGER_API_VERSION, "Issuer", "selfsigned-bootstrap", {"selfSigned": {}})
            ca = self._custom(
                f"{name}-local-ca",
                CERT_MANAGER_API_VERSION,
                "Certificate",
                LOCAL_CA_SECRET,
                {
                    "isCA": True,
                    "commonName": f"platform local CA ({self._args.namespace})",
                    "secretName": LOCAL_CA_SECRET,
                    "duration": "87600h",  # ten years: a local root nobody wants to re-trust every quarter
                    "privateKey": {"algorithm": "ECDSA", "size": 256},
                    "issuerRef": {"group": "cert-manager.io", "kind": "Issuer", "name": "selfsigned-bootstrap"},
                },
                depends_on=[bootstrap],
            )
            ca_issuer = self._custom(
                f"{name}-ca-issuer", CERT_MANAGER_API_VERSION, "Issuer", "local-ca", {"ca": {"secretName": LOCAL_CA_SECRET}}, depends_on=[ca]
            )
            return {"group": "cert-manager.io", "kind": "Issuer", "name": "local-ca"}, [ca_issuer]
        acme = self._custom(
            f"{name}-acme-issuer",
            CERT_MANAGER_API_VERSION,
            "Issuer",
            "acme",
            {
                "acme": {
                    "server": config.issuer.server,
                    "email": config.issuer.email,
                    "privateKeySecretRef": {"name": ACME_ACCOUNT_KEY_SECRET},
                    "solvers": [self._acme_solver()],
                }
            },
        )
        return {"group": "cert-manager.io", "kind": "Issuer", "name": "acme"}, [acme]

    def _acme_solver(self) -> dict:
        config = self._args.config
        if config.issuer.solves_dns01:
            return {"dns01": config.issuer.solver.dns01.model_dump(by_alias=True, exclude_none=True)}
        if config.mode == "ingress":
            return {"http01": {"ingress": {"ingressClassName": config.ingress_class_name}}}
        # cert-manager attaches its solver route to the Gateway (needs its Gateway API support enabled): to our HTTP
        # listener, or to every listener of the shared Gateway that admits this namespace, its port-80 one included.
        if config.gateway_ref is None:
            parent = {"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": GATEWAY_NAME, "sectionName": HTTP_LISTENER}
        else:
            parent = {"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": config.gateway_ref.name, "namespace": config.gateway_ref.namespace}
        return {"http01": {"gatewayHTTPRoute": {"parentRefs": [parent]}}}

    # --- mode gateway -------------------------------------------------------------------------------------------

    def _gateway(self) -> None:
        name, config = self._prefix, self._args.config
        listeners = [
            {
                "name": https_listener_name(host),
                "hostname": host.host,
                "port": HTTPS_PORT,
                "protocol": "HTTPS",
                "tls": {"mode": "Terminate", "certificateRefs": [{"group": "", "kind": "Secret", "name": host.secret_name}]},
                "allowedRoutes": {"namespaces": {"from": "Same"}},
            }
            for host in config.hosts
        ]
        # One plain-HTTP listener for every host: it only carries the redirect (and ACME HTTP-01 challenges).
        listeners.append({"name": HTTP_LISTENER, "port": HTTP_PORT, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "Same"}}})
        gateway = self._custom(
            f"{name}-gateway",
            GATEWAY_API_VERSION,
            "Gateway",
            GATEWAY_NAME,
            {"gatewayClassName": config.gateway_class_name, "listeners": listeners},
        )
        for host in config.hosts:
            parent = {"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": GATEWAY_NAME, "sectionName": https_listener_name(host)}
            self._host_route(host, parent, depends_on=[gateway])
        self._custom(
            f"{name}-https-redirect",
            GATEWAY_API_VERSION,
            "HTTPRoute",
            "https-redirect",
            {
                "parentRefs": [{"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": GATEWAY_NAME, "sectionName": HTTP_LISTENER}],
                "hostnames": [host.host for host in config.hosts],
                "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}],
            },
            depends_on=[gateway],
        )

    def _shared_gateway_routes(self) -> None:
        """Routes on the owners' Gateway, and (with an issuer) its permission to serve each host's certificate."""
        config, namespace = self._args.config, self._args.namespace
        ref = config.gateway_ref
        parent = {"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": ref.name, "namespace": ref.namespace, "sectionName": ref.section_name}
        for host in config.hosts:
            self._host_route(host, parent, depends_on=[])
            # A Gateway in our own namespace reads our Secrets without a grant.
            if config.issuer is not None and ref.namespace != namespace:
                self._custom(
                    f"{self._prefix}-grant-{host.slug}",
                    REFERENCE_GRANT_API_VERSION,
                    "ReferenceGrant",
                    host.secret_name,
                    {
                        "from": [{"group": GATEWAY_API_GROUP, "kind": "Gateway", "namespace": ref.namespace}],
                        "to": [{"group": "", "kind": "Secret", "name": host.secret_name}],
                    },
                )

    def _host_route(self, host: PublicHost, parent: dict, depends_on: list) -> None:
        config, ports = self._args.config, self._args.service_ports
        timeouts = {"request": config.timeouts.request, "backendRequest": config.timeouts.backend_request}
        # Longest prefix first: Gateway API already prefers the longest match, readers expect the same order.
        routes = sorted(host.routes, key=lambda route: len(route.path), reverse=True)
        self._custom(
            f"{self._prefix}-route-{host.slug}",
            GATEWAY_API_VERSION,
            "HTTPRoute",
            host.slug,
            {
                "parentRefs": [dict(parent)],
                "hostnames": [host.host],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": route.path}}],
                        "filters": [hsts_filter(config)],
                        "backendRefs": [{"group": "", "kind": "Service", "name": route.service, "port": ports[route.service]}],
                        "timeouts": dict(timeouts),
                    }
                    for route in routes
                ],
            },
            depends_on=depends_on,
        )

    # --- mode ingress -------------------------------------------------------------------------------------------

    def _ingress(self) -> None:
        config, ports = self._args.config, self._args.service_ports
        metadata = self._metadata(GATEWAY_NAME)
        metadata["annotations"] = {**config.annotations, **config.hsts.ingress_annotations()}
        k8s.networking.v1.Ingress(
            f"{self._prefix}-ingress",
            metadata=metadata,
            spec={
                "ingressClassName": config.ingress_class_name,
                "tls": [{"hosts": [host.host], "secretName": host.secret_name} for host in config.hosts],
                "rules": [
                    {
                        "host": host.host,
                        "http": {
                            "paths": [
                                {
                                    "path": route.path,
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": route.service, "port": {"number": ports[route.service]}}},
                                }
                                for route in sorted(host.routes, key=lambda route: len(route.path), reverse=True)
                            ]
                        },
                    }
                    for host in config.hosts
                ],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

    # --- who may reach the routed services ----------------------------------------------------------------------

    def _network_policies(self) -> None:
        """The namespace denies all ingress: the controller's proxies may reach each routed service's http port."""
        config, ports = self._args.config, self._args.service_ports
        peer = controller_peer(config)
        routed = sorted({route.service for host in config.hosts for route in host.routes})
        for service in routed:
            k8s.networking.v1.NetworkPolicy(
                f"{self._prefix}-netpol-{service}",
                metadata=self._metadata(f"ingress-to-{service}"),
                spec={
                    "podSelector": {"matchLabels": hardening.selector_labels(service)},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [peer], "ports": [{"protocol": "TCP", "port": ports[service]}]}],
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
        if config.issuer is not None and config.issuer.may_run_http01_solver_pods:
            k8s.networking.v1.NetworkPolicy(
                f"{self._prefix}-netpol-acme-solver",
                metadata=self._metadata("ingress-to-acme-solver"),
                spec={
                    "podSelector": {"matchLabels": dict(ACME_SOLVER_POD_LABELS)},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [peer], "ports": [{"protocol": "TCP", "port": ACME_SOLVER_PORT}]}],
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
