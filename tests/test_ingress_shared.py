"""Ingress in a cluster run by others: a shared Gateway (gatewayRef), a ClusterIssuer, DNS-01 for wildcard hosts,
and HSTS on every HTTPS response; plus the config errors each of those can be given."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.ingress import Ingress, IngressArgs
from components.ingress_config import IngressConfig
from policies.stack_rules import StackObject, ingress_tls_findings
from tests.helpers import by_kind, one, register
from tests.test_config import problems_for
from tools import analyzer, schemas

PORTS = {"web": 8080, "api": 8081}
NAMESPACE = "apps"
SHARED_GATEWAY = {"name": "shared", "namespace": "gateway-system", "sectionName": "https-example-org"}
CLUSTER_ISSUER = {"kind": "clusterIssuer", "name": "letsencrypt-prod"}
ACME = {"kind": "acme", "server": "https://acme-v02.api.letsencrypt.org/directory", "email": "ops@example.org"}
ROUTE53 = {"region": "eu-west-1", "hostedZoneID": "Z0123456789ABCDEFGHIJ"}
ACME_DNS01 = {**ACME, "solver": {"dns01": {"route53": ROUTE53}}}
SHOP = {"host": "shop.example.org", "routes": [{"path": "/", "service": "web"}, {"path": "/api", "service": "api"}]}
WILDCARD = {"host": "*.example.org", "routes": [{"path": "/", "service": "web"}]}
STS = "Strict-Transport-Security"


def ingress_config(**overrides) -> IngressConfig:
    fields = {"mode": "gateway", "gatewayClassName": "eg", "controllerNamespace": "envoy-gateway-system", "issuer": ACME, "hosts": [SHOP]}
    fields.update(overrides)
    return IngressConfig.model_validate({key: value for key, value in fields.items() if value is not None})


def shared(**overrides) -> IngressConfig:
    return ingress_config(gatewayClassName=None, gatewayRef=SHARED_GATEWAY, **overrides)


def render(config: IngressConfig, namespace: str = NAMESPACE):
    return register(lambda: Ingress("edge", IngressArgs(config=config, namespace=namespace, service_ports=PORTS)))


def kubernetes_objects(resources) -> list[dict]:
    return [obj for kind in ("Certificate", "Issuer", "Gateway", "HTTPRoute", "ReferenceGrant", "Ingress", "NetworkPolicy") for obj in by_kind(resources, kind)]


def names(resources, kind: str) -> set[str]:
    return {obj["metadata"]["name"] for obj in by_kind(resources, kind)}


@pytest.fixture(scope="module")
def shared_gateway_cluster_issuer():
    """What prod is meant to use: the owners' Gateway and ClusterIssuer, two hosts."""
    return render(shared(issuer=CLUSTER_ISSUER, hosts=[SHOP, {"host": "admin.example.org", "routes": [{"path": "/", "service": "api"}]}]))


@pytest.fixture(scope="module")
def shared_gateway_owners_tls():
    return render(shared(issuer=None, hosts=[SHOP, WILDCARD]))


@pytest.fixture(scope="module")
def wildcard_dns01():
    return render(ingress_config(issuer=ACME_DNS01, hosts=[SHOP, WILDCARD]))


@pytest.fixture(scope="module")
def wildcard_ingress_mode():
    return render(
        ingress_config(
            mode="ingress",
            gatewayClassName=None,
            ingressClassName="nginx",
            issuer=ACME_DNS01,
            annotations={"nginx.org/client-max-body-size": "4m"},
            hsts={"maxAgeSeconds": 63072000, "includeSubDomains": True, "preload": True},
            hosts=[SHOP, WILDCARD],
        )
    )


ALL_RENDERINGS = ["shared_gateway_cluster_issuer", "shared_gateway_owners_tls", "wildcard_dns01", "wildcard_ingress_mode"]


