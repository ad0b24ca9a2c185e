"""CloudNativePG and its Barman Cloud plugin on the e2e control plane, and what they make of each stack's objects.

Both are built by e2e/toolchain.sh from their Go modules at the pins of e2e/pins.env (the versions the components
deploy) and run out of cluster, on 127.0.0.1 only, stopped with the control plane:
- the plugin first (`manager operator --plugin-path DIR`: a unix socket, no TCP server), because the operator
  registers the plugins it finds in PLUGIN_SOCKET_DIR once, at start-up;
- the operator (`manager controller`) with WEBHOOK_CERT_DIR holding a serving certificate the harness signs with
  its own CA (so it manages no PKI of its own), and a working directory holding `operator/manager_<arch>` (it looks
  its own binary up there and refuses to reconcile without it);
- the module's webhook configurations, registered by `clientConfig.url` on 127.0.0.1 with the harness CA as
  `caBundle`: the API server asks the operator's webhooks about every Cluster, Pooler, ScheduledBackup, ... as on
  a real cluster, so an invalid one fails `pulumi up` with the webhook's message.
Before each stack's `pulumi up` the harness makes the StorageClasses its Clusters name and static PVs for them (no
provisioner runs here). During `pulumi up` `StandIns` writes the status that no controller can write here (see
there); afterwards the checks read the pods the operators made and the state `pulumi up` recorded.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from e2e.kube import ApiError, Kube
from e2e.processes import Processes, free_port, wait_until
from e2e.stacks import denial, refused_at_up

CNPG_BINARY = "cnpg-manager"
BARMAN_CLOUD_BINARY = "barman-cloud-manager"
WEBHOOKS_FILE = "cnpg-webhooks.yaml"  # the module's config/webhook/manifests.yaml, copied by the toolchain
OPERATOR_NAMESPACE = "cnpg-system"
PLUGIN_NAME = "barman-cloud.cloudnative-pg.io"
DEFAULT_STORAGE_CLASS = "e2e-default"
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
LIMIT_RANGER_ANNOTATION = "kubernetes.io/limit-ranger"  # the LimitRanger admission plugin filled a container in

EXTRA_KINDS = {
    ("storage.k8s.io/v1", "StorageClass"): ("storageclasses", False),
    ("v1", "PersistentVolume"): ("persistentvolumes", False),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "Event"): ("events", True),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): ("mutatingwebhookconfigurations", False),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): ("validatingwebhookconfigurations", False),
}


def go_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


# --- PKI and webhooks ------------------------------------------------------------------------------------------


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def webhook_pki(directory: Path) -> bytes:
    """A CA and a serving certificate for 127.0.0.1 signed by it, as the operator reads them from WEBHOOK_CERT_DIR
    (apiserver.crt, apiserver.key). Returns the CA certificate (PEM): the webhooks' caBundle."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "platform e2e webhook CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    serving = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    (directory / "apiserver.crt").write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    (directory / "apiserver.key").write_bytes(_pem(key))
    (directory / "ca.crt").write_bytes(ca_pem)
    return ca_pem


def webhook_configurations(manifests: str, port: int, ca_pem: bytes) -> list[dict[str, Any]]:
    """The module's webhook configurations, each webhook pointed at 127.0.0.1:port by URL (not a Service)."""
    configurations = []
    for document in yaml.safe_load_all(manifests):
        if not document:
            continue
        document["metadata"] = {"name": f"cnpg-{document['metadata']['name']}"}
        for webhook in document["webhooks"]:
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": base64.b64encode(ca_pem).decode()}
        configurations.append(document)
    return configurations


# --- storage ---------------------------------------------------------------------------------------------------


