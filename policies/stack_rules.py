"""Network and data-safety policies that need more than one resource, plus two config-driven resource rules.

Stack rules judge the stack as a whole (a namespace's NetworkPolicies, the PodDisruptionBudget of a
Deployment, the Gateway an HTTPRoute attaches to). Each has a pure core over `StackObject`s returning
(urn, message) pairs and a thin pulumi_policy wrapper. `service-exposure` and `prod-database-safety` only
need the resource itself, so they are ResourceValidationPolicies: their findings land on the resource and
they run per resource during preview.

Objects are matched by their Kubernetes identity (kind, metadata.namespace, metadata.name, labels). A value
not known yet during preview (an auto-generated name, say) is skipped rather than guessed. Policy config
defaults are applied by the CLI, not by the SDK in-process, so every rule falls back to its default itself.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationPolicy,
    Severity,
    StackValidationPolicy,
)

from .pod_security import POD_TEMPLATE_PATHS, group_and_kind, pod_template, resource_type_of
from .secrets import items, mapping, to_plain, unwrap

Finding = tuple[str, str]  # (urn, message)

CNPG_GROUP = "postgresql.cnpg.io"
GATEWAY_GROUP = "gateway.networking.k8s.io"
POSTGRES_PORT = 5432
POSTGRES_PORT_NAMES = frozenset({"postgresql", "postgres"})  # CNPG names the instance port "postgresql"
DNS_PORTS = frozenset({53, "dns", "dns-tcp", "domain"})
DEFAULT_ALLOWED_SERVICE_TYPES = ("ClusterIP",)
EXPOSING_SERVICE_TYPES = ("LoadBalancer", "NodePort")
PROD_ENVIRONMENT = "prod"
PROD_MIN_INSTANCES = 3
# The URNs tools.check gives the objects of plain YAML files (Helm or Kustomize output, the preview's manifests).
PLAIN_MANIFEST_URN_PREFIX = "urn:pulumi:manifests::check::"
BARMAN_CLOUD_PLUGIN = "barman-cloud.cloudnative-pg.io"


# --- the stack as plain objects -----------------------------------------------------------------------------


def scalar(value: Any) -> Any:
    """A leaf value without its secret wrapping; None when unknown (not a str/number/bool)."""
    value = unwrap(value)[0]
    return value if isinstance(value, (str, int, float, bool)) else None


@dataclass(frozen=True)
class StackObject:
    """One resource of the stack, with its Kubernetes identity read once."""

    urn: str
    type: str
    name: str
    obj: dict[str, Any]
    protect: bool = False
    dependencies: frozenset[str] = field(default_factory=frozenset)

    # Read once (the object never changes): rules ask each object for its identity many times.
    @functools.cached_property
    def kind(self) -> str:
        return str(scalar(self.obj.get("kind")) or "")

    @functools.cached_property
    def group(self) -> str:
        api_version = str(scalar(self.obj.get("apiVersion")) or "")
        return api_version.rsplit("/", 1)[0] if "/" in api_version else ""

    @functools.cached_property
    def metadata(self) -> dict[str, Any]:
        return mapping(self.obj.get("metadata"))

    @functools.cached_property
    def k8s_name(self) -> str | None:
        name = scalar(self.metadata.get("name"))
        return name if isinstance(name, str) else None

    @functools.cached_property
    def namespace(self) -> str | None:
        """metadata.namespace, "default" when unset (what the API server uses), None when unknown."""
        if "namespace" not in self.metadata or self.metadata.get("namespace") is None:
            return "default"
        namespace = scalar(self.metadata.get("namespace"))
        return namespace if isinstance(namespace, str) else None

    @property
    def spec(self) -> dict[str, Any]:
        return mapping(self.obj.get("spec"))

    @property
    def label(self) -> str:
        """How messages name the object: Kind namespace/name (or the Pulumi name when the name is generated)."""
        return f"{self.kind} {self.namespace or '?'}/{self.k8s_name or self.name}"

    def is_a(self, kind: str, group: str = "") -> bool:
        return self.kind == kind and self.group == group


def stack_objects(resources: Iterable[Any]) -> list[StackObject]:
    """pulumi_policy PolicyResources as StackObjects; resources that are not Kubernetes objects are left out."""
    objects = []
    for resource in resources:
        obj = to_plain(resource.props)
        if not isinstance(obj, dict) or not obj.get("kind"):
            continue
        objects.append(
            StackObject(
                urn=resource.urn,
                type=resource.resource_type,
                name=resource.name,
                obj=obj,
                protect=bool(getattr(resource.opts, "protect", False)),
                dependencies=frozenset(dependency.urn for dependency in resource.dependencies or []),
            )
        )
    return objects


def in_namespace(objects: Iterable[StackObject], kind: str, group: str, namespace: str) -> list[StackObject]:
    if isinstance(objects, list):  # rules ask this once per workload: index the list once, not scan it each time
        return list(_by_identity(objects).get((kind, group, namespace), ()))
    return [o for o in objects if o.is_a(kind, group) and o.namespace == namespace]


_last_index: tuple[list[StackObject], int, dict[tuple[str, str, str | None], list[StackObject]]] | None = None


def _by_identity(objects: list[StackObject]) -> dict[tuple[str, str, str | None], list[StackObject]]:
    """(kind, group, namespace) -> the objects with it, in list order; kept for the last list asked about."""
    global _last_index
    if _last_index is None or _last_index[0] is not objects or _last_index[1] != len(objects):
        index: dict[tuple[str, str, str | None], list[StackObject]] = {}
        for obj in objects:
            index.setdefault((obj.kind, obj.group, obj.namespace), []).append(obj)
        _last_index = (objects, len(objects), index)
    return _last_index[2]


# --- label selectors ----------------------------------------------------------------------------------------


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """Kubernetes LabelSelector semantics: matchLabels AND every matchExpression; {} matches everything."""
    selector = mapping(selector)
    for key, value in mapping(selector.get("matchLabels")).items():
        if labels.get(key) != scalar(value):
            return False
    return all(_expression_matches(mapping(expression), labels) for expression in items(selector.get("matchExpressions")))


def _expression_matches(expression: dict[str, Any], labels: Mapping[str, Any]) -> bool:
    key, operator = scalar(expression.get("key")), scalar(expression.get("operator"))
    values = [scalar(v) for v in items(expression.get("values"))]
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


def selector_is_empty(selector: Any) -> bool:
    selector = mapping(selector)
    return not mapping(selector.get("matchLabels")) and not items(selector.get("matchExpressions"))


def selector_requires(selector: Any, key: str, value: str) -> bool:
    """The selector only matches pods whose label `key` is `value` (matchLabels or a one-value In)."""
    selector = mapping(selector)
    if scalar(mapping(selector.get("matchLabels")).get(key)) == value:
        return True
    return any(
        scalar(mapping(e).get("key")) == key
        and scalar(mapping(e).get("operator")) == "In"
        and [scalar(v) for v in items(mapping(e).get("values"))] == [value]
        for e in items(selector.get("matchExpressions"))
    )


def pod_labels(workload: StackObject) -> dict[str, Any] | None:
    """The pod template's labels, None when unknown."""
    template = pod_template(resource_type_of(workload.obj), workload.obj)
    labels = unwrap(mapping(template.metadata if template else None).get("labels"))[0]
    if labels is None:
        return {}
    if not isinstance(labels, dict) or any(scalar(v) is None for v in labels.values()):
        return None
    return {key: scalar(value) for key, value in labels.items()}


