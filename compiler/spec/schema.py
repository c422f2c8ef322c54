"""Check a spec against schemas/pipeline.schema.json, with messages a data scientist reads.

Why not `jsonschema` at run time: importing it costs ~110 ms cold (referencing, rpds, attrs),
and `dsc lint` must start in about 0.1 s as a pre-commit hook. Our schema uses a small keyword
subset (`SUPPORTED_KEYWORDS`); this evaluator implements exactly that subset, refuses a schema
that strays outside it, and the test suite checks it against `jsonschema` on the whole corpus
and on generated mutations (tests/unit/test_schema_oracle.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from compiler.spec.source import JsonPath

SUPPORTED_KEYWORDS = frozenset({
    "$schema", "$id", "$defs", "$ref", "$comment", "title", "description",
    "markdownDescription", "default", "examples", "deprecated",
    "type", "enum", "const", "properties", "patternProperties", "additionalProperties",
    "required", "items", "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum",
    "pattern", "anyOf", "minProperties",
})

_TYPE_NAMES = {
    "string": "a string", "integer": "an integer", "number": "a number",
    "boolean": "true or false", "array": "a list", "object": "a mapping", "null": "null",
}
# Patterns the schema uses for proto-JSON numbers written as strings, in words.
_PATTERN_WORDS = {
    "^[0-9]+$": "a whole number",
    "^-?[0-9]+$": "a whole number",
}


@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """What a spec breaks of the schema, where (a JSON path), in words."""

    path: JsonPath
    code: str
    message: str
    at_key: bool = False


def schema_path(name: str) -> Path:
    """The shipped schema file: inside the wheel, or `schemas/` of a source checkout."""
    packaged = Path(__file__).resolve().parent.parent / "schemas" / name
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "schemas" / name


@cache
def load_schema(name: str = "pipeline.schema.json") -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return schema


def unsupported_keywords(schema: Any) -> set[str]:
    """Keywords in `schema` this evaluator does not implement (a test keeps this empty)."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key not in SUPPORTED_KEYWORDS:
                    found.add(key)
                if key in ("properties", "patternProperties", "$defs"):
                    stack.extend(value.values())
                elif key not in ("enum", "const", "default", "examples"):
                    stack.append(value)
    return found


_MISSING = object()


class _Node:
    """One schema object, read once: only the keywords it has, $refs resolved, regexes
    compiled. Evaluating a spec then costs attribute reads, not a dozen dict lookups per
    value (the evaluator is a fifth of lint's time per file)."""

    __slots__ = ("accepts", "additional", "any_of", "const", "enum", "items", "max_items",
                 "max_length", "maximum", "min_items", "min_length", "min_properties",
                 "minimum", "pattern", "pattern_properties", "properties", "ref", "required",
                 "target", "type_only", "types")

    def __init__(self) -> None:
        self.ref: _Node | None = None
        self.types: tuple[str, ...] | None = None
        self.accepts: frozenset[str] = frozenset()  # types, with "integer" when "number"
        self.any_of: tuple[_Node, ...] = ()
        self.const: Any = _MISSING
        self.enum: tuple[Any, ...] | None = None
        self.pattern: tuple[re.Pattern[str], str] | None = None
        self.min_length: int | None = None
        self.max_length: int | None = None
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.min_items: int | None = None
        self.max_items: int | None = None
        self.items: _Node | None = None
        self.min_properties: int | None = None
        self.required: tuple[str, ...] = ()
        self.properties: dict[str, _Node] = {}
        self.pattern_properties: tuple[tuple[re.Pattern[str], _Node], ...] = ()
        self.additional: _Node | bool = True
        # Shortcuts for the evaluator's hot path, set once every node is built: the node a
        # plain `$ref` node stands for, and, for a node that checks nothing but the type, the
        # type names it accepts (every one when it checks nothing at all).
        self.target: _Node = self
        self.type_only: frozenset[str] | None = None

    def _bare(self) -> bool:
        """No keyword but `type` and `$ref`."""
        return (not self.any_of and self.const is _MISSING and self.enum is None
                and self.pattern is None and self.min_length is None
                and self.max_length is None and self.minimum is None and self.maximum is None
                and self.min_items is None and self.max_items is None and self.items is None
                and self.min_properties is None and not self.required and not self.properties
                and not self.pattern_properties and self.additional is True)


