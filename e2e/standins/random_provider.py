"""STAND-IN for the pulumi-random resource provider plugin (`pulumi-resource-random`), used only by `make e2e`.

Why a stand-in: `make e2e` runs the real Pulumi CLI and real providers built from Go modules, but the real
random provider cannot be built -- its Go module `github.com/pulumi/pulumi-random/provider/v4` is not served by
the Go module proxy at any version. The project's rules allow a clearly named stand-in for `random` only.
Nothing outside `make e2e` (not the unit tests' mocks, not a real deployment) uses this file.

What it implements: only the one resource the program uses, `random:index/randomPassword:RandomPassword`, with the
semantics of terraform-provider-random's `random_password` (which pulumi-random bridges):

* Check fills the upstream defaults -- `upper`/`lower`/`numeric`/`special` true (`number`, the deprecated alias of
  `numeric`, mirrors it), `minUpper`/`minLower`/`minNumeric`/`minSpecial` 0 -- and rejects `length` < 1 or
  `length` < the sum of the minimums, as upstream's validators do.
* Every input change replaces (upstream marks every input RequiresReplace); deleteBeforeReplace is false.
* Create generates the password like upstream's `random.CreateString`: the minimums of each class first (upstream
  applies a minimum even when its class is disabled -- kept), the rest from the enabled classes, then a shuffle;
  `overrideSpecial` replaces the default special set ``!@#$%&*()-_=+[]{}<>:?``. Randomness comes from `secrets`.
  The id is "none", as upstream. `result` is returned as a Pulumi secret.
* `bcryptHash` is NOT produced: computing it would need a bcrypt dependency, and the program never reads it.

Protocol: the engine runs the plugin with the engine address as its last argument (possibly after flags such as
`--logtostderr`, `-v=N`, `--tracing <endpoint>`, all ignored). The plugin serves the pulumirpc.ResourceProvider
gRPC service on 127.0.0.1 at an ephemeral port, writes only that port and a newline to stdout, and serves until it
is killed. Modelled on the pinned SDK's own dynamic-provider server (`pulumi/dynamic/__main__.py`).

Run: `python -m e2e.standins.random_provider <engine-address>` from the repository root (e2e/launchers.py does).
"""

from __future__ import annotations

import json
import secrets
import signal
import sys
import threading
import traceback
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from tools.engine import unwrap_secrets, wrap_secret

PACKAGE = "random"
# The version the pinned Python SDK (pulumi-random==4.21.4) asks the engine for.
VERSION = "4.21.4"
PASSWORD_TOKEN = "random:index/randomPassword:RandomPassword"
NONE_ID = "none"  # the id terraform-provider-random gives every random_password

# Pulumi's property-value encodings inside a google.protobuf.Struct (sdk/go/common/resource/sig, pulumi/runtime/rpc).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

# Upstream's character classes (internal/random/string.go).
NUM_CHARS = "0123456789"
LOWER_CHARS = "abcdefghijklmnopqrstuvwxyz"
UPPER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DEFAULT_SPECIAL_CHARS = "!@#$%&*()-_=+[]{}<>:?"

BOOL_DEFAULTS = {"upper": True, "lower": True, "special": True}
MIN_KEYS = ("minUpper", "minLower", "minNumeric", "minSpecial")
# Every input of random_password; each one is RequiresReplace upstream.
INPUT_KEYS = ("length", "special", "upper", "lower", "numeric", "number", *MIN_KEYS, "overrideSpecial", "keepers")
OUTPUT_ONLY_KEYS = ("result", "bcryptHash")


# ---------------------------------------------------------------------------------------------------------------------
# Property helpers: plain dicts via json_format, with Pulumi's secret/unknown encodings handled explicitly.


def to_dict(struct: struct_pb2.Struct | None) -> dict[str, Any]:
    if struct is None:
        return {}
    return json_format.MessageToDict(struct)


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(props)
    return struct


def contains_unknown(value: Any) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


def normalized(props: dict[str, Any], key: str) -> Any:
    """An input as compared by Diff: secrets unwrapped, numbers as ints, "" override_special the same as absent."""
    value = unwrap_secrets(props.get(key))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if key == "overrideSpecial" and value == "":
        value = None
    if key == "keepers" and value == {}:
        value = None
    return value


# ---------------------------------------------------------------------------------------------------------------------
# random_password semantics.


