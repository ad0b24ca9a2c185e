"""The pieces of e2e/alerts.py, e2e/certs.py, e2e/admission.py and e2e/judges.py that need no control plane and no
Go binary: pins, toolchain steps, the broken copies that must be refused, the certificate checks, the webhook
registration. promtool, po-webhook and cm-platform themselves run in `make e2e`."""

from __future__ import annotations

import base64
import datetime
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.addons import CERT_MANAGER
from e2e import admission, alerts, certs, judges, operators, run, stacks

E2E_DIR = Path(run.__file__).resolve().parent
RULE = {
    "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "platform-alerts", "namespace": "platform"},
    "spec": {"groups": [{"name": "g", "rules": [
        {"alert": "A", "expr": "up == 0", "for": "5m", "labels": {"severity": "warning"}, "annotations": {"summary": "{{ $labels.pod }} down"}},
        {"alert": "B", "expr": "vector(1)", "for": "1h", "labels": {"severity": "critical"}, "annotations": {"summary": "b"}},
    ]}]},
}  # fmt: skip


def test_cert_manager_is_built_at_the_local_add_ons_version():
    assert run.pins()["CERT_MANAGER_VERSION"] == CERT_MANAGER.app_version


def test_promtool_is_the_prometheus_release_of_its_module_version():
    pins = run.pins()
    # github.com/prometheus/prometheus v0.3XY.Z is Prometheus 3.XY.Z.
    major_minor = re.fullmatch(r"v0\.3(\d\d)\.(\d+)", pins["PROMETHEUS_MODULE_VERSION"])
    assert major_minor and pins["PROMETHEUS_VERSION"] == f"3.{int(major_minor.group(1))}.{major_minor.group(2)}"


def test_the_toolchain_builds_each_tool_keyed_by_its_pins_and_our_source():
    script = (E2E_DIR / "toolchain.sh").read_text()
    steps = {name: (pins, build) for name, pins, build in re.findall(r'^\s*"([\w.-]+)\|([^"]*)\|(\w+)"', script, re.MULTILINE)}
    assert steps[alerts.PROMTOOL] == ("$PROMETHEUS_MODULE_VERSION $PROMETHEUS_VERSION", "build_promtool")
    assert steps[alerts.RULE_WEBHOOK] == ("$PROMETHEUS_OPERATOR_VERSION $(source_hash po-webhook)", "build_po_webhook")
    assert steps[certs.BINARY] == ("$CERT_MANAGER_VERSION $(source_hash cm-platform)", "build_cert_manager")
    for program in (alerts.RULE_WEBHOOK, certs.BINARY):
        source = (E2E_DIR / "go" / program / "main.go").read_text()
        assert source.startswith(f"// {program}: ") and "package main" in source
        # Like every server the e2e starts: on 127.0.0.1 unless told otherwise.
        assert '"listen", "127.0.0.1:0"' in source


def test_broken_copies_carry_exactly_one_fault():
    broken = alerts.broken_rule(RULE)
    assert broken["metadata"] == {"name": "platform-alerts-broken", "namespace": "platform"}
    assert broken["spec"]["groups"][0]["rules"][0]["expr"] == "up =="
    assert broken["spec"]["groups"][0]["rules"][1] == RULE["spec"]["groups"][0]["rules"][1]
    assert RULE["spec"]["groups"][0]["rules"][0]["expr"] == "up == 0"  # the original is untouched
    routing = {"apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig", "metadata": {"name": "r", "namespace": "platform"},
               "spec": {"route": {"receiver": "unrouted", "routes": [{"receiver": "pager"}]}, "receivers": [{"name": "unrouted"}, {"name": "pager"}]}}  # fmt: skip
    assert alerts.misrouted(routing)["spec"]["route"]["routes"] == [{"receiver": "nobody"}]
    certificate = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "www", "namespace": "platform"},
                   "spec": {"secretName": "www-tls", "dnsNames": ["www.example.com"], "issuerRef": {"name": "x"}}}  # fmt: skip
    refused = certs.broken_certificate(certificate)
    assert refused["spec"]["privateKey"] == {"algorithm": "ECDSA", "size": 100} and refused["spec"]["dnsNames"] == ["www.example.com"]
    assert refused["spec"]["secretName"] != "www-tls"  # never touches the real certificate's Secret


def test_the_mutants_the_alert_tests_must_catch():
    groups = RULE["spec"]["groups"]
    assert [r["for"] for r in alerts._doubled_for(groups)[0]["rules"]] == ["10m", "120m"]
    assert alerts._broken_template(groups)[0]["rules"][0]["annotations"]["summary"] == "{{ $labels.pod } down"
    assert groups[0]["rules"][0]["for"] == "5m"


def test_a_missing_promtool_fails_the_alert_tests_with_a_note(tmp_path):
    result = judges.alert_tests(tmp_path / "no-promtool", tmp_path / "no-cluster", ["local"], tmp_path / "alerts")
    assert result["alertsFireAsDesigned"] is False and result["alertTestNotes"]


class FakeKube:
    def __init__(self, objects):
        self.objects, self.applied, self.kinds = objects, [], {}

    def list(self, api_version, kind, namespace=None):
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, api_version, kind, name, namespace=None):
        return next((o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name), None)

    def apply(self, obj):
        self.applied.append(obj)
        return obj


def _pem(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.PEM)).decode()


def _certificate(subject: str, issuer_key, issuer_name: str, sans: list[str], ca: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)])).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )  # fmt: skip
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256()), key