# --- every rendering ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rendering", ALL_RENDERINGS)
def test_every_object_is_schema_valid_and_the_policy_pack_is_clean(rendering, request):
    resources = request.getfixturevalue(rendering)
    rendered = kubernetes_objects(resources)
    assert len(rendered) == len([r for r in resources if r.is_kubernetes_object])
    assert schemas.validate_all(rendered) == []
    assert analyzer.analyze(resources, policy_config={"all": "mandatory"}) == []


# --- a shared Gateway ----------------------------------------------------------------------------------------------


def test_routes_attach_to_the_shared_gateways_listener_and_no_gateway_is_made(shared_gateway_cluster_issuer):
    assert by_kind(shared_gateway_cluster_issuer, "Gateway") == []
    routes = {route["metadata"]["name"]: route["spec"] for route in by_kind(shared_gateway_cluster_issuer, "HTTPRoute")}
    # No redirect route: plain HTTP on the shared Gateway is its owners' to redirect.
    assert set(routes) == {"shop-example-org", "admin-example-org"}
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shared", "namespace": "gateway-system", "sectionName": "https-example-org"}
    assert all(route["parentRefs"] == [parent] for route in routes.values())
    assert routes["shop-example-org"]["hostnames"] == ["shop.example.org"]


def test_the_shared_gateway_may_read_exactly_each_hosts_certificate(shared_gateway_cluster_issuer):
    certificates = {c["spec"]["dnsNames"][0]: c["spec"]["secretName"] for c in by_kind(shared_gateway_cluster_issuer, "Certificate")}
    assert certificates == {"shop.example.org": "shop-example-org-tls", "admin.example.org": "admin-example-org-tls"}
    grants = {grant["metadata"]["name"]: grant for grant in by_kind(shared_gateway_cluster_issuer, "ReferenceGrant")}
    assert set(grants) == set(certificates.values())
    for secret, grant in grants.items():
        assert grant["apiVersion"] == "gateway.networking.k8s.io/v1beta1" and grant["metadata"]["namespace"] == NAMESPACE
        assert grant["spec"] == {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "gateway-system"}],
            "to": [{"group": "", "kind": "Secret", "name": secret}],
        }


def test_a_shared_gateway_in_our_own_namespace_needs_no_grant():
    resources = render(shared(issuer=CLUSTER_ISSUER), namespace="gateway-system")
    assert names(resources, "Certificate") == {"shop-example-org"} and by_kind(resources, "ReferenceGrant") == []


def test_certificates_come_from_the_cluster_issuer_and_no_issuer_is_made(shared_gateway_cluster_issuer):
    assert by_kind(shared_gateway_cluster_issuer, "Issuer") == []
    refs = [c["spec"]["issuerRef"] for c in by_kind(shared_gateway_cluster_issuer, "Certificate")]
    assert refs == [{"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "letsencrypt-prod"}] * 2


def test_the_shared_gateways_proxies_reach_the_services_and_a_cluster_issuers_solver_pods(shared_gateway_cluster_issuer):
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(shared_gateway_cluster_issuer, "NetworkPolicy")}
    controller = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}}}]
    assert set(policies) == {"ingress-to-web", "ingress-to-api", "ingress-to-acme-solver"}
    assert policies["ingress-to-api"]["ingress"] == [{"from": controller, "ports": [{"protocol": "TCP", "port": 8081}]}]
    # We cannot see whether the ClusterIssuer solves HTTP-01, whose solver pods would run here.
    assert policies["ingress-to-acme-solver"]["ingress"] == [{"from": controller, "ports": [{"protocol": "TCP", "port": 8089}]}]


def test_without_an_issuer_the_shared_gateways_own_certificate_serves_every_host(shared_gateway_owners_tls):
    assert [kind for kind in ("Certificate", "Issuer", "ReferenceGrant", "Gateway") if by_kind(shared_gateway_owners_tls, kind)] == []
    assert names(shared_gateway_owners_tls, "HTTPRoute") == {"shop-example-org", "wildcard-example-org"}
    assert names(shared_gateway_owners_tls, "NetworkPolicy") == {"ingress-to-web", "ingress-to-api"}


