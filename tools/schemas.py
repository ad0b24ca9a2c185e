"""Schema validation of rendered Kubernetes objects: built-in kinds and the custom resources the platform uses.

Built-in kinds are checked against kubernetes-validate's bundled strict schemas for KUBERNETES_VERSION (unknown
fields rejected), custom resources against the CRD schemas in tools/crds (see tools/crds/SOURCE.md). The errors
are the ones `kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)` reports (it stops at the first;
this reports them all, in the same order), but one jsonschema validator is built per (apiVersion, kind) and
reused: kubernetes_validate re-reads its 1.4 MB definitions file for every object.

Objects may come straight from the Pulumi engine (wire form): integral floats are turned back into ints, secret
wrappers are unwrapped, values still unknown during a preview are not judged, and a missing metadata.name is fine
(the provider auto-names).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

from tools.engine import normalize_numbers, unwrap_secrets

# The Kubernetes version whose OpenAPI schema built-in kinds are checked against.
KUBERNETES_VERSION = "1.35.0"

BUILTIN_SCHEMA_DIR = (
    importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-local-strict"
)
CRD_DIR = Path(__file__).resolve().parent / "crds"

# Where the bundled schemas' $refs point (the $id of _definitions.json): custom resources reuse its ObjectMeta.
OBJECT_META_REF = "https://kubernetes.io/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# Pulumi's wire value for "not known until deploy" (pulumi.runtime.rpc.UNKNOWN); deserialized it is pulumi's Unknown.
UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

# Only plausible names reach the file system (a kind such as "../x" must not open another file).
_API_VERSION_PATTERN = re.compile(r"^(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?$")
_KIND_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_$-]+$")


@dataclass(frozen=True)
class SchemaError:
    api_version: str
    kind: str
    name: str  # "" when the object has no metadata.name (auto-named by the provider)
    path: str  # e.g. "spec.template.spec.containers[0].ports[0].containerPort"; "" for the object itself
    message: str

    def __str__(self) -> str:
        where = self.path or "(object)"
        return f"{self.api_version} {self.kind} {self.name or '(auto-named)'}: {where}: {self.message}"


# ---------------------------------------------------------------------------------------------- public API


def validate(obj: dict) -> list[SchemaError]:
    """Every schema error of one object (wire form or plain), in jsonschema's order; [] when it is valid."""
    plain = normalize_numbers(unwrap_secrets(obj))
    if not isinstance(plain, dict):
        return [SchemaError("", "", "", "", f"not a Kubernetes object: a {type(plain).__name__}, not a mapping")]
    api_version, kind, name = _identity(plain)
    missing = [field for field, value in (("apiVersion", api_version), ("kind", kind)) if not value]
    if missing:
        return [SchemaError(api_version, kind, name, field, f"{field} is missing or not a string") for field in missing]
    validator = _validator(api_version, kind)
    if validator is None:
        return [SchemaError(api_version, kind, name, "", _no_schema_message(api_version, kind))]
    return [
        SchemaError(api_version, kind, name, format_path(error.absolute_path), error.message)
        for error in _reported_errors(validator.iter_errors(plain))
    ]


def validate_all(objs: list[dict]) -> list[SchemaError]:
    return [error for obj in objs for error in validate(obj)]


def is_known_kind(api_version: str, kind: str) -> bool:
    """Whether a schema is known for this apiVersion and kind (a built-in kind or one of tools/crds)."""
    return _builtin_schema(api_version, kind) is not None or (api_version, kind) in _crd_schemas()