def check_password(news: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Inputs with upstream's defaults filled in (never overwriting a given value), and the check failures."""
    inputs = dict(news)
    for key, default in BOOL_DEFAULTS.items():
        if inputs.get(key) is None:
            inputs[key] = default
    # `number` (deprecated) and `numeric` follow each other; both default to true (NumberNumericAttributePlanModifier).
    number, numeric = inputs.get("number"), inputs.get("numeric")
    if numeric is None and number is None:
        inputs["numeric"] = inputs["number"] = True
    elif numeric is None:
        inputs["numeric"] = number
    elif number is None:
        inputs["number"] = numeric
    for key in MIN_KEYS:
        if inputs.get(key) is None:
            inputs[key] = 0

    failures: list[tuple[str, str]] = []
    length = unwrap_secrets(inputs.get("length"))
    if length is None:
        failures.append(("length", "Missing required property 'length'"))
    elif not contains_unknown(length):
        if not isinstance(length, (int, float)) or isinstance(length, bool) or float(length) != int(length):
            failures.append(("length", f"length must be an integer, got {length!r}"))
        elif length < 1:
            failures.append(("length", f"length must be at least 1, got {int(length)}"))
        else:
            mins = [unwrap_secrets(inputs[k]) for k in MIN_KEYS]
            if not any(contains_unknown(m) for m in mins):
                total = sum(int(m) for m in mins)
                if length < total:
                    failures.append(
                        (
                            "length",
                            f"length ({int(length)}) must be at least the sum of minUpper, minLower, "
                            f"minNumeric and minSpecial ({total})",
                        )
                    )
    for key in MIN_KEYS:
        value = unwrap_secrets(inputs[key])
        if not contains_unknown(value) and (not isinstance(value, (int, float)) or value < 0):
            failures.append((key, f"{key} must be a non-negative integer, got {value!r}"))
    if not contains_unknown(unwrap_secrets(inputs["number"])) and not contains_unknown(unwrap_secrets(inputs["numeric"])):
        if unwrap_secrets(inputs["number"]) != unwrap_secrets(inputs["numeric"]):
            failures.append(("numeric", "number (deprecated) and numeric must agree"))
    return inputs, failures


def generate_password(props: dict[str, Any]) -> str:
    """Upstream's random.CreateString, with `secrets` as the randomness source."""
    p = unwrap_secrets(props)
    length = int(p["length"])
    special_chars = p.get("overrideSpecial") or DEFAULT_SPECIAL_CHARS
    numeric = p.get("numeric", True) and p.get("number", True)
    chars = ""
    if p.get("upper", True):
        chars += UPPER_CHARS
    if p.get("lower", True):
        chars += LOWER_CHARS
    if numeric:
        chars += NUM_CHARS
    if p.get("special", True):
        chars += special_chars

    minimums = {
        NUM_CHARS: int(p.get("minNumeric", 0)),
        LOWER_CHARS: int(p.get("minLower", 0)),
        UPPER_CHARS: int(p.get("minUpper", 0)),
        special_chars: int(p.get("minSpecial", 0)),
    }
    result: list[str] = []
    for charset, count in minimums.items():
        result.extend(secrets.choice(charset) for _ in range(count))
    rest = length - len(result)
    if rest > 0 and not chars:
        raise ValueError("cannot generate a password: upper, lower, numeric and special are all false")
    result.extend(secrets.choice(chars) for _ in range(max(rest, 0)))
    secrets.SystemRandom().shuffle(result)
    return "".join(result)


# ---------------------------------------------------------------------------------------------------------------------
# The gRPC service.


class InvalidArgument(Exception):
    """A request this stand-in refuses; reported to the engine as INVALID_ARGUMENT with this message."""


def _abort_with_traceback(fn):
    def wrapper(self, request, context):
        try:
            return fn(self, request, context)
        except InvalidArgument as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except Exception:  # noqa: BLE001 - reported to the engine, which shows it to the user
            context.abort(grpc.StatusCode.UNKNOWN, traceback.format_exc())

    wrapper.__name__ = fn.__name__
    return wrapper


def _require_password(request) -> None:
    """Refuse any resource type but RandomPassword (the request's `type`, or failing that the one in its URN)."""
    if request.type:
        ok, what = request.type == PASSWORD_TOKEN, request.type
    else:
        ok, what = PASSWORD_TOKEN in request.urn, request.urn
    if not ok:
        raise InvalidArgument(f"the random stand-in provider implements only {PASSWORD_TOKEN}, not {what}")


class RandomStandInProvider(provider_pb2_grpc.ResourceProviderServicer):
    """pulumirpc.ResourceProvider for random:index/randomPassword:RandomPassword only (see the module docstring)."""

    def __init__(self) -> None:
        self.engine_address: str | None = None

    # --- plugin / protocol ---------------------------------------------------------------------------------------

    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=VERSION)

    def Handshake(self, request, context):
        # When Handshake succeeds the engine takes the protocol flags from here and ignores Configure's response;
        # the proto requires Handshake-aware providers to accept secrets and resources.
        self.engine_address = request.engine_address or self.engine_address
        return provider_pb2.ProviderHandshakeResponse(accept_secrets=True, accept_resources=True)

    def Attach(self, request, context):
        self.engine_address = request.address
        return empty_pb2.Empty()

    def GetSchema(self, request, context):
        # Not needed by `pulumi up`; anything that does load it gets a valid (minimal) package schema.
        return provider_pb2.GetSchemaResponse(schema=json.dumps({"name": PACKAGE, "version": VERSION}))

    def CheckConfig(self, request, context):
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request, context):
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)

    def Configure(self, request, context):
        return provider_pb2.ConfigureResponse(acceptSecrets=True, supportsPreview=True, acceptResources=True)

    def Cancel(self, request, context):
        return empty_pb2.Empty()

    def GetMapping(self, request, context):
        return provider_pb2.GetMappingResponse(provider="", data=b"")

    def GetMappings(self, request, context):
        return provider_pb2.GetMappingsResponse(providers=[])

    # --- resources -----------------------------------------------------------------------------------------------

    @_abort_with_traceback
    def Check(self, request, context):
        _require_password(request)
        inputs, failures = check_password(to_dict(request.news))
        return provider_pb2.CheckResponse(
            inputs=to_struct(inputs),
            failures=[provider_pb2.CheckFailure(property=p, reason=r) for p, r in failures],
        )

    @_abort_with_traceback
    def Diff(self, request, context):
        _require_password(request)
        news = to_dict(request.news)
        olds = to_dict(request.old_inputs) if request.HasField("old_inputs") else {}
        if not olds:
            olds = {k: v for k, v in to_dict(request.olds).items() if k not in OUTPUT_ONLY_KEYS}
        ignored = {path.split(".")[0].split("[")[0] for path in request.ignoreChanges}

        changed = []
        for key in INPUT_KEYS:
            if key in ignored:
                continue
            new = news.get(key)
            if contains_unknown(new) or normalized(olds, key) != normalized(news, key):
                changed.append(key)

        if not changed:
            return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)

        detailed = {}
        for key in changed:
            if olds.get(key) is None:
                kind = provider_pb2.PropertyDiff.ADD_REPLACE
            elif news.get(key) is None:
                kind = provider_pb2.PropertyDiff.DELETE_REPLACE
            else:
                kind = provider_pb2.PropertyDiff.UPDATE_REPLACE
            detailed[key] = provider_pb2.PropertyDiff(kind=kind, inputDiff=True)
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME,
            replaces=changed,
            diffs=changed,
            deleteBeforeReplace=False,
            detailedDiff=detailed,
            hasDetailedDiff=True,
        )

    @_abort_with_traceback
    def Create(self, request, context):
        _require_password(request)
        props = to_dict(request.properties)
        if request.preview:
            # Leave `result` out: the engine and SDK then treat it as unknown until the real create. (An empty id is
            # what the engine expects from a preview create.)
            outputs = {k: v for k, v in props.items() if k not in OUTPUT_ONLY_KEYS}
            return provider_pb2.CreateResponse(id="", properties=to_struct(outputs))
        outputs = dict(props)
        outputs["result"] = wrap_secret(generate_password(props))
        return provider_pb2.CreateResponse(id=NONE_ID, properties=to_struct(outputs))

    @_abort_with_traceback
    def Read(self, request, context):
        # Nothing lives outside the state: refresh returns it unchanged (upstream's Read is a no-op too).
        props = request.properties if request.properties.fields else request.inputs
        response = provider_pb2.ReadResponse(id=request.id or NONE_ID, properties=props)
        if request.HasField("inputs"):
            response.inputs.CopyFrom(request.inputs)
        return response

    @_abort_with_traceback
    def Update(self, request, context):
        # Unreachable in practice (every input change replaces); keep the generated result if it ever happens.
        outputs = to_dict(request.news)
        for key in OUTPUT_ONLY_KEYS:
            old = to_dict(request.olds).get(key)
            if old is not None:
                outputs[key] = old
        return provider_pb2.UpdateResponse(properties=to_struct(outputs))

    def Delete(self, request, context):
        return empty_pb2.Empty()


# ---------------------------------------------------------------------------------------------------------------------


def serve(address: str = "127.0.0.1:0") -> tuple[grpc.Server, int]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[
            ("grpc.max_receive_message_length", 400 * 1024 * 1024),
            ("grpc.max_send_message_length", 400 * 1024 * 1024),
        ],
    )
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(RandomStandInProvider(), server)
    port = server.add_insecure_port(address)
    server.start()
    return server, port


def main(argv: list[str]) -> None:
    # argv: [flags...] <engine address>. The stand-in needs nothing from the engine, so all of it is ignored.
    del argv
    server, port = serve()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    # The engine stops a plugin with SIGINT to its process group, then SIGKILL after 5 s. Handle SIGINT explicitly:
    # a SIG_IGN inherited from a backgrounded shell would otherwise turn every shutdown into that 5 s wait.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.stop(0)


if __name__ == "__main__":
    main(sys.argv[1:])
