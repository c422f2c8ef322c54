"""Property tests: whatever a spec file holds, `dsc lint` answers 0 or 1, never a traceback."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.cli import cli
from tests.conftest import needs_shared
from tests.test_schema import JSON_VALUES, mutated_specs

ODD_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=20) | st.sampled_from([
    "\u202e", "\ufeff", "\x00", "e\u0301", "\U0001f600", "\u0130", "ß", "\t\r\n"])
HUGE = st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**40, 1e308, -1e308, 5e-324])


def _lint(text: str, suffix: str) -> tuple[int, BaseException | None, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"spec{suffix}"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        result = CliRunner().invoke(cli, ["lint", "-o", "text", str(path)])
        return result.exit_code, result.exception, result.output


def _assert_answered(text: str, suffix: str) -> None:
    code, exception, output = _lint(text, suffix)
    assert isinstance(exception, SystemExit) or exception is None, (exception, text[:300])
    assert code in (0, 1), (code, output[:500], text[:300])
    assert "Traceback" not in output


def _deepen(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def hostile_specs(draw: st.DrawFn) -> Any:
    spec = draw(mutated_specs())
    twist = draw(st.sampled_from(["none", "deep", "unicode", "huge", "type"]))
    target = draw(st.sampled_from(["pipeline", "transform", "input", "parallelism_spec",
                                   "datum_timeout", "resource_limits", "name"]))
    if twist == "deep":
        spec[target] = _deepen(draw(JSON_VALUES), draw(st.integers(1, 120)))
    elif twist == "unicode":
        spec[target] = {draw(ODD_TEXT): draw(ODD_TEXT)} if draw(st.booleans()) else draw(
            ODD_TEXT)
    elif twist == "huge":
        spec[target] = {"constant": draw(HUGE)} if draw(st.booleans()) else draw(HUGE)
    elif twist == "type":
        spec[target] = draw(JSON_VALUES)
    return spec


@needs_shared
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_specs(), st.sampled_from([".json", ".yaml"]))
def test_mutated_corpus_specs_never_crash(spec: Any, suffix: str) -> None:
    if suffix == ".json":
        text = json.dumps(spec, ensure_ascii=False)
    else:
        text = yaml.safe_dump(spec, allow_unicode=True)
    _assert_answered(text, suffix)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from([".json", ".yaml", ".json.j2"]))
def test_arbitrary_text_never_crashes(text: str, suffix: str) -> None:
    _assert_answered(text, suffix)
