"""JSON spec files: the C decoder for values, a small scanner for positions when needed."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from compiler.spec.source import Entry, JsonPath, LineIndex, canonical_key

_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\.)*"', re.DOTALL)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_LITERAL = re.compile(r"true|false|null")
_DOC_MARKER = re.compile(r"---[ \t]*(?:\r?\n|$)")

# Deeper than any real spec (the corpus peaks at 9); keeps every walk well inside Python's stack.
MAX_DEPTH = 64


class JsonSyntaxError(Exception):
    """Raised at an offset; decode_documents turns it into a located LoadError."""

    def __init__(self, message: str, offset: int, code: str = "syntax") -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.code = code


class _Refused(Exception):
    """The decoder met a duplicate key or a NaN/Infinity literal; the scanner says where."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Refused
    return out


def _no_constant(name: str) -> float:
    raise _Refused  # NaN/Infinity are not JSON; the scanner reports them with a position


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_no_constant)


def decode_documents(text: str) -> Iterator[tuple[Any, int, int]]:
    """Yield (value, start offset, end offset) for each top-level JSON value in `text`.

    A file may hold one object, an array of specs, or several concatenated objects (the 1.x
    `pachctl` format read by `jsonpb.UnmarshalNext` in a loop).
    """
    pos = _skip(text, 0)
    while pos < len(text):
        if text[pos] not in "{[":
            raise JsonSyntaxError("expected a JSON object or array of pipeline specs", pos)
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise JsonSyntaxError(_humane(exc.msg), exc.pos) from None
        except RecursionError:
            raise JsonSyntaxError(f"nesting deeper than {MAX_DEPTH} levels", pos,
                                  "too-deep") from None
        except _Refused:
            # Re-scan for the exact location of the duplicate key or the NaN literal.
            scan_positions(text, pos)
            raise AssertionError("scanner missed what the decoder refused") from None
        # Each level of nesting opens a bracket: with no more brackets than levels allowed
        # (nearly every spec), the walk over the value is not needed.
        if text.count("{", pos, end) + text.count("[", pos, end) > MAX_DEPTH and (
                _depth(value) > MAX_DEPTH):
            raise JsonSyntaxError(f"nesting deeper than {MAX_DEPTH} levels", pos, "too-deep")
        yield value, pos, end
        pos = _skip(text, end)


# A field name with a camelCase hump (what `canonical_key` renames always has one). Only a
# field name can be followed by a colon; escapes are ruled out before this is asked.
_HUMP_KEY = re.compile(r'[a-z0-9][A-Z][^"\\]*"[ \t\n\r]*:')


def snake_case_keys(text: str, start: int, end: int) -> bool:
    """True when no field name of the JSON value in text[start:end] needs renaming."""
    return text.find("\\", start, end) < 0 and not _HUMP_KEY.search(text, start, end)


def _ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def _skip(text: str, pos: int) -> int:
    """Skip whitespace and YAML `---` document markers: 2.x reads spec files with a YAML
    decoder, so Pachyderm's own examples separate JSON specs with `---` lines."""
    while True:
        pos = _ws(text, pos)
        m = _DOC_MARKER.match(text, pos)
        if not m:
            return pos
        pos = m.end()


def _humane(msg: str) -> str:
    if msg.startswith("Expecting property name enclosed in double quotes"):
        return "expected a field name in double quotes (a trailing comma?)"
    return msg[0].lower() + msg[1:] if msg else "invalid JSON"


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        nxt: list[Any] = []
        for v in level:
            if isinstance(v, dict):
                nxt.extend(v.values())
            elif isinstance(v, list):
                nxt.extend(v)
        level = nxt
        if depth > MAX_DEPTH + 1:
            break
    return depth - 1


# The C scanner JSONDecoder.raw_decode wraps, called directly: one Python call less for each
# sibling value skipped.
_SCAN_ONCE: Callable[[str, int], tuple[Any, int]] = (
    json.JSONDecoder().scan_once)  # type: ignore[attr-defined]


def _skip_value(text: str, pos: int) -> int:
    """The offset after the (valid) JSON value at `pos`."""
    return _SCAN_ONCE(text, pos)[1]


class JsonPositions:
    """The positions of the JSON value at `start` of `text`, each found when asked for."""

    __slots__ = ("start", "text")

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.start = start

    def get(self, path: JsonPath, /) -> Entry | None:
        return find_entry(self.text, self.start, path)


