"""Golden files: each example compiles to the bytes of tests/golden/<name>.yaml.

An example is a directory under examples/ with a `pipelines/` directory (examples/ci, a recipe,
has none); a new one is picked up by being there; `DSC_REGENERATE=1 pytest tests/test_golden.py`
writes its golden file (and rewrites the others from the current compiler: review the diff).
Templates compile with their own defaults, as `dsc compile examples/<name>/` does. An example
with a `data/` directory (one subdirectory per repo) must also give `dsc datums --from-dir` a
datum for every pipeline that reads only repos found there.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from compiler.spec.lint import load_specs
from tests.conftest import ROOT, run_dsc

EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("*/pipelines"))
WITH_DATA = [p for p in EXAMPLES if (p / "data").is_dir()]
GOLDEN = ROOT / "tests" / "golden"
# Read at import: the `hermetic` fixture hides every DSC_* variable from the compiler.
REGENERATE = os.environ.get("DSC_REGENERATE") == "1"
DIFF_LINES = 60


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DSC_* setting of the caller's environment and no dsc.yaml of the caller's working
    directory reaches the compiler: golden bytes may depend on the example alone."""
    for name in list(os.environ):
        if name.startswith("DSC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _compile(example: Path) -> bytes:
    result = run_dsc("compile", str(example))
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes


def _diff(expected: bytes, actual: bytes, golden: Path) -> str:
    lines = list(difflib.unified_diff(
        expected.decode().splitlines(keepends=True), actual.decode().splitlines(keepends=True),
        fromfile=str(golden.relative_to(ROOT)), tofile="dsc compile (now)"))
    more = len(lines) - DIFF_LINES
    shown = "".join(lines[:DIFF_LINES]) + (f"... {more} more diff lines\n" if more > 0 else "")
    return (f"{golden.name} differs from the compiled output; if the change is intended, run "
            f"DSC_REGENERATE=1 pytest tests/test_golden.py and review the diff\n{shown}")


@pytest.mark.usefixtures("hermetic")
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_compiles_to_its_golden_file(example: Path) -> None:
    compiled = _compile(example)
    assert _compile(example) == compiled, "compiling twice gave different bytes"
    assert str(ROOT).encode() not in compiled, "the output names the checkout's location"
    golden = GOLDEN / f"{example.name}.yaml"
    if REGENERATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(compiled)
        return
    if not golden.is_file():
        pytest.fail(f"{golden.relative_to(ROOT)} is missing: run "
                    "DSC_REGENERATE=1 pytest tests/test_golden.py to write it", pytrace=False)
    expected = golden.read_bytes()
    if compiled != expected:
        pytest.fail(_diff(expected, compiled, golden), pytrace=False)


@pytest.mark.usefixtures("hermetic")
@pytest.mark.parametrize("example", WITH_DATA, ids=lambda p: p.name)
def test_example_data_gives_every_fed_pipeline_datums(example: Path) -> None:
    data = example / "data"
    repos = {p.name for p in data.iterdir() if p.is_dir()}
    loaded = load_specs([example])
    assert loaded.pipelines, f"{example.name} defines no pipeline"
    fed = [p.name for p in loaded.pipelines if set(p.repos()) <= repos]
    assert fed, f"no pipeline of {example.name} reads only repos in {data.relative_to(ROOT)}"
    for pipeline in loaded.pipelines:
        result = run_dsc("datums", str(example), "--pipeline", pipeline.name,
                         "--from-dir", str(data), "--count")
        assert result.exit_code == 0, f"{pipeline.name}: {result.stderr}"
        if pipeline.name in fed:
            assert int(result.stdout) > 0, f"{pipeline.name} has no datum in the example data"
