"""Offline preview: what `pulumi up --stack NAME` would deploy, without the CLI, a cluster or credentials.

    python -m tools.preview --stack NAME [--format text|json|sarif] [--out DIR] [--diff BASE]
                            [--policy-pack-config FILE]

Runs the program in-process (tools.engine), lists every resource (type, name, parent, protect), validates
every Kubernetes object against its schema (tools.schemas), runs the policy pack through the policy SDK's
analyzer (tools.analyzer) and, with --diff, compares with a base (a git ref or a folder written by --out).
With PULUMI_CONFIG_PASSPHRASE (or _FILE) set, `secure:` config is decrypted as the CLI does; without it the
program sees placeholders. Secret values are masked in everything it prints or writes.
Exit codes: 0 deployable; 1 a schema error or a mandatory policy violation; 2 bad input (stack file, config,
passphrase, diff base).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import lru_cache
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from policies.secrets import MASKED_SECRET
from tools import engine, sarif
from tools import diff as stack_diff

MASK = MASKED_SECRET  # the policy pack knows the mask: a masked manifest is not a plaintext one
POLICY_CONFIG_DIR = engine.PROJECT_DIR / "policies" / "config"


def mask_secrets(value: Any, inside_secret: bool = False) -> Any:
    """Wire-form value with every secret's leaves replaced: strings by MASK, others by a neutral value of their type
    (so a masked object keeps its shape and still validates)."""
    if engine.is_secret(value):
        return mask_secrets(value["value"], inside_secret=True)
    if isinstance(value, dict):
        return {key: mask_secrets(item, inside_secret) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_secrets(item, inside_secret) for item in value]
    if not inside_secret or value is None:
        return value
    if isinstance(value, bool):
        return False
    return 0 if isinstance(value, (int, float)) else MASK


def manifest(resource: engine.RecordedResource) -> dict[str, Any]:
    """A recorded Kubernetes object as it would be applied, secrets masked, numbers normalized."""
    return engine.normalize_numbers(mask_secrets(resource.inputs))


@dataclass
class PreviewResult:
    rendering: engine.Rendering
    manifests: dict[str, dict[str, Any]]  # URN -> masked manifest
    schema_errors: list  # tools.schemas.SchemaError
    findings: list  # tools.analyzer.Finding

    decrypted: bool = False  # secure config was decrypted with a passphrase (values stay masked)

    @property
    def mandatory_findings(self) -> list:
        return [finding for finding in self.findings if finding.enforcement in sarif.BLOCKING]

    @property
    def ok(self) -> bool:
        return not self.schema_errors and not self.mandatory_findings


def default_policy_config(stack: str) -> Path | None:
    path = POLICY_CONFIG_DIR / f"{stack}.json"
    return path if path.is_file() else None


def run_preview(
    stack: str,
    policy_config_path: Path | None = None,
    rendering: engine.Rendering | None = None,
    project_dir: Path = engine.PROJECT_DIR,
    passphrase: str | None = None,
    checks: bool = True,
) -> PreviewResult:
    """Renders the stack (unless given); with `checks`, validates every object and runs the policy pack."""
    from tools import analyzer, schemas

    rendering = rendering or engine.render(stack, project_dir, passphrase=passphrase)
    manifests = {r.urn: manifest(r) for r in rendering.resources if r.is_kubernetes_object}
    if not checks:
        return PreviewResult(rendering, manifests, [], [], decrypted=passphrase is not None)
    schema_errors = schemas.validate_all(list(manifests.values()))
    policy_config = analyzer.load_policy_config(policy_config_path) if policy_config_path else None
    findings = analyzer.analyze(rendering.resources, policy_config=policy_config)
    return PreviewResult(rendering, manifests, schema_errors, findings, decrypted=passphrase is not None)


def snapshot(rendering: engine.Rendering) -> dict[str, dict[str, Any]]:
    """Every resource by URN with masked, normalized inputs: what --out saves and --diff compares."""
    return {
        r.urn: {
            "type": r.type,
            "name": r.name,
            "parent": r.parent,
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
            "inputs": engine.normalize_numbers(mask_secrets(r.inputs)),
        }
        for r in tree_order(rendering.resources)
    }


def manifest_file_name(obj: dict[str, Any], resource: engine.RecordedResource) -> str:
    metadata = obj.get("metadata") or {}
    parts = [obj.get("kind", "Object"), metadata.get("namespace"), metadata.get("name") or resource.name]
    return "_".join(str(part) for part in parts if part).lower().replace(":", "-") + ".yaml"


def write_manifests(result: PreviewResult, out_dir: Path) -> list[Path]:
    """Each Kubernetes object as YAML, plus the snapshot of all resources (resources.json) for --diff."""
    out_dir.mkdir(parents=True, exist_ok=True)
    by_urn = {resource.urn: resource for resource in result.rendering.resources}
    written = []
    for urn, obj in result.manifests.items():
        path = out_dir / manifest_file_name(obj, by_urn[urn])
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        written.append(path)
    (out_dir / stack_diff.SNAPSHOT_FILE).write_text(json.dumps(snapshot(result.rendering), indent=1, sort_keys=True))
    return written


def _parent_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if urn else ""


def tree_order(resources: list[engine.RecordedResource]) -> list[engine.RecordedResource]:
    """Resources parent-first, children by type and name: stable, whatever order the program registered them in."""
    by_urn = {resource.urn: resource for resource in resources}

    def path(resource: engine.RecordedResource) -> tuple:
        parent = by_urn.get(resource.parent)
        return (path(parent) if parent else ()) + ((resource.type, resource.name),)

    return sorted(resources, key=path)


def format_text(result: PreviewResult) -> str:
    rendering = result.rendering
    rows = [("TYPE", "NAME", "PARENT", "PROTECT")]
    rows += [
        (r.type, r.name, _parent_name(r.parent), "protect" if r.protect else "")
        for r in tree_order(rendering.resources)
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [f"Offline preview of stack '{rendering.stack}' ({rendering.project}): {len(rendering.resources)} resources"]
    if rendering.placeholder_keys:
        lines.append(
            "Secure config replaced by placeholders (set PULUMI_CONFIG_PASSPHRASE to decrypt): "
            + ", ".join(sorted(rendering.placeholder_keys))
        )
    elif result.decrypted:
        lines.append("Secure config decrypted with the stack's passphrase; secret values stay masked.")
    lines.append("")
    lines += [("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + f"  {row[3]}").rstrip() for row in rows]
    lines.append("")
    if result.schema_errors:
        lines.append(f"Schema errors ({len(result.schema_errors)}):")
        lines += [
            f"  {error.kind} {error.name or '<generated name>'}: {error.path or '<root>'}: {error.message}"
            for error in result.schema_errors
        ]
    else:
        lines.append(f"Schema: all {len(result.manifests)} Kubernetes objects are valid.")
    if result.findings:
        lines.append(f"Policy findings ({len(result.findings)}):")
        lines += [f"  [{f.enforcement}] {f.policy} on {f.type} {f.name}: {f.message}" for f in result.findings]
    else:
        lines.append("Policy: no findings.")
    lines.append("Result: " + ("deployable" if result.ok else "NOT deployable (fix the errors above)"))
    return "\n".join(lines)


# --- JSON and SARIF -------------------------------------------------------------------------------------------

JSON_FORMAT_VERSION = 1


def to_json(result: PreviewResult, diff: stack_diff.StackDiff | None = None) -> dict[str, Any]:
    """The preview as a stable document (README, "Offline preview": JSON output); secrets masked."""
    rendering = result.rendering
    resources = []
    for r in tree_order(rendering.resources):
        obj = result.manifests.get(r.urn)
        metadata = (obj or {}).get("metadata") or {}
        resources.append(
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent or None,
                "protect": r.protect,
                "retainOnDelete": r.retain_on_delete,
                "kubernetes": None
                if obj is None
                else {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "namespace": metadata.get("namespace"), "name": metadata.get("name")},
            }
        )
    return {
        "formatVersion": JSON_FORMAT_VERSION,
        "project": rendering.project,
        "stack": rendering.stack,
        "secureConfig": {"decrypted": result.decrypted, "placeholders": sorted(rendering.placeholder_keys)},
        "resources": resources,
        "schemaErrors": [
            {"apiVersion": e.api_version, "kind": e.kind, "name": e.name, "path": e.path, "message": e.message}
            for e in result.schema_errors
        ],
        "policyFindings": [
            {"policy": f.policy, "enforcement": f.enforcement, "message": f.message, "urn": f.urn, "type": f.type, "name": f.name}
            for f in result.findings
        ],
        "diff": stack_diff.to_json(diff) if diff else None,
        "summary": {
            "resources": len(rendering.resources),
            "kubernetesObjects": len(result.manifests),
            "schemaErrors": len(result.schema_errors),
            "blockingFindings": len(result.mandatory_findings),
            "advisoryFindings": len(result.findings) - len(result.mandatory_findings),
            "deployable": result.ok,
        },
    }


@lru_cache(maxsize=None)
def _component_sources(project_dir: Path) -> dict[str, tuple[str, list[str]]]:
    """Component type token -> (source file relative to the project, its lines)."""
    sources = {}
    for path in sorted((project_dir / "components").glob("*.py")):
        lines = path.read_text().splitlines()
        for line in lines:
            match = re.search(r'super\(\).__init__\(\s*"(platform:[^"]+)"', line)
            if match:
                sources[match.group(1)] = (path.relative_to(project_dir).as_posix(), lines)
    return sources


def source_location(resource: engine.RecordedResource, resources: dict[str, engine.RecordedResource], project_dir: Path) -> dict:
    """Where a resource is made: the line of its component that constructs its kind, else __main__.py."""
    parent = resources.get(resource.parent)
    component = parent.type if parent else ""
    file_and_lines = _component_sources(project_dir).get(component)
    if file_and_lines is None:
        return sarif.location("__main__.py", None)
    file, lines = file_and_lines
    kind = resource.type.rsplit(":", 1)[-1]
    line = next((number for number, text in enumerate(lines, 1) if re.search(rf"\.{kind}\(", text)), None)
    return sarif.location(file, line)


def stack_file_location(stack: str, name: str, project_dir: Path) -> dict | None:
    """The line of the stack file that declares a service or database of this name, if any."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if re.match(rf"\s*-\s*name:\s*{re.escape(name)}\s*$", text):
            return sarif.location(path.name, number)
    return None


