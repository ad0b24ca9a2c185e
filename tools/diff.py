"""What a change would do to a stack: resources added, removed and changed, field by field, secrets masked.

A snapshot is `{urn: {"type", "name", "protect", "inputs"}}` with masked, normalized inputs: what
`tools.preview --out DIR` writes to DIR/resources.json. The base is either such a folder or a git ref,
rendered by the current tools from a temporary worktree. Replacements of stateful resources (database
clusters, PVC-backed workloads, buckets) come first: they are where data is lost.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components import backup_bucket, cache, database_cluster

SNAPSHOT_FILE = "resources.json"
DYNAMIC_TYPE = "pulumi-python:dynamic:Resource"

# Types whose replacement destroys data.
STATEFUL_TYPES = {
    database_cluster.CLUSTER_TYPE,
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:core/v1:PersistentVolumeClaim",
    DYNAMIC_TYPE,  # the backup bucket
}
IMMUTABLE = "immutable in Kubernetes: the provider deletes and recreates the object"
# Per type, the input paths whose change forces a replacement, and why. The components that own the
# stateful resources say which of their inputs those are.
REPLACEMENT_PATHS: dict[str, dict[str, str]] = {
    "kubernetes:apps/v1:Deployment": {"spec.selector": IMMUTABLE},
    "kubernetes:apps/v1:StatefulSet": {path: IMMUTABLE for path in ("spec.selector", "spec.serviceName", "spec.volumeClaimTemplates")},
    "kubernetes:core/v1:PersistentVolumeClaim": {path: IMMUTABLE for path in ("spec.storageClassName", "spec.accessModes", "spec.volumeName")},
    **database_cluster.REPLACEMENT_FIELDS,
    DYNAMIC_TYPE: {key: "a bucket's name, region and endpoint are fixed: this is a new bucket" for key in backup_bucket.REPLACE_PROPERTIES},
}
# Any Kubernetes object with a new name or namespace is a new object.
ALWAYS_REPLACING_PATHS = {"metadata.name": "a new name is a new object", "metadata.namespace": "a new namespace is a new object"}


class DiffError(Exception):
    """The base cannot be read or rendered; the message says which and why."""


@dataclass
class FieldChange:
    path: str
    before: Any
    after: Any


@dataclass
class ResourceChange:
    urn: str
    type: str
    name: str
    action: str  # "add" | "remove" | "update" | "replace"
    stateful: bool
    protect: bool
    fields: list[FieldChange] = field(default_factory=list)
    replaced_by: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of the changes forcing it
    refused_in_place: list[tuple[str, str]] = field(default_factory=list)  # (path, why): updated, but not taken
    # For a database cluster that cannot take the change: the stack config entry that makes it safely, as a new
    # database restored from the old one's backups.
    restore_config: dict[str, Any] | None = None

    @property
    def destroys_data(self) -> bool:
        return self.stateful and self.action in ("replace", "remove")


@dataclass
class StackDiff:
    stack: str
    changes: list[ResourceChange]

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    def summary(self) -> str:
        danger = sum(1 for change in self.changes if change.destroys_data)
        text = (
            f"stack {self.stack}: {self.count('add')} to add, {self.count('update')} to update, "
            f"{self.count('replace')} to replace, {self.count('remove')} to remove"
        )
        return text + (f"; {danger} stateful resource(s) would lose data" if danger else "")


def field_changes(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """Leaf-level differences between two JSON-like values; lists are compared item by item."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}.{key}" if path else str(key)
            changes += field_changes(before.get(key), after.get(key), child)
        return changes
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [change for index, pair in enumerate(zip(before, after)) for change in field_changes(*pair, f"{path}[{index}]")]
    return [] if before == after else [FieldChange(path, before, after)]


def replacement_causes(resource_type: str, changes: list[FieldChange]) -> list[tuple[str, str]]:
    """(path, why) for each path under which something changed that makes the engine replace the resource."""
    paths = dict(REPLACEMENT_PATHS.get(resource_type, {}))
    if resource_type.startswith("kubernetes:"):
        paths = {**ALWAYS_REPLACING_PATHS, **paths}
    return _matching(paths, changes)