def format_path(path: Iterable[str | int]) -> str:
    """jsonschema's path as people write it: spec.containers[0].name, metadata.labels["app.kubernetes.io/name"]."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _SIMPLE_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def crd_json_schema(openapi_schema: dict) -> dict:
    """A CRD version's openAPIV3Schema as a JSON Schema (draft 2020-12) validating a whole custom resource."""
    schema = _openapi_to_json_schema(openapi_schema, field_position=True)
    properties = schema.setdefault("properties", {})
    # The API server validates (and prunes) a custom resource's metadata as ObjectMeta; CRDs only say "object".
    properties["metadata"] = {"$ref": OBJECT_META_REF}
    # Some CRDs require metadata; the provider always sends it (auto-naming fills it), and built-in kinds' schemas
    # do not require it either, so a wire-form object without it is judged alike for both.
    if "required" in schema:
        schema["required"] = [field for field in schema["required"] if field != "metadata"]
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# ---------------------------------------------------------------------------------------------- errors


def _reported_errors(errors: Iterable[ValidationError]) -> list[ValidationError]:
    """The errors worth reporting, in jsonschema's order: kubernetes_validate raises the first of that same
    sequence (its validator.validate raises iter_errors' first error), so errors[0] is the one it would report."""
    return [error for error in errors if not _is_unknown(error.instance)]


def _is_unknown(value: Any) -> bool:
    """A value the engine does not know yet (preview): it cannot be judged, only its eventual value can."""
    if isinstance(value, str):
        return value == UNKNOWN_SENTINEL
    value_type = type(value)
    return value_type.__name__ == "Unknown" and value_type.__module__.startswith("pulumi")


def _identity(obj: dict) -> tuple[str, str, str]:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return tuple(value if isinstance(value, str) else "" for value in (obj.get("apiVersion"), obj.get("kind"), name))


def _no_schema_message(api_version: str, kind: str) -> str:
    return (
        f"no schema is known for apiVersion {api_version!r} kind {kind!r} (neither a Kubernetes "
        f"{KUBERNETES_VERSION} built-in kind nor a CRD in tools/crds): a typo, or a CRD to add to tools/crds"
    )


# ---------------------------------------------------------------------------------------------- validators


@functools.cache
def _validator(api_version: str, kind: str) -> Draft202012Validator | None:
    """One validator per (apiVersion, kind), built on first use and reused: building is the expensive part."""
    schema = _builtin_schema(api_version, kind)
    if schema is None:
        crd_schema = _crd_schemas().get((api_version, kind))
        if crd_schema is None:
            return None
        schema = crd_json_schema(crd_schema)
    return Draft202012Validator(schema, registry=_definitions_registry())


@functools.cache
def _definitions_registry() -> Registry:
    """The bundled _definitions.json (read once), which every built-in kind's schema $refs into."""
    definitions = json.loads((BUILTIN_SCHEMA_DIR / "_definitions.json").read_text())
    return Resource.from_contents(definitions) @ Registry()


@functools.cache
def _builtin_schema(api_version: str, kind: str) -> dict | None:
    """The bundled strict schema of a built-in kind, or None when Kubernetes has no such apiVersion and kind."""
    if not (_API_VERSION_PATTERN.match(api_version) and _KIND_PATTERN.match(kind)):
        return None
    schema_file = BUILTIN_SCHEMA_DIR / _builtin_schema_file_name(api_version, kind)
    if not schema_file.is_file():
        return None
    schema = json.loads(schema_file.read_text())
    # File names drop the group's domain (apps.example.com/v1 would find apps/v1's file) and the kind's case,
    # and sub-objects (affinity-v1.json) have files too: only a top-level kind with this exact GVK counts.
    group, _, version = api_version.rpartition("/")
    if {"group": group, "version": version, "kind": kind} not in schema.get("x-kubernetes-group-version-kind", []):
        return None
    return schema


def _builtin_schema_file_name(api_version: str, kind: str) -> str:
    # kubernetes_validate's naming: networking.k8s.io/v1 Ingress -> ingress-networking-v1.json, v1 -> namespace-v1.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{group_version}.json"


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict]:
    """(group/version, kind) -> openAPIV3Schema for every served version of every CRD in tools/crds."""
    schemas = {}
    for crd_file in sorted(CRD_DIR.glob("*/*.json")):
        crd = json.loads(crd_file.read_text())
        for version, schema in crd["versions"].items():
            schemas[(f"{crd['group']}/{version}", crd["kind"])] = schema
    return schemas


