"""DatabaseCluster: one PostgreSQL cluster run by CloudNativePG, reachable only by the services that use it.

Owns the `postgresql.cnpg.io/v1` Cluster, the application credentials (a pulumi-random password in a
`kubernetes.io/basic-auth` Secret), continuous backups through the Barman Cloud plugin (an `ObjectStore`,
WAL archiving and a `ScheduledBackup`), a PodMonitor, and two NetworkPolicies: who may reach the database
pods (its services, its own instances, the operator, Prometheus) and the services' way out to it (the
namespace denies all traffic by default, both ways).

Decisions worth knowing:

- Backups use the Barman Cloud plugin (`barmancloud.cnpg.io/v1` ObjectStore + `spec.plugins`), not the
  in-tree `spec.backup.barmanObjectStore`: the in-tree support is deprecated since CloudNativePG 1.26 and
  will be removed, and the operator pinned here (CNPG_OPERATOR_VERSION) runs the plugin. Retention lives on
  the ObjectStore (the plugin's place for it) and equals the bucket's version retention.
- The credentials Secret is ours (bootstrap.initdb.secret), so CloudNativePG generates no `<cluster>-app`
  Secret; the services read user, password and a full URL from ours, never from a literal. Host, port and
  database name are not secret and go to the service's ConfigMap.
- The Cluster is never replaced by Pulumi (no replace_on_changes): replacing it would start an empty
  database. IN_PLACE_REFUSED_FIELDS lists the inputs whose change only a new cluster (restored from backup)
  can apply, so the preview can call them out; in prod `protect` turns any replacement into an error.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import quote, urlparse

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import hardening, readiness
from components.config_base import PRIVATE_IPV4_RANGES
from components.hardening import EGRESS_REASON_ANNOTATION, IRSA_ANNOTATION
from components.app_service import SecretRef
from components.autoscaling import SecretKey
from components.connection_pooler import (
    PGBOUNCER_PORT,
    POD_ROLE_LABEL,
    ConnectionPooler,
    ConnectionPoolerArgs,
    pooler_name,
    pooler_pods,
)
from components.backup_bucket_config import BackupsConfig
from components.database_cluster_config import BACKUP_SIDECAR_RESOURCES, CnpgSettings, DatabaseConfig

# The plugin version the local add-on installs beside database_cluster_config.CNPG_OPERATOR_VERSION (see there), and
# tools/crds was extracted from.
BARMAN_CLOUD_PLUGIN_VERSION = "0.14.0"
BARMAN_CLOUD_PLUGIN = "barman-cloud.cloudnative-pg.io"

CNPG_API_VERSION = "postgresql.cnpg.io/v1"
OBJECT_STORE_API_VERSION = "barmancloud.cnpg.io/v1"
POD_MONITOR_API_VERSION = "monitoring.coreos.com/v1"
CLUSTER_TYPE = f"kubernetes:{CNPG_API_VERSION}:Cluster"
SCHEDULED_BACKUP_TYPE = f"kubernetes:{CNPG_API_VERSION}:ScheduledBackup"
SECRET_TYPE = "kubernetes:core/v1:Secret"

POSTGRES_PORT = 5432
STATUS_PORT = 8000  # the instance manager's status endpoint, polled by the operator and by the other instances
METRICS_PORT = 9187
METRICS_PORT_NAME = "metrics"  # the port name CloudNativePG gives the exporter in instance pods
CLUSTER_LABEL = "cnpg.io/cluster"  # on every pod of a cluster: instances, its bootstrap/join jobs, and its poolers
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "cloudnative-pg"}  # the operator's pods (manifest and Helm chart)
DIRECT_URI_KEY = "direct-uri"  # in the credentials Secret with a pooler: the primary's URL
PASSWORD_LENGTH = 32
# Where an inherited IAM role comes from when there is no IRSA role: the node's metadata service, or the
# EKS Pod Identity agent.
INSTANCE_CREDENTIAL_ENDPOINTS = ("169.254.169.254/32", "169.254.170.23/32")
IN_CLUSTER_HOST = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$")

# Inputs whose change makes the engine replace the object (delete and create it again). Keyed by resource type;
# each path is a prefix of the changed input.
REPLACEMENT_FIELDS: dict[str, dict[str, str]] = {
    CLUSTER_TYPE: {
        "metadata.name": "a new name is a new, empty cluster (and a new path in the backup bucket)",
    },
    SECRET_TYPE: {
        "metadata.name": "the Cluster's bootstrap names the Secret: a new name is not picked up by the running cluster",
        "type": "immutable in Kubernetes: the provider deletes and recreates the Secret",
    },
}

# Inputs Pulumi updates in place (the Cluster has no replace_on_changes, `make e2e` shows a real preview saying
# "update") but a running cluster cannot take: the operator ignores or refuses them. Applying one needs a new
# cluster restored from the backups, so a preview showing such a change deserves a reviewer's attention.
IN_PLACE_REFUSED_FIELDS: dict[str, dict[str, str]] = {
    CLUSTER_TYPE: {
        "spec.bootstrap": "read only when the cluster is created: the running cluster ignores the change",
        "spec.storage.storageClass": "existing volumes stay on their class; only a new cluster moves the data",
        "spec.walStorage": "WAL volumes cannot be removed or moved to another class in place",
    },
    SCHEDULED_BACKUP_TYPE: {
        "spec.cluster": "the CRD forbids changing the cluster a schedule backs up: the API server refuses the update",
    },
}


@dataclass
class MetricsScraper:
    """Prometheus as kube-prometheus-stack deploys it: where its pods run, and the labels it selects monitors by."""

    namespace: str = "monitoring"
    pod_labels: dict[str, str] = field(default_factory=lambda: {"app.kubernetes.io/name": "prometheus"})
    # kube-prometheus-stack's default podMonitorSelector: {matchLabels: {release: <helm release>}}.
    monitor_labels: dict[str, str] = field(default_factory=lambda: {"release": "kube-prometheus-stack"})


@dataclass
class BackupTarget:
    """The stack's bucket, and static keys when the stack uses them instead of an IAM role."""

    settings: BackupsConfig
    access_key_id: Optional[pulumi.Input[str]] = None
    secret_access_key: Optional[pulumi.Input[str]] = None
    # The bucket resource: the ObjectStore waits for it. Its name is the config's (known in every preview).
    bucket: Optional[pulumi.Resource] = None


