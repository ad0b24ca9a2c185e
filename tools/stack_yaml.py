"""Stack files read as the Pulumi CLI reads them, so the offline preview sees exactly the config `pulumi up` sees.

The CLI decodes Pulumi.<stack>.yaml with gopkg.in/yaml.v3 and keeps each config value in its own object model
(pulumi sdk/v3 go/common/resource/config/object.go). PyYAML follows YAML 1.1 instead, and the two disagree on
ordinary stack files:

| written              | PyYAML                 | the CLI (what the program receives)              |
|----------------------|------------------------|--------------------------------------------------|
| `on`, `no`, `yes`    | booleans               | the strings "on", "no", "yes"                    |
| `2026-11-30`         | a datetime.date        | "2026-11-30 00:00:00 +0000 UTC" (Go's time.String) |
| `1e3`, `0o17`        | strings                | 1000, 15                                         |
| `1:30`               | 90 (sexagesimal)       | "1:30"                                           |
| a key written twice  | the last one wins      | refused: "mapping key ... already defined at line N" |
| `.inf`, `.nan`       | floats                 | refused: the CLI cannot write them as JSON       |
| an alias bomb        | expands until memory runs out | refused: "document contains excessive aliasing" |

This module reproduces yaml.v3's scalar resolution (resolve.go), its duplicate-key and aliasing checks
(decode.go) and the CLI's conversion of what it decoded (times to Go's time.String(), non-string map keys to
Go's %v). It composes the YAML with PyYAML (so PyYAML's syntax errors still apply) and decodes the node tree
itself. Times are formatted as on a machine whose local time zone is UTC (CI machines are).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_PLAIN = "!plain"  # a plain (unquoted, untagged) scalar: resolved below the way yaml.v3 resolves it

# yaml.v3's alias guard (decode.go allowedAliasRatio): documents this small may be made of aliases up to 99%.
_ALIAS_RATIO_LOW, _ALIAS_RATIO_HIGH = 400_000, 4_000_000


class StackYamlError(ValueError):
    """A stack file the CLI would refuse to read; the message names the file (and the line where there is one)."""


class _Loader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """Composes nodes only; plain scalars keep a marker tag so that the decoder resolves them as yaml.v3 does."""

    def resolve(self, kind, value, implicit):  # noqa: D102 - PyYAML's hook
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)


_MERGE = object()
_RESOLVE_MAP: dict[str, Any] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    "<<": _MERGE,
}
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# Go's strconv.ParseInt/ParseUint with base 0 (underscores are already removed by yaml.v3).
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?:inf|infinity|nan)", re.I)
# yaml.v3's timestamp layouts: "2006-1-2T15:4:5.999999999Z07:00" (T or t), "2006-1-2 15:4:5.999999999", "2006-1-2".
_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?:(?P<t>[Tt])|(?P<space> ))(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})(?:[.,](?P<frac>[0-9]+))?"
    r"(?P<zone>Z|[-+][0-9]{2}:[0-9]{2})?)?"
)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), then ParseUint: the integer yaml.v3 reads, or None."""
    match = _GO_INT.fullmatch(text)
    if not match:
        return None
    sign, digits = match.groups()
    lowered = digits.lower()
    if lowered.startswith(("0x", "0o", "0b")):
        value = int(lowered[2:], {"x": 16, "o": 8, "b": 2}[lowered[1]])
    elif len(digits) > 1 and digits.startswith("0"):
        value = int(digits, 8)
    else:
        value = int(digits)
    if sign == "-":
        value = -value
    if _INT64[0] <= value <= _INT64[1] or (not sign and 0 <= value <= _UINT64_MAX):
        return value
    return None


