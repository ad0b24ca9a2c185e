"""Ingress on its own (both modes, both issuers) and in every shipped stack: TLS always, only the controller gets in."""

from __future__ import annotations

import pytest

from components.ingress import Ingress, IngressArgs
from policies.stack_rules import StackObject, ingress_tls_findings
from components.ingress_config import IngressConfig, gateway_duration_ms
from tests.helpers import by_kind, one, register, unwrap
from tools import engine, schemas

PORTS = {"web": 8080, "api": 8081, "admin": 9000}
SELF_SIGNED = {"kind": "selfSigned"}
ACME = {"kind": "acme", "server": "https://acme-staging-v02.api.letsencrypt.org/directory", "email": "ops@example.org"}


def ingress_config(**overrides) -> IngressConfig:
    fields = {
        "mode": "gateway",
        "gatewayClassName": "eg",
        "controllerNamespace": "envoy-gateway-system",
        "issuer": SELF_SIGNED,
        "hosts": [
            {"host": "shop.example.org", "routes": [{"path": "/", "service": "web"}, {"path": "/api", "service": "api"}]},
            {"host": "admin.example.org", "tlsSecretName": "admin-cert", "routes": [{"path": "/", "service": "admin"}]},
        ],
        **overrides,
    }
    return IngressConfig.model_validate(fields)


def render(config: IngressConfig):
    return register(lambda: Ingress("edge", IngressArgs(config=config, namespace="apps", service_ports=PORTS)))


@pytest.fixture(scope="module")
def gateway_self_signed():
    return render(ingress_config())


@pytest.fixture(scope="module")
def gateway_acme():
    return render(ingress_config(issuer=ACME))


@pytest.fixture(scope="module")
def ingress_mode():
    return render(
        ingress_config(
            mode="ingress",
            gatewayClassName=None,
            ingressClassName="traefik",
            issuer=ACME,
            annotations={"traefik.ingress.kubernetes.io/router.middlewares": "apps-limits@kubernetescrd"},
        )
    )


ALL_RENDERINGS = ["gateway_self_signed", "gateway_acme", "ingress_mode"]


def objects(resources) -> list[dict]:
    return [unwrap(r.inputs) for r in resources if r.is_kubernetes_object]


def stack_objects(resources) -> list[StackObject]:
    return [StackObject(urn=r.urn, type=r.type, name=r.name, obj=r.inputs) for r in resources if r.is_kubernetes_object]


@pytest.mark.parametrize("rendering", ALL_RENDERINGS)
def test_every_object_is_schema_valid_and_parented(rendering, request):
    resources = request.getfixturevalue(rendering)
    (component,) = [r for r in resources if r.type == "platform:ingress:Ingress"]
    assert all(r.parent == component.urn for r in resources if r is not component)
    rendered = objects(resources)
    assert rendered and all(obj["metadata"]["namespace"] == "apps" for obj in rendered)
    assert schemas.validate_all(rendered) == []


@pytest.mark.parametrize("rendering", ALL_RENDERINGS)
def test_every_host_gets_its_own_certificate(rendering, request):
    resources = request.getfixturevalue(rendering)
    issuers = {obj["metadata"]["name"]: obj["spec"] for obj in by_kind(resources, "Issuer")}
    certificates = {
        obj["spec"]["dnsNames"][0]: obj["spec"] for obj in by_kind(resources, "Certificate") if not obj["spec"].get("isCA")
    }
    assert set(certificates) == {"shop.example.org", "admin.example.org"}
    assert certificates["admin.example.org"]["secretName"] == "admin-cert"
    assert certificates["shop.example.org"]["secretName"] == "shop-example-org-tls"
    for certificate in certificates.values():
        assert certificate["issuerRef"]["kind"] == "Issuer" and certificate["issuerRef"]["name"] in issuers


