"""Cache: a Valkey cache (the Redis protocol) for the services that use it, or the wiring to a managed one.

Owns, for a cache deployed here: the data nodes (a StatefulSet: a primary and `replicas` replicas, each with a
redis_exporter sidecar), with `failover` the Sentinels (a second StatefulSet), their Services, the config (a ConfigMap
of valkey.conf, sentinel.conf and the start script), the credentials (a pulumi-random password in a Secret, with the
config lines that carry it), PodDisruptionBudgets, a PodMonitor and NetworkPolicies: who reaches the cache (its
`usedBy` services, its own nodes and Sentinels, Prometheus on the exporter port) and the services' way out to it.
For an `external` cache: only the Secret (its password from encrypted config) and the services' way out to it.

Decisions worth knowing:

- How clients find the primary after a failover: they ask the Sentinels (Sentinel-aware clients, which every
  mainstream Redis client library has). With failover, the services get <PREFIX>_SENTINELS (host:port of the
  Sentinels' Service), <PREFIX>_MASTER_NAME and the password, and <PREFIX>_URL in the form
  `redis+sentinel://:<password>@<sentinels host>:<port>/<master name>/0` (README, "Caches"). There is deliberately
  no plain `redis://` address then: a Service over all data nodes would send writes to replicas. Without failover
  the URL is a plain `redis://` to the one node's Service (`rediss://` for an external cache with TLS).
- Config is rendered by the pure functions below (server_conf, sentinel_conf, the auth snippets and start_script), so
  tests start real servers from exactly what the pods get (tests/test_cache_servers.py). A pod's start script writes
  the file the server runs from into a memory-backed emptyDir: Sentinels rewrite their own file, and a data node's
  on failover; the ConfigMap and Secret stay read-only. It asks the Sentinels who the primary is, so a restarted node
  rejoins the current primary as a replica instead of starting as a second, empty primary.
- Pods and Sentinels announce stable hostnames (the StatefulSets' headless Services, publishing not-ready
  addresses), never pod IPs: a restarted pod keeps its identity in the Sentinels' view.
- Only directives both Valkey 8 and Redis 7.0 accept are rendered (the real-server test runs Redis 7.0, Debian's).
- `maxmemory` leaves headroom below the container's memory limit (derived_maxmemory): replication and client
  buffers, fragmentation, and with persistence the copy-on-write of a fork, live outside it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shlex
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import hardening, readiness
from components.app_service import SecretRef, topology_spread
from components.autoscaling import RedisSource
from components.cache_config import EXPORTER_RESOURCES, SENTINEL_RESOURCES, VALKEY_UID, CacheConfig, quantity_bytes
from components.config_base import PRIVATE_IPV4_RANGES
from components.database_cluster import MetricsScraper

VALKEY_PORT = 6379
SENTINEL_PORT = 26379
EXPORTER_PORT = 9121
METRICS_PORT_NAME = "metrics"
PASSWORD_LENGTH = 32
SERVER_CONF, SENTINEL_CONF, START_SCRIPT = "valkey.conf", "sentinel.conf", "start.sh"
SERVER_AUTH_CONF, SENTINEL_AUTH_CONF = "server-auth.conf", "sentinel-auth.conf"
PASSWORD_KEY, URL_KEY = "password", "url"
CONFIG_SOURCE, AUTH_SOURCE, CONFIG_DIR, DATA_DIR = "/config", "/auth", "/conf", "/data"
STATEFULSET_TYPE = "kubernetes:apps/v1:StatefulSet"
# Headroom below the memory limit: without persistence a quarter (buffers, fragmentation); with it 40%, as a fork
# for BGSAVE or an AOF rewrite copies every page written meanwhile.
MAXMEMORY_SHARE = {"none": 0.75, "aof": 0.6, "rdb": 0.6}
# The directives server_conf and sentinel_conf may render: each is accepted by Valkey 8 and by Redis 7.0 (the
# real-server test proves the latter; Valkey 8 keeps every Redis 7.2 directive). Valkey-only ones (e.g.
# `availability-zone`, `dual-channel-replication-enabled`, the `primaryauth` alias) and Redis 7.2+ ones (e.g.
# `locale-collate`) would stop one of the two at start-up.
PORTABLE_SERVER_DIRECTIVES = frozenset(
    {
        "bind", "port", "dir", "daemonize", "logfile", "loglevel", "tcp-keepalive", "timeout", "maxmemory",
        "maxmemory-policy", "appendonly", "appendfsync", "appendfilename", "save", "dbfilename", "replica-read-only",
        "repl-diskless-sync", "min-replicas-to-write", "min-replicas-max-lag", "replicaof", "replica-announce-ip",
        "requirepass", "masterauth", "protected-mode",
    }
)  # fmt: skip
PORTABLE_SENTINEL_DIRECTIVES = frozenset(
    {
        "bind", "port", "dir", "daemonize", "logfile", "loglevel", "protected-mode", "requirepass",
        "sentinel monitor", "sentinel down-after-milliseconds", "sentinel failover-timeout", "sentinel parallel-syncs",
        "sentinel resolve-hostnames", "sentinel announce-hostnames", "sentinel announce-ip", "sentinel auth-pass",
        "sentinel sentinel-pass",
    }
)  # fmt: skip

# The engine version each data node and Sentinel runs, on their pod template: tools/diff.py names its change.
ENGINE_VERSION_LABEL = "platform.example.com/engine-version"
# Inputs Pulumi updates in place whose effect a reviewer must read for what it is (tools/diff.py). A change of the
# data volumes (size, class, persistence on or off) is a replacement of the StatefulSet, which the diff already
# calls a data loss; a new engine version is an update, and this is what it does.
IN_PLACE_REFUSED_FIELDS: dict[str, dict[str, str]] = {
    STATEFULSET_TYPE: {
        f"spec.template.metadata.labels.{ENGINE_VERSION_LABEL}": "a new cache engine version: the StatefulSet restarts its "
        "pods one by one on it (with failover the Sentinels promote a replica when the primary restarts; a single node "
        "without persistence starts empty), and an older version may refuse the data files a newer one wrote",
    },
}


def derived_maxmemory(cache: CacheConfig) -> int:
    """maxmemory in bytes: the stack's value, or a share of the memory limit."""
    if cache.maxmemory is not None:
        return quantity_bytes(cache.maxmemory)
    return int(cache.memory_limit_bytes * MAXMEMORY_SHARE[cache.persistence.mode])


