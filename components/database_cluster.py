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

from components import hardening
from components.app_service import SecretRef
from components.backup_bucket_config import BackupsConfig
from components.database_cluster_config import CnpgSettings, DatabaseConfig

# The versions the local add-on installs and tools/crds was extracted from (tools/crds/SOURCE.md): the
# Barman Cloud plugin needs CloudNativePG >= 1.26 (>= 1.27 recommended); moving either means re-extracting
# the CRDs and re-running the tests.
CNPG_OPERATOR_VERSION = "1.30.0"
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
CLUSTER_LABEL = "cnpg.io/cluster"  # on every pod of a cluster: instances and its bootstrap/join jobs
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "cloudnative-pg"}  # the operator's pods (manifest and Helm chart)
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
PASSWORD_LENGTH = 32
# Outside the cluster: object storage on the internet, never the cluster's or the VPC's private addresses.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
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
        rules.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}], "ports": ports})
    credentials = settings.credentials
    if credentials.iam_role and not credentials.role_arn:
        rules.append(
            {
                "to": [{"ipBlock": {"cidr": cidr}} for cidr in INSTANCE_CREDENTIAL_ENDPOINTS],
                "ports": [{"protocol": "TCP", "port": 80}],
            }
        )
    return rules


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
        # CloudNativePG's read-write Service always points at the primary.
        self.host = f"{database.name}-rw.{args.namespace}.svc"
        self.port = POSTGRES_PORT
        labels = hardening.standard_labels(database.name, "database")
        cluster_pods = {CLUSTER_LABEL: database.name}
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
        secret_value = pulumi.Output.secret(password.result)
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
                        "uri": self._uri(value),
                    }
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, **data_safety),
        )

        depends = [credentials]
        plugins = []
        if args.backup is not None:
            object_store = self._object_store(name, args, metadata)
            depends.append(object_store)
            plugins = [
                {
                    "name": BARMAN_CLOUD_PLUGIN,
                    "isWALArchiver": True,  # continuous WAL archiving: point-in-time recovery, not only nightly copies
                    "parameters": {"barmanObjectName": f"{database.name}-backups"},
                }
            ]

        self.cluster = k8s.apiextensions.CustomResource(
            f"{name}-cluster",
            api_version=CNPG_API_VERSION,
            kind="Cluster",
            metadata=metadata(database.name),
            spec=self._cluster_spec(args, plugins),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends, **data_safety),
        )

        if args.backup is not None:
            k8s.apiextensions.CustomResource(
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

        k8s.apiextensions.CustomResource(
            f"{name}-pod-monitor",
            api_version=POD_MONITOR_API_VERSION,
            kind="PodMonitor",
            metadata=metadata(database.name, args.metrics_scraper.monitor_labels),
            spec={
                "selector": {"matchLabels": {**cluster_pods, "cnpg.io/podRole": "instance"}},
                "podMetricsEndpoints": [{"port": METRICS_PORT_NAME}],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

        k8s.networking.v1.NetworkPolicy(
            f"{name}-db-netpol",
            metadata=metadata(f"{database.name}-database"),
            spec=self._database_policy_spec(args),
            opts=pulumi.ResourceOptions(parent=self),
        )
        if database.used_by:
            k8s.networking.v1.NetworkPolicy(
                f"{name}-clients-netpol",
                metadata=metadata(f"{database.name}-clients"),
                spec={
                    "podSelector": {
                        "matchExpressions": [
                            {"key": "app.kubernetes.io/name", "operator": "In", "values": sorted(database.used_by)}
                        ]
                    },
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [{"podSelector": {"matchLabels": {**cluster_pods, "cnpg.io/podRole": "instance"}}}],
                            "ports": [{"protocol": "TCP", "port": POSTGRES_PORT}],
                        }
                    ],
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

    # --- the pieces -------------------------------------------------------------------------------------------

    def _uri(self, password: str) -> str:
        user, name = quote(self.database.owner_name, safe=""), quote(self.database.database_name, safe="")
        # CloudNativePG serves TLS out of the box: refuse to talk to it in clear.
        return f"postgresql://{user}:{quote(password, safe='')}@{self.host}:{self.port}/{name}?sslmode=require"

    def _cluster_spec(self, args: DatabaseClusterArgs, plugins: list[dict]) -> dict:
        database = args.database
        spec: dict[str, Any] = {
            "instances": database.instances,
            "storage": _volume(database.storage),
            "resources": {
                "requests": {"cpu": database.resources.requests.cpu, "memory": database.resources.requests.memory},
                "limits": {"cpu": database.resources.limits.cpu, "memory": database.resources.limits.memory},
            },
            "postgresql": {"parameters": dict(database.parameters)},
            # The postgres superuser stays without a password (no network login) unless the stack asks for it.
            "enableSuperuserAccess": database.enable_superuser_access,
            "bootstrap": {
                "initdb": {
                    "database": database.database_name,
                    "owner": database.owner_name,
                    "secret": {"name": self.secret_name},
                }
            },
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
                    "labelSelector": {"matchLabels": {CLUSTER_LABEL: database.name}},
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
        backup = args.backup
        if backup is not None and backup.settings.credentials.role_arn:
            # IRSA: the instance pods (and so the plugin's sidecar) assume this role; no keys anywhere.
            spec["serviceAccountTemplate"] = {
                "metadata": {"annotations": {IRSA_ANNOTATION: backup.settings.credentials.role_arn}}
            }
        return spec

    def _object_store(self, name: str, args: DatabaseClusterArgs, metadata) -> k8s.apiextensions.CustomResource:
        backup = args.backup
        assert backup is not None
        settings = backup.settings
        depends = [backup.bucket] if backup.bucket is not None else []
        if settings.credentials.static_keys:
            if backup.access_key_id is None or backup.secret_access_key is None:
                raise ValueError(f"DatabaseCluster {name!r}: the backup credentials are static keys, but no key values were given")
            keys_secret = k8s.core.v1.Secret(
                f"{name}-backup-credentials",
                metadata=metadata(f"{args.database.name}-backup-credentials", {"cnpg.io/reload": "true"}),
                type="Opaque",
                string_data={
                    "ACCESS_KEY_ID": pulumi.Output.secret(backup.access_key_id),
                    "ACCESS_SECRET_KEY": pulumi.Output.secret(backup.secret_access_key),
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
            depends.append(keys_secret)
            s3_credentials: dict[str, Any] = {
                "accessKeyId": {"name": f"{args.database.name}-backup-credentials", "key": "ACCESS_KEY_ID"},
                "secretAccessKey": {"name": f"{args.database.name}-backup-credentials", "key": "ACCESS_SECRET_KEY"},
            }
        else:
            s3_credentials = {"inheritFromIAMRole": True}
        configuration: dict[str, Any] = {
            # Each cluster archives under <bucket>/<namespace>/<cluster name> (barman appends the server name).
            "destinationPath": f"s3://{settings.bucket}/{args.namespace}/",
            "s3Credentials": s3_credentials,
            "wal": {"compression": settings.compression, "encryption": settings.encryption, "maxParallel": 2},
            "data": {"compression": settings.compression, "encryption": settings.encryption, "jobs": 2},
        }
        if settings.endpoint:
            configuration["endpointURL"] = settings.endpoint.rstrip("/")
        return k8s.apiextensions.CustomResource(
            f"{name}-object-store",
            api_version=OBJECT_STORE_API_VERSION,
            kind="ObjectStore",
            metadata=metadata(f"{args.database.name}-backups"),
            spec={
                "configuration": configuration,
                # The same window as the bucket keeps replaced and deleted object versions.
                "retentionPolicy": f"{settings.retention_days}d",
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )

    @staticmethod
    def _database_policy_spec(args: DatabaseClusterArgs) -> dict:
        """Who reaches the database pods (and on which port), and where they may go."""
        database, scraper = args.database, args.metrics_scraper
        same_cluster = {"podSelector": {"matchLabels": {CLUSTER_LABEL: database.name}}}
        postgres = {"protocol": "TCP", "port": POSTGRES_PORT}
        status = {"protocol": "TCP", "port": STATUS_PORT}
        ingress = [
            {
                "from": [{"podSelector": {"matchLabels": hardening.selector_labels(service)}} for service in sorted(database.used_by)],
                "ports": [postgres],
            },
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
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": scraper.namespace}},
                        "podSelector": {"matchLabels": dict(scraper.pod_labels)},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
            },
        ]
        if not database.used_by:
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
        if args.backup is not None:
            egress += object_store_egress(args.backup.settings)
        return {
            "podSelector": {"matchLabels": {CLUSTER_LABEL: database.name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        }


def _volume(volume) -> dict:
    spec = {"size": volume.size}
    if volume.storage_class:
        spec["storageClass"] = volume.storage_class
    return spec