def test_outputs_list_wildcard_hosts_but_no_wildcard_url():
    captured = {}

    def program():
        ingress = Ingress("edge", IngressArgs(config=shared(issuer=None, hosts=[SHOP, WILDCARD]), namespace=NAMESPACE, service_ports=PORTS))
        captured.update(hosts=ingress.hosts, urls=ingress.urls)

    register(program)
    assert captured == {"hosts": ["shop.example.org", "*.example.org"], "urls": {"shop.example.org": "https://shop.example.org/"}}


def test_an_acme_issuer_of_ours_solves_http01_through_the_shared_gateway():
    (issuer,) = by_kind(render(shared(issuer=ACME)), "Issuer")
    # No sectionName: cert-manager's route must reach the shared Gateway's port-80 listener, whatever its name.
    assert issuer["spec"]["acme"]["solvers"] == [
        {"http01": {"gatewayHTTPRoute": {"parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shared", "namespace": "gateway-system"}]}}}
    ]


# --- DNS-01 and wildcard hosts -------------------------------------------------------------------------------------


def test_dns01_route53_solves_with_ambient_credentials_and_no_solver_pods(wildcard_dns01):
    (issuer,) = by_kind(wildcard_dns01, "Issuer")
    assert issuer["spec"]["acme"]["solvers"] == [{"dns01": {"route53": ROUTE53}}]
    assert "ingress-to-acme-solver" not in names(wildcard_dns01, "NetworkPolicy")
    role = "arn:aws:iam::123456789012:role/dns-manager"
    with_role = render(ingress_config(issuer={**ACME, "solver": {"dns01": {"route53": {**ROUTE53, "role": role}}}}))
    assert one(with_role, "Issuer")["spec"]["acme"]["solvers"] == [{"dns01": {"route53": {**ROUTE53, "role": role}}}]


def test_a_wildcard_host_gets_a_wildcard_certificate_listener_and_route(wildcard_dns01):
    certificates = {c["metadata"]["name"]: c["spec"] for c in by_kind(wildcard_dns01, "Certificate")}
    assert certificates["wildcard-example-org"]["dnsNames"] == ["*.example.org"]
    assert certificates["wildcard-example-org"]["secretName"] == "wildcard-example-org-tls"
    listeners = {l["name"]: l for l in one(wildcard_dns01, "Gateway")["spec"]["listeners"]}
    assert listeners["https-wildcard-example-org"]["hostname"] == "*.example.org"
    assert listeners["https-wildcard-example-org"]["tls"]["certificateRefs"][0]["name"] == "wildcard-example-org-tls"
    routes = {r["metadata"]["name"]: r["spec"] for r in by_kind(wildcard_dns01, "HTTPRoute")}
    assert routes["wildcard-example-org"]["hostnames"] == ["*.example.org"]
    assert "*.example.org" in routes["https-redirect"]["hostnames"]


def test_a_wildcard_host_in_ingress_mode_is_covered_by_tls(wildcard_ingress_mode):
    spec = one(wildcard_ingress_mode, "Ingress")["spec"]
    assert {"hosts": ["*.example.org"], "secretName": "wildcard-example-org-tls"} in spec["tls"]
    assert "*.example.org" in [rule["host"] for rule in spec["rules"]]
    stack_objects = [StackObject(urn=r.urn, type=r.type, name=r.name, obj=r.inputs) for r in wildcard_ingress_mode if r.is_kubernetes_object]
    assert ingress_tls_findings(stack_objects) == []


# --- HSTS ----------------------------------------------------------------------------------------------------------