def policy_types(network_policy: StackObject) -> set[str]:
    return {scalar(t) for t in items(network_policy.spec.get("policyTypes"))}


# --- rule: namespace-default-deny ---------------------------------------------------------------------------

def is_workload(obj: StackObject) -> bool:
    """Anything that runs pods: the pod-bearing kinds and CloudNativePG clusters."""
    group_kind = group_and_kind(resource_type_of(obj.obj))
    runs_pods = group_kind in POD_TEMPLATE_PATHS and group_kind != ("core", "PodTemplate")  # a template runs nothing
    return runs_pods or obj.is_a("Cluster", CNPG_GROUP)


def default_deny_problems(network_policy: StackObject) -> list[str]:
    """Why a NetworkPolicy is not a namespace default-deny ([] when it is one)."""
    spec = network_policy.spec
    problems = []
    if not selector_is_empty(spec.get("podSelector")):
        problems.append("spec.podSelector is not {} (it must select every pod)")
    missing = {"Ingress", "Egress"} - policy_types(network_policy)
    if missing:
        problems.append(f"spec.policyTypes lacks {' and '.join(sorted(missing))}")
    if items(spec.get("ingress")):
        problems.append("spec.ingress allows traffic (a default-deny has no ingress rules)")
    if any(not _is_dns_only(mapping(rule)) for rule in items(spec.get("egress"))):
        problems.append("spec.egress allows more than DNS (port 53)")
    return problems


