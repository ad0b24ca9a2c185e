"""The generated alert unit tests (tools/alert_tests.py): every alert of every stack gets a firing and a silent case
built from the stack's config. promtool runs them in `make e2e`; here the generation itself is checked."""

from __future__ import annotations

import copy
import re

import pytest

from tools import alert_tests, engine
from tests.conftest import STACKS


@pytest.fixture(scope="module")
def generated(rendered) -> dict[str, tuple[list[dict], alert_tests.StackTests]]:
    out = {}
    for stack in STACKS:
        groups = alert_tests.prometheus_rule_groups(engine.unwrap_secrets(rendered[stack].kubernetes_objects()))
        out[stack] = (groups, alert_tests.generate(groups, alert_tests.stack_config_of(stack), stack))
    return out


def expand(notation: str) -> list[float | None]:
    """promtool's expanding notation, read back independently of the writer."""
    samples: list[float | None] = []
    for part in notation.split():
        if part.startswith("_"):
            samples += [None] * int(part[2:] or 1)
            continue
        match = re.fullmatch(r"(-?[\d.e+-]+?)(?:([+-])([\d.e+-]+)x(\d+))?", part)
        start = float(match.group(1))
        if match.group(2) is None:
            samples.append(start)
            continue
        step = float(match.group(3)) * (1 if match.group(2) == "+" else -1)
        samples += [start + step * i for i in range(int(match.group(4)) + 1)]
    return samples


def rules_of(groups: list[dict]) -> list[dict]:
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_of_every_stack_gets_a_firing_and_a_silent_case(generated):
    for stack, (groups, tests) in generated.items():
        keys = [alert_tests.rule_key(rule) for rule in rules_of(groups)]
        assert len(set(keys)) == len(keys), f"{stack}: two rules would share a test name"
        assert sorted(tests.cases) == sorted([f"firing {k}" for k in keys] + [f"silent {k}" for k in keys])
        names = [group["name"] for group in tests.tests["tests"]]
        assert sorted(names) == sorted([f"{stack}: {k} fires" for k in keys] + [f"{stack}: {k} stays silent" for k in keys])


def test_a_firing_case_expects_the_routing_labels_and_rendered_annotations_at_the_for_duration(generated):
    for stack, (groups, tests) in generated.items():
        by_name = {group["name"]: group for group in tests.tests["tests"]}
        for rule in rules_of(groups):
            checks = by_name[f"{stack}: {alert_tests.rule_key(rule)} fires"]["alert_rule_test"]
            (firing,) = [c for c in checks if c["exp_alerts"]]
            (expected,) = firing["exp_alerts"]
            # Everything Alertmanager routes and groups on comes from the rule, unchanged.
            assert expected["exp_labels"].items() >= rule["labels"].items()
            assert set(expected["exp_annotations"]) == set(rule["annotations"])
            assert not any("{{" in text for text in expected["exp_annotations"].values())
            fires_at = int(firing["eval_time"][:-1])
            for_minutes = alert_tests._duration_minutes(rule["for"])
            assert fires_at >= for_minutes
            # Silent a minute before, and silent again after the series heal.
            quiet = sorted(int(c["eval_time"][:-1]) for c in checks if not c["exp_alerts"])
            assert quiet[-1] > fires_at and (fires_at == 0 or quiet[0] == fires_at - 1)


def test_the_silent_case_never_expects_an_alert(generated):
    for _, (_, tests) in generated.items():
        for group in tests.tests["tests"]:
            if group["name"].endswith("stays silent"):
                assert group["alert_rule_test"] and all(check["exp_alerts"] == [] for check in group["alert_rule_test"])


def test_an_alert_without_a_scenario_fails_generation(generated):
    groups, _ = generated["local"]
    extended = copy.deepcopy(groups)
    extended[0]["rules"].append({"alert": "SomethingNew", "expr": "vector(1)", "for": "1m", "labels": {"severity": "warning", "namespace": "platform"}})
    with pytest.raises(alert_tests.MissingScenario, match=r"local: no test scenario for alert\(s\) \['SomethingNew'\]"):
        alert_tests.generate(extended, alert_tests.stack_config_of("local"), "local")


def test_burn_rate_series_straddle_the_stacks_objective(generated):
    """The broken phase burns the budget faster than the alert's threshold, the healthy phase slower: computed from
    the stack's own objective, so a different objective gives different series."""
    for stack, (groups, tests) in generated.items():
        config = alert_tests.stack_config_of(stack)
        by_name = {group["name"]: group for group in tests.tests["tests"]}
        for rule in rules_of(groups):
            if not rule["alert"].startswith("ServiceErrorBudgetBurn"):
                continue
            _, _, _, threshold = alert_tests._burn(alert_tests.Context(rule, config))
            inputs = {s["series"]: expand(s["values"]) for s in by_name[f"{stack}: {alert_tests.rule_key(rule)} fires"]["input_series"]}
            service = rule["labels"]["service"]
            code = config.monitoring.http_metrics.status_label

            def per_minute(status: str, minute: int) -> float:
                (samples,) = [v for k, v in inputs.items() if f'job="{service}"' in k and f'{code}="{status}"' in k]
                return samples[minute + 1] - samples[minute]

            total = sum(per_minute(status, 0) for status in ("200", "404", "503"))
            assert per_minute("503", 0) / total > threshold
            assert per_minute("503", len(inputs[next(iter(inputs))]) - 2) / total < threshold


def test_scenarios_follow_the_config(generated):
    groups, _ = generated["prod"]
    config = alert_tests.stack_config_of("prod")
    stricter = config.model_copy(update={"monitoring": config.monitoring.model_copy(update={"databases": config.monitoring.databases.model_copy(update={"replication_lag_seconds": 7})})})
    (lag,) = [rule for rule in rules_of(groups) if rule["alert"] == "DatabaseReplicationLag"]
    scenario = alert_tests.SCENARIOS["DatabaseReplicationLag"](alert_tests.Context(lag, stricter))
    assert scenario.value == 14 and {s.broken.value for s in scenario.series if s.broken} == {0, 7, 14}


def test_notation_round_trips():
    cases = [
        [0.0, 1.0, 2.0, 3.0, 3.0, 3.0, None, None, 5.0, 4.0, 3.0],
        [1e6 * i for i in range(30)] + [3e7 + 5 * i for i in range(30)],
        [None, None, 1.5, 1.5],
        [-3600.0 + 60 * i for i in range(100)],
    ]
    for samples in cases:
        assert expand(alert_tests.notation(samples)) == samples


def test_counters_carry_on_across_the_heal():
    samples = alert_tests.values(alert_tests.Rate(10), alert_tests.Rate(1), heal_at=3, horizon=5)
    assert samples == [0.0, 10.0, 20.0, 21.0, 22.0, 23.0]
    assert alert_tests.values(alert_tests.Const(0), alert_tests.Clock(-60), heal_at=2, horizon=3) == [0.0, 0.0, 60.0, 120.0]


def test_annotations_render_as_prometheus_prints_them():
    render = alert_tests.render_template
    assert render("{{ $labels.pod }} has {{ $value }} of 3", {"pod": "a-1"}, 2.0) == "a-1 has 2 of 3"
    assert render("lag {{$value}} s", {}, 0.25) == "lag 0.25 s"
    with pytest.raises(ValueError, match="only \\$labels"):
        render("{{ $value | humanize }}", {}, 1.0)
    with pytest.raises(ValueError, match="give the scenario a value"):
        render("{{ $value }}", {}, None)
