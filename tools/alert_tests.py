"""Unit tests for the platform's alerts, generated from a stack's config: `promtool test rules` files.

For every alert rule of a stack's PrometheusRule (components/monitoring.py), a *scenario* says which series break
it and which keep it healthy, from the same StackConfig the rule was made from (objectives, thresholds, metric
names, database instance counts). Each rule gets two promtool test groups:

- firing: the broken series from minute 0, the healthy series of every other rule with the same name (so only this
  one may fire). Checked: silent one minute before the expected firing time (the `for` is honoured, it does not
  fire early), firing at it with the exact labels Alertmanager routes on and the annotations as Prometheus renders
  them, and resolved once the series are healthy again (it does not fire forever).
- silent: the healthy series, plus the broken ones moved to another namespace: the alert stays silent throughout.

An alert without a scenario is an error (MissingScenario), so a new alert cannot ship untested: add a function
decorated `@scenario("AlertName")` below. Series carry the labels their exporters really add (a ServiceMonitor's
job/instance/pod/service, kube-state-metrics' own target labels), so an alert that leaks a scrape target's labels
fails its label check. promtool itself runs in `make e2e` (e2e/alerts.py); `make test` checks the generation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Optional, Union

from components.monitoring import FAST_BURN, SLOW_BURN, bucket_bound, budget

EVALUATION_INTERVAL_MINUTES = 1
REQUESTS_PER_MINUTE = 1_000_000  # enough resolution for any objective the config accepts to 1e-6
ELSEWHERE = "-elsewhere"  # suffix of the namespace the silent case moves the broken series to


class MissingScenario(Exception):
    """A rendered alert that no scenario covers."""


# --- signals: what a series does in the broken and the healthy phase --------------------------------------------


@dataclass(frozen=True)
class Const:
    value: float


@dataclass(frozen=True)
class Rate:
    """A counter growing by `per_minute`."""

    per_minute: float


@dataclass(frozen=True)
class Clock:
    """A Unix timestamp `offset_seconds` away from the evaluation time (e.g. a backup an hour old: -3600)."""

    offset_seconds: float


Signal = Union[Const, Rate, Clock, None]  # None: the series does not exist in that phase


@dataclass(frozen=True)
class Series:
    metric: str
    labels: tuple[tuple[str, str], ...]
    broken: Signal
    healthy: Signal

    @property
    def selector(self) -> str:
        return self.metric + "{" + ", ".join(f'{name}="{value}"' for name, value in self.labels) + "}"

    def moved(self, namespace: str) -> "Series":
        return Series(self.metric, tuple((n, namespace if n == "namespace" else v) for n, v in self.labels), self.broken, self.broken)


def series(metric: str, broken: Signal, healthy: Signal, **labels: str) -> Series:
    return Series(metric, tuple(sorted(labels.items())), broken, healthy)


@dataclass
class Scenario:
    """How one alert rule is broken and healed.

    `starts`: the first minute at which the broken series make the expression true. `labels`: what the expression
    itself contributes to the alert's labels (the rule's own labels are added to them). `value`: the expression's
    value when it fires (for `{{ $value }}`). `resolves_after`: minutes after the series heal until the expression
    is false again (the longest window that still sees the broken samples, plus one).
    """

    series: list[Series]
    starts: int
    labels: dict[str, str]
    resolves_after: int
    value: Optional[float] = None


@dataclass
class Context:
    """What a scenario reads: the rule as rendered and the stack's config (stack_config.StackConfig)."""

    rule: dict[str, Any]
    config: Any

    @property
    def namespace(self) -> str:
        return self.rule["labels"]["namespace"]

    @property
    def monitoring(self):
        return self.config.monitoring

    def database(self):
        name = self.rule["labels"]["database"]
        return next(d for d in self.config.databases if d.name == name)


SCENARIOS: dict[str, Callable[[Context], Scenario]] = {}


def scenario(alert: str):
    def register(function: Callable[[Context], Scenario]) -> Callable[[Context], Scenario]:
        SCENARIOS[alert] = function
        return function

    return register