def _is_dns_only(rule: dict[str, Any]) -> bool:
    ports = items(rule.get("ports"))
    return bool(ports) and all(_port_value(mapping(p).get("port")) in DNS_PORTS for p in ports)


def _port_value(port: Any) -> Any:
    port = scalar(port)
    return int(port) if isinstance(port, float) and port.is_integer() else port


def default_deny_findings(objects: list[StackObject]) -> list[Finding]:
    workloads_by_namespace: dict[str, list[StackObject]] = {}
    for obj in objects:
        if is_workload(obj) and obj.namespace is not None:
            workloads_by_namespace.setdefault(obj.namespace, []).append(obj)
    findings = []
    for namespace, workloads in sorted(workloads_by_namespace.items()):
        policies = in_namespace(objects, "NetworkPolicy", "networking.k8s.io", namespace)
        problems = {policy.label: default_deny_problems(policy) for policy in policies}
        if any(not found for found in problems.values()):
            continue
        findings.append((_namespace_urn(objects, namespace, workloads), _default_deny_message(namespace, workloads, problems)))
    return findings


def _namespace_urn(objects: list[StackObject], namespace: str, workloads: list[StackObject]) -> str:
    for obj in objects:
        if obj.is_a("Namespace") and obj.k8s_name == namespace:
            return obj.urn
    return workloads[0].urn


def _default_deny_message(namespace: str, workloads: list[StackObject], problems: dict[str, list[str]]) -> str:
    names = ", ".join(w.label for w in workloads[:3]) + (f" and {len(workloads) - 3} more" if len(workloads) > 3 else "")
    message = (
        f"namespace '{namespace}' runs {names} but has no default-deny NetworkPolicy: add a NetworkPolicy in "
        f"namespace '{namespace}' with spec.podSelector: {{}}, spec.policyTypes: [Ingress, Egress], no "
        "spec.ingress rules and spec.egress limited to DNS (port 53), then allow the traffic each workload "
        "needs with narrower policies."
    )
    near_misses = [f"{label}: {'; '.join(found)}" for label, found in problems.items() if found]
    if near_misses:
        message += " Not default-deny: " + " | ".join(near_misses) + "."
    return message


# --- rule: database-network-isolated ------------------------------------------------------------------------


def cnpg_instance_labels(cluster_name: str) -> dict[str, str]:
    """Labels CloudNativePG puts on every instance pod of a cluster."""
    return {"cnpg.io/cluster": cluster_name, "cnpg.io/podRole": "instance"}


def database_isolation_findings(objects: list[StackObject]) -> list[Finding]:
    findings = []
    for cluster in objects:
        if not cluster.is_a("Cluster", CNPG_GROUP) or cluster.k8s_name is None or cluster.namespace is None:
            continue
        findings.extend((cluster.urn, message) for message in _isolation_problems(cluster, objects))
    return findings


def _isolation_problems(cluster: StackObject, objects: list[StackObject]) -> list[str]:
    name, namespace = cluster.k8s_name or "", cluster.namespace or ""
    labels = cnpg_instance_labels(name)
    selecting = [
        policy
        for policy in in_namespace(objects, "NetworkPolicy", "networking.k8s.io", namespace)
        if selector_matches(policy.spec.get("podSelector"), labels) and "Ingress" in _effective_types(policy)
    ]
    problems = []
    if not any(selector_requires(p.spec.get("podSelector"), "cnpg.io/cluster", name) for p in selecting):
        problems.append(
            f"no NetworkPolicy in namespace '{namespace}' selects the pods of {cluster.label} for ingress: add a "
            f"NetworkPolicy with spec.podSelector.matchLabels {{cnpg.io/cluster: {name}}}, spec.policyTypes: "
            f"[Ingress] and a spec.ingress rule allowing port {POSTGRES_PORT} only from the application's pods "
            "(spec.ingress[].from[].podSelector)."
        )
    for policy in selecting:
        for index, rule in enumerate(items(policy.spec.get("ingress"))):
            opening = _open_peer(mapping(rule)) if _allows_postgres(mapping(rule)) else None
            if opening:
                problems.append(
                    f"{policy.label} spec.ingress[{index}] allows port {POSTGRES_PORT} of {cluster.label} from "
                    f"{opening}: restrict spec.ingress[{index}].from to the application's podSelector (and "
                    "namespaceSelector)."
                )
    return problems