def headless_name(workload: str) -> str:
    return f"{workload}-headless"


def sentinel_name(cache_name: str) -> str:
    return f"{cache_name}-sentinel"


def server_conf(cache: CacheConfig) -> str:
    """valkey.conf without the secrets (those are in server_auth_conf) and without the pod's own address."""
    mode = cache.persistence.mode
    lines = [
        # Every address the pod has; '-' skips IPv6 when the pod has none.
        "bind * -::*",
        f"port {VALKEY_PORT}",
        f"dir {DATA_DIR}",
        "daemonize no",
        'logfile ""',
        "loglevel notice",
        "tcp-keepalive 60",
        "timeout 0",
        f"maxmemory {derived_maxmemory(cache)}",
        f"maxmemory-policy {cache.maxmemory_policy}",
        f"appendonly {'yes' if mode == 'aof' else 'no'}",
        "appendfsync everysec",
        # RDB snapshots only when asked: without a volume they fill the pod's disk for nothing.
        "save 900 1 300 10 60 10000" if mode == "rdb" else 'save ""',
        "replica-read-only yes",
        # Replicas sync from a stream, not a file the primary writes first: no disk needed for a full sync.
        "repl-diskless-sync yes",
    ]
    if cache.replicas >= 2:
        # A primary cut off from every replica stops taking writes after 10 s: writes it would take in a network
        # partition are lost when the Sentinels promote a replica on the other side.
        lines += ["min-replicas-to-write 1", "min-replicas-max-lag 10"]
    return "\n".join(lines) + "\n"


