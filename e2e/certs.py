"""cert-manager on the e2e control plane: it issues what can be issued here, and judges every stack's objects.

cm-platform (e2e/go/cm-platform, built by e2e/toolchain.sh from the cert-manager module at the local add-on's
version) runs out of cluster, on 127.0.0.1 only:
- `webhook`: cert-manager's own validation of Certificates, Issuers and ClusterIssuers, registered by URL for the
  whole run: every stack's objects pass it at `pulumi up` (or the up fails), and a broken Certificate is refused.
- `controller`: the certificates, CertificateRequest (approver, selfSigned, CA) and Issuer/ClusterIssuer
  controllers. No network is needed for a selfSigned -> CA chain, so the local stack's Certificates are issued for
  real and `pulumi up` waits for them (components/readiness.py: Ready). Prod names the cluster owners'
  ClusterIssuer: the harness stands in for the owners with a CA ClusterIssuer of that name, so prod's Certificates
  are issued for real too (by a CA instead of Let's Encrypt).
- What cannot be issued here: staging's ACME Issuer (Let's Encrypt staging needs the internet, and HTTP-01 a data
  plane kwok does not have). For that stack the controllers are stopped and the harness writes the Ready status
  cert-manager would write (e2e/operators.py CONDITION_STAND_INS), saying so in the report; `pulumi up` still
  waits on it. For the other stacks those status writers leave cert-manager's kinds to cert-manager.
"""

from __future__ import annotations

import base64
import datetime
import subprocess
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from e2e import admission, operators, stacks
from e2e.kube import Kube
from e2e.processes import Processes

BINARY = "cm-platform"
CRD_GROUPS = ("cert-manager.io", "acme.cert-manager.io")  # bin/crds/<group>/<plural>.yaml: the module's deploy/crds
API_VERSION = "cert-manager.io/v1"
CLUSTER_RESOURCE_NAMESPACE = "cert-manager"
OWNERS_CA_SECRET = "e2e-cluster-owners-ca"
ISSUED_REASON = "Ready"  # what cert-manager's readiness controller writes; stand-ins write another reason
WEBHOOKS = [admission.Webhook("webhook.cert-manager.io", "/validate", "cert-manager.io", ["v1"], ["certificates", "issuers", "clusterissuers", "certificaterequests"])]

ACME_WHY = (
    "ACME cannot be issued here (no internet for the ACME server, no data plane for HTTP-01 under kwok): cert-manager's "
    "controllers are stopped for this stack and the harness writes the Ready condition cert-manager would write"
)
CERT_MANAGER_KINDS = ("Issuer", "ClusterIssuer", "Certificate")


def _crds(bin_dir: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for group in CRD_GROUPS for path in sorted((bin_dir / "crds" / group).glob("*.yaml"))]


