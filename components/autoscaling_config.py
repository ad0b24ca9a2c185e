"""The `services[].autoscaling` and `services[].vertical` stack config keys: what components.autoscaling renders
(a HorizontalPodAutoscaler, or a KEDA ScaledObject with its TriggerAuthentications, and a VerticalPodAutoscaler).

A workload is scaled by our HPA (`targetCpuPercent`/`targetMemoryPercent`) or by KEDA (`keda`), never both: KEDA
makes an HPA of its own, and two HPAs on one Deployment fight over its replicas. KEDA's triggers are a list that
grows by one model here and one renderer in components/autoscaling.py (TRIGGER_RENDERERS).

What ties these keys to the rest of the stack (the environment, the databases, the namespace's quota and
LimitRange) is judged by `autoscaling_problems`, which stack_config.load calls with the validated config. No Pulumi
imports here.
"""

from __future__ import annotations

import re
import zoneinfo
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from components.config_base import DNS_LABEL, QUANTITY, CamelModel, ComputeAmounts

RESOURCES = ("cpu", "memory")
DEFAULT_TARGET_CPU_PERCENT = 70
# Scale down only after five minutes of lower load (Kubernetes' own default, written out so `pulumi preview` shows
# it): a short dip in traffic must not take pods away that the next burst needs again.
DEFAULT_SCALE_DOWN_WINDOW_SECONDS = 300
ENVIRONMENTS_WITH_SCALE_TO_ZERO_WEB = ("local", "staging")  # never prod: a web service at zero answers nothing
FIVE_FIELD_CRON = re.compile(r"^\S+( \S+){4}$")


class ScalingRules(CamelModel):
    """One direction of an HPA's `behavior`: how long it waits before acting on a lower (or higher) recommendation,
    and at most how fast it moves."""

    stabilization_window_seconds: int = Field(ge=0, le=3600)
    # At most this share of the current pods added or removed per minute; None: the Kubernetes default.
    max_percent_per_minute: Optional[int] = Field(default=None, ge=1, le=1000)


class ScalingBehavior(CamelModel):
    scale_down: ScalingRules = ScalingRules(stabilization_window_seconds=DEFAULT_SCALE_DOWN_WINDOW_SECONDS)
    scale_up: Optional[ScalingRules] = None  # None: the Kubernetes default (no window, fast)


# --- KEDA triggers ------------------------------------------------------------------------------------------


class PrometheusTrigger(CamelModel):
    """Scales on a PromQL query, e.g. the depth of a queue: replicas = ceil(value / threshold)."""

    type: Literal["prometheus"]
    server_address: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    query: str = Field(min_length=1)
    threshold: float = Field(gt=0)
    activation_threshold: Optional[float] = Field(default=None, ge=0)  # above it a workload at zero wakes up


class CronTrigger(CamelModel):
    """Holds `desiredReplicas` between `start` and `end` (five-field cron expressions in `timezone`)."""

    type: Literal["cron"]
    timezone: str
    start: str
    end: str
    desired_replicas: int = Field(ge=1)

    @field_validator("timezone")
    @classmethod
    def known_time_zone(cls, timezone: str) -> str:
        if timezone not in zoneinfo.available_timezones():
            raise ValueError(f"'{timezone}' is not an IANA time zone; use a name like Europe/Berlin or UTC")
        return timezone

    @field_validator("start", "end")
    @classmethod
    def five_fields(cls, expression: str) -> str:
        if not FIVE_FIELD_CRON.match(expression.strip()):
            raise ValueError(
                f"'{expression}' is not a cron expression of five fields (minute hour day-of-month month day-of-week), "
                "e.g. '0 8 * * 1-5'"
            )
        return expression.strip()


class PostgresqlTrigger(CamelModel):
    """Scales on a SQL query (e.g. the rows waiting in a jobs table) against a database of this stack that the service
    uses (`usedBy`): KEDA connects with the database's credentials Secret, through a TriggerAuthentication."""

    type: Literal["postgresql"]
    database: str = Field(pattern=DNS_LABEL)
    query: str = Field(min_length=1)
    target_query_value: float = Field(gt=0)
    activation_target_query_value: Optional[float] = Field(default=None, ge=0)


