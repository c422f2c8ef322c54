"""Incremental processing on the seed demo (issue 16), through the compiled Workflow and the
host runner, on a data directory and on the lakeFS stand-in: only the datums that changed
inputs or changed code require run, the preview predicts it, and provenance still names the
job that made each file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from compiler.commands.compile import CompileRequest, load_graph
from compiler.commands.plan import job_documents, plan_graph
from compiler.config import Config
from compiler.local.session import LOCAL_NAMESPACE, directory_store
from compiler.spec.values_input import template_values
from compiler.store import Store
from tests.conftest import ROOT
from tests.local.test_seed_run import (
    EXAMPLE,
    HOST_VALUES,
    PIPELINES,
    first_run,
    host_runner,
    program_for,
    run_seed,
)

__all__ = ["first_run", "host_runner"]  # the fixtures (the runner's skips where it cannot run)
NAMES = ("split", "model", "test", "select")


def values(**more: str) -> dict:
    sets = (f"python={sys.executable}", *(f"{k}={v}" for k, v in more.items()))
    return template_values(sets, (HOST_VALUES,))


def preview(store: Store, **more: str) -> dict[str, dict]:
    config = Config()
    _result, graph = load_graph(CompileRequest(paths=(PIPELINES,), values=values(**more),
                                               config=config))
    assert graph is not None
    return {p.pipeline: p.as_json(verbose=False)
            for p in plan_graph(job_documents(graph, config), store)}


def processed(result) -> dict[str, int]:
    return {s.name: s.done for s in result.progress.states.values()}


def heads(store: Store) -> dict[str, str]:
    return {p: store.head(p, "main") for p in NAMES}


def outputs(store: Store, repo: str) -> list[str]:
    return sorted(o.path for o in store.objects(repo, "main") if not o.path.startswith(".dsc/"))


class Seed:
    """The seed demo's data in a data directory, run again and again."""

    def __init__(self, root: Path, runner, tmp: Path) -> None:
        self.root, self.runner, self.tmp, self.runs = root, runner, tmp, 0
        self.store = directory_store(root, program_for())

    def run(self, **more: str):
        self.runs += 1
        program = program_for(values=values(**more))
        result, log = run_seed(self.store, self.runner, self.tmp / f"scratch{self.runs}",
                               {"DSC_STORAGE_NAMESPACE": LOCAL_NAMESPACE}, program)
        assert result.outcome.phase == "Succeeded", log
        return result


@pytest.fixture
def seed(first_run, tmp_path, host_runner) -> Seed:
    """The seed demo's data directory after its first run (a copy of the session's)."""
    return Seed(first_run.copy_to(tmp_path / "data"), host_runner, tmp_path)