def test_self_signed_means_a_local_ca(gateway_self_signed):
    issuers = {obj["metadata"]["name"]: obj["spec"] for obj in by_kind(gateway_self_signed, "Issuer")}
    assert issuers == {"selfsigned-bootstrap": {"selfSigned": {}}, "local-ca": {"ca": {"secretName": "local-ca"}}}
    (ca,) = [obj["spec"] for obj in by_kind(gateway_self_signed, "Certificate") if obj["spec"].get("isCA")]
    assert ca["issuerRef"]["name"] == "selfsigned-bootstrap" and ca["secretName"] == "local-ca"
    hosts = [obj["spec"] for obj in by_kind(gateway_self_signed, "Certificate") if not obj["spec"].get("isCA")]
    assert {host["issuerRef"]["name"] for host in hosts} == {"local-ca"}
    # No ACME here, so no solver pods to let in.
    assert "ingress-to-acme-solver" not in {p["metadata"]["name"] for p in by_kind(gateway_self_signed, "NetworkPolicy")}


def test_acme_solves_http01_through_the_gateways_http_listener(gateway_acme):
    (issuer,) = by_kind(gateway_acme, "Issuer")
    acme = issuer["spec"]["acme"]
    assert acme["server"] == ACME["server"] and acme["email"] == ACME["email"]
    assert acme["privateKeySecretRef"] == {"name": "acme-account-key"}
    (solver,) = acme["solvers"]
    assert solver["http01"]["gatewayHTTPRoute"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "sectionName": "http"}
    ]


def test_acme_in_ingress_mode_solves_through_the_ingress_class(ingress_mode):
    (issuer,) = by_kind(ingress_mode, "Issuer")
    assert issuer["spec"]["acme"]["solvers"] == [{"http01": {"ingress": {"ingressClassName": "traefik"}}}]


def test_gateway_serves_each_host_over_https_only(gateway_self_signed):
    gateway = one(gateway_self_signed, "Gateway")["spec"]
    assert gateway["gatewayClassName"] == "eg"
    listeners = {listener["name"]: listener for listener in gateway["listeners"]}
    certificates = {obj["spec"]["dnsNames"][0]: obj["spec"]["secretName"] for obj in by_kind(gateway_self_signed, "Certificate") if not obj["spec"].get("isCA")}
    https = [listener for listener in listeners.values() if listener["protocol"] == "HTTPS"]
    assert {listener["hostname"] for listener in https} == set(certificates)
    for listener in https:
        assert listener["port"] == 443
        assert listener["tls"]["mode"] == "Terminate"
        assert [ref["name"] for ref in listener["tls"]["certificateRefs"]] == [certificates[listener["hostname"]]]
    assert [name for name, listener in listeners.items() if listener["protocol"] == "HTTP"] == ["http"]
    assert listeners["http"]["port"] == 80


def test_routes_attach_to_https_listeners_and_split_by_path(gateway_self_signed):
    listeners = {l["name"]: l for l in one(gateway_self_signed, "Gateway")["spec"]["listeners"]}
    routes = {route["metadata"]["name"]: route["spec"] for route in by_kind(gateway_self_signed, "HTTPRoute")}
    shop = routes["shop-example-org"]
    assert shop["hostnames"] == ["shop.example.org"]
    (parent,) = shop["parentRefs"]
    assert listeners[parent["sectionName"]]["protocol"] == "HTTPS" and listeners[parent["sectionName"]]["hostname"] == "shop.example.org"
    backends = {rule["matches"][0]["path"]["value"]: rule["backendRefs"] for rule in shop["rules"]}
    assert backends == {
        "/api": [{"group": "", "kind": "Service", "name": "api", "port": 8081}],
        "/": [{"group": "", "kind": "Service", "name": "web", "port": 8080}],
    }
    assert all(rule["matches"][0]["path"]["type"] == "PathPrefix" for rule in shop["rules"])
    assert routes["admin-example-org"]["rules"][0]["backendRefs"][0] == {"group": "", "kind": "Service", "name": "admin", "port": 9000}