class RedisTrigger(CamelModel):
    """Scales on the length of a list (a work queue) in a cache of this stack that the service uses (`usedBy`): KEDA
    connects with the cache's password, through a TriggerAuthentication; with failover it asks the Sentinels."""

    type: Literal["redis"]
    cache: str = Field(pattern=DNS_LABEL)
    list_name: str = Field(min_length=1)
    list_length: int = Field(gt=0)
    activation_list_length: Optional[int] = Field(default=None, ge=0)


class ResourceTrigger(CamelModel):
    """KEDA's cpu or memory scaler: the pods' average utilisation of their requests."""

    type: Literal["cpu", "memory"]
    utilization_percent: int = Field(ge=10, le=100)


KedaTrigger = Annotated[Union[PrometheusTrigger, CronTrigger, PostgresqlTrigger, RedisTrigger, ResourceTrigger], Field(discriminator="type")]


class KedaFallback(CamelModel):
    """The replicas KEDA holds while a trigger's source fails `failureThreshold` times in a row."""

    failure_threshold: int = Field(ge=1, le=100)
    replicas: int = Field(ge=1)


class KedaScaling(CamelModel):
    polling_interval_seconds: int = Field(default=30, ge=5, le=3600)
    # How long after the last active trigger a workload at zero is scaled down (scaleToZero only).
    cooldown_period_seconds: int = Field(default=300, ge=0, le=86400)
    # Down to zero pods while no trigger is active (KEDA's idleReplicaCount: 0); minReplicas holds while active.
    # Allowed where stack_config permits it: workers anywhere, web services outside prod.
    scale_to_zero: bool = False
    fallback: Optional[KedaFallback] = None
    triggers: list[KedaTrigger] = Field(min_length=1)

    @model_validator(mode="after")
    def fallback_needs_an_external_trigger(self) -> "KedaScaling":
        if self.fallback and all(isinstance(trigger, ResourceTrigger) for trigger in self.triggers):
            raise ValueError(
                "'fallback' needs a trigger that reads an outside source (prometheus, postgresql, cron): KEDA refuses a "
                "fallback on cpu/memory triggers only; remove 'fallback' or add such a trigger"
            )
        if self.scale_to_zero and all(isinstance(trigger, ResourceTrigger) for trigger in self.triggers):
            raise ValueError(
                "scaleToZero with only cpu/memory triggers never wakes up (pods at zero use no cpu); add a trigger on "
                "an outside source (prometheus, postgresql, cron) or remove scaleToZero"
            )
        return self

    @property
    def resources(self) -> set[str]:
        """The compute resources KEDA's HPA scales on."""
        return {trigger.type for trigger in self.triggers if isinstance(trigger, ResourceTrigger)}


class Autoscaling(CamelModel):
    min_replicas: int = Field(ge=1)
    max_replicas: int = Field(ge=1)
    # Our HPA's targets. Unset (both) without `keda`: cpu at 70 %. With `keda` they must stay unset.
    target_cpu_percent: Optional[int] = Field(default=None, ge=10, le=100)
    target_memory_percent: Optional[int] = Field(default=None, ge=10, le=100)
    behavior: ScalingBehavior = ScalingBehavior()
    keda: Optional[KedaScaling] = None

    @model_validator(mode="after")
    def bounds_in_order(self) -> "Autoscaling":
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"maxReplicas ({self.max_replicas}) is below minReplicas ({self.min_replicas})")
        return self

    @property
    def hpa_targets(self) -> dict[str, int]:
        """resource -> target utilisation of our HPA; empty with KEDA."""
        if self.keda is not None:
            return {}
        targets = {"cpu": self.target_cpu_percent, "memory": self.target_memory_percent}
        return {resource: target for resource, target in targets.items() if target is not None} or {"cpu": DEFAULT_TARGET_CPU_PERCENT}

    @property
    def scaled_resources(self) -> set[str]:
        """cpu/memory the horizontal scaler (ours or KEDA's) acts on: a VPA must not change them as well."""
        return self.keda.resources if self.keda is not None else set(self.hpa_targets)


