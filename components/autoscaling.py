"""A workload's autoscalers: our HorizontalPodAutoscaler, or a KEDA ScaledObject with a TriggerAuthentication per
trigger that needs credentials, and a VerticalPodAutoscaler.

`render_autoscalers` is called by the component that owns the workload (AppService), and every object it makes is
that component's child. The specs are plain functions of the config (tests read them without an engine).

Decisions worth knowing:

- Our HPA or KEDA, never both (components/autoscaling_config.py refuses it): KEDA makes an HPA of its own for the
  ScaledObject, and two HPAs on one Deployment fight over its replicas. Either way the Deployment leaves `replicas`
  unset (AppService), so `pulumi up` never resets what the autoscaler chose.
- The scale-down stabilisation window is always written out (five minutes unless configured), for KEDA through its
  HPA's `advanced.horizontalPodAutoscalerConfig.behavior`: a preview shows how slowly pods go away.
- Credentials reach KEDA only through TriggerAuthentication `secretTargetRef`s to Secrets other components own (a
  database's credentials Secret): never in trigger metadata, which anyone who reads the ScaledObject sees.
- A trigger type is one model in autoscaling_config (KedaTrigger) and one renderer in TRIGGER_RENDERERS here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pulumi
import pulumi_kubernetes as k8s

from components import readiness
from components.autoscaling_config import (
    Autoscaling,
    CronTrigger,
    PostgresqlTrigger,
    PrometheusTrigger,
    RedisTrigger,
    ResourceTrigger,
    ScalingBehavior,
    ScalingRules,
    VerticalScaling,
)

# The versions tools/crds holds the CRDs of (from their Go modules, tools/crds/SOURCE.md) and the local add-ons install.
KEDA_VERSION = "2.21.0"  # the kedacore/keda chart's version is KEDA's
VPA_VERSION = "1.8.1"
VPA_CHART_VERSION = "0.13.0"  # charts/vertical-pod-autoscaler/Chart.yaml in the module at VPA_VERSION
KEDA_API_VERSION = "keda.sh/v1alpha1"
VPA_API_VERSION = "autoscaling.k8s.io/v1"
# recommend only records (Off); auto is the VPA's Recreate (its deprecated "Auto" means the same): evict to apply.
VPA_UPDATE_MODES = {"recommend": "Off", "initial": "Initial", "auto": "Recreate"}


@dataclass(frozen=True)
class ScaleTarget:
    """The workload scaled: a Deployment (web, worker) or, for a VPA only, a CronJob; and its container."""

    name: str
    container: str
    kind: str = "Deployment"
    api_version: str = "apps/v1"

    @property
    def ref(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}


@dataclass(frozen=True)
class SecretKey:
    """A key of a Secret in the workload's namespace."""

    name: str
    key: str


@dataclass(frozen=True)
class RedisSource(SecretKey):
    """A cache a redis trigger reads: the key of its password, where it is (host:port of the cache, or of its Sentinels
    with `sentinel_master`), and whether it speaks TLS."""

    address: str = ""
    sentinel_master: Optional[str] = None
    tls: bool = False


@dataclass
class AutoscalersArgs:
    target: ScaleTarget
    namespace: str
    labels: dict[str, str]
    autoscaling: Optional[Autoscaling] = None
    vertical: Optional[VerticalScaling] = None
    # A backing service (database) name -> the Secret key holding a connection string to it that KEDA can use.
    connection_secrets: dict[str, SecretKey] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderedTrigger:
    trigger: dict[str, Any]  # the ScaledObject's triggers[] entry, without authenticationRef
    secret_refs: list[dict[str, str]] = field(default_factory=list)  # TriggerAuthentication secretTargetRef entries


# --- pure specs ---------------------------------------------------------------------------------------------


def _rules(rules: ScalingRules) -> dict[str, Any]:
    spec: dict[str, Any] = {"stabilizationWindowSeconds": rules.stabilization_window_seconds}
    if rules.max_percent_per_minute is not None:
        spec["policies"] = [{"type": "Percent", "value": rules.max_percent_per_minute, "periodSeconds": 60}]
    return spec


