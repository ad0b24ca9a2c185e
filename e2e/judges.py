"""The upstream projects' own judgement of each stack on the control plane, as e2e/run.py's hooks.

- prometheus-operator's validation of PrometheusRules and AlertmanagerConfigs (e2e/alerts.py: po-webhook);
- cert-manager's validation of its objects and its issuance of the certificates that can be issued here
  (e2e/certs.py: cm-platform).
Both are admission webhooks registered by URL for the whole run, so every stack's `pulumi up` passes through them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from e2e import admission, alerts, certs, compare, operators



@dataclass
class Judges:
    rules: admission.Server
    cert_manager: certs.CertManager


def start(bin_dir: Path, work: Path, plane, processes) -> Judges:
    rules = alerts.start_rule_webhook(bin_dir, work, plane.kube, processes)
    cert_manager = certs.CertManager(bin_dir, work, plane, processes)
    cert_manager.start()
    return Judges(rules, cert_manager)


def _issuer(config: dict[str, Any]) -> dict[str, Any] | None:
    return (config.get("platform:ingress") or {}).get("issuer")


def before_up(judges: Judges, config: dict[str, Any], stand_ins: Iterable[operators.StandIn], run) -> list[operators.StandIn]:
    """The status writers to run during the stack's `pulumi up`, once cert-manager is set up for its issuer."""
    kept, note = judges.cert_manager.prepare_stack(_issuer(config), stand_ins)
    run.note(note)
    return kept


def after_up(judges: Judges, e2e, automation, kube, namespace: str, config: dict[str, Any], written: dict[str, str], run) -> None:
    """Report keys operatorRuleValidation, certificatesIssued and certManagerValidation."""
    alerts.check_stack(judges.rules, e2e, kube, namespace, run)
    judges.cert_manager.check_stack(e2e, automation, namespace, _issuer(config), written, run)


def alert_tests(promtool: Path, no_cluster: Path, stacks: list[str], work: Path) -> dict[str, Any]:
    """promtool on the PrometheusRule the real provider rendered for each stack in part (a)."""
    objects = {}
    for stack in stacks:
        rendered = no_cluster / stack / "rendered"
        if rendered.is_dir():
            objects[stack] = list(compare.rendered_objects(rendered).values())
    try:
        result = alerts.check(promtool, objects, work)
    except Exception as error:  # noqa: BLE001 - the report says why
        return {"promtool": None, "alertRulesTested": 0, "alertsFireAsDesigned": False, "alertTestNotes": [f"{type(error).__name__}: {error}"]}
    missing = sorted(set(stacks) - set(objects))
    notes = result.pop("notes") + [f"{stack}: no rendered YAML from part (a), not tested" for stack in missing]
    result["alertsFireAsDesigned"] = result["alertsFireAsDesigned"] and not missing
    return {**result, "alertTestNotes": notes}
