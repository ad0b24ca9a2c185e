"""Policies that keep secrets out of fields Kubernetes stores and shows in plaintext.

Env values, ConfigMaps, labels and annotations are readable by anyone who can `kubectl get` the object, end
up in `kubectl.kubernetes.io/last-applied-configuration`, in Helm/Pulumi previews and in logs. A secret
belongs in a Secret (created from Pulumi encrypted config or an external store) and is referenced with
`valueFrom.secretKeyRef` / `envFrom.secretRef`.

Each rule has a pure core (`*_findings(obj) -> list[str]` over plain dicts) and a thin pulumi_policy
wrapper. Values are judged by the detectors of policies/secret_detectors.py (shared with stack_config.py), two ways:
  * by name (DB_PASSWORD, API_KEY, ...), unless the name describes a setting about a secret
    (TOKEN_TTL_SECONDS, DB_PASSWORD_FILE, SECRET_NAME) or the value cannot be a secret (empty, a number,
    a boolean, a path, a `$(VAR)` reference, a hostname or a URL without credentials);
  * by shape, whatever the name: URLs with user:password@, PEM private keys, AWS access key ids, JWTs,
    GitHub/GitLab/Slack/Stripe/Google-style tokens, and high-entropy random tokens.
Messages name the field path and the fix, never the value itself (findings end up in logs and SARIF).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, Severity
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)
from pulumi_policy.secret import Secret

from .pod_security import CONTAINER_LISTS, POD_TEMPLATE_PATHS, group_and_kind, pod_template, resource_type_of

# The detectors themselves live in a module without Pulumi imports: stack_config.py refuses the same plain values
# at config time (README, "Stack config"). Re-exported here, where the rules and their tests have always found them.
from .secret_detectors import (  # noqa: F401 - re-exports
    ENTROPY_LENGTH_CAP,
    ENTROPY_RATIO,
    MIN_CLASS_CHANGES,
    MIN_TOKEN_LENGTH,
    cannot_be_secret,
    class_change_ratio,
    embedded_assignments,
    is_secret_name,
    judge,
    judge_text,
    looks_random,
    name_words,
    secret_shape,
    shannon_entropy,
)

# --- plain values -------------------------------------------------------------------------------------------


class _Unknown:
    """A value not known yet (during preview); rules skip what they cannot see instead of failing."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
_UNKNOWN_SENTINELS = frozenset(
    {
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_OBJECT_VALUE,
        UNKNOWN_STRING_VALUE,
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",  # pulumi.runtime.rpc.UNKNOWN, what the engine records
    }
)


# While tools.analyzer hands every policy of a request the same props object (it does so only while no policy
# writes to it), it sets this to a dict it clears between requests, so the rules that all start from to_plain(props)
# convert each object once. None (the Pulumi CLI): every call converts. Callers never change what to_plain returns.
PLAIN_MEMO: dict[int, tuple[Any, Any]] | None = None


def to_plain(value: Any) -> Any:
    """Policy props (or raw wire-form inputs) as plain dicts/lists; every rule's pure core starts with it.

    The SDK's proxy raises on reading an unknown value, which would abort the whole policy for the resource;
    here unknowns become UNKNOWN so one unknown field does not hide findings in the others. Secrets (wire
    wrappers or pulumi_policy Secret) become `Secret(plain value)`, so callers that keep the wrapping can tell.
    """
    memo = PLAIN_MEMO
    if memo is None or not isinstance(value, Mapping):
        return _to_plain(value)
    cached = memo.get(id(value))
    if cached is None or cached[0] is not value:
        cached = (value, _to_plain(value))
        memo[id(value)] = cached
    return cached[1]


def _to_plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return Secret(_to_plain(value.value))
    if isinstance(value, Mapping):
        if value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG:
            return Secret(_to_plain(value.get("value")))
        return {key: _read(value, key) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_read(value, index) for index in range(len(value))]
    if isinstance(value, str) and value in _UNKNOWN_SENTINELS:
        return UNKNOWN
    return value


def _read(container: Any, key: Any) -> Any:
    try:
        return _to_plain(container[key])
    except UnknownValueError:
        return UNKNOWN


def unwrap(value: Any) -> tuple[Any, bool]:
    """(the value, whether it was a Pulumi secret)."""
    if isinstance(value, Secret):
        return unwrap(value.value)[0], True
    return value, False


def mapping(value: Any) -> dict[str, Any]:
    """A dict field, or {} when absent, unknown or mistyped (schema validation reports those, not us)."""
    value = unwrap(value)[0]
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    value = unwrap(value)[0]
    return value if isinstance(value, list) else []


# --- pod-bearing objects ------------------------------------------------------------------------------------

