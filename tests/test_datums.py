"""`dsc datums` and the datum engine against Pachyderm's cases and the seed demo."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from compiler.cli import cli
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


# --------------------------------------------------------------------------------------------
# The command line

SPEC = {"pipeline": {"name": "pairs"}, "transform": {"image": "busybox:1.36", "cmd": ["true"]},
        "input": {"cross": [{"pfs": {"repo": "left", "glob": "/*"}},
                            {"pfs": {"repo": "right", "glob": "/*/*"}}]}}


def _write(tmp_path: Path, spec: Any = SPEC, listing: Any = None) -> tuple[Path, Path]:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    listing_file = tmp_path / "listing.json"
    listing_file.write_text(json.dumps(listing if listing is not None else {
        "left": ["/a", "/b"], "right": ["/d/x", "/d/sub/y"]}), encoding="utf-8")
    return spec_file, listing_file


def test_json_output_lists_each_datum_with_id_and_inputs(tmp_path: Path) -> None:
    spec, listing = _write(tmp_path)
    result = run_dsc("datums", str(spec), "--listing", str(listing), "-o", "json")
    assert result.exit_code == 0, result.stderr
    datums = json.loads(result.stdout)
    assert [[(i["name"], i["repo"], i["path"]) for i in d["inputs"]] for d in datums] == [
        [("left", "left", "/a"), ("right", "right", "/d/x")],
        [("left", "left", "/a"), ("right", "right", "/d/sub/")],
        [("left", "left", "/b"), ("right", "right", "/d/x")],
        [("left", "left", "/b"), ("right", "right", "/d/sub/")]]
    assert all(len(d["id"]) == 64 and set(d["id"]) <= set("0123456789abcdef") for d in datums)
    assert result.stderr == ""


def test_table_output_numbers_datums_and_shows_short_ids(tmp_path: Path) -> None:
    spec, listing = _write(tmp_path)
    result = run_dsc("datums", str(spec), "--listing", str(listing), "-o", "table")
    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["#", "ID", "INPUTS"]
    assert len(rows) == 4
    number, short_id, *inputs = rows[0].split()
    assert number == "1" and len(short_id) == 12
    assert inputs == ["left:/a", "right:/d/x"]
    assert "4 datums for pipeline `pairs`" in result.stderr


def test_count_and_the_1x_spelling_of_directories(tmp_path: Path) -> None:
    spec, listing = _write(tmp_path)
    assert run_dsc("datums", str(spec), "--listing", str(listing), "--count").stdout == "4\n"
    result = run_dsc("datums", str(spec), "--listing", str(listing), "--dialect", "1.x")
    assert "/d/sub/" not in result.stdout and '"/d/sub"' in result.stdout


def test_atom_specs_are_spelled_the_1x_way_by_default(tmp_path: Path) -> None:
    spec = {**SPEC, "input": {"atom": {"repo": "right", "glob": "/*"}}}
    spec_file, listing = _write(tmp_path, spec)
    result = run_dsc("datums", str(spec_file), "--listing", str(listing))
    assert [d["inputs"][0]["path"] for d in json.loads(result.stdout)] == ["/d"]


def test_from_dir_reads_each_repo_directory(tmp_path: Path) -> None:
    spec, _ = _write(tmp_path)
    for rel in ("left/a", "left/b", "right/d/x", "right/d/sub/y", "right/.dsc/plan.json"):
        (tmp_path / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / rel).write_text("x")
    result = run_dsc("datums", str(spec), "--from-dir", str(tmp_path / "data"), "--count")
    assert (result.exit_code, result.stdout) == (0, "4\n")


def test_listing_from_stdin_with_relative_paths(tmp_path: Path) -> None:
    spec, _ = _write(tmp_path)
    result = CliRunner().invoke(cli, ["datums", str(spec), "--listing", "-", "--count"],
                                input=json.dumps({"left": ["a"], "right": ["d/x"]}))
    assert (result.exit_code, result.stdout) == (0, "1\n")


def test_a_repo_missing_from_the_data_is_read_as_empty_with_a_warning(tmp_path: Path) -> None:
    spec, listing = _write(tmp_path, listing={"left": ["/a"]})
    result = run_dsc("datums", str(spec), "--listing", str(listing), "-o", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []
    assert "repo `right` is not in" in result.stderr


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON"),
    ("[]", 'expected an object like {"repo": ["/path", ...]}, not an array'),
    ('{"left": "/a"}', "repo `left`: expected a list of paths, not a string"),
    ('{"left": ["/a", 3]}', "repo `left`: item 1: expected a non-empty path, not 3"),
    ('{"left": [""]}', "item 0: expected a non-empty path"),
])
def test_a_bad_listing_is_a_usage_error_saying_what_is_wrong(
        tmp_path: Path, content: str, message: str) -> None:
    spec, listing = _write(tmp_path)
    listing.write_text(content)
    result = run_dsc("datums", str(spec), "--listing", str(listing))
    assert result.exit_code == 2
    assert message in result.stderr and str(listing) in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args", [[], ["--listing", "L", "--from-dir", "."]])
def test_the_data_comes_from_exactly_one_source(tmp_path: Path, args: list[str]) -> None:
    spec, listing = _write(tmp_path)
    args = [str(listing) if a == "L" else a for a in args]
    result = run_dsc("datums", str(spec), *args)
    assert result.exit_code == 2
    assert "exactly one of --data DIR, --listing FILE or --lakefs" in result.stderr


def test_several_pipelines_need_pipeline_and_unknown_names_are_refused(tmp_path: Path) -> None:
    other = {**SPEC, "pipeline": {"name": "other"}}
    spec, listing = _write(tmp_path, [SPEC, other])
    result = run_dsc("datums", str(spec), "--listing", str(listing))
    assert result.exit_code == 2 and "define 2 pipelines (`pairs`, `other`)" in result.stderr
    result = run_dsc("datums", str(spec), "--listing", str(listing), "--pipeline", "nope")
    assert result.exit_code == 2 and "no pipeline `nope`" in result.stderr
    result = run_dsc("datums", str(spec), "--listing", str(listing), "--pipeline", "other",
                     "--count")
    assert (result.exit_code, result.stdout) == (0, "4\n")


def test_a_bad_glob_gets_the_lint_diagnostic_and_no_datums(tmp_path: Path) -> None:
    spec = {**SPEC, "input": {"pfs": {"repo": "left", "glob": "/[a"}}}
    spec_file, listing = _write(tmp_path, spec)
    result = run_dsc("datums", str(spec_file), "--listing", str(listing))
    lint = run_dsc("lint", "-q", str(spec_file))
    assert result.exit_code == 1 and result.stdout == ""
    assert lint.stdout.strip() in result.stderr
    lines = spec_file.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if '"glob": "/[a"' in text)
    col = lines[line - 1].index('"/[a"') + 1
    assert f"{spec_file}:{line}:{col}: error: glob '/[a'" in result.stderr


def test_s3_inputs_are_previewed_with_the_refusal_as_a_warning(tmp_path: Path) -> None:
    spec = {**SPEC, "input": {"pfs": {"repo": "left", "glob": "/", "s3": True}}}
    spec_file, listing = _write(tmp_path, spec)
    result = run_dsc("datums", str(spec_file), "--listing", str(listing))
    assert result.exit_code == 0
    assert "warning: dsc does not support S3 inputs" in result.stderr
    assert [d["inputs"][0]["path"] for d in json.loads(result.stdout)] == ["/"]


def test_git_inputs_cannot_be_previewed(tmp_path: Path) -> None:
    spec = {**SPEC, "input": {"git": {"URL": "https://github.com/a/b.git", "name": "b"}}}
    spec_file, listing = _write(tmp_path, spec)
    result = run_dsc("datums", str(spec_file), "--listing", str(listing))
    assert result.exit_code == 1 and result.stdout == ""
    assert "error: dsc does not support" in result.stderr


def test_templated_specs_take_values(tmp_path: Path) -> None:
    template = tmp_path / "spec.json.j2"
    template.write_text(json.dumps(SPEC).replace('"/*/*"', '"{{ deep_glob }}"'))
    _, listing = _write(tmp_path)
    result = run_dsc("datums", str(template), "--listing", str(listing), "--set",
                     "deep_glob=/d/x", "--count")
    assert (result.exit_code, result.stdout) == (0, "2\n")