def test_every_route_rule_has_request_limits(gateway_self_signed):
    for route in by_kind(gateway_self_signed, "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            if "backendRefs" not in rule:
                continue
            timeouts = rule["timeouts"]
            # The CRD's CEL rule (not run by offline schema validation): a backend try fits inside the request.
            assert 0 < gateway_duration_ms(timeouts["backendRequest"]) <= gateway_duration_ms(timeouts["request"])
    custom = render(ingress_config(timeouts={"request": "1m", "backendRequest": "45s"}))
    (rule, *_) = [r for route in by_kind(custom, "HTTPRoute") for r in route["spec"]["rules"] if "backendRefs" in r]
    assert rule["timeouts"] == {"request": "1m", "backendRequest": "45s"}


def test_plain_http_only_redirects_to_https(gateway_self_signed):
    (redirect,) = [r["spec"] for r in by_kind(gateway_self_signed, "HTTPRoute") if r["metadata"]["name"] == "https-redirect"]
    assert redirect["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "sectionName": "http"}]
    assert sorted(redirect["hostnames"]) == ["admin.example.org", "shop.example.org"]
    assert redirect["rules"] == [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}]


@pytest.mark.parametrize("rendering", ALL_RENDERINGS)
def test_the_policy_packs_tls_rule_agrees(rendering, request):
    assert ingress_tls_findings(stack_objects(request.getfixturevalue(rendering))) == []


def test_ingress_mode_covers_every_host_with_tls(ingress_mode):
    assert by_kind(ingress_mode, "Gateway") == [] and by_kind(ingress_mode, "HTTPRoute") == []
    ingress = one(ingress_mode, "Ingress")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "traefik"
    # The stack's own annotations stay, next to the HSTS ones (tests/test_ingress_shared.py).
    assert ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"] == "apps-limits@kubernetescrd"
    tls = {host: entry["secretName"] for entry in spec["tls"] for host in entry["hosts"]}
    assert tls == {"shop.example.org": "shop-example-org-tls", "admin.example.org": "admin-cert"}
    rules = {rule["host"]: rule["http"]["paths"] for rule in spec["rules"]}
    assert set(rules) == set(tls)
    assert [(p["path"], p["pathType"], p["backend"]["service"]) for p in rules["shop.example.org"]] == [
        ("/api", "Prefix", {"name": "api", "port": {"number": 8081}}),
        ("/", "Prefix", {"name": "web", "port": {"number": 8080}}),
    ]


@pytest.mark.parametrize("rendering", ALL_RENDERINGS)
def test_only_the_controller_namespace_reaches_the_routed_services(rendering, request):
    resources = request.getfixturevalue(rendering)
    policies = {p["metadata"]["name"]: p["spec"] for p in by_kind(resources, "NetworkPolicy")}
    controller = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}}}
    for service, port in PORTS.items():
        spec = policies.pop(f"ingress-to-{service}")
        assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": service}}
        assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec
        assert spec["ingress"] == [{"from": [controller], "ports": [{"protocol": "TCP", "port": port}]}]
    if "acme" in rendering or rendering == "ingress_mode":
        solver = policies.pop("ingress-to-acme-solver")
        assert solver["podSelector"] == {"matchLabels": {"acme.cert-manager.io/http01-solver": "true"}}
        assert solver["ingress"] == [{"from": [controller], "ports": [{"protocol": "TCP", "port": 8089}]}]
    assert policies == {}


def test_controller_pod_labels_narrow_the_peer():
    resources = render(ingress_config(controllerPodLabels={"app.kubernetes.io/name": "envoy"}))
    spec = [p["spec"] for p in by_kind(resources, "NetworkPolicy") if p["metadata"]["name"] == "ingress-to-web"][0]
    assert spec["ingress"][0]["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "envoy-gateway-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "envoy"}},
        }
    ]


def test_a_route_to_a_service_without_a_port_is_refused():
    config = ingress_config(hosts=[{"host": "x.example.org", "routes": [{"path": "/", "service": "ghost"}]}])
    with pytest.raises(Exception, match="ghost"):
        render(config)


# --- the shipped stacks ------------------------------------------------------------------------------------------


EXPECTED_HOSTS = {"local": "platform.localtest.me", "staging": "staging.example.com", "prod": "www.example.com"}


def shipped_ingress(stack: str) -> IngressConfig:
    return IngressConfig.model_validate(engine.read_stack_file(stack)["config"]["platform:ingress"])