def _effective_types(policy: StackObject) -> set[str]:
    """policyTypes, or the API server's default when unset: Ingress, plus Egress if there are egress rules."""
    types = policy_types(policy)
    if types:
        return types
    return {"Ingress"} | ({"Egress"} if items(policy.spec.get("egress")) else set())


def _allows_postgres(rule: dict[str, Any]) -> bool:
    ports = items(rule.get("ports"))
    if not ports:
        return True  # no ports: every port
    for port in ports:
        value = _port_value(mapping(port).get("port"))
        end = _port_value(mapping(port).get("endPort"))
        if value is None or value == POSTGRES_PORT or value in POSTGRES_PORT_NAMES:
            return True
        if isinstance(value, int) and isinstance(end, int) and value <= POSTGRES_PORT <= end:
            return True
    return False


def _open_peer(rule: dict[str, Any]) -> str | None:
    """What makes an ingress rule open to everyone ('any source', 'any pod in any namespace', ...), or None."""
    peers = items(rule.get("from"))
    if not peers:
        return "any source (spec.ingress[].from is empty)"
    for peer in map(mapping, peers):
        cidr = scalar(mapping(peer.get("ipBlock")).get("cidr"))
        if isinstance(cidr, str) and _is_everywhere(cidr):
            return f"every address (ipBlock {cidr})"
        has_pods, has_namespaces = "podSelector" in peer, "namespaceSelector" in peer
        if not has_pods and not has_namespaces and "ipBlock" not in peer:
            return "any source (an empty peer)"
        if has_namespaces and selector_is_empty(peer.get("namespaceSelector")) and selector_is_empty(peer.get("podSelector")):
            return "any pod in any namespace (empty namespaceSelector)"
        if has_pods and not has_namespaces and selector_is_empty(peer.get("podSelector")):
            return "any pod in the namespace (empty podSelector)"
    return None


def _is_everywhere(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


# --- rule: replicated-workload-has-pdb ----------------------------------------------------------------------


def replica_floor(workload: StackObject, objects: list[StackObject]) -> tuple[int, str] | None:
    """(the fewest replicas the workload runs, which field says so), None when unknown or unset."""
    namespace = workload.namespace or ""
    # A KEDA ScaledObject owns the count like an HPA (through one of its own): minReplicaCount, 0 when unset.
    scalers = [(hpa, "minReplicas", 1) for hpa in in_namespace(objects, "HorizontalPodAutoscaler", "autoscaling", namespace)]
    scalers += [(scaled, "minReplicaCount", 0) for scaled in in_namespace(objects, "ScaledObject", "keda.sh", namespace)]
    hpa_floors = [
        (int(minimum), f"{scaler.label} spec.{field}")
        for scaler, field, default in scalers
        if _scales(scaler, workload)
        for minimum in [scalar(scaler.spec.get(field)) or default]
        if isinstance(minimum, (int, float))
    ]
    if hpa_floors:
        return max(hpa_floors)
    replicas = scalar(workload.spec.get("replicas"))
    if isinstance(replicas, (int, float)) and not isinstance(replicas, bool):
        return int(replicas), "spec.replicas"
    return None


def _scales(hpa: StackObject, workload: StackObject) -> bool:
    """The HPA's scaleTargetRef names the workload; a generated name is matched through the HPA's dependencies."""
    target = mapping(hpa.spec.get("scaleTargetRef"))
    default_kind = "Deployment" if hpa.kind == "ScaledObject" else None  # KEDA's default target kind
    if (scalar(target.get("kind")) or default_kind) != workload.kind:
        return False
    target_name = scalar(target.get("name"))
    if isinstance(target_name, str) and workload.k8s_name is not None:
        return target_name == workload.k8s_name
    return workload.urn in hpa.dependencies


def pdb_findings(objects: list[StackObject]) -> list[Finding]:
    findings = []
    for workload in objects:
        if not (workload.is_a("Deployment", "apps") or workload.is_a("StatefulSet", "apps")):
            continue
        floor, labels = replica_floor(workload, objects), pod_labels(workload)
        if floor is None or floor[0] < 2 or labels is None or workload.namespace is None:
            continue
        budgets = in_namespace(objects, "PodDisruptionBudget", "policy", workload.namespace)
        if any("selector" in b.spec and selector_matches(b.spec.get("selector"), labels) for b in budgets):
            continue
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(labels.items())) or "none"
        findings.append(
            (
                workload.urn,
                f"{workload.label} runs at least {floor[0]} replicas ({floor[1]}) but no PodDisruptionBudget in "
                f"namespace '{workload.namespace}' selects its pods (spec.template.metadata.labels {{{shown}}}): "
                "add a policy/v1 PodDisruptionBudget whose spec.selector.matchLabels match those labels, with "
                "spec.maxUnavailable: 1, so node drains keep the service up.",
            )
        )
    return findings