def _owners_ca(name: str) -> dict[str, Any]:
    """The cluster owners' CA as a kubernetes.io/tls Secret: what a CA ClusterIssuer signs with."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"e2e stand-in for the cluster owners' {name}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    data = {"tls.crt": certificate.public_bytes(serialization.Encoding.PEM), "tls.key": pem_key}
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": OWNERS_CA_SECRET, "namespace": CLUSTER_RESOURCE_NAMESPACE},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }  # fmt: skip


class CertManager:
    def __init__(self, bin_dir: Path, work: Path, plane, processes: Processes):
        self.bin_dir, self.work, self.plane, self.processes = bin_dir, work, plane, processes
        self.kube: Kube = plane.kube
        self.controller: Optional[subprocess.Popen] = None
        self.controller_log: Optional[Path] = None
        self.webhook: Optional[admission.Server] = None

    def start(self) -> None:
        """The module's CRDs (CertificateRequest too, which the program never writes), then the webhook."""
        for crd in _crds(self.bin_dir):
            self.kube.apply(crd)
            self.kube.register_crd(crd)
        self.webhook = admission.serve(
            "cert-manager-webhook",
            lambda port, cert, key: [str(self.bin_dir / BINARY), "webhook", f"-listen=127.0.0.1:{port}", f"-cert={cert}", f"-key={key}"],
            self.work, self.processes,
        )  # fmt: skip
        admission.register(self.kube, "cert-manager-e2e", self.webhook, WEBHOOKS)

    def _controllers(self, running: bool) -> None:
        if running and self.controller is None:
            self.controller, self.controller_log = self.processes.start("cert-manager-controller", [
                str(self.bin_dir / BINARY), "controller", f"-kubeconfig={self.plane.kubeconfig}",
                f"-cluster-resource-namespace={CLUSTER_RESOURCE_NAMESPACE}",
            ])  # fmt: skip
        elif not running and self.controller is not None:
            self.processes.stop(self.controller)
            self.controller = None

    def prepare_stack(self, issuer: Optional[dict[str, Any]], stand_ins: Iterable[operators.StandIn]) -> tuple[list[operators.StandIn], str]:
        """Before a stack's `pulumi up`: cert-manager's controllers run when they can issue the stack's certificates
        (and the harness's status writers then leave cert-manager's kinds alone), else they are stopped and the
        writers stand in. Returns the stand-ins to run during the up and a note."""
        kind = (issuer or {}).get("kind")
        if kind == "acme":
            self._controllers(False)
            return list(stand_ins), f"certificates: {ACME_WHY}"
        self._controllers(True)
        kept = [s for s in stand_ins if s.kind not in CERT_MANAGER_KINDS]
        if kind == "clusterIssuer":
            self.kube.apply(_owners_ca(issuer["name"]))
            self.kube.apply({
                "apiVersion": API_VERSION, "kind": "ClusterIssuer", "metadata": {"name": issuer["name"]},
                "spec": {"ca": {"secretName": OWNERS_CA_SECRET}},
            })  # fmt: skip
            return kept, f"certificates: issued by cert-manager through the cluster owners' ClusterIssuer {issuer['name']}, a CA ClusterIssuer the harness stands in with"
        return kept, "certificates: issued by cert-manager's selfSigned and CA issuers"

    def check_stack(self, e2e, automation, namespace: str, issuer: Optional[dict[str, Any]], written: dict[str, str], run) -> None:
        """Report keys certificatesIssued (Certificates cert-manager issued and that are sound) and
        certManagerValidation (cert-manager's webhook judged every object and refuses a broken Certificate)."""

        def certificates() -> Optional[int]:
            if (issuer or {}).get("kind") == "acme":
                run.note(f"certificates: not issued here, status written by the harness for {sorted(k for k in written if k.split('/')[0] in CERT_MANAGER_KINDS)}")
                return None
            count, ok, notes = issued(self.kube, namespace)
            stood_in = [k for k in written if k.split("/")[0] in CERT_MANAGER_KINDS]
            state = [r for r in automation.export_stack().deployment["resources"] if (r.get("outputs") or {}).get("kind") == "Certificate"]
            awaited, awaited_notes = operators.custom_resources_awaited(state, ["Certificate"] if state else [])
            for note in notes + awaited_notes + [f"status written by the harness, not cert-manager: {stood_in}"] * bool(stood_in):
                run.note(note)
            if not (ok and awaited and not stood_in and count):
                raise AssertionError(f"{count} Certificates issued and sound; awaited by pulumi up: {awaited}")
            return count

        def validated() -> bool:
            ok, notes = validation(self.kube, namespace, self.webhook.log, lambda obj: stacks.refused_at_up(e2e, obj))
            for note in notes:
                run.note(note)
            return ok

        run.check("certificatesIssued", certificates)
        run.check("certManagerValidation", validated)


# --- checks after `pulumi up` --------------------------------------------------------------------------------------


def _ready(obj: dict[str, Any]) -> Optional[dict[str, Any]]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c.get("type") == "Ready" and c.get("status") == "True"), None)


def _certificate(secret: dict[str, Any], key: str = "tls.crt") -> Optional[x509.Certificate]:
    data = (secret.get("data") or {}).get(key)
    return x509.load_pem_x509_certificate(base64.b64decode(data)) if data else None