def local_chain(host_sans: list[str], listener_host: str) -> list[dict]:
    ca, ca_key = _certificate("platform local CA", None, "platform local CA", [], ca=True)
    host, _ = _certificate(host_sans[0], ca_key, "platform local CA", host_sans)
    ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}]}
    labels = {"app.kubernetes.io/part-of": "platform"}
    return [
        {"kind": "Certificate", "metadata": {"name": "local-ca"}, "spec": {"isCA": True, "secretName": "local-ca", "privateKey": {"algorithm": "ECDSA"}}, "status": ready},
        {"kind": "Certificate", "metadata": {"name": "host"}, "status": ready,
         "spec": {"secretName": "host-tls", "dnsNames": ["platform.localtest.me"], "privateKey": {"algorithm": "ECDSA"}, "secretTemplate": {"labels": labels}}},
        {"kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": "local-ca"}, "data": {"tls.crt": _pem(ca), "ca.crt": _pem(ca)}},
        {"kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": "host-tls", "labels": labels}, "data": {"tls.crt": _pem(host), "ca.crt": _pem(ca)}},
        {"kind": "Gateway", "metadata": {"name": "public"}, "spec": {"listeners": [
            {"name": "https-platform", "protocol": "HTTPS", "hostname": listener_host, "tls": {"certificateRefs": [{"name": "host-tls"}]}},
            {"name": "http", "protocol": "HTTP"}]}},
    ]  # fmt: skip


def test_issued_certificates_match_their_spec_their_ca_and_the_listeners():
    count, ok, notes = certs.issued(FakeKube(local_chain(["platform.localtest.me"], "platform.localtest.me")), "platform")
    assert (count, ok) == (2, True), notes
    assert any("Gateway listener https-platform (platform.localtest.me) serves Secret ['host-tls']" in n for n in notes)


def test_wrong_sans_and_an_uncovered_listener_are_reported():
    count, ok, notes = certs.issued(FakeKube(local_chain(["other.localtest.me"], "platform.localtest.me")), "platform")
    assert not ok and count == 1
    assert any("SANs ['other.localtest.me'] != dnsNames ['platform.localtest.me']" in n for n in notes)
    assert any("no issued Secret ['host-tls'] covers platform.localtest.me" in n for n in notes)


def test_a_certificate_made_ready_by_a_stand_in_is_not_issued():
    objects = local_chain(["platform.localtest.me"], "platform.localtest.me")
    objects[1]["status"]["conditions"][0]["reason"] = "E2EStandIn"
    count, ok, notes = certs.issued(FakeKube(objects), "platform")
    assert not ok and any("not issued by cert-manager (E2EStandIn)" in n for n in notes)


class FakeProcesses:
    def __init__(self):
        self.started, self.stopped = [], []

    def start(self, name, argv, env=None, cwd=None):
        self.started.append(name)
        return object(), Path("/dev/null")

    def stop(self, process):
        self.stopped.append(process)


def test_cert_manager_issues_where_it_can_and_the_stand_ins_cover_acme_only(tmp_path):
    plane = type("Plane", (), {"kube": FakeKube([]), "kubeconfig": tmp_path / "kubeconfig"})()
    processes = FakeProcesses()
    manager = certs.CertManager(tmp_path, tmp_path, plane, processes)
    kinds = lambda stand_ins: sorted(s.kind for s in stand_ins)  # noqa: E731
    kept, _ = manager.prepare_stack({"kind": "selfSigned"}, operators.CONDITION_STAND_INS)
    assert "Certificate" not in kinds(kept) and "Issuer" not in kinds(kept) and processes.started == ["cert-manager-controller"]
    kept, note = manager.prepare_stack({"kind": "acme", "server": "https://acme.example"}, operators.CONDITION_STAND_INS)
    assert {"Certificate", "Issuer"} <= set(kinds(kept)) and len(processes.stopped) == 1 and "ACME cannot be issued here" in note
    kept, _ = manager.prepare_stack({"kind": "clusterIssuer", "name": "letsencrypt-prod"}, operators.CONDITION_STAND_INS)
    issuer = plane.kube.applied[-1]
    assert issuer["kind"] == "ClusterIssuer" and issuer["metadata"]["name"] == "letsencrypt-prod"
    assert issuer["spec"] == {"ca": {"secretName": certs.OWNERS_CA_SECRET}}
    secret = plane.kube.applied[-2]
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    assert secret["metadata"]["namespace"] == certs.CLUSTER_RESOURCE_NAMESPACE and ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_webhooks_are_registered_by_url_with_the_ca_and_refusals_fail(tmp_path):
    kube = FakeKube([])
    server = admission.Server("https://127.0.0.1:4443", b"-----BEGIN CERTIFICATE-----\n", tmp_path / "log")
    configuration = admission.register(kube, "prometheus-operator-e2e", server, alerts.RULE_WEBHOOKS)
    rules, routes = configuration["webhooks"]
    assert rules["clientConfig"] == {"url": "https://127.0.0.1:4443/admission-prometheusrules/validate", "caBundle": base64.b64encode(server.ca_pem).decode()}
    assert rules["rules"][0]["resources"] == ["prometheusrules"] and routes["rules"][0]["apiVersions"] == ["v1alpha1"]
    assert {w["failurePolicy"] for w in configuration["webhooks"]} == {"Fail"}


def test_the_denial_line_is_found_in_the_clis_output():
    message = "+  kubernetes:x creating (0s) Retry #0; creation failed: admission webhook \"x\" denied the request: Rules are not valid: boom\nmore"
    assert stacks.denial(message) == 'admission webhook "x" denied the request: Rules are not valid: boom'
