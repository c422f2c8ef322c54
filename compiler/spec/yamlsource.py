"""YAML spec files: libyaml composes the nodes, we build the values with positions.

Why our own constructor rather than `yaml.safe_load`: it keeps every node's mark, refuses
duplicate keys (PyYAML silently keeps the last), bounds alias expansion (a "billion laughs"
file must fail fast, not eat the machine), and resolves plain scalars by the YAML 1.2 core
schema as Pachyderm 2.x's go-yaml v3 does, so `branch: on` stays a string and an unquoted
RFC3339 `start:` is not turned into a datetime.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import yaml

from compiler.spec.source import Entry, JsonPath, LineIndex, LoadError, canonical_key

# A spec has hundreds of values; this many means aliases are multiplying them.
MAX_VALUES = 100_000
MAX_DEPTH = 64

_PLAIN = "tag:dsc,2024:plain"
_Y = "tag:yaml.org,2002:"
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT10 = re.compile(r"[-+]?[0-9]+")
_INT8 = re.compile(r"0o[0-7]+")
_INT16 = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")


class _Resolver(yaml.resolver.BaseResolver):
    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


# libyaml's parser (yaml.cyaml, not re-exported by `yaml`) is ~10x faster than the pure one.
_Parser: Any = getattr(getattr(yaml, "cyaml", None), "CParser", None)
if _Parser is None:  # pragma: no cover

    class _PurePython(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,
                      yaml.composer.Composer):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)

    _Parser = _PurePython


class _Composer(_Parser, _Resolver):  # type: ignore[misc]
    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        _Resolver.__init__(self)


def compose_documents(
        text: str) -> Iterator[tuple[Any, dict[JsonPath, Entry], tuple[int, int], bool, bool]]:
    """Yield (value, position index, start position, whether every field name is snake_case
    already, whether any value is null) for each YAML document in `text`."""
    try:
        composer = _Composer(text)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from None
    try:
        while True:
            try:
                if not composer.check_node():
                    return
                node = composer.get_node()
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                problem = exc.problem or exc.context or "invalid YAML"
                raise _error(problem, line, col) from None
            except yaml.reader.ReaderError as exc:
                raise _reader_error(text, exc) from None
            except yaml.YAMLError as exc:
                raise _error(str(exc).splitlines()[0], 1, 1) from None
            if node is None:
                continue
            builder = _Builder()
            value = builder.build(node, (), None, 0)
            yield value, builder.index, (node.start_mark.line + 1, node.start_mark.column + 1), (
                not builder.renamed), builder.nulls
    finally:
        dispose = getattr(composer, "dispose", None)
        if dispose:
            dispose()


class _Builder:
    __slots__ = ("count", "index", "nulls", "renamed")

    def __init__(self) -> None:
        self.index: dict[JsonPath, Entry] = {}
        self.count = 0
        self.renamed = False  # a field name not in snake_case
        self.nulls = False  # a null value (`key:`, `~`, `null`)

    def build(self, node: Any, path: JsonPath, key_node: Any, depth: int,
              explicit: bool = True) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise _error(
                f"document expands to more than {MAX_VALUES:,} values (YAML aliases "
                "multiplying a structure?)", *_pos(node), "yaml-expansion")
        if depth > MAX_DEPTH:
            raise _error(f"nesting deeper than {MAX_DEPTH} levels", *_pos(node), "too-deep")
        # Explicit keys win over merged (`<<`) ones, and the last spelling of a field over
        # earlier ones: that is the one a duplicate-field error is about.
        if explicit or path not in self.index:
            self.index[path] = (*_pos(key_node if key_node is not None else node), *_pos(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth, explicit)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _Y + "seq":
                raise _tag_error(node)
            return [self.build(item, (*path, i), None, depth + 1, explicit)
                    for i, item in enumerate(node.value)]
        value = _scalar(node)
        if value is None:
            self.nulls = True
        return value

    def _mapping(self, node: Any, path: JsonPath, depth: int, explicit: bool) -> dict[str, Any]:
        if node.tag != _Y + "map":
            raise _tag_error(node)
        pairs = []
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _error("a field name must be a plain string, not a list or mapping",
                             *_pos(key_node), "wrong-type")
            if key_node.tag != _PLAIN or key_node.value != "<<":
                pairs.append((key_node, value_node))
                continue
            # `<<` merge keys (go-yaml v3 supports them), built first so explicit keys win.
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [
                value_node]
            for sub in sources:
                if not isinstance(sub, yaml.MappingNode):
                    raise _error("'<<' must merge a mapping or a list of mappings", *_pos(sub),
                                 "wrong-type")
                for key, value in self._mapping(sub, path, depth, False).items():
                    merged.setdefault(key, value)
        out: dict[str, Any] = {}
        for key_node, value_node in pairs:
            key = _scalar(key_node)
            if not isinstance(key, str):
                # go-yaml would make this a non-string key, which protojson refuses
                key = key_node.value
            if key in out:
                raise _error(f"duplicate field {key!r}", *_pos(key_node), "duplicate-key")
            canonical = canonical_key(key)
            if canonical != key:
                self.renamed = True
            out[key] = self.build(value_node, (*path, canonical), key_node, depth + 1, explicit)
        for key, value in merged.items():
            out.setdefault(key, value)
        return out


def _error(message: str, line: int, col: int, code: str = "syntax") -> LoadError:
    return LoadError(message, code, line, col)


def _reader_error(text: str, exc: yaml.reader.ReaderError) -> LoadError:
    line, col = LineIndex.position_in(text, max(0, min(exc.position, len(text))))
    return _error(f"character U+{exc.character:04X} is not allowed in YAML"
                  if isinstance(exc.character, int) else "invalid character", line, col)


def _pos(node: Any) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _tag_error(node: Any) -> LoadError:
    return _error(f"unsupported YAML tag {node.tag!r}", *_pos(node), "yaml-tag")


# How a plain null, bool, int, float, inf or nan can start; any other plain scalar is a string.
_NOT_STR_START = frozenset("~nNtTfF0123456789+-.")


def _scalar(node: Any) -> Any:
    tag, text = node.tag, node.value
    if tag == _PLAIN:
        if text[:1] not in _NOT_STR_START and text:
            return text
        if _NULL.fullmatch(text):
            return None
        if text in _BOOL:
            return _BOOL[text]
        if _INT10.fullmatch(text):
            return int(text)
        if _INT8.fullmatch(text):
            return int(text[2:], 8)
        if _INT16.fullmatch(text):
            return int(text[2:], 16)
        if _FLOAT.fullmatch(text):
            return float(text)
        if _INF.fullmatch(text):
            return -math.inf if text.startswith("-") else math.inf
        if _NAN.fullmatch(text):
            return math.nan
        return text
    if tag in (_Y + "str", "!"):
        return text
    if tag == _Y + "int" and _INT10.fullmatch(text):
        return int(text)
    if tag == _Y + "float" and _FLOAT.fullmatch(text):
        return float(text)
    if tag == _Y + "bool" and text in _BOOL:
        return _BOOL[text]
    if tag == _Y + "null" and _NULL.fullmatch(text):
        return None
    raise _tag_error(node)