# A field name with the colon after it, and what follows a value inside an object or array.
_KEY = re.compile(r'"((?:[^"\\\x00-\x1f]|\\.)*)"[ \t\n\r]*:[ \t\n\r]*', re.DOTALL)
_NEXT = re.compile(r"[ \t\n\r]*(,[ \t\n\r]*)?")


def find_entry(text: str, start: int, path: JsonPath) -> Entry | None:
    """The entry of one path in the (already decoded, so valid) JSON value at `start`.

    Walks only the objects and arrays on the path; sibling values are skipped by the C
    decoder's scanner, so the cost is a few siblings per level, not the whole document.
    """
    pos = key_pos = _ws(text, start)
    escapes = text.find("\\", start) >= 0
    for part in path:
        ch = text[pos : pos + 1]
        if ch == "{" and isinstance(part, str):
            # The last of several spellings of one field wins: that is the one a
            # duplicate-field error is about.
            found: tuple[int, int] | None = None
            pos = _ws(text, pos + 1)
            while m := _KEY.match(text, pos):
                key = m.group(1)
                if "\\" in key:
                    key = json.loads(f'"{key}"')
                if canonical_key(key) == part:
                    found = (m.start(), m.end())
                    # Only `part` itself spells a name without "_" (and without escapes):
                    # if it is nowhere further on, no later key of this object is it.
                    if not escapes and "_" not in part and text.find(f'"{part}"', m.end()) < 0:
                        break
                after = _NEXT.match(text, _skip_value(text, m.end()))
                if after is None or after.group(1) is None:
                    break
                pos = after.end()
            if found is None:
                return None
            key_pos, pos = found
        elif ch == "[" and isinstance(part, int):
            pos = _ws(text, pos + 1)
            for _ in range(part):
                if text[pos : pos + 1] == "]":
                    return None
                after = _NEXT.match(text, _skip_value(text, pos))
                if after is None or after.group(1) is None:
                    return None
                pos = after.end()
            if text[pos : pos + 1] in ("]", ""):
                return None
            key_pos = pos
        else:
            return None
    return (*LineIndex.position_in(text, key_pos), *LineIndex.position_in(text, pos))


def scan_positions(text: str, start: int) -> dict[JsonPath, Entry]:
    """Map every path of the JSON value at `start` to its key and value positions.

    It also raises JsonSyntaxError with the offset of a duplicate key or a NaN/Infinity literal,
    which the C decoder refuses without saying where.
    """
    scanner = _Scanner(text)
    scanner.value(start, (), start, 0)
    return scanner.index


class _Scanner:
    __slots__ = ("index", "lines", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = LineIndex.of(text)
        self.index: dict[JsonPath, Entry] = {}

    def value(self, pos: int, path: JsonPath, key_pos: int, depth: int) -> int:
        """Scan the value at `pos` (whitespace allowed before it); return the offset after it."""
        if depth > MAX_DEPTH:
            raise JsonSyntaxError(f"nesting deeper than {MAX_DEPTH} levels", pos, "too-deep")
        text = self.text
        pos = _ws(text, pos)
        self.index[path] = (*self.lines.position(key_pos), *self.lines.position(pos))
        ch = text[pos : pos + 1]
        if ch == "{":
            seen: set[str] = set()
            pos = _ws(text, pos + 1)
            if text[pos : pos + 1] == "}":
                return pos + 1
            while True:
                m = _STRING.match(text, pos)
                if not m:
                    raise JsonSyntaxError("expected a field name in double quotes", pos)
                raw_key = m.group(0)
                key = json.loads(raw_key) if "\\" in raw_key else raw_key[1:-1]
                if key in seen:
                    raise JsonSyntaxError(f"duplicate field {key!r}", pos, "duplicate-key")
                seen.add(key)
                colon = _ws(text, m.end())
                pos = _ws(text, self.value(colon + 1, (*path, canonical_key(key)), pos, depth + 1))
                if text[pos : pos + 1] != ",":
                    return pos + 1  # "}"
                pos = _ws(text, pos + 1)
        if ch == "[":
            pos = _ws(text, pos + 1)
            if text[pos : pos + 1] == "]":
                return pos + 1
            i = 0
            while True:
                pos = _ws(text, self.value(pos, (*path, i), pos, depth + 1))
                if text[pos : pos + 1] != ",":
                    return pos + 1  # "]"
                pos = _ws(text, pos + 1)
                i += 1
        m = (_STRING if ch == '"' else _NUMBER).match(text, pos) or _LITERAL.match(text, pos)
        if not m:
            raise JsonSyntaxError("NaN and Infinity are not JSON numbers", pos)
        return m.end()