@dataclass
class DatabaseClusterArgs:
    database: DatabaseConfig
    namespace: str
    cnpg: CnpgSettings
    backup: Optional[BackupTarget] = None  # None: not backed up (the stack config refuses that in prod)
    metrics_scraper: MetricsScraper = field(default_factory=MetricsScraper)
    spread_strictly: bool = False  # True: never two instances on one node (prod)
    protect: bool = False  # True: protect + retain_on_delete on the Cluster and its credentials (prod)
    # The pods that may connect besides the `usedBy` services (which go through the pooler when there is one), by
    # their app.kubernetes.io/name: the services' migration Jobs, always straight to the primary (schema changes
    # take session-level locks that a transaction-mode pooler would break).
    direct_clients: list[str] = field(default_factory=list)
    # Peers in other namespaces that connect with the application's credentials through the pooler, or straight to
    # the instances without one: KEDA's operator, for a service's postgresql trigger (full NetworkPolicy peers).
    outside_clients: list[dict] = field(default_factory=list)
    # How the pods read the stack's bucket when `restore` reads an archive of another stack (its credentials).
    restore_access: Optional[BackupTarget] = None

    @property
    def client_names(self) -> list[str]:
        return sorted(self.database.used_by)

    @property
    def pooled(self) -> bool:
        return self.database.pooler is not None


