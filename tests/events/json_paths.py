"""gjson lookups in JSON text, sjson assignments into a decoded document: plain paths only.

Argo Events reads filter paths and `dataKey`s with tidwall/gjson v1.19.0 and writes parameter
`dest`s with tidwall/sjson v1.2.5 (argo-events v1.9.11 go.mod). Modelled: dotted keys, `\\`
escapes (`dsc\\.example\\.io/x`), numeric array indices, sjson's creation of missing objects and
arrays. Anything else gjson/sjson give a meaning to (`#`, `*`, `?`, `|`, `@modifiers`, `!`,
`[`/`{` multipaths, `..`, sjson's `:` and `-1`... where it is not plain) raises Unsupported.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.events.unsupported import Unsupported

GJSON_TYPES = ("Null", "False", "Number", "String", "True", "JSON")  # gjson Type.String()


class SjsonError(ValueError):
    """An error sjson.SetBytes returns (ApplyParams passes it up and the trigger fails)."""


@dataclass(frozen=True, slots=True)
class Component:
    """One path component: the key with escapes removed, and whether it had any."""

    key: str
    escaped: bool


# --- paths ---------------------------------------------------------------------------------------

def gjson_components(path: str) -> list[Component]:
    """Split a gjson path (gjson.go parseObjectPath), refusing what is not a plain path."""
    if path == "":
        raise Unsupported("an empty gjson path")
    if len(path) > 1 and path[0] in "@!":
        raise Unsupported(f"gjson modifier or literal in path {path!r}")
    if path[0] in "[{" or path.startswith(".."):
        raise Unsupported(f"gjson multipath or JSON-lines path {path!r}")
    return _split(path, special="|#*?", what="gjson")


def sjson_components(path: str) -> list[Component]:
    """Split an sjson path (sjson.go parsePath), refusing its complex (non-simple) paths."""
    if path == "":
        raise SjsonError("path cannot be empty")
    if path[0] == ":":
        raise Unsupported(f"sjson forced-key path {path!r}")
    return _split(path, special="|#@*?", what="sjson")


def _split(path: str, *, special: str, what: str) -> list[Component]:
    components: list[Component] = []
    part: list[str] = []
    escaped = False
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "\\":
            if i + 1 == len(path):
                raise Unsupported(f"{what} path ends in a backslash: {path!r}")
            part.append(path[i + 1])
            escaped = True
            i += 2
            continue
        if ch == ".":
            components.append(_component(part, escaped, path, what))
            part, escaped = [], False
            if i + 1 < len(path) and path[i + 1] in "@[{":
                # gjson isDotPiperChar: ".@mod", ".[", ".{" start a piped sub-path
                raise Unsupported(f"{what} piped sub-path in {path!r}")
            i += 1
            continue
        if ch in special:
            raise Unsupported(f"{what} path syntax {ch!r} in {path!r}")
        part.append(ch)
        i += 1
    components.append(_component(part, escaped, path, what))
    return components


def _component(part: list[str], escaped: bool, path: str, what: str) -> Component:
    if not part:
        raise Unsupported(f"empty component in {what} path {path!r}")
    return Component("".join(part), escaped)


def _index(component: Component) -> int | None:
    """The array index gjson/sjson read from a component (parseUint / atoui: ASCII digits)."""
    key = component.key
    if key and all("0" <= c <= "9" for c in key):
        if component.escaped:
            # gjson's array path does not unescape; the model does not follow that corner
            raise Unsupported(f"escaped array index {key!r}")
        return int(key)
    return None


# --- gjson over text -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GjsonResult:
    """What gjson.Get returns: `type` is gjson's Type.String() ("" when the path is missing)."""

    type: str
    raw: str

    @property
    def exists(self) -> bool:
        return self.type != ""

    def value(self) -> Any:
        """Result.Value(): the decoded JSON (numbers as Python int/float, not float64)."""
        return json.loads(self.raw) if self.exists else None

    def string(self) -> str:
        """Result.String(): strings unquoted, objects/arrays raw, numbers raw when integral."""
        if self.type in ("", "Null"):
            return ""
        if self.type == "String":
            return str(json.loads(self.raw))
        if self.type in ("True", "False"):
            return self.type.lower()
        if self.type == "Number":
            digits = self.raw[1:] if self.raw.startswith("-") else self.raw
            if digits and all("0" <= c <= "9" for c in digits):
                return self.raw
            return format_float_f(float(self.raw))
        return self.raw

    def bool(self) -> bool:
        """Result.Bool()."""
        if self.type == "True":
            return True
        if self.type == "String":
            parsed = parse_go_bool(str(json.loads(self.raw)))
            return bool(parsed)
        if self.type == "Number":
            return float(self.raw) != 0
        return False

    def float(self) -> float:
        """Result.Float()."""
        if self.type == "True":
            return 1.0
        if self.type == "Number":
            return float(self.raw)
        if self.type == "String":
            parsed = parse_go_float(str(json.loads(self.raw)))
            return 0.0 if parsed is None else parsed
        return 0.0