# --- rule: ingress-tls --------------------------------------------------------------------------------------


def host_covered(host: str, tls_hosts: Iterable[str]) -> bool:
    """A TLS host covers the same name, or one label under a wildcard (*.example.com covers a.example.com)."""
    for tls_host in tls_hosts:
        if tls_host == host:
            return True
        if tls_host.startswith("*.") and "." in host and host.split(".", 1)[1] == tls_host[2:]:
            return True
    return False


def ingress_tls_problems(ingress: StackObject) -> list[str]:
    spec = ingress.spec
    tls_hosts = [h for tls in items(spec.get("tls")) for h in map(scalar, items(mapping(tls).get("hosts"))) if isinstance(h, str)]
    problems = []
    for index, rule in enumerate(items(spec.get("rules"))):
        rule = mapping(rule)
        if "host" not in rule or rule.get("host") in (None, ""):
            problems.append(
                f"spec.rules[{index}] has no host, so it answers any host name without a matching certificate: "
                f"set spec.rules[{index}].host and list it in spec.tls[].hosts."
            )
            continue
        host = scalar(rule.get("host"))
        if isinstance(host, str) and not host_covered(host, tls_hosts):
            problems.append(
                f"spec.rules[{index}].host '{host}' is not covered by spec.tls: add it to spec.tls[].hosts with a "
                "secretName (for example issued by a cert-manager Certificate)."
            )
    if spec.get("defaultBackend") and not items(spec.get("tls")):
        problems.append("spec.defaultBackend is served over plain HTTP: add spec.tls with the hosts it serves.")
    return problems


def _gateway(objects: list[StackObject], namespace: str, name: str) -> StackObject | None:
    for obj in objects:
        if obj.is_a("Gateway", GATEWAY_GROUP) and obj.namespace == namespace and obj.k8s_name == name:
            return obj
    return None


def is_https_redirect_only(route: StackObject) -> bool:
    """Every rule only redirects to https (a RequestRedirect filter with scheme https, no backends)."""
    for rule in map(mapping, items(route.spec.get("rules"))):
        redirects = [
            mapping(f).get("requestRedirect")
            for f in items(rule.get("filters"))
            if scalar(mapping(f).get("type")) == "RequestRedirect"
        ]
        if items(rule.get("backendRefs")) or not any(scalar(mapping(r).get("scheme")) == "https" for r in redirects):
            return False
    return True


def httproute_tls_problems(route: StackObject, objects: list[StackObject]) -> list[str]:
    """Parent Gateway listeners of the route that serve plain HTTP, unless the route only redirects to https.

    Gateways outside the stack (a shared platform gateway) cannot be seen, so their routes are not judged.
    """
    problems = []
    for index, ref in enumerate(map(mapping, items(route.spec.get("parentRefs")))):
        if (scalar(ref.get("group")) or GATEWAY_GROUP) != GATEWAY_GROUP or (scalar(ref.get("kind")) or "Gateway") != "Gateway":
            continue
        gateway_name, namespace = scalar(ref.get("name")), scalar(ref.get("namespace")) or route.namespace
        gateway = _gateway(objects, str(namespace), str(gateway_name)) if gateway_name and namespace else None
        if gateway is None:
            continue
        section, port = scalar(ref.get("sectionName")), _port_value(ref.get("port"))
        listeners = [
            listener
            for listener in map(mapping, items(gateway.spec.get("listeners")))
            if (section is None or scalar(listener.get("name")) == section)
            and (port is None or _port_value(listener.get("port")) == port)
        ]
        if section is not None and not listeners:
            problems.append(
                f"spec.parentRefs[{index}].sectionName '{section}' names no listener of {gateway.label}: use the "
                "name of its HTTPS listener."
            )
        plain = [str(scalar(l.get("name"))) for l in listeners if scalar(l.get("protocol")) == "HTTP"]
        if plain and not is_https_redirect_only(route):
            problems.append(
                f"spec.parentRefs[{index}] attaches to the plain-HTTP listener(s) {', '.join(plain)} of "
                f"{gateway.label}, so the route serves unencrypted traffic: set spec.parentRefs[{index}].sectionName "
                "to the gateway's HTTPS listener, or make every rule a RequestRedirect filter with scheme: https."
            )
    return problems


