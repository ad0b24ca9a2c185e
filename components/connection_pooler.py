"""ConnectionPooler: PgBouncer in front of one database (a CloudNativePG `Pooler`, read-write), hardened and isolated.

Autoscaled services multiply connections (prod: up to 12 pods, each with its own pool, against one
`max_connections`); the pooler caps what reaches PostgreSQL at `instances x defaultPoolSize` while clients keep
their own pools. Owns the `Pooler`, a PodDisruptionBudget (with more than one instance), a PodMonitor for its
exporter and the NetworkPolicy of its pods: its clients reach it, it reaches the database's instances and the
Kubernetes API (its instance manager reads the Pooler and the cluster's certificates), Prometheus reaches its
metrics port. Created by DatabaseCluster, as its child.

Decisions worth knowing:

- PgBouncer authenticates clients with the database's own credentials (CloudNativePG's auth_query, over the
  cluster's TLS client certificate), so services keep the same user, password and `sslmode=require`.
- The image is set on the template's `pgbouncer` container: it overrides every other source (CloudNativePG's
  connection pooling docs, "PgBouncer image"), and the policy pack judges it like any container's image.
- CloudNativePG labels pooler pods `cnpg.io/cluster: <cluster>` like the instances, and `cnpg.io/podRole: pooler`;
  the database's own policies tell the two apart by that role.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import hardening, readiness
from components.app_service import topology_spread
from components.database_cluster_config import CnpgSettings, PoolerConfig, pooler_name

POOLER_NAME_LABEL = "cnpg.io/poolerName"
POD_ROLE_LABEL = "cnpg.io/podRole"
# The init container CloudNativePG adds to every pooler pod (it copies the operator's binary in). Unless the template
# declares it with resources, it gets the namespace's LimitRange default, and the quota counts that for every pod.
BOOTSTRAP_CONTAINER = "bootstrap-controller"
PGBOUNCER_PORT = 5432
PGBOUNCER_METRICS_PORT = 9127
PGBOUNCER_CONTAINER = "pgbouncer"
# PgBouncer is light: a connection costs it about 2 kB.
RESOURCES = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}}


@dataclass
class ConnectionPoolerArgs:
    cluster_name: str
    pooler: PoolerConfig
    namespace: str
    cnpg: CnpgSettings
    client_selectors: list[dict] = field(default_factory=list)  # podSelectors of the pods that may connect
    # Peers in other namespaces that connect with the application's credentials (KEDA's operator, for a postgresql
    # trigger), as full NetworkPolicy peers (namespaceSelector + podSelector).
    outside_clients: list[dict] = field(default_factory=list)
    instance_selector: dict = field(default_factory=dict)  # the database's instance pods
    instance_port: int = 5432  # PostgreSQL's port on them
    scraper_peer: dict = field(default_factory=dict)  # Prometheus, as a NetworkPolicy peer
    monitor_labels: dict[str, str] = field(default_factory=dict)  # what Prometheus selects PodMonitors by
    spread_strictly: bool = False  # True: never two pooler pods on one node (prod)


def pooler_pods(cluster_name: str) -> dict:
    """The pooler's pods, as a podSelector (CloudNativePG labels them with the Pooler's name)."""
    return {"matchLabels": {POOLER_NAME_LABEL: pooler_name(cluster_name)}}


class ConnectionPooler(pulumi.ComponentResource):
    host: str
    port: int

    def __init__(self, name: str, args: ConnectionPoolerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:database:ConnectionPooler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        pooler, object_name = args.pooler, pooler_name(args.cluster_name)
        labels = hardening.standard_labels(object_name, "database-pooler")
        self.host = f"{object_name}.{args.namespace}.svc"  # the Service CloudNativePG names after the Pooler
        self.port = PGBOUNCER_PORT

        def metadata(extra_labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict:
            return {
                "name": object_name,
                "namespace": args.namespace,
                "labels": {**labels, **(extra_labels or {})},
                **({"annotations": annotations} if annotations else {}),
            }

        self.pooler = readiness.custom_resource(
            f"{name}-pooler",
            api_version="postgresql.cnpg.io/v1",
            kind="Pooler",
            # The pooler's instance manager watches its Pooler and reads the cluster's certificates: it needs a token.
            metadata=metadata(annotations={hardening.ALLOW_TOKEN_ANNOTATION: "true"}),
            spec={
                "cluster": {"name": args.cluster_name},
                "instances": pooler.instances,
                "type": "rw",
                "pgbouncer": {
                    "poolMode": pooler.pool_mode,
                    "parameters": {
                        "max_client_conn": str(pooler.max_client_connections),
                        "default_pool_size": str(pooler.default_pool_size),
                    },
                },
                "template": {
                    # Not app.kubernetes.io/name: CloudNativePG sets it on pooler pods itself.
                    "metadata": {"labels": {"app.kubernetes.io/part-of": "platform"}},
                    # No securityContext: CloudNativePG replaces the pod's and pgbouncer's with its own restricted
                    # ones (policies/operator_pods.py models the pod it builds; `make e2e` checks the real one).
                    "spec": {
                        "initContainers": [{"name": BOOTSTRAP_CONTAINER, "resources": RESOURCES}],
                        "containers": [{"name": PGBOUNCER_CONTAINER, "image": pooler.image, "resources": RESOURCES}],
                        # One pooler pod per node and zone where it can: a node or zone outage keeps the others.
                        "topologySpreadConstraints": topology_spread(
                            pooler_pods(args.cluster_name)["matchLabels"], args.spread_strictly
                        ),
                    },
                },
            },
            opts=child,
        )
        if pooler.instances > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=metadata(),
                # One pooler pod at a time: the others keep every connection path open.
                spec=hardening.one_at_a_time_disruption(pooler_pods(args.cluster_name)["matchLabels"]),
                opts=child,
            )
        readiness.custom_resource(
            f"{name}-pod-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata=metadata(args.monitor_labels),
            spec={"selector": pooler_pods(args.cluster_name), "podMetricsEndpoints": [{"port": "metrics"}]},
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol",
            metadata=metadata(),
            spec=self._policy_spec(args),
            opts=child,
        )
        self.register_outputs({"host": self.host, "port": self.port})

    @staticmethod
    def _policy_spec(args: ConnectionPoolerArgs) -> dict:
        ingress = [{"from": [args.scraper_peer], "ports": [{"protocol": "TCP", "port": PGBOUNCER_METRICS_PORT}]}]
        if args.client_selectors or args.outside_clients:  # an empty `from` would mean "from anywhere"
            ingress.insert(
                0,
                {
                    "from": [{"podSelector": selector} for selector in args.client_selectors] + list(args.outside_clients),
                    "ports": [{"protocol": "TCP", "port": PGBOUNCER_PORT}],
                },
            )
        egress = [{"to": [{"podSelector": args.instance_selector}], "ports": [{"protocol": "TCP", "port": args.instance_port}]}]
        if args.cnpg.api_server_cidrs:  # never an empty `to`: that would mean "to anywhere"
            egress.append(
                {
                    "to": [{"ipBlock": {"cidr": cidr}} for cidr in args.cnpg.api_server_cidrs],
                    "ports": [{"protocol": "TCP", "port": port} for port in args.cnpg.api_server_ports],
                }
            )
        return {
            "podSelector": pooler_pods(args.cluster_name),
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        }
