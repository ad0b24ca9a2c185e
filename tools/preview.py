"""Offline preview: what `pulumi up --stack NAME` would deploy, without the CLI, a cluster or credentials.

    python -m tools.preview --stack NAME [--out DIR] [--policy-pack-config FILE]

Runs the program in-process (tools.engine), prints every resource (type, name, parent, protect), validates
every Kubernetes object against its schema (tools.schemas) and runs the policy pack through the policy SDK's
analyzer (tools.analyzer). Secret values are masked everywhere it writes.
Exit codes: 0 deployable; 1 a schema error or a mandatory policy violation; 2 bad input (stack file, config).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools import engine

MASK = "[secret]"
POLICY_CONFIG_DIR = engine.PROJECT_DIR / "policies" / "config"


def mask_secrets(value: Any) -> Any:
    """Wire-form value with every secret replaced: strings by MASK, other leaves by a neutral value of their type."""
    if engine.is_secret(value):
        return _mask_leaves(value["value"])
    if isinstance(value, dict):
        return {key: mask_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    return value


def _mask_leaves(value: Any) -> Any:
    if engine.is_secret(value):
        return _mask_leaves(value["value"])
    if isinstance(value, dict):
        return {key: _mask_leaves(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_leaves(item) for item in value]
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return 0
    return MASK if value is not None else None


def normalize_numbers(value: Any) -> Any:
    """The engine sends every number as a float; Kubernetes wants integers where they are integral."""
    if isinstance(value, dict):
        return {key: normalize_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize_numbers(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def manifest(resource: engine.RecordedResource) -> dict[str, Any]:
    """A recorded Kubernetes object as it would be applied, secrets masked, numbers normalized."""
    return normalize_numbers(mask_secrets(resource.inputs))


@dataclass
class PreviewResult:
    rendering: engine.Rendering
    manifests: dict[str, dict[str, Any]]  # URN -> masked manifest
    schema_errors: list  # tools.schemas.SchemaError
    findings: list  # tools.analyzer.Finding

    @property
    def mandatory_findings(self) -> list:
        return [finding for finding in self.findings if finding.enforcement == "mandatory"]

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
) -> PreviewResult:
    """Renders the stack (unless given), validates every object and runs the policy pack."""
    from tools import analyzer, schemas

    rendering = rendering or engine.render(stack, project_dir)
    manifests = {r.urn: manifest(r) for r in rendering.resources if r.is_kubernetes_object}
    schema_errors = schemas.validate_all(list(manifests.values()))
    policy_config = analyzer.load_policy_config(policy_config_path) if policy_config_path else None
    findings = analyzer.analyze(rendering.resources, policy_config=policy_config)
    return PreviewResult(rendering, manifests, schema_errors, findings)


def manifest_file_name(obj: dict[str, Any], resource: engine.RecordedResource) -> str:
    metadata = obj.get("metadata") or {}
    parts = [obj.get("kind", "Object"), metadata.get("namespace"), metadata.get("name") or resource.name]
    return "_".join(str(part) for part in parts if part).lower().replace(":", "-") + ".yaml"


def write_manifests(result: PreviewResult, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    by_urn = {resource.urn: resource for resource in result.rendering.resources}
    written = []
    for urn, obj in result.manifests.items():
        path = out_dir / manifest_file_name(obj, by_urn[urn])
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        written.append(path)
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
            f"Secure config shown as placeholders (no passphrase given): {', '.join(sorted(rendering.placeholder_keys))}"
        )
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="write each Kubernetes object as YAML into this folder")
    parser.add_argument(
        "--policy-pack-config", type=Path, help="policy pack config JSON (default: policies/config/<stack>.json)"
    )
    parser.add_argument("--project-dir", type=Path, default=engine.PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from tools import analyzer

    try:
        policy_config = args.policy_pack_config or default_policy_config(args.stack)
        result = run_preview(args.stack, policy_config, project_dir=args.project_dir.resolve())
    except (engine.StackFileError, engine.ProgramError, analyzer.PolicyConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_text(result))
    if args.out:
        written = write_manifests(result, args.out)
        print(f"Wrote {len(written)} manifests to {args.out}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
