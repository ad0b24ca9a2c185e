"""Autoscaler conflicts: objects that each look fine alone but fight over one workload.

- `vpa-hpa-conflict`: a VerticalPodAutoscaler that applies its recommendations (updateMode other than Off, on a
  container whose mode is not Off) to cpu or memory, while an HPA, or a KEDA ScaledObject through its cpu/memory
  triggers, scales the same workload on that resource. The HPA measures utilisation against the requests the VPA
  keeps changing, so each undoes the other (the VPA project's documented limitation).
- `single-horizontal-autoscaler`: two horizontal autoscalers on one workload (two HPAs, or an HPA and a ScaledObject,
  which makes an HPA of its own): each resets the replicas the other chose.

Stack rules over `stack_rules.StackObject`s (pure cores returning (urn, message) pairs and thin policy wrappers);
targets are matched by kind and name within a namespace.
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Severity

from .secrets import items, mapping
from .stack_rules import Finding, StackObject, _stack_policy, scalar

RESOURCES = ("cpu", "memory")
KEDA_GROUP = "keda.sh"
VPA_GROUP = "autoscaling.k8s.io"
# A VPA without updatePolicy.updateMode applies its recommendations (the CRD's default is Recreate).
NOT_APPLYING = ("Off",)


def _is_hpa(obj: StackObject) -> bool:
    return obj.is_a("HorizontalPodAutoscaler", "autoscaling")


def _is_scaled_object(obj: StackObject) -> bool:
    return obj.is_a("ScaledObject", KEDA_GROUP)


def _target(obj: StackObject) -> tuple[str, str, str | None] | None:
    """(namespace, kind, name) of the workload an autoscaler targets; None when not known yet."""
    ref = mapping(obj.spec.get("targetRef" if obj.is_a("VerticalPodAutoscaler", VPA_GROUP) else "scaleTargetRef"))
    kind = scalar(ref.get("kind")) or ("Deployment" if _is_scaled_object(obj) else None)  # KEDA's default
    name = scalar(ref.get("name"))
    if not isinstance(kind, str) or not isinstance(name, str) or obj.namespace is None:
        return None
    return obj.namespace, kind, name


def horizontal_resources(obj: StackObject) -> set[str]:
    """cpu/memory an HPA's metrics or a ScaledObject's triggers scale on."""
    if _is_scaled_object(obj):
        return {scalar(mapping(trigger).get("type")) for trigger in items(obj.spec.get("triggers"))} & set(RESOURCES)
    found = set()
    for metric in items(obj.spec.get("metrics")):
        metric = mapping(metric)
        source = mapping(metric.get("resource") or metric.get("containerResource"))
        if scalar(metric.get("type")) in ("Resource", "ContainerResource"):
            found.add(scalar(source.get("name")))
    return found & set(RESOURCES)


def applied_resources(vpa: StackObject) -> set[str]:
    """cpu/memory a VPA changes on pods: none in updateMode Off; else those its active container policies control
    (cpu and memory when no policy says otherwise)."""
    mode = scalar(mapping(vpa.spec.get("updatePolicy")).get("updateMode"))
    if mode in NOT_APPLYING:
        return set()
    policies = [mapping(policy) for policy in items(mapping(vpa.spec.get("resourcePolicy")).get("containerPolicies"))]
    if not policies:
        return set(RESOURCES)
    applied = set()
    for policy in policies:
        if scalar(policy.get("mode")) == "Off":
            continue
        controlled = [scalar(resource) for resource in items(policy.get("controlledResources"))]
        applied |= set(controlled if "controlledResources" in policy else RESOURCES)
    return applied & set(RESOURCES)


def vpa_hpa_conflict_findings(objects: list[StackObject]) -> list[Finding]:
    horizontal = [obj for obj in objects if _is_hpa(obj) or _is_scaled_object(obj)]
    findings = []
    for vpa in (obj for obj in objects if obj.is_a("VerticalPodAutoscaler", VPA_GROUP)):
        target, applied = _target(vpa), applied_resources(vpa)
        if target is None or not applied:
            continue
        for scaler in horizontal:
            both = sorted(applied & horizontal_resources(scaler))
            if _target(scaler) != target or not both:
                continue
            mode = scalar(mapping(vpa.spec.get("updatePolicy")).get("updateMode")) or "Recreate (the default)"
            findings.append(
                (
                    vpa.urn,
                    f"{vpa.label} applies recommendations (updateMode {mode}) to the {'/'.join(both)} of {target[1]} "
                    f"{target[2]}, which {scaler.label} scales on: the horizontal autoscaler measures utilisation against "
                    "the requests the VPA keeps changing, so they fight. Set spec.updatePolicy.updateMode: \"Off\" to only "
                    f"record recommendations, or limit the VPA's containerPolicies[].controlledResources to what the "
                    f"autoscaler does not scale on (the stack config: services[].vertical.mode: recommend or "
                    "vertical.controlledResources)",
                )
            )
    return findings


def single_horizontal_autoscaler_findings(objects: list[StackObject]) -> list[Finding]:
    by_target: dict[tuple[str, str, str | None], list[StackObject]] = {}
    for scaler in (obj for obj in objects if _is_hpa(obj) or _is_scaled_object(obj)):
        target = _target(scaler)
        if target is not None:
            by_target.setdefault(target, []).append(scaler)
    findings = []
    for (namespace, kind, name), scalers in sorted(by_target.items()):
        if len(scalers) < 2:
            continue
        labels = ", ".join(scaler.label for scaler in scalers)
        findings.append(
            (
                scalers[-1].urn,
                f"{kind} {namespace}/{name} is scaled by {len(scalers)} horizontal autoscalers ({labels}); a ScaledObject "
                "makes an HPA of its own, and each resets the replicas the other chose. Keep one: KEDA (with cpu/memory "
                "triggers if it should scale on them too) or the HPA (the stack config: autoscaling.keda or "
                "autoscaling.targetCpuPercent/targetMemoryPercent, never both)",
            )
        )
    return findings


vpa_hpa_conflict = _stack_policy(
    "vpa-hpa-conflict",
    "A VerticalPodAutoscaler must not apply cpu/memory recommendations to a workload an HPA or KEDA scales on them.",
    vpa_hpa_conflict_findings,
    Severity.MEDIUM,
    EnforcementLevel.MANDATORY,
)
single_horizontal_autoscaler = _stack_policy(
    "single-horizontal-autoscaler",
    "A workload has at most one horizontal autoscaler (an HPA or a KEDA ScaledObject).",
    single_horizontal_autoscaler_findings,
    Severity.MEDIUM,
    EnforcementLevel.MANDATORY,
)

POLICIES: list = [vpa_hpa_conflict, single_horizontal_autoscaler]
APPLIES_TO: dict = {}  # stack policies see every resource
