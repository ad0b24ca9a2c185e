"""Every PodDisruptionBudget the stacks render lets a drain evict a pod that never became ready (#16)."""

from __future__ import annotations

import pytest

from tools import engine


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_every_disruption_budget_lets_unhealthy_pods_go(stack):
    budgets = [engine.unwrap_secrets(o) for o in engine.render(stack).kubernetes_objects() if o["kind"] == "PodDisruptionBudget"]
    assert budgets or stack == "local"
    assert {b["metadata"]["name"]: b["spec"].get("unhealthyPodEvictionPolicy") for b in budgets} == {
        b["metadata"]["name"]: "AlwaysAllow" for b in budgets
    }