def server_auth_conf(password: str) -> str:
    """What a data node needs to be reached (requirepass) and to replicate from the primary (masterauth)."""
    return f"requirepass {password}\nmasterauth {password}\n"


def sentinel_conf(cache: CacheConfig) -> str:
    """sentinel.conf's fixed part; start_script writes the `sentinel monitor` line before it (it names the current
    primary), and the secrets come after it from sentinel_auth_conf."""
    failover = cache.failover
    name = cache.name
    lines = [
        "bind * -::*",
        f"port {SENTINEL_PORT}",
        f"dir {CONFIG_DIR}",
        "daemonize no",
        'logfile ""',
        "loglevel notice",
        f"sentinel down-after-milliseconds {name} {failover.down_after_milliseconds}",
        f"sentinel failover-timeout {name} {failover.failover_timeout_milliseconds}",
        # One replica resyncs at a time after a failover: the others keep serving reads.
        f"sentinel parallel-syncs {name} 1",
    ]
    return "\n".join(lines) + "\n"


def sentinel_auth_conf(cache: CacheConfig, password: str) -> str:
    """The Sentinels' own password (clients and other Sentinels), and the one they use on the data nodes."""
    return f"requirepass {password}\nsentinel sentinel-pass {password}\nsentinel auth-pass {cache.name} {password}\n"


def start_script(cache: CacheConfig) -> str:
    """The init container's script: writes $CONFIG_DIR/<role>.conf for `server` or `sentinel` from the mounted config.

    Kubernetes supplies the addresses through env: ANNOUNCE_HOST (this pod's stable hostname), PORT,
    INITIAL_PRIMARY_HOST/PORT (the first data node), SENTINELS (host:port list to ask), and the directories;
    CACHE_PASSWORD for asking the Sentinels. CLI is the client binary (valkey-cli in the image).
    """
    quorum = cache.failover.majority if cache.failover else 1
    name = shlex.quote(cache.name)
    return f"""#!/bin/sh
# Renders the config this pod's server starts from (components/cache.py, start_script).
set -eu
role="$1"
out="$CONFIG_DIR/$role.conf"
export REDISCLI_AUTH="${{CACHE_PASSWORD:-}}"
# The primary as the Sentinels know it now ("host port"); empty when none answers (the cache's first start).
primary=""
for sentinel in ${{SENTINELS:-}}; do
  # -t: a Sentinel that does not answer (a dropped packet) must not hold the pod's start up.
  answer=$("${{CLI:-valkey-cli}}" -t 3 --raw -h "${{sentinel%:*}}" -p "${{sentinel##*:}}" SENTINEL get-master-addr-by-name {name} 2>/dev/null | tr '\\n' ' ' | sed 's/ *$//') || answer=""
  case "$answer" in
    *" "[0-9]*) primary="$answer"; break ;;
  esac
done
[ -n "$primary" ] || primary="$INITIAL_PRIMARY_HOST $INITIAL_PRIMARY_PORT"
: > "$out"
if [ "$role" = sentinel ]; then
  echo "sentinel resolve-hostnames yes" >> "$out"
  echo "sentinel announce-hostnames yes" >> "$out"
  echo "sentinel monitor {name} $primary {quorum}" >> "$out"
  echo "sentinel announce-ip $ANNOUNCE_HOST" >> "$out"
  cat "$CONFIG_SOURCE/{SENTINEL_CONF}" "$AUTH_SOURCE/{SENTINEL_AUTH_CONF}" >> "$out"
else
  echo "replica-announce-ip $ANNOUNCE_HOST" >> "$out"
  # Not the primary: replicate from it. A restarted former primary comes back as a replica of the promoted one.
  [ "$primary" = "$ANNOUNCE_HOST $PORT" ] || echo "replicaof $primary" >> "$out"
  cat "$CONFIG_SOURCE/{SERVER_CONF}" "$AUTH_SOURCE/{SERVER_AUTH_CONF}" >> "$out"
fi
"""


