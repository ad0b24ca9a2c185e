"""The few Kubernetes API calls the harness makes, over plain HTTPS with a bearer token (no client library)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

# Kinds the harness reads back, by apiVersion and kind: their plural and whether they are namespaced.
# Custom resources come from the CRDs the harness applied (see `register_crd`).
BUILTIN_KINDS = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "ResourceQuota"): ("resourcequotas", True),
    ("v1", "LimitRange"): ("limitranges", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Node"): ("nodes", False),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("batch/v1", "CronJob"): ("cronjobs", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False),
}


class ApiError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class Kube:
    def __init__(self, server: str, token: str):
        self.server = server.rstrip("/")
        self.token = token
        self.kinds = dict(BUILTIN_KINDS)
        # The API server's certificate is self-signed and made at start; it only ever listens on 127.0.0.1.
        self._tls = ssl.create_default_context()
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json", raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, context=self._tls, timeout=30) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, error.read().decode(errors="replace")) from None
        if raw:
            return text
        return json.loads(text) if text else None

    def path(self, api_version: str, kind: str, namespace: str | None = None, name: str | None = None) -> str:
        plural, namespaced = self.kinds[(api_version, kind)]
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{plural}"
        return base + (f"/{name}" if name else "")

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        try:
            return self.request("GET", self.path(api_version, kind, namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict]:
        return self.request("GET", self.path(api_version, kind, namespace))["items"]

    def create(self, obj: dict) -> dict:
        metadata = obj.get("metadata", {})
        return self.request("POST", self.path(obj["apiVersion"], obj["kind"], metadata.get("namespace")), obj)

    def apply(self, obj: dict) -> dict:
        """Server-side apply, the way `kubectl apply --server-side` does it."""
        metadata = obj["metadata"]
        path = self.path(obj["apiVersion"], obj["kind"], metadata.get("namespace"), metadata["name"])
        return self.request("PATCH", path + "?fieldManager=platform-e2e&force=true", obj, "application/apply-patch+yaml")

    def register_crd(self, crd: dict) -> None:
        spec = crd["spec"]
        for version in spec["versions"]:
            self.kinds[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = (
                spec["names"]["plural"],
                spec["scope"] == "Namespaced",
            )