def test_only_the_datums_that_changed_run_and_the_preview_says_so_beforehand(seed, first_run):
    store, data = seed.store, seed.root
    assert first_run.processed == {"split": 1, "model": 77, "test": 77, "select": 1}
    models = outputs(store, "model")
    a_model = models[0]
    first_meta = store.commit_of("model", "main").metadata
    first_model_job = first_meta["dsc.workflow"]

    # Nothing changed: no datum runs, no commit anywhere
    before = heads(store)
    plan = preview(store)
    assert all(p["noop"] for p in plan.values())
    again = seed.run()
    assert processed(again) == dict.fromkeys(NAMES, 0)
    assert heads(store) == before

    # One C value added: split does not run; 7 models (the new C with each gamma), 7 metrics,
    # one selection; the preview predicted exactly that
    (data / "parameters" / "c_parameters.txt" / "000000000000000b").write_text("77.0\n")
    plan = preview(store)
    assert plan["split"]["noop"]
    assert (plan["model"]["process"], plan["model"]["skip"]) == (7, 77)
    assert plan["model"]["reasons"] == {"new": 7}
    assert (plan["test"]["process"], plan["test"]["skip"], plan["test"]["estimated"]) == \
        (7, 77, 7)
    assert (plan["select"]["process"], plan["select"]["skip"]) == (1, 0)
    added = seed.run()
    assert processed(added) == {"split": 0, "model": 7, "test": 7, "select": 1}
    assert store.head("split", "main") == before["split"]
    models = outputs(store, "model")
    assert len(models) == 84 and len(outputs(store, "test")) == 84
    meta = store.commit_of("model", "main").metadata
    assert meta["dsc.datums"] == "total=84 processed=7 skipped=77 deleted=0 recovered=0"

    # One gamma value removed: its 12 models and metrics go, nothing runs but select
    removed = data / "parameters" / "gamma_parameters.txt" / "0000000000000003"
    gamma = removed.read_text().strip()
    removed.unlink()
    plan = preview(store)
    assert (plan["model"]["process"], plan["model"]["delete"]) == (0, 12)
    _plan_cli_says_the_same(data, plan)
    gone = seed.run()
    assert processed(gone) == {"split": 0, "model": 0, "test": 0, "select": 1}
    left = outputs(store, "model")
    of_gamma = {m for m in models if m.endswith(f"_G{gamma}.pkl")}
    assert len(of_gamma) == 12
    assert set(left) == set(models) - of_gamma  # exactly that gamma's models went
    assert len(outputs(store, "test")) == 72
    meta = store.commit_of("model", "main").metadata
    assert meta["dsc.datums"] == "total=72 processed=0 skipped=72 deleted=12 recovered=0"

    # File-level provenance of a model the first run trained, asked now
    assert a_model in left
    record = _file_provenance(store, "model", a_model)
    assert record["run"] == first_model_job
    assert {name for name, _path in record["inputs"]} == {"split", "c-parameters",
                                                           "gamma-parameters"}
    # read at the commits the first run's model commit records, with its code
    found = _found(store, "model", a_model)
    assert {i.name: f"{i.repo}@{i.commit}" for i in found.inputs} == {
        k.removeprefix("dsc.input."): v for k, v in first_meta.items()
        if k.startswith("dsc.input.")}
    assert found.carried and found.run_uid == first_meta["dsc.workflow.uid"]
    assert (found.image, found.spec_sha256, found.code) == (
        first_meta.get("dsc.image", ""), first_meta["dsc.spec.sha256"], first_meta["dsc.code"])
    _provenance_cli_says_the_same(data, found)

    # model's image changed (a template value): the preview says every model datum would
    # run, "code changed"
    plan = preview(store, image="registry.example/iris-train:2.0")
    assert plan["model"]["reasons"] == {"code changed": 72}

    # The command changed (the `python` value of model's and test's stdin): every datum of
    # both runs, "code changed"; the models come out the same
    command = {"python": f"{sys.executable} -B"}
    plan = preview(store, **command)
    assert plan["model"]["reasons"] == {"code changed": 72}
    assert plan["test"]["reasons"] == {"code changed": 72}
    assert (plan["model"]["skip"], plan["test"]["skip"]) == (0, 0)
    code = seed.run(**command)
    assert processed(code) == {"split": 0, "model": 72, "test": 72, "select": 0}
    assert outputs(store, "model") == left

    # One byte of raw_data/iris.csv edited: split runs, and all downstream of it
    iris = data / "raw_data" / "iris.csv"
    raw = bytearray(iris.read_bytes())
    raw[2] = ord("9") if raw[2] != ord("9") else ord("8")  # a digit of the first row
    iris.write_bytes(bytes(raw))
    edited = seed.run(**command)
    assert processed(edited) == {"split": 1, "model": 72, "test": 72, "select": 1}


def test_reprocess_forces_a_pipeline_or_named_datums(seed):
    from compiler.local.workflow import load_program

    assert preview(seed.store)["model"]["noop"]
    one = "model:" + _datum_id(seed.store, "model", 5)
    result, log = run_seed(seed.store, seed.runner, seed.tmp / "forced",
                           {"DSC_STORAGE_NAMESPACE": LOCAL_NAMESPACE},
                           load_program(_compiled(values(), one)))
    assert result.outcome.phase == "Succeeded", log
    assert processed(result) == {"split": 0, "model": 1, "test": 0, "select": 0}
    whole, log = run_seed(seed.store, seed.runner, seed.tmp / "whole",
                          {"DSC_STORAGE_NAMESPACE": LOCAL_NAMESPACE},
                          load_program(_compiled(values(), "model")))
    assert processed(whole)["model"] == 77, log


