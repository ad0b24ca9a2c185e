"""Policies that keep secrets out of fields Kubernetes stores and shows in plaintext.

Env values, ConfigMaps, labels and annotations are readable by anyone who can `kubectl get` the object, end
up in `kubectl.kubernetes.io/last-applied-configuration`, in Helm/Pulumi previews and in logs. A secret
belongs in a Secret (created from Pulumi encrypted config or an external store) and is referenced with
`valueFrom.secretKeyRef` / `envFrom.secretRef`.

Each rule has a pure core (`*_findings(obj) -> list[str]` over plain dicts) and a thin pulumi_policy
wrapper. Values are judged two ways:
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
import functools
import math
import re
from collections import Counter
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


# --- judging names ------------------------------------------------------------------------------------------

# Word sequences (after splitting the name) that say "this holds a secret".
_SECRET_WORDS = (
    ("PASSWORD",), ("PASSWORDS",), ("PASSWD",), ("PASSPHRASE",), ("SECRET",), ("SECRETS",),
    ("TOKEN",), ("TOKENS",), ("APIKEY",), ("API", "KEY"), ("CREDENTIAL",), ("CREDENTIALS",), ("CREDS",),
    ("PRIVATE", "KEY"), ("PRIVATEKEY",), ("ACCESS", "KEY"), ("ACCESSKEY",), ("SECRET", "KEY"),
    ("SIGNING", "KEY"), ("ENCRYPTION", "KEY"), ("MASTER", "KEY"), ("SESSION", "KEY"), ("AUTH", "KEY"),
    ("BEARER",), ("DSN",), ("CONNECTION", "STRING"),
)
# A last word that makes the name a setting *about* a secret: TOKEN_TTL_SECONDS, DB_PASSWORD_FILE, SECRET_NAME.
_SETTING_WORDS = frozenset(
    """FILE PATH DIR DIRECTORY LOCATION MOUNT URL URI ENDPOINT HOST PORT TTL SECONDS SECS SEC MS MILLIS MINUTES
    MINS HOURS DAYS EXPIRY EXPIRATION EXPIRES LIFETIME TIMEOUT INTERVAL DURATION LENGTH LEN SIZE MIN MAX COUNT
    NAME NAMES REF KEYREF ENABLED DISABLED ENABLE DISABLE REQUIRED TYPE MODE POLICY HEADER ISSUER AUDIENCE
    ALGORITHM ALG FORMAT VERSION ROTATION KIND STORE PROVIDER FIELD PREFIX SCOPE SCOPES NAMESPACE
    USER USERNAME""".split()
)


def name_words(name: str) -> list[str]:
    """DB_PASSWORD, dbPassword, db.password and db-password all become [DB, PASSWORD]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.upper()) if word]


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    return any(tuple(words[i : i + len(phrase)]) == phrase for i in range(len(words) - len(phrase) + 1))


# Run-together names with these endings are secrets too: PGPASSWORD, APPSECRET, GITHUBTOKEN.
_SECRET_WORD_ENDINGS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY")


@functools.lru_cache(maxsize=4096)  # pure; a stack repeats the same env names and keys many times
def is_secret_name(name: str) -> bool:
    """True for names of values that are secrets themselves, False for settings about secrets."""
    words = name_words(name)
    if not words or words[-1] in _SETTING_WORDS:
        return False
    return any(_contains(words, phrase) for phrase in _SECRET_WORDS) or any(
        word.endswith(_SECRET_WORD_ENDINGS) for word in words
    )


# --- judging values -----------------------------------------------------------------------------------------

_NOT_SECRET_VALUES = [
    re.compile(r"(?i)(true|false|yes|no|on|off|enabled?|disabled?|none|null|nil)"),
    re.compile(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?"),  # numbers
    re.compile(r"\d+(\.\d+)?(ns|us|ms|s|m|h|d|w|Ki|Mi|Gi|Ti|K|M|G|T)"),  # durations and quantities
    re.compile(r"(/[\w.@+-]*)+/?"),  # absolute paths (/run/secrets/db)
    re.compile(r"\$\([A-Za-z_][A-Za-z0-9_]*\)"),  # Kubernetes env expansion $(VAR)
    re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_.:-]*\}"),  # ${VAR} templating
    re.compile(r"\{\{.*\}\}"),  # Go/Helm templates
    re.compile(r"(?=.*\.)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:\d+)?"),  # hostnames
]
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S+")

