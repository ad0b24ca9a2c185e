"""A local Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
kwok with three fake nodes (one per zone), so Deployments roll out and `pulumi up` awaits them as on a cluster.

Pod Security Admission is compiled into kube-apiserver and on by default: namespaces labelled
`pod-security.kubernetes.io/enforce=restricted` refuse non-compliant pods, here exactly as on a real cluster.
No kubelet, no container runtime, no CNI: kwok marks scheduled pods Running and Ready.
"""

from __future__ import annotations

import json
import secrets
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from e2e.kube import Kube
from e2e.processes import Processes, free_port, wait_until

ZONES = ("zone-a", "zone-b", "zone-c")
FAKE_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")


@dataclass
class ControlPlane:
    kube: Kube
    kubeconfig: Path
    kubeconfig_text: str
    context: str = "e2e"


def _service_account_keys(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = directory / "sa.key", directory / "sa.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    )
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _kubeconfig(server: str, token: str, context: str) -> str:
    # JSON is YAML: every kubeconfig reader takes it.
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
            "users": [{"name": context, "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
        },
        indent=1,
    )


def _fake_node(index: int, zone: str) -> dict:
    name = f"kwok-node-{index}"
    capacity = {"cpu": "64", "memory": "256Gi", "pods": "110", "ephemeral-storage": "500Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION[0]: FAKE_NODE_ANNOTATION[1], "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": zone,
                "type": "kwok",
            },
        },
        "status": {"allocatable": capacity, "capacity": capacity},
    }


def start(bin_dir: Path, work: Path, processes: Processes) -> ControlPlane:
    """Starts everything, waits until three Ready nodes exist, and returns a client and a kubeconfig."""
    if work.exists():
        shutil.rmtree(work)
    (work / "certs").mkdir(parents=True)
    sa_key, sa_pub = _service_account_keys(work)
    token = secrets.token_hex(24)
    (work / "tokens.csv").write_text(f'{token},e2e-admin,e2e-admin,"system:masters"\n')

    client_port, peer_port = free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{client_port}"
    etcd, etcd_log = processes.start("etcd", [
        str(bin_dir / "etcd"), "--name=e2e", f"--data-dir={work / 'etcd'}",
        f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
        f"--listen-peer-urls=http://127.0.0.1:{peer_port}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
        f"--initial-cluster=e2e=http://127.0.0.1:{peer_port}", "--log-level=warn",
    ])  # fmt: skip
    wait_until("etcd", lambda: b"true" in urllib.request.urlopen(f"{etcd_url}/health", timeout=2).read(), 60, etcd, etcd_log)

    api_port = free_port()
    server = f"https://127.0.0.1:{api_port}"
    apiserver, api_log = processes.start("kube-apiserver", [
        str(bin_dir / "kube-apiserver"), f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
        f"--cert-dir={work / 'certs'}", f"--token-auth-file={work / 'tokens.csv'}", "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={sa_pub}", f"--service-account-signing-key-file={sa_key}",
        "--service-cluster-ip-range=10.96.0.0/16",
        # As on real clusters (kubeadm sets it): privileged pods pass validation, so refusing them is PSA's job.
        "--allow-privileged=true",
        # The `kubernetes` Service would point at 127.0.0.1, which the API server refuses to publish.
        "--endpoint-reconciler-type=none",
    ])  # fmt: skip
    kube = Kube(server, token)
    wait_until("kube-apiserver", lambda: kube.request("GET", "/readyz", raw=True) == "ok", 120, apiserver, api_log)

    kubeconfig_text = _kubeconfig(server, token, "e2e")
    kubeconfig = work / "kubeconfig"
    kubeconfig.write_text(kubeconfig_text)
    delegated = [f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}"]
    processes.start("kube-controller-manager", [
        str(bin_dir / "kube-controller-manager"), *delegated, "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
        "--leader-elect=false", "--use-service-account-credentials=false",
        f"--service-account-private-key-file={sa_key}", f"--root-ca-file={work / 'certs' / 'apiserver.crt'}",
    ])  # fmt: skip
    processes.start("kube-scheduler", [
        str(bin_dir / "kube-scheduler"), *delegated, "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--leader-elect=false",
    ])  # fmt: skip
    kwok, kwok_log = processes.start("kwok", [
        str(bin_dir / "kwok"), f"--kubeconfig={kubeconfig}", f"--config={bin_dir / 'kwok-stages.yaml'}",
        f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION[0]}={FAKE_NODE_ANNOTATION[1]}",
        "--cidr=10.244.0.0/16", "--node-ip=10.0.0.1", f"--server-address=127.0.0.1:{free_port()}",
    ])  # fmt: skip

    # The default ServiceAccount of a namespace is made by the controller manager; wait for it in `default`.
    wait_until("kube-controller-manager", lambda: kube.get("v1", "ServiceAccount", "default", "default") is not None, 120)
    for index, zone in enumerate(ZONES):
        kube.create(_fake_node(index, zone))
    wait_until("kwok (three Ready nodes)", lambda: _ready_nodes(kube) == len(ZONES), 120, kwok, kwok_log)
    return ControlPlane(kube=kube, kubeconfig=kubeconfig, kubeconfig_text=kubeconfig_text)


def _ready_nodes(kube: Kube) -> int:
    ready = 0
    for node in kube.list("v1", "Node"):
        conditions = node.get("status", {}).get("conditions", [])
        ready += any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    return ready
