"""NamespaceBaseline: the namespace every platform workload lives in, locked down before anything runs in it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.namespace_baseline_config import ContainerDefaults, NamespaceQuota

# Pod Security Admission rejects (enforce), records (audit) and warns about (warn) anything below "restricted".
PSA_LEVEL = "restricted"


@dataclass
class NamespaceBaselineArgs:
    namespace: str
    quota: NamespaceQuota
    container_defaults: ContainerDefaults
    # "v1.X" or "latest" pins the Pod Security Standards version; None pins nothing (the cluster's default).
    pod_security_version: str | None = None


def pod_security_labels(version: str | None = None) -> dict[str, str]:
    labels = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = PSA_LEVEL
        if version is not None:
            labels[f"pod-security.kubernetes.io/{mode}-version"] = version
    return labels


def dns_egress_rule() -> dict:
    """The one way out every pod keeps under default-deny: cluster DNS, or nothing resolves."""
    return {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


class NamespaceBaseline(pulumi.ComponentResource):
    """Namespace with Pod Security Admission at "restricted", default-deny traffic, a quota and container defaults."""

    namespace_name: pulumi.Output[str]

    def __init__(self, name: str, args: NamespaceBaselineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:namespace:NamespaceBaseline", name, None, opts)
        self.namespace = k8s.core.v1.Namespace(
            name,
            metadata={"name": args.namespace, "labels": pod_security_labels(args.pod_security_version)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        metadata = {"namespace": args.namespace}

        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata={**metadata, "name": "default-deny"},
            spec={
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "egress": [dns_egress_rule()],
            },
            opts=in_namespace,
        )
        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata={**metadata, "name": "platform-quota"},
            spec={
                "hard": {
                    "requests.cpu": args.quota.requests_cpu,
                    "requests.memory": args.quota.requests_memory,
                    "limits.cpu": args.quota.limits_cpu,
                    "limits.memory": args.quota.limits_memory,
                    "pods": str(args.quota.pods),
                }
            },
            opts=in_namespace,
        )
        defaults = args.container_defaults
        k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata={**metadata, "name": "container-defaults"},
            spec={
                "limits": [
                    {
                        "type": "Container",
                        "defaultRequest": {"cpu": defaults.default_request.cpu, "memory": defaults.default_request.memory},
                        "default": {"cpu": defaults.default_limit.cpu, "memory": defaults.default_limit.memory},
                        "max": {"cpu": defaults.max.cpu, "memory": defaults.max.memory},
                    }
                ]
            },
            opts=in_namespace,
        )
        self.namespace_name = self.namespace.metadata.apply(lambda meta: meta["name"])
        self.register_outputs({"namespace": self.namespace_name})
