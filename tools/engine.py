"""In-process engine: runs the Pulumi program for one stack under the SDK's mocks and records every resource.

The real CLI is not needed: the stack file's config is handed to the SDK the way the language host does it
(`set_all_config` with the secret keys), `__main__.py` runs exactly as `pulumi up` would run it, and a
monitor records what the program registers (type, name, wire-form inputs, parent and options).
Tests, the offline preview and the policy pack all work from that record.
"""

from __future__ import annotations

import hashlib
import os
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from tools import stack_yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Pulumi's wire marker for a secret value: {SECRET_SIG: SECRET_VALUE_SIG, "value": ...}.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE_SIG = "1b47061264138c4ac30d75fd1eb44270"

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"

# Values the program may not read: a secure config value without its passphrase, a generated password.
PLACEHOLDER_PREFIX = "offline-placeholder"


class StackFileError(Exception):
    """The project or stack file cannot be read; the message names the file and the reason."""


class ProgramError(Exception):
    """The program stopped with a user-facing error (pulumi.RunError), for example invalid stack config."""

    def __init__(self, message: str, registered: list[RecordedResource] | None = None):
        super().__init__(message)
        self.registered = registered or []  # what the program had registered before it stopped


@dataclass
class RecordedResource:
    """One resource as the program registered it, in the engine's wire form."""

    urn: str
    type: str  # e.g. "kubernetes:apps/v1:Deployment"
    name: str  # the Pulumi logical name
    inputs: dict[str, Any]  # camelCase keys, numbers as floats, secrets wrapped with SECRET_SIG
    parent: str = ""  # parent URN, "" for none
    custom: bool = True
    provider: str = ""
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    dependencies: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    additional_secret_outputs: list[str] = field(default_factory=list)

    @property
    def is_kubernetes_object(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:") and "kind" in self.inputs


@dataclass
class Rendering:
    """Everything one run of the program registered."""

    project: str
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any]  # stack outputs (pulumi.export), wire form
    placeholder_keys: list[str]  # secure config keys the program saw as placeholders

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def kubernetes_objects(self) -> list[dict[str, Any]]:
        return [r.inputs for r in self.resources if r.is_kubernetes_object]


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_VALUE_SIG


def wrap_secret(value: Any) -> dict[str, Any]:
    return {SECRET_SIG: SECRET_VALUE_SIG, "value": value}


def unwrap_secrets(value: Any) -> Any:
    """The value with every Pulumi secret wrapper {SECRET_SIG: ..., "value": X} replaced by X."""
    if is_secret(value):
        return unwrap_secrets(value.get("value"))
    if isinstance(value, dict):
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


