"""Triggered runs against the lakeFS stand-in: what `open` reads for a trigger, and what the
reconciler finds missed, with the argv `dsc compile --trigger` emits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compiler import contract
from compiler.commands.compile import CompileRequest, compile_specs
from compiler.config import Config
from compiler.contract import run_name
from compiler.contract.job import JobError
from compiler.runtime import verbs
from compiler.runtime.reconcile import reconcile
from tests.runtime.harness import Harness, Steps, steps_of
from tests.runtime.test_verbs import pfs, pipeline, specs, write

BOOKKEEPING = {contract.BOOKKEEPING_KEY: "trigger-install graph"}


@pytest.fixture
def h(lakefs_standin, tmp_path) -> Harness:
    return Harness(lakefs_standin, tmp_path)


def compiled(h: Harness, *docs: dict[str, Any]) -> tuple[dict[str, Steps], list[str]]:
    """Each pipeline's steps and the reconciler's detect argv, from `dsc compile --trigger`."""
    result = compile_specs(CompileRequest(paths=(specs(h.tmp, *docs),), name="graph",
                                          config=Config(), trigger=True))
    assert result.documents is not None, [d.message for d in result.result.diagnostics]
    steps, _abort, detect = steps_of(result.documents)
    return steps, detect


def triggered_open(h: Harness, steps: Steps, repo: str, branch: str,
                   commit: str) -> verbs.Opened:
    """`open` as a triggered run calls it: the compiled options, Argo's parameters filled
    in."""
    params = {"{{workflow.parameters.trigger-repo}}": repo,
              "{{workflow.parameters.trigger-branch}}": branch,
              "{{workflow.parameters.trigger-commit}}": commit}
    o = {name: params.get(value, value) for name, value in steps.options.items()}
    trigger = verbs.Trigger.parse(o.get("trigger-repo", ""), o.get("trigger-branch", ""),
                                  o.get("trigger-commit", ""))
    return verbs.open_job(h.context(), steps.job, [], None, "", trigger)


def read_commits(h: Harness, repo: str, branch: str) -> dict[str, str]:
    """The input commits the job on `branch` recorded."""
    record = json.loads(h.standin.read(repo, branch, contract.JOB_FILE))
    return {i["name"]: i["commit"] for i in record["inputs"]}


def detect(h: Harness, argv: list[str]) -> list[dict[str, str]]:
    reconcile(h.context(), argv[argv.index("--sources") + 1])
    runs: list[dict[str, str]] = json.loads(h.outputs()["runs.json"])
    return runs


def test_only_pipelines_reading_a_source_get_the_trigger_options(h):
    steps, _ = compiled(h, pipeline("clean", pfs("raw")), pipeline("report", pfs("clean")))
    assert steps["clean"].options["trigger-commit"] == "{{workflow.parameters.trigger-commit}}"
    assert "trigger-commit" not in steps["report"].options


def test_a_triggered_run_reads_the_commit_it_was_started_for(h):
    first = h.standin.seed("raw", {"a.txt": b"1"})
    h.standin.seed("clean", {})
    steps, _ = compiled(h, pipeline("clean", pfs("raw")))
    opened = triggered_open(h, steps["clean"], "raw", "main", first)
    assert read_commits(h, "clean", opened.branch) == {"raw": first}


def test_through_a_bookkeeping_commit_the_trigger_commit_is_read(h):
    data = h.standin.seed("raw", {"a.txt": b"1"})
    h.standin.seed("raw", {"_lakefs_actions/dsc-graph.yaml": b"name: x\n"}, metadata=BOOKKEEPING)
    h.standin.seed("clean", {})
    steps, _ = compiled(h, pipeline("clean", pfs("raw")))
    opened = triggered_open(h, steps["clean"], "raw", "main", data)
    assert read_commits(h, "clean", opened.branch) == {"raw": data}


def test_a_run_whose_branch_moved_on_reads_the_head_not_older_data(h):
    old = h.standin.seed("raw", {"a.txt": b"1"})
    new = h.standin.seed("raw", {"a.txt": b"2"})
    h.standin.seed("clean", {})
    steps, _ = compiled(h, pipeline("clean", pfs("raw")))
    opened = triggered_open(h, steps["clean"], "raw", "main", old)
    assert read_commits(h, "clean", opened.branch) == {"raw": new}
    assert f"moved on from the trigger's commit {old[:12]} to {new[:12]}" in "\n".join(h.logs)


def test_a_trigger_for_another_branch_leaves_the_inputs_at_their_heads(h):
    head = h.standin.seed("raw", {"a.txt": b"1"})
    other = h.standin.seed("params", {"p": b"1"})
    h.standin.seed("clean", {})
    steps, _ = compiled(h, pipeline("clean", {"cross": [pfs("raw"), pfs("params")]}))
    opened = triggered_open(h, steps["clean"], "params", "main", other)
    assert read_commits(h, "clean", opened.branch) == {"raw": head, "params": other}


@pytest.mark.parametrize(("repo", "branch", "commit", "message"), [
    ("raw", "", "a" * 64, "go together"),
    ("raw", "main", "abc", "not a 64-hex lakeFS commit ID"),
])
def test_incomplete_or_malformed_trigger_options_are_refused(repo, branch, commit, message):
    with pytest.raises(JobError, match=message):
        verbs.Trigger.parse(repo, branch, commit)
    assert verbs.Trigger.parse("", "", "") is None


def test_the_reconciler_submits_each_unprocessed_head_once_and_skips_processed_ones(h):
    raw = h.standin.seed("raw", {"a.txt": b"1"})
    params = h.standin.seed("params", {"p": b"1"})
    h.standin.seed("clean", {})
    h.standin.seed("tune", {})
    steps, argv = compiled(h, pipeline("clean", {"cross": [pfs("raw"), pfs("params")]}),
                           pipeline("tune", pfs("params")))
    prefix = "graph"
    # Nothing has run: each source branch is one missed run, however many pipelines read it.
    assert detect(h, argv) == [
        {"name": run_name(prefix, "params", "main", params), "repo": "params",
         "branch": "main", "commit": params},
        {"name": run_name(prefix, "raw", "main", raw), "repo": "raw", "branch": "main",
         "commit": raw}]
    h.job(steps["clean"], write("x", "1"))
    # `tune` has not processed params' head yet: params is still missed, raw is not.
    assert [r["repo"] for r in detect(h, argv)] == ["params"]
    h.job(steps["tune"], write("y", "1"))
    assert detect(h, argv) == []
    assert "all 2 source branches processed" in h.logs[-1]
    # A commit the webhook missed: one run, named as the Sensor names that commit's event,
    # and the same name on every tick until a run has processed it.
    newer = h.standin.seed("raw", {"a.txt": b"2"})
    missed = [{"name": run_name(prefix, "raw", "main", newer), "repo": "raw",
               "branch": "main", "commit": newer}]
    assert detect(h, argv) == missed
    assert detect(h, argv) == missed
    h.run, h.uid = "graph-run-2", "uid-2"
    h.job(steps["clean"], write("x", "2"))
    assert detect(h, argv) == []


def test_the_reconciler_looks_through_bookkeeping_commits(h):
    h.standin.seed("raw", {"a.txt": b"1"})
    h.standin.seed("clean", {})
    steps, argv = compiled(h, pipeline("clean", pfs("raw")))
    h.job(steps["clean"], write("x", "1"))
    h.standin.seed("raw", {"_lakefs_actions/dsc-graph.yaml": b"v1"}, metadata=BOOKKEEPING)
    assert detect(h, argv) == []
    # A data commit under a bookkeeping commit: the run is the data commit's.
    data = h.standin.seed("raw", {"a.txt": b"2"})
    h.standin.seed("raw", {"_lakefs_actions/dsc-graph.yaml": b"v2"}, metadata=BOOKKEEPING)
    assert [r["commit"] for r in detect(h, argv)] == [data]


def test_a_manual_commit_on_the_output_counts_as_not_processed(h):
    raw = h.standin.seed("raw", {"a.txt": b"1"})
    h.standin.seed("clean", {})
    steps, argv = compiled(h, pipeline("clean", pfs("raw")))
    h.job(steps["clean"], write("x", "1"))
    h.standin.seed("clean", {"fix.txt": b"by hand"})
    assert [r["commit"] for r in detect(h, argv)] == [raw]
    assert "records no commit of input `raw`" in "\n".join(h.logs)


def test_a_missing_source_branch_fails_the_reconciler_naming_it(h):
    h.standin.seed("clean", {})
    _, argv = compiled(h, pipeline("clean", pfs("raw")))
    with pytest.raises(JobError, match="source input raw@main: lakeFS has no such branch"):
        detect(h, argv)


def test_detect_argv_is_what_the_cli_runs(h, monkeypatch, tmp_path: Path):
    from click.testing import CliRunner

    from compiler.cli import cli

    raw = h.standin.seed("raw", {"a.txt": b"1"})
    h.standin.seed("clean", {})
    _, argv = compiled(h, pipeline("clean", pfs("raw")))
    s = h.standin
    env = {"LAKEFS_ENDPOINT": s.endpoint, "LAKEFS_ACCESS_KEY_ID": s.access_key_id,
           "LAKEFS_SECRET_ACCESS_KEY": s.secret_access_key, "DSC_RUN": "graph-reconcile-1",
           "DSC_RUN_UID": "uid-r", "DSC_NAMESPACE": "argo",
           "DSC_OUTPUT_DIR": str(tmp_path / "params")}
    result = CliRunner().invoke(cli, argv, env=env)
    assert result.exit_code == 0, result.output
    runs = json.loads((tmp_path / "params" / "runs.json").read_text())
    assert runs == [{"name": run_name("graph", "raw", "main", raw), "repo": "raw",
                     "branch": "main", "commit": raw}]
    assert s.secret_access_key not in result.output
