"""What the real engine did against what the in-process engine (tools.preview) says: URNs, objects, findings, diffs.

Pure functions over files and JSON, so `make test` covers them without the toolchain.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

from components.app_service import SECRET_CHECKSUM_ANNOTATION
from policies.pod_security import POD_TEMPLATE_PATHS, get, group_and_kind, resource_type_of
from tools import diff as stack_diff
from tools import kube_yaml
from tools.preview import MASK

# Not registered by the program, so the in-process engine cannot know them: the root stack and the
# providers the engine makes for resources that name none.
ENGINE_ONLY_TYPES = ("pulumi:pulumi:Stack",)
DEFAULT_PROVIDER_MARKER = "::default"

# Real-engine step ops -> tools.preview --diff actions.
OPS = {
    "create": "add", "update": "update", "delete": "remove",
    "replace": "replace", "create-replacement": "replace", "delete-replaced": "replace",
}  # fmt: skip

ObjectKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


def program_urns(urns: Iterable[str]) -> set[str]:
    """The URNs the program itself registers (what both engines can see)."""
    kept = set()
    for urn in urns:
        type_ = urn.split("::")[2].split("$")[-1] if urn.count("::") >= 3 else ""
        if type_ in ENGINE_ONLY_TYPES:
            continue
        if type_.startswith("pulumi:providers:") and urn.rsplit("::", 1)[-1].startswith("default"):
            continue
        kept.add(urn)
    return kept


def object_key(obj: dict[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return (obj.get("apiVersion", ""), obj.get("kind", ""), metadata.get("namespace") or "", metadata.get("name") or "")


def mask_secret_data(obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret's values replaced by the offline preview's mask: the rendered YAML has them in plaintext."""
    if obj.get("kind") != "Secret":
        return obj
    masked = dict(obj)
    for field in ("data", "stringData"):
        if isinstance(obj.get(field), dict):
            masked[field] = {key: MASK for key in obj[field]}
    return masked


def mask_secret_checksum(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod template's secret checksum masked, wherever the kind keeps its template (a CronJob's is in its
    jobTemplate)."""
    path = POD_TEMPLATE_PATHS.get(group_and_kind(resource_type_of(obj)))
    template = get(obj, *path) if path is not None else None
    annotations = get(template, "metadata", "annotations") or {}
    if SECRET_CHECKSUM_ANNOTATION not in annotations:
        return obj
    masked = copy.deepcopy(obj)
    get(masked, *path, "metadata", "annotations")[SECRET_CHECKSUM_ANNOTATION] = MASK
    return masked


def normalize(obj: dict[str, Any]) -> dict[str, Any]:
    """An object in a form both engines agree on when they mean the same thing.

    Secrets are masked (values are never compared, the offline preview cannot know them), and so is the pod
    template's secret checksum (an HMAC under a generated key). A Secret's `stringData` and `data` count as the
    same field (the provider may move values between them).
    """
    obj = mask_secret_checksum(mask_secret_data(obj))
    if obj.get("kind") == "Secret" and ("stringData" in obj or "data" in obj):
        obj = dict(obj)
        merged = {**(obj.pop("data", None) or {}), **(obj.pop("stringData", None) or {})}
        obj["data"] = merged
    return obj


def load_objects(paths: Iterable[Path]) -> dict[ObjectKey, dict[str, Any]]:
    objects = {}
    for path in paths:
        for document in kube_yaml.load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind"):
                objects[object_key(document)] = normalize(document)
    return objects


def rendered_objects(render_dir: Path) -> dict[ObjectKey, dict[str, Any]]:
    """What pulumi-kubernetes' renderYamlToDirectory wrote (0-crd/ and 1-manifest/)."""
    return load_objects(sorted(render_dir.rglob("*.yaml")))


def offline_objects(out_dir: Path) -> dict[ObjectKey, dict[str, Any]]:
    """What `tools.preview --out` wrote."""
    return load_objects(sorted(out_dir.glob("*.yaml")))


def _shown(value: Any) -> str:
    return "(absent)" if value is None else repr(value)


def object_differences(real: dict[ObjectKey, dict], offline: dict[ObjectKey, dict]) -> list[str]:
    problems = []
    for key in sorted(set(real) | set(offline)):
        name = "/".join(part for part in key if part)
        if key not in offline:
            problems.append(f"{name}: rendered by the real engine only")
        elif key not in real:
            problems.append(f"{name}: in the offline preview only")
        else:
            # The offline diff's field walk (an explicit null counts as absent, as for the API server).
            problems += [
                f"{name}: {c.path}: real {_shown(c.before)}, offline {_shown(c.after)}"
                for c in stack_diff.field_changes(real[key], offline[key])
            ]
    return problems


Finding = tuple[str, str, str]  # policy, URN, enforcement


def real_findings(events: Iterable[Any]) -> set[Finding]:
    """Policy violations from the real engine's event stream (Automation API EngineEvents)."""
    found = set()
    for event in events:
        policy = getattr(event, "policy_event", None)
        if policy is not None:
            found.add((policy.policy_name, policy.resource_urn or "", policy.enforcement_level.lower()))
    return found


def offline_findings(preview_json: dict[str, Any]) -> set[Finding]:
    return {(f["policy"], f["urn"] or "", f["enforcement"].lower()) for f in preview_json["policyFindings"]}


def real_actions(events: Iterable[Any]) -> dict[str, str]:
    """URN -> add/update/replace/remove, from a real preview's steps (resources left alone are left out)."""
    actions = {}
    for event in events:
        pre = getattr(event, "resource_pre_event", None)
        if pre is None:
            continue
        op = OPS.get(str(getattr(pre.metadata.op, "value", pre.metadata.op)))
        if op is not None and pre.metadata.urn in program_urns([pre.metadata.urn]):
            actions[pre.metadata.urn] = op
    return actions


def offline_actions(preview_json: dict[str, Any]) -> dict[str, str]:
    diff = preview_json.get("diff") or {"changes": []}
    return {change["urn"]: change["action"] for change in diff["changes"]}
