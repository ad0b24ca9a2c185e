"""Caches (Valkey, Redis and their forks, the Redis protocol): what a platform team wants of every one, whoever made it.

- `cache-requires-auth`: a pod running a Redis-protocol server gets a password from a Secret, and nothing switches
  authentication off. A cache without a password is open to every pod that can reach it, and Redis' protected mode
  only guards the loopback-only default, not a pod listening on its network.
- `cache-reachable-only-by-users`: a NetworkPolicy selects the cache's pods for ingress, and its rules let reach the
  server's ports only named pods (a podSelector, with a namespaceSelector for another namespace), never everyone,
  a whole namespace or an address range.

A container runs a cache server when its image is one of CACHE_IMAGES (by repository name, any registry) and it
serves: its command runs a server or sentinel, or it keeps the image's own (the server). Clients and init containers
of the same image (`sh`, `valkey-cli`) are not servers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, Severity

from .pod_security import get, pod_template, runs_pods
from .secrets import items, mapping, to_plain
from .stack_rules import (
    Finding,
    StackObject,
    _effective_types,
    _open_peer,
    _port_value,
    _stack_policy,
    in_namespace,
    pod_labels,
    scalar,
    selector_is_empty,
    selector_matches,
)

CACHE_IMAGES = frozenset({"valkey", "redis", "redis-stack-server", "redis-stack", "keydb", "valkey-bundle"})
SERVER_PORTS = frozenset({6379, 26379, "redis", "sentinel", "tcp-redis", "tcp-sentinel"})
SERVER_COMMANDS = ("valkey-server", "redis-server", "valkey-sentinel", "redis-sentinel", "keydb-server")
# Switches that leave a server without a password (Bitnami's images read ALLOW_EMPTY_PASSWORD).
NO_AUTH_ENV = {"ALLOW_EMPTY_PASSWORD": ("yes", "true", "1")}


def image_repository(image: str) -> str:
    """'docker.io/valkey/valkey:8.1@sha256:..' -> 'valkey'; 'bitnami/redis:7' -> 'redis'."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.split(":", 1)[0]


def _words(container: Mapping) -> list[str]:
    return [str(scalar(word)) for word in items(container.get("command")) + items(container.get("args")) if scalar(word) is not None]


def serves_cache(container: Mapping) -> bool:
    image = scalar(container.get("image"))
    if not isinstance(image, str) or image_repository(image) not in CACHE_IMAGES:
        return False
    words = _words(container)
    if not items(container.get("command")):
        return True  # the image's entrypoint: the server
    return any(word.rsplit("/", 1)[-1] in SERVER_COMMANDS or word == "--sentinel" for word in words)


def cache_containers(resource_type: str, props: Any) -> tuple[Any, list[tuple[str, Mapping]]]:
    """(the pod template, [(path, container)] of the containers serving a cache), or (None, [])."""
    template = pod_template(resource_type, props)
    if template is None:
        return None, []
    found = []
    for field in ("containers", "initContainers"):
        for index, container in enumerate(items(get(template.spec, field))):
            container = mapping(container)
            if serves_cache(container):
                found.append((f"{template.spec_path}.{field}[{index}]".lstrip("."), container))
    return template, found


def _secret_volumes(spec: Mapping) -> set[str]:
    names = set()
    for volume in map(mapping, items(spec.get("volumes"))):
        sources = [mapping(source) for source in items(get(volume, "projected", "sources"))]
        if "secret" in volume or any("secret" in source for source in sources):
            names.add(str(scalar(volume.get("name"))))
    return names


def _reads_a_secret(container: Mapping, secret_volumes: set[str], init_reads_secret: bool) -> bool:
    if any(get(mapping(variable), "valueFrom", "secretKeyRef") for variable in items(container.get("env"))):
        return True
    if any("secretRef" in mapping(source) for source in items(container.get("envFrom"))):
        return True
    mounts = {str(scalar(mapping(mount).get("name"))) for mount in items(container.get("volumeMounts"))}
    # Config rendered by an init container that read the Secret, into a volume this container mounts, counts too.
    return bool(mounts & secret_volumes) or init_reads_secret


