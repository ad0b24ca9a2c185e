"""Readiness contracts: how `pulumi up` knows each custom resource the platform renders is ready.

The kubernetes provider awaits its built-in kinds (Deployments, Jobs, Services, ...) itself, but a custom resource
is "created" the moment the API server stores it, however its operator judges it. Each kind the program renders
has one entry here: either a `pulumi.com/waitFor` rule (a `condition=` or `jsonpath=` expression, several as a JSON
array that must all hold; the forms pulumi-kubernetes 4.25's `metadata.ReadyCondition` reads) with a
`pulumi.com/timeoutSeconds`, or the reason it is not awaited. Components create custom resources only through
`custom_resource`, so a kind without an entry fails at render time, and tests/test_readiness.py checks every field
a rule reads against the kind's CRD status schema in tools/crds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pulumi
import pulumi_kubernetes as k8s

WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"
DELETION_ANNOTATION = "pulumi.com/deletionPropagationPolicy"


@dataclass(frozen=True)
class Readiness:
    """One kind's contract. `wait_for` maps the object's spec to the rules (a Pooler waits for its own count)."""

    wait_for: Optional[Callable[[dict[str, Any]], list[str]]] = None
    timeout_seconds: int = 0
    not_awaited: str = ""  # why `pulumi up` does not wait for this kind
    # How `pulumi destroy` deletes it: "" is the provider's default (Foreground: gone once its dependents are),
    # "background" when its operator recreates the dependents while it is being deleted (the wait would never end).
    deletion: str = ""

    def rules(self, spec: dict[str, Any]) -> list[str]:
        return self.wait_for(spec) if self.wait_for is not None else []


def _condition(condition: str) -> Callable[[dict[str, Any]], list[str]]:
    return lambda _spec: [f"condition={condition}"]


def _pooler_rules(spec: dict[str, Any]) -> list[str]:
    # The Pooler has no conditions: CloudNativePG sets phase `active` once it reconciled it and copies its
    # Deployment's `status.replicas` into `status.instances`, so the count is reached only when every pgbouncer pod
    # was admitted (a pod Pod Security Admission or the quota refuses never exists).
    return ["jsonpath={.status.phase}=active", f"jsonpath={{.status.instances}}={int(spec.get('instances', 1))}"]


_MONITORING_CONFIG = (
    "configuration the cluster's Prometheus and Alertmanager read; prometheus-operator writes `status.bindings` only "
    "with its StatusForConfigurationResources feature gate and for the Prometheus that selected it (the cluster "
    "owners'), and its admission webhook already judges the content at `pulumi up`"
)

# (apiVersion, kind) -> contract. Timeouts: how long a healthy operator may take, with room for a slow cluster.
CONTRACTS: dict[tuple[str, str], Readiness] = {
    # CloudNativePG sets Ready=True once every instance runs and the primary accepts connections; a Cluster
    # restored from a backup replays its WAL first, hence the long timeout.
    ("postgresql.cnpg.io/v1", "Cluster"): Readiness(_condition("Ready"), 1800),
    # CloudNativePG keeps reconciling a Pooler that is being deleted and recreates the Deployment the garbage
    # collector removes, so a foreground delete never ends (found by `make e2e`: `pulumi destroy` timed out on it).
    ("postgresql.cnpg.io/v1", "Pooler"): Readiness(_pooler_rules, 600, deletion="background"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): Readiness(
        not_awaited="a schedule has no ready state (its status only records the last and next run); the backups it "
        "makes are Backup objects the operator creates later, watched by the Cluster's `lastSuccessfulBackup` and "
        "the DatabaseBackupMissing alert"
    ),
    ("barmancloud.cnpg.io/v1", "ObjectStore"): Readiness(
        not_awaited="the Barman Cloud plugin writes its status (serverRecoveryWindow) only after a first backup; an "
        "ObjectStore the plugin cannot use keeps the Cluster that names it from becoming Ready, and the Cluster is awaited"
    ),
    # cert-manager: Ready=True once the Secret holds a valid certificate (Certificate) or the issuer can sign
    # (an ACME Issuer has registered its account).
    ("cert-manager.io/v1", "Certificate"): Readiness(_condition("Ready"), 600),
    ("cert-manager.io/v1", "Issuer"): Readiness(_condition("Ready"), 300),
    ("cert-manager.io/v1", "ClusterIssuer"): Readiness(_condition("Ready"), 300),
    # Accepted, not Programmed: Programmed waits for a load-balancer address, which a laptop cluster never gets.
    ("gateway.networking.k8s.io/v1", "GatewayClass"): Readiness(_condition("Accepted"), 300),
    ("gateway.networking.k8s.io/v1", "Gateway"): Readiness(_condition("Accepted"), 600),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): Readiness(
        not_awaited="its status is one entry per parent Gateway (status.parents[]), written by each Gateway's "
        "controller, the cluster owners' for a shared Gateway; no top-level condition says 'accepted everywhere', "
        "and the Gateway it attaches to (when the stack owns it) is awaited"
    ),
    ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"): Readiness(not_awaited="has no status: a grant, not a workload"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): Readiness(not_awaited=_MONITORING_CONFIG),
    ("monitoring.coreos.com/v1", "PodMonitor"): Readiness(not_awaited=_MONITORING_CONFIG),
    ("monitoring.coreos.com/v1", "PrometheusRule"): Readiness(not_awaited=_MONITORING_CONFIG),
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"): Readiness(not_awaited=_MONITORING_CONFIG),
    # KEDA sets Ready=True once it built every trigger's scaler (its source answered, the TriggerAuthentication's
    # Secrets exist) and made its HPA; a typo in a query or a missing Secret key fails `pulumi up` here.
    ("keda.sh/v1alpha1", "ScaledObject"): Readiness(_condition("Ready"), 300),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): Readiness(
        not_awaited="has no conditions (its status only lists the ScaledObjects using it); KEDA reads it when it builds "
        "a scaler, so a Secret or key it cannot read turns the ScaledObject's Ready condition False, which is awaited"
    ),
    ("autoscaling.k8s.io/v1", "VerticalPodAutoscaler"): Readiness(
        not_awaited="its RecommendationProvided condition needs hours of the pods' usage first; until then the VPA only "
        "lacks a recommendation (an applying VPA then leaves the pods' requests as they are), nothing waits on it"
    ),
}


def contract(api_version: str, kind: str) -> Readiness:
    try:
        return CONTRACTS[(api_version, kind)]
    except KeyError:
        raise KeyError(
            f"{kind} ({api_version}) has no readiness contract: add it to components/readiness.py CONTRACTS "
            "(a waitFor rule, or the reason it is not awaited)"
        ) from None


def annotations(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, str]:
    """The provider annotations for one object: its wait (none for a kind that is not awaited) and deletion policy."""
    entry = contract(api_version, kind)
    rules = entry.rules(spec)
    result = {DELETION_ANNOTATION: entry.deletion} if entry.deletion else {}
    if rules:
        result[WAIT_FOR_ANNOTATION] = rules[0] if len(rules) == 1 else json.dumps(rules)
        result[TIMEOUT_ANNOTATION] = str(entry.timeout_seconds)
    return result


def custom_resource(
    resource_name: str,
    *,
    api_version: str,
    kind: str,
    metadata: dict[str, Any],
    spec: dict[str, Any],
    opts: pulumi.ResourceOptions | None = None,
) -> k8s.apiextensions.CustomResource:
    """A custom resource carrying its kind's readiness contract (the only way components create one)."""
    extra = annotations(api_version, kind, spec)
    if extra:
        metadata = {**metadata, "annotations": {**metadata.get("annotations", {}), **extra}}
    return k8s.apiextensions.CustomResource(
        resource_name, api_version=api_version, kind=kind, metadata=metadata, spec=spec, opts=opts
    )