def storage_objects(stack: str, clusters: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """StorageClasses the Clusters name (a default one for those that name none) and enough static PVs for every
    instance's volumes, and for every claim a StatefulSet's pods make (a cache's data nodes): nothing provisions volumes
    here, and the scheduler places no pod with an unbound claim."""
    needed: dict[str, int] = {}
    for statefulset in [c for c in clusters if c.get("kind") == "StatefulSet"]:
        for claim in statefulset["spec"].get("volumeClaimTemplates", []):
            storage_class = claim["spec"].get("storageClassName") or DEFAULT_STORAGE_CLASS
            needed[storage_class] = needed.get(storage_class, 0) + int(statefulset["spec"].get("replicas", 1))
    for cluster in [c for c in clusters if c.get("kind") != "StatefulSet"]:
        spec = cluster["spec"]
        for volume in ("storage", "walStorage"):
            if volume in spec:
                storage_class = spec[volume].get("storageClass") or DEFAULT_STORAGE_CLASS
                needed[storage_class] = needed.get(storage_class, 0) + int(spec.get("instances", 1))
    objects: list[dict[str, Any]] = []
    for storage_class, count in sorted(needed.items()):
        annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if storage_class == DEFAULT_STORAGE_CLASS else {}
        objects.append({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": storage_class, "annotations": annotations},
            "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate", "reclaimPolicy": "Delete",
        })  # fmt: skip
        for index in range(count):
            name = f"e2e-{stack}-{storage_class}-{index}"
            objects.append({
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                "spec": {
                    "capacity": {"storage": "10Ti"}, "accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                    "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/nonexistent/e2e/{name}"},
                },
            })  # fmt: skip
    return objects


# --- the operators ---------------------------------------------------------------------------------------------


@dataclass
class Operators:
    kube: Kube
    log: Path  # the operator's log: validation problems are read from it
    versions: dict[str, str]


def start(bin_dir: Path, work: Path, plane, processes: Processes, versions: dict[str, str]) -> Operators:
    """Starts the plugin, then the operator, and registers the operator's webhooks. Returns when both serve."""
    kube: Kube = plane.kube
    kube.kinds.update(EXTRA_KINDS)
    env = {"KUBECONFIG": str(plane.kubeconfig)}

    sockets = work / "plugins"
    sockets.mkdir(parents=True, exist_ok=True)
    plugin, plugin_log = processes.start("barman-cloud-plugin", [
        str(bin_dir / BARMAN_CLOUD_BINARY), "operator", f"--plugin-path={sockets}", "--leader-elect=false",
        "--metrics-bind-address=0", f"--health-probe-bind-address=127.0.0.1:{free_port()}",
    ], env={**env, "SIDECAR_IMAGE": f"ghcr.io/cloudnative-pg/plugin-barman-cloud-sidecar:{versions['barmanCloud']}"})  # fmt: skip
    wait_until("Barman Cloud plugin socket", lambda: (sockets / PLUGIN_NAME).exists(), 120, plugin, plugin_log)

    cert_dir = work / "webhook-certs"
    ca_pem = webhook_pki(cert_dir)
    home = work / "cnpg"
    (home / "operator").mkdir(parents=True, exist_ok=True)
    own_binary = home / "operator" / f"manager_{go_arch()}"
    if not own_binary.exists():
        own_binary.symlink_to(bin_dir / CNPG_BINARY)
    port = free_port()
    operator, operator_log = processes.start("cloudnative-pg", [
        str(bin_dir / CNPG_BINARY), "controller", "--leader-elect=false", f"--webhook-port={port}",
        f"--metrics-bind-address=127.0.0.1:{free_port()}",
    ], env={
        **env, "OPERATOR_NAMESPACE": OPERATOR_NAMESPACE, "WEBHOOK_CERT_DIR": str(cert_dir), "PLUGIN_SOCKET_DIR": str(sockets),
        "OPERATOR_IMAGE_NAME": f"ghcr.io/cloudnative-pg/cloudnative-pg:{versions['cloudnativePG']}",
    }, cwd=home)  # fmt: skip

    import socket
    import ssl

    context = ssl.create_default_context(cadata=ca_pem.decode())

    def serving() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw, context.wrap_socket(raw, server_hostname="127.0.0.1"):
            return True

    wait_until("CloudNativePG webhook server", serving, 120, operator, operator_log)
    for configuration in webhook_configurations((bin_dir / WEBHOOKS_FILE).read_text(), port, ca_pem):
        kube.apply(configuration)
    return Operators(kube=kube, log=operator_log, versions=versions)


def prepare_stack(operators: Operators, stack: str, offline_objects: list[dict[str, Any]]) -> None:
    for obj in storage_objects(stack, [o for o in offline_objects if o.get("kind") in ("Cluster", "StatefulSet")]):
        operators.kube.apply(obj)


# --- status no controller can write here -------------------------------------------------------------------------


def _condition_true(obj: dict[str, Any], condition: str) -> bool:
    return any(c.get("type") == condition and c.get("status") == "True" for c in obj.get("status", {}).get("conditions", []))


def awaited_condition(obj: dict[str, Any]) -> Optional[str]:
    """The condition a `condition=X` waitFor rule of the object waits for, None for other (or no) rules."""
    rule = obj.get("metadata", {}).get("annotations", {}).get(WAIT_FOR_ANNOTATION, "")
    return rule[len("condition="):].split("=")[0] if rule.startswith("condition=") else None


def primary_pods(cluster: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pod of the instance the operator made primary (its status' targetPrimary): the `cnpg.io/instanceRole`
    label comes only once it has read the instance's status, which under kwok it never can."""
    status = cluster.get("status", {})
    primary = status.get("currentPrimary") or status.get("targetPrimary")
    return [
        p for p in pods
        if p["metadata"]["name"] == primary and p["metadata"].get("labels", {}).get("cnpg.io/cluster") == cluster["metadata"]["name"]
        and p["metadata"].get("labels", {}).get("cnpg.io/podRole") == "instance"
    ]  # fmt: skip


def bootstrap_pods(name: str, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A Cluster's Job pods (initdb, join, recovery)."""
    return [p for p in pods if p["metadata"].get("labels", {}).get("cnpg.io/cluster") == name and "cnpg.io/jobRole" in p["metadata"].get("labels", {})]


def cluster_primary_ready(kube: Kube, cluster: dict[str, Any]) -> bool:
    """What the operator gets to under kwok: the bootstrap Job done and the primary's pod Ready. It would set the
    Cluster Ready once its instance manager answered; under kwok nothing answers at the pod's IP."""
    pods = kube.list("v1", "Pod", cluster["metadata"]["namespace"])
    jobs_done = [p for p in bootstrap_pods(cluster["metadata"]["name"], pods) if p.get("status", {}).get("phase") == "Succeeded"]
    return bool(jobs_done) and any(_condition_true(p, "Ready") for p in primary_pods(cluster, pods))


@dataclass
class StandIn:
    """Which objects of a kind get their awaited condition written by the harness, and with which reason/message."""

    api_version: str
    kind: str
    when: Callable[[Kube, dict[str, Any]], bool]  # the point at which the real controller would write it
    reason: str
    message: str
    why: str  # for the report: why no controller writes it here


CLUSTER_STAND_IN = StandIn(
    "postgresql.cnpg.io/v1", "Cluster", cluster_primary_ready, "ClusterIsReady", "Cluster is Ready",
    "under kwok the operator cannot reach the instance manager at the primary pod's IP, so it never sets Ready; "
    "written once the initdb Job succeeded and the primary pod is Ready, with the operator's phase, reason and message",
)  # fmt: skip


class StandIns(threading.Thread):
    """While `pulumi up` runs, writes each awaited condition a stand-in covers, as the controller would, and keeps it
    written (a running controller may overwrite it; the provider's watch sees every write). Never touches an object
    that no stand-in covers: those become ready by their real controllers or `pulumi up` fails."""

    def __init__(self, kube: Kube, namespace: str, stand_ins: list[StandIn]):
        super().__init__(daemon=True, name=f"stand-ins-{namespace}")
        self.kube, self.namespace, self.stand_ins = kube, namespace, stand_ins
        self.written: dict[str, str] = {}  # "Kind/name" -> why
        self.errors: list[str] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            for stand_in in self.stand_ins:
                try:
                    self._write(stand_in)
                except Exception as error:  # noqa: BLE001 - recorded for the report, retried next round
                    self.errors.append(f"{stand_in.kind}: {type(error).__name__}: {error}"[:300])
            self._done.wait(0.5)

    def _write(self, stand_in: StandIn) -> None:
        for obj in self.kube.list(stand_in.api_version, stand_in.kind, self.namespace):
            condition = awaited_condition(obj)
            if condition is None or _condition_true(obj, condition) or not stand_in.when(self.kube, obj):
                continue
            status = dict(obj.get("status") or {})
            conditions = [c for c in status.get("conditions", []) if c.get("type") != condition]
            conditions.append({
                "type": condition, "status": "True", "reason": stand_in.reason, "message": stand_in.message,
                "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            })  # fmt: skip
            status["conditions"] = conditions
            if stand_in.kind == "Cluster":
                status["phase"] = "Cluster in healthy state"
            path = self.kube.path(stand_in.api_version, stand_in.kind, self.namespace, obj["metadata"]["name"])
            try:
                self.kube.request("PATCH", path + "/status", {"status": status}, "application/merge-patch+json")
            except ApiError as error:
                if error.status != 404:
                    raise
                # A CRD without a status subresource (tools/crds keeps none for some groups): status is part of the object.
                self.kube.request("PATCH", path, {"status": status}, "application/merge-patch+json")
            self.written[f"{stand_in.kind}/{obj['metadata']['name']}"] = stand_in.why

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)


# --- checks after `pulumi up` --------------------------------------------------------------------------------------


def rule_holds(rule: str, obj: dict[str, Any]) -> bool:
    """Whether a waitFor rule (the forms components/readiness.py writes) holds for an object."""
    if rule.startswith("condition="):
        condition, _, wanted = rule[len("condition="):].partition("=")
        return any(c.get("type") == condition and c.get("status") == (wanted or "True") for c in obj.get("status", {}).get("conditions", []))
    path, _, wanted = rule[len("jsonpath="):].partition("}=")
    value: Any = obj
    for step in path.strip("{}").strip(".").split("."):
        value = value.get(step) if isinstance(value, dict) else None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value is not None and (not wanted or str(value) == wanted)


def wait_rules(obj: dict[str, Any]) -> list[str]:
    import json

    value = obj.get("metadata", {}).get("annotations", {}).get(WAIT_FOR_ANNOTATION)
    if not value:
        return []
    return json.loads(value) if value.startswith("[") else [value]


def custom_resources_awaited(state_resources: list[dict[str, Any]], expected_kinds: Iterable[str]) -> tuple[bool, list[str]]:
    """Every object `pulumi up` created with a waitFor rule was recorded in a state where the rule holds: the
    provider returned it only after waiting (without the wait, its outputs are the object as stored, with no status)."""
    notes, awaited_kinds, ok = [], set(), True
    for resource in state_resources:
        outputs = resource.get("outputs") or {}
        rules = wait_rules(outputs)
        if not rules or not resource.get("type", "").startswith("kubernetes:"):
            continue
        kind, name = outputs.get("kind"), outputs.get("metadata", {}).get("name")
        failing = [rule for rule in rules if not rule_holds(rule, outputs)]
        awaited_kinds.add(kind)
        if failing:
            ok = False
            notes.append(f"{kind}/{name} recorded before its rules held: {failing}")
        else:
            notes.append(f"{kind}/{name} awaited: {rules}")
    missing = set(expected_kinds) - awaited_kinds
    if missing:
        notes.append(f"no awaited object of {sorted(missing)} in the state")
    return ok and not missing, notes


@dataclass
class OperatorPods:
    ok: bool
    notes: list[str] = field(default_factory=list)
    defaulted: list[str] = field(default_factory=list)  # containers the LimitRange had to fill in


def operator_pods(kube: Kube, namespace: str, clusters: list[dict[str, Any]], poolers: list[dict[str, Any]]) -> OperatorPods:
    """The pods CloudNativePG and the plugin made exist: each Cluster's bootstrap Job pod (Succeeded), its primary
    (Running, Ready, with the plugin's sidecar when it names the plugin) and every Pooler's pods (Running). Existing
    means admitted: all of them were created through the API server, under the namespace's Pod Security level,
    ResourceQuota and LimitRange. Also lists every container the LimitRange had to size (a spec that leaves it
    to the namespace default), and refused creations the events report."""
    result = OperatorPods(ok=True)
    pods = kube.list("v1", "Pod", namespace)

    def labelled(**labels: str) -> list[dict[str, Any]]:
        return [p for p in pods if all(p["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())]

    live = {c["metadata"]["name"]: c for c in kube.list("postgresql.cnpg.io/v1", "Cluster", namespace)}

    def fail(note: str) -> None:
        result.ok = False
        result.notes.append(note)

    checked: list[dict[str, Any]] = []
    for cluster in clusters:
        name = cluster["metadata"]["name"]
        jobs = bootstrap_pods(name, pods)
        if not any(p.get("status", {}).get("phase") == "Succeeded" for p in jobs):
            fail(f"Cluster {name}: no bootstrap Job pod succeeded ({[p['metadata']['name'] for p in jobs]})")
        primaries = primary_pods(live.get(name, cluster), pods)
        if not any(_condition_true(p, "Ready") for p in primaries):
            fail(f"Cluster {name}: no Ready primary pod")
        wants_plugin = any(p.get("name") == PLUGIN_NAME for p in cluster["spec"].get("plugins", []))
        for pod in primaries:
            init = [c["name"] for c in pod["spec"].get("initContainers", [])]
            if wants_plugin and "plugin-barman-cloud" not in init:
                fail(f"Cluster {name}: primary {pod['metadata']['name']} has no plugin sidecar (init containers {init})")
        checked += jobs + primaries
        result.notes.append(f"Cluster {name}: pods {sorted(p['metadata']['name'] for p in jobs + primaries)}")
    for pooler in poolers:
        name, wanted = pooler["metadata"]["name"], int(pooler["spec"].get("instances", 1))
        running = [p for p in labelled(**{"cnpg.io/poolerName": name}) if p.get("status", {}).get("phase") == "Running"]
        if len(running) != wanted:
            fail(f"Pooler {name}: {len(running)} pods running, {wanted} asked for")
        checked += running
        result.notes.append(f"Pooler {name}: {len(running)} pods running")
    for pod in checked:
        filled = pod["metadata"].get("annotations", {}).get(LIMIT_RANGER_ANNOTATION)
        if filled:
            result.defaulted.append(f"{pod['metadata']['name']}: {filled}")
    for event in kube.list("v1", "Event", namespace):
        if event.get("reason") == "FailedCreate":
            fail(f"{event['involvedObject']['kind']} {event['involvedObject']['name']}: {event.get('message', '')[:300]}")
    return result


def pooler_model_differences(kube: Kube, namespace: str, pooler: dict[str, Any]) -> list[str]:
    """Where the pod template of the Deployment CloudNativePG made for a Pooler differs from what the pack judges
    (policies/operator_pods.py): the securityContexts, and the containers' resources."""
    from policies.operator_pods import cnpg_pooler_pod_spec

    deployment = kube.get("apps/v1", "Deployment", pooler["metadata"]["name"], namespace)
    if deployment is None:
        return [f"no Deployment {pooler['metadata']['name']}"]
    real, modelled = deployment["spec"]["template"]["spec"], cnpg_pooler_pod_spec(pooler["spec"]["template"]["spec"])
    differences = []
    if real.get("securityContext") != modelled["securityContext"]:
        differences.append(f"pod securityContext: real {real.get('securityContext')}, modelled {modelled['securityContext']}")
    for field_name in ("containers", "initContainers"):
        for container in modelled[field_name]:
            found = next((c for c in real.get(field_name, []) if c["name"] == container["name"]), None)
            if found is None:
                differences.append(f"{field_name} {container['name']}: not in the real pod")
                continue
            for key in ("securityContext", "resources"):
                if (found.get(key) or {}) != (container.get(key) or {}):
                    differences.append(f"{container['name']}.{key}: real {found.get(key)}, modelled {container.get(key)}")
    return differences


def validation_problems(kube: Kube, namespace: str, operator_log: Path) -> list[str]:
    """What CloudNativePG says is wrong with the stack's objects: the admission guard's status and log lines (it runs
    the webhooks' defaulting and validation on every reconcile) and a Cluster stuck on an unknown plugin."""
    problems = []
    for cluster in kube.list("postgresql.cnpg.io/v1", "Cluster", namespace):
        phase = cluster.get("status", {}).get("phase", "")
        if phase in ("Invalid cluster definition",) or "unknown plugin" in phase:
            problems.append(f"Cluster {cluster['metadata']['name']}: {phase}: {cluster['status'].get('phaseReason', '')}")
        plugins = [p.get("name") for p in cluster.get("status", {}).get("pluginStatus", [])]
        wanted = [p.get("name") for p in cluster["spec"].get("plugins", [])]
        if set(wanted) - set(plugins):
            problems.append(f"Cluster {cluster['metadata']['name']}: plugins {wanted} not all loaded ({plugins})")
    for kind in ("Pooler", "ScheduledBackup"):
        for obj in kube.list("postgresql.cnpg.io/v1", kind, namespace):
            if obj.get("status", {}).get("error"):
                problems.append(f"{kind} {obj['metadata']['name']}: {obj['status']['error']}")
    for line in operator_log.read_text(errors="replace").splitlines():
        if f'"namespace":"{namespace}"' in line and ("Detected invalid resource" in line or "Mutating webhook seems not installed" in line):
            problems.append(line[:400])
    return problems


def invalid_cluster(cluster: dict[str, Any]) -> dict[str, Any]:
    """A copy of a stack's Cluster the schema accepts and CloudNativePG's webhook refuses: wal_level `minimal` with
    WAL archiving on (or several instances) loses what the standbys and the backups need."""
    spec = {**cluster["spec"], "postgresql": {**cluster["spec"].get("postgresql", {})}}
    spec["postgresql"]["parameters"] = {**spec["postgresql"].get("parameters", {}), "wal_level": "minimal"}
    metadata = {"name": f"{cluster['metadata']['name']}-invalid", "namespace": cluster["metadata"]["namespace"]}
    return {"apiVersion": cluster["apiVersion"], "kind": "Cluster", "metadata": metadata, "spec": spec}


def refused_by_webhook(message: str) -> bool:
    return 'admission webhook "vcluster.cnpg.io" denied the request' in message and "wal_level" in message


def deployment_ready(kube: Kube, namespace: str, name: str, replicas: int, timeout: float = 60) -> bool:
    def ready() -> bool:
        deployment = kube.get("apps/v1", "Deployment", name, namespace)
        return deployment is not None and deployment.get("status", {}).get("readyReplicas", 0) == replicas

    try:
        wait_until(f"Deployment {name}", ready, timeout)
    except RuntimeError:
        return False
    return True


def ignore_missing(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except ApiError as error:
        if error.status != 404:
            raise
        return None


# --- per stack: before and after `pulumi up` ------------------------------------------------------------------------

CONDITION_STAND_INS = (
    StandIn(
        "gateway.networking.k8s.io/v1", "Gateway", lambda kube, obj: True, "Accepted", "Resource accepted",
        "no Gateway controller (Envoy Gateway) runs in this e2e: the harness accepts the Gateway as its controller would",
    ),
    StandIn(
        "cert-manager.io/v1", "Issuer", lambda kube, obj: True, "Ready", "Issuer is ready",
        "no cert-manager controller issues here: the harness marks the Issuer Ready as cert-manager would",
    ),
    StandIn(
        "cert-manager.io/v1", "Certificate", lambda kube, obj: True, "Ready", "Certificate is up to date and has not expired",
        "no cert-manager controller issues here (ACME and the owners' ClusterIssuer need the internet or another "
        "cluster): the harness marks the Certificate Ready as cert-manager would after issuing",
    ),
    StandIn(
        "keda.sh/v1alpha1", "ScaledObject", lambda kube, obj: True, "ScaledObjectReady",
        "ScaledObject is defined correctly and is ready for scaling",
        "no KEDA operator runs in this e2e (its triggers' sources, Prometheus and the databases' PostgreSQL, do not "
        "either): the harness marks the ScaledObject Ready as KEDA does once it built the scalers",
    ),
)  # fmt: skip


def before_up(operators: Operators, stack: str, namespace: str, objects: list[dict[str, Any]], extra: Iterable[StandIn] = ()) -> StandIns:
    """Storage for the stack's Clusters, and the stand-ins running during its `pulumi up`."""
    prepare_stack(operators, stack, objects)
    stand_ins = StandIns(operators.kube, namespace, [CLUSTER_STAND_IN, *extra])
    stand_ins.start()
    return stand_ins


def invalid_cluster_refused(e2e, cluster: dict[str, Any], notes: list[str]) -> bool:
    """`pulumi up` (the real engine and provider) of a Cluster CloudNativePG's webhook refuses: it must fail with the
    webhook's message. A program of its own (inline), so the stack under test is not changed."""
    refused, message = refused_at_up(e2e, invalid_cluster(cluster))
    if not refused:
        notes.append("the invalid Cluster was created: the webhook did not refuse it")
        return False
    notes.append(f"invalid Cluster refused at pulumi up: {denial(message)}")
    return refused_by_webhook(message)


def after_up(operators: Operators, e2e, automation, namespace: str, objects: list[dict[str, Any]], stand_ins: StandIns, run) -> None:
    """The checks on what the operators made of the stack (report keys operatorPodsAdmitted,
    operatorValidationClean, invalidClusterRefused, customResourcesAwaited)."""
    clusters = [o for o in objects if o.get("kind") == "Cluster"]
    poolers = [o for o in objects if o.get("kind") == "Pooler"]
    run.result["standInStatus"] = dict(stand_ins.written)
    for why in sorted(set(stand_ins.written.values())):
        run.note(f"status written by the harness for {sorted(k for k, v in stand_ins.written.items() if v == why)}: {why}")
    for error in stand_ins.errors[:5]:
        run.note(f"stand-in: {error}")
    if not clusters:
        return
    kube = operators.kube

    def pods() -> bool:
        found = operator_pods(kube, namespace, clusters, poolers)
        for pooler in poolers:
            name, wanted = pooler["metadata"]["name"], int(pooler["spec"].get("instances", 1))
            if not deployment_ready(kube, namespace, name, wanted):
                found.ok = False
                found.notes.append(f"Pooler {name}: its Deployment is not ready")
        for note in found.notes:
            run.note(note)
        for pod in found.defaulted:
            run.note(f"LimitRange default filled in: {pod}")
        run.result["operatorPodsSizedBySpec"] = not found.defaulted
        return found.ok

    def validation() -> bool:
        problems = validation_problems(kube, namespace, operators.log)
        for problem in problems:
            run.note(f"operator: {problem}")
        return not problems

    def awaited() -> bool:
        expected = {o["kind"] for o in objects if wait_rules(o)}
        ok, notes = custom_resources_awaited(automation.export_stack().deployment["resources"], expected)
        for note in notes:
            run.note(note)
        return ok

    def modelled() -> bool:
        differences = [f"Pooler {p['metadata']['name']}: {d}" for p in poolers for d in pooler_model_differences(kube, namespace, p)]
        for difference in differences:
            run.note(difference)
        return not differences

    run.check("operatorPodsAdmitted", pods)
    if poolers:
        run.check("poolerPodAsModelled", modelled)
    run.check("operatorValidationClean", validation)
    run.check("customResourcesAwaited", awaited)
    run.check("invalidClusterRefused", lambda: invalid_cluster_refused(e2e, clusters[0], run.notes))


def crds_match(bin_dir: Path, crd_dir: Path, groups: Iterable[str] = ("postgresql.cnpg.io", "barmancloud.cnpg.io")) -> list[str]:
    """Differences between the offline schemas (tools/crds, each with the SHA-256 of its upstream file) and the CRD
    files of the operator modules the toolchain built from; empty when they are the same files."""
    import hashlib
    import json

    problems = []
    for group in groups:
        for path in sorted((crd_dir / group).glob("*.json")):
            data = json.loads(path.read_text())
            source = bin_dir / "crds" / group / f"{data['plural']}.yaml"
            if not source.exists():
                problems.append(f"{group}/{data['plural']}: not in the operator's module")
            elif hashlib.sha256(source.read_bytes()).hexdigest() != data["source_sha256"]:
                problems.append(f"{group}/{data['plural']}: tools/crds was extracted from another file than the operator's")
    return problems


def install_crds(kube: Kube, bin_dir: Path) -> None:
    """Every CRD of the operators' modules, as upstream wrote it (with status subresources: the operators write there)."""
    for path in sorted((bin_dir / "crds").glob("*/*.yaml")):
        if path.parent.name not in ("postgresql.cnpg.io", "barmancloud.cnpg.io"):
            continue
        crd = yaml.safe_load(path.read_text())
        kube.apply(crd)
        kube.register_crd(crd)

    def established() -> bool:
        for path in sorted((bin_dir / "crds").glob("*cnpg.io/*.yaml")):
            name = yaml.safe_load(path.read_text())["metadata"]["name"]
            status = kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name).get("status", {})
            if not any(c["type"] == "Established" and c["status"] == "True" for c in status.get("conditions", [])):
                return False
        return True

    wait_until("the operators' CRDs", established, 60)
