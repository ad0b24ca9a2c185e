"""The platform's alerts judged by Prometheus' and prometheus-operator's own code.

(1) promtool on every stack's alerts: Prometheus' own rule checker and unit-test runner, no cluster needed.

For each stack, the PrometheusRule the real kubernetes provider rendered (part (a) of e2e/run.py) becomes a rule file
(`spec.groups` already is one), and tools/alert_tests.py writes its unit tests from the stack's config. Then:
- `promtool check rules --lint=all --lint-fatal`: every expression and annotation template parses, no lint finding;
- `promtool test rules`: every alert fires on its broken series at the expected minute with the expected labels and
  annotations, resolves when they heal, and stays silent on healthy series;
- the tests are shown to bite: the same tests against rules whose `for` durations are doubled must fail, and a rule
  file with a broken annotation template must fail the check.

(2) prometheus-operator's admission judgement on the control plane: po-webhook (e2e/go/po-webhook, built against
the pinned prometheus-operator module) registered for PrometheusRules and AlertmanagerConfigs, so `pulumi up` of
each stack passes it, and a broken rule or a route to a missing receiver fails `pulumi up` with its message.
"""

from __future__ import annotations

import copy
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import yaml

from e2e import admission, stacks
from tools import alert_tests

PROMTOOL = "promtool"
RULE_WEBHOOK = "po-webhook"
# The names kube-prometheus-stack gives the operator's webhooks.
RULE_WEBHOOKS = [
    admission.Webhook("prometheusrulevalidate.monitoring.coreos.com", "/admission-prometheusrules/validate", "monitoring.coreos.com", ["v1"], ["prometheusrules"]),
    admission.Webhook("alertmanagerconfigsvalidate.monitoring.coreos.com", "/admission-alertmanagerconfigs/validate", "monitoring.coreos.com", ["v1alpha1"], ["alertmanagerconfigs"]),
]  # fmt: skip


def _promtool(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=100_000))
    return path


def _junit(path: Path) -> tuple[int, list[str]]:
    """(test groups run, names of the failed ones) from promtool's JUnit report."""
    root = ElementTree.parse(path).getroot()
    cases = root.findall(".//testcase")
    return len(cases), [case.get("name", "?") for case in cases if case.find("failure") is not None or case.find("error") is not None]