class Validator:
    """Evaluates instances against one definition of a schema document."""

    def __init__(self, schema: dict[str, Any], ref: str = "#/$defs/pipeline") -> None:
        self.schema = schema
        self._nodes: dict[int, _Node] = {}
        self.root = self._node(self._resolve(ref))
        for node in self._nodes.values():
            target, seen = node, {id(node)}
            while (target.ref is not None and target.types is None and target._bare()
                   and id(target.ref) not in seen):
                target = target.ref
                seen.add(id(target))
            node.target = target
            if node.ref is None and node._bare():
                node.type_only = node.accepts if node.types is not None else _ALL_TYPES

    def _resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported $ref {ref!r}")
        target: dict[str, Any] = self.schema["$defs"][ref[len("#/$defs/"):]]
        return target

    def _node(self, schema: dict[str, Any]) -> _Node:
        node = self._nodes.get(id(schema))
        if node is not None:
            return node
        node = self._nodes[id(schema)] = _Node()  # registered first: $refs may recurse
        if "$ref" in schema:
            node.ref = self._node(self._resolve(schema["$ref"]))
        if "type" in schema:
            types = schema["type"]
            node.types = (types,) if isinstance(types, str) else tuple(types)
            node.accepts = frozenset(node.types) | (
                {"integer"} if "number" in node.types else set())
        node.any_of = tuple(self._node(b) for b in schema.get("anyOf", ()))
        node.const = schema.get("const", _MISSING)
        if "enum" in schema:
            node.enum = tuple(schema["enum"])
        if "pattern" in schema:
            node.pattern = (re.compile(schema["pattern"]), schema["pattern"])
        node.min_length = schema.get("minLength")
        node.max_length = schema.get("maxLength")
        node.minimum = schema.get("minimum")
        node.maximum = schema.get("maximum")
        node.min_items = schema.get("minItems")
        node.max_items = schema.get("maxItems")
        if isinstance(schema.get("items"), dict):
            node.items = self._node(schema["items"])
        node.min_properties = schema.get("minProperties")
        node.required = tuple(schema.get("required", ()))
        node.properties = {k: self._node(v) for k, v in schema.get("properties", {}).items()}
        node.pattern_properties = tuple((re.compile(k), self._node(v)) for k, v in schema.get(
            "patternProperties", {}).items())
        additional = schema.get("additionalProperties", True)
        node.additional = self._node(additional) if isinstance(additional, dict) else bool(
            additional)
        return node

    def violations(self, instance: Any, at: JsonPath = ()) -> list[SchemaViolation]:
        out: list[SchemaViolation] = []
        self._check(self.root, instance, at, out)
        return out

    def _check(self, node: _Node, value: Any, path: JsonPath,
               out: list[SchemaViolation]) -> None:
        node = node.target
        if node.type_only is not None and (
                _JSON_TYPES.get(type(value)) or _json_type(value)) in node.type_only:
            return
        if node.ref is not None:
            self._check(node.ref, value, path, out)
        if node.types is not None and _json_type(value) not in node.accepts:
            out.append(SchemaViolation(path, "wrong-type", (
                f"{_name(path)} must be {_either(list(node.types))}, not {_describe(value)}")))
            return
        if node.any_of:
            self._any_of(node.any_of, value, path, out)
        if node.const is not _MISSING and not _equal(value, node.const):
            out.append(SchemaViolation(path, "invalid-value",
                                       f"{_name(path)} must be {json.dumps(node.const)}"))
        if node.enum is not None and not any(_equal(value, e) for e in node.enum):
            choices = ", ".join(json.dumps(e) for e in node.enum)
            out.append(SchemaViolation(path, "invalid-value", (
                f"{_name(path)} must be one of {choices}, not {json.dumps(value)}")))
        if isinstance(value, str):
            self._string(node, value, path, out)
        elif isinstance(value, dict):
            self._object(node, value, path, out)
        elif isinstance(value, list):
            self._array(node, value, path, out)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if node.minimum is not None and value < node.minimum:
                out.append(SchemaViolation(path, "invalid-value",
                                           f"{_name(path)} must be at least {node.minimum}"))
            if node.maximum is not None and value > node.maximum:
                out.append(SchemaViolation(path, "invalid-value",
                                           f"{_name(path)} must be at most {node.maximum}"))

    def _string(self, node: _Node, value: str, path: JsonPath,
                out: list[SchemaViolation]) -> None:
        if node.pattern is not None and not node.pattern[0].search(value):
            words = _PATTERN_WORDS.get(node.pattern[1], f"text matching {node.pattern[1]}")
            out.append(SchemaViolation(path, "invalid-value",
                                       f"{_name(path)} must be {words}, not {json.dumps(value)}"))
        if node.min_length is not None and len(value) < node.min_length:
            out.append(SchemaViolation(path, "invalid-value", f"{_name(path)} must not be empty"
                                       if node.min_length == 1 else
                                       f"{_name(path)} must have at least "
                                       f"{node.min_length} characters"))
        if node.max_length is not None and len(value) > node.max_length:
            out.append(SchemaViolation(path, "invalid-value", (
                f"{_name(path)} must have at most {node.max_length} characters")))

    def _array(self, node: _Node, value: list[Any], path: JsonPath,
               out: list[SchemaViolation]) -> None:
        if node.min_items is not None and len(value) < node.min_items:
            out.append(SchemaViolation(path, "invalid-value", (
                f"{_name(path)} must have at least {node.min_items} "
                f"item{'s' if node.min_items != 1 else ''}")))
        if node.max_items is not None and len(value) > node.max_items:
            out.append(SchemaViolation(path, "invalid-value", (
                f"{_name(path)} must have at most {node.max_items} items")))
        items = node.items
        if items is not None:
            items = items.target
            accepted = items.type_only
            for i, item in enumerate(value):
                if accepted is None or (
                        _JSON_TYPES.get(type(item)) or _json_type(item)) not in accepted:
                    self._check(items, item, (*path, i), out)

    def _object(self, node: _Node, value: dict[str, Any], path: JsonPath,
                out: list[SchemaViolation]) -> None:
        if node.min_properties is not None and len(value) < node.min_properties:
            out.append(SchemaViolation(path, "invalid-value", f"{_name(path)} must not be empty"))
        for key in node.required:
            if key not in value:
                out.append(SchemaViolation(path, "missing-field", (
                    f"{_name(path)} is missing the required field `{key}`")))
        properties = node.properties
        for key, item in value.items():
            sub = properties.get(key)
            matched = sub is not None
            if sub is not None:
                sub = sub.target
                accepted = sub.type_only
                # A valid value of a node that only checks its type costs no call.
                if accepted is None or (
                        _JSON_TYPES.get(type(item)) or _json_type(item)) not in accepted:
                    self._check(sub, item, (*path, key), out)
            for pattern, pattern_node in node.pattern_properties:
                if pattern.search(key):
                    matched = True
                    self._check(pattern_node, item, (*path, key), out)
            if matched:
                continue
            if node.additional is False:
                out.append(SchemaViolation((*path, key), "unknown-field",
                                           _unknown(key, path, properties), at_key=True))
            elif isinstance(node.additional, _Node):
                self._check(node.additional, item, (*path, key), out)

    def _any_of(self, branches: tuple[_Node, ...], value: Any, path: JsonPath,
                out: list[SchemaViolation]) -> None:
        attempts: list[list[SchemaViolation]] = []
        for branch in branches:
            found: list[SchemaViolation] = []
            self._check(branch, value, path, found)
            if not found:
                return
            attempts.append(found)
        # Best match, as jsonschema's best_match does: a branch whose type fitted.
        fitted = [a for a in attempts if not _type_mismatch(a, path)]
        if fitted:
            out.extend(sorted(fitted, key=len)[0])
            return
        allowed: list[str] = []
        for branch in branches:
            for name in _branch_types(branch):
                if name not in allowed:
                    allowed.append(name)
        out.append(SchemaViolation(path, "wrong-type", (
            f"{_name(path)} must be {_either(allowed)}, not {_describe(value)}")))


