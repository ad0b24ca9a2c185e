"""SARIF 2.1.0, the format GitHub code scanning reads, for the policy pack's findings and schema errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"mandatory": "error", "remediate": "error", "advisory": "warning"}
BLOCKING = ("mandatory", "remediate")  # the CLI fails a preview on these


def policy_rule(policy) -> dict[str, Any]:
    """A SARIF rule from a pulumi_policy policy: its name, description, URL and remediation steps."""
    rule: dict[str, Any] = {
        "id": policy.name,
        "name": policy.name,
        "shortDescription": {"text": policy.description},
        "fullDescription": {"text": policy.description},
    }
    if getattr(policy, "url", None):
        rule["helpUri"] = policy.url
    if getattr(policy, "remediation_steps", None):
        rule["help"] = {"text": policy.remediation_steps}
    return rule


def location(uri: str | Path, line: int | None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": Path(uri).as_posix()}}
    if line:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def result(rule_id: str, rule_index: int, enforcement: str, message: str, locations: list[dict]) -> dict[str, Any]:
    return {
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "level": LEVELS.get(enforcement, "note"),
        "message": {"text": message},
        "locations": locations,
    }


def log(driver_name: str, version: str, rules: list[dict], results: list[dict]) -> dict[str, Any]:
    driver = {"name": driver_name, "version": version, "rules": rules}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{"tool": {"driver": driver}, "results": results}]}