def in_place_refusals(resource_type: str, changes: list[FieldChange]) -> list[tuple[str, str]]:
    """(path, why) for each change Pulumi would apply in place but the running object cannot take."""
    paths = {**database_cluster.IN_PLACE_REFUSED_FIELDS.get(resource_type, {}), **cache.IN_PLACE_REFUSED_FIELDS.get(resource_type, {})}
    return _matching(paths, changes)


def restore_config(old_inputs: dict, new_inputs: dict) -> dict[str, Any]:
    """The `databases[]` entry that applies a change a running cluster cannot take: a new database restored from the
    old one (which stays until the new one is verified; then its services move over and it goes)."""
    old_name = (old_inputs.get("metadata") or {}).get("name")
    new_name = (new_inputs.get("metadata") or {}).get("name")
    target = new_name if new_name != old_name else f"{old_name}-v2"
    return {"name": target, "restore": {"source": old_name}}


def _matching(paths: dict[str, str], changes: list[FieldChange]) -> list[tuple[str, str]]:
    return [
        (prefix, why)
        for prefix, why in paths.items()
        if any(c.path == prefix or c.path.startswith((prefix + ".", prefix + "[")) for c in changes)
    ]


def diff_snapshots(stack: str, base: dict[str, dict], head: dict[str, dict]) -> StackDiff:
    changes = []
    for urn in sorted(set(base) | set(head)):
        old, new = base.get(urn), head.get(urn)
        current = new or old
        resource_type = current["type"]
        common = dict(urn=urn, type=resource_type, name=current["name"], stateful=resource_type in STATEFUL_TYPES,
                      protect=bool(current.get("protect")))
        if old is None:
            changes.append(ResourceChange(action="add", **common))
        elif new is None:
            changes.append(ResourceChange(action="remove", **common))
        else:
            fields = field_changes(old.get("inputs"), new.get("inputs"))
            if old.get("protect") != new.get("protect"):
                fields.append(FieldChange("(protect)", old.get("protect"), new.get("protect")))
            if fields:
                causes = replacement_causes(resource_type, fields)
                action = "replace" if causes else "update"
                refused = [] if causes else in_place_refusals(resource_type, fields)
                advice = None
                if resource_type == database_cluster.CLUSTER_TYPE and (causes or refused):
                    advice = restore_config(old.get("inputs") or {}, new.get("inputs") or {})
                changes.append(
                    ResourceChange(
                        action=action, fields=fields, replaced_by=causes, refused_in_place=refused, restore_config=advice, **common
                    )
                )
    changes.sort(key=change_order)
    return StackDiff(stack, changes)


def change_order(change: ResourceChange) -> tuple:
    """What loses data comes first, then what the running cluster would refuse, then the rest by action."""
    order = {"replace": 1, "remove": 2, "update": 3, "add": 4}
    return (not change.destroys_data, not change.refused_in_place, order[change.action], change.type, change.name)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if value is not None else "(absent)"
    return text if len(text) <= 80 else text[:77] + "..."


def format_text(diff: StackDiff) -> str:
    symbols = {"add": "+", "remove": "-", "update": "~", "replace": "+-"}
    lines = [f"Diff: {diff.summary()}"]
    for change in diff.changes:
        warning = "  !! replaces a stateful resource: its data would be lost" if change.destroys_data else ""
        protected = " [protected]" if change.protect else ""
        lines.append(f"  {symbols[change.action]:>2} {change.type} {change.name}{protected}{warning}")
        lines += [f"       replaced because {path} changed: {why}" for path, why in change.replaced_by]
        lines += [f"       !! {path} changed: {why}" for path, why in change.refused_in_place]
        if change.restore_config:
            advice = change.restore_config
            source = advice["restore"]["source"]
            lines += [
                f"       safely: keep '{source}' and make the change on a new database restored from its backups, then move",
                f"       its usedBy services over and remove '{source}' (README, 'Restoring a database'):",
                f"         platform:databases: - {{name: {advice['name']}, <the changed settings>, restore: {{source: {source}}}}}",
            ]
        lines += [f"       {f.path}: {_short(f.before)} => {_short(f.after)}" for f in change.fields]
    return "\n".join(lines)