def normalize_numbers(value: Any) -> Any:
    """The value with integral floats turned into ints: the engine sends every number as a float (replicas: 2.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: normalize_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize_numbers(item) for item in value]
    return value


def project_name(project_dir: Path = PROJECT_DIR) -> str:
    path = project_dir / "Pulumi.yaml"
    try:
        name = yaml.safe_load(path.read_text())["name"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise StackFileError(f"{path}: cannot read the project name ({error})") from None
    return str(name)


def read_stack_file(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The parsed Pulumi.<stack>.yaml, with a clear error when it is missing or malformed."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise StackFileError(f"{path.name}: no such stack file; known stacks: {', '.join(known) or 'none'}")
    try:
        # As the CLI reads it (yaml.v3): the program must see here exactly the values `pulumi up` gives it.
        document = stack_yaml.load(path) or {}
    except stack_yaml.StackYamlError as error:
        raise StackFileError(str(error)) from None
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise StackFileError(f"{path.name}: expected a mapping with a 'config:' mapping at the top")
    return document


def _replace_secure(value: Any, reveal: Callable[[str], str]) -> tuple[Any, bool]:
    """Replaces each {secure: ...} in a config value by `reveal(ciphertext)`; reports whether there was one."""
    if isinstance(value, dict):
        if set(value) == {"secure"} and isinstance(value["secure"], str):
            return reveal(value["secure"]), True
        found = False
        replaced = {}
        for key, item in value.items():
            replaced[key], inner = _replace_secure(item, reveal)
            found = found or inner
        return replaced, found
    if isinstance(value, list):
        pairs = [_replace_secure(item, reveal) for item in value]
        return [item for item, _ in pairs], any(found for _, found in pairs)
    return value, False


def _stack_file_key(document: dict[str, Any], stack: str, passphrase: str) -> bytes:
    from tools import passphrase as provider

    salt = document.get("encryptionsalt")
    if not isinstance(salt, str):
        raise StackFileError(
            f"Pulumi.{stack}.yaml: a passphrase was given but the file has no 'encryptionsalt' "
            "(its secrets use another secrets provider, or it has none); unset PULUMI_CONFIG_PASSPHRASE"
        )
    try:
        return provider.key_from_encryption_salt(salt, passphrase)
    except provider.PassphraseError as error:
        raise StackFileError(
            f"Pulumi.{stack}.yaml: {error}. Check PULUMI_CONFIG_PASSPHRASE (or _FILE) for stack '{stack}', "
            "or unset it to preview with placeholders"
        ) from None


def stack_config(
    stack: str, project_dir: Path = PROJECT_DIR, passphrase: str | None = None
) -> tuple[dict[str, str], list[str]]:
    """The stack file's config as the language host passes it: fully qualified keys, string values, secret keys.

    Structured values become JSON strings, as the CLI sends them. A `secure:` value is decrypted with the
    passphrase exactly as the CLI's passphrase provider does; without a passphrase the program sees a
    placeholder. Either way the key is marked secret, as the CLI marks it.
    """
    from tools import passphrase as provider

    project = project_name(project_dir)
    document = read_stack_file(stack, project_dir)
    key_bytes = _stack_file_key(document, stack, passphrase) if passphrase is not None else None
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for raw_key, raw_value in document.get("config", {}).items():
        key = raw_key if ":" in str(raw_key) else f"{project}:{raw_key}"

        def reveal(ciphertext: str, key: str = key) -> str:
            if key_bytes is None:
                return f"{PLACEHOLDER_PREFIX}-{key}"
            try:
                return provider.decrypt_value(key_bytes, ciphertext)
            except (provider.PassphraseError, UnicodeDecodeError) as error:
                raise StackFileError(f"Pulumi.{stack}.yaml: {key}: {error}") from None

        value, secure = _replace_secure(raw_value, reveal)
        if secure:
            secret_keys.append(key)
        try:
            config[key], _ = stack_yaml.config_string(value)
        except ValueError as error:
            raise StackFileError(f"Pulumi.{stack}.yaml: {key}: {error} (the Pulumi CLI cannot store it)") from None
    return config, secret_keys


def _deterministic_password(name: str, length: float | None) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return f"{PLACEHOLDER_PREFIX}-{digest}"[: int(length or 32)]


def _make_mocks_and_monitor():
    """Built lazily so that importing this module does not import the Pulumi SDK."""
    import pulumi
    from pulumi.runtime import mocks as pulumi_mocks

    class PlatformMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            state = dict(args.inputs)
            if args.typ == "random:index/randomPassword:RandomPassword":
                # The engine marks the result secret (additional_secret_outputs); mocks do not, so we do.
                state["result"] = wrap_secret(_deterministic_password(args.name, args.inputs.get("length")))
            return f"{args.name}-id", state

        def call(self, args: pulumi.runtime.MockCallArgs):
            if args.token in ("kubernetes:yaml:decode", "kubernetes:helm:template"):
                return {"result": []}
            return {}

    class RecordingMonitor(pulumi_mocks.MockMonitor):
        def __init__(self, mocks):
            super().__init__(mocks)
            self.recorded: list[RecordedResource] = []

        def make_urn(self, parent: str, type_: str, name: str) -> str:
            # As the engine names resources (checked by `make e2e`): a child's type is prefixed by its parent's
            # whole type chain, except under the root stack. The SDK's mock keeps only the parent's last type
            # and prefixes the stack's too.
            if parent:
                parent_chain = parent.split("::")[2]
                if parent_chain != ROOT_STACK_TYPE:
                    type_ = f"{parent_chain}${type_}"
            return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            if request.type != ROOT_STACK_TYPE:
                from pulumi.runtime import rpc

                self.recorded.append(
                    RecordedResource(
                        urn=response.urn,
                        type=request.type,
                        name=request.name,
                        inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                        parent=request.parent,
                        custom=bool(request.custom),
                        provider=request.provider,
                        protect=bool(request.protect),
                        retain_on_delete=bool(request.retainOnDelete),
                        delete_before_replace=bool(request.deleteBeforeReplace),
                        dependencies=list(request.dependencies),
                        replace_on_changes=list(request.replaceOnChanges),
                        ignore_changes=list(request.ignoreChanges),
                        additional_secret_outputs=list(request.additionalSecretOutputs),
                    )
                )
            return response

    return PlatformMocks(), RecordingMonitor


def _stack_outputs() -> dict[str, Any]:
    """The program's exports in wire form (secrets wrapped), as the engine would store them.

    The mocked root Stack registered its (empty) outputs when set_mocks created it, so the exports are read
    from it after the run and serialized the way the SDK sends them.
    """
    from pulumi.runtime import rpc
    from pulumi.runtime.settings import get_root_resource
    from pulumi.runtime.sync_await import _sync_await

    root = get_root_resource()
    struct = _sync_await(rpc.serialize_properties(getattr(root, "outputs", {}), {}))
    return rpc.deserialize_properties(struct, keep_unknowns=True)


def run_program(
    program: Callable[[], Any],
    *,
    project: str,
    stack: str,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
) -> tuple[list[RecordedResource], dict[str, Any]]:
    """Runs `program` under the mocks with the given config; returns the recorded resources and stack outputs.

    Raises ProgramError when the program stops with pulumi.RunError; anything else propagates (a bug).
    """
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.settings import SETTINGS
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    # The analyzer and SDK re-read these if set; the mocks are the only source of truth here.
    for variable in ("PULUMI_PROJECT", "PULUMI_STACK", "PULUMI_DRY_RUN", "PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS"):
        os.environ.pop(variable, None)

    mocks, monitor_class = _make_mocks_and_monitor()
    monitor = monitor_class(mocks)
    # set_mocks keeps an existing root Stack: without this, a second run would parent to the first run's stack.
    settings.set_root_resource(None)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config or {}), secret_keys=list(secret_keys or []))
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    try:
        _sync_await(run_pulumi_func(program))
    except pulumi.RunError as error:
        raise ProgramError(str(error), monitor.recorded) from None
    return monitor.recorded, _stack_outputs()


def render(
    stack: str,
    project_dir: Path = PROJECT_DIR,
    *,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    passphrase: str | None = None,
) -> Rendering:
    """Runs the project's `__main__.py` for `stack` in-process and returns what it registered.

    `passphrase` decrypts the stack file's secure values (else they are placeholders).
    `config`/`secret_keys` replace the stack file's config (tests use this for bad input).
    Raises StackFileError for an unreadable stack file and ProgramError when the program stops with
    pulumi.RunError (for example invalid stack config).
    """
    project = project_name(project_dir)
    placeholder_keys: list[str] = []
    if config is None:
        config, secret_keys = stack_config(stack, project_dir, passphrase)
        placeholder_keys = list(secret_keys) if passphrase is None else []
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    program = str(project_dir / "__main__.py")
    resources, outputs = run_program(
        lambda: runpy.run_path(program, run_name="__main__"),
        project=project,
        stack=stack,
        config=config,
        secret_keys=secret_keys,
    )
    return Rendering(project=project, stack=stack, resources=resources, outputs=outputs, placeholder_keys=placeholder_keys)