def render_directives(conf: str) -> list[str]:
    """The directive names of a rendered config ("sentinel monitor" counts as one), for the portability check."""
    names = []
    for line in conf.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        names.append(" ".join(words[:2]) if words[0] == "sentinel" else words[0])
    return names


@dataclass
class CacheArgs:
    cache: CacheConfig
    namespace: str
    metrics_scraper: MetricsScraper = field(default_factory=MetricsScraper)
    spread_strictly: bool = False  # True: never two data nodes (or two Sentinels) on one node (prod)
    protect: bool = False  # True: protect + retain_on_delete on the data nodes and the credentials (prod)
    # An external cache's password (from encrypted config); unused for a deployed cache.
    external_password: Optional[pulumi.Input[str]] = None
    # Peers in other namespaces that connect with the password besides the `usedBy` services: KEDA's operator, for a
    # redis trigger of a service (full NetworkPolicy peers).
    outside_clients: list[dict] = field(default_factory=list)


class Cache(pulumi.ComponentResource):
    """A cache and what its services get: connection settings, Secret references, who may connect."""

    secret_name: str
    host: str
    port: int

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:cache:Cache", name, None, opts)
        cache = args.cache
        self.cache, self.namespace = cache, args.namespace
        self.secret_name = f"{cache.name}-auth"
        self._sentinels = sentinel_name(cache.name)
        self.failover = cache.failover is not None
        if cache.external is not None:
            self.host, self.port = cache.external.host, cache.external.port
        elif self.failover:
            self.host, self.port = f"{self._sentinels}.{args.namespace}.svc", SENTINEL_PORT
        else:
            self.host, self.port = f"{cache.name}.{args.namespace}.svc", VALKEY_PORT
        labels = hardening.standard_labels(cache.name, "cache")
        data_safety = {"protect": args.protect, "retain_on_delete": args.protect}

        def metadata(object_name: str, object_labels: dict[str, str] | None = None) -> dict:
            return {"name": object_name, "namespace": args.namespace, "labels": object_labels or labels}

        if cache.external is not None:
            if args.external_password is None:
                raise ValueError(f"Cache {name!r} is external: pass its password (external.passwordKey) as external_password")
            self._password = pulumi.Output.secret(args.external_password)
        else:
            self._password = pulumi.Output.secret(
                random.RandomPassword(
                    f"{name}-password",
                    length=PASSWORD_LENGTH,
                    # Letters and digits: safe in a URL and in a config line without quoting.
                    special=False,
                    opts=pulumi.ResourceOptions(parent=self),
                ).result
            )
        secret_data = {PASSWORD_KEY: self._password, URL_KEY: self._password.apply(self._url)}
        if cache.external is None:
            secret_data[SERVER_AUTH_CONF] = self._password.apply(server_auth_conf)
            if self.failover:
                secret_data[SENTINEL_AUTH_CONF] = self._password.apply(lambda value: sentinel_auth_conf(cache, value))
        secret = k8s.core.v1.Secret(
            f"{name}-auth",
            metadata=metadata(self.secret_name),
            type="Opaque",
            string_data=pulumi.Output.secret(pulumi.Output.all(**secret_data)),
            opts=pulumi.ResourceOptions(parent=self, **data_safety),
        )
        if cache.external is None:
            self._deploy(name, args, labels, metadata, secret, data_safety)
        self._clients_egress(name, args, metadata)
        self.register_outputs({"secret_name": self.secret_name, "host": self.host, "port": self.port})

    # --- what a service using the cache gets ------------------------------------------------------------------

    def connection_env(self) -> dict[str, str]:
        """Plain settings for the service's ConfigMap: where the cache is (nothing secret)."""
        prefix = self.cache.env_prefix
        if self.failover:
            return {f"{prefix}_SENTINELS": f"{self.host}:{self.port}", f"{prefix}_MASTER_NAME": self.cache.name}
        env = {f"{prefix}_HOST": self.host, f"{prefix}_PORT": str(self.port)}
        if self.cache.external is not None:
            env[f"{prefix}_TLS"] = "true" if self.cache.external.tls else "false"
        return env

    def secret_refs(self) -> list[SecretRef]:
        prefix = self.cache.env_prefix
        return [SecretRef(f"{prefix}_PASSWORD", self.secret_name, PASSWORD_KEY), SecretRef(f"{prefix}_URL", self.secret_name, URL_KEY)]

    def rollout_secrets(self) -> dict[str, pulumi.Output[str]]:
        """Values whose change must restart the services' pods (env from a Secret is read at start only)."""
        return {f"cache/{self.cache.name}": self._password}

    @property
    def client_names(self) -> list[str]:
        return sorted(self.cache.used_by)

    def keda_sources(self) -> dict[str, RedisSource]:
        """What a redis trigger of a user reads the cache with: the Sentinels and the master's name with failover."""
        tls = self.cache.external is not None and self.cache.external.tls
        master = self.cache.name if self.failover else None
        return {self.cache.name: RedisSource(self.secret_name, PASSWORD_KEY, f"{self.host}:{self.port}", master, tls)}

    # --- the pieces -------------------------------------------------------------------------------------------

    def _url(self, password: str) -> str:
        if self.failover:
            return f"redis+sentinel://:{password}@{self.host}:{self.port}/{self.cache.name}/0"
        scheme = "rediss" if self.cache.external is not None and self.cache.external.tls else "redis"
        return f"{scheme}://:{password}@{self.host}:{self.port}/0"

    def _deploy(self, name: str, args: CacheArgs, labels: dict, metadata, secret, data_safety: dict) -> None:
        cache, namespace = args.cache, args.namespace
        child = pulumi.ResourceOptions(parent=self)
        sentinel_labels = hardening.standard_labels(self._sentinels, "cache-sentinel")
        data_pods, sentinel_pods = hardening.selector_labels(cache.name), hardening.selector_labels(self._sentinels)
        config_data = {SERVER_CONF: server_conf(cache), START_SCRIPT: start_script(cache)}
        if self.failover:
            config_data[SENTINEL_CONF] = sentinel_conf(cache)
        config_map = k8s.core.v1.ConfigMap(f"{name}-config", metadata=metadata(f"{cache.name}-config"), data=config_data, opts=child)
        # A changed config or password restarts the pods (the start script reads both once).
        checksum = hashlib.sha256(repr(sorted(config_data.items())).encode()).hexdigest()
        sentinel_hosts = f"{self._sentinels}.{namespace}.svc:{SENTINEL_PORT}" if self.failover else ""
        headless = headless_name(cache.name)
        common = {"INITIAL_PRIMARY_HOST": f"{cache.name}-0.{headless}.{namespace}.svc", "INITIAL_PRIMARY_PORT": str(VALKEY_PORT)}
        if sentinel_hosts:  # an empty env value is dropped by the API server (make e2e compares the objects)
            common["SENTINELS"] = sentinel_hosts

        for service_name, service_labels, selector, port in (
            (headless, labels, data_pods, VALKEY_PORT),
            *([(headless_name(self._sentinels), sentinel_labels, sentinel_pods, SENTINEL_PORT)] if self.failover else []),
        ):
            k8s.core.v1.Service(
                f"{name}-{service_name.removeprefix(cache.name + '-')}-service",
                metadata=metadata(service_name, service_labels),
                spec={
                    "clusterIP": "None",
                    # The pods' hostnames resolve before they are ready: a starting node names itself to the others.
                    "publishNotReadyAddresses": True,
                    "selector": selector,
                    "ports": [{"name": "redis", "port": port, "targetPort": port, "protocol": "TCP"}],
                },
                opts=child,
            )
        # What clients connect to: the Sentinels with failover (they name the primary), else the one node.
        client_labels, client_selector = (sentinel_labels, sentinel_pods) if self.failover else (labels, data_pods)
        k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata(self.host.split(".", 1)[0], client_labels),
            spec={
                "type": "ClusterIP",
                "selector": client_selector,
                "ports": [{"name": "redis", "port": self.port, "targetPort": self.port, "protocol": "TCP"}],
            },
            opts=child,
        )

        data_volumes = []
        claim_templates = []
        if cache.persistence.mode != "none":
            claim = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": cache.persistence.size}}}
            if cache.persistence.storage_class:
                claim["storageClassName"] = cache.persistence.storage_class
            claim_templates = [{"metadata": {"name": "data"}, "spec": claim}]
        else:
            data_volumes = [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}]
        server = self._container(
            "valkey",
            cache.image,
            ["valkey-server", f"{CONFIG_DIR}/server.conf"],
            VALKEY_PORT,
            cache.resources.model_dump(),
            [{"name": "data", "mountPath": DATA_DIR}],
        )
        exporter = {
            "name": "exporter",
            "image": cache.exporter_image,
            "imagePullPolicy": "IfNotPresent",
            "env": [
                {"name": "REDIS_ADDR", "value": f"redis://localhost:{VALKEY_PORT}"},
                self._password_env("REDIS_PASSWORD"),
            ],
            "ports": [{"name": METRICS_PORT_NAME, "containerPort": EXPORTER_PORT, "protocol": "TCP"}],
            "resources": EXPORTER_RESOURCES.model_dump(),
            "securityContext": hardening.container_security_context(),
            "readinessProbe": {"httpGet": {"path": "/health", "port": METRICS_PORT_NAME}, "periodSeconds": 10},
        }
        statefulset = self._statefulset(
            f"{name}-data",
            cache.name,
            headless,
            labels,
            data_pods,
            cache.data_nodes,
            "server",
            [server, exporter],
            data_volumes,
            claim_templates,
            common,
            checksum,
            args,
            [config_map, secret],
            data_safety,
        )
        self.statefulset = statefulset
        if self.failover:
            sentinel = self._container(
                "sentinel",
                cache.image,
                ["valkey-server", f"{CONFIG_DIR}/sentinel.conf", "--sentinel"],
                SENTINEL_PORT,
                SENTINEL_RESOURCES.model_dump(),
                [],
            )
            self._statefulset(
                f"{name}-sentinels",
                self._sentinels,
                headless_name(self._sentinels),
                sentinel_labels,
                sentinel_pods,
                cache.failover.sentinels,
                "sentinel",
                [sentinel],
                [],
                [],
                common,
                checksum,
                args,
                [config_map, secret, statefulset],
                {},
            )
        for suffix, workload_name, selector in (("data", cache.name, data_pods), *([("sentinels", self._sentinels, sentinel_pods)] if self.failover else [])):
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{suffix}-pdb",
                metadata=metadata(workload_name, sentinel_labels if suffix == "sentinels" else labels),
                spec=hardening.one_at_a_time_disruption(selector),
                opts=child,
            )
        readiness.custom_resource(
            f"{name}-pod-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata=metadata(cache.name, {**labels, **args.metrics_scraper.monitor_labels}),
            spec={"selector": {"matchLabels": data_pods}, "podMetricsEndpoints": [{"port": METRICS_PORT_NAME}]},
            opts=child,
        )
        self._isolation(name, args, metadata, data_pods, sentinel_pods)

    def _password_env(self, env_name: str) -> dict:
        return {"name": env_name, "valueFrom": {"secretKeyRef": {"name": self.secret_name, "key": PASSWORD_KEY}}}

    def _container(self, container_name: str, image: str, command: list[str], port: int, resources: dict, mounts: list) -> dict:
        probe_command = ["sh", "-c", f'valkey-cli -p {port} ping | grep -q PONG']
        return {
            "name": container_name,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": command,
            "ports": [{"name": "redis", "containerPort": port, "protocol": "TCP"}],
            # The probes' valkey-cli reads the password from REDISCLI_AUTH, never from its command line.
            "env": [self._password_env("REDISCLI_AUTH")],
            "resources": resources,
            "securityContext": hardening.container_security_context(),
            "volumeMounts": [{"name": "conf", "mountPath": CONFIG_DIR}, hardening.scratch_volume_mount(), *mounts],
            "startupProbe": {"tcpSocket": {"port": port}, "periodSeconds": 2, "failureThreshold": 30},
            "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 10, "failureThreshold": 3},
            "readinessProbe": {"exec": {"command": probe_command}, "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 2},
        }

    def _statefulset(
        self, resource_name, object_name, service_name, labels, selector, replicas, role, containers, volumes, claims,
        common, checksum, args: CacheArgs, depends, data_safety,
    ):  # fmt: skip
        cache, namespace = args.cache, args.namespace
        env = [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "ANNOUNCE_HOST", "value": f"$(POD_NAME).{service_name}.{namespace}.svc"},
            {"name": "PORT", "value": str(SENTINEL_PORT if role == "sentinel" else VALKEY_PORT)},
            *({"name": key, "value": value} for key, value in sorted(common.items())),
            {"name": "CONFIG_SOURCE", "value": CONFIG_SOURCE},
            {"name": "AUTH_SOURCE", "value": AUTH_SOURCE},
            {"name": "CONFIG_DIR", "value": CONFIG_DIR},
            self._password_env("CACHE_PASSWORD"),
        ]
        init = {
            "name": "config",
            "image": cache.image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sh", f"{CONFIG_SOURCE}/{START_SCRIPT}", role],
            "env": env,
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
            "securityContext": hardening.container_security_context(),
            "volumeMounts": [
                {"name": "config", "mountPath": CONFIG_SOURCE, "readOnly": True},
                {"name": "auth", "mountPath": AUTH_SOURCE, "readOnly": True},
                {"name": "conf", "mountPath": CONFIG_DIR},
            ],
        }
        pod_labels = {**labels, ENGINE_VERSION_LABEL: cache.engine_version or "unknown"}
        spec = {
            "replicas": replicas,
            "serviceName": service_name,
            "selector": {"matchLabels": selector},
            # Sentinels start together; data nodes in order, so the first is up as the primary before replicas join.
            "podManagementPolicy": "Parallel" if role == "sentinel" else "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {"checksum/config": checksum}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": hardening.pod_security_context(VALKEY_UID, VALKEY_UID),
                    "initContainers": [init],
                    "containers": containers,
                    "terminationGracePeriodSeconds": 30,
                    "topologySpreadConstraints": topology_spread(selector, args.spread_strictly),
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{cache.name}-config", "defaultMode": 0o444}},
                        {"name": "auth", "secret": {"secretName": self.secret_name, "defaultMode": 0o400}},
                        # Holds the password (the rendered config): memory-backed, never on the node's disk.
                        {"name": "conf", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                        hardening.scratch_volume(),
                        *volumes,
                    ],
                },
            },
        }
        if claims:
            spec["volumeClaimTemplates"] = claims
            # The data outlives a scale-down; deleting the cache keeps it only in prod (protect).
            spec["persistentVolumeClaimRetentionPolicy"] = {"whenScaled": "Retain", "whenDeleted": "Retain" if args.protect else "Delete"}
        return k8s.apps.v1.StatefulSet(
            resource_name,
            metadata={"name": object_name, "namespace": namespace, "labels": labels},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends, **data_safety),
        )

    def _isolation(self, name: str, args: CacheArgs, metadata, data_pods: dict, sentinel_pods: dict) -> None:
        """Who reaches the data nodes and Sentinels, and where they may go (the namespace denies both by default)."""
        scraper = args.metrics_scraper
        prometheus = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": scraper.namespace}},
            "podSelector": {"matchLabels": dict(scraper.pod_labels)},
        }
        clients = [{"podSelector": {"matchLabels": hardening.selector_labels(client)}} for client in self.client_names]
        clients += list(args.outside_clients)
        nodes, sentinels = {"podSelector": {"matchLabels": data_pods}}, {"podSelector": {"matchLabels": sentinel_pods}}
        valkey, sentinel = {"protocol": "TCP", "port": VALKEY_PORT}, {"protocol": "TCP", "port": SENTINEL_PORT}
        insiders = [nodes, sentinels] if self.failover else [nodes]
        data_ingress = [
            {"from": insiders, "ports": [valkey]},  # replication, the Sentinels' checks
            {"from": [prometheus], "ports": [{"protocol": "TCP", "port": EXPORTER_PORT}]},
        ]
        if clients:  # an empty `from` would mean "from anywhere"
            # With failover, Sentinel-aware clients ask a Sentinel, then connect to the primary it names.
            data_ingress.insert(0, {"from": clients, "ports": [valkey]})
        policies = [
            (
                "data",
                data_pods,
                {
                    "ingress": data_ingress,
                    "egress": [{"to": insiders, "ports": [valkey, sentinel] if self.failover else [valkey]}],
                },
            )
        ]
        if self.failover:
            sentinel_ingress = [{"from": insiders, "ports": [sentinel]}]
            if clients:
                sentinel_ingress.insert(0, {"from": clients, "ports": [sentinel]})
            policies.append(("sentinels", sentinel_pods, {"ingress": sentinel_ingress, "egress": [{"to": insiders, "ports": [valkey, sentinel]}]}))
        for suffix, selector, rules in policies:
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{suffix}-netpol",
                metadata=metadata(f"{args.cache.name}-{suffix}"),
                spec={"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress", "Egress"], **rules},
                opts=pulumi.ResourceOptions(parent=self),
            )

    def _clients_egress(self, name: str, args: CacheArgs, metadata) -> None:
        """The services' way out to the cache: its nodes and Sentinels, or the external endpoint."""
        if not self.client_names:
            return
        cache = args.cache
        if cache.external is not None:
            destinations = [{"ipBlock": {"cidr": cidr}} for cidr in external_cidrs(cache)]
            ports = [{"protocol": "TCP", "port": cache.external.port}]
        else:
            destinations = [{"podSelector": {"matchLabels": hardening.selector_labels(cache.name)}}]
            ports = [{"protocol": "TCP", "port": VALKEY_PORT}]
            if self.failover:
                destinations.append({"podSelector": {"matchLabels": hardening.selector_labels(self._sentinels)}})
                ports.append({"protocol": "TCP", "port": SENTINEL_PORT})
        k8s.networking.v1.NetworkPolicy(
            f"{name}-clients-netpol",
            metadata=metadata(f"{cache.name}-clients"),
            spec={
                "podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": self.client_names}]},
                "policyTypes": ["Egress"],
                "egress": [{"to": destinations, "ports": ports}],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )


def external_cidrs(cache: CacheConfig) -> list[str]:
    """Where an external cache is: the configured CIDRs, its address, or the private ranges its name resolves into."""
    if cache.external.cidrs:
        return list(cache.external.cidrs)
    try:
        address = ipaddress.ip_address(cache.external.host)
        return [f"{address}/{address.max_prefixlen}"]
    except ValueError:
        return [cidr for cidr in PRIVATE_IPV4_RANGES if cidr != "169.254.0.0/16"]
