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


class Validator:
    """Evaluates instances against one definition of a schema document."""

    def __init__(self, schema: dict[str, Any], ref: str = "#/$defs/pipeline") -> None:
        self.schema = schema
        self.root = self._resolve(ref)

    def _resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported $ref {ref!r}")
        target: dict[str, Any] = self.schema["$defs"][ref[len("#/$defs/"):]]
        return target

    def violations(self, instance: Any, at: JsonPath = ()) -> list[SchemaViolation]:
        out: list[SchemaViolation] = []
        self._check(self.root, instance, at, out)
        return out

    def _check(self, schema: dict[str, Any], value: Any, path: JsonPath,
               out: list[SchemaViolation]) -> None:
        ref = schema.get("$ref")
        if ref is not None:
            self._check(self._resolve(ref), value, path, out)
        types = schema.get("type")
        if types is not None:
            allowed = [types] if isinstance(types, str) else types
            if not any(_is_type(value, t) for t in allowed):
                out.append(SchemaViolation(path, "wrong-type", (
                    f"{_name(path)} must be {_either(allowed)}, not {_describe(value)}")))
                return
        if "anyOf" in schema:
            self._any_of(schema["anyOf"], value, path, out)
        if "const" in schema and not _equal(value, schema["const"]):
            out.append(SchemaViolation(path, "invalid-value",
                                       f"{_name(path)} must be {json.dumps(schema['const'])}"))
        if "enum" in schema and not any(_equal(value, e) for e in schema["enum"]):
            choices = ", ".join(json.dumps(e) for e in schema["enum"])
            out.append(SchemaViolation(path, "invalid-value", (
                f"{_name(path)} must be one of {choices}, not {json.dumps(value)}")))
        if isinstance(value, str):
            self._string(schema, value, path, out)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in schema and value < schema["minimum"]:
                out.append(SchemaViolation(path, "invalid-value",
                                           f"{_name(path)} must be at least {schema['minimum']}"))
            if "maximum" in schema and value > schema["maximum"]:
                out.append(SchemaViolation(path, "invalid-value",
                                           f"{_name(path)} must be at most {schema['maximum']}"))
        elif isinstance(value, list):
            self._array(schema, value, path, out)
        elif isinstance(value, dict):
            self._object(schema, value, path, out)

    def _string(self, schema: dict[str, Any], value: str, path: JsonPath,
                out: list[SchemaViolation]) -> None:
        pattern = schema.get("pattern")
        if pattern is not None and not _regex(pattern).search(value):
            words = _PATTERN_WORDS.get(pattern, f"text matching {pattern}")
            out.append(SchemaViolation(path, "invalid-value",
                                       f"{_name(path)} must be {words}, not {json.dumps(value)}"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(SchemaViolation(path, "invalid-value", f"{_name(path)} must not be empty"
                                       if schema["minLength"] == 1 else
                                       f"{_name(path)} must have at least "
                                       f"{schema['minLength']} characters"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(SchemaViolation(path, "invalid-value", (
                f"{_name(path)} must have at most {schema['maxLength']} characters")))

    def _array(self, schema: dict[str, Any], value: list[Any], path: JsonPath,
               out: list[SchemaViolation]) -> None:
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(SchemaViolation(path, "invalid-value", (
                f"{_name(path)} must have at least {schema['minItems']} "
                f"item{'s' if schema['minItems'] != 1 else ''}")))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(SchemaViolation(path, "invalid-value", (
                f"{_name(path)} must have at most {schema['maxItems']} items")))
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                self._check(items, item, (*path, i), out)

    def _object(self, schema: dict[str, Any], value: dict[str, Any], path: JsonPath,
                out: list[SchemaViolation]) -> None:
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            out.append(SchemaViolation(path, "invalid-value", f"{_name(path)} must not be empty"))
        for key in schema.get("required", ()):
            if key not in value:
                out.append(SchemaViolation(path, "missing-field", (
                    f"{_name(path)} is missing the required field `{key}`")))
        properties: dict[str, Any] = schema.get("properties", {})
        patterns: dict[str, Any] = schema.get("patternProperties", {})
        additional = schema.get("additionalProperties", True)
        for key, item in value.items():
            matched = False
            if key in properties:
                matched = True
                self._check(properties[key], item, (*path, key), out)
            for pattern, sub in patterns.items():
                if _regex(pattern).search(key):
                    matched = True
                    self._check(sub, item, (*path, key), out)
            if matched:
                continue
            if additional is False:
                out.append(SchemaViolation((*path, key), "unknown-field",
                                           _unknown(key, path, properties), at_key=True))
            elif isinstance(additional, dict):
                self._check(additional, item, (*path, key), out)

    def _any_of(self, branches: list[dict[str, Any]], value: Any, path: JsonPath,
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
            t = self._branch_type(branch)
            for name in [t] if isinstance(t, str) else t:
                if name not in allowed:
                    allowed.append(name)
        out.append(SchemaViolation(path, "wrong-type", (
            f"{_name(path)} must be {_either(allowed)}, not {_describe(value)}")))

    def _branch_type(self, branch: dict[str, Any]) -> str | list[str]:
        if "$ref" in branch:
            return self._branch_type(self._resolve(branch["$ref"]))
        types: str | list[str] = branch.get("type", [])
        return types


def _type_mismatch(found: list[SchemaViolation], path: JsonPath) -> bool:
    return len(found) == 1 and found[0].code == "wrong-type" and found[0].path == path


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _is_type(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float))
    return False


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
