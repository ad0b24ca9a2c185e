"""vpa-hpa-conflict and single-horizontal-autoscaler over plain manifests, through the policy SDK's analyzer."""

from __future__ import annotations

import copy

import pytest

from policies import autoscaling
from tests.policies.conftest import hardened_deployment, run
from tools.analyzer import load_policy_config

NS = "shop"
TARGET = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}


def hpa(resources=("cpu",), name="web", target=TARGET):
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": dict(target),
            "minReplicas": 2,
            "maxReplicas": 6,
            "metrics": [
                {"type": "Resource", "resource": {"name": r, "target": {"type": "Utilization", "averageUtilization": 70}}}
                for r in resources
            ],
        },
    }


def scaled_object(trigger_types=("prometheus",)):
    triggers = [
        {"type": t, "metadata": {"value": "70"}} if t in ("cpu", "memory") else {"type": t, "metadata": {"query": "q"}}
        for t in trigger_types
    ]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"scaleTargetRef": {"name": "web"}, "triggers": triggers},  # kind defaults to Deployment
    }


def vpa(update_mode="Recreate", controlled=None, container_mode=None, target=TARGET):
    spec = {"targetRef": dict(target)}
    if update_mode is not None:
        spec["updatePolicy"] = {"updateMode": update_mode}
    if controlled is not None or container_mode is not None:
        policy = {"containerName": "web"}
        if controlled is not None:
            policy["controlledResources"] = list(controlled)
        if container_mode is not None:
            policy["mode"] = container_mode
        spec["resourcePolicy"] = {"containerPolicies": [policy]}
    return {"apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler", "metadata": {"name": "web", "namespace": NS}, "spec": spec}


def findings(objects, policy):
    deployment = hardened_deployment()
    deployment["spec"].pop("replicas")
    return [finding for finding in run([deployment, *objects], stack_policies=True) if finding.policy == policy]


# (case, objects, violates, message fragment)
CONFLICT_CASES = [
    ("recommend-only VPA beside an HPA on cpu", [vpa("Off"), hpa()], False, None),
    ("VPA on memory beside an HPA on cpu", [vpa("Recreate", ["memory"]), hpa(["cpu"])], False, None),
    ("VPA whose container policy is Off", [vpa("Recreate", container_mode="Off"), hpa()], False, None),
    ("VPA on another workload", [vpa(target={**TARGET, "name": "api"}), hpa()], False, None),
    ("VPA beside a ScaledObject on a queue", [vpa("Initial"), scaled_object()], False, None),
    ("auto VPA beside an HPA on cpu", [vpa("Recreate"), hpa(["cpu"])], True, "to the cpu of Deployment web"),
    ("VPA without updatePolicy (applies)", [vpa(None), hpa(["memory"])], True, "updateMode Recreate (the default)"),
    ("initial VPA on cpu beside KEDA's cpu trigger", [vpa("Initial", ["cpu"]), scaled_object(["prometheus", "cpu"])], True, "ScaledObject shop/web"),
]


@pytest.mark.parametrize("case, objects, violates, fragment", CONFLICT_CASES, ids=[case[0] for case in CONFLICT_CASES])
def test_vpa_hpa_conflict(case, objects, violates, fragment):
    found = findings(copy.deepcopy(objects), "vpa-hpa-conflict")
    assert bool(found) == violates
    if violates:
        [finding] = found
        assert fragment in finding.message
        assert 'updateMode: "Off"' in finding.message  # the fix
        assert finding.enforcement == "mandatory"


def test_one_horizontal_autoscaler_passes_two_fail_with_the_fix():
    assert findings([hpa()], "single-horizontal-autoscaler") == []
    assert findings([scaled_object()], "single-horizontal-autoscaler") == []
    [finding] = findings([hpa(), scaled_object()], "single-horizontal-autoscaler")
    assert "Deployment shop/web is scaled by 2 horizontal autoscalers" in finding.message and "Keep one" in finding.message
    assert findings([hpa(name="a"), hpa(name="b", target={**TARGET, "name": "api"})], "single-horizontal-autoscaler") == []


def test_pure_cores_read_what_each_autoscaler_scales_on():
    from policies.stack_rules import StackObject

    def obj(manifest):
        return StackObject(urn=f"urn:{manifest['kind']}", type="t", name="n", obj=manifest)

    assert autoscaling.horizontal_resources(obj(hpa(["cpu", "memory"]))) == {"cpu", "memory"}
    assert autoscaling.horizontal_resources(obj(scaled_object(["prometheus", "memory"]))) == {"memory"}
    assert autoscaling.applied_resources(obj(vpa("Off"))) == set()
    assert autoscaling.applied_resources(obj(vpa("Initial", ["memory"]))) == {"memory"}


@pytest.mark.parametrize("stack, level", [("local", "advisory"), ("staging", "mandatory"), ("prod", "mandatory")])
def test_each_stack_enforces_the_rules_as_its_policy_config_says(stack, level):
    config = load_policy_config(f"policies/config/{stack}.json")
    objects = [hardened_deployment(), vpa("Recreate"), hpa(), scaled_object()]
    found = run(objects, stack_policies=True, policy_config=config)
    levels = {finding.policy: finding.enforcement for finding in found if finding.policy in ("vpa-hpa-conflict", "single-horizontal-autoscaler")}
    assert levels == {"vpa-hpa-conflict": level, "single-horizontal-autoscaler": level}
