"""The schema file, and dsc's built-in evaluator checked against `jsonschema` as the oracle."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.spec.schema import Validator, load_schema, unsupported_keywords
from tests.conftest import ROOT, needs_shared
from tests.specs import corpus_specs

SCHEMA = load_schema()
OURS = Validator(SCHEMA)
# The same definition dsc checks each spec against: #/$defs/pipeline.
ORACLE = jsonschema.Draft202012Validator(
    {"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": "#/$defs/pipeline"})
SPECS = corpus_specs()


def test_schema_is_valid_2020_12_and_in_sync_with_its_source() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    check = subprocess.run([sys.executable, "schemas/build_pipeline_schema.py", "--check"],
                           cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_schema_uses_only_keywords_the_evaluator_implements() -> None:
    assert unsupported_keywords(SCHEMA) == set()


def test_every_property_has_a_description() -> None:
    missing = []
    for name, definition in SCHEMA["$defs"].items():
        for key, sub in definition.get("properties", {}).items():
            if "description" not in sub:
                missing.append(f"{name}.{key}")
    assert missing == []


@needs_shared
def test_corpus_is_valid_for_both() -> None:
    assert len(SPECS) > 200
    for label, spec in SPECS:
        assert OURS.violations(spec) == [], label
        assert list(ORACLE.iter_errors(spec)) == [], label


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(_paths(v, (*prefix, i)))
    return found


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A corpus spec with one to three mutations: a value replaced, a key deleted or added."""
    spec = copy.deepcopy(draw(st.sampled_from(SPECS))[1]) if SPECS else {"pipeline": {}}
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(spec)))
        if not path:
            continue
        parent = spec
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(JSON_VALUES)
    return spec


@needs_shared
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_evaluator_agrees_with_jsonschema(spec: dict[str, Any]) -> None:
    ours = OURS.violations(spec)
    oracle = list(ORACLE.iter_errors(spec))
    assert bool(ours) == bool(oracle), (json.dumps(spec)[:500], ours, oracle[:3])


def _without_shortcuts() -> Validator:
    plain = Validator(SCHEMA)
    for node in plain._nodes.values():
        node.target, node.type_only = node, None
    return plain


PLAIN = _without_shortcuts()


@needs_shared
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_evaluator_shortcuts_change_no_violation(spec: dict[str, Any]) -> None:
    assert OURS.violations(spec) == PLAIN.violations(spec)


@pytest.mark.parametrize(("spec", "code", "message"), [
    ({"pipeline": {"name": "a"}, "transform": {"stdin": "x"}}, "wrong-type",
     "`transform.stdin` must be a list, not the string \"x\""),
    ({"pipeline": {"name": "a"}, "datum_tries": "three"}, "invalid-value",
     "`datum_tries` must be a whole number, not \"three\""),
    ({"pipeline": {}}, "missing-field", "`pipeline` is missing the required field `name`"),
    ({"pipeline": {"name": "a"}, "reprocess_spec": "always"}, "invalid-value",
     "`reprocess_spec` must be one of \"until_success\", \"every_job\", not \"always\""),
    ({"pipeline": {"name": "a"}, "parallelism_spec": {"constnat": 1}}, "unknown-field",
     "unknown field `constnat` in `parallelism_spec`; did you mean `constant`?"),
    # gpu was a count up to 1.8.1 (a proto int64, so it may be quoted), an object after
    ({"pipeline": {"name": "a"}, "resource_limits": {"gpu": "two"}}, "invalid-value",
     "`resource_limits.gpu` must be a whole number, not \"two\""),
    ({"pipeline": {"name": "a"}, "resource_limits": {"gpu": [1]}}, "wrong-type",
     "`resource_limits.gpu` must be an integer, a string or a mapping, not a list"),
])
def test_messages(spec: dict[str, Any], code: str, message: str) -> None:
    found = OURS.violations(spec)
    assert [(v.code, v.message) for v in found] == [(code, message)]