def sts_values(route: dict) -> list[str | None]:
    """Per rule, the Strict-Transport-Security value its filters set (None when none does)."""
    values = []
    for rule in route["spec"]["rules"]:
        set_headers = [h for f in rule.get("filters", []) if f["type"] == "ResponseHeaderModifier" for h in f["responseHeaderModifier"]["set"]]
        values.append(next((h["value"] for h in set_headers if h["name"] == STS), None))
    return values


def test_every_https_rule_sets_hsts_by_default_and_the_redirect_does_not(wildcard_dns01):
    routes = {r["metadata"]["name"]: r for r in by_kind(wildcard_dns01, "HTTPRoute")}
    redirect = routes.pop("https-redirect")
    assert sts_values(redirect) == [None]  # browsers ignore HSTS over plain HTTP (RFC 6797, 8.1)
    assert [value for route in routes.values() for value in sts_values(route)] == ["max-age=31536000"] * 3


def test_hsts_max_age_and_directives_are_configurable(shared_gateway_cluster_issuer):
    assert set(v for r in by_kind(shared_gateway_cluster_issuer, "HTTPRoute") for v in sts_values(r)) == {"max-age=31536000"}
    resources = render(shared(issuer=CLUSTER_ISSUER, hsts={"maxAgeSeconds": 63072000, "includeSubDomains": True, "preload": True}))
    assert sts_values(one(resources, "HTTPRoute")) == ["max-age=63072000; includeSubDomains; preload"] * 2
    withdrawn = render(shared(issuer=CLUSTER_ISSUER, hsts={"maxAgeSeconds": 0}))
    assert sts_values(one(withdrawn, "HTTPRoute")) == ["max-age=0"] * 2


def test_ingress_mode_sets_hsts_through_the_controllers_annotations(wildcard_ingress_mode):
    annotations = one(wildcard_ingress_mode, "Ingress")["metadata"]["annotations"]
    assert annotations == {
        "nginx.org/client-max-body-size": "4m",  # the stack's own, kept
        "nginx.org/hsts": "true",
        "nginx.org/hsts-max-age": "63072000",
        "nginx.org/hsts-include-subdomains": "true",
        "haproxy-ingress.github.io/hsts": "true",
        "haproxy-ingress.github.io/hsts-max-age": "63072000",
        "haproxy-ingress.github.io/hsts-include-subdomains": "true",
        "haproxy-ingress.github.io/hsts-preload": "true",
    }
    defaults = one(render(ingress_config(mode="ingress", gatewayClassName=None, ingressClassName="haproxy")), "Ingress")["metadata"]["annotations"]
    assert {key: defaults[key] for key in ("haproxy-ingress.github.io/hsts-max-age", "haproxy-ingress.github.io/hsts-preload")} == {
        "haproxy-ingress.github.io/hsts-max-age": "31536000",
        "haproxy-ingress.github.io/hsts-preload": "false",
    }


# --- config errors -------------------------------------------------------------------------------------------------


