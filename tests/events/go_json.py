"""JSON text as Go's encoding/json writes it: `json.Marshal` of strings and values, `json.Compact`.

Argo Events builds the event data with `json.Marshal` (webhook `start.go` HandleRoute), and a
`json.RawMessage` inside it is compacted with HTML escaping (`encode.go` marshalerEncoder calls
`appendCompact(..., escapeHTML=true)`). gjson then reads that text, so raw substrings (what a
`type: string` filter sees for an object) depend on these exact bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tests.events.unsupported import Unsupported

# encode.go appendString with escapeHTML: <, > and & become \u003c, \u003e, \u0026 so that the
# JSON can be embedded in HTML; U+2028 and U+2029 are escaped for JavaScript.
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                 "\u2028": "\\u2028", "\u2029": "\\u2029"}
# Go >= 1.22 writes \b and \f short (argo-events v1.9.11 builds with go 1.26, go.mod).
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                  "\b": "\\b", "\f": "\\f"}


class InvalidJSON(ValueError):
    """Text Go's scanner rejects (json.Marshal of a RawMessage fails with it)."""


def encode_string(text: str) -> str:
    """A JSON string literal as `json.Marshal(string)` writes it."""
    out = ['"']
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch in _HTML_ESCAPES:
            out.append(_HTML_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":
            # Go strings hold UTF-8; a lone surrogate cannot come from a Go program's string.
            raise Unsupported(f"lone surrogate U+{ord(ch):04X} in a string")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def encode(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON for a decoded value, as json.Marshal writes it.

    Go sorts the keys of a map (`sort_keys=True`, e.g. an unstructured Kubernetes object) but
    keeps a struct's field order; without `sort_keys` the mapping's own order is kept, so pass
    a lakeFS EventInfo body in struct order.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return encode_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        keys = list(value)
        if not all(isinstance(key, str) for key in keys):
            raise Unsupported(f"non-string object key in {keys!r}")
        if sort_keys:
            keys.sort(key=lambda key: key.encode())  # Go compares keys as byte strings
        items = [encode_string(key) + ":" + encode(value[key], sort_keys=sort_keys)
                 for key in keys]
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(item, sort_keys=sort_keys) for item in value) + "]"
    # float formatting (encode.go floatEncoder: 'f' or 'e' by magnitude) is not modelled
    raise Unsupported(f"encoding a {type(value).__name__} as Go would")


def _reject_constant(name: str) -> Any:
    raise InvalidJSON(f"invalid character in literal {name}")


def validate(text: str) -> Any:
    """Decode `text` as Go's scanner would accept it (no NaN/Infinity); InvalidJSON otherwise."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise InvalidJSON(str(err)) from err


def compact(text: str) -> str:
    """`json.Compact` with HTML escaping, as Marshal applies it to a json.RawMessage."""
    validate(text)
    out: list[str] = []
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            out.append(_HTML_ESCAPES.get(ch, ch))
        elif ch in " \t\r\n":
            continue
        else:
            if ch == '"':
                in_string = True
            out.append(ch)
    return "".join(out)
