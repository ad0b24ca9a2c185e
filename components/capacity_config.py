"""What the namespace's ResourceQuota and LimitRange (`quota`, `containerDefaults`) will refuse, found in the config.

The API server refuses a pod whose container asks for more than the LimitRange's max, or whose requests exceed its
limits; and the quota refuses any pod past its totals, which an autoscaler only reaches under load, when the pods are
needed most. So every workload is counted at its maximum: autoscaling.maxReplicas (or replicas), one more pod while
a rollout surges (maxSurge: 1) and the migration Job beside it, the one-off tasks' Jobs, a VPA in initial/auto mode
at its maxAllowed; the databases with all their instances and pooler pods, the caches with their data nodes (and
exporters) and Sentinels.
No Pulumi imports (stack_config.load calls `capacity_problems` with the validated config).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from components.autoscaling_config import RESOURCES, quantity, service_kind
from components.config_base import ComputeAmounts, ContainerResources
from components.cache_config import EXPORTER_RESOURCES, SENTINEL_RESOURCES
from components.database_cluster_config import BACKUP_SIDECAR_RESOURCES

# Rolling updates surge one pod over the replicas (components/app_service.py, maxSurge: 1).
ROLLOUT_SURGE_PODS = 1
# What the connection pooler's pgbouncer containers ask for (components/connection_pooler.py sets the same).
POOLER_RESOURCES = ContainerResources(
    requests=ComputeAmounts(cpu="100m", memory="64Mi"), limits=ComputeAmounts(cpu="500m", memory="128Mi")
)
# (requests|limits, resource) -> the quota's key and its model field.
QUOTA_FIELDS = {
    ("requests", "cpu"): ("requestsCpu", "requests_cpu"),
    ("requests", "memory"): ("requestsMemory", "requests_memory"),
    ("limits", "cpu"): ("limitsCpu", "limits_cpu"),
    ("limits", "memory"): ("limitsMemory", "limits_memory"),
}


@dataclass(frozen=True)
class Workload:
    """Pods of one kind at their most: how many, and what each container asks for."""

    label: str  # how messages name it, with the key that sets its count
    resources_path: str  # the key of its resources
    pods: int
    resources: ContainerResources


def _scaled(resources: ContainerResources, vertical: Any) -> ContainerResources:
    """A pod's resources as an applying VPA may set them: requests up to maxAllowed, limits in proportion (the VPA's
    default controlledValues, RequestsAndLimits)."""
    if vertical is None or not vertical.applies or vertical.max_allowed is None:
        return resources
    requests, limits = {}, {}
    for resource in RESOURCES:
        request, limit = getattr(resources.requests, resource), getattr(resources.limits, resource)
        allowed = getattr(vertical.max_allowed, resource)
        if resource in vertical.controlled_resources and quantity(allowed) > quantity(request):
            ratio = quantity(limit) / quantity(request) if quantity(request) else Decimal(1)
            requests[resource], limits[resource] = allowed, _format(quantity(allowed) * ratio, resource)
        else:
            requests[resource], limits[resource] = request, limit
    return ContainerResources(requests=ComputeAmounts(**requests), limits=ComputeAmounts(**limits))


def _format(amount: Decimal, resource: str) -> str:
    if resource == "cpu":
        return f"{int((amount * 1000).to_integral_value())}m"
    return str(int(amount.to_integral_value()))


def service_workloads(index: int, service: Any) -> list[Workload]:
    where = f"services[{index}]"
    resources = _scaled(service.resources, getattr(service, "vertical", None))
    if service_kind(service) == "cron":
        # One run at a time (the CronJob's concurrencyPolicy Forbid, parallelism 1).
        return [Workload(f"{where} ('{service.name}', one run at a time)", f"{where}.resources", 1, resources)]
    if service.autoscaling is not None:
        count, key = service.autoscaling.max_replicas, f"{where}.autoscaling.maxReplicas"
    else:
        count, key = service.replicas, f"{where}.replicas"
    workloads = [Workload(f"{key} ('{service.name}', + {ROLLOUT_SURGE_PODS} while rolling out)", f"{where}.resources", count + ROLLOUT_SURGE_PODS, resources)]
    if getattr(service, "migrations", None) is not None:
        workloads.append(Workload(f"{where}.migrations ('{service.name}')", f"{where}.resources", 1, service.resources))
    tasks = getattr(service, "tasks", [])
    if tasks:  # one-off Jobs started together after the rollout, one pod each (with the service's resources)
        workloads.append(Workload(f"{where}.tasks ('{service.name}', {len(tasks)} at once)", f"{where}.resources", len(tasks), service.resources))
    return workloads


def _together(first: ContainerResources, second: ContainerResources) -> ContainerResources:
    """Two containers of one pod as one: the quota counts their sum."""

    def total(kind: str, resource: str) -> str:
        amount = quantity(getattr(getattr(first, kind), resource)) + quantity(getattr(getattr(second, kind), resource))
        if resource == "memory" and amount % 2**20 == 0:
            return f"{int(amount / 2**20)}Mi"
        return _format(amount, resource)

    return ContainerResources(**{kind: ComputeAmounts(**{r: total(kind, r) for r in RESOURCES}) for kind in ("requests", "limits")})


def database_workloads(index: int, database: Any, backed_up: bool = False) -> list[Workload]:
    where = f"databases[{index}]"
    if backed_up:
        # The Barman Cloud plugin adds its sidecar to every instance pod (BACKUP_SIDECAR_RESOURCES).
        label, resources = f"{where}.instances ('{database.name}', each with its backup sidecar)", _together(database.resources, BACKUP_SIDECAR_RESOURCES)
    else:
        label, resources = f"{where}.instances ('{database.name}')", database.resources
    workloads = [Workload(label, f"{where}.resources", database.instances, resources)]
    if database.pooler is not None:
        workloads.append(Workload(f"{where}.pooler.instances ('{database.name}')", f"{where}.pooler", database.pooler.instances, POOLER_RESOURCES))
    return workloads


def cache_workloads(index: int, cache: Any) -> list[Workload]:
    """A deployed cache's pods (an external one has none here): its data nodes, each with its exporter, and its Sentinels.
    A StatefulSet replaces its pods one at a time, without a surge."""
    if cache.external is not None:
        return []
    where = f"caches[{index}]"
    label = f"{where}.replicas ('{cache.name}', {cache.data_nodes} data node(s), each with its exporter)"
    workloads = [Workload(label, f"{where}.resources", cache.data_nodes, _together(cache.resources, EXPORTER_RESOURCES))]
    if cache.failover is not None:
        workloads.append(Workload(f"{where}.failover.sentinels ('{cache.name}')", f"{where}.failover", cache.failover.sentinels, SENTINEL_RESOURCES))
    return workloads


def workloads_of(config: Any) -> list[Workload]:
    workloads = [workload for index, service in enumerate(config.services) for workload in service_workloads(index, service)]
    workloads += [
        workload
        for index, database in enumerate(config.databases)
        for workload in database_workloads(index, database, config.backs_up(database))
    ]
    workloads += [workload for index, cache in enumerate(config.caches) for workload in cache_workloads(index, cache)]
    return workloads


def _shown(amount: Decimal, resource: str) -> str:
    if resource == "cpu":
        return f"{amount.normalize():f}"
    return f"{(amount / 2**30).quantize(Decimal('0.01'))}Gi"


def _suggested(amount: Decimal, resource: str) -> str:
    if resource == "cpu":
        return f'"{int(amount.to_integral_value(rounding="ROUND_CEILING"))}"'
    return f"{int((amount / 2**30).to_integral_value(rounding='ROUND_CEILING'))}Gi"


def limit_range_problems(config: Any, project: str, stack: str) -> list[str]:
    """Each container's requests within its limits, its limits within the LimitRange's max (containerDefaults.max);
    an applying VPA's maxAllowed within that max too."""
    problems = []
    maximum = config.container_defaults.max
    declared = [(f"services[{index}].resources", service.resources) for index, service in enumerate(config.services)]
    declared += [(f"databases[{index}].resources", database.resources) for index, database in enumerate(config.databases)]
    for path, resources in declared:
        for resource in RESOURCES:
            request, limit = getattr(resources.requests, resource), getattr(resources.limits, resource)
            if quantity(request) > quantity(limit):
                problems.append(
                    f"{project}:{path}.requests.{resource}: {request} is above the limit ({limit}); the API server "
                    f"refuses such a pod. Fix: `pulumi config set --stack {stack} --path '{path}.requests.{resource}' {limit}` "
                    f"or raise {path}.limits.{resource}"
                )
            if quantity(limit) > quantity(getattr(maximum, resource)):
                problems.append(
                    f"{project}:{path}.limits.{resource}: {limit} is above the namespace's LimitRange max "
                    f"(containerDefaults.max.{resource}: {getattr(maximum, resource)}), which refuses the pod. Fix: "
                    f"`pulumi config set --stack {stack} --path '{path}.limits.{resource}' {getattr(maximum, resource)}` or "
                    f"raise containerDefaults.max.{resource}"
                )
    for index, service in enumerate(config.services):
        vertical = getattr(service, "vertical", None)
        if vertical is None or not vertical.applies or vertical.max_allowed is None:
            continue
        scaled = _scaled(service.resources, vertical)
        for resource in vertical.controlled_resources:
            limit = getattr(scaled.limits, resource)
            if quantity(limit) > quantity(getattr(maximum, resource)):
                path = f"services[{index}].vertical.maxAllowed.{resource}"
                problems.append(
                    f"{project}:{path}: at {getattr(vertical.max_allowed, resource)} requested, the VPA sets the limit "
                    f"to {_shown(quantity(limit), resource)} (in proportion to today's), above the LimitRange max "
                    f"(containerDefaults.max.{resource}: {getattr(maximum, resource)}), which refuses the pod. Lower it "
                    f"(`pulumi config set --stack {stack} --path '{path}' <amount>`) or raise containerDefaults.max.{resource}"
                )
    return problems