def pod_spec(obj: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(dotted path, pod spec) of a pod-bearing object, or None for other kinds (pod_security knows which)."""
    template = pod_template(resource_type_of(obj), obj)
    return None if template is None else (template.spec_path, mapping(template.spec))


def _label(index: int, item: Any) -> str:
    name = mapping(item).get("name")
    return f"[{index}]({name})" if isinstance(name, str) else f"[{index}]"


# --- rule: no-secret-literal-in-env -------------------------------------------------------------------------

ENV_FIX = (
    "put the value in a Kubernetes Secret (from `pulumi config set --secret` or an external store) "
    "and reference it with env[].valueFrom.secretKeyRef or envFrom[].secretRef"
)


def env_findings(obj: dict[str, Any]) -> list[str]:
    """Literal env values in any container of a pod-bearing object that are, or look like, secrets."""
    found = pod_spec(to_plain(obj))
    if found is None:
        return []
    base, spec = found
    messages = []
    for list_name in CONTAINER_LISTS:
        for c_index, container in enumerate(items(spec.get(list_name))):
            for e_index, env in enumerate(items(mapping(container).get("env"))):
                path = f"{base}.{list_name}{_label(c_index, container)}.env{_label(e_index, env)}.value"
                reason = _env_reason(mapping(env))
                if reason:
                    messages.append(f"{path} {reason}: {ENV_FIX}.")
    return messages


def _env_reason(env: dict[str, Any]) -> str | None:
    if "value" not in env or env.get("valueFrom"):
        return None  # valueFrom (secretKeyRef, configMapKeyRef, fieldRef) keeps the value out of the pod spec
    value, was_secret = unwrap(env["value"])
    if was_secret and value not in (None, ""):
        return "is a Pulumi secret written into the pod spec, where it is stored and shown in plaintext"
    name = env.get("name")
    return judge(name if isinstance(name, str) else "", value)


# --- rule: no-secret-in-configmap ---------------------------------------------------------------------------

CONFIGMAP_FIX = (
    "move it to a Kubernetes Secret (from `pulumi config set --secret` or an external store) and mount or "
    "reference that Secret instead of the ConfigMap"
)


def configmap_findings(obj: dict[str, Any]) -> list[str]:
    """ConfigMap data/binaryData entries that are, or contain, secrets."""
    obj = to_plain(obj)
    if obj.get("kind") != "ConfigMap":
        return []
    messages = []
    for key, raw in mapping(obj.get("data")).items():
        value, was_secret = unwrap(raw)
        if was_secret and value not in (None, ""):
            reason = "is a Pulumi secret stored in a ConfigMap, which Kubernetes keeps and shows in plaintext"
        else:
            reason = judge_text(key, value) if isinstance(value, str) else None
        if reason:
            messages.append(f"data.{key} {reason}: {CONFIGMAP_FIX}.")
    for key, raw in mapping(obj.get("binaryData")).items():
        value, was_secret = unwrap(raw)
        reason = "is a Pulumi secret stored in a ConfigMap" if was_secret else _binary_reason(key, value)
        if reason:
            messages.append(f"binaryData.{key} {reason}: {CONFIGMAP_FIX}.")
    return messages


def _binary_reason(key: str, value: Any) -> str | None:
    """binaryData is base64 (random-looking by nature): judge the name and, when it is text, the decoded text."""
    if not isinstance(value, str):
        return None
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = None
    if text is not None:
        return judge_text(key, text)
    return "holds binary data under a secret-sounding name" if is_secret_name(key) else None


# --- rule: no-secret-in-metadata ----------------------------------------------------------------------------

# Written by kubectl itself and holding the whole object (Secret data included): not the author's choice.
SKIPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
METADATA_FIX = (
    "labels and annotations are readable by anyone who can list the object; remove the value and keep it in a "
    "Kubernetes Secret"
)


def _metadata_paths(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The object's metadata, plus the pod (and job) template metadata of workloads."""
    yield "metadata", mapping(obj.get("metadata"))
    spec = mapping(obj.get("spec"))
    yield "spec.template.metadata", mapping(mapping(spec.get("template")).get("metadata"))
    job_template = mapping(spec.get("jobTemplate"))
    yield "spec.jobTemplate.metadata", mapping(job_template.get("metadata"))
    job_spec = mapping(job_template.get("spec"))
    yield "spec.jobTemplate.spec.template.metadata", mapping(mapping(job_spec.get("template")).get("metadata"))


def metadata_findings(obj: dict[str, Any]) -> list[str]:
    """Label and annotation values shaped like credentials (names are not judged: vault.hashicorp.com/
    agent-inject-secret-* and similar annotations name secrets without holding them)."""
    messages = []
    for base, metadata in _metadata_paths(to_plain(obj)):
        for field in ("labels", "annotations"):
            for key, raw in mapping(metadata.get(field)).items():
                if key in SKIPPED_ANNOTATIONS:
                    continue
                value, was_secret = unwrap(raw)
                if was_secret and value not in (None, ""):
                    reason = "is a Pulumi secret written into metadata, which is stored and shown in plaintext"
                else:
                    shape = secret_shape(value) if isinstance(value, str) else None
                    reason = f"looks like {shape}" if shape else None
                if reason:
                    messages.append(f"{base}.{field}['{key}'] {reason}: {METADATA_FIX}.")
    return messages


# --- rule: no-plaintext-secret-manifest ---------------------------------------------------------------------

SECRET_DATA_FIELDS = ("data", "stringData")
# What tools.preview writes in place of every secret value of the manifests it renders: masked, so not plaintext.
MASKED_SECRET = "[secret]"
SECRET_MANIFEST_FIX = (
    "create the Secret from Pulumi encrypted config (`pulumi config set --secret KEY`, passed to "
    "kubernetes.core.v1.Secret, which keeps it encrypted in state) or from an external store (External "
    "Secrets Operator, Sealed Secrets); never write Secret values into manifests"
)


def plaintext_secret_findings(obj: dict[str, Any], secret_fields: Sequence[str] = ()) -> list[str]:
    """Literal data/stringData entries of a Kubernetes Secret.

    A field counts as protected when its value is a Pulumi secret, or when it is listed in `secret_fields`
    (the resource's additionalSecretOutputs: pulumi-kubernetes registers every Secret with data and
    stringData there, and the policy SDK hands policies the values unwrapped, so that option is what a
    policy sees of a program's Secret). Plain YAML has neither, so its literal data is reported.
    """
    obj = to_plain(obj)
    if obj.get("kind") != "Secret" or str(obj.get("apiVersion", "v1")) != "v1":
        return []
    messages = []
    for field in SECRET_DATA_FIELDS:
        value, was_secret = unwrap(obj.get(field))
        if was_secret or field in secret_fields or not isinstance(value, dict):
            continue
        literal_keys = sorted(key for key, item in value.items() if _is_literal(item))
        if literal_keys:
            messages.append(f"{field} ({', '.join(literal_keys)}) is written in plaintext: {SECRET_MANIFEST_FIX}.")
    return messages


def _is_literal(item: Any) -> bool:
    value, was_secret = unwrap(item)
    return not was_secret and isinstance(value, str) and value not in ("", MASKED_SECRET)


# --- pulumi_policy wrappers ---------------------------------------------------------------------------------


def _resource_policy(name: str, description: str, findings, severity: Severity) -> ResourceValidationPolicy:
    def validate(args, report_violation) -> None:
        for message in findings(args.props):
            report_violation(message)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        severity=severity,
    )