def _go_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64) for the decimal forms yaml.v3 passes it; None where Go reports an error."""
    if not _GO_FLOAT.fullmatch(text):
        return None
    value = float(text)
    if math.isinf(value) and not re.search("inf", text, re.I):
        return None  # out of range: Go's ErrRange
    return value


def _timestamp(text: str) -> str | None:
    """The CLI's string for a value yaml.v3 reads as a time (Go's time.Time.String()), or None."""
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        return None
    parts = match.groupdict()
    if parts["t"] and parts["zone"] is None or parts["space"] and parts["zone"] is not None:
        return None  # the T layouts require a zone; the space layout has none
    try:
        moment = datetime.datetime(
            int(parts["y"]), int(parts["mo"]), int(parts["d"]), int(parts["h"] or 0), int(parts["mi"] or 0),
            int(parts["s"] or 0),
        )  # fmt: skip
    except ValueError:
        return None  # day out of range and the like: yaml.v3 reads the text as a string then
    if parts["h"] is not None and (int(parts["h"]) > 23 or int(parts["mi"]) > 59 or int(parts["s"]) > 59):
        return None
    nanos = (parts["frac"] or "")[:9].ljust(9, "0")
    text_out = moment.strftime("%Y-%m-%d %H:%M:%S")
    if int(nanos or 0):
        text_out += "." + nanos.rstrip("0")
    zone = parts["zone"]
    if zone in (None, "Z"):
        return f"{text_out} +0000 UTC"
    offset = zone.replace(":", "")
    # Go names a fixed offset that is not the local zone's by the offset itself; local is UTC here.
    return f"{text_out} {offset} {'UTC' if offset in ('+0000', '-0000') else offset}"


def resolve(text: str, tag: str = "") -> Any:
    """A scalar's value as yaml.v3 resolves it (resolve.go `resolve`), times already as the CLI's strings."""
    if tag in ("", _TAG + "int", _TAG + "float", _TAG + "bool", _TAG + "null", _TAG + "timestamp"):
        hint = text[:1]
        if text in _RESOLVE_MAP:
            return _RESOLVE_MAP[text]
        if hint == ".":
            value = _go_float(text)
            if value is not None:
                return value
        elif hint and (hint.isdigit() and hint.isascii() or hint in "+-"):
            stamp = _timestamp(text)
            if stamp is not None:
                return stamp
            plain = text.replace("_", "")
            integer = _go_int(plain)
            if integer is not None:
                return integer
            if _YAML_STYLE_FLOAT.fullmatch(plain):
                value = _go_float(plain)
                if value is not None:
                    return value
    return text


def go_float_json(value: float) -> str:
    """Go's encoding/json text of a float64 (what the CLI passes the program for a top-level number)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {'NaN' if math.isnan(value) else ('+Inf' if value > 0 else '-Inf')}")
    if value != 0 and (abs(value) < 1e-6 or abs(value) >= 1e21):
        text = repr(value)  # shortest digits, with an exponent: Go writes e+21 and e-7 (no leading zero)
        return re.sub(r"e([-+])0(\d)$", r"e\1\2", text)
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _go_key(value: Any) -> str:
    """A non-string map key as Pulumi writes it (fmt %v)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return {math.inf: "+Inf", -math.inf: "-Inf"}.get(value, "NaN")
        digits = repr(value)
        exponent = Decimal(digits).adjusted()
        if exponent < -4 or exponent >= 21:
            return re.sub(r"e([-+])(\d)$", r"e\g<1>0\2", digits)
        return go_float_json(value)
    return str(value)


class _Decoder:
    """Turns a composed node tree into values, as yaml.v3 decodes into `any` and Pulumi's config keeps them."""

    def __init__(self, name: str):
        self.name = name
        self.decode_count = 0
        self.alias_count = 0
        self.alias_depth = 0
        self.seen: set[int] = set()
        self.open: set[int] = set()
        self.duplicate_keys: list[str] = []  # all of them, as yaml.v3 reports them, once the document is decoded

    def fail(self, node: yaml.Node | None, message: str) -> StackYamlError:
        where = f" line {node.start_mark.line + 1}:" if node is not None else ""
        return StackYamlError(f"{self.name}:{where} {message}")

    def decode(self, node: yaml.Node) -> Any:
        # A node met a second time is an alias of it (the composer shares anchored nodes).
        alias = id(node) in self.seen
        if id(node) in self.open:
            raise self.fail(node, "an anchor's value contains an alias of itself")
        self.seen.add(id(node))
        self.alias_depth += alias
        try:
            return self._decode(node)
        finally:
            self.alias_depth -= alias

    def _count(self) -> None:
        self.decode_count += 1
        if self.alias_depth > 0:
            self.alias_count += 1
        ratio = 0.99
        if self.decode_count >= _ALIAS_RATIO_HIGH:
            ratio = 0.10
        elif self.decode_count > _ALIAS_RATIO_LOW:
            ratio = 0.99 - 0.89 * (self.decode_count - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)
        if self.alias_count > 100 and self.decode_count > 1000 and self.alias_count / self.decode_count > ratio:
            raise self.fail(
                None, "document contains excessive aliasing (the Pulumi CLI refuses it): write the values out"
            )

    def _decode(self, node: yaml.Node) -> Any:
        self._count()
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.decode(item) for item in node.value]
            return self.mapping(node)
        finally:
            self.open.discard(id(node))

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag == _PLAIN or tag == "!":
            return resolve(node.value)
        if tag == _TAG + "str":
            return node.value
        if tag == _TAG + "binary":
            try:
                return base64.b64decode("".join(node.value.split()), validate=True).decode("utf-8", "replace")
            except binascii.Error:
                raise self.fail(node, "!!binary value contains invalid base64 data") from None
        if tag.startswith(_TAG) and tag[len(_TAG) :] in ("int", "float", "bool", "null", "timestamp"):
            value = resolve(node.value, tag)
            wanted = tag[len(_TAG) :]
            kinds = {"int": int, "float": (int, float), "bool": bool, "null": type(None), "timestamp": str}
            if wanted == "int" and isinstance(value, bool) or not isinstance(value, kinds[wanted]):
                raise self.fail(node, f"cannot decode `{node.value}` as a !!{wanted}")
            return float(value) if wanted == "float" else value
        return node.value  # a tag yaml.v3 does not resolve: the text

    def mapping(self, node: yaml.MappingNode) -> dict[str, Any]:
        if self.duplicates(node):
            return {}
        # Keyed by type and value, as a Go map[any]any is: True and 1 are two keys there, one in a Python dict.
        result: dict[tuple[str, Any], tuple[Any, Any]] = {}
        merge: yaml.Node | None = None
        for key_node, value_node in node.value:
            if self.is_merge(key_node):
                merge = value_node
                continue
            key = self.decode(key_node)
            if isinstance(key, (dict, list)):
                raise self.fail(key_node, "invalid map key: a mapping or a list cannot be a key")
            result[(type(key).__name__, key)] = (key, self.decode(value_node))
        if merge is not None:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise self.fail(merge, "map merge requires map or sequence of maps as the value")
                for key, value in self.decode(source).items():
                    result.setdefault(("str", key), (key, value))  # explicit keys win, then the first merged map
        return {key if isinstance(key, str) else _go_key(key): value for key, value in result.values()}

    def duplicates(self, node: yaml.MappingNode) -> bool:
        """Records every key written twice in this mapping (yaml.v3 compares the keys' text); True if any."""
        first: dict[str, yaml.Node] = {}
        found = False
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            earlier = first.setdefault(key_node.value, key_node)
            if earlier is not key_node:
                found = True
                self.duplicate_keys.append(
                    f"line {key_node.start_mark.line + 1}: mapping key {key_node.value!r} already defined at line "
                    f"{earlier.start_mark.line + 1}"
                )
        return found

    @staticmethod
    def is_merge(node: yaml.Node) -> bool:
        return (
            isinstance(node, yaml.ScalarNode) and node.value == "<<" and node.tag in (_PLAIN, "!", _TAG + "merge")
        )


