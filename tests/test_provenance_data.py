"""`dsc provenance` and `dsc log` on a data directory (`dsc run --data DIR`): the IDs dsc
prints are refs, a Pachyderm repo name is met with the lakeFS name dsc maps it to, an output's
older commits are listed and traced, and an input edited since still traces."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from compiler.local.runners import HostRunner, RunnerError
from compiler.store.directory import DirectoryStore
from tests.conftest import ROOT, run_dsc


def publish(store: DirectoryStore, pipeline: str, files: dict[str, bytes],
            inputs: dict[str, str], run: str) -> str:
    """What a run's `open` and `commit` leave in the store: the job branch merged into main
    with provenance metadata."""
    store.ensure_repository(pipeline, f"local://{pipeline}", "main")
    base = store.head(pipeline, "main")
    branch = f"dsc-{pipeline}-{run}"
    store.create_branch_once(pipeline, branch, base)
    for path, data in files.items():
        store.upload(pipeline, branch, path, data)
    metadata = {"dsc.pipeline": pipeline, "dsc.workflow": run, "dsc.workflow.uid": f"uid-{run}",
                "dsc.datums": "total=1 processed=1 skipped=0 recovered=0",
                **{f"dsc.input.{name}": value for name, value in inputs.items()}}
    store.commit_once(pipeline, branch, "job", metadata, "dsc.workflow.uid", since=base)
    merged = store.merge_once(pipeline, branch, "main", f"dsc: {pipeline}", metadata,
                              "dsc.workflow.uid", since=base)
    store.delete_branch(pipeline, branch)
    return merged.id


@dataclass(frozen=True)
class Runs:
    data: Path
    raw: list[str]  # the commits of raw-data each run read, oldest first
    split: list[str]  # split's output commits, oldest first
    created: str  # split's first commit, "Repository created"


@pytest.fixture
def runs(tmp_path: Path) -> Runs:
    """Two runs of `split` (reading the Pachyderm repo raw_data, kept in lakeFS's name
    raw-data) with an edit of the input between them."""
    data = tmp_path / "data"
    (data / "raw_data").mkdir(parents=True)
    (data / "raw_data" / "iris.csv").write_text("5.1,3.5\n")
    raw, split = [], []
    for n, run in enumerate(("graph-1", "graph-2")):
        store = DirectoryStore(data, {"raw-data": "raw_data", "split": "split"})
        store.remember()
        raw.append(store.head("raw-data", "main"))  # what `open` pins
        split.append(publish(store, "split", {"train.csv": str(n).encode()},
                             {"raw_data": f"raw-data@{raw[-1]}"}, run))
        (data / "raw_data" / "iris.csv").write_text(f"4.9,3.{n}\n")  # edited after the run
    created = DirectoryStore(data).commit_of("split", split[0]).parents[0]
    return Runs(data, raw, split, created)


def dsc(runs: Runs, command: str, *args: str) -> tuple[int, str, str]:
    result = run_dsc(command, "--data", str(runs.data), *args)
    return result.exit_code, result.stdout, result.stderr


def when(runs: Runs, repo: str, commit: str) -> str:
    created = DirectoryStore(runs.data).commit_of(repo, commit).created
    return datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- older commits, by the IDs dsc prints ------------------------------------------------------

def test_an_older_output_traces_to_the_input_as_it_was_before_the_edit(runs: Runs) -> None:
    code, out, err = dsc(runs, "provenance", f"lakefs://split/{runs.split[0][:12]}")
    assert (code, err) == (0, "")
    assert out == (f"split@{runs.split[0][:12]}  pipeline split · run graph-1 · 1 datum\n"
                   f"└── raw_data: raw-data@{runs.raw[0][:12]}  (source)\n")
    assert runs.raw[0] != runs.raw[1]
    latest = dsc(runs, "provenance", "lakefs://split/main")
    assert latest[1].splitlines()[1] == f"└── raw_data: raw-data@{runs.raw[1][:12]}  (source)"


def test_the_source_commit_itself_is_found_by_its_short_id(runs: Runs) -> None:
    code, out, _ = dsc(runs, "provenance", f"lakefs://raw-data/{runs.raw[0][:12]}", "-o",
                       "json")
    assert code == 0
    assert json.loads(out)["commit"] == runs.raw[0]


def test_log_lists_an_outputs_commits_newest_first(runs: Runs) -> None:
    code, out, err = dsc(runs, "log", "lakefs://split/main")
    assert (code, err) == (0, "")
    s = runs.split
    assert out.splitlines() == [
        f"{s[1][:12]}  {when(runs, 'split', s[1])}  pipeline split · run graph-2 · 1 datum",
        f"{s[0][:12]}  {when(runs, 'split', s[0])}  pipeline split · run graph-1 · 1 datum",
        f"{runs.created[:12]}  {when(runs, 'split', runs.created)}  Repository created"]
    # from an older commit, by its short ID; -n stops early
    assert dsc(runs, "log", f"lakefs://split/{s[0][:12]}", "-n", "1")[1] == out.splitlines(
        keepends=True)[1]


def test_log_as_json_gives_full_ids_and_provenance(runs: Runs) -> None:
    code, out, _ = dsc(runs, "log", "lakefs://split/main", "-o", "json", "-n", "1")
    assert code == 0
    [entry] = json.loads(out)
    assert entry["commit"] == runs.split[1] and entry["parents"][0] == runs.split[0]
    assert (entry["pipeline"], entry["workflow"]) == ("split", "graph-2")
    assert entry["inputs"] == {"raw_data": f"raw-data@{runs.raw[1]}"}
    assert entry["created"] == when(runs, "split", runs.split[1])


def test_log_of_the_users_data_lists_the_versions_runs_read(runs: Runs) -> None:
    current = DirectoryStore(runs.data, {"raw-data": "raw_data"}).commit_of("raw-data", "main")
    code, out, _ = dsc(runs, "log", "lakefs://raw-data/main")
    assert code == 0
    assert out.splitlines() == [
        f"{current.id[:12]}  -                     the files in {runs.data / 'raw_data'}",
        f"{runs.raw[1][:12]}  {when(runs, 'raw-data', runs.raw[1])}  the files of raw_data/ "
        "when a run read them",
        f"{runs.raw[0][:12]}  {when(runs, 'raw-data', runs.raw[0])}  the files of raw_data/ "
        "when a run read them"]


# --- refs that name nothing, or more than one commit ------------------------------------------

@pytest.mark.parametrize("command", ["provenance", "log"])
def test_an_unknown_or_ambiguous_commit_id_is_a_clear_error(runs: Runs, command: str) -> None:
    commits = runs.data / ".dsc" / "repos" / "split" / "commits"
    ids = [p.stem for p in commits.iterdir()]  # the jobs' commits too, below the merges
    unknown = next(p for p in (f"{i:04x}" for i in range(1 << 16))
                   if not any(c.startswith(p) for c in ids))
    code, out, err = dsc(runs, command, f"lakefs://split/{unknown}")
    assert (code, out) == (3, "")
    operation = "get commit" if command == "provenance" else "log commits"
    assert err == (f"dsc: error: lakefs://split/{unknown}: no such repository or ref (data "
                   f"directory {operation}: 404: no commit of `split` has an ID starting with "
                   f"{unknown})\n")
    for _ in range(16):  # more commits until two IDs start alike
        if len({c[0] for c in ids}) < len(ids):
            break
        store = DirectoryStore(runs.data)
        ids.append(publish(store, "split", {"x": str(len(ids)).encode()}, {}, f"g{len(ids)}"))
    digit = next(d for d in "0123456789abcdef" if sum(c[0] == d for c in ids) > 1)
    code, out, err = dsc(runs, command, f"lakefs://split/{digit}")
    assert (code, out) == (3, "")
    assert err.startswith(f"dsc: error: lakefs://split/{digit}: data directory {operation}: "
                          f"400: {digit} is the start of ")
    assert err.endswith("): give more of it\n") and err.count("\n") == 1


# --- names: the lakeFS name dsc maps a Pachyderm repo to -----------------------------------------

@pytest.mark.parametrize("command", ["provenance", "log"])
def test_the_directory_name_is_met_with_the_repository_it_holds(runs: Runs,
                                                                command: str) -> None:
    code, _out, err = dsc(runs, command, "lakefs://raw_data/main")
    assert code == 2
    assert err.splitlines()[-1] == (
        "Error: Invalid value for 'lakefs://REPO/REF': 'lakefs://raw_data/main': 'raw_data' is "
        "not a lakeFS repository name (^[a-z0-9][a-z0-9-]{2,62}$); did you mean "
        "lakefs://raw-data/main? (dsc maps the Pachyderm repo `raw_data` to the lakeFS "
        "repository `raw-data`)")


def test_a_short_name_is_met_with_the_name_dsc_gave_it(tmp_path: Path) -> None:
    (tmp_path / "wc").mkdir()
    (tmp_path / "wc" / "a.txt").write_text("a b\n")
    store = DirectoryStore(tmp_path, {"wc-repo": "wc"})
    store.remember()
    store.head("wc-repo", "main")
    result = run_dsc("provenance", "--data", str(tmp_path), "lakefs://wc/main")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].endswith(
        "'wc' is not a lakeFS repository name (^[a-z0-9][a-z0-9-]{2,62}$); did you mean "
        "lakefs://wc-repo/main? (dsc maps the Pachyderm repo `wc` to the lakeFS repository "
        "`wc-repo`)")
    assert run_dsc("provenance", "--data", str(tmp_path), "lakefs://wc-repo/main").stdout \
        .endswith("(source)\n")


def test_a_repository_the_directory_lacks_is_said_with_those_it_holds(runs: Runs,
                                                                      tmp_path: Path) -> None:
    code, out, err = dsc(runs, "provenance", "lakefs://model/main")
    assert (code, out) == (3, "")
    assert err.rstrip().endswith("; the data directory holds raw-data, split")
    (tmp_path / "empty").mkdir()
    empty = run_dsc("log", "--data", str(tmp_path / "empty"), "lakefs://split/main")
    assert empty.exit_code == 3
    assert empty.stderr.rstrip().endswith("; the data directory holds no repository (is it "
                                          "one `dsc run --data` wrote?)")


# --- end to end: `dsc run` twice, an edit between ------------------------------------------------

def test_after_an_edit_and_a_second_run_the_first_output_still_traces(tmp_path: Path) -> None:
    try:
        HostRunner(ROOT)
    except RunnerError as exc:
        pytest.skip(f"the host runner cannot run here: {exc}")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "copy.json").write_text(json.dumps({
        "pipeline": {"name": "copy"},
        "transform": {"image": "alpine:3.20", "cmd": ["sh", "-c", "cp -r /pfs/texts/. /pfs/out/"]},
        "input": {"pfs": {"repo": "texts", "glob": "/"}}}))
    data = tmp_path / "data"
    (data / "texts").mkdir(parents=True)

    def dsc_run() -> None:
        subprocess.run([sys.executable, "-m", "compiler", "run", str(specs), "--data",
                        str(data)], cwd=ROOT, check=True, capture_output=True, timeout=300)

    (data / "texts" / "a.txt").write_text("one\n")
    dsc_run()
    (data / "texts" / "a.txt").write_text("two\n")
    dsc_run()
    log = run_dsc("log", "--data", str(data), "lakefs://copy/main")
    assert log.exit_code == 0 and len(log.stdout.splitlines()) == 3
    first = log.stdout.splitlines()[1][:12]
    traced = run_dsc("provenance", "--data", str(data), f"lakefs://copy/{first}")
    assert traced.exit_code == 0, traced.stderr
    source = traced.stdout.splitlines()[1]
    assert source.startswith("└── texts: texts@") and source.endswith("  (source)")
    texts = run_dsc("log", "--data", str(data), "lakefs://texts/main").stdout.splitlines()
    assert source[len("└── texts: texts@"):][:12] == texts[1][:12]  # the version before