def _validate_secret_manifest(args, report_violation) -> None:
    secret_fields = list(getattr(args.opts, "additional_secret_outputs", None) or [])
    for message in plaintext_secret_findings(args.props, secret_fields):
        report_violation(message)


no_secret_literal_in_env = _resource_policy(
    "no-secret-literal-in-env",
    "Containers must not carry secrets in literal env values; use a Secret and valueFrom.secretKeyRef.",
    env_findings,
    Severity.CRITICAL,
)
no_secret_in_configmap = _resource_policy(
    "no-secret-in-configmap",
    "ConfigMaps must not hold secrets; they are stored and shown in plaintext.",
    configmap_findings,
    Severity.CRITICAL,
)
no_secret_in_metadata = _resource_policy(
    "no-secret-in-metadata",
    "Labels and annotations must not hold secrets.",
    metadata_findings,
    Severity.HIGH,
)
no_plaintext_secret_manifest = ResourceValidationPolicy(
    name="no-plaintext-secret-manifest",
    description="Kubernetes Secrets must not be written with literal data; use Pulumi secrets or an external store.",
    validate=_validate_secret_manifest,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
)

POLICIES: list = [
    no_secret_literal_in_env,
    no_secret_in_configmap,
    no_secret_in_metadata,
    no_plaintext_secret_manifest,
]


# Which resources a policy can report on at all (see policies.pack.APPLIES_TO). `kind` and `api_version` are the
# object's plain strings ("" when absent), None when they are anything else (a secret, unknown): then it runs.
def _pod_bearing_object(resource_type: str, kind: str | None, api_version: str | None) -> bool:
    if kind is None or api_version is None:
        return True
    return group_and_kind(resource_type_of({"apiVersion": api_version, "kind": kind})) in POD_TEMPLATE_PATHS


def _of_kind(wanted: str):
    def applies(resource_type: str, kind: str | None, api_version: str | None) -> bool:
        return kind is None or kind == wanted

    return applies


APPLIES_TO: dict = {
    no_secret_literal_in_env: _pod_bearing_object,
    no_secret_in_configmap: _of_kind("ConfigMap"),
    no_plaintext_secret_manifest: _of_kind("Secret"),
}  # no-secret-in-metadata judges every object