def _branch_types(node: _Node) -> tuple[str, ...]:
    if node.ref is not None:
        return _branch_types(node.ref)
    return node.types or ()


def _type_mismatch(found: list[SchemaViolation], path: JsonPath) -> bool:
    return len(found) == 1 and found[0].code == "wrong-type" and found[0].path == path


_JSON_TYPES: dict[type, str] = {str: "string", dict: "object", list: "array",
                                bool: "boolean", type(None): "null", int: "integer"}
_ALL_TYPES = frozenset({*_JSON_TYPES.values(), "number", "unknown"})


def _json_type(value: Any) -> str:
    """The JSON Schema type of a loaded value; an integral float is an "integer" too."""
    name = _JSON_TYPES.get(type(value))
    if name is not None:
        return name
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    return "unknown"


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _either(types: list[str]) -> str:
    words = [_TYPE_NAMES.get(t, t) for t in types]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {json.dumps(shown)}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _name(path: JsonPath) -> str:
    """How a message names the value at `path`: `cross[1]`, `transform.cmd`, `the spec`."""
    if not path:
        return "the spec"
    parts: list[str] = []
    for part in path:
        if isinstance(part, int):
            if parts:
                parts[-1] += f"[{part}]"
            else:
                parts.append(f"[{part}]")
        else:
            parts.append(part)
    return "`" + ".".join(parts[-2:]) + "`"


def _unknown(key: str, path: JsonPath, properties: dict[str, Any]) -> str:
    from difflib import get_close_matches

    where = f" in {_name(path)}" if path else ""
    known = list(properties)
    lowered = {k.lower(): k for k in known}
    guess = get_close_matches(key, known, n=1, cutoff=0.6) or [
        lowered[g] for g in get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)]
    hint = f"; did you mean `{guess[0]}`?" if guess else ""
    return f"unknown field `{key}`{where}{hint}"