def ingress_tls_findings(objects: list[StackObject]) -> list[Finding]:
    findings = []
    for obj in objects:
        if obj.is_a("Ingress", "networking.k8s.io"):
            findings.extend((obj.urn, message) for message in ingress_tls_problems(obj))
        elif obj.is_a("HTTPRoute", GATEWAY_GROUP):
            findings.extend((obj.urn, message) for message in httproute_tls_problems(obj, objects))
    return findings


# --- rule: service-exposure (per resource) ------------------------------------------------------------------


def service_exposure_findings(obj: dict[str, Any], allowed_types: Iterable[str] | None) -> list[str]:
    obj = to_plain(obj)
    if obj.get("kind") != "Service":
        return []
    allowed = list(allowed_types) if allowed_types is not None else list(DEFAULT_ALLOWED_SERVICE_TYPES)
    service_type = scalar(mapping(obj.get("spec")).get("type")) or "ClusterIP"
    if service_type not in EXPOSING_SERVICE_TYPES or service_type in allowed:
        return []
    return [
        f"spec.type is {service_type}, which exposes the service outside the cluster, and this stack allows only "
        f"{', '.join(allowed) or 'no types'} (policy config allowedServiceTypes): use spec.type: ClusterIP behind the "
        "Gateway/Ingress, or add the type to allowedServiceTypes in the policy pack config if the exposure is intended."
    ]


# --- rule: prod-database-safety (per resource) --------------------------------------------------------------


def prod_database_findings(obj: dict[str, Any], protect: bool | None, environment: str | None) -> list[str]:
    """`protect` is the resource option, None where there is none to judge (plain YAML: tools.check)."""
    obj = to_plain(obj)
    if environment != PROD_ENVIRONMENT or obj.get("kind") != "Cluster" or not str(obj.get("apiVersion", "")).startswith(CNPG_GROUP + "/"):
        return []
    spec = mapping(obj.get("spec"))
    messages = []
    instances = scalar(spec.get("instances"))
    instances = 1 if instances is None and "instances" not in spec else instances  # CNPG's default is 1
    if isinstance(instances, (int, float)) and instances < PROD_MIN_INSTANCES:
        messages.append(
            f"spec.instances is {int(instances)}; prod needs at least {PROD_MIN_INSTANCES} so a failover keeps a "
            f"replica: set spec.instances: {PROD_MIN_INSTANCES}."
        )
    if not _has_backups(spec):
        messages.append(
            "no backups are configured: set spec.backup.barmanObjectStore (destinationPath and credentials) or add "
            f"the Barman Cloud plugin to spec.plugins (name: {BARMAN_CLOUD_PLUGIN}, isWALArchiver: true, "
            "parameters.barmanObjectName)."
        )
    if protect is False:
        messages.append(
            "the resource option protect is not set: create the Cluster with "
            "pulumi.ResourceOptions(protect=True, retain_on_delete=True) so a destroy or replacement cannot delete "
            "the database."
        )
    return messages


def _has_backups(spec: dict[str, Any]) -> bool:
    if mapping(mapping(spec.get("backup")).get("barmanObjectStore")):
        return True
    return any(
        scalar(mapping(plugin).get("name")) == BARMAN_CLOUD_PLUGIN
        and scalar(mapping(plugin).get("enabled")) is not False
        and scalar(mapping(plugin).get("isWALArchiver")) is True
        for plugin in items(spec.get("plugins"))
    )


# --- rule: unique-object-names --------------------------------------------------------------------------------