def _doubled_for(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    mutant = copy.deepcopy(groups)
    for group in mutant:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{2 * alert_tests._duration_minutes(rule['for'])}m"
    return mutant


def _broken_template(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    mutant = copy.deepcopy(groups)
    rule = next(r for g in mutant for r in g["rules"] if "{{" in str(r.get("annotations", {})))
    name = next(n for n, text in rule["annotations"].items() if "}}" in text)
    rule["annotations"][name] = rule["annotations"][name].replace("}}", "}", 1)
    return mutant


def check(promtool: Path, objects_by_stack: dict[str, list[dict[str, Any]]], work: Path) -> dict[str, Any]:
    """Runs the checks; returns the report's keys (`promtool`, `alertRulesTested`, `alertsFireAsDesigned`) and notes."""
    work.mkdir(parents=True, exist_ok=True)
    banner = _promtool(promtool, "--version", cwd=work).stdout.splitlines()[0]  # "promtool, version 3.16.0 (branch: ..."
    version = banner.split("version ", 1)[-1].split()[0]
    notes: list[str] = []
    tested = checks = 0
    ok = True
    for stack, objects in objects_by_stack.items():
        groups = alert_tests.prometheus_rule_groups(objects)
        rules_file = f"{stack}.rules.yaml"
        generated = alert_tests.generate(groups, alert_tests.stack_config_of(stack), stack, rule_file=rules_file)
        _write(work / rules_file, generated.rules)
        tests_file = _write(work / f"{stack}.tests.yaml", generated.tests)

        lint = _promtool(promtool, "check", "rules", "--lint=all", "--lint-fatal", rules_file, cwd=work)
        if lint.returncode != 0:
            ok = False
            notes.append(f"{stack}: promtool check rules: {(lint.stdout + lint.stderr).strip()[-1500:]}")
        junit = work / f"{stack}.junit.xml"
        run = _promtool(promtool, "test", f"--junit={junit}", "rules", tests_file.name, cwd=work)
        groups_run, failed = _junit(junit)
        tested += groups_run
        checks += generated.checks
        if run.returncode != 0 or failed or groups_run != len(generated.cases):
            ok = False
            notes.append(f"{stack}: {len(failed)} of {groups_run} alert test cases failed: {failed[:10]}")
            notes.append(f"{stack}: promtool test rules: {(run.stdout + run.stderr).strip()[-3000:]}")
        else:
            notes.append(f"{stack}: {groups_run} alert test cases ({generated.checks} checks) pass; check rules --lint=all clean")

        # The tests must bite: slower rules miss the expected firing minute; a broken template fails the check.
        mutant_rules = f"{stack}.mutant-for.rules.yaml"
        _write(work / mutant_rules, {"groups": _doubled_for(groups)})
        mutant_tests = _write(work / f"{stack}.mutant-for.tests.yaml", {**generated.tests, "rule_files": [mutant_rules]})
        mutant_junit = work / f"{stack}.mutant-for.junit.xml"
        _promtool(promtool, "test", f"--junit={mutant_junit}", "rules", mutant_tests.name, cwd=work)
        _, caught = _junit(mutant_junit)
        fires = [name for name in caught if name.endswith(" fires")]
        if len(fires) != len(generated.cases) // 2:
            ok = False
            notes.append(f"{stack}: with every `for` doubled only {len(fires)} of {len(generated.cases) // 2} firing cases failed")
        broken = _write(work / f"{stack}.mutant-template.rules.yaml", {"groups": _broken_template(groups)})
        if _promtool(promtool, "check", "rules", broken.name, cwd=work).returncode == 0:
            ok = False
            notes.append(f"{stack}: promtool check rules accepted a broken annotation template")
    return {"promtool": version, "alertRulesTested": tested, "alertChecks": checks, "alertsFireAsDesigned": ok and tested > 0, "notes": notes}


# --- prometheus-operator's judgement on the control plane ---------------------------------------------------------


def start_rule_webhook(bin_dir: Path, work: Path, kube, processes) -> admission.Server:
    server = admission.serve(
        RULE_WEBHOOK,
        lambda port, cert, key: [str(bin_dir / RULE_WEBHOOK), "serve", f"-listen=127.0.0.1:{port}", f"-cert={cert}", f"-key={key}"],
        work, processes,
    )  # fmt: skip
    admission.register(kube, "prometheus-operator-e2e", server, RULE_WEBHOOKS)
    return server


def _copy(obj: dict[str, Any], suffix: str) -> dict[str, Any]:
    metadata = {"name": f"{obj['metadata']['name']}-{suffix}", "namespace": obj["metadata"]["namespace"]}
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": metadata, "spec": copy.deepcopy(obj["spec"])}


def broken_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """The stack's PrometheusRule with its first expression cut short (the schema cannot tell; Prometheus can)."""
    broken = _copy(rule, "broken")
    first = broken["spec"]["groups"][0]["rules"][0]
    first["expr"] = first["expr"].rstrip()[:-2]
    return broken


def misrouted(routing: dict[str, Any]) -> dict[str, Any]:
    """The stack's AlertmanagerConfig with its first route sent to a receiver it does not define."""
    broken = _copy(routing, "misrouted")
    broken["spec"]["route"]["routes"][0]["receiver"] = "nobody"
    return broken


def operator_rule_validation(kube, namespace: str, server: admission.Server, refuse: Any) -> tuple[bool, list[str]]:
    """The stack's rules and routing were accepted at `pulumi up` (they exist, and the webhook logged them), and
    `refuse(obj)` (a `pulumi up` of one object) fails with the operator's message for a broken copy of each."""
    notes, ok = [], True
    log = server.log.read_text(errors="replace")
    shipped = [o for o in kube.list("monitoring.coreos.com/v1", "PrometheusRule", namespace)]
    shipped += [o for o in kube.list("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", namespace)]
    if not shipped:
        return False, [f"no PrometheusRule in {namespace}"]
    for obj in shipped:
        accepted = f"accepted {obj['kind']} {namespace}/{obj['metadata']['name']}" in log
        ok &= accepted
        notes.append(f"{obj['kind']} {obj['metadata']['name']}: {'accepted by' if accepted else 'NOT seen by'} prometheus-operator's validation at pulumi up")
        broken, expected = (broken_rule(obj), "could not parse expression") if obj["kind"] == "PrometheusRule" else (misrouted(obj), 'receiver "nobody" not found')
        refused, message = refuse(broken)
        judged = refused and "denied the request" in message and expected in message
        ok &= judged
        notes.append(f"{broken['kind']} {broken['metadata']['name']}: {'refused at pulumi up' if judged else 'NOT refused as expected'}: {stacks.denial(message)}")
    return ok, notes


def check_stack(server: admission.Server, e2e, kube, namespace: str, run) -> None:
    """Report key operatorRuleValidation."""

    def judged() -> bool:
        ok, notes = operator_rule_validation(kube, namespace, server, lambda obj: stacks.refused_at_up(e2e, obj))
        for note in notes:
            run.note(note)
        return ok

    run.check("operatorRuleValidation", judged)