class VerticalScaling(CamelModel):
    """A VerticalPodAutoscaler: `recommend` only records recommendations (updateMode Off: read them with `kubectl
    describe vpa`), `initial` sets requests when a pod is created, `auto` also evicts pods to apply new ones."""

    mode: Literal["recommend", "initial", "auto"] = "recommend"
    controlled_resources: list[Literal["cpu", "memory"]] = Field(default_factory=lambda: list(RESOURCES), min_length=1)
    min_allowed: Optional[ComputeAmounts] = None
    # Required for initial/auto: the most one pod may be given, which the quota check counts with.
    max_allowed: Optional[ComputeAmounts] = None

    @field_validator("controlled_resources")
    @classmethod
    def each_resource_once(cls, resources: list[str]) -> list[str]:
        if len(set(resources)) != len(resources):
            raise ValueError(f"{resources} names a resource twice; list cpu and/or memory once each")
        return resources

    @model_validator(mode="after")
    def bounds(self) -> "VerticalScaling":
        problems = []
        if self.mode != "recommend" and self.max_allowed is None:
            problems.append(
                f"mode {self.mode} changes the pods' requests: set maxAllowed (e.g. {{cpu: '1', memory: 1Gi}}) so no pod "
                "can be given more than the namespace's LimitRange and quota allow"
            )
        if self.min_allowed and self.max_allowed:
            for resource in RESOURCES:
                low, high = getattr(self.min_allowed, resource), getattr(self.max_allowed, resource)
                if quantity(low) > quantity(high):
                    problems.append(f"minAllowed.{resource} ({low}) is above maxAllowed.{resource} ({high})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def applies(self) -> bool:
        """Whether the VPA changes pods (initial/auto) rather than only recommending."""
        return self.mode != "recommend"


_SUFFIXES = {
    "": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity (of the forms config_base.QUANTITY accepts) as a number: '250m' -> 0.25, '1Gi' -> 2**30."""
    match = re.fullmatch(QUANTITY, text)
    if not match:
        raise ValueError(f"'{text}' is not a quantity")
    number = re.match(r"^[0-9]+(\.[0-9]+)?", text).group(0)
    return Decimal(number) * Decimal(_SUFFIXES[text[len(number):]])


# KEDA's operator pods as its release manifests and chart label them (config/manager/manager.yaml in the module).
KEDA_OPERATOR_POD_LABELS = {"app": "keda-operator"}


class KedaSettings(CamelModel):
    """The `keda` key: where the cluster's KEDA runs. Its operator queries the sources of the triggers itself, so the
    databases of postgresql triggers admit it (their NetworkPolicies) from this namespace."""

    operator_namespace: str = Field(default="keda", pattern=DNS_LABEL, max_length=63)

    @property
    def operator_peer(self) -> dict[str, Any]:
        """KEDA's operator as a NetworkPolicy peer."""
        return {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.operator_namespace}},
            "podSelector": {"matchLabels": dict(KEDA_OPERATOR_POD_LABELS)},
        }


def keda_reads_cache(services: list[Any], cache_name: str) -> bool:
    """Whether a redis trigger of some service reads this cache (KEDA's operator then connects to it)."""
    return any(
        isinstance(trigger, RedisTrigger) and trigger.cache == cache_name
        for service in services
        if service.autoscaling is not None and service.autoscaling.keda is not None
        for trigger in service.autoscaling.keda.triggers
    )


def keda_reads(services: list[Any], database_name: str) -> bool:
    """Whether a postgresql trigger of some service queries this database (KEDA's operator then connects to it)."""
    return any(
        isinstance(trigger, PostgresqlTrigger) and trigger.database == database_name
        for service in services
        if service.autoscaling is not None and service.autoscaling.keda is not None
        for trigger in service.autoscaling.keda.triggers
    )


# --- what ties the keys to the stack ------------------------------------------------------------------------


def _fix_set(stack: str, path: str, value: Any) -> str:
    return f"`pulumi config set --stack {stack} --path '{path}' {value}`"


def _fix_rm(stack: str, path: str) -> str:
    return f"`pulumi config rm --stack {stack} --path '{path}'`"


def service_kind(service: Any) -> str:
    """web, worker or cron (services[].kind); web for a config that has no kinds."""
    return getattr(service, "kind", "web") or "web"


