"""Monitoring: what Prometheus scrapes, what it alerts on, and a Grafana dashboard per service.

Owns a ServiceMonitor and a NetworkPolicy (Prometheus -> metrics port) per service that serves metrics, one
PrometheusRule with the platform's alerts, and one dashboard ConfigMap per service. Built for
kube-prometheus-stack: its Prometheus selects monitors and rules by label (`selector_labels`, by default
`release: kube-prometheus-stack`), and its Grafana sidecar loads ConfigMaps labelled `grafana_dashboard: "1"`.

Decisions worth knowing:

- Databases are scraped through the PodMonitor each DatabaseCluster makes itself (it knows its pods and
  port); this component only alerts on them (`cnpg_*`, Barman Cloud plugin and kubelet volume metrics),
  given their names, instance counts and whether they are backed up.
- Service SLO alerts are multi-window, multi-burn-rate alerts (Google SRE workbook): a fast burn (14.4x the
  budget over 1h and 5m: 2% of a 30-day budget in an hour) pages, a slow burn (6x over 6h and 30m) warns.
  Without traffic the ratios are empty and stay silent, so `ServiceUnavailable` covers "no target is up".
- Latency is judged from the histogram's bucket at the SLO threshold (`le`); the threshold must be one of the
  service's bucket boundaries. `le` is written as Prometheus 3 normalizes it ("0.5", "1.0").
- Every alert carries severity, summary, description and a runbook URL from the stack's template.
- With `alerting`, an AlertmanagerConfig routes the alerts by severity to the stack's receivers (PagerDuty,
  Slack, webhook), whose credentials are in one Secret made from encrypted config and only referenced from the
  AlertmanagerConfig. The prometheus-operator nests its route under the Alertmanager's root route with a
  `namespace="<this namespace>"` matcher (`alertmanagerConfigMatcherStrategy: OnNamespace`, the default) and
  `continue: true`: it receives every alert labelled with this namespace (the platform's alerts set the label;
  kube-prometheus-stack's own alerts about this namespace's pods carry it too) and the cluster's routing still
  sees them after it. Severities no route claims end at a receiver that sends nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal

import pulumi
import pulumi_kubernetes as k8s

from components import hardening, readiness
from components.app_service import METRICS_PORT_NAME
from components.app_service_config import ServiceConfig
from components.monitoring_config import UNROUTED_RECEIVER, AlertingConfig, AlertReceiver, MonitoringConfig

MONITORING_API_VERSION = "monitoring.coreos.com/v1"
DASHBOARD_LABEL = {"grafana_dashboard": "1"}  # what kube-prometheus-stack's Grafana sidecar looks for
RULE_NAME = "platform-alerts"
# Burn-rate windows (long, short) and factors, from the SRE workbook's recommended pair.
FAST_BURN = ("1h", "5m", Decimal("14.4"))
SLOW_BURN = ("6h", "30m", Decimal("6"))

ALERTING_API_VERSION = "monitoring.coreos.com/v1alpha1"
ALERT_ROUTING_NAME = "platform-alert-routing"
RECEIVER_SECRET_NAME = "platform-alert-receivers"
# The route's timing is set here rather than inherited from the Alertmanager's root route, which belongs to the
# cluster (kube-prometheus-stack groups by namespace alone: one notification for every alert of the namespace).
# One group per alert and service or database: five crash-looping pods of a service page once, two broken services
# twice (PagerDuty opens an incident per group and resolves it when the group resolves).
GROUP_BY = ["alertname", "service", "database", "cache"]
GROUP_WAIT = "30s"  # the rules already wait (`for`, 2m to 1h); 30 s only gathers alerts that fire together
GROUP_INTERVAL = "5m"  # how soon a group's new or resolved alerts are sent (Alertmanager's default)
# While an alert fires it is re-sent: PagerDuty folds a repeat into the open incident, but reopens one that was
# resolved by hand too early; a ticket channel is reminded twice a day rather than flooded.
REPEAT_INTERVAL = {"critical": "1h", "warning": "12h"}
# Alertmanager's default Slack message names the alerts only; on-call needs what the annotations say.
SLACK_TEXT = (
    "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n"
    "Runbook: {{ .Annotations.runbook_url }}\n{{ end }}"
)


@dataclass
class MonitoredDatabase:
    """A CloudNativePG cluster to alert on: its instance pods are `<name>-<n>`, its volumes `<name>-<n>[-wal]`."""

    name: str
    instances: int = 1
    backed_up: bool = True


@dataclass
class MonitoredCache:
    """A cache to alert on: its data nodes are `<name>-<n>`, with an exporter each."""

    name: str
    replicas: int = 0
    failover: bool = False
    maxmemory_policy: str = "allkeys-lru"


@dataclass
class MonitoringArgs:
    config: MonitoringConfig
    namespace: str
    services: list[ServiceConfig]
    databases: list[MonitoredDatabase] = field(default_factory=list)
    caches: list[MonitoredCache] = field(default_factory=list)
    # The value of each secret config key `config.alerting` names (`AlertingConfig.secret_keys`), by key.
    receiver_secrets: dict[str, pulumi.Input[str]] = field(default_factory=dict)


def selector(**matchers: str) -> str:
    """A PromQL label matcher list; values ending in ~ are regexes: selector(pod="a-[0-9]+~") -> {pod=~"a-[0-9]+"}."""
    parts = []
    for label, value in matchers.items():
        operator = "=~" if value.endswith("~") else "="
        parts.append(f'{label}{operator}"{value.rstrip("~")}"')
    return "{" + ", ".join(parts) + "}"


def budget(percent: float) -> Decimal:
    """The error budget of an objective, exactly: 99.9 -> 0.001 (no float noise in the rule text)."""
    return (Decimal(100) - Decimal(str(percent))) / Decimal(100)


def bucket_bound(seconds: float) -> str:
    """A histogram bucket's `le` as Prometheus 3 normalizes it: 0.5 -> "0.5", 1 -> "1.0"."""
    return repr(float(seconds))


