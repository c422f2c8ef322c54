"""The seed demo end to end: the compiled graph through `dsc run`'s executor, the host
runner running the example's code, and both stores (a data directory, the lakeFS stand-in).

Every output file, every commit and its provenance is checked through the Store interface,
so the two stores are held to the same account of what a run leaves.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from compiler.commands.compile import CompileRequest, compile_specs
from compiler.config import Config
from compiler.local.progress import Progress, jobs_of
from compiler.local.runners import HostRunner, RunnerError
from compiler.local.session import (
    LOCAL_NAMESPACE,
    LocalRun,
    directory_store,
    execute,
    in_process_runtime,
)
from compiler.local.workflow import load_program
from compiler.spec.values_input import template_values
from compiler.store import Store
from compiler.store.directory import DirectoryStore
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "hyperparameter"
PIPELINES = EXAMPLE / "pipelines"
HOST_VALUES = EXAMPLE / "host.values"
PIPELINE_NAMES = ("split", "model", "test", "select")


@pytest.fixture(scope="module")
def host_runner() -> HostRunner:
    try:
        return HostRunner(ROOT)
    except RunnerError as exc:
        pytest.skip(f"the host runner cannot run here: {exc}")


def program_for(config: Config | None = None, values: dict | None = None):
    config = config or Config()
    # The interpreter itself, not the `python3` on PATH: on a machine where that is a shim
    # (pyenv's), starting it costs more than the model's code (the README test keeps it).
    values = values or template_values((f"python={sys.executable}",), (HOST_VALUES,))
    compiled = compile_specs(CompileRequest(paths=(PIPELINES,), values=values, config=config))
    assert compiled.documents is not None, compiled.result.diagnostics
    return load_program(compiled.documents)


def run_seed(store: Store, runner: HostRunner, scratch: Path, runtime_env: dict[str, str],
             program=None) -> tuple[LocalRun, str]:
    program = program or program_for()
    log = io.StringIO()
    progress = Progress(jobs_of(program), log, tty=False)
    result = execute(program, in_process_runtime(store), runner, progress=progress,
                     parallelism=2, runtime_env=runtime_env, secrets=None, scratch=scratch)
    return result, log.getvalue()


@dataclass(frozen=True, slots=True)
class FirstRun:
    """The seed demo's first run on a data directory, from the example's data: run once for
    the whole test session, since most tests of the seed go on from there."""

    data: Path  # the data directory after the run; a test works on a copy (`copy_to`)
    processed: dict[str, int]  # the datums each pipeline processed

    def copy_to(self, root: Path) -> Path:
        shutil.copytree(self.data, root, symlinks=True)  # DIR/<pipeline> is a symlink
        return root


@pytest.fixture(scope="session")
def first_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> FirstRun:
    """The first run, made by whichever test process needs it first; the others wait for it
    (the run takes the same time wherever it is made) and read what it left."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent  # this session's directory, the same for every worker
    made = shared / "seed-first-run"
    made.mkdir(exist_ok=True)
    data, processed = made / "data", made / "processed.json"
    with (shared / "seed-first-run.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not processed.exists():
            try:
                runner = HostRunner(ROOT)
            except RunnerError as exc:
                pytest.skip(f"the host runner cannot run here: {exc}")
            shutil.rmtree(data, ignore_errors=True)  # what a failed attempt left
            shutil.copytree(EXAMPLE / "data", data)
            program = program_for()
            result, log = run_seed(directory_store(data, program), runner, made / "scratch",
                                   {"DSC_STORAGE_NAMESPACE": LOCAL_NAMESPACE}, program)
            assert result.outcome.phase == "Succeeded", log
            processed.write_text(json.dumps(
                {s.name: s.done for s in result.progress.states.values()}))
    return FirstRun(data, json.loads(processed.read_text()))


def expected_models() -> list[str]:
    values = {name: [float(p.read_text().strip())
                     for p in sorted((EXAMPLE / "data" / "parameters" / name).iterdir())]
              for name in ("c_parameters.txt", "gamma_parameters.txt")}
    return sorted(f"model_C{c}_G{g}.pkl" for c in values["c_parameters.txt"]
                  for g in values["gamma_parameters.txt"])


def check_seed_outputs(store: Store, before: dict[str, str],
                       ran: tuple[str, ...] = PIPELINE_NAMES) -> dict[str, str]:
    """Every output file and commit of one successful run, whose pipelines `ran` made a
    commit (the others had nothing to do); returns the output heads."""
    heads = {p: store.head(p, "main") for p in PIPELINE_NAMES}
    inputs = {r: store.head(r, "main") for r in ("raw-data", "parameters")}

    def files(repo: str) -> dict[str, int]:
        return {o.path: o.size for o in store.objects(repo, heads[repo])
                if not o.path.startswith(".dsc/")}

    # split: an 80/20 split of the rows of iris.csv
    rows = (EXAMPLE / "data" / "raw_data" / "iris.csv").read_text().splitlines()
    train = store.read("split", heads["split"], "train.csv").decode().splitlines()
    test = store.read("split", heads["split"], "test.csv").decode().splitlines()
    assert set(files("split")) == {"train.csv", "test.csv"}
    assert (len(train), len(test)) == (80, 20)
    assert sorted(train + test) == sorted(rows)

    # model: one model per (C, gamma), 77 datum manifests
    models = expected_models()
    assert len(models) == 77
    assert sorted(files("model")) == models
    index = json.loads(store.read("model", heads["model"], ".dsc/index/000000.json"))
    assert len(index) == 77 and {len(e["files"]) for e in index} == {1}

    # test: one metric per model, an accuracy
    metrics = {p: float(store.read("test", heads["test"], p)) for p in files("test")}
    assert sorted(metrics) == sorted(m[:-4] + "_metric.txt" for m in models)
    assert all(0.0 <= v <= 1.0 for v in metrics.values())

    # select: exactly the models with the best metric, stored with their content
    best = max(metrics.values())
    winners = sorted(m for m in models if metrics[m[:-4] + "_metric.txt"] == best)
    assert sorted(files("select")) == winners
    for name in winners:
        assert store.read("select", heads["select"], name) == \
            store.read("model", heads["model"], name)

    # provenance: each output commit names the commits it read, from the same run
    meta = {p: store.commit_of(p, heads[p]).metadata for p in PIPELINE_NAMES}
    assert len({meta[p]["dsc.workflow.uid"] for p in ran}) == 1
    assert {p: m["dsc.pipeline"] for p, m in meta.items()} == {p: p for p in PIPELINE_NAMES}
    assert meta["split"]["dsc.input.raw_data"] == f"raw-data@{inputs['raw-data']}"
    assert meta["model"]["dsc.input.split"] == f"split@{heads['split']}"
    assert meta["model"]["dsc.input.c-parameters"] == f"parameters@{inputs['parameters']}"
    assert meta["model"]["dsc.input.gamma-parameters"] == f"parameters@{inputs['parameters']}"
    assert meta["test"]["dsc.input.split"] == f"split@{heads['split']}"
    assert meta["test"]["dsc.input.model"] == f"model@{heads['model']}"
    assert meta["select"]["dsc.input.model"] == f"model@{heads['model']}"
    assert meta["select"]["dsc.input.test"] == f"test@{heads['test']}"
    assert meta["model"]["dsc.datums"].startswith("total=77")

    # every commit: the merge of one job commit onto the head before the run
    for p in ran:
        merge = store.commit_of(p, heads[p])
        assert merge.parents[0] == before[p]
        job = store.commit_of(p, merge.parents[1])
        assert job.parents == (before[p],)
        # (lakeFS adds `.lakefs.merge.strategy` to a merge)
        assert job.metadata == {k: v for k, v in merge.metadata.items()
                                if not k.startswith(".lakefs.")}
        record = json.loads(store.read(p, heads[p], ".dsc/job.json"))
        assert record["pipeline"] == p and record["run_uid"] == meta[p]["dsc.workflow.uid"]
    return heads


# --- --data DIR --------------------------------------------------------------------------

@pytest.fixture
def data(tmp_path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(EXAMPLE / "data", root)
    return root


def test_the_seed_demo_runs_on_a_data_directory(first_run, tmp_path, host_runner):
    data = first_run.copy_to(tmp_path / "data")
    program = program_for()
    store = directory_store(data, program)
    assert first_run.processed == {"split": 1, "model": 77, "test": 77, "select": 1}
    first = {p: store.commit_of(p, store.head(p, "main")).parents[0] for p in PIPELINE_NAMES}
    heads = check_seed_outputs(store, first)
    # What a user sees: one directory per pipeline, its provenance in .dsc/
    for p in PIPELINE_NAMES:
        seen = sorted(str(f.relative_to(data / p)) for f in (data / p).rglob("*")
                      if f.is_file() and ".dsc" not in f.parts)
        assert seen == sorted(o.path for o in store.objects(p, heads[p])
                              if not o.path.startswith(".dsc/"))
        record = json.loads((data / p / ".dsc" / "job.json").read_text())
        assert record["run_uid"] == store.commit_of(p, heads[p]).metadata["dsc.workflow.uid"]
    assert sorted(f.name for f in (data / "select").iterdir() if f.is_file()) == \
        sorted(o.path for o in store.objects("select", heads["select"])
               if not o.path.startswith(".dsc/"))
    assert not (data / ".dsc" / "repos" / "model" / "staging").exists() or \
        not any((data / ".dsc" / "repos" / "model" / "staging").iterdir())
    assert sorted(f.stem for f in (data / ".dsc" / "repos" / "model" / "branches").iterdir()) \
        == ["main"]

    # A second run with nothing changed runs no datum and makes no commit (issue 16)
    again, log = run_seed(store, host_runner, tmp_path / "scratch2",
                          {"DSC_STORAGE_NAMESPACE": LOCAL_NAMESPACE}, program)
    assert again.outcome.phase == "Succeeded", log
    assert {p: store.head(p, "main") for p in PIPELINE_NAMES} == heads
    assert [s.done for s in again.progress.states.values()] == [0, 0, 0, 0]


def test_a_failing_datum_fails_the_run_names_it_and_changes_no_output(data, tmp_path,
                                                                       host_runner):
    program = program_for()
    store = directory_store(data, program)
    bad = data / "parameters" / "c_parameters.txt" / "0000000000000003"
    good = bad.read_bytes()
    bad.write_text("not-a-number\n")
    store.ensure_repository("model", LOCAL_NAMESPACE, "main")
    model_before = store.head("model", "main")
    result, log = run_seed(store, host_runner, tmp_path / "scratch",
                           {"DSC_STORAGE_NAMESPACE": LOCAL_NAMESPACE}, program)
    assert result.outcome.phase == "Failed"
    failures = result.progress.failures()
    # c index 3 of the cross split x c (11) x gamma (7): datums 21..27, each tried 3 times
    # (datum_tries) by the one worker, which goes on with the others and names them all
    bad_keys = ", ".join(f"{i}-0000000000000003" for i in range(21, 28))
    assert failures == [f"model: worker 0: pipeline `model`: 7 datums failed after 3 attempts "
                        f"each: {bad_keys} (exit code 2)"]  # the key names the datum's first
    assert "not-a-number" in log  # the user code's own error, from its log
    # each failed datum and how its output ended, from the worker's report
    assert re.search(r"worker 0: datum 27-0000000000000003 \(\w{12}\) failed \(exit code 2\); "
                     r"its output ended:\n.*\n.*invalid float value: 'not-a-number'", log)
    # The failed pods' logs stay; what they staged (a copy of their inputs) does not.
    logs = sorted(p.name for p in result.scratch.rglob("*.log") if "model-worker" in str(p))
    assert logs == ["main.log", "prepare.log", "user.log"]  # one pod: exit 1 is not retried
    assert not [p for p in result.scratch.rglob("*") if p.is_file() and p.suffix != ".log"]
    assert store.head("model", "main") == model_before
    assert not any(p.is_file() for p in (data / "model").rglob("*"))
    # the exit handler removed the job branch, keeping what the 70 datums that succeeded did
    # as a failed branch, for the next run to resume (compiler.runtime.resume)
    assert sorted(f.stem.split("-")[0]
                  for f in (data / ".dsc" / "repos" / "model" / "branches").iterdir()) \
        == ["dsc_failed", "main"]
    assert not (data / "test").exists()  # never started

    bad.write_bytes(good)
    split_before = store.head("split", "main")
    result, log = run_seed(store, host_runner, tmp_path / "scratch2",
                           {"DSC_STORAGE_NAMESPACE": LOCAL_NAMESPACE}, program)
    assert result.outcome.phase == "Succeeded", log
    # split committed in the failed run and has nothing new to do; the others run now
    assert store.head("split", "main") == split_before
    first = {p: store.commit_of(p, store.head(p, "main")).parents[0] for p in PIPELINE_NAMES}
    assert first["model"] == model_before
    assert store.commit_of("model", "main").metadata["dsc.datums"].endswith(" resumed=70")
    check_seed_outputs(store, first, ran=("model", "test", "select"))


# --- the lakeFS stand-in -----------------------------------------------------------------

def test_the_seed_demo_runs_against_lakefs(lakefs_standin, tmp_path, host_runner):
    from compiler.lakefs.client import LakeFS

    for repo, local in (("raw-data", EXAMPLE / "data" / "raw_data"),
                        ("parameters", EXAMPLE / "data" / "parameters")):
        lakefs_standin.seed(repo, {str(p.relative_to(local)): p.read_bytes()
                                   for p in sorted(local.rglob("*")) if p.is_file()},
                            branch="main")
    for p in ("split", "model"):  # two outputs exist; `open` creates the others
        lakefs_standin.seed(p, {"stale.txt": b"from before"}, branch="main")
    before = {p: lakefs_standin.head(p, "main") for p in ("split", "model")}
    store = LakeFS(lakefs_standin.endpoint, lakefs_standin.access_key_id,
                   lakefs_standin.secret_access_key)
    result, log = run_seed(store, host_runner, tmp_path / "scratch",
                           {"DSC_STORAGE_NAMESPACE": "local://dsc/{repo}"})
    assert result.outcome.phase == "Succeeded", log
    for p in ("test", "select"):  # created by the run, with an empty first commit
        before[p] = store.commit_of(p, store.head(p, "main")).parents[0]
    check_seed_outputs(store, before)
    assert "stale.txt" not in {o.path for o in store.objects("model", "main")}
    for p in PIPELINE_NAMES:  # no job branch left behind
        with lakefs_standin.store.lock:
            assert sorted(lakefs_standin.store.repository(p).branches) == ["main"]


# --- the command line --------------------------------------------------------------------

def clone_under_tmp(tmp_path: Path) -> Path:
    """The repository's files as a clone has them, in pytest's directory under /tmp (which
    the host runner covers with each datum's private /tmp)."""
    clone = tmp_path / "clone"
    tracked = subprocess.run(["git", "ls-files", "-z", "compiler", "schemas", "examples"],
                             cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, tracked):
        target = clone / name.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name.decode(), target)
    return clone


def test_the_readme_command_runs_the_demo(data, tmp_path, host_runner):
    """The README's command, from a clone under /tmp: the working directory and the code the
    specs name by relative path stay reachable from each datum."""
    clone = clone_under_tmp(tmp_path)
    assert str(clone).startswith("/tmp/")
    done = subprocess.run(
        [sys.executable, "-m", "compiler", "run", "--values",
         "examples/hyperparameter/host.values", "examples/hyperparameter/pipelines",
         "--data", str(data)],
        cwd=clone, env={**os.environ, "PYTHONPATH": str(clone)}, capture_output=True,
        text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert any(line.startswith("model: committed ") for line in lines)
    summary = lines[lines.index(next(x for x in lines if x.startswith("pipeline "))):]
    assert [line.split()[:3] for line in summary[1:5]] == [
        ["split", "1/1", "0"], ["model", "77/77", "0"], ["test", "77/77", "0"],
        ["select", "1/1", "0"]]
    assert lines[-1].endswith("succeeded")
    store = DirectoryStore(data)  # the run remembered that raw-data is DIR/raw_data
    first = {p: store.commit_of(p, store.head(p, "main")).parents[0] for p in PIPELINE_NAMES}
    heads = check_seed_outputs(store, first)

    # ... and its provenance reads back from the directory alone
    shown = subprocess.run(
        [sys.executable, "-m", "compiler", "provenance", "--data", str(data), "-o", "json",
         "lakefs://select/main"], capture_output=True, text=True, timeout=600, check=False)
    assert shown.returncode == 0, shown.stderr
    lineage = json.loads(shown.stdout)

    def commits(node):
        yield node["repo"], node["commit"]
        for child in node.get("inputs", []):
            yield from commits(child)

    found = dict(commits(lineage))
    assert found == {**{p: heads[p] for p in PIPELINE_NAMES},
                     "raw-data": store.head("raw-data", "main"),
                     "parameters": store.head("parameters", "main")}
