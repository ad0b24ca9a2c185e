"""Runs the CrossGuard policy pack in-process, through the policy SDK's own analyzer servicer.

The Pulumi CLI talks to a policy pack over gRPC: it asks for the pack's metadata (GetAnalyzerInfo), merges the
`--policy-pack-config` file with the policies' schema defaults and validates it (ReconcilePolicyPackConfig in
pulumi/pkg/resource/analyzer/config.go), sends the result (Configure), then sends every resource (Analyze) and
finally the whole stack (AnalyzeStack). This module does the same calls on `_PolicyAnalyzerServicer` directly,
without a server, so enforcement levels, unknown values, secrets and pack config behave as under the CLI.

`PolicyPack(...)` itself is never built here: its constructor starts a gRPC server and blocks forever.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.output import Unknown
from pulumi.runtime import proto
from pulumi.runtime.rpc import UNKNOWN
from pulumi_policy import EnforcementLevel
from pulumi_policy import policy as policy_sdk
from pulumi_policy import proxy as policy_proxy
from pulumi_policy.policy import _PolicyAnalyzerServicer

from policies.stack_rules import PLAIN_MANIFEST_URN_PREFIX
from tools.engine import RecordedResource

ENFORCEMENT_LEVELS = tuple(level.value for level in EnforcementLevel)
MANIFEST_URN_PREFIX = PLAIN_MANIFEST_URN_PREFIX


class PolicyConfigError(Exception):
    """The policy pack config is unusable; the message names the file or policy and the fix."""


@dataclass(frozen=True)
class Finding:
    """One violation as the CLI would print it."""

    policy: str
    enforcement: str  # "advisory" | "mandatory" | "remediate" | "disabled"
    message: str  # what the policy reported (the policy's description when it reported nothing more)
    urn: str
    name: str
    type: str


# --- pack config (the --policy-pack-config file format) ---------------------------------------------------


def load_policy_config(path: str | Path) -> dict[str, Any]:
    """Reads a `--policy-pack-config` JSON file: {"all": LEVEL, "<policy>": LEVEL | {"enforcementLevel": ..., ...}}."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise PolicyConfigError(f"{path}: cannot read the policy pack config ({error.strerror or error})") from None
    if not text.strip():
        return {}  # the CLI accepts an empty file as "no config"
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicyConfigError(f"{path}: not valid JSON at line {error.lineno}: {error.msg}") from None
    return check_policy_config(config, source=str(path))


def check_policy_config(config: Any, *, source: str = "policy config") -> dict[str, Any]:
    """Checks the shape the CLI's parsePolicyPackConfig accepts; returns the config unchanged."""
    if not isinstance(config, dict):
        raise PolicyConfigError(f'{source}: expected a JSON object like {{"all": "mandatory"}}')
    for key, value in config.items():
        if isinstance(value, dict):
            level = value.get("enforcementLevel")
            if level is not None and level not in ENFORCEMENT_LEVELS:
                raise PolicyConfigError(
                    f"{source}: {key}.enforcementLevel is {level!r}; use one of {', '.join(ENFORCEMENT_LEVELS)}"
                )
        elif value not in ENFORCEMENT_LEVELS:
            raise PolicyConfigError(
                f"{source}: {key} is {value!r}; use one of {', '.join(ENFORCEMENT_LEVELS)} "
                'or an object like {"enforcementLevel": "advisory"}'
            )
    return config