BAD_INPUTS = [
    ("wildcard-with-http01", {"hosts": [SHOP, WILDCARD]}, ("hosts", 1, "host"), ["'*.example.org' is a wildcard", "DNS-01", "solver: {dns01: {route53"]),
    ("wildcard-with-local-ca", {"issuer": {"kind": "selfSigned"}, "hosts": [WILDCARD]}, ("hosts", 0, "host"), ["is a wildcard", "list the hosts one by one"]),
    ("wildcard-too-deep", {"issuer": ACME_DNS01, "hosts": [{**WILDCARD, "host": "*.*.example.org"}]}, ("hosts", 0, "host"), ["should match pattern"]),
    ("wildcard-slug-collision", {"issuer": ACME_DNS01, "hosts": [WILDCARD, {**WILDCARD, "host": "wildcard.example.org"}]}, (), ["same object name", "'wildcard'"]),
    ("gateway-ref-in-ingress-mode", {"mode": "ingress", "gatewayClassName": None, "ingressClassName": "nginx", "gatewayRef": SHARED_GATEWAY}, (), ["'gatewayRef'", "mode: gateway"]),
    ("gateway-ref-and-class", {"gatewayRef": SHARED_GATEWAY}, (), ["remove 'gatewayClassName'"]),
    ("gateway-ref-without-section", {"gatewayClassName": None, "gatewayRef": {"name": "shared", "namespace": "gateway-system"}}, ("gatewayRef", "sectionName"), ["Field required"]),
    ("no-gateway-at-all", {"gatewayClassName": None}, (), ["needs 'gatewayClassName'", "or 'gatewayRef'"]),
    ("no-issuer-without-shared-gateway", {"issuer": None}, (), ["'issuer' is missing", "only with 'gatewayRef'"]),
    ("cluster-issuer-without-name", {"issuer": {"kind": "clusterIssuer"}}, ("issuer",), ["'clusterIssuer' needs name"]),
    ("cluster-issuer-with-acme-fields", {"issuer": {**CLUSTER_ISSUER, "server": ACME["server"]}}, ("issuer",), ["'clusterIssuer' takes no 'server' or 'email'"]),
    ("cluster-issuer-with-solver", {"issuer": {**CLUSTER_ISSUER, "solver": {"dns01": {"route53": ROUTE53}}}}, ("issuer",), ["set on the ClusterIssuer by its owners"]),
    ("name-on-acme", {"issuer": {**ACME, "name": "letsencrypt-prod"}}, ("issuer",), ["'acme' takes no 'name'"]),
    ("dns01-on-local-ca", {"issuer": {"kind": "selfSigned", "solver": {"dns01": {"route53": ROUTE53}}}}, ("issuer",), ["'solver' is for kind 'acme'"]),
    ("route53-static-key", {"issuer": {**ACME, "solver": {"dns01": {"route53": {**ROUTE53, "accessKeyID": "AKIA..."}}}}},
     ("issuer", "solver", "dns01", "route53", "accessKeyID"), ["Extra inputs are not permitted"]),
    ("route53-without-zone", {"issuer": {**ACME, "solver": {"dns01": {"route53": {"region": "eu-west-1"}}}}},
     ("issuer", "solver", "dns01", "route53", "hostedZoneID"), ["Field required"]),
    ("route53-bad-role", {"issuer": {**ACME, "solver": {"dns01": {"route53": {**ROUTE53, "role": "dns-manager"}}}}},
     ("issuer", "solver", "dns01", "route53", "role"), ["should match pattern"]),
    ("hsts-preload-too-soon", {"hsts": {"preload": True}}, ("hsts",), ["includeSubDomains: true", "31536000"]),
    ("hsts-negative", {"hsts": {"maxAgeSeconds": -1}}, ("hsts", "maxAgeSeconds"), ["greater than or equal to 0"]),
    ("hsts-by-annotation", {"mode": "ingress", "gatewayClassName": None, "ingressClassName": "nginx", "annotations": {"nginx.org/hsts-max-age": "60"}},
     (), ["['nginx.org/hsts-max-age'] are set from 'hsts'"]),
]


@pytest.mark.parametrize("case_id, overrides, location, fragments", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_a_clear_config_error(case_id, overrides, location, fragments):
    with pytest.raises(ValidationError) as raised:
        ingress_config(**overrides)
    errors = [error for error in raised.value.errors() if error["loc"] == location]
    assert any(all(fragment in error["msg"] for fragment in fragments) for error in errors), raised.value.errors()


def test_a_wildcard_host_without_dns01_is_reported_at_the_host_in_the_stack_file():
    def wildcard_on_acme(values, secret_keys):
        values["ingress"]["hosts"][0]["host"] = "*.example.com"

    problems = problems_for(wildcard_on_acme, stack="staging")
    assert [p for p in problems if p.startswith("platform:ingress.hosts[0].host: '*.example.com' is a wildcard")], problems