def _compiled(vals: dict, reprocess: str) -> list[dict]:
    from compiler.commands.compile import compile_specs

    compiled = compile_specs(CompileRequest(paths=(PIPELINES,), values=vals, config=Config(),
                                            reprocess=reprocess))
    assert compiled.documents is not None, compiled.result.diagnostics
    return compiled.documents


def _datum_id(store: Store, repo: str, index: int) -> str:
    return json.loads(store.read(repo, "main", ".dsc/index/000000.json"))[index]["id"][:12]


def _plan_cli_says_the_same(data: Path, plan: dict[str, dict]) -> None:
    """`dsc plan --data DIR` as a user types it: a line per pipeline, with -v a line per
    datum (+ processed, = skipped, - outputs deleted), and -o json the same as the preview."""
    from tests.conftest import run_dsc

    args = ("plan", "--data", str(data), "--values", str(HOST_VALUES),
            "--set", f"python={sys.executable}", str(PIPELINES))
    text = run_dsc(*args)
    assert text.exit_code == 0, text.output
    lines = {line.split()[0]: line for line in text.stdout.splitlines()}
    assert set(lines) == set(NAMES)
    assert lines["model"] == "model   72 datums: 0 to process, 72 skipped, 12 to delete"
    assert lines["split"].startswith("split   nothing to do: split@main (")
    assert lines["select"].startswith("select  1 datum: 1 to process (1 input changed), ")
    verbose = run_dsc(*args, "-v")
    assert verbose.exit_code == 0, verbose.output
    marks: dict[str, list[str]] = {}
    pipeline = ""
    for line in verbose.stdout.splitlines():
        if line.startswith("  "):
            marks.setdefault(pipeline, []).append(line.split()[0])
        else:
            pipeline = line.split()[0]
    assert sorted(marks["model"]) == ["-"] * 12 + ["="] * 72
    assert sorted(marks["test"]) == ["-"] * 12 + ["="] * 72
    assert marks["select"] == ["+"] and "split" not in marks
    as_json = run_dsc(*args, "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    assert {p["pipeline"]: p for p in json.loads(as_json.stdout)["pipelines"]} == plan


def _found(store: Store, repo: str, path: str):
    from compiler.commands.provenance import file_provenance

    return file_provenance(store, repo, "main", path)


def _provenance_cli_says_the_same(data: Path, found) -> None:
    """`dsc provenance --data DIR lakefs://model/main/FILE`, as a user types it: the datum,
    the run that wrote the file (carried unchanged since), and its inputs; -o json alike."""
    from tests.conftest import run_dsc

    url = f"lakefs://model/main/{found.path}"
    text = run_dsc("provenance", "--data", str(data), url)
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == f"lakefs://model/{found.commit[:12]}/{found.path}"
    assert lines[1].startswith(f"  written by datum {found.datum[:12]} of pipeline model, run "
                               f"{found.run} (job started ")
    assert lines[1].endswith(", carried unchanged by the later jobs")
    assert f"  spec sha256 {found.spec_sha256[:12]}  code {found.code[:12]}" in lines
    assert sorted(lines[lines.index("  inputs:") + 1:]) == sorted(
        f"    {i.name}: {i.repo}@{i.commit[:12]}:{i.path}" for i in found.inputs)
    as_json = run_dsc("provenance", "--data", str(data), "-o", "json", url)
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == found.as_json()
    assert json.loads(as_json.stdout)["carried"] is True


def _file_provenance(store: Store, repo: str, path: str) -> dict:
    from compiler.commands.provenance import file_provenance

    found = file_provenance(store, repo, "main", path)
    return {"run": found.run, "inputs": [(i.name, i.path) for i in found.inputs]}


def test_the_same_on_lakefs(lakefs_standin, tmp_path, host_runner):
    """Parity: the stand-in keeps the same account as the data directory."""
    from compiler.lakefs.client import LakeFS

    for repo, local in (("raw-data", EXAMPLE / "data" / "raw_data"),
                        ("parameters", EXAMPLE / "data" / "parameters")):
        lakefs_standin.seed(repo, {str(p.relative_to(local)): p.read_bytes()
                                   for p in sorted(local.rglob("*")) if p.is_file()})
    store = LakeFS(lakefs_standin.endpoint, lakefs_standin.access_key_id,
                   lakefs_standin.secret_access_key)
    env = {"DSC_STORAGE_NAMESPACE": "local://dsc/{repo}"}
    program = program_for(values=values())
    first, log = run_seed(store, host_runner, tmp_path / "s1", env, program)
    assert first.outcome.phase == "Succeeded", log
    first_models = outputs(store, "model")
    first_model = store.commit_of("model", "main").metadata
    before = heads(store)
    again, _log = run_seed(store, host_runner, tmp_path / "s2", env, program)
    assert processed(again) == dict.fromkeys(NAMES, 0) and heads(store) == before
    lakefs_standin.seed("parameters", {"c_parameters.txt/000000000000000b": b"77.0\n"})
    plan = preview(store)
    assert (plan["model"]["process"], plan["test"]["process"], plan["select"]["process"]) \
        == (7, 7, 1)
    added, log = run_seed(store, host_runner, tmp_path / "s3", env, program)
    assert processed(added) == {"split": 0, "model": 7, "test": 7, "select": 1}, log
    models = outputs(store, "model")
    assert len(models) == 84

    # One gamma value removed: exactly its 12 models go, nothing is reprocessed
    gamma_file = "gamma_parameters.txt/0000000000000003"
    gamma = store.read("parameters", store.head("parameters", "main"), gamma_file)
    with lakefs_standin.store.lock:
        st = lakefs_standin.store
        repo = st.repository("parameters")
        st.stage(repo, "main", gamma_file, None)
        st.commit(repo, "main", "remove a gamma", None, allow_empty=False)
    plan = preview(store)
    assert (plan["model"]["process"], plan["model"]["delete"]) == (0, 12)
    gone, log = run_seed(store, host_runner, tmp_path / "s4", env, program)
    assert processed(gone) == {"split": 0, "model": 0, "test": 0, "select": 1}, log
    left = outputs(store, "model")
    assert set(left) == {m for m in models if not m.endswith(
        f"_G{gamma.decode().strip()}.pkl")} and len(left) == 72
    assert store.commit_of("model", "main").metadata["dsc.datums"] == \
        "total=72 processed=0 skipped=72 deleted=12 recovered=0"

    # Provenance of a model the first run trained, asked after three more runs: that run's job
    # and the input commits it read
    found = _found(store, "model", next(m for m in left if m in first_models))
    assert found.carried and found.run_uid == first_model["dsc.workflow.uid"]
    assert {i.name: f"{i.repo}@{i.commit}" for i in found.inputs} == {
        k.removeprefix("dsc.input."): v for k, v in first_model.items()
        if k.startswith("dsc.input.")}

    # The command changed (the `python` value): every datum of model and test, "code changed"
    command = values(python=f"{sys.executable} -B")
    assert preview(store, python=f"{sys.executable} -B")["model"]["reasons"] == \
        {"code changed": 72}
    code, log = run_seed(store, host_runner, tmp_path / "s5", env, program_for(values=command))
    assert processed(code) == {"split": 0, "model": 72, "test": 72, "select": 0}, log

    # One byte of raw_data/iris.csv edited: split runs, and all downstream of it
    raw = bytearray(store.read("raw-data", store.head("raw-data", "main"), "iris.csv"))
    raw[2] = ord("9") if raw[2] != ord("9") else ord("8")
    lakefs_standin.seed("raw-data", {"iris.csv": bytes(raw)})
    edited, log = run_seed(store, host_runner, tmp_path / "s6", env, program_for(values=command))
    assert processed(edited) == {"split": 1, "model": 72, "test": 72, "select": 1}, log
    assert ROOT.is_dir()