def receiver_spec(receiver_name: str, receiver: AlertReceiver) -> dict:
    """One AlertmanagerConfig receiver; its credential is the key named after it in the receivers' Secret."""
    credential = {"name": RECEIVER_SECRET_NAME, "key": receiver_name}
    # Resolved notifications close the PagerDuty incident, tell the channel it is over and let a ticket system
    # close its ticket (Alertmanager sends them by default to PagerDuty and webhooks, not to Slack).
    if receiver.pagerduty is not None:
        return {"name": receiver_name, "pagerdutyConfigs": [{"routingKey": credential, "sendResolved": True}]}
    if receiver.slack is not None:
        slack = {"apiURL": credential, "channel": receiver.slack.channel, "text": SLACK_TEXT, "sendResolved": True}
        return {"name": receiver_name, "slackConfigs": [slack]}
    return {"name": receiver_name, "webhookConfigs": [{"urlSecret": credential, "sendResolved": True}]}


def alert_routing_spec(alerting: AlertingConfig) -> dict:
    """The AlertmanagerConfig's spec: a route per (severity, receiver) under a root whose receiver sends nothing."""
    routes = [
        {
            "matchers": [{"name": "severity", "matchType": "=", "value": route.severity}],
            "receiver": route.receiver,
            "repeatInterval": REPEAT_INTERVAL[route.severity],
            # Every route of a severity is notified when several receivers share it.
            "continue": True,
        }
        for route in alerting.effective_routes
    ]
    return {
        "route": {
            "receiver": UNROUTED_RECEIVER,
            "groupBy": list(GROUP_BY),
            "groupWait": GROUP_WAIT,
            "groupInterval": GROUP_INTERVAL,
            "routes": routes,
        },
        "receivers": [{"name": UNROUTED_RECEIVER}] + [receiver_spec(name, alerting.receivers[name]) for name in sorted(alerting.receivers)],
    }