def duplicate_object_findings(objects: list[StackObject]) -> list[Finding]:
    """Two resources of the stack that are one Kubernetes object (group, kind, namespace, name): names derived from
    different config entries can meet (a service `api-database` beside a database `api`), and the second create
    fails with 'already exists' halfway through `pulumi up`."""
    first: dict[tuple[str, str, str, str], StackObject] = {}
    findings = []
    for obj in objects:
        if obj.k8s_name is None or obj.namespace is None:
            continue  # a generated or unknown name: nothing to compare yet
        earlier = first.setdefault((obj.group, obj.kind, obj.namespace, obj.k8s_name), obj)
        if earlier is not obj:
            findings.append((
                obj.urn,
                f"{obj.label} is also made by the resource '{earlier.name}': two resources would manage one object "
                f"and the second create fails with 'already exists'. Rename one of the config entries they come "
                f"from (a service, database or cache name) so that their derived names differ.",
            ))  # fmt: skip
    return findings


# --- pulumi_policy wrappers ---------------------------------------------------------------------------------


def _stack_policy(name: str, description: str, findings, severity: Severity, level: EnforcementLevel) -> StackValidationPolicy:
    def validate(args, report_violation) -> None:
        for urn, message in findings(stack_objects(args.resources)):
            report_violation(message, urn)

    return StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level, severity=severity
    )


def _validate_service_exposure(args, report_violation) -> None:
    allowed = (args.get_config() or {}).get("allowedServiceTypes")
    for message in service_exposure_findings(args.props, allowed):
        report_violation(message)


def _validate_prod_database(args, report_violation) -> None:
    environment = (args.get_config() or {}).get("environment")
    # Plain manifests (tools.check) carry no resource options: nothing says whether they are protected.
    protect = None if str(args.urn).startswith(PLAIN_MANIFEST_URN_PREFIX) else bool(args.opts.protect)
    for message in prod_database_findings(args.props, protect, environment):
        report_violation(message)


namespace_default_deny = _stack_policy(
    "namespace-default-deny",
    "Every namespace with workloads needs a default-deny NetworkPolicy (all pods, Ingress and Egress).",
    default_deny_findings,
    Severity.HIGH,
    EnforcementLevel.MANDATORY,
)
database_network_isolated = _stack_policy(
    "database-network-isolated",
    f"Every CloudNativePG Cluster needs a NetworkPolicy that limits who reaches port {POSTGRES_PORT}.",
    database_isolation_findings,
    Severity.HIGH,
    EnforcementLevel.MANDATORY,
)
ingress_tls = _stack_policy(
    "ingress-tls",
    "Ingress hosts must be covered by TLS; HTTPRoutes must attach to HTTPS listeners or only redirect to https.",
    ingress_tls_findings,
    Severity.HIGH,
    EnforcementLevel.MANDATORY,
)
replicated_workload_has_pdb = _stack_policy(
    "replicated-workload-has-pdb",
    "Deployments and StatefulSets with 2 or more replicas need a PodDisruptionBudget.",
    pdb_findings,
    Severity.MEDIUM,
    EnforcementLevel.ADVISORY,  # availability, not security: warn, do not block
)
service_exposure = ResourceValidationPolicy(
    name="service-exposure",
    description="Services may be LoadBalancer or NodePort only where the policy config allows it.",
    validate=_validate_service_exposure,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    config_schema=PolicyConfigSchema(
        properties={
            "allowedServiceTypes": {
                "type": "array",
                "items": {"type": "string", "enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]},
                "default": list(DEFAULT_ALLOWED_SERVICE_TYPES),
            }
        }
    ),
)
prod_database_safety = ResourceValidationPolicy(
    name="prod-database-safety",
    description=f"In prod, CloudNativePG Clusters need {PROD_MIN_INSTANCES}+ instances, backups and protect.",
    validate=_validate_prod_database,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    config_schema=PolicyConfigSchema(
        properties={"environment": {"type": "string", "description": "local, staging or prod", "default": ""}}
    ),
)

unique_object_names = _stack_policy(
    "unique-object-names",
    "No two resources of a stack may be the same Kubernetes object (group, kind, namespace and name).",
    duplicate_object_findings,
    Severity.HIGH,
    EnforcementLevel.MANDATORY,
)

POLICIES: list = [
    namespace_default_deny,
    unique_object_names,
    database_network_isolated,
    service_exposure,
    ingress_tls,
    prod_database_safety,
    replicated_workload_has_pdb,
]

# Which resources a resource policy can report on at all (see policies.pack.APPLIES_TO); stack policies see all.
APPLIES_TO: dict = {
    service_exposure: lambda resource_type, kind, api_version: kind is None or kind == "Service",
    prod_database_safety: lambda resource_type, kind, api_version: kind is None or kind == "Cluster",
}