def quota_problems(config: Any, project: str, stack: str) -> list[str]:
    """Every workload at its maximum within the namespace's ResourceQuota: requests, limits and pods."""
    workloads = workloads_of(config)
    quota = config.quota
    problems = []
    for (kind, resource), (key, field) in QUOTA_FIELDS.items():
        allowed = quantity(getattr(quota, field))
        parts = [
            (workload, workload.pods * quantity(getattr(getattr(workload.resources, kind), resource))) for workload in workloads
        ]
        total = sum((amount for _, amount in parts), Decimal(0))
        if total > allowed:
            largest = sorted(parts, key=lambda part: part[1], reverse=True)[:3]
            shown = ", ".join(f"{workload.label}: {workload.pods} x {getattr(getattr(workload.resources, kind), resource)}" for workload, _ in largest)
            problems.append(
                f"{project}:quota.{key}: at their maxima the workloads need {_shown(total, resource)} {resource} of "
                f"{kind} ({shown}, ...), above the quota's {getattr(quota, field)}: the API server "
                "would refuse pods as the autoscalers reach for them. Fix: raise the quota, "
                f"`pulumi config set --stack {stack} --path 'quota.{key}' {_suggested(total, resource)}`, or lower the "
                "largest maxReplicas/replicas or resources named here"
            )
    pods = sum(workload.pods for workload in workloads)
    if pods > quota.pods:
        problems.append(
            f"{project}:quota.pods: at their maxima the workloads run {pods} pods (rollout surges and migration Jobs "
            f"included), above the quota's {quota.pods}. Fix: `pulumi config set --stack {stack} --path 'quota.pods' "
            f"{pods}`, or lower the largest maxReplicas/replicas"
        )
    return problems


def capacity_problems(config: Any, project: str, stack: str) -> list[str]:
    return limit_range_problems(config, project, stack) + quota_problems(config, project, stack)