def auth_problems(resource_type: str, props: Any) -> list[str]:
    template, containers = cache_containers(resource_type, to_plain(props))
    if not containers:
        return []
    secret_volumes = _secret_volumes(template.spec)
    init_reads_secret = any(
        _reads_a_secret(mapping(init), secret_volumes, False) for init in items(get(template.spec, "initContainers"))
    )
    problems = []
    for path, container in containers:
        words = _words(container)
        for variable in map(mapping, items(container.get("env"))):
            name, value = scalar(variable.get("name")), scalar(variable.get("value"))
            if name in NO_AUTH_ENV and str(value).lower() in NO_AUTH_ENV[name]:
                problems.append(f"{path}.env {name}={value} runs the cache without a password: remove it and give the server a password from a Secret.")
        if "--protected-mode" in words and "--requirepass" not in words and words[words.index("--protected-mode") + 1 :][:1] == ["no"]:
            problems.append(
                f"{path} turns protected mode off without a password (--protected-mode no): every pod that reaches it may "
                "read and write. Set --requirepass from a Secret (env from secretKeyRef, then --requirepass $(PASSWORD))."
            )
        if not _reads_a_secret(container, secret_volumes, init_reads_secret):
            problems.append(
                f"{path} runs a Redis-protocol server ({scalar(container.get('image'))}) that reads no password from a "
                "Secret: give it one (requirepass in a config file from a Secret volume, or --requirepass $(PASSWORD) with "
                "PASSWORD from a secretKeyRef). The platform's caches (stack file: caches[]) always have one."
            )
    return problems


def _validate_auth(args, report_violation) -> None:
    for message in auth_problems(args.resource_type, args.props):
        report_violation(message)


cache_requires_auth = ResourceValidationPolicy(
    name="cache-requires-auth",
    description="Pods running a Redis-protocol server (Valkey, Redis) must get a password from a Secret.",
    validate=_validate_auth,
    severity=Severity.HIGH,
)


# --- rule: cache-reachable-only-by-users --------------------------------------------------------------------------


def _allows_server_port(rule: Mapping) -> bool:
    ports = items(rule.get("ports"))
    if not ports:
        return True  # no ports: every port
    for port in ports:
        value, end = _port_value(mapping(port).get("port")), _port_value(mapping(port).get("endPort"))
        if value is None or value in SERVER_PORTS:
            return True
        if isinstance(value, int) and isinstance(end, int) and any(value <= p <= end for p in SERVER_PORTS if isinstance(p, int)):
            return True
    return False


def _beyond_users(rule: Mapping) -> str | None:
    """What lets more than named pods in: an open peer, a whole namespace, an address range."""
    opening = _open_peer(dict(rule))
    if opening:
        return opening
    for peer in map(mapping, items(rule.get("from"))):
        if "ipBlock" in peer:
            return f"an address range (ipBlock {scalar(mapping(peer.get('ipBlock')).get('cidr'))})"
        if "namespaceSelector" in peer and ("podSelector" not in peer or selector_is_empty(peer.get("podSelector"))):
            return "every pod of the selected namespaces (a namespaceSelector without a podSelector)"
    return None


def isolation_findings(objects: list[StackObject]) -> list[Finding]:
    findings = []
    for workload in objects:
        _, containers = cache_containers(workload.type, workload.obj)
        labels = pod_labels(workload) if containers else None
        if not containers or labels is None or workload.namespace is None:
            continue
        selecting = [
            policy
            for policy in in_namespace(objects, "NetworkPolicy", "networking.k8s.io", workload.namespace)
            if selector_matches(policy.spec.get("podSelector"), labels) and "Ingress" in _effective_types(policy)
        ]
        if not selecting:
            shown = ", ".join(f"{key}: {value}" for key, value in sorted(labels.items()))
            findings.append(
                (
                    workload.urn,
                    f"no NetworkPolicy in namespace '{workload.namespace}' selects the cache pods of {workload.label} "
                    f"({{{shown}}}) for ingress: every pod of the cluster may connect. Add one with policyTypes [Ingress] "
                    "whose rules admit the server's port only from its users' pods (spec.ingress[].from[].podSelector).",
                )
            )
        for policy in selecting:
            for index, rule in enumerate(items(policy.spec.get("ingress"))):
                rule = mapping(rule)
                opening = _beyond_users(rule) if _allows_server_port(rule) else None
                if opening:
                    findings.append(
                        (
                            workload.urn,
                            f"{policy.label} spec.ingress[{index}] lets {opening} reach the cache of {workload.label}: list "
                            "its users' pods instead (podSelector; with a namespaceSelector and a podSelector for another "
                            "namespace's).",
                        )
                    )
    return findings


cache_reachable_only_by_users = _stack_policy(
    "cache-reachable-only-by-users",
    "A Redis-protocol cache's server ports are reachable only from named pods (a NetworkPolicy selects it).",
    isolation_findings,
    Severity.HIGH,
    EnforcementLevel.MANDATORY,
)

POLICIES: list = [cache_requires_auth, cache_reachable_only_by_users]

# Which resources a resource policy can report on at all (see policies.pack.APPLIES_TO); stack policies see all.
APPLIES_TO: dict = {cache_requires_auth: runs_pods}
