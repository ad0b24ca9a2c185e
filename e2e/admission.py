"""Admission webhooks the harness serves on 127.0.0.1 and registers by URL (e2e/stacks.py `refused_at_up` is the
`pulumi up` of one object such a webhook must refuse).

A webhook process is ours or an operator's (po-webhook, cm-platform webhook); the API server calls it like it calls
an in-cluster webhook Service, so `pulumi up` meets the operator's judgement exactly as on a real cluster.
"""

from __future__ import annotations

import base64
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from e2e import operators
from e2e.kube import Kube
from e2e.processes import Processes, free_port, wait_until

VALIDATING = ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")


@dataclass
class Webhook:
    """One webhook of a configuration: which resources of which group and versions go to which path."""

    name: str
    path: str
    group: str
    versions: list[str]
    resources: list[str]


@dataclass
class Server:
    base_url: str  # https://127.0.0.1:<port>
    ca_pem: bytes
    log: Path


def serve(name: str, argv: Callable[[int, Path, Path], list[str]], work: Path, processes: Processes) -> Server:
    """Starts a webhook server with a serving certificate for 127.0.0.1 signed by a CA of its own; returns when its
    /healthz answers over TLS verified against that CA. `argv(port, cert, key)` is its command line."""
    certs = work / f"{name}-certs"
    ca_pem = operators.webhook_pki(certs)
    port = free_port()
    process, log = processes.start(name, argv(port, certs / "apiserver.crt", certs / "apiserver.key"))
    tls = ssl.create_default_context(cadata=ca_pem.decode())
    base_url = f"https://127.0.0.1:{port}"
    wait_until(name, lambda: urllib.request.urlopen(f"{base_url}/healthz", context=tls, timeout=2).status == 200, 60, process, log)
    return Server(base_url, ca_pem, log)


def register(kube: Kube, name: str, server: Server, webhooks: list[Webhook]) -> dict[str, Any]:
    """A ValidatingWebhookConfiguration sending CREATE and UPDATE of the resources to the server; refusals fail."""
    kube.kinds[VALIDATING] = operators.EXTRA_KINDS[VALIDATING]
    configuration = {
        "apiVersion": VALIDATING[0],
        "kind": VALIDATING[1],
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": webhook.name,
                "clientConfig": {"url": server.base_url + webhook.path, "caBundle": base64.b64encode(server.ca_pem).decode()},
                "rules": [{"apiGroups": [webhook.group], "apiVersions": webhook.versions, "resources": webhook.resources,
                           "operations": ["CREATE", "UPDATE"], "scope": "Namespaced" if webhook.group != "cert-manager.io" else "*"}],  # fmt: skip
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }
            for webhook in webhooks
        ],
    }
    return kube.apply(configuration)