# Target labels as Prometheus adds them when scraping through kube-prometheus-stack's ServiceMonitors/PodMonitors.
def kube_state_metrics(namespace: str, **labels: str) -> dict[str, str]:
    # kube-state-metrics is scraped with honorLabels: an object's namespace/pod/container win over the target's.
    target = {"job": "kube-state-metrics", "instance": "10.0.0.5:8080", "endpoint": "http", "service": "kube-prometheus-stack-kube-state-metrics",
              "pod": "kube-state-metrics-6d4b7c9f8-x2x7q", "container": "kube-state-metrics"}  # fmt: skip
    return {**target, "namespace": namespace, **labels}


def app_target(namespace: str, service: str, pod: str) -> dict[str, str]:
    return {"job": service, "namespace": namespace, "service": service, "pod": pod, "instance": f"10.244.1.7:{9090}", "endpoint": "metrics", "container": service}


def cnpg_target(namespace: str, pod: str) -> dict[str, str]:
    return {"job": f"{namespace}/{pod.rsplit('-', 1)[0]}", "namespace": namespace, "pod": pod, "instance": "10.244.2.9:9187", "endpoint": "metrics", "container": "postgres"}


def kubelet_target(namespace: str, claim: str) -> dict[str, str]:
    return {"job": "kubelet", "service": "kube-prometheus-stack-kubelet", "instance": "10.0.0.11:10250", "node": "node-a",
            "endpoint": "https-metrics", "metrics_path": "/metrics", "namespace": namespace, "persistentvolumeclaim": claim}  # fmt: skip


# --- workloads ----------------------------------------------------------------------------------------------------


@scenario("PodCrashLooping")
def pod_crash_looping(ctx: Context) -> Scenario:
    pod, container = "web-7c9d8f6b5-abcde", "web"
    labels = kube_state_metrics(ctx.namespace, pod=pod, container=container, uid="0b1c")
    return Scenario(
        series=[
            series("kube_pod_container_status_waiting_reason", Const(1), Const(0), **labels, reason="CrashLoopBackOff"),
            # Another reason of the same container is no crash loop.
            series("kube_pod_container_status_waiting_reason", Const(0), Const(1), **labels, reason="ContainerCreating"),
        ],
        starts=0,
        labels={"namespace": ctx.namespace, "pod": pod, "container": container},
        resolves_after=1,
    )


@scenario("PodNotReady")
def pod_not_ready(ctx: Context) -> Scenario:
    pod = "api-5f6d7c8b9-fghij"
    labels = kube_state_metrics(ctx.namespace, pod=pod, uid="1a2b")
    done = kube_state_metrics(ctx.namespace, pod="migrate-orders-x1y2z", uid="3c4d")
    return Scenario(
        series=[
            series("kube_pod_status_ready", Const(1), Const(0), **labels, condition="false"),
            series("kube_pod_status_ready", Const(0), Const(1), **labels, condition="true"),
            # A finished Job's pod is not ready, and rightly so: never an alert.
            series("kube_pod_status_ready", Const(1), Const(1), **done, condition="false"),
            series("kube_pod_status_phase", Const(1), Const(1), **done, phase="Succeeded"),
        ],
        starts=0,
        labels={"namespace": ctx.namespace, "pod": pod},
        resolves_after=1,
    )