def to_sarif(result: PreviewResult, project_dir: Path = engine.PROJECT_DIR) -> dict[str, Any]:
    from tools import analyzer

    policies = analyzer.default_policies()
    rules = [sarif.policy_rule(policy) for policy in policies]
    rules.append({"id": "schema", "name": "schema", "shortDescription": {"text": "Kubernetes object is valid against its schema"}})
    index = {rule["id"]: position for position, rule in enumerate(rules)}
    resources = {r.urn: r for r in result.rendering.resources}
    results = []
    for finding in result.findings:
        resource = resources.get(finding.urn)
        locations = [source_location(resource, resources, project_dir)] if resource else [sarif.location("__main__.py", None)]
        parent = resources.get(resource.parent) if resource else None
        declared = stack_file_location(result.rendering.stack, parent.name, project_dir) if parent else None
        locations += [declared] if declared else []
        message = f"{finding.type} {finding.name}: {finding.message}"
        results.append(sarif.result(finding.policy, index.get(finding.policy, -1), finding.enforcement, message, locations))
    for error in result.schema_errors:
        message = f"{error.kind} {error.name}: {error.path or '<root>'}: {error.message}"
        location = sarif.location(f"Pulumi.{result.rendering.stack}.yaml", None)
        results.append(sarif.result("schema", index["schema"], "mandatory", message, [location]))
    return sarif.log("platform offline preview", analyzer.pack_version(), rules, results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    parser.add_argument("--out", type=Path, help="write each Kubernetes object as YAML (and resources.json) here")
    parser.add_argument("--diff", metavar="BASE", help="compare with a git ref or a folder written by --out")
    parser.add_argument(
        "--policy-pack-config", type=Path, help="policy pack config JSON (default: policies/config/<stack>.json)"
    )
    parser.add_argument("--project-dir", type=Path, default=engine.PROJECT_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--render-only", action="store_true", help=argparse.SUPPRESS)  # used by --diff for the base
    args = parser.parse_args(argv)

    from tools import analyzer, passphrase

    project_dir = args.project_dir.resolve()
    try:
        secret = passphrase.passphrase_from_environment()
        policy_config = args.policy_pack_config or default_policy_config(args.stack)
        result = run_preview(
            args.stack, policy_config, project_dir=project_dir, passphrase=secret, checks=not args.render_only
        )
        diff = None
        if args.diff:
            base = stack_diff.load_base(args.diff, args.stack, project_dir)
            diff = stack_diff.diff_snapshots(args.stack, base, snapshot(result.rendering))
    except (
        engine.StackFileError,
        engine.ProgramError,
        analyzer.PolicyConfigError,
        passphrase.PassphraseError,
        stack_diff.DiffError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out:
        written = write_manifests(result, args.out)
        print(f"Wrote {len(written)} manifests to {args.out}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(to_json(result, diff), indent=2))
    elif args.format == "sarif":
        print(json.dumps(to_sarif(result, project_dir), indent=2))
    else:
        print(format_text(result))
        if diff:
            print(stack_diff.format_text(diff))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