def _sans(certificate: x509.Certificate) -> list[str]:
    try:
        return sorted(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        return []


def issued(kube: Kube, namespace: str) -> tuple[int, bool, list[str]]:
    """(Certificates cert-manager issued, whether every Certificate is sound, notes). Sound: Ready, written by
    cert-manager (not a stand-in), its Secret a kubernetes.io/tls with exactly the spec's DNS names and its key
    algorithm, signed by its issuer's CA, labelled as `secretTemplate` says; every HTTPS listener's hostname (or
    every route's, on an owners' Gateway) is served by such a Secret."""
    notes, ok, count = [], True, 0
    served: dict[str, list[str]] = {}  # Secret name -> SANs
    for certificate in kube.list(API_VERSION, "Certificate", namespace):
        name, spec = certificate["metadata"]["name"], certificate["spec"]
        ready = _ready(certificate)
        if ready is None or ready.get("reason") != ISSUED_REASON:
            ok = False
            notes.append(f"Certificate {name}: not issued by cert-manager ({(ready or {}).get('reason', 'not Ready')})")
            continue
        secret = kube.get("v1", "Secret", spec["secretName"], namespace)
        tls = _certificate(secret or {})
        problems = []
        if secret is None or secret.get("type") != "kubernetes.io/tls" or tls is None:
            problems.append(f"Secret {spec['secretName']} is missing or not kubernetes.io/tls")
        else:
            if _sans(tls) != sorted(spec.get("dnsNames", [])):
                problems.append(f"SANs {_sans(tls)} != dnsNames {spec.get('dnsNames', [])}")
            if spec.get("privateKey", {}).get("algorithm") == "ECDSA" and not isinstance(tls.public_key(), ec.EllipticCurvePublicKey):
                problems.append("the key is not ECDSA")
            missing = {k: v for k, v in spec.get("secretTemplate", {}).get("labels", {}).items() if secret["metadata"].get("labels", {}).get(k) != v}
            if missing:
                problems.append(f"secretTemplate labels missing on the Secret: {missing}")
            ca = _certificate(secret, "ca.crt")
            if ca is not None and not spec.get("isCA"):
                try:
                    tls.verify_directly_issued_by(ca)
                except Exception as error:  # noqa: BLE001 - any failure (signature, issuer name, key type) is a wrong chain
                    problems.append(f"not signed by its issuer's CA ({type(error).__name__})")
            served[spec["secretName"]] = _sans(tls)
        if problems:
            ok = False
            notes.append(f"Certificate {name}: " + "; ".join(problems))
        else:
            count += 1
            issuer = tls.issuer.rfc4514_string()
            notes.append(f"Certificate {name}: issued by cert-manager ({issuer}), SANs {_sans(tls) or '(CA)'}, Secret {spec['secretName']}")
    for gateway in kube.list("gateway.networking.k8s.io/v1", "Gateway", namespace):
        for listener in gateway["spec"].get("listeners", []):
            if listener.get("protocol") != "HTTPS":
                continue
            refs = [r["name"] for r in listener.get("tls", {}).get("certificateRefs", [])]
            if not any(listener.get("hostname") in served.get(ref, []) for ref in refs):
                ok = False
                notes.append(f"Gateway {gateway['metadata']['name']} listener {listener['name']}: no issued Secret {refs} covers {listener.get('hostname')}")
            else:
                notes.append(f"Gateway listener {listener['name']} ({listener.get('hostname')}) serves Secret {refs} with that SAN")
    if not kube.list("gateway.networking.k8s.io/v1", "Gateway", namespace):
        for route in kube.list("gateway.networking.k8s.io/v1", "HTTPRoute", namespace):
            for host in route["spec"].get("hostnames", []):
                if not any(host in sans for sans in served.values()):
                    ok = False
                    notes.append(f"HTTPRoute {route['metadata']['name']}: no issued Secret covers {host}")
    return count, ok, notes


def broken_certificate(certificate: dict[str, Any]) -> dict[str, Any]:
    """A copy of a stack's Certificate the CRD schema accepts and cert-manager refuses: an ECDSA key of 100 bits."""
    spec = {**certificate["spec"], "privateKey": {"algorithm": "ECDSA", "size": 100}, "secretName": "e2e-refused-tls"}
    metadata = {"name": f"{certificate['metadata']['name']}-refused", "namespace": certificate["metadata"]["namespace"]}
    return {"apiVersion": API_VERSION, "kind": "Certificate", "metadata": metadata, "spec": spec}


def validation(kube: Kube, namespace: str, webhook_log: Path, refuse) -> tuple[bool, list[str]]:
    """Every cert-manager object of the stack was accepted by cert-manager's validation at `pulumi up` (its log names
    each), and a broken Certificate fails `pulumi up` with cert-manager's message."""
    log, notes, ok = webhook_log.read_text(errors="replace"), [], True
    objects = [o for kind in ("Certificate", "Issuer") for o in kube.list(API_VERSION, kind, namespace)]
    for obj in objects:
        judged = f'verdict="accepted" kind="{obj["kind"]}" object="{namespace}/{obj["metadata"]["name"]}"' in log
        ok &= judged
        notes.append(f"{obj['kind']} {obj['metadata']['name']}: {'accepted by' if judged else 'NOT seen by'} cert-manager's validation at pulumi up")
    certificates = [o for o in objects if o["kind"] == "Certificate"]
    if certificates:
        refused, message = refuse(broken_certificate(certificates[0]))
        judged = refused and "denied the request" in message and "privateKey.size" in message
        ok &= judged
        notes.append(f"a Certificate with an ECDSA key of 100 bits: {'refused at pulumi up: ' if judged else 'NOT refused as expected: '}{stacks.denial(message)}")
    return ok and bool(objects), notes