def to_json(diff: StackDiff) -> dict[str, Any]:
    return {
        "summary": diff.summary(),
        "counts": {action: diff.count(action) for action in ("add", "update", "replace", "remove")},
        "changes": [
            {
                "urn": c.urn,
                "type": c.type,
                "name": c.name,
                "action": c.action,
                "stateful": c.stateful,
                "destroysData": c.destroys_data,
                "protect": c.protect,
                "replacedBy": [{"path": path, "reason": why} for path, why in c.replaced_by],
                "refusedInPlace": [{"path": path, "reason": why} for path, why in c.refused_in_place],
                "restoreConfig": c.restore_config,
                "fields": [{"path": f.path, "before": f.before, "after": f.after} for f in c.fields],
            }
            for c in diff.changes
        ],
    }


def read_snapshot(folder: Path) -> dict[str, dict]:
    path = folder / SNAPSHOT_FILE
    try:
        snapshot = json.loads(path.read_text())
    except OSError as error:
        raise DiffError(f"{path}: cannot read the base snapshot ({error.strerror}); write one with --out {folder}") from None
    except json.JSONDecodeError as error:
        raise DiffError(f"{path}: not a snapshot written by --out ({error.msg})") from None
    if not isinstance(snapshot, dict) or not all(isinstance(v, dict) and "type" in v for v in snapshot.values()):
        raise DiffError(f"{path}: not a snapshot written by --out")
    return snapshot


def render_ref_snapshot(ref: str, stack: str, repo: Path) -> dict[str, dict]:
    """Renders `stack` as the program was at git `ref`, with the current tools, in a temporary worktree."""
    def git(*args: str, cwd: Path = repo) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)

    resolved = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if resolved.returncode != 0:
        raise DiffError(f"--diff {ref}: neither a folder nor a git ref of {repo} (try a branch, tag or commit)")
    scratch = Path(tempfile.mkdtemp(prefix="preview-base-"))
    worktree = scratch / "worktree"
    try:
        added = git("worktree", "add", "--detach", "--quiet", str(worktree), resolved.stdout.strip())
        if added.returncode != 0:
            raise DiffError(f"--diff {ref}: cannot check it out: {added.stderr.strip()}")
        out = scratch / "out"
        # A fresh interpreter: the base's components must not mix with the ones this process imported.
        rendered = subprocess.run(
            [sys.executable, "-m", "tools.preview", "--stack", stack, "--project-dir", str(worktree),
             "--out", str(out), "--render-only"],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
        )
        if rendered.returncode not in (0, 1):
            reason = (rendered.stderr.strip().splitlines() or ["no output"])[-1]
            raise DiffError(f"--diff {ref}: the program at {ref} does not render stack {stack}: {reason}")
        return read_snapshot(out)
    finally:
        git("worktree", "remove", "--force", str(worktree))
        shutil.rmtree(scratch, ignore_errors=True)


def load_base(base: str, stack: str, repo: Path) -> dict[str, dict]:
    folder = Path(base)
    if folder.is_dir():
        return same_stack(read_snapshot(folder), stack, folder)
    return render_ref_snapshot(base, stack, repo)


def same_stack(snapshot: dict[str, dict], stack: str, folder: Path) -> dict[str, dict]:
    """A base of another stack would read as the whole stack replaced: refuse it (URNs name their stack)."""
    stacks = sorted({urn.split("::", 1)[0].removeprefix("urn:pulumi:") for urn in snapshot if urn.startswith("urn:pulumi:")})
    if stacks and stacks != [stack]:
        raise DiffError(
            f"{folder} holds a preview of stack {', '.join(repr(s) for s in stacks)}, not '{stack}': compare a stack with "
            f"its own earlier output (`python -m tools.preview --stack {stack} --out DIR` on the base)"
        )
    return snapshot