def object_store_egress(settings: BackupsConfig) -> list[dict]:
    """Egress rules to the object store as the database pods reach it (the namespace denies egress by default)."""
    parsed = urlparse(settings.endpoint) if settings.endpoint else None
    host = parsed.hostname if parsed else None
    port = (parsed.port or (443 if parsed.scheme == "https" else 80)) if parsed else 443
    ports = [{"protocol": "TCP", "port": port}]
    rules = []
    in_cluster = IN_CLUSTER_HOST.match(host) if host else None
    if in_cluster:
        # An S3-compatible store in the cluster (MinIO): its namespace, on its port.
        peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": in_cluster["namespace"]}}}
        rules.append({"to": [peer], "ports": ports})
    elif host and _is_ip(host):
        rules.append({"to": [{"ipBlock": {"cidr": f"{host}/{ipaddress.ip_address(host).max_prefixlen}"}}], "ports": ports})
    else:
        # AWS S3 (or a store on the internet): public addresses only.
        # Outside the cluster: object storage on the internet, never the cluster's or the VPC's private addresses.
        rules.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_IPV4_RANGES)}}], "ports": ports})
    credentials = settings.credentials
    if credentials.iam_role and not credentials.role_arn:
        rules.append(
            {
                "to": [{"ipBlock": {"cidr": cidr}} for cidr in INSTANCE_CREDENTIAL_ENDPOINTS],
                "ports": [{"protocol": "TCP", "port": 80}],
            }
        )
    return rules