class Monitoring(pulumi.ComponentResource):
    alert_names: list[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:monitoring:Monitoring", name, None, opts)
        config = args.config
        self._args = args
        labels = hardening.standard_labels("monitoring", "monitoring")
        child = pulumi.ResourceOptions(parent=self)

        def metadata(object_name: str, extra: dict[str, str] | None = None) -> dict:
            return {"name": object_name, "namespace": args.namespace, "labels": {**labels, **(extra or {})}}

        prometheus = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": config.namespace}},
            "podSelector": {"matchLabels": dict(config.prometheus_pod_labels)},
        }
        for service in args.services:
            if service.metrics is None:
                continue
            endpoint = {"port": METRICS_PORT_NAME, "path": service.metrics.path, "scheme": "http", "interval": config.scrape_interval}
            if service.is_web:
                # The job label is the Service's name (the default): the alerts and dashboards select job="<service>".
                monitor_kind, logical, endpoints = "ServiceMonitor", "service-monitor", {"endpoints": [endpoint]}
            else:
                # A worker has no Service for a ServiceMonitor to follow, and a headless one only for scraping would
                # give it a DNS name others could call: its pods are scraped directly, by label and port name, with
                # job="<service>" as for a web service (a PodMonitor's default is "<namespace>/<monitor>").
                job = {"action": "replace", "targetLabel": "job", "replacement": service.name}
                monitor_kind, logical, endpoints = "PodMonitor", "pod-monitor", {"podMetricsEndpoints": [{**endpoint, "relabelings": [job]}]}
            readiness.custom_resource(
                f"{name}-{service.name}-{logical}",
                api_version=MONITORING_API_VERSION,
                kind=monitor_kind,
                metadata=metadata(service.name, config.selector_labels),
                spec={
                    "selector": {"matchLabels": hardening.selector_labels(service.name)},
                    "namespaceSelector": {"matchNames": [args.namespace]},
                    **endpoints,
                },
                opts=child,
            )
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{service.name}-metrics-netpol",
                metadata=metadata(f"metrics-{service.name}"),
                spec={
                    "podSelector": {"matchLabels": hardening.selector_labels(service.name)},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [prometheus], "ports": [{"protocol": "TCP", "port": service.metrics.port}]}],
                },
                opts=child,
            )

        groups = [
            group
            for group in (self._workload_rules(), self._service_rules(), self._cron_job_rules(), self._database_rules(), self._cache_rules())
            if group["rules"]
        ]
        self.alert_names = sorted({rule["alert"] for group in groups for rule in group["rules"]})
        readiness.custom_resource(
            f"{name}-rules",
            api_version=MONITORING_API_VERSION,
            kind="PrometheusRule",
            metadata=metadata(RULE_NAME, config.selector_labels),
            spec={"groups": groups},
            opts=child,
        )
        if config.alerting is not None:
            routing_metadata = metadata(ALERT_ROUTING_NAME, config.selector_labels)
            self._alert_routing(name, config.alerting, metadata(RECEIVER_SECRET_NAME), routing_metadata)

        for service in (service for service in args.services if service.kind != "cron"):  # a run is no dashboard
            k8s.core.v1.ConfigMap(
                f"{name}-{service.name}-dashboard",
                metadata=metadata(f"dashboard-{service.name}", DASHBOARD_LABEL),
                data={f"{service.name}.json": json.dumps(self.dashboard(service), indent=1, sort_keys=True)},
                opts=child,
            )
        for cache in args.caches:
            k8s.core.v1.ConfigMap(
                f"{name}-cache-{cache.name}-dashboard",
                metadata=metadata(f"dashboard-cache-{cache.name}", DASHBOARD_LABEL),
                data={f"cache-{cache.name}.json": json.dumps(self.cache_dashboard(cache), indent=1, sort_keys=True)},
                opts=child,
            )
        self.register_outputs({"alert_names": self.alert_names})

    # --- alert routing ------------------------------------------------------------------------------------------

    def _alert_routing(self, name: str, alerting: AlertingConfig, secret_metadata: dict, routing_metadata: dict) -> None:
        missing = [key for key in alerting.secret_keys if key not in self._args.receiver_secrets]
        if missing:
            raise ValueError(
                f"MonitoringArgs.receiver_secrets lacks {missing}: pass the value of every key AlertingConfig.secret_keys lists"
            )
        secret = k8s.core.v1.Secret(
            f"{name}-alert-receivers",
            metadata=secret_metadata,
            type="Opaque",
            # pulumi-kubernetes makes a Secret's stringData a Pulumi secret whatever it is given (encrypted in the
            # state, masked in diffs); the values are the program's `require_secret` Outputs anyway.
            string_data={
                receiver_name: self._args.receiver_secrets[receiver.secret_key]
                for receiver_name, receiver in sorted(alerting.receivers.items())
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        readiness.custom_resource(
            f"{name}-alert-routing",
            api_version=ALERTING_API_VERSION,
            kind="AlertmanagerConfig",
            metadata=routing_metadata,
            spec=alert_routing_spec(alerting),
            # The operator rejects a config whose Secret it cannot read yet.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret]),
        )

    # --- alerts -------------------------------------------------------------------------------------------------

    def _alert(self, alert: str, expr: str, for_: str, severity: str, summary: str, description: str, **labels: str) -> dict:
        return {
            "alert": alert,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity, "namespace": self._args.namespace, **labels},
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": self._args.config.runbook_url(alert),
            },
        }

    def _workload_rules(self) -> dict:
        ns = self._args.namespace
        rules = [
            self._alert(
                "PodCrashLooping",
                "max by (namespace, pod, container) (kube_pod_container_status_waiting_reason"
                f'{selector(namespace=ns, reason="CrashLoopBackOff")}) >= 1',
                "10m",
                "warning",
                "Container {{ $labels.container }} of pod {{ $labels.pod }} is crash-looping",
                f"Container {{{{ $labels.container }}}} of pod {{{{ $labels.pod }}}} in namespace {ns} has been in "
                "CrashLoopBackOff for 10 minutes: it starts and dies. Read its last logs (kubectl logs --previous).",
            ),
            self._alert(
                "PodNotReady",
                f'(sum by (namespace, pod) (kube_pod_status_ready{selector(namespace=ns, condition="false")}) > 0)'
                f' unless on (namespace, pod) (kube_pod_status_phase{selector(namespace=ns, phase="Succeeded")} == 1)',
                "15m",
                "warning",
                "Pod {{ $labels.pod }} has not been ready for 15 minutes",
                f"Pod {{{{ $labels.pod }}}} in namespace {ns} has been running but not ready for 15 minutes, so it "
                "receives no traffic. Check its readiness probe, events and logs.",
            ),
        ]
        if any(service.autoscaling for service in self._args.services):
            rules.append(
                self._alert(
                    "HpaMaxedOut",
                    f"(kube_horizontalpodautoscaler_status_current_replicas{selector(namespace=ns)}"
                    " >= on (namespace, horizontalpodautoscaler) "
                    f"kube_horizontalpodautoscaler_spec_max_replicas{selector(namespace=ns)})"
                    # An autoscaler pinned at minReplicas == maxReplicas is always "at its maximum": not news.
                    " and on (namespace, horizontalpodautoscaler) "
                    f"(kube_horizontalpodautoscaler_spec_max_replicas{selector(namespace=ns)}"
                    " > on (namespace, horizontalpodautoscaler) "
                    f"kube_horizontalpodautoscaler_spec_min_replicas{selector(namespace=ns)})",
                    "15m",
                    "warning",
                    "Autoscaler {{ $labels.horizontalpodautoscaler }} has run at its maximum for 15 minutes",
                    f"HorizontalPodAutoscaler {{{{ $labels.horizontalpodautoscaler }}}} in namespace {ns} has been at "
                    "maxReplicas for 15 minutes: it cannot add capacity. Raise autoscaling.maxReplicas (and the "
                    "namespace quota) or find what drives the load.",
                )
            )
        return {"name": "platform-workloads", "rules": rules}

    def _service_rules(self) -> dict:
        config, ns = self._args.config, self._args.namespace
        names = config.http_metrics
        rules = []
        for service in self._args.services:
            if service.kind == "worker":
                rules.append(self._worker_unavailable(service))
            if service.metrics is None or not service.is_web:
                continue  # the SLOs judge HTTP requests through the Service: web services only
            job = selector(namespace=ns, job=service.name)
            requests = f"{names.requests_total}{job}"
            errors = f"{names.requests_total}{selector(namespace=ns, job=service.name, **{names.status_label: '5..~'})}"
            fast_bucket = f"{names.duration_bucket}{selector(namespace=ns, job=service.name, le=bucket_bound(config.slo.latency_seconds))}"
            all_buckets = f"{names.duration_bucket}{selector(namespace=ns, job=service.name, le='+Inf')}"

            def error_ratio(window: str) -> str:
                return f"(sum(rate({errors}[{window}])) / sum(rate({requests}[{window}])))"

            def slow_ratio(window: str) -> str:
                return f"(1 - sum(rate({fast_bucket}[{window}])) / sum(rate({all_buckets}[{window}])))"

            availability, latency = budget(config.slo.availability_percent), budget(config.slo.latency_percent)
            threshold_ms = int(config.slo.latency_seconds * 1000)
            rules.append(
                self._alert(
                    "ServiceUnavailable",
                    f"(sum(up{job}) or on () vector(0)) == 0",
                    "5m",
                    "critical",
                    f"No instance of service {service.name} is up",
                    f"Prometheus has reached no pod of service {service.name} in namespace {ns} for 5 minutes: the "
                    "service is down (or its metrics port is unreachable). Check its Deployment and pods.",
                    service=service.name,
                )
            )
            for alert, kind, ratio, objective, what in (
                ("ServiceErrorBudgetBurn", "error", error_ratio, availability, f"{config.slo.availability_percent}% of requests without a 5xx"),
                ("ServiceLatencyBudgetBurn", "latency", slow_ratio, latency, f"{config.slo.latency_percent}% of requests within {threshold_ms} ms"),
            ):
                for (long, short, factor), speed, severity, for_ in ((FAST_BURN, "Fast", "critical", "2m"), (SLOW_BURN, "Slow", "warning", "15m")):
                    limit = f"({factor} * {objective})"
                    rules.append(
                        self._alert(
                            f"{alert}{speed}",
                            f"({ratio(long)} > {limit}) and ({ratio(short)} > {limit})",
                            for_,
                            severity,
                            f"Service {service.name} burns its {kind} budget {factor}x too fast",
                            f"Service {service.name} in namespace {ns} misses its objective ({what}) {factor} times "
                            f"faster than the budget allows, over the last {long} and {short}. At this rate the 30-day "
                            "budget is gone early: look at recent deploys, dependencies and load.",
                            service=service.name,
                        )
                    )
        return {"name": "platform-services", "rules": rules}

    def _worker_unavailable(self, service: ServiceConfig) -> dict:
        """A worker with replicas wanted and none available: its backlog grows (a worker scaled to zero is not down)."""
        ns = self._args.namespace
        deployment = selector(namespace=ns, deployment=service.name)
        # Aggregated to (namespace, deployment): kube-state-metrics' series carry its own pod, container and instance,
        # which would otherwise label the alert as if it were about the kube-state-metrics pod.
        return self._alert(
            "WorkerUnavailable",
            f"(max by (namespace, deployment) (kube_deployment_status_replicas_available{deployment}) == 0)"
            f" and on (namespace, deployment) (max by (namespace, deployment) (kube_deployment_spec_replicas{deployment}) > 0)",
            "10m",
            "critical",
            f"No pod of worker {service.name} is available",
            f"Worker {service.name} in namespace {ns} has had none of its pods available for 10 minutes, so its work "
            "piles up. Check its Deployment, pods and their probes.",
            service=service.name,
        )

    def _cron_job_rules(self) -> dict:
        """Per cron job: a failed run (kube-state-metrics' kube_job_status_failed, joined to the CronJob through
        kube_job_owner) newer than its last success, and a last success older than the schedule allows."""
        ns = self._args.namespace
        rules = []
        for service in (service for service in self._args.services if service.kind == "cron"):
            cron_job = selector(namespace=ns, cronjob=service.name)
            last_success = f"kube_cronjob_status_last_successful_time{cron_job}"
            owned = f"kube_job_owner{selector(namespace=ns, owner_kind='CronJob', owner_name=service.name)}"
            failed_runs = (
                f"max by (namespace, job_name) (kube_job_status_start_time{selector(namespace=ns)}"
                f" and on (namespace, job_name) (kube_job_status_failed{selector(namespace=ns)} > 0)"
                f" and on (namespace, job_name) {owned})"
            )
            rules.append(
                self._alert(
                    "CronJobFailed",
                    # A failed run that started after the last successful one (or with none yet): a later success
                    # resolves the alert, though the failed Job stays in the history for reading.
                    f"({failed_runs} > on () group_left () max({last_success}))"
                    f" or ({failed_runs} unless on () {last_success})",
                    "1m",
                    "warning",
                    f"A run of cron job {service.name} failed",
                    f"Job {{{{ $labels.job_name }}}} of cron job {service.name} in namespace {ns} failed (its retries "
                    "used up or its deadline passed) and no run has succeeded since. Read its pods' logs "
                    f"(kubectl logs job/{{{{ $labels.job_name }}}}); rerun it with kubectl create job --from=cronjob/"
                    f"{service.name} <name>.",
                    service=service.name,
                )
            )
            allowed = self.cron_job_allowed_age_seconds(service)
            rules.append(
                self._alert(
                    "CronJobOverdue",
                    f"(time() - max({last_success}) > {allowed})"
                    f" or ((time() - max(kube_cronjob_created{cron_job}) > {allowed}) unless on () {last_success})",
                    "5m",
                    "warning",
                    f"Cron job {service.name} has not succeeded for longer than its schedule allows",
                    f"Cron job {service.name} in namespace {ns} (schedule '{service.schedule}') has had no successful run "
                    f"for more than {allowed} s: runs fail, are skipped (a run still going, startingDeadlineSeconds) "
                    "or the CronJob is suspended. Check `kubectl get cronjob,jobs` and the Jobs' events.",
                    service=service.name,
                )
            )
        return {"name": "platform-cron-jobs", "rules": rules}

    @staticmethod
    def cron_job_allowed_age_seconds(service: ServiceConfig) -> int:
        """How old the last success may be: the longest time between two scheduled runs, plus how late the next may
        start (startingDeadlineSeconds) and how long it may take (activeDeadlineSeconds), plus an hour for a daylight
        saving change and the scrape delay."""
        slack = 3600
        return service.longest_run_interval_seconds + service.starting_deadline_seconds + service.active_deadline_seconds + slack

    def _database_rules(self) -> dict:
        config, ns = self._args.config, self._args.namespace
        thresholds = config.databases
        rules = []
        for database in self._args.databases:
            pods = selector(namespace=ns, pod=f"{database.name}-[0-9]+~")
            volumes = selector(namespace=ns, persistentvolumeclaim=f"{database.name}-[0-9]+(-wal)?~")
            up = f"(count(cnpg_collector_up{pods} == 1) or on () vector(0))"
            rules.append(
                self._alert(
                    "DatabaseDown",
                    f"{up} == 0",
                    "5m",
                    "critical",
                    f"Database {database.name} has no running instance",
                    f"No PostgreSQL instance of cluster {database.name} in namespace {ns} has been up for 5 minutes: "
                    "its services cannot read or write. Check `kubectl cnpg status` and the operator's logs.",
                    database=database.name,
                )
            )
            if database.instances > 1:
                rules.append(
                    self._alert(
                        "DatabaseInstancesMissing",
                        f"{up} < {database.instances}",
                        "10m",
                        "warning",
                        f"Database {database.name} runs fewer than {database.instances} instances",
                        f"Cluster {database.name} in namespace {ns} has had {{{{ $value }}}} of {database.instances} "
                        "instances up for 10 minutes: one more failure and it cannot fail over.",
                        database=database.name,
                    )
                )
                rules.append(
                    self._alert(
                        "DatabaseReplicationLag",
                        f"max(cnpg_pg_replication_lag{pods}) > {thresholds.replication_lag_seconds}",
                        "5m",
                        "warning",
                        f"Database {database.name}'s replicas lag behind",
                        f"A replica of cluster {database.name} in namespace {ns} has been more than "
                        f"{thresholds.replication_lag_seconds} s behind the primary for 5 minutes (now {{{{ $value }}}} s): "
                        "a failover now would lose recent writes.",
                        database=database.name,
                    )
                )
            if database.backed_up:
                last_backup = f"barman_cloud_cloudnative_pg_io_last_available_backup_timestamp{pods}"
                rules.append(
                    self._alert(
                        "DatabaseBackupTooOld",
                        f"(time() - max({last_backup}) > {thresholds.backup_max_age_hours * 3600}) or absent({last_backup})",
                        "1h",
                        "warning",
                        f"Database {database.name} has no backup newer than {thresholds.backup_max_age_hours} h",
                        f"The newest base backup of cluster {database.name} in namespace {ns} is older than "
                        f"{thresholds.backup_max_age_hours} hours (or none is known): the ScheduledBackup is failing. "
                        "Check `kubectl get backups` and the Barman Cloud plugin's logs.",
                        database=database.name,
                    )
                )
                rules.append(
                    self._alert(
                        "DatabaseWalArchivingFailing",
                        f"max by (pod) (cnpg_pg_stat_archiver_last_failed_time{pods})"
                        f" > max by (pod) (cnpg_pg_stat_archiver_last_archived_time{pods})",
                        "10m",
                        "warning",
                        f"Database {database.name} fails to archive WAL",
                        f"Instance {{{{ $labels.pod }}}} of cluster {database.name} in namespace {ns} failed to archive "
                        "WAL after its last success: point-in-time recovery has a gap and WAL piles up on the volume.",
                        database=database.name,
                    )
                )
            rules.append(
                self._alert(
                    "DatabaseStorageAlmostFull",
                    f"max by (persistentvolumeclaim) (kubelet_volume_stats_available_bytes{volumes}"
                    f" / kubelet_volume_stats_capacity_bytes{volumes}) * 100 < {thresholds.storage_free_percent}",
                    "5m",
                    "warning",
                    f"Database {database.name}'s volume is almost full",
                    f"Volume {{{{ $labels.persistentvolumeclaim }}}} of cluster {database.name} in namespace {ns} has "
                    f"less than {thresholds.storage_free_percent}% free: PostgreSQL stops when it is full. Grow "
                    "storage.size (or walStorage.size) in the stack file.",
                    database=database.name,
                )
            )
        return {"name": "platform-databases", "rules": rules}

    def _cache_rules(self) -> dict:
        """Valkey caches, from the exporter beside each data node (redis_exporter's metric names)."""
        ns = self._args.namespace
        rules = []
        for cache in self._args.caches:
            pods = selector(namespace=ns, pod=f"{cache.name}-[0-9]+~")
            up = f"(count(redis_up{pods} == 1) or on () vector(0))"
            alert = functools.partial(self._alert, cache=cache.name)
            rules += [
                alert(
                    "CacheDown",
                    f"{up} == 0",
                    "2m",
                    "critical",
                    f"Cache {cache.name} has no node up",
                    f"No data node of cache {cache.name} in namespace {ns} has answered its exporter for 2 minutes: its "
                    "services' reads and writes fail. Check the pods' events and logs.",
                ),
                alert(
                    "CacheMemoryNearMaxmemory",
                    f"max by (pod) (redis_memory_used_bytes{pods} / (redis_memory_max_bytes{pods} > 0)) > 0.9",
                    "15m",
                    "warning",
                    f"Cache {cache.name} is close to its maxmemory",
                    f"Node {{{{ $labels.pod }}}} of cache {cache.name} in namespace {ns} has used more than 90% of maxmemory "
                    f"for 15 minutes: it evicts keys ({cache.maxmemory_policy}) or refuses writes (noeviction). Raise "
                    "resources.limits.memory in the stack file if the working set has grown.",
                ),
                alert(
                    "CacheEvicting",
                    f"sum(rate(redis_evicted_keys_total{pods}[5m])) > 0",
                    "15m",
                    "warning",
                    f"Cache {cache.name} evicts keys",
                    f"Cache {cache.name} in namespace {ns} has been evicting keys for 15 minutes to stay within maxmemory: "
                    "the services miss keys they wrote. Raise resources.limits.memory, or shorten the keys' TTLs.",
                ),
                alert(
                    "CacheRejectingConnections",
                    f"sum(increase(redis_rejected_connections_total{pods}[5m])) > 0",
                    "5m",
                    "warning",
                    f"Cache {cache.name} rejects connections",
                    f"Cache {cache.name} in namespace {ns} has refused client connections (maxclients reached) for 5 "
                    "minutes: look for a service leaking connections or missing a connection pool.",
                ),
            ]
            if not cache.failover:
                continue
            masters = selector(namespace=ns, pod=f"{cache.name}-[0-9]+~", role="master")
            rules += [
                alert(
                    "CacheNoPrimary",
                    f"(count(redis_instance_info{masters}) or on () vector(0)) != 1",
                    "2m",
                    "critical",
                    f"Cache {cache.name} has no single primary",
                    f"Cache {cache.name} in namespace {ns} has had {{{{ $value }}}} primaries for 2 minutes (one is right): "
                    "writes fail, or go to two nodes that will not agree. Check the Sentinels' logs "
                    f"(`kubectl logs -l app.kubernetes.io/name={cache.name}-sentinel`).",
                ),
                alert(
                    "CacheReplicationBroken",
                    f"(max(redis_connected_slaves{pods}) or on () vector(0)) < {cache.replicas}",
                    "10m",
                    "warning",
                    f"Cache {cache.name}'s replicas are not all replicating",
                    f"The primary of cache {cache.name} in namespace {ns} has had {{{{ $value }}}} of {cache.replicas} "
                    "replicas connected for 10 minutes: one more failure and it cannot fail over.",
                ),
            ]
        return {"name": "platform-caches", "rules": rules}

    def cache_dashboard(self, cache: "MonitoredCache") -> dict:
        """A Grafana dashboard for one cache: memory against maxmemory, traffic, clients, evictions, replication."""
        pods = selector(namespace=self._args.namespace, pod=f"{cache.name}-[0-9]+~")
        panels = [
            ("Memory used and maxmemory", "bytes", [(f"redis_memory_used_bytes{pods}", "{{pod}}"), (f"max(redis_memory_max_bytes{pods})", "maxmemory")]),
            ("Commands per second", "ops", [(f"sum by (pod) (rate(redis_commands_processed_total{pods}[$__rate_interval]))", "{{pod}}")]),
            ("Connected clients", "short", [(f"sum by (pod) (redis_connected_clients{pods})", "{{pod}}")]),
            ("Evicted keys per second", "short", [(f"sum(rate(redis_evicted_keys_total{pods}[$__rate_interval]))", "evicted")]),
            ("Connected replicas", "short", [(f"max(redis_connected_slaves{pods})", "replicas")]),
            ("Up", "short", [(f"redis_up{pods}", "{{pod}}")]),
        ]
        return self._dashboard_document(f"cache-{cache.name}", panels)

    # --- dashboards ---------------------------------------------------------------------------------------------

    def dashboard(self, service: ServiceConfig) -> dict:
        """A Grafana dashboard for one service; the data source is the variable ${datasource}."""
        config, ns = self._args.config, self._args.namespace
        names = config.http_metrics
        job = selector(namespace=ns, job=service.name)
        container = selector(namespace=ns, container=service.name)
        panels: list[tuple[str, str, list[tuple[str, str]]]] = []  # (title, unit, [(expr, legend)])
        if service.metrics is not None and service.is_web:  # a worker's metrics are its own, not HTTP requests
            panels += [
                (
                    "Requests per second by status",
                    "reqps",
                    [(f"sum by ({names.status_label}) (rate({names.requests_total}{job}[$__rate_interval]))", f"{{{{{names.status_label}}}}}")],
                ),
                (
                    "5xx ratio",
                    "percentunit",
                    [
                        (
                            f"sum(rate({names.requests_total}{selector(namespace=ns, job=service.name, **{names.status_label: '5..~'})}[$__rate_interval]))"
                            f" / sum(rate({names.requests_total}{job}[$__rate_interval]))",
                            "5xx",
                        ),
                        (f"vector({budget(config.slo.availability_percent)})", "error budget"),
                    ],
                ),
                (
                    "Latency",
                    "s",
                    [
                        (f"histogram_quantile({q}, sum by (le) (rate({names.duration_bucket}{job}[$__rate_interval])))", f"p{int(q * 100)}")
                        for q in (0.5, 0.95, 0.99)
                    ],
                ),
            ]
        panels += [
            (
                "Ready replicas",
                "short",
                [
                    (f"sum(kube_deployment_status_replicas_available{selector(namespace=ns, deployment=service.name)})", "available"),
                    (f"sum(kube_deployment_spec_replicas{selector(namespace=ns, deployment=service.name)})", "desired"),
                ],
            ),
            ("CPU", "cores", [(f"sum by (pod) (rate(container_cpu_usage_seconds_total{container}[$__rate_interval]))", "{{pod}}")]),
            ("Memory (working set)", "bytes", [(f"sum by (pod) (container_memory_working_set_bytes{container})", "{{pod}}")]),
            ("Restarts (1h)", "short", [(f"sum by (pod) (increase(kube_pod_container_status_restarts_total{container}[1h]))", "{{pod}}")]),
        ]
        return self._dashboard_document(service.name, panels)

    def _dashboard_document(self, key: str, panels: list[tuple[str, str, list[tuple[str, str]]]]) -> dict:
        """A dashboard of timeseries panels (title, unit, [(expr, legend)]); the data source is the variable ${datasource}."""
        ns = self._args.namespace
        datasource = {"type": "prometheus", "uid": "${datasource}"}
        uid = "platform-" + hashlib.sha256(f"{ns}/{key}".encode()).hexdigest()[:16]
        return {
            "uid": uid,  # stable across runs, unique per namespace and service, within Grafana's 40 characters
            "title": f"{key} ({ns})",
            "tags": ["platform", ns],
            "editable": False,  # provisioned from this program: edits in the UI would be lost
            "schemaVersion": 39,
            "version": 1,
            "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "templating": {
                "list": [
                    {
                        "name": "datasource",
                        "label": "Data source",
                        "type": "datasource",
                        "query": "prometheus",
                        "current": {},
                        "hide": 0,
                        "refresh": 1,
                        "regex": "",
                    }
                ]
            },
            "panels": [
                {
                    "id": index + 1,
                    "type": "timeseries",
                    "title": title,
                    "datasource": dict(datasource),
                    "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
                    "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                    "targets": [
                        {"refId": chr(ord("A") + position), "datasource": dict(datasource), "expr": expr, "legendFormat": legend}
                        for position, (expr, legend) in enumerate(queries)
                    ],
                }
                for index, (title, unit, queries) in enumerate(panels)
            ],
        }