# ---------------------------------------------------------------------------------------------- OpenAPI -> JSON Schema


def _openapi_to_json_schema(node: dict, field_position: bool) -> dict:
    """A CRD's OpenAPI v3 schema node as JSON Schema.

    field_position: the node describes a field's value (root, property, list item, map value), not a branch of
    allOf/anyOf/oneOf/not. There the API server prunes undeclared fields, and strict field validation (kubectl's
    default) rejects them: so such object nodes get additionalProperties: false unless they preserve unknown fields.
    """
    result: dict[str, Any] = {}
    for keyword, value in node.items():
        if keyword in ("properties", "patternProperties"):
            result[keyword] = {name: _openapi_to_json_schema(sub, field_position) for name, sub in value.items()}
        elif keyword in ("items", "additionalProperties") and isinstance(value, dict):
            result[keyword] = _openapi_to_json_schema(value, field_position)
        elif keyword in ("allOf", "anyOf", "oneOf"):
            result[keyword] = [_openapi_to_json_schema(sub, False) for sub in value]
        elif keyword == "not":
            result[keyword] = _openapi_to_json_schema(value, False)
        elif keyword == "pattern":
            result[keyword] = _python_pattern(value)
        else:
            result[keyword] = value  # other keywords mean the same in JSON Schema; x-kubernetes-* are ignored by it
    if node.get("x-kubernetes-int-or-string"):
        result["type"] = ["integer", "string"]
        # controller-gen also writes the same thing as anyOf: drop that copy, or each error would be reported twice.
        if result.get("anyOf") == [{"type": "integer"}, {"type": "string"}]:
            del result["anyOf"]
    if field_position and _rejects_unknown_fields(node):
        result["additionalProperties"] = False
    if node.get("nullable"):
        result = _allowing_null(result)
    return result


_GO_FLAG_GROUP = re.compile(r"\(\?([ims-]+)\)")


def _python_pattern(pattern: str) -> str:
    """A Go (RE2) pattern as Python's re reads it. Go accepts a flag group anywhere, and it holds to the end of the
    enclosing group ("^(?i)(abort|warn)?$", "^((?i)sun|mon|tues)day$" in prometheus-operator's CRDs); Python takes
    global flags only at the start, so each becomes a scoped group, "(?i:...)", closed where the enclosing one is."""
    result: list[str] = []
    to_close = [0]  # per open group (the pattern itself first): scoped flag groups to close with it
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            result.append(pattern[index : index + 2])
            index += 2
            continue
        flags = None if in_class else _GO_FLAG_GROUP.match(pattern, index)
        if flags:
            result.append(f"(?{flags.group(1)}:")
            to_close[-1] += 1
            index = flags.end()
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # A ']' right after '[' or '[^' is a literal member, not the end of the class.
            opening = "[^]" if pattern.startswith("[^]", index) else "[]" if pattern.startswith("[]", index) else "["
            result.append(opening)
            index += len(opening)
            continue
        elif char == "(":
            to_close.append(0)
        elif char == ")" and len(to_close) > 1:
            result.append(")" * to_close.pop())
        result.append(char)
        index += 1
    return "".join(result) + ")" * to_close[0]


def _rejects_unknown_fields(node: dict) -> bool:
    return (
        node.get("type") == "object"
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    )


def _allowing_null(schema: dict) -> dict:
    """OpenAPI's `nullable: true`: null is valid too."""
    if "type" not in schema:
        return {"anyOf": [{"type": "null"}, schema]}
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    allowing = {**schema, "type": [*types, "null"]}
    if "enum" in schema:
        allowing["enum"] = [*schema["enum"], None]
    return allowing