def cluster_pods(cluster_name: str) -> dict:
    """The cluster's own pods (instances and their bootstrap, join and restore jobs), without its poolers' pods."""
    return {
        "matchLabels": {CLUSTER_LABEL: cluster_name},
        "matchExpressions": [{"key": POD_ROLE_LABEL, "operator": "NotIn", "values": ["pooler"]}],
    }


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class DatabaseCluster(pulumi.ComponentResource):
    cluster_name: str
    secret_name: str
    host: str
    port: int

    def __init__(self, name: str, args: DatabaseClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:database:DatabaseCluster", name, None, opts)
        database = args.database
        self.database = database
        self.cluster_name = database.name
        self.secret_name = f"{database.name}-app"
        # CloudNativePG's read-write Service always points at the primary; a pooler's Service at the pooler.
        self.primary_host = f"{database.name}-rw.{args.namespace}.svc"
        self.host, self.port = self.primary_host, POSTGRES_PORT
        if args.pooled:
            self.host, self.port = f"{pooler_name(database.name)}.{args.namespace}.svc", PGBOUNCER_PORT
        labels = hardening.standard_labels(database.name, "database")
        instance_pods = {CLUSTER_LABEL: database.name, POD_ROLE_LABEL: "instance"}
        # Data is kept when a destroy or a replacement would delete it (prod). Set per child, never on the
        # component: every child would inherit it, and a schedule or a policy is no data. (A prod stack also
        # protects every resource through the component's options, __main__.py.)
        data_safety = {"protect": args.protect, "retain_on_delete": args.protect}

        def metadata(object_name: str, extra_labels: dict[str, str] | None = None) -> dict:
            return {"name": object_name, "namespace": args.namespace, "labels": {**labels, **(extra_labels or {})}}

        password = random.RandomPassword(
            f"{name}-password",
            length=PASSWORD_LENGTH,
            # Letters and digits only: safe in a URL and in a libpq connection string without escaping.
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        secret_value = self._password = pulumi.Output.secret(password.result)
        credentials = k8s.core.v1.Secret(
            f"{name}-app-secret",
            # cnpg.io/reload: the instances pick up a changed password without a restart.
            metadata=metadata(self.secret_name, {"cnpg.io/reload": "true"}),
            type="kubernetes.io/basic-auth",
            string_data=pulumi.Output.secret(
                secret_value.apply(
                    lambda value: {
                        "username": database.owner_name,
                        "password": value,
                        "uri": self._uri(value, self.host, self.port),
                        # For the migration Jobs, which bypass the pooler.
                        **({DIRECT_URI_KEY: self._uri(value, self.primary_host, POSTGRES_PORT)} if args.pooled else {}),
                    }
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, **data_safety),
        )

        depends = [credentials]
        plugins = []
        access = args.backup or args.restore_access
        keys_secret = self._backup_credentials(name, args, access, metadata) if access else None
        if args.backup is not None:
            object_store = self._object_store(
                f"{name}-object-store",
                f"{database.name}-backups",
                # Each cluster archives under <bucket>/<namespace>/<cluster name> (barman appends the server name).
                f"s3://{args.backup.settings.bucket}/{args.namespace}/",
                args.backup,
                keys_secret,
                metadata,
                # The same window as the bucket keeps replaced and deleted object versions.
                retention_days=args.backup.settings.retention_days,
                bucket=args.backup.bucket,
            )
            depends.append(object_store)
            plugins = [
                {
                    "name": BARMAN_CLOUD_PLUGIN,
                    "isWALArchiver": True,  # continuous WAL archiving: point-in-time recovery, not only nightly copies
                    "parameters": {"barmanObjectName": f"{database.name}-backups"},
                }
            ]
        restore_source = None
        if database.restore is not None:
            restore_source, source_store = self._restore_source(name, args, keys_secret, metadata)
            if source_store is not None:
                depends.append(source_store)

        self.cluster = readiness.custom_resource(
            f"{name}-cluster",
            api_version=CNPG_API_VERSION,
            kind="Cluster",
            metadata=metadata(database.name),
            spec=self._cluster_spec(args, plugins, restore_source),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends, **data_safety),
        )

        if args.backup is not None:
            readiness.custom_resource(
                f"{name}-scheduled-backup",
                api_version=CNPG_API_VERSION,
                kind="ScheduledBackup",
                metadata=metadata(f"{database.name}-scheduled"),
                spec={
                    "cluster": {"name": database.name},
                    "schedule": database.backup.schedule,
                    "method": "plugin",
                    "pluginConfiguration": {"name": BARMAN_CLOUD_PLUGIN},
                    # A first base backup right away: until one exists, archived WAL alone cannot restore anything.
                    "immediate": True,
                    # Backup objects go with their schedule; the data in the bucket follows the retention policy.
                    "backupOwnerReference": "self",
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
            )

        readiness.custom_resource(
            f"{name}-pod-monitor",
            api_version=POD_MONITOR_API_VERSION,
            kind="PodMonitor",
            metadata=metadata(database.name, args.metrics_scraper.monitor_labels),
            spec={
                "selector": {"matchLabels": instance_pods},
                "podMetricsEndpoints": [{"port": METRICS_PORT_NAME}],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

        clients = [{"matchLabels": hardening.selector_labels(client)} for client in args.client_names]
        direct_clients = [{"matchLabels": hardening.selector_labels(client)} for client in sorted(args.direct_clients)]
        # With a pooler the clients reach it, and only it (and the migrations) reach the instances.
        entry_pods = {"matchLabels": instance_pods}
        if args.pooled:
            self.pooler = ConnectionPooler(
                f"{name}-pooler",
                ConnectionPoolerArgs(
                    cluster_name=database.name,
                    pooler=database.pooler,
                    namespace=args.namespace,
                    cnpg=args.cnpg,
                    client_selectors=clients,
                    outside_clients=args.outside_clients,
                    instance_selector={"matchLabels": instance_pods},
                    instance_port=POSTGRES_PORT,
                    scraper_peer=self._scraper_peer(args.metrics_scraper),
                    monitor_labels=args.metrics_scraper.monitor_labels,
                    spread_strictly=args.spread_strictly,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
            )
            entry_pods = pooler_pods(database.name)
            clients = [entry_pods]

        database_policy = self._database_policy_spec(args, clients + direct_clients)
        database_policy_metadata = metadata(f"{database.name}-database")
        if any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for rule in database_policy["egress"] for peer in rule["to"]):
            database_policy_metadata["annotations"] = {
                EGRESS_REASON_ANNOTATION: f"backups: the object store of bucket {(args.backup or args.restore_access).settings.bucket} "
                "on AWS S3, which has no fixed addresses"
            }
        k8s.networking.v1.NetworkPolicy(
            f"{name}-db-netpol",
            metadata=database_policy_metadata,
            spec=database_policy,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The clients' way out: to the pooler (or the instances), and the migrations' to the instances. Two policies
        # when the two differ: an egress rule cannot tell apart the pods its policy selects.
        instances = {"matchLabels": instance_pods}
        if args.pooled:
            ways_out = [("clients", args.client_names, entry_pods, self.port), ("direct-clients", sorted(args.direct_clients), instances, POSTGRES_PORT)]
        else:
            ways_out = [("clients", sorted(args.client_names + args.direct_clients), instances, POSTGRES_PORT)]
        for suffix, names, destination, port in ways_out:
            if not names:
                continue
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{suffix}-netpol",
                metadata=metadata(f"{database.name}-{suffix}"),
                spec={
                    "podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": names}]},
                    "policyTypes": ["Egress"],
                    "egress": [{"to": [{"podSelector": destination}], "ports": [{"protocol": "TCP", "port": port}]}],
                },
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.register_outputs(
            {"cluster_name": self.cluster_name, "secret_name": self.secret_name, "host": self.host, "port": self.port}
        )

    # --- what a service using the database gets ---------------------------------------------------------------

    def connection_env(self) -> dict[str, str]:
        """Plain settings for the service's ConfigMap: where the database is (nothing secret)."""
        prefix = self.database.env_prefix
        return {
            f"{prefix}_HOST": self.host,
            f"{prefix}_PORT": str(self.port),
            f"{prefix}_NAME": self.database.database_name,
        }

    def secret_refs(self) -> list[SecretRef]:
        """Credentials for the service's env, read from the Secret by the kubelet: never a literal in a spec."""
        prefix = self.database.env_prefix
        return [
            SecretRef(f"{prefix}_USER", self.secret_name, "username"),
            SecretRef(f"{prefix}_PASSWORD", self.secret_name, "password"),
            SecretRef(f"{prefix}_URL", self.secret_name, "uri"),
        ]

    def keda_sources(self) -> dict[str, SecretKey]:
        return {self.cluster_name: self.connection_secret()}

    def rollout_secrets(self) -> dict[str, pulumi.Output[str]]:
        """The password: should it ever change, the services' pods restart to read it (components.backing_service)."""
        return {f"database/{self.cluster_name}": self._password}

    @property
    def client_names(self) -> list[str]:
        return sorted(self.database.used_by)

    def connection_secret(self) -> SecretKey:
        """The key of the credentials Secret holding a full connection URL (through the pooler when there is one), for
        clients that take one string, such as KEDA's postgresql trigger."""
        return SecretKey(self.secret_name, "uri")

    def migration_env(self) -> dict[str, str]:
        """What a migration Job sets over the service's settings: the primary itself, past the pooler (none without)."""
        if self.host == self.primary_host:
            return {}
        prefix = self.database.env_prefix
        return {f"{prefix}_HOST": self.primary_host, f"{prefix}_PORT": str(POSTGRES_PORT)}

    def migration_secret_refs(self) -> list[SecretRef]:
        if self.host == self.primary_host:
            return []
        return [SecretRef(f"{self.database.env_prefix}_URL", self.secret_name, DIRECT_URI_KEY)]

    # --- the pieces -------------------------------------------------------------------------------------------

    def _uri(self, password: str, host: str, port: int) -> str:
        user, name = quote(self.database.owner_name, safe=""), quote(self.database.database_name, safe="")
        # CloudNativePG serves TLS out of the box (and its poolers the cluster's certificate): never in clear.
        return f"postgresql://{user}:{quote(password, safe='')}@{host}:{port}/{name}?sslmode=require"

    def _cluster_spec(self, args: DatabaseClusterArgs, plugins: list[dict], restore_source: Optional[dict]) -> dict:
        database = args.database
        application = {"database": database.database_name, "owner": database.owner_name, "secret": {"name": self.secret_name}}
        if restore_source is None:
            bootstrap = {"initdb": application}
        else:
            # The database and owner come from the backup; after recovery CloudNativePG creates them if missing and
            # sets the owner's password from our Secret, so the services' credentials work on the restored data.
            recovery: dict[str, Any] = {"source": restore_source["name"], **application}
            if database.restore.target_time:
                recovery["recoveryTarget"] = {"targetTime": database.restore.target_time}
            bootstrap = {"recovery": recovery}
        spec: dict[str, Any] = {
            "instances": database.instances,
            # Pinned: an operator upgrade must not change the PostgreSQL version under the data.
            "imageName": database.image_name,
            "storage": _volume(database.storage),
            "resources": {
                "requests": {"cpu": database.resources.requests.cpu, "memory": database.resources.requests.memory},
                "limits": {"cpu": database.resources.limits.cpu, "memory": database.resources.limits.memory},
            },
            "postgresql": {"parameters": dict(database.parameters)},
            # The postgres superuser stays without a password (no network login) unless the stack asks for it.
            "enableSuperuserAccess": database.enable_superuser_access,
            "bootstrap": bootstrap,
            # One instance per node; prod refuses to schedule rather than put two copies on one node.
            "affinity": {
                "enablePodAntiAffinity": True,
                "topologyKey": "kubernetes.io/hostname",
                "podAntiAffinityType": "required" if args.spread_strictly else "preferred",
            },
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    # The instances only: the cluster label is on its poolers' and jobs' pods too.
                    "labelSelector": {"matchLabels": {CLUSTER_LABEL: database.name, POD_ROLE_LABEL: "instance"}},
                }
            ],
            # Only part-of: CloudNativePG labels its pods with app.kubernetes.io/* itself, and a pod's
            # app.kubernetes.io/name is what the services' network policies select on.
            "inheritedMetadata": {"labels": {"app.kubernetes.io/part-of": "platform"}},
        }
        if database.wal_storage is not None:
            # WAL on its own volume: a burst of writes cannot fill the data volume, and the other way round.
            spec["walStorage"] = _volume(database.wal_storage)
        if plugins:
            spec["plugins"] = plugins
        if restore_source is not None:
            spec["externalClusters"] = [restore_source]
        access = args.backup or args.restore_access
        if access is not None and access.settings.credentials.role_arn:
            # IRSA, as for services (hardening.IRSA_ANNOTATION): the instance pods (and so the plugin's sidecar) assume
            # this role, with the token the EKS pod identity webhook projects; no keys anywhere. On AWS S3 (no endpoint)
            # they reach STS through the object store's way out (object_store_egress: public addresses on 443).
            spec["serviceAccountTemplate"] = {
                "metadata": {"annotations": {IRSA_ANNOTATION: access.settings.credentials.role_arn}}
            }
        return spec

    def _restore_source(
        self, name: str, args: DatabaseClusterArgs, keys_secret: Optional[k8s.core.v1.Secret], metadata
    ) -> tuple[dict, Optional[k8s.apiextensions.CustomResource]]:
        """The externalClusters entry the recovery reads: a database of this stack through its own ObjectStore (read
        only: barman restores from it, the restored cluster archives into its own), or an ObjectStore made here for
        an archive elsewhere."""
        source = args.database.restore.source
        if isinstance(source, str):
            store_name, server_name, store = f"{source}-backups", source, None
        else:
            if args.restore_access is None:
                raise ValueError(f"DatabaseCluster {name!r}: restoring from another bucket needs the stack's backup settings")
            store_name, server_name = f"{args.database.name}-restore-source", source.server_name
            store = self._object_store(
                f"{name}-restore-source",
                store_name,
                f"s3://{source.bucket}/{source.path.strip('/')}/",
                args.restore_access,
                keys_secret,
                metadata,
            )
        entry = {
            "name": f"{server_name}-backups",
            "plugin": {
                "name": BARMAN_CLOUD_PLUGIN,
                "parameters": {"barmanObjectName": store_name, "serverName": server_name},
            },
        }
        return entry, store

    def _backup_credentials(
        self, name: str, args: DatabaseClusterArgs, access: BackupTarget, metadata
    ) -> Optional[k8s.core.v1.Secret]:
        """The static keys' Secret, which every ObjectStore of this cluster names; None with an IAM role."""
        if not access.settings.credentials.static_keys:
            return None
        if access.access_key_id is None or access.secret_access_key is None:
            raise ValueError(f"DatabaseCluster {name!r}: the backup credentials are static keys, but no key values were given")
        return k8s.core.v1.Secret(
            f"{name}-backup-credentials",
            metadata=metadata(f"{args.database.name}-backup-credentials", {"cnpg.io/reload": "true"}),
            type="Opaque",
            string_data={
                "ACCESS_KEY_ID": pulumi.Output.secret(access.access_key_id),
                "ACCESS_SECRET_KEY": pulumi.Output.secret(access.secret_access_key),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _object_store(
        self,
        resource_name: str,
        object_name: str,
        destination_path: str,
        access: BackupTarget,
        keys_secret: Optional[k8s.core.v1.Secret],
        metadata,
        retention_days: Optional[int] = None,
        bucket: Optional[pulumi.Resource] = None,
    ) -> k8s.apiextensions.CustomResource:
        settings = access.settings
        depends: list[pulumi.Resource] = [bucket] if bucket is not None else []
        if keys_secret is not None:
            depends.append(keys_secret)
            secret_name = f"{self.cluster_name}-backup-credentials"
            s3_credentials: dict[str, Any] = {
                "accessKeyId": {"name": secret_name, "key": "ACCESS_KEY_ID"},
                "secretAccessKey": {"name": secret_name, "key": "ACCESS_SECRET_KEY"},
            }
        else:
            s3_credentials = {"inheritFromIAMRole": True}
        configuration: dict[str, Any] = {
            "destinationPath": destination_path,
            "s3Credentials": s3_credentials,
            "wal": {"compression": settings.compression, "encryption": settings.encryption, "maxParallel": 2},
            "data": {"compression": settings.compression, "encryption": settings.encryption, "jobs": 2},
        }
        if settings.endpoint:
            configuration["endpointURL"] = settings.endpoint.rstrip("/")
        spec: dict[str, Any] = {
            "configuration": configuration,
            # The plugin injects this sidecar into every instance pod; unsized, it takes the LimitRange default.
            "instanceSidecarConfiguration": {"resources": BACKUP_SIDECAR_RESOURCES.model_dump()},
        }
        if retention_days is not None:
            spec["retentionPolicy"] = f"{retention_days}d"
        return readiness.custom_resource(
            resource_name,
            api_version=OBJECT_STORE_API_VERSION,
            kind="ObjectStore",
            metadata=metadata(object_name),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )

    @staticmethod
    def _scraper_peer(scraper: MetricsScraper) -> dict:
        return {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": scraper.namespace}},
            "podSelector": {"matchLabels": dict(scraper.pod_labels)},
        }

    @classmethod
    def _database_policy_spec(cls, args: DatabaseClusterArgs, clients: list[dict]) -> dict:
        """Who reaches the database pods (and on which port), and where they may go."""
        database = args.database
        outside = [] if args.pooled else list(args.outside_clients)  # with a pooler they reach it, not the instances
        same_cluster = {"podSelector": cluster_pods(database.name)}
        postgres = {"protocol": "TCP", "port": POSTGRES_PORT}
        status = {"protocol": "TCP", "port": STATUS_PORT}
        ingress = [
            {"from": [{"podSelector": selector} for selector in clients] + outside, "ports": [postgres]},
            # Replication and the instance managers' status checks between the cluster's own pods.
            {"from": [same_cluster], "ports": [postgres, status]},
            # The operator polls each instance's status and connects to PostgreSQL (CloudNativePG's networking docs).
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": args.cnpg.operator_namespace}},
                        "podSelector": {"matchLabels": dict(OPERATOR_POD_LABELS)},
                    }
                ],
                "ports": [status, postgres],
            },
            {"from": [cls._scraper_peer(args.metrics_scraper)], "ports": [{"protocol": "TCP", "port": METRICS_PORT}]},
        ]
        if not clients and not outside:
            ingress = ingress[1:]  # an empty `from` would mean "from anywhere"
        egress = [{"to": [same_cluster], "ports": [postgres, status]}]
        if args.cnpg.api_server_cidrs:  # never an empty `to`: that would mean "to anywhere"
            # The instance manager watches its Cluster and writes status through the Kubernetes API.
            egress.append(
                {
                    "to": [{"ipBlock": {"cidr": cidr}} for cidr in args.cnpg.api_server_cidrs],
                    "ports": [{"protocol": "TCP", "port": port} for port in args.cnpg.api_server_ports],
                }
            )
        access = args.backup or args.restore_access
        if access is not None:
            egress += object_store_egress(access.settings)
        return {
            "podSelector": cluster_pods(database.name),
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        }


def _volume(volume) -> dict:
    spec = {"size": volume.size}
    if volume.storage_class:
        spec["storageClass"] = volume.storage_class
    return spec