# Well-known credential shapes: (what it looks like, pattern). Patterns follow the vendors' documented formats.
_SECRET_SHAPES: list[tuple[str, re.Pattern[str]]] = [
    ("a PEM private key", re.compile(r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----")),
    ("an AWS access key id", re.compile(r"(?<![A-Z0-9])(AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA)[A-Z0-9]{16}(?![A-Z0-9])")),
    ("a JSON Web Token", re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")),
    ("a GitHub token", re.compile(r"(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("a GitLab token", re.compile(r"glpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"xox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Slack webhook URL", re.compile(r"hooks\.slack\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+")),
    ("a Stripe secret key", re.compile(r"(sk|rk)_live_[A-Za-z0-9]{20,}")),
    ("a Google API key", re.compile(r"AIza[A-Za-z0-9_-]{35}")),
    ("an npm token", re.compile(r"npm_[A-Za-z0-9]{36}")),
]
# scheme://user:password@host, where the password is not a reference like $(DB_PASSWORD) or ${DB_PASSWORD}.
_URL_CREDENTIALS = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:(?P<password>[^/\s@]+)@")
_REFERENCE = re.compile(r"(\$\(|\$\{|\{\{|%24%28|%24%7B)")

# Random tokens: base64/base64url alphabet, no separators that identifiers, paths or hostnames have.
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9+/=_-]+")
_HEX_OR_UUID = re.compile(r"[0-9a-fA-F-]+")  # git SHAs, digests, UUIDs: common, and not credentials alone
MIN_TOKEN_LENGTH = 20
# A random string over a large alphabet reaches about log2(length) bits per character; 0.85 of that keeps
# 99% of random 20-40 character tokens while camelCase identifiers and words (repeated letters) stay below
# once the class-change test below is added.
ENTROPY_RATIO = 0.85
# Past ~36 characters the entropy of a random string grows slower than log2(length) (the alphabet, not the
# length, limits it), so the threshold stops growing there.
ENTROPY_LENGTH_CAP = 36
# Random tokens switch between upper case, lower case, digits and symbols at most positions (about 60%);
# identifiers like MyApplicationServiceName2024 switch only at word boundaries (20-36%).
MIN_CLASS_CHANGES = 0.4


def shannon_entropy(text: str) -> float:
    """Bits per character of the string's own character distribution."""
    counts = Counter(text)
    return -sum(count / len(text) * math.log2(count / len(text)) for count in counts.values())


def _char_class(char: str) -> int:
    return 0 if char.isupper() else 1 if char.islower() else 2 if char.isdigit() else 3


def class_change_ratio(text: str) -> float:
    changes = sum(_char_class(a) != _char_class(b) for a, b in zip(text, text[1:]))
    return changes / max(len(text) - 1, 1)


def looks_random(text: str) -> bool:
    """A high-entropy token: long enough, token alphabet, mixed case and digits, near-maximal entropy."""
    if len(text) < MIN_TOKEN_LENGTH or not _TOKEN_ALPHABET.fullmatch(text) or _HEX_OR_UUID.fullmatch(text):
        return False
    if text.startswith("/"):
        return False  # a path, even with mixed case and digits
    if not (any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)):
        return False
    threshold = ENTROPY_RATIO * math.log2(min(len(text), ENTROPY_LENGTH_CAP))
    return shannon_entropy(text) >= threshold and class_change_ratio(text) >= MIN_CLASS_CHANGES


@functools.lru_cache(maxsize=4096)  # pure; a stack repeats the same values many times
def secret_shape(text: str) -> str | None:
    """What kind of credential the text looks like, or None. Judges the value alone, whatever its name."""
    for description, pattern in _SECRET_SHAPES:
        if pattern.search(text):
            return description
    for match in _URL_CREDENTIALS.finditer(text):
        if not _REFERENCE.match(match.group("password")):
            return "a URL with an embedded user:password"
    if any(looks_random(word) for word in re.split(r"[\s,;\"']+", text) if word):
        return "a high-entropy token"
    return None


def cannot_be_secret(text: str) -> bool:
    """Values a secret-sounding name may hold harmlessly: empty, numbers, booleans, paths, references, hosts."""
    stripped = text.strip()
    if not stripped:
        return True
    if _URL.fullmatch(stripped):
        return True  # credentials in URLs are caught by secret_shape
    return any(pattern.fullmatch(stripped) for pattern in _NOT_SECRET_VALUES)


def judge(name: str, value: Any) -> str | None:
    """Why name=value holds a secret ("looks like a JWT", "is a literal password value"), or None."""
    if not isinstance(value, str):
        return None  # numbers and booleans arrive as such from programs
    shape = secret_shape(value)
    if shape:
        return f"looks like {shape}"
    if is_secret_name(name) and not cannot_be_secret(value):
        return "holds a literal value under a secret-sounding name"
    return None


# Lines like `password=x`, `password: x`, `"password": "x"`, `export PASSWORD=x` inside config files.
_ASSIGNMENT = re.compile(
    r"""^\s*(?:export\s+)?["']?(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)["']?\s*[:=]\s*["']?(?P<value>[^"'\s,#]*)"""
)


def embedded_assignments(text: str) -> Iterator[tuple[str, str]]:
    """(name, value) pairs of a multi-line config file (properties, .env, YAML, JSON-ish)."""
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match.group("value"):
            yield match.group("name"), match.group("value")


def judge_text(name: str, value: str) -> str | None:
    """judge() for a value that may be a whole config file: the value itself, then each `key = value` line."""
    reason = judge(name, value)
    if reason or "\n" not in value:
        return reason
    for key, inner in embedded_assignments(value):
        inner_reason = judge(key, inner)
        if inner_reason:
            return f"has a line '{key}' that {inner_reason}"
    return None


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
    return not was_secret and isinstance(value, str) and value != ""


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