def behavior_spec(behavior: ScalingBehavior) -> dict[str, Any]:
    spec = {"scaleDown": _rules(behavior.scale_down)}
    if behavior.scale_up is not None:
        spec["scaleUp"] = _rules(behavior.scale_up)
    return spec


def hpa_spec(target: ScaleTarget, autoscaling: Autoscaling) -> dict[str, Any]:
    return {
        "scaleTargetRef": target.ref,
        "minReplicas": autoscaling.min_replicas,
        "maxReplicas": autoscaling.max_replicas,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": percent}},
            }
            for resource, percent in sorted(autoscaling.hpa_targets.items())
        ],
        "behavior": behavior_spec(autoscaling.behavior),
    }


def _number(value: float) -> str:
    """KEDA's trigger metadata are strings: 100.0 -> "100", 0.5 -> "0.5"."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _optional(name: str, value: Optional[float]) -> dict[str, str]:
    return {} if value is None else {name: _number(value)}


def _prometheus(trigger: PrometheusTrigger, args: AutoscalersArgs) -> RenderedTrigger:
    metadata = {"serverAddress": trigger.server_address, "query": trigger.query, "threshold": _number(trigger.threshold)}
    return RenderedTrigger({"type": "prometheus", "metadata": {**metadata, **_optional("activationThreshold", trigger.activation_threshold)}})


def _cron(trigger: CronTrigger, args: AutoscalersArgs) -> RenderedTrigger:
    metadata = {"timezone": trigger.timezone, "start": trigger.start, "end": trigger.end, "desiredReplicas": str(trigger.desired_replicas)}
    return RenderedTrigger({"type": "cron", "metadata": metadata})


def _postgresql(trigger: PostgresqlTrigger, args: AutoscalersArgs) -> RenderedTrigger:
    secret = args.connection_secrets.get(trigger.database)
    if secret is None:  # the stack config refuses a database the service does not use
        raise ValueError(f"no connection Secret for database '{trigger.database}' in AutoscalersArgs.connection_secrets")
    metadata = {"query": trigger.query, "targetQueryValue": _number(trigger.target_query_value)}
    metadata.update(_optional("activationTargetQueryValue", trigger.activation_target_query_value))
    return RenderedTrigger(
        {"type": "postgresql", "metadata": metadata},
        # The whole connection string (host, port, user, password, database, sslmode) from the database's Secret.
        [{"parameter": "connection", "name": secret.name, "key": secret.key}],
    )


def _redis(trigger: RedisTrigger, args: AutoscalersArgs) -> RenderedTrigger:
    source = args.connection_secrets.get(trigger.cache)
    if not isinstance(source, RedisSource):  # the stack config refuses a cache the service does not use
        raise ValueError(f"no cache '{trigger.cache}' in AutoscalersArgs.connection_secrets")
    metadata = {"listName": trigger.list_name, "listLength": str(trigger.list_length)}
    metadata.update(_optional("activationListLength", trigger.activation_list_length))
    password = [{"parameter": "password", "name": source.name, "key": source.key}]
    if source.sentinel_master is not None:
        # KEDA asks the Sentinels for the primary, as the services do; they share the data nodes' password.
        metadata.update(addresses=source.address, sentinelMaster=source.sentinel_master)
        return RenderedTrigger({"type": "redis-sentinel", "metadata": metadata}, password + [{**password[0], "parameter": "sentinelPassword"}])
    metadata.update(address=source.address, **({"enableTLS": "true"} if source.tls else {}))
    return RenderedTrigger({"type": "redis", "metadata": metadata}, password)


def _resource(trigger: ResourceTrigger, args: AutoscalersArgs) -> RenderedTrigger:
    return RenderedTrigger({"type": trigger.type, "metricType": "Utilization", "metadata": {"value": str(trigger.utilization_percent)}})


# trigger type -> renderer; a new trigger type adds its model to autoscaling_config.KedaTrigger and a renderer here.
TRIGGER_RENDERERS: dict[str, Callable[[Any, AutoscalersArgs], RenderedTrigger]] = {
    "prometheus": _prometheus,
    "cron": _cron,
    "postgresql": _postgresql,
    "redis": _redis,
    "cpu": _resource,
    "memory": _resource,
}


def trigger_authentication_name(target: ScaleTarget, index: int) -> str:
    return f"{target.name}-trigger-{index}"


def keda_specs(args: AutoscalersArgs) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The ScaledObject's spec and the TriggerAuthentications' specs by name (one per trigger with credentials)."""
    autoscaling = args.autoscaling
    keda = autoscaling.keda
    triggers, authentications = [], {}
    for index, trigger in enumerate(keda.triggers):
        rendered = TRIGGER_RENDERERS[trigger.type](trigger, args)
        entry = dict(rendered.trigger)
        if rendered.secret_refs:
            name = trigger_authentication_name(args.target, index)
            authentications[name] = {"secretTargetRef": rendered.secret_refs}
            entry["authenticationRef"] = {"name": name}
        triggers.append(entry)
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": args.target.api_version, "kind": args.target.kind, "name": args.target.name},
        "minReplicaCount": autoscaling.min_replicas,
        "maxReplicaCount": autoscaling.max_replicas,
        "pollingInterval": keda.polling_interval_seconds,
        "cooldownPeriod": keda.cooldown_period_seconds,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": behavior_spec(autoscaling.behavior)}},
        "triggers": triggers,
    }
    if keda.scale_to_zero:
        spec["idleReplicaCount"] = 0  # zero while no trigger is active; minReplicaCount as soon as one is
    if keda.fallback is not None:
        spec["fallback"] = {"failureThreshold": keda.fallback.failure_threshold, "replicas": keda.fallback.replicas}
    return spec, authentications