@scenario("HpaMaxedOut")
def hpa_maxed_out(ctx: Context) -> Scenario:
    scaling = [s for s in ctx.config.services if s.autoscaling and s.autoscaling.max_replicas > s.autoscaling.min_replicas]
    name, low, high = (scaling[0].name, scaling[0].autoscaling.min_replicas, scaling[0].autoscaling.max_replicas) if scaling else ("web", 2, 6)
    labels = kube_state_metrics(ctx.namespace, horizontalpodautoscaler=name)
    pinned = kube_state_metrics(ctx.namespace, horizontalpodautoscaler="pinned")
    return Scenario(
        series=[
            series("kube_horizontalpodautoscaler_status_current_replicas", Const(high), Const(max(low, high - 1)), **labels),
            series("kube_horizontalpodautoscaler_spec_max_replicas", Const(high), Const(high), **labels),
            series("kube_horizontalpodautoscaler_spec_min_replicas", Const(low), Const(low), **labels),
            # An autoscaler with minReplicas == maxReplicas always runs at its maximum: not news.
            series("kube_horizontalpodautoscaler_status_current_replicas", Const(3), Const(3), **pinned),
            series("kube_horizontalpodautoscaler_spec_max_replicas", Const(3), Const(3), **pinned),
            series("kube_horizontalpodautoscaler_spec_min_replicas", Const(3), Const(3), **pinned),
        ],
        starts=0,
        labels={"namespace": ctx.namespace, "horizontalpodautoscaler": name},
        resolves_after=1,
    )


# --- services -----------------------------------------------------------------------------------------------------


@scenario("ServiceUnavailable")
def service_unavailable(ctx: Context) -> Scenario:
    service = ctx.rule["labels"]["service"]
    pods = [f"{service}-6b7c8d9f-aaaa{i}" for i in (1, 2)]
    return Scenario(
        series=[series("up", Const(0), Const(1 if i == 0 else 0), **app_target(ctx.namespace, service, pod)) for i, pod in enumerate(pods)],
        starts=0,
        labels={},
        resolves_after=1,
    )


def _burn(ctx: Context) -> tuple[str, str, str, Decimal]:
    """(service, long window, short window, the ratio the alert fires above) of a burn-rate rule."""
    service = ctx.rule["labels"]["service"]
    long, short, factor = FAST_BURN if ctx.rule["alert"].endswith("Fast") else SLOW_BURN
    slo = ctx.monitoring.slo
    objective = slo.availability_percent if "Error" in ctx.rule["alert"] else slo.latency_percent
    return service, long, short, factor * budget(objective)