def test_every_public_host_has_tls_in_every_stack(stack_rendering):
    stack = stack_rendering.stack
    config = shipped_ingress(stack)
    rendered = objects(stack_rendering.resources)
    gateways = [o for o in rendered if o["kind"] == "Gateway"]
    routes = [o for o in rendered if o["kind"] == "HTTPRoute"]
    certificates = {o["spec"]["secretName"]: o["spec"] for o in rendered if o["kind"] == "Certificate"}
    public_hosts = {host for route in routes for host in route["spec"]["hostnames"]}
    assert public_hosts == {EXPECTED_HOSTS[stack]}
    if config.gateway_ref is None:
        assert len(gateways) == 1
        https = {l["hostname"]: l for l in gateways[0]["spec"]["listeners"] if l["protocol"] == "HTTPS"}
        for host in public_hosts:
            secret = https[host]["tls"]["certificateRefs"][0]["name"]
            assert host in certificates[secret]["dnsNames"]
    else:
        # A shipped stack on a shared Gateway still issues its certificate (a stack leaving TLS to the Gateway's
        # owners could not be checked here): the owners' listener serves it through a grant for exactly its Secret.
        assert gateways == []
        ref = config.gateway_ref
        parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": ref.name, "namespace": ref.namespace, "sectionName": ref.section_name}
        assert [route["spec"]["parentRefs"] for route in routes] == [[parent]]
        granted = {to["name"] for o in rendered if o["kind"] == "ReferenceGrant" for to in o["spec"]["to"]}
        assert granted == set(certificates)
        assert {name for certificate in certificates.values() for name in certificate["dnsNames"]} == public_hosts
    assert ingress_tls_findings(stack_objects(stack_rendering.resources)) == []
    assert stack_rendering.outputs["urls"] == {EXPECTED_HOSTS[stack]: f"https://{EXPECTED_HOSTS[stack]}/"}


def test_each_stacks_certificates_come_from_an_issuer_its_environment_trusts(stack_rendering):
    stack = stack_rendering.stack
    issuer = shipped_ingress(stack).issuer
    rendered = objects(stack_rendering.resources)
    issuers = {o["metadata"]["name"]: o["spec"] for o in rendered if o["kind"] == "Issuer"}
    host_refs = [o["spec"]["issuerRef"] for o in rendered if o["kind"] == "Certificate" and not o["spec"].get("isCA")]
    assert host_refs
    if stack == "local":
        assert set(issuers) == {"selfsigned-bootstrap", "local-ca"}
        assert host_refs == [{"group": "cert-manager.io", "kind": "Issuer", "name": "local-ca"}]
    elif issuer.kind == "clusterIssuer":
        # The cluster owners' issuer: which CA it asks is theirs to get right; the stack makes no issuer.
        assert issuers == {}
        assert host_refs == [{"group": "cert-manager.io", "kind": "ClusterIssuer", "name": issuer.name}]
    else:
        assert set(issuers) == {"acme"} and host_refs == [{"group": "cert-manager.io", "kind": "Issuer", "name": "acme"}]
        server = issuers["acme"]["acme"]["server"]
        expected = {"staging": "https://acme-staging-v02.api.letsencrypt.org/directory", "prod": "https://acme-v02.api.letsencrypt.org/directory"}
        assert server == expected[stack]


def test_staging_keeps_its_own_gateway(rendered):
    gateways = [o for o in objects(rendered["staging"].resources) if o["kind"] == "Gateway"]
    assert [g["metadata"]["name"] for g in gateways] == ["public"]


def test_prod_attaches_to_the_cluster_owners_gateway_with_their_cluster_issuer(rendered):
    prod = objects(rendered["prod"].resources)
    assert [o for o in prod if o["kind"] in ("Gateway", "Issuer")] == []
    routes = [o for o in prod if o["kind"] == "HTTPRoute"]
    assert routes and all(ref.get("namespace") not in (None, "platform") for r in routes for ref in r["spec"]["parentRefs"])
    assert {o["spec"]["issuerRef"]["kind"] for o in prod if o["kind"] == "Certificate"} == {"ClusterIssuer"}


def test_every_stack_routes_root_to_web_and_api_to_api(stack_rendering):
    (route,) = [o for o in objects(stack_rendering.resources) if o["kind"] == "HTTPRoute" and o["metadata"]["name"] != "https-redirect"]
    backends = {rule["matches"][0]["path"]["value"]: rule["backendRefs"][0]["name"] for rule in route["spec"]["rules"]}
    assert backends == {"/": "web", "/api": "api"}