def vpa_spec(target: ScaleTarget, vertical: VerticalScaling) -> dict[str, Any]:
    policy: dict[str, Any] = {"containerName": target.container, "controlledResources": list(vertical.controlled_resources)}
    for key, amounts in (("minAllowed", vertical.min_allowed), ("maxAllowed", vertical.max_allowed)):
        if amounts is not None:
            policy[key] = {"cpu": amounts.cpu, "memory": amounts.memory}
    return {
        "targetRef": target.ref,
        "updatePolicy": {"updateMode": VPA_UPDATE_MODES[vertical.mode]},
        "resourcePolicy": {"containerPolicies": [policy]},
    }


# --- the resources ------------------------------------------------------------------------------------------


def render_autoscalers(name: str, args: AutoscalersArgs, parent: pulumi.Resource) -> list[pulumi.Resource]:
    """The HPA or the ScaledObject (+ TriggerAuthentications), and the VPA, as children of `parent`."""

    def custom(logical_name: str, api_version: str, kind: str, object_name: str, spec: dict, depends_on=()) -> pulumi.Resource:
        return readiness.custom_resource(
            logical_name,
            api_version=api_version,
            kind=kind,
            metadata={"name": object_name, "namespace": args.namespace, "labels": dict(args.labels)},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
        )

    made: list[pulumi.Resource] = []
    autoscaling, target = args.autoscaling, args.target
    if autoscaling is not None and autoscaling.keda is None:
        made.append(
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa",
                metadata={"name": target.name, "namespace": args.namespace, "labels": dict(args.labels)},
                spec=hpa_spec(target, autoscaling),
                opts=pulumi.ResourceOptions(parent=parent),
            )
        )
    elif autoscaling is not None:
        spec, authentications = keda_specs(args)
        made_authentications = [
            custom(f"{name}-{auth_name.removeprefix(f'{target.name}-')}", KEDA_API_VERSION, "TriggerAuthentication", auth_name, auth_spec)
            for auth_name, auth_spec in authentications.items()
        ]
        # KEDA reads the TriggerAuthentications when it builds the scalers: they come first.
        made += [*made_authentications, custom(f"{name}-scaled-object", KEDA_API_VERSION, "ScaledObject", target.name, spec, made_authentications)]
    if args.vertical is not None:
        made.append(custom(f"{name}-vpa", VPA_API_VERSION, "VerticalPodAutoscaler", target.name, vpa_spec(target, args.vertical)))
    return made