def _bad_per_minute(threshold) -> tuple[int, int]:
    """Bad requests per minute out of REQUESTS_PER_MINUTE: (broken: twice the threshold, healthy: half of it)."""
    broken = min(REQUESTS_PER_MINUTE // 2, math.ceil(2 * threshold * REQUESTS_PER_MINUTE))
    return broken, math.floor(threshold * REQUESTS_PER_MINUTE / 2)


@scenario("ServiceErrorBudgetBurnFast")
@scenario("ServiceErrorBudgetBurnSlow")
def service_error_budget_burn(ctx: Context) -> Scenario:
    service, _, short, threshold = _burn(ctx)
    names = ctx.monitoring.http_metrics
    broken, healthy = _bad_per_minute(threshold)
    target = app_target(ctx.namespace, service, f"{service}-6b7c8d9f-aaaa1")
    request = {**target, "method": "GET", "handler": "/"}
    # A tenth of all requests are 404s: the client's errors, not the service's (they count as served).
    client_errors = REQUESTS_PER_MINUTE // 10
    ok_broken, ok_healthy = REQUESTS_PER_MINUTE - client_errors - broken, REQUESTS_PER_MINUTE - client_errors - healthy
    return Scenario(
        series=[
            series(names.requests_total, Rate(ok_broken), Rate(ok_healthy), **request, **{names.status_label: "200"}),
            series(names.requests_total, Rate(client_errors), Rate(client_errors), **request, **{names.status_label: "404"}),
            series(names.requests_total, Rate(broken), Rate(healthy), **request, **{names.status_label: "503"}),
        ],
        starts=1,  # a rate needs two samples
        labels={},
        resolves_after=_duration_minutes(short) + 1,
    )


@scenario("ServiceLatencyBudgetBurnFast")
@scenario("ServiceLatencyBudgetBurnSlow")
def service_latency_budget_burn(ctx: Context) -> Scenario:
    service, _, short, threshold = _burn(ctx)
    names, seconds = ctx.monitoring.http_metrics, ctx.monitoring.slo.latency_seconds
    broken, healthy = _bad_per_minute(threshold)
    target = {**app_target(ctx.namespace, service, f"{service}-6b7c8d9f-aaaa1"), "method": "GET", "handler": "/"}

    def bucket(le: str, broken_fast: float, healthy_fast: float) -> Series:
        return series(names.duration_bucket, Rate(broken_fast), Rate(healthy_fast), **target, le=le)

    fast_broken, fast_healthy = REQUESTS_PER_MINUTE - broken, REQUESTS_PER_MINUTE - healthy
    return Scenario(
        series=[
            # A faster bucket: an alert judging the wrong bucket would fire in the healthy phase.
            bucket(bucket_bound(seconds / 2), fast_broken // 2, fast_healthy // 2),
            bucket(bucket_bound(seconds), fast_broken, fast_healthy),
            bucket(bucket_bound(seconds * 2), REQUESTS_PER_MINUTE, REQUESTS_PER_MINUTE),
            bucket("+Inf", REQUESTS_PER_MINUTE, REQUESTS_PER_MINUTE),
        ],
        starts=1,
        labels={},
        resolves_after=_duration_minutes(short) + 1,
    )


@scenario("WorkerUnavailable")
def worker_unavailable(ctx: Context) -> Scenario:
    worker = ctx.rule["labels"]["service"]
    labels = kube_state_metrics(ctx.namespace, deployment=worker)
    idle = kube_state_metrics(ctx.namespace, deployment=f"{worker}-idle")
    return Scenario(
        series=[
            series("kube_deployment_status_replicas_available", Const(0), Const(1), **labels),
            series("kube_deployment_spec_replicas", Const(2), Const(2), **labels),
            # A worker scaled to zero has nothing available and is not down.
            series("kube_deployment_status_replicas_available", Const(0), Const(0), **idle),
            series("kube_deployment_spec_replicas", Const(0), Const(0), **idle),
        ],
        starts=0,
        labels={"namespace": ctx.namespace, "deployment": worker},
        resolves_after=1,
    )


# --- cron jobs ----------------------------------------------------------------------------------------------------


def _cron_job(ctx: Context):
    return next(s for s in ctx.config.services if s.name == ctx.rule["labels"]["service"])


@scenario("CronJobFailed")
def cron_job_failed(ctx: Context) -> Scenario:
    cron = _cron_job(ctx).name
    run, other = f"{cron}-29412345", "other-cron-29412345"

    def job(name: str, owner: str) -> list[Series]:
        labels = kube_state_metrics(ctx.namespace, job_name=name)
        return [
            series("kube_job_status_start_time", Const(6000), Const(6000), **labels),
            series("kube_job_status_failed", Const(1), Const(1), **labels, reason="BackoffLimitExceeded"),
            series("kube_job_owner", Const(1), Const(1), **labels, owner_kind="CronJob", owner_name=owner, owner_is_controller="true"),
        ]

    return Scenario(
        # A run that started (at 6000 s) after the last success (3000 s) failed; healed, a later run succeeded.
        # A failed run of another CronJob is not this one's.
        series=job(run, cron) + job(other, "other-cron")
        + [series("kube_cronjob_status_last_successful_time", Const(3000), Const(9000), **kube_state_metrics(ctx.namespace, cronjob=cron))],
        starts=0,
        labels={"namespace": ctx.namespace, "job_name": run},
        resolves_after=1,
    )


@scenario("CronJobOverdue")
def cron_job_overdue(ctx: Context) -> Scenario:
    from components.monitoring import Monitoring

    service = _cron_job(ctx)
    allowed = Monitoring.cron_job_allowed_age_seconds(service)
    labels = kube_state_metrics(ctx.namespace, cronjob=service.name)
    return Scenario(
        # Created at time 0, last success at time 0 and none since; healed, the last success is a minute old.
        series=[
            series("kube_cronjob_created", Const(0), Const(0), **labels),
            series("kube_cronjob_status_last_successful_time", Const(0), Clock(-60), **labels),
        ],
        starts=allowed // 60 + 1,  # older than allowed, not as old
        labels={},
        resolves_after=1,
    )


# --- databases ----------------------------------------------------------------------------------------------------


def _instance_pods(ctx: Context) -> list[str]:
    database = ctx.database()
    return [f"{database.name}-{n}" for n in range(1, database.instances + 1)]


@scenario("DatabaseDown")
def database_down(ctx: Context) -> Scenario:
    database = ctx.database()
    pooler = f"{database.name}-pooler-rw-7d8f9-abcde"  # matches no instance pod name: must not count as up
    return Scenario(
        series=[series("cnpg_collector_up", Const(0), Const(1), **cnpg_target(ctx.namespace, pod)) for pod in _instance_pods(ctx)]
        + [series("cnpg_collector_up", Const(1), Const(1), **cnpg_target(ctx.namespace, pooler))],
        starts=0,
        labels={},
        resolves_after=1,
    )


@scenario("DatabaseInstancesMissing")
def database_instances_missing(ctx: Context) -> Scenario:
    pods = _instance_pods(ctx)
    return Scenario(
        series=[series("cnpg_collector_up", Const(0 if i == 0 else 1), Const(1), **cnpg_target(ctx.namespace, pod)) for i, pod in enumerate(pods)],
        starts=0,
        labels={},
        resolves_after=1,
        value=len(pods) - 1,
    )


@scenario("DatabaseReplicationLag")
def database_replication_lag(ctx: Context) -> Scenario:
    limit = ctx.monitoring.databases.replication_lag_seconds
    primary, *replicas = _instance_pods(ctx)
    return Scenario(
        series=[series("cnpg_pg_replication_lag", Const(0), Const(0), **cnpg_target(ctx.namespace, primary))]
        # At the limit is not beyond it.
        + [series("cnpg_pg_replication_lag", Const(2 * limit if i == 0 else limit), Const(limit), **cnpg_target(ctx.namespace, pod)) for i, pod in enumerate(replicas)],
        starts=0,
        labels={},
        resolves_after=1,
        value=2 * limit,
    )


@scenario("DatabaseBackupTooOld")
def database_backup_too_old(ctx: Context) -> Scenario:
    max_age_minutes = ctx.monitoring.databases.backup_max_age_hours * 60
    metric = "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp"
    return Scenario(
        # The last backup was taken at time 0 and none since; healed, the newest is an hour old.
        series=[series(metric, Const(0), Clock(-3600), **cnpg_target(ctx.namespace, pod)) for pod in _instance_pods(ctx)],
        starts=max_age_minutes + 1,  # older than the limit, not equal to it
        labels={},
        resolves_after=1,
    )


@scenario("DatabaseWalArchivingFailing")
def database_wal_archiving_failing(ctx: Context) -> Scenario:
    primary, *_ = _instance_pods(ctx)
    target = cnpg_target(ctx.namespace, primary)
    return Scenario(
        series=[
            series("cnpg_pg_stat_archiver_last_failed_time", Clock(-60), Clock(-600), **target),
            series("cnpg_pg_stat_archiver_last_archived_time", Clock(-600), Clock(-60), **target),
        ],
        starts=0,
        labels={"pod": primary},
        resolves_after=1,
    )


@scenario("DatabaseStorageAlmostFull")
def database_storage_almost_full(ctx: Context) -> Scenario:
    free = ctx.monitoring.databases.storage_free_percent
    primary, *_ = _instance_pods(ctx)
    capacity = 100 * 2**30
    claims = [primary] + ([f"{primary}-wal"] if ctx.database().wal_storage else [])
    full = claims[-1]  # the WAL volume when there is one: it fills first when archiving fails
    result = []
    for claim in claims:
        target = kubelet_target(ctx.namespace, claim)
        roomy = capacity * min(100, 2 * free) // 100
        result += [
            series("kubelet_volume_stats_available_bytes", Const(capacity * free // 200 if claim == full else roomy), Const(roomy), **target),
            series("kubelet_volume_stats_capacity_bytes", Const(capacity), Const(capacity), **target),
        ]
    return Scenario(series=result, starts=0, labels={"persistentvolumeclaim": full}, resolves_after=1)


# --- caches (redis_exporter beside each data node, scraped through the cache's PodMonitor) ------------------------


def _cache(ctx: Context):
    name = ctx.rule["labels"]["cache"]
    return next(c for c in ctx.config.caches if c.name == name)


def cache_target(namespace: str, pod: str) -> dict[str, str]:
    return {"job": f"{namespace}/{pod.rsplit('-', 1)[0]}", "namespace": namespace, "pod": pod, "instance": "10.244.3.4:9121", "endpoint": "metrics", "container": "exporter"}


def _cache_pods(ctx: Context) -> list[str]:
    cache = _cache(ctx)
    return [f"{cache.name}-{n}" for n in range(cache.data_nodes)]


@scenario("CacheDown")
def cache_down(ctx: Context) -> Scenario:
    sentinel = f"{_cache(ctx).name}-sentinel-0"  # matches no data node's name: must not count as up
    return Scenario(
        series=[series("redis_up", Const(0), Const(1), **cache_target(ctx.namespace, pod)) for pod in _cache_pods(ctx)]
        + [series("redis_up", Const(1), Const(1), **cache_target(ctx.namespace, sentinel))],
        starts=0,
        labels={},
        resolves_after=1,
    )


@scenario("CacheMemoryNearMaxmemory")
def cache_memory_near_maxmemory(ctx: Context) -> Scenario:
    maxmemory = 10**9
    full, *others = _cache_pods(ctx)
    result = []
    for pod in [full, *others]:
        target = cache_target(ctx.namespace, pod)
        # At 90% is not beyond it.
        result += [
            series("redis_memory_used_bytes", Const(maxmemory * (0.95 if pod == full else 0.9)), Const(maxmemory * 0.9), **target),
            series("redis_memory_max_bytes", Const(maxmemory), Const(maxmemory), **target),
        ]
    return Scenario(series=result, starts=0, labels={"pod": full}, resolves_after=1)


@scenario("CacheEvicting")
def cache_evicting(ctx: Context) -> Scenario:
    primary, *_ = _cache_pods(ctx)
    return Scenario(
        series=[series("redis_evicted_keys_total", Rate(60), Rate(0), **cache_target(ctx.namespace, primary))],
        starts=1,  # a rate needs two samples
        labels={},
        resolves_after=6,  # the 5m window still sees the last evictions
    )


@scenario("CacheRejectingConnections")
def cache_rejecting_connections(ctx: Context) -> Scenario:
    primary, *_ = _cache_pods(ctx)
    return Scenario(
        series=[series("redis_rejected_connections_total", Rate(1), Rate(0), **cache_target(ctx.namespace, primary))],
        starts=1,
        labels={},
        resolves_after=6,
    )


@scenario("CacheNoPrimary")
def cache_no_primary(ctx: Context) -> Scenario:
    first, *others = _cache_pods(ctx)
    target = cache_target(ctx.namespace, first)
    return Scenario(
        # The first node was the primary and reports itself a replica: no node says it is the primary.
        series=[series("redis_instance_info", None, Const(1), **target, role="master"), series("redis_instance_info", Const(1), None, **target, role="slave")]
        + [series("redis_instance_info", Const(1), Const(1), **cache_target(ctx.namespace, pod), role="slave") for pod in others],
        starts=0,
        labels={},
        resolves_after=1,
        value=0,
    )


@scenario("CacheReplicationBroken")
def cache_replication_broken(ctx: Context) -> Scenario:
    replicas = _cache(ctx).replicas
    primary, *others = _cache_pods(ctx)
    return Scenario(
        series=[series("redis_connected_slaves", Const(replicas - 1), Const(replicas), **cache_target(ctx.namespace, primary))]
        + [series("redis_connected_slaves", Const(0), Const(0), **cache_target(ctx.namespace, pod)) for pod in others],
        starts=0,
        labels={},
        resolves_after=1,
        value=replicas - 1,
    )


# --- promtool files -----------------------------------------------------------------------------------------------


def values(signal_broken: Signal, signal_healthy: Signal, heal_at: int, horizon: int) -> list[Optional[float]]:
    """The series' sample per evaluation minute 0..horizon: broken before `heal_at`, healthy from it."""
    out: list[Optional[float]] = []
    counter = 0.0
    for minute in range(horizon + 1):
        signal = signal_broken if minute < heal_at else signal_healthy
        if signal is None:
            out.append(None)
        elif isinstance(signal, Const):
            out.append(float(signal.value))
        elif isinstance(signal, Clock):
            out.append(minute * 60 + float(signal.offset_seconds))
        else:
            counter += 0 if minute == 0 else signal.per_minute
            out.append(counter)
    return out


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def notation(samples: list[Optional[float]]) -> str:
    """promtool's expanding notation: runs of equal steps as 'a+bxn' (n+1 samples), gaps as '_xn' (n gaps)."""
    parts, index = [], 0
    while index < len(samples):
        if samples[index] is None:
            end = index
            while end < len(samples) and samples[end] is None:
                end += 1
            parts.append(f"_x{end - index}")
            index = end
            continue
        end = index + 1
        step = samples[end] - samples[index] if end < len(samples) and samples[end] is not None else 0.0
        while end < len(samples) and samples[end] is not None and samples[end] - samples[end - 1] == step:
            end += 1
        start, count = samples[index], end - index - 1
        parts.append(f"{_number(start)}{'+' if step >= 0 else '-'}{_number(abs(step))}x{count}" if count else _number(start))
        index = end
    return " ".join(parts)


TEMPLATE = re.compile(r"{{\s*(.*?)\s*}}")


def go_float(value: float) -> str:
    """How Go's text/template prints a float64 ($value): shortest form, no trailing '.0'."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e21 else repr(float(value))


def render_template(text: str, labels: dict[str, str], value: Optional[float]) -> str:
    """An annotation as Prometheus expands it, for the two forms the platform's alerts use: `{{ $labels.x }}` and
    `{{ $value }}`. Anything else is refused: a scenario must not guess what a template prints."""

    def expand(match: re.Match) -> str:
        expression = match.group(1)
        if expression == "$value":
            if value is None:
                raise ValueError(f"the template {text!r} prints $value: give the scenario a value")
            return go_float(value)
        if expression.startswith("$labels.") and expression[len("$labels."):] in labels:
            return labels[expression[len("$labels."):]]
        raise ValueError(f"template expression {{{{ {expression} }}}} in {text!r}: only $labels.<name of an alert label> and $value are predicted")

    return TEMPLATE.sub(expand, text)


def _duration_minutes(duration: str) -> int:
    units = {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}
    total = sum(float(number) * units[unit] for number, unit in re.findall(r"(\d+)([smhd])", duration))
    return math.ceil(total)


@dataclass
class StackTests:
    """The promtool inputs for one stack: the rule file, the test file, and what they check."""

    rules: dict[str, Any]
    tests: dict[str, Any]
    cases: list[str] = field(default_factory=list)  # "firing AlertName{...}" / "silent AlertName{...}"

    @property
    def checks(self) -> int:
        return sum(len(group["alert_rule_test"]) for group in self.tests["tests"])


def rule_key(rule: dict[str, Any]) -> str:
    scope = {k: v for k, v in rule["labels"].items() if k not in ("severity", "namespace")}
    return rule["alert"] + ("{" + ", ".join(f"{k}={v}" for k, v in sorted(scope.items())) + "}" if scope else "")


def generate(groups: list[dict[str, Any]], config: Any, stack: str, rule_file: str = "rules.yaml") -> StackTests:
    """promtool rule and test files for every alert rule of `groups` (a PrometheusRule's spec.groups)."""
    rules = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    missing = sorted({rule["alert"] for rule in rules if rule["alert"] not in SCENARIOS})
    if missing:
        raise MissingScenario(
            f"{stack}: no test scenario for alert(s) {missing}: add a @scenario(\"<alert>\") function to tools/alert_tests.py "
            "(the series that make it fire, the labels it must carry, and when it fires)"
        )
    scenarios = {id(rule): SCENARIOS[rule["alert"]](Context(rule, config)) for rule in rules}
    tests, cases = [], []
    for rule in rules:
        own = scenarios[id(rule)]
        siblings = [s for other in rules if other["alert"] == rule["alert"] and other is not rule for s in scenarios[id(other)].series]
        fires_at = own.starts + _duration_minutes(rule.get("for", "0m"))
        heal_at = fires_at + 1
        resolved_at = heal_at + own.resolves_after
        horizon = resolved_at + 1
        labels = {**own.labels, **rule["labels"]}
        annotations = {name: render_template(text, labels, own.value) for name, text in rule.get("annotations", {}).items()}
        firing = [(s.selector, values(s.broken, s.healthy, heal_at, horizon)) for s in own.series]
        firing += [(s.selector, values(s.healthy, s.healthy, 0, horizon)) for s in siblings]
        checks = [] if fires_at == 0 else [{"eval_time": f"{fires_at - 1}m", "alertname": rule["alert"], "exp_alerts": []}]
        checks += [
            {"eval_time": f"{fires_at}m", "alertname": rule["alert"], "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}]},
            {"eval_time": f"{resolved_at}m", "alertname": rule["alert"], "exp_alerts": []},
        ]
        tests.append(_group(f"{stack}: {rule_key(rule)} fires", firing, checks))
        elsewhere = rule["labels"]["namespace"] + ELSEWHERE
        quiet = [(s.selector, values(s.healthy, s.healthy, 0, horizon)) for s in own.series + siblings]
        quiet += [(m.selector, values(m.broken, m.broken, 0, horizon)) for m in (s.moved(elsewhere) for s in own.series) if m.broken is not None]
        silent_checks = [{"eval_time": f"{minute}m", "alertname": rule["alert"], "exp_alerts": []} for minute in sorted({fires_at, horizon})]
        tests.append(_group(f"{stack}: {rule_key(rule)} stays silent", quiet, silent_checks))
        cases += [f"firing {rule_key(rule)}", f"silent {rule_key(rule)}"]
    document = {"rule_files": [rule_file], "evaluation_interval": f"{EVALUATION_INTERVAL_MINUTES}m", "tests": tests}
    return StackTests(rules={"groups": groups}, tests=document, cases=cases)


def _group(name: str, inputs: list[tuple[str, list[Optional[float]]]], checks: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, list[Optional[float]]] = {}
    for selector, samples in inputs:
        if selector in merged and merged[selector] != samples:
            raise ValueError(f"{name}: two scenarios give {selector} different samples")
        merged[selector] = samples
    return {
        "name": name,
        "interval": f"{EVALUATION_INTERVAL_MINUTES}m",
        "input_series": [{"series": selector, "values": notation(samples)} for selector, samples in merged.items()],
        "alert_rule_test": checks,
    }


def stack_config_of(stack: str):
    """The stack's StackConfig, loaded as the program loads it (secure values as placeholders)."""
    import stack_config
    from tools import engine

    raw, secret_keys = engine.stack_config(stack)
    project = engine.project_name()
    return stack_config.load(stack, project, lambda key: raw.get(f"{project}:{key}"), lambda key: f"{project}:{key}" in secret_keys)


def prometheus_rule_groups(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """spec.groups of the (one) PrometheusRule among rendered objects."""
    (rule,) = [o for o in objects if o.get("kind") == "PrometheusRule"]
    return rule["spec"]["groups"]