def scaling_problems(services: list[Any], environment: str, databases: list[Any], project: str, stack: str) -> list[str]:
    """KEDA plus our HPA, a VPA that changes what the HPA scales on, scale to zero where the stack forbids it, a
    postgresql trigger on a database the service does not use, a fallback outside the bounds."""
    problems = []
    used_by = {database.name: set(database.used_by) for database in databases}
    for index, service in enumerate(services):
        where = f"services[{index}]"
        autoscaling, vertical = service.autoscaling, getattr(service, "vertical", None)
        keda = autoscaling.keda if autoscaling is not None else None
        if keda is not None:
            for key, value in (("targetCpuPercent", autoscaling.target_cpu_percent), ("targetMemoryPercent", autoscaling.target_memory_percent)):
                if value is not None:
                    problems.append(
                        f"{project}:{where}.autoscaling.{key}: '{service.name}' is scaled by KEDA (autoscaling.keda), which "
                        "makes its own HPA; a second one from this key would fight it over the replicas. Scale on the "
                        f"resource through KEDA instead (a trigger {{type: {key[6:-7].lower()}, utilizationPercent: {value}}}"
                        f" in autoscaling.keda.triggers) and remove the key: {_fix_rm(stack, f'{where}.autoscaling.{key}')}"
                    )
            if keda.scale_to_zero and service_kind(service) == "web" and environment not in ENVIRONMENTS_WITH_SCALE_TO_ZERO_WEB:
                problems.append(
                    f"{project}:{where}.autoscaling.keda.scaleToZero: '{service.name}' is a web service; at zero pods "
                    f"its requests fail until KEDA notices them and a pod starts, which {environment} does not allow "
                    f"(only workers scale to zero there). Remove it: {_fix_rm(stack, f'{where}.autoscaling.keda.scaleToZero')}"
                )
            if keda.fallback and not autoscaling.min_replicas <= keda.fallback.replicas <= autoscaling.max_replicas:
                problems.append(
                    f"{project}:{where}.autoscaling.keda.fallback.replicas: {keda.fallback.replicas} is outside "
                    f"minReplicas..maxReplicas ({autoscaling.min_replicas}..{autoscaling.max_replicas}); "
                    f"e.g. {_fix_set(stack, f'{where}.autoscaling.keda.fallback.replicas', autoscaling.max_replicas)}"
                )
            for j, trigger in enumerate(keda.triggers):
                if isinstance(trigger, PostgresqlTrigger) and service.name not in used_by.get(trigger.database, set()):
                    path = f"{where}.autoscaling.keda.triggers[{j}].database"
                    known = sorted(name for name, users in used_by.items() if service.name in users)
                    problems.append(
                        f"{project}:{path}: '{trigger.database}' is not a database '{service.name}' uses (its usedBy), so "
                        f"it has no credentials to read; use one of {known or 'none'}, or add '{service.name}' to that "
                        "database's usedBy"
                    )
        if vertical is not None and vertical.mode == "auto" and service_kind(service) == "cron":
            problems.append(
                f"{project}:{where}.vertical.mode: mode auto evicts pods to apply new requests, and a cron job's pod is "
                f"a run: evicted, it fails and counts against backoffLimit. Let new runs start with the recommendation "
                f"instead: {_fix_set(stack, f'{where}.vertical.mode', 'initial')}"
            )
        if vertical is not None and vertical.applies and autoscaling is not None:
            both = sorted(set(vertical.controlled_resources) & autoscaling.scaled_resources)
            if both:
                rest = [resource for resource in RESOURCES if resource not in both]
                alternative = f"set vertical.controlledResources: {rest} (the HPA keeps {both}), or " if rest else ""
                problems.append(
                    f"{project}:{where}.vertical.mode: a VerticalPodAutoscaler in mode {vertical.mode} changes the "
                    f"{'/'.join(both)} requests that '{service.name}''s horizontal autoscaler scales on (utilisation is "
                    f"measured against them), so the two fight; {alternative}only record recommendations: "
                    f"{_fix_set(stack, f'{where}.vertical.mode', 'recommend')}"
                )
    return problems