def gjson_get(text: str, path: str) -> GjsonResult:
    """gjson.Get(text, path) for a plain path; `text` must be valid JSON."""
    start = _skip_ws(text, 0)
    end = _value_end(text, start)
    for component in gjson_components(path):
        span = _child(text, start, component)
        if span is None:
            return GjsonResult("", "")
        start, end = span
    raw = text[start:end]
    return GjsonResult(_type_of(raw), raw)


def _type_of(raw: str) -> str:
    first = raw[0]
    if first == '"':
        return "String"
    if first in "{[":
        return "JSON"
    return {"t": "True", "f": "False", "n": "Null"}.get(first, "Number")


def _child(text: str, start: int, component: Component) -> tuple[int, int] | None:
    if text[start] == "{":
        for key, value_start, value_end in _object_items(text, start):
            if key == component.key:  # gjson takes the first of duplicate keys
                return value_start, value_end
        return None
    if text[start] == "[":
        index = _index(component)
        if index is None:
            return None
        for position, (value_start, value_end) in enumerate(_array_items(text, start)):
            if position == index:
                return value_start, value_end
        return None
    return None


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _string_end(text: str, i: int) -> int:
    i += 1
    while text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _value_end(text: str, i: int) -> int:
    ch = text[i]
    if ch == '"':
        return _string_end(text, i)
    if ch in "{[":
        closing = "}" if ch == "{" else "]"
        i = _skip_ws(text, i + 1)
        if text[i] == closing:
            return i + 1
        while True:
            if ch == "{":
                i = _skip_ws(text, _string_end(text, i))
                i = _skip_ws(text, i + 1)  # the colon
            i = _skip_ws(text, _value_end(text, i))
            if text[i] == closing:
                return i + 1
            i = _skip_ws(text, i + 1)  # the comma
    while i < len(text) and text[i] not in ",}] \t\r\n":
        i += 1
    return i


def _object_items(text: str, i: int) -> list[tuple[str, int, int]]:
    items = []
    i = _skip_ws(text, i + 1)
    while text[i] != "}":
        key_end = _string_end(text, i)
        key = str(json.loads(text[i:key_end]))
        value_start = _skip_ws(text, _skip_ws(text, key_end) + 1)
        value_end = _value_end(text, value_start)
        items.append((key, value_start, value_end))
        i = _skip_ws(text, value_end)
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    return items


def _array_items(text: str, i: int) -> list[tuple[int, int]]:
    items = []
    i = _skip_ws(text, i + 1)
    while text[i] != "]":
        value_end = _value_end(text, i)
        items.append((i, value_end))
        i = _skip_ws(text, value_end)
        if text[i] == ",":
            i = _skip_ws(text, i + 1)
    return items


# --- Go number and bool parsing ------------------------------------------------------------------

_GO_FLOAT_ODD = ("inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan")


def parse_go_bool(text: str) -> bool | None:
    """strconv.ParseBool; None where Go returns an error."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


def parse_go_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64) for decimal text; None where Go returns an error."""
    stripped = text.lstrip("+-")
    if text.lower() in _GO_FLOAT_ODD or "_" in text or stripped[:2].lower() in ("0x", "0b", "0o"):
        raise Unsupported(f"strconv.ParseFloat of {text!r} (special values, bases, underscores)")
    if not stripped or not all(c in "0123456789.eE+-" for c in stripped) or text != text.strip():
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    if number in (float("inf"), float("-inf")):
        raise Unsupported(f"strconv.ParseFloat of {text!r} is out of range (Go: ±Inf and an error)")
    return number


def format_float_f(number: float) -> str:
    """strconv.FormatFloat(number, 'f', -1, 64): shortest round-trip digits, no exponent."""
    text = format(Decimal(repr(number)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


# --- sjson into a decoded document ---------------------------------------------------------------

def sjson_set(document: Any, path: str, value: Any) -> Any:
    """sjson.SetBytes / SetRawBytes applied to a decoded document; returns the new document.

    `value` is the decoded JSON value sjson would write (a str for SetBytes with a string).
    """
    components = sjson_components(path)
    return _set(copy.deepcopy(document), components, value)


def _set(node: Any, components: list[Component], value: Any) -> Any:
    head, rest = components[0], components[1:]
    if isinstance(node, dict) and head.key in node:
        node[head.key] = _set(node[head.key], rest, value) if rest else value
        return node
    index = _index(head)
    if isinstance(node, list) and index is not None and index < len(node):
        node[index] = _set(node[index], rest, value) if rest else value
        return node
    if not isinstance(node, dict | list):
        # appendRawPaths: a scalar in the way is replaced by [] or {} by the key's kind
        node = [] if index is not None else {}
    if isinstance(node, dict):
        node[head.key] = _build(rest, value)
        return node
    if index is None:
        if head.key == "-1" and not head.escaped:
            node.append(_build(rest, value))
            return node
        raise SjsonError(f"cannot set array element for non-numeric key '{head.key}'")
    node.extend([None] * (index - len(node)))
    node.append(_build(rest, value))
    return node


def _build(components: list[Component], value: Any) -> Any:
    """appendBuild: the missing tail of a path becomes nested objects, or arrays for indices."""
    if not components:
        return value
    head, rest = components[0], components[1:]
    index = _index(head)
    if index is not None or (head.key == "-1" and not head.escaped):
        return [None] * (index or 0) + [_build(rest, value)]
    return {head.key: _build(rest, value)}
