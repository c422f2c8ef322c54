"""`dsc datums` and the datum engine against Pachyderm's cases and the seed demo."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from compiler.datums.plan import plan_datums, spell
from compiler.diagnostics import Finding
from compiler.spec.datum_input import datum_input
from compiler.spec.normalize import canonicalize, normalize
from tests.conftest import ROOT, SHARED, needs_shared, run_dsc

DATUM_CASES = SHARED / "reference" / "pachyderm" / "datum_cases.json"
SEED_DATA = SHARED / "reference" / "seed" / "data"
SEED_SPECS = SHARED / "reference" / "seed" / "pipelines"
EXAMPLE_DATA = ROOT / "examples" / "hyperparameter" / "data"


def _cases() -> list[dict[str, Any]]:
    if not DATUM_CASES.is_file():
        return []
    cases: list[dict[str, Any]] = json.loads(DATUM_CASES.read_text(encoding="utf-8"))
    return cases


CASES = _cases()
case_params = pytest.mark.parametrize(
    "case", CASES or [pytest.param(None, marks=needs_shared)],
    ids=[c["name"] for c in CASES] or ["no-cases"])


def _dialect(case: dict[str, Any]) -> str:
    """Which spelling the case's expected paths use: 2.x ("/dir/") unless it is 1.x only."""
    return "2.x" if "2.x" in case["version"] else "1.x"


def _spec(case: dict[str, Any]) -> dict[str, Any]:
    return {"pipeline": {"name": "case"}, "transform": {"image": "busybox:1.36", "cmd": ["true"]},
            "input": case["input"]}


def _as_multisets(datums: list[list[str]]) -> Counter[tuple[str, ...]]:
    # datums.md §9: the datum list and each datum compared as sets. Multisets are stricter and
    # still order-free: a group datum may hold one file twice (iter_group_doubles).
    return Counter(tuple(sorted(d)) for d in datums)


def _check(case: dict[str, Any], plain: list[list[str]], qualified: list[list[str]]) -> None:
    assert _as_multisets(plain) == _as_multisets(case["expected_datums"])
    assert _as_multisets(qualified) == _as_multisets(case["expected_datums_qualified"])
    if "expected_count" in case:
        assert len(plain) == case["expected_count"]


@case_params
def test_case_through_the_python_api(case: dict[str, Any]) -> None:
    findings: list[Finding] = []
    pipeline = normalize(canonicalize(_spec(case), (), findings), path="case", at=(),
                         findings=findings)
    assert pipeline is not None and pipeline.input is not None
    dialect = _dialect(case)
    datums = list(plan_datums(datum_input(pipeline.input), case["files"]))
    _check(case, [[spell(m.path, dialect) for m in d.matches] for d in datums],
           [[f"{m.name}:{spell(m.path, dialect)}" for m in d.matches] for d in datums])


@case_params
def test_case_through_dsc_datums_listing(case: dict[str, Any], tmp_path: Path) -> None:
    spec = tmp_path / "case.json"
    spec.write_text(json.dumps(_spec(case)), encoding="utf-8")
    listing = tmp_path / "listing.json"
    listing.write_text(json.dumps(case["files"]), encoding="utf-8")
    result = run_dsc("datums", str(spec), "--listing", str(listing), "-o", "json",
                     "--dialect", _dialect(case))
    assert result.exit_code == 0, result.stderr
    datums = json.loads(result.stdout)
    _check(case, [[i["path"] for i in d["inputs"]] for d in datums],
           [[f"{i['name']}:{i['path']}" for i in d["inputs"]] for d in datums])
    assert len({d["id"] for d in datums}) == len(datums)  # IDs tell datums apart


# --------------------------------------------------------------------------------------------
# The seed demo, laid out as its README says (put-file --split line: one file per line)


def _seed_layout(root: Path) -> Path:
    """DIR/<repo>/... as the seed's four pipelines see it, outputs of the upstream ones too."""
    (root / "raw_data").mkdir(parents=True)
    (root / "raw_data" / "iris.csv").write_bytes((SEED_DATA / "noisy_iris.csv").read_bytes())
    values: dict[str, list[str]] = {}
    for kind in ("c", "gamma"):
        lines = (SEED_DATA / "parameters" / f"{kind}_parameters.txt").read_text().split()
        values[kind] = lines
        chunks = root / "parameters" / f"{kind}_parameters.txt"
        chunks.mkdir(parents=True)
        for i, line in enumerate(lines):
            (chunks / f"{i:016x}").write_text(line + "\n")
    (root / "split").mkdir()
    for name in ("train.csv", "test.csv"):
        (root / "split" / name).write_text("5.1,3.5,1.4,0.2,Iris-setosa\n")
    (root / "model").mkdir()
    (root / "test").mkdir()
    for c in values["c"]:
        for g in values["gamma"]:
            model = f"model_C{float(c)}_G{float(g)}.pkl"  # pytrain.py's output names
            (root / "model" / model).write_bytes(b"\x80")
            (root / "test" / f"{model}_metric.txt").write_text("0.9\n")
    return root


@needs_shared
@pytest.mark.parametrize(("pipeline", "count"), [
    ("split", 1), ("model", 77), ("test", 77), ("select", 1)])
def test_seed_datum_counts(pipeline: str, count: int, tmp_path: Path) -> None:
    data = _seed_layout(tmp_path / "data")
    result = run_dsc("datums", str(SEED_SPECS), "--pipeline", pipeline, "--from-dir",
                     str(data), "--count")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{count}\n"


@needs_shared
def test_seed_model_datums_pair_every_c_with_every_gamma(tmp_path: Path) -> None:
    data = _seed_layout(tmp_path / "data")
    result = run_dsc("datums", str(SEED_SPECS / "model.json"), "--from-dir", str(data),
                     "-o", "json")
    assert result.exit_code == 0, result.stderr
    datums = json.loads(result.stdout)
    pairs = set()
    for d in datums:
        by_name = {i["name"]: i["path"] for i in d["inputs"]}
        assert by_name["split"] == "/train.csv"
        pairs.add((by_name["c-parameters"], by_name["gamma-parameters"]))
    assert len(pairs) == 77
    assert ("/c_parameters.txt/000000000000000a", "/gamma_parameters.txt/0000000000000006") in pairs


@needs_shared
def test_example_data_matches_the_seed_layout() -> None:
    """examples/hyperparameter/data is the seed's inputs as put-file --split line left them."""
    for kind in ("c", "gamma"):
        lines = (SEED_DATA / "parameters" / f"{kind}_parameters.txt").read_text().split()
        chunks = EXAMPLE_DATA / "parameters" / f"{kind}_parameters.txt"
        assert sorted(p.name for p in chunks.iterdir()) == [f"{i:016x}" for i in range(len(lines))]
        assert [(chunks / f"{i:016x}").read_text().strip() for i in range(len(lines))] == lines
    assert ((EXAMPLE_DATA / "raw_data" / "iris.csv").read_bytes()
            == (SEED_DATA / "noisy_iris.csv").read_bytes())


def test_example_split_previews_from_the_example_data() -> None:
    result = run_dsc("datums", str(ROOT / "examples" / "hyperparameter" / "pipelines"),
                     "--pipeline", "split", "--from-dir", str(EXAMPLE_DATA), "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert [[i["path"] for i in d["inputs"]] for d in json.loads(result.stdout)] == [["/"]]