def _split_entry(value: str | dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    if isinstance(value, str):
        return value, {}
    properties = {k: v for k, v in value.items() if k != "enforcementLevel"}
    return value.get("enforcementLevel"), properties


def _apply_config(result: dict[str, dict[str, Any]], config: dict[str, Any]) -> None:
    """The CLI's applyConfig: "all" sets every policy's level, then each entry sets its own level and properties."""
    all_level, _ = _split_entry(config.get("all", {}))
    if all_level:
        for entry in result.values():
            entry["level"] = all_level
    for name, value in config.items():
        level, properties = _split_entry(value)
        entry = result.setdefault(name, {"level": None, "properties": {}})
        if level:
            entry["level"] = level
        entry["properties"].update(properties)


def _reconcile(info: proto.AnalyzerInfo, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The CLI's ReconcilePolicyPackConfig: schema defaults, initial config, given config, then schema validation."""
    result: dict[str, dict[str, Any]] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for policy in info.policies:
        schema = json_format.MessageToDict(policy.configSchema)
        properties = schema.get("properties", {})
        defaults = {key: spec["default"] for key, spec in properties.items() if "default" in spec}
        level = proto.EnforcementLevel.Name(policy.enforcementLevel).lower()
        result[policy.name] = {"level": level, "properties": defaults}
        if properties:
            schemas[policy.name] = {"type": "object", "properties": properties, "required": schema.get("required", [])}
    _apply_config(result, {name: _initial_entry(value) for name, value in info.initialConfig.items()})
    _apply_config(result, config)
    errors = [
        f"{name}: {error.message}"
        for name, schema in schemas.items()
        for error in jsonschema.Draft7Validator(schema).iter_errors(result[name]["properties"])
    ]
    if errors:
        raise PolicyConfigError("policy pack config does not match the policies' schemas: " + "; ".join(errors))
    return result


def _initial_entry(value: proto.PolicyConfig) -> dict[str, Any]:
    """An initial_config entry as the CLI reads it: proto3 cannot tell an unset level from advisory (0), and the
    CLI converts it to advisory, so we do too."""
    entry = json_format.MessageToDict(value.properties)
    entry["enforcementLevel"] = proto.EnforcementLevel.Name(value.enforcementLevel).lower()
    return entry


def _configure_request(reconciled: dict[str, dict[str, Any]]) -> proto.ConfigureAnalyzerRequest:
    request = proto.ConfigureAnalyzerRequest()
    for name, entry in reconciled.items():
        policy_config = request.policyConfig[name]
        if entry["level"]:
            policy_config.enforcementLevel = proto.EnforcementLevel.Value(entry["level"].upper())
        policy_config.properties.update(entry["properties"])
    return request


def default_policies() -> list:
    from policies.pack import ALL_POLICIES

    return ALL_POLICIES


@functools.lru_cache(maxsize=1)
def pack_version() -> str:
    """The version the CLI reports for the pack: PulumiPolicy.yaml's, else the SDK's fallback."""
    import policies

    try:
        document = yaml.safe_load((Path(policies.__file__).parent / "PulumiPolicy.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        document = {}
    return str(document.get("version") or "0.0.1")


def build_servicer(policies: list | None = None, policy_config: dict[str, Any] | None = None) -> _PolicyAnalyzerServicer:
    """A configured analyzer, as the CLI leaves it after GetAnalyzerInfo + Configure."""
    from policies.pack import DEFAULT_ENFORCEMENT, PACK_NAME

    policies = list(default_policies() if policies is None else policies)
    servicer = _PolicyAnalyzerServicer(PACK_NAME, pack_version(), policies, DEFAULT_ENFORCEMENT)
    config = check_policy_config(policy_config or {})
    request = _configure_request(_reconcile(servicer.GetAnalyzerInfo(None, None), config))
    servicer.Configure(request, None)
    # What analyze_with needs to build servicers holding fewer policies the same way (_servicer_for).
    servicer._platform_setup = (PACK_NAME, pack_version(), policies, DEFAULT_ENFORCEMENT, request)
    return servicer


def _applies_to() -> dict:
    from policies.pack import APPLIES_TO

    return APPLIES_TO


def _plain_identity(value: Any) -> str | None:
    """An object's kind or apiVersion as the policies' applicability tests take it: the string, "" when absent,
    None when it is anything else (a secret, an unknown value, not a string): then every policy runs."""
    if value is _ABSENT:
        return ""
    return value if isinstance(value, str) and not policy_proxy._is_unknown(value) else None


_ABSENT = object()


def _servicer_for(servicer: _PolicyAnalyzerServicer):
    """resource -> the servicer to Analyze it with: one that holds only the resource policies that can report on it
    (policies.pack.APPLIES_TO; the others would return at their first test), configured the same; None when no
    policy can. The response is the one the full servicer gives, without the policies that had nothing to say."""
    setup = getattr(servicer, "_platform_setup", None)
    applies_to = _applies_to()
    if setup is None or not applies_to:
        return lambda resource: servicer
    name, version, policies, enforcement, configure = setup
    subsets = servicer.__dict__.setdefault("_platform_subsets", {})  # (type, kind, apiVersion) -> servicer | None

    def choose(resource: RecordedResource) -> _PolicyAnalyzerServicer | None:
        inputs = resource.inputs if isinstance(resource.inputs, dict) else {}
        kind = _plain_identity(inputs.get("kind", _ABSENT))
        api_version = _plain_identity(inputs.get("apiVersion", _ABSENT))
        key = (resource.type, kind, api_version)
        if key not in subsets:
            subset = [
                policy
                for policy in policies
                if isinstance(policy, policy_sdk.ResourceValidationPolicy)
                and (policy not in applies_to or applies_to[policy](resource.type, kind, api_version))
            ]
            chosen = None
            if len(subset) == sum(isinstance(p, policy_sdk.ResourceValidationPolicy) for p in policies):
                chosen = servicer
            elif subset:
                chosen = _PolicyAnalyzerServicer(name, version, subset, enforcement)
                chosen.Configure(configure, None)
            subsets[key] = chosen
        return subsets[key]

    return choose


def unknown_policy_names(policy_config: dict[str, Any], policies: list | None = None) -> list[str]:
    """Config keys that name no policy: the CLI ignores them silently, which hides typos."""
    known = {policy.name for policy in (default_policies() if policies is None else policies)} | {"all"}
    return sorted(set(policy_config) - known)


# --- wire form ------------------------------------------------------------------------------------------------


def to_wire(value: Any) -> Any:
    """A value as the engine sends it: unknowns as the UNKNOWN sentinel, plain JSON types only."""
    if isinstance(value, dict):
        return {str(key): to_wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()  # YAML timestamps: the API server sees the string
    return str(value)


def _struct(properties: dict[str, Any], cache: dict[int, tuple[Any, struct_pb2.Struct]] | None = None) -> struct_pb2.Struct:
    """The properties as a Struct; with `cache`, each properties object is converted once (requests copy it)."""
    if cache is not None:
        cached = cache.get(id(properties))
        if cached is not None and cached[0] is properties:
            return cached[1]
    struct = struct_pb2.Struct()
    struct.update(to_wire(properties))
    if cache is not None:
        cache[id(properties)] = (properties, struct)
    return struct


def _options(resource: RecordedResource) -> proto.AnalyzerResourceOptions:
    return proto.AnalyzerResourceOptions(
        protect=resource.protect,
        ignoreChanges=resource.ignore_changes,
        deleteBeforeReplace=resource.delete_before_replace,
        deleteBeforeReplaceDefined=resource.delete_before_replace,
        parent=resource.parent,
        additionalSecretOutputs=resource.additional_secret_outputs,
    )


def _provider(resource: RecordedResource, by_urn: dict[str, RecordedResource], cache=None) -> proto.AnalyzerProviderResource | None:
    """The provider reference ("<urn>::<id>") resolved to the provider resource, as the engine sends it."""
    if not resource.provider:
        return None
    urn = resource.provider.rsplit("::", 1)[0]
    provider = by_urn.get(urn)
    return proto.AnalyzerProviderResource(
        type=provider.type if provider else urn.split("::")[-2],
        name=provider.name if provider else urn.split("::")[-1],
        urn=urn,
        properties=_struct(provider.inputs, cache) if provider else _struct({}),
    )


def _analyze_request(resource: RecordedResource, by_urn: dict[str, RecordedResource], cache=None) -> proto.AnalyzeRequest:
    request = proto.AnalyzeRequest(
        type=resource.type,
        urn=resource.urn,
        name=resource.name,
        properties=_struct(resource.inputs, cache),
        options=_options(resource),
    )
    provider = _provider(resource, by_urn, cache)
    if provider is not None:
        request.provider.CopyFrom(provider)
    return request


def _stack_request(resources: list[RecordedResource], by_urn: dict[str, RecordedResource], cache=None) -> proto.AnalyzeStackRequest:
    request = proto.AnalyzeStackRequest()
    for resource in resources:
        item = request.resources.add(
            type=resource.type,
            urn=resource.urn,
            name=resource.name,
            properties=_struct(resource.inputs, cache),
            options=_options(resource),
            parent=resource.parent,
            dependencies=resource.dependencies,
        )
        provider = _provider(resource, by_urn, cache)
        if provider is not None:
            item.provider.CopyFrom(provider)
    return request


# --- findings -------------------------------------------------------------------------------------------------


def _finding(diagnostic: proto.AnalyzeDiagnostic, resource: RecordedResource | None) -> Finding:
    # The SDK prefixes every message with the policy's description; keep only what the policy said.
    message = diagnostic.message
    prefix = diagnostic.description + "\n"
    if message.startswith(prefix):
        message = message[len(prefix) :]
    return Finding(
        policy=diagnostic.policyName,
        enforcement=proto.EnforcementLevel.Name(diagnostic.enforcementLevel).lower(),
        message=message,
        urn=resource.urn if resource else diagnostic.urn,
        name=resource.name if resource else "",
        type=resource.type if resource else "",
    )


class _ConvertOncePerRequest:
    """Stands in for `json_format` inside pulumi_policy.policy while we analyze.

    The servicer's Analyze converts the same `request.properties` Struct to a dict once per policy (about 40% of
    its time with this pack). The conversion is pure and the SDK copies its result (deserialize_properties) before
    any policy sees it, so converting each message once per request gives identical results. Messages are held
    here until the next request, so an id can never be reused while cached.
    """

    def __init__(self, real):
        self._real = real
        self._converted: dict[int, tuple[Any, dict]] = {}

    def next_request(self) -> None:
        self._converted.clear()

    def converted(self, message) -> Any:
        """What MessageToDict(message) returned during this request, else None."""
        cached = self._converted.get(id(message))
        return cached[1] if cached is not None and cached[0] is message else None

    def seed(self, message, converted: Any) -> None:
        """Use `converted` for MessageToDict(message) in this request: a Struct equal to one converted before."""
        if converted is not None:
            self._converted[id(message)] = (message, converted)

    def MessageToDict(self, message, *args, **kwargs):  # noqa: N802 - the name json_format uses
        if args or kwargs:
            return self._real.MessageToDict(message, *args, **kwargs)
        cached = self._converted.get(id(message))
        if cached is None or cached[0] is not message:
            cached = (message, self._real.MessageToDict(message))
            self._converted[id(message)] = cached
        return cached[1]

    def __getattr__(self, name):
        return getattr(self._real, name)


class _SharedDictProxy(policy_proxy._DictProxy):
    """The SDK's _DictProxy (same reads, same UnknownValueError), telling `shared` when someone may write."""

    def __init__(self, target, props_acc, shared):
        super().__init__(target, props_acc)
        self._shared = shared

    def __getitem__(self, key):
        if key == "__target":  # the raw dict escapes: it may be changed behind our back
            self._shared.written()
            return self._DictProxy__target
        value = self._DictProxy__target[key]
        if policy_proxy._is_unknown(value):
            raise policy_proxy.UnknownValueError(value, policy_proxy._append_prop(self._DictProxy__props_acc, key))
        return value

    def __setitem__(self, key, value):
        self._shared.written()
        super().__setitem__(key, value)


class _SharedListProxy(policy_proxy._ListProxy):
    def __init__(self, target, props_acc, shared):
        super().__init__(target, props_acc)
        self._shared = shared

    def __getitem__(self, key):
        if key == "__target":
            self._shared.written()
            return self._ListProxy__target
        value = self._ListProxy__target[key]
        if policy_proxy._is_unknown(value):
            raise policy_proxy.UnknownValueError(value, policy_proxy._append_prop(self._ListProxy__props_acc, key))
        return value


class _SharePropsPerRequest:
    """Stands in for `deserialize_properties` and `unknown_checking_proxy` inside pulumi_policy.policy.

    The servicer deserializes and proxies a resource's properties anew for every policy (with this pack, 30 full
    copies of every object per Analyze, 4 per resource per AnalyzeStack): the copies keep one policy's writes
    away from the next. Here every policy of a request gets the same copy (built exactly as the SDK builds it,
    with the SDK's proxy classes) as long as nobody writes: the first write (or escape of a raw container through
    "__target") drops the shared copies, so the policies after it get fresh ones, as with the SDK. Reads, unknown
    values and their errors are the SDK's own.
    """

    def __init__(self, real_deserialize):
        self._real_deserialize = real_deserialize
        self._deserialized: dict[tuple[int, bool], tuple[Any, Any]] = {}
        self._proxied: dict[int, tuple[Any, Any]] = {}
        self.plain_memo: dict[int, tuple[Any, Any]] = {}  # for policies.secrets.to_plain, same lifetime

    def next_request(self) -> None:
        self._deserialized.clear()
        self._proxied.clear()
        self.plain_memo.clear()

    def written(self) -> None:
        self.next_request()

    def deserialize_properties(self, props, proxy_secrets: bool = False):
        key = (id(props), proxy_secrets)
        cached = self._deserialized.get(key)
        if cached is None or cached[0] is not props:
            cached = (props, self._real_deserialize(props, proxy_secrets))
            self._deserialized[key] = cached
        return cached[1]

    def unknown_checking_proxy(self, props):
        cached = self._proxied.get(id(props))
        if cached is None or cached[0] is not props:
            cached = (props, self._proxy(props, []))
            self._proxied[id(props)] = cached
        return cached[1]

    def _proxy(self, value, props_acc):
        # pulumi_policy.proxy._proxy_helper, building the write-tracking subclasses.
        if isinstance(value, list):
            return _SharedListProxy(
                [self._proxy(item, policy_proxy._append_prop(props_acc, i)) for i, item in enumerate(value)],
                props_acc,
                self,
            )
        if isinstance(value, dict):
            return _SharedDictProxy(
                {key: self._proxy(value[key], policy_proxy._append_prop(props_acc, key)) for key in value}, props_acc, self
            )
        return value


@contextlib.contextmanager
def _converting_once_per_request():
    from policies import secrets as policy_secrets

    real = policy_sdk.json_format, policy_sdk.deserialize_properties, policy_sdk.unknown_checking_proxy
    converter = _ConvertOncePerRequest(real[0])
    shared = _SharePropsPerRequest(real[1])
    next_request = converter.next_request

    def next_request_for_both() -> None:
        next_request()
        shared.next_request()

    converter.next_request = next_request_for_both
    policy_sdk.json_format = converter
    policy_sdk.deserialize_properties = shared.deserialize_properties
    policy_sdk.unknown_checking_proxy = shared.unknown_checking_proxy
    plain_memo = policy_secrets.PLAIN_MEMO
    policy_secrets.PLAIN_MEMO = shared.plain_memo
    try:
        yield converter
    finally:
        policy_sdk.json_format, policy_sdk.deserialize_properties, policy_sdk.unknown_checking_proxy = real
        policy_secrets.PLAIN_MEMO = plain_memo


def analyze_with(
    servicer: _PolicyAnalyzerServicer, resources: list[RecordedResource], *, stack_policies: bool = True
) -> list[Finding]:
    """Every resource through Analyze, then (optionally) the whole list once through AnalyzeStack."""
    by_urn = {resource.urn: resource for resource in resources}
    findings: list[Finding] = []
    structs: dict[int, tuple[Any, struct_pb2.Struct]] = {}  # each resource's inputs as a Struct, made once
    converted: list[Any] = []  # each resource's properties as the servicer converted them during Analyze
    servicer_for = _servicer_for(servicer)
    with _converting_once_per_request() as converter:
        for resource in resources:
            converter.next_request()
            request = _analyze_request(resource, by_urn, structs)
            chosen = servicer_for(resource)
            if chosen is not None:
                response = chosen.Analyze(request, None)
                findings.extend(_finding(diagnostic, resource) for diagnostic in response.diagnostics)
            if stack_policies:
                converted.append(converter.converted(request.properties))
        converter.next_request()
        if stack_policies:
            request = _stack_request(resources, by_urn, structs)
            for item, properties in zip(request.resources, converted):
                converter.seed(item.properties, properties)  # the same Struct content: the same conversion
            response = servicer.AnalyzeStack(request, None)
            findings.extend(_finding(d, by_urn.get(d.urn)) for d in response.diagnostics)
        converter.next_request()
    return findings


def analyze(
    resources: list[RecordedResource],
    *,
    policy_config: dict[str, Any] | None = None,
    policies: list | None = None,
    stack_policies: bool = True,
) -> list[Finding]:
    """Findings for recorded resources: resource policies per resource, stack policies once."""
    servicer = build_servicer(policies, policy_config)
    return analyze_with(servicer, resources, stack_policies=stack_policies)


# --- plain Kubernetes objects -----------------------------------------------------------------------------------


def resource_type(obj: dict[str, Any]) -> str:
    """The pulumi-kubernetes type token: "v1" -> "kubernetes:core/v1:Pod", "apps/v1" -> "kubernetes:apps/v1:...". """
    api_version = str(obj.get("apiVersion") or "")
    if "/" not in api_version:
        api_version = f"core/{api_version or 'v1'}"
    return f"kubernetes:{api_version}:{obj.get('kind') or 'Unknown'}"


def manifest_name(obj: dict[str, Any], index: int) -> str:
    """The logical name pulumi-kubernetes' yaml.ConfigFile gives an object: "namespace/name" or "name"."""
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = metadata.get("name") or metadata.get("generateName") or f"object-{index}"
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)


def manifest_resource(obj: dict[str, Any], index: int = 0) -> RecordedResource:
    """A plain object as if a program had registered it (what yaml.ConfigFile would register)."""
    type_ = resource_type(obj)
    name = manifest_name(obj, index)
    return RecordedResource(urn=f"{MANIFEST_URN_PREFIX}{type_}::{name}", type=type_, name=name, inputs=obj)


def manifest_resources(objects: Iterable[dict[str, Any]]) -> list[RecordedResource]:
    return [manifest_resource(obj, index) for index, obj in enumerate(objects)]


def analyze_manifests(
    objects: list[dict[str, Any]],
    *,
    policy_config: dict[str, Any] | None = None,
    policies: list | None = None,
    stack_policies: bool = False,
) -> list[Finding]:
    """Findings for plain Kubernetes objects (from YAML), as if a program had registered each one.

    Stack policies are off by default: they judge a Pulumi stack (parents, options), which plain YAML has not.
    """
    return analyze(
        manifest_resources(objects), policy_config=policy_config, policies=policies, stack_policies=stack_policies
    )