def loads(text: str | bytes, name: str) -> Any:
    """The first document of `text` as the CLI decodes it; StackYamlError (naming `name`) where the CLI refuses it."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise StackYamlError(
                f"{name}: not UTF-8 (byte {error.start}: {error.object[error.start:error.start + 1]!r}); "
                "save the file as UTF-8"
            ) from None
    try:
        loader = _Loader(text)
        try:
            node = loader.get_node() if loader.check_node() else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        raise StackYamlError(f"{name}:{where} not valid YAML: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise StackYamlError(f"{name}: not valid YAML: {error}") from None
    if node is None:
        return None
    decoder = _Decoder(name)
    document = decoder.decode(node)
    if decoder.duplicate_keys:
        raise StackYamlError(
            f"{name}: " + "; ".join(decoder.duplicate_keys) + " (the Pulumi CLI refuses a key written twice: keep one)"
        )
    return document


def load(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise StackYamlError(f"{path.name}: cannot read it ({error.strerror})") from None
    return loads(data, path.name)


def config_string(value: Any) -> tuple[str, bool]:
    """A decoded config value as the CLI hands it to the program: its text, and whether that text is JSON."""
    if value is None:
        return "", False  # the CLI warns and passes an empty string
    if isinstance(value, str):
        return value, False
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    if isinstance(value, int):
        return str(value), False
    if isinstance(value, float):
        return go_float_json(value), False
    return json.dumps(_as_the_program_gets_them(value), ensure_ascii=False, separators=(",", ":")), True


def _as_the_program_gets_them(value: Any) -> Any:
    """Numbers inside a structured value as the program receives them: the CLI keeps them as JSON numbers that it
    reads back as int64 or else float64, Go writes an integral float64 below 1e21 without a fraction, and it cannot
    write NaN or an infinity at all (go_float_json raises, as the CLI refuses the file)."""
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
        value = float(value)
    if isinstance(value, float):
        text = go_float_json(value)
        if value.is_integer() and abs(value) < 1e21:
            return int(text)  # Go's shortest digits: 1.2345678901234567e19 is 12345678901234567000
    if isinstance(value, dict):
        return {key: _as_the_program_gets_them(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_the_program_gets_them(item) for item in value]
    return value
