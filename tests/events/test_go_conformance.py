"""The model against answers recorded from the Go libraries Argo Events uses (conformance/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.events import go_json
from tests.events.argo_events import webhook_event_data
from tests.events.go_regexp import compile_go_regexp
from tests.events.go_template import TemplateError, render
from tests.events.json_paths import SjsonError, gjson_get, sjson_set
from tests.events.unsupported import Unsupported

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "conformance" / "cases.json").read_text(encoding="utf-8"))


def _run(case: dict[str, Any]) -> dict[str, Any]:
    """The model's answer in the shape record.go writes."""
    kind = case["kind"]
    if kind == "gjson":
        result = gjson_get(case["json"], case["path"])
        return {"exists": result.exists, "type": result.type or "Null", "raw": result.raw,
                "string": result.string(), "bool": result.bool(), "float": result.float()}
    if kind == "regexp":
        return {"error": "", "match": compile_go_regexp(case["pattern"]).search(case["text"])
                is not None}
    if kind == "template":
        try:
            return {"error": "", "out": render(case["template"],
                                               {"Input": json.loads(case["input"])})}
        except TemplateError:
            return {"error": True}
    if kind == "sjson":
        value = json.loads(case["value"]) if case["raw"] else case["value"]
        try:
            return {"error": "", "out": sjson_set(json.loads(case["json"]), case["path"], value)}
        except SjsonError:
            return {"error": True}
    if kind == "event":
        try:
            return {"error": "", "data": webhook_event_data(case["header"], case["body"], {})}
        except go_json.InvalidJSON:
            return {"error": True}
    raise AssertionError(f"unknown case kind {kind}")


def _expected(case: dict[str, Any]) -> dict[str, Any]:
    """Go's recorded answer, with error texts reduced to "there was an error"."""
    recorded = dict(case["go"])
    if recorded.get("error"):
        return {"error": True}
    if case["kind"] == "sjson":
        recorded["out"] = json.loads(recorded["out"])
    if case["kind"] == "gjson":
        recorded["float"] = float(recorded["float"])  # Go wrote the float64 in its short form
    return recorded


@pytest.mark.parametrize("case", CASES, ids=[f"{c['kind']}-{c['name']}" for c in CASES])
def test_model_answers_as_go_does(case: dict[str, Any]) -> None:
    if case.get("unsupported"):
        with pytest.raises(Unsupported):
            _run(case)
        return
    assert _run(case) == _expected(case)


def test_every_case_was_recorded() -> None:
    assert all("go" in case for case in CASES), "run record.go (conformance/README.md)"
