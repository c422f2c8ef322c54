"""Each verb's rules, one at a time: what a job refuses, how outputs are assembled, what the
exit handler leaves, and that credentials never show."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from compiler.config import Config, load_config
from compiler.contract.job import JobError
from compiler.runtime import verbs
from tests.runtime.harness import Harness, compiled_steps, short_downloads


def specs(tmp: Path, *docs: dict[str, Any]) -> Path:
    d = tmp / "specs"
    d.mkdir(exist_ok=True)
    for doc in docs:
        (d / f"{doc['pipeline']['name']}.json").write_text(json.dumps(doc))
    return d


def pipeline(name: str, input: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"pipeline": {"name": name}, "transform": {"image": "busybox:1", "cmd": ["true"]},
            "input": input, **extra}


def pfs(repo: str, glob: str = "/*", **extra: Any) -> dict[str, Any]:
    return {"pfs": {"repo": repo, "glob": glob, **extra}}


@pytest.fixture
def h(lakefs_standin, tmp_path) -> Harness:
    return Harness(lakefs_standin, tmp_path)


def steps_for(h: Harness, *docs: dict[str, Any], config: Config | None = None):
    steps, abort = compiled_steps(specs(h.tmp, *docs), config)
    return steps, abort


def write(name: str, content: str):
    def user(pfs_dir: Path, env: dict[str, str]) -> None:
        (pfs_dir / "out" / name).write_text(content)
    return user


def test_two_datums_writing_one_path_fail_the_job_naming_both(h):
    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"2"})
    h.standin.seed("report", {"old": b"x"})
    before = h.standin.branch_state("report", "main")
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    with pytest.raises(JobError, match=r"datums 0-a.txt \(\w{12}\) and 1-b.txt \(\w{12}\) "
                                       r"both wrote /summary.csv"):
        h.job(steps["report"], write("summary.csv", "same path"))
    assert h.standin.branch_state("report", "main") == before


def test_a_file_where_another_datum_writes_a_directory_fails(h):
    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"2"})
    h.standin.seed("report", {})

    def user(pfs_dir: Path, env: dict[str, str]) -> None:
        if env["texts"].endswith("a.txt"):
            (pfs_dir / "out" / "x").write_text("file")
        else:
            (pfs_dir / "out" / "x").mkdir()
            (pfs_dir / "out" / "x" / "y").write_text("under")

    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    with pytest.raises(JobError, match=r"wrote the file /x and datum 1-b.txt \(\w{12}\) "
                                       r"wrote /x/y"):
        h.job(steps["report"], user)


def test_symlinks_into_inputs_are_stored_as_their_content(h):
    """The seed's `select` writes `ln -s /pfs/model/<file> /pfs/out/<name>`."""
    h.standin.seed("models", {"m1.pkl": b"model one", "m2.pkl": b"model two"})
    h.standin.seed("select", {})

    def user(pfs_dir: Path, env: dict[str, str]) -> None:
        os.symlink(pfs_dir / "models" / "m2.pkl", pfs_dir / "out" / "best.pkl")
        os.symlink("best.pkl", pfs_dir / "out" / "relative.pkl")
        os.symlink(pfs_dir / "models", pfs_dir / "out" / "all")

    steps, _ = steps_for(h, pipeline("select", pfs("models", "/")))
    done = h.job(steps["select"], user)
    files = {p: v for p, v in h.standin.objects("select", done.commit).items()
             if not p.startswith(".dsc/")}
    assert files == {"best.pkl": b"model two", "relative.pkl": b"model two",
                     "all/m1.pkl": b"model one", "all/m2.pkl": b"model two"}


def test_a_dangling_symlink_is_named(h):
    h.standin.seed("models", {"m1.pkl": b"1"})
    h.standin.seed("select", {})

    def user(pfs_dir: Path, env: dict[str, str]) -> None:
        os.symlink("/nowhere/x", pfs_dir / "out" / "broken")

    steps, _ = steps_for(h, pipeline("select", pfs("models", "/")))
    with pytest.raises(JobError, match=r"/pfs/out/broken is a symlink to '/nowhere/x', which "
                                       "does not exist"):
        h.job(steps["select"], user)


def test_empty_files_are_placeholders_and_links_to_them_keep_the_content(h):
    h.standin.seed("big", {"a.bin": b"A" * 1000, "b.bin": b"B" * 10})
    h.standin.seed("shuffle", {})
    seen = {}

    def user(pfs_dir: Path, env: dict[str, str]) -> None:
        path = Path(env["big"])
        seen[path.name] = path.stat().st_size
        os.symlink(path, pfs_dir / "out" / ("moved-" + path.name))

    steps, _ = steps_for(h, pipeline("shuffle", pfs("big", empty_files=True)))
    done = h.job(steps["shuffle"], user)
    assert seen == {"a.bin": 0, "b.bin": 0}
    files = h.standin.objects("shuffle", done.commit)
    assert files["moved-a.bin"] == b"A" * 1000 and files["moved-b.bin"] == b"B" * 10


def test_a_recovered_datum_publishes_nothing_and_is_counted(h):
    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"2"})
    h.standin.seed("report", {})

    def user(pfs_dir: Path, env: dict[str, str]) -> None:
        name = Path(env["texts"]).stem
        (pfs_dir / "out" / f"{name}.out").write_text(name)
        if name == "b":  # failed, then err_cmd succeeded: the wrapper leaves the marker
            (pfs_dir / ".dsc-recovered").touch()

    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    done = h.job(steps["report"], user)
    files = h.standin.objects("report", done.commit)
    assert "a.out" in files and "b.out" not in files
    index = json.loads(files[".dsc/index/000000.json"])
    assert [e["state"] for e in index] == ["processed", "recovered"]
    meta = h.standin.commit("report", done.commit).metadata
    assert meta["dsc.datums"] == "total=2 processed=1 skipped=0 deleted=0 recovered=1"
    # Pachyderm retries a recovered datum in the next job: the other is skipped
    h.standin.seed("texts", {"c.txt": b"3"})
    again = dataclasses.replace(h, run="next", uid="uid-next").job(steps["report"], user)
    meta = h.standin.commit("report", again.commit).metadata
    assert meta["dsc.datums"] == "total=3 processed=1 skipped=1 deleted=0 recovered=1"


def test_open_refuses_a_plan_that_differs_from_the_pinned_compile(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    with pytest.raises(JobError, match=r"now give 1 datums .* compiled for 2 .*dsc compile --pin"):
        verbs.open_job(h.context(), steps["report"].job, [], (2, "0" * 64))
    assert branches(h, "report") == ["main"]


def test_open_refuses_more_datums_than_a_configured_budget(h):
    h.standin.seed("texts", {f"{i}.txt": b"x" for i in range(5)})
    h.standin.seed("report", {})
    (h.tmp / "dsc.yaml").write_text("limits:\n  max_datums: 4\n")
    config = load_config(h.tmp / "dsc.yaml", environ={})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")), config=config)
    with pytest.raises(JobError, match=r"5 datums, over the budget of 4 \(`limits.max_datums"):
        h.open(steps["report"])
    assert branches(h, "report") == ["main"]
    # no budget, no ceiling
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    assert h.open(steps["report"]).todo == 5


def test_a_job_past_its_job_timeout_stops_at_the_next_datum(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts"), job_timeout="10s"))
    opened = h.open(steps["report"])
    h.clock = lambda: 10**10
    with pytest.raises(JobError, match=r"worker 0: the job has run longer than its "
                                       "job_timeout of 10 s"):
        h.work(steps["report"], opened.branch, write("a.out", "x"))


def test_abort_deletes_or_keeps_job_branches_and_never_touches_outputs(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {"kept": b"1"})
    before = h.standin.branch_state("report", "main")
    steps, abort = steps_for(h, pipeline("report", pfs("texts")))
    outputs = [abort[i + 1] for i, a in enumerate(abort) if a == "--output"]
    assert outputs == ["report=report@main"]
    opened = h.open(steps["report"])
    verbs.abort(h.context(), "report", "Failed", outputs, keep_branches=True)
    assert branches(h, "report") == [opened.branch, "main"]
    assert "kept job branch report@dsc-report-" in h.logs[-1]
    verbs.abort(h.context(), "report", "Failed", outputs, keep_branches=False)
    assert branches(h, "report") == ["main"]
    assert h.standin.branch_state("report", "main") == before
    assert h.logs[-1].endswith(f"output branch report@main unchanged by this run (head "
                               f"{before.head[:12]})")


def test_the_exit_handler_says_which_outputs_this_run_advanced(h):
    """A run whose first pipeline committed and whose second failed: the exit handler's log
    says so per output branch, never "the output branches are unchanged" for both."""
    h.standin.seed("texts", {"a.txt": b"1"})
    for repo in ("first", "second"):
        h.standin.seed(repo, {})
    steps, abort = steps_for(h, pipeline("first", pfs("texts")),
                             pipeline("second", pfs("first")))
    done = h.job(steps["first"], write("a.out", "x"))
    h.open(steps["second"], pins=[f"first@{done.commit}"])
    outputs = [abort[i + 1] for i, a in enumerate(abort) if a == "--output"]
    verbs.abort(h.context(), "g", "Failed", outputs, keep_branches=False)
    lines = {line.split(":")[1].strip(): line for line in h.logs[-2:]}
    assert lines["first"].endswith(f"output branch first@main advanced to {done.commit[:12]} "
                                   "by this run")
    assert "deleted job branch second@dsc-second-" in lines["second"]
    assert "output branch second@main unchanged by this run" in lines["second"]


def only(repo: str, operation: str):
    """A fault selector's `where`: requests of `operation`'s path on `repo`'s main branch."""
    return lambda r: r.path.startswith(f"/repositories/{repo}/") and (
        r.path.endswith("/branches/main") if operation == "getBranch" else True)


def test_the_exit_handler_says_unknown_and_why_when_an_output_cannot_be_read(h):
    """Issue 19: when the output branch's history cannot be read, the exit handler neither
    claims it advanced nor that it is unchanged: it says unknown, and why. The job branch is
    still deleted."""
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {})
    steps, abort = steps_for(h, pipeline("report", pfs("texts")))
    opened = h.open(steps["report"])
    outputs = [abort[i + 1] for i, a in enumerate(abort) if a == "--output"]
    h.standin.faults.add("logCommits", 403, times=None, where=only("report", "logCommits"))
    verbs.abort(h.context(), "g", "Failed", outputs, keep_branches=False)
    assert h.logs[-1] == (f"abort g (Failed): report: deleted job branch report@{opened.branch}"
                          "; output branch report@main: unknown, it could not be read (lakeFS "
                          "log commits: 403: HTTP 403 (injected by the lakeFS stand-in))")
    assert branches(h, "report") == ["main"]


def test_the_run_summary_says_unknown_and_why_when_an_output_cannot_be_read(h):
    """`dsc run`'s summary (branch_outcomes): a head that cannot be read is "unknown" with
    the error, and a head that moved when its history cannot be read is "unknown by whom";
    never "advanced" or "unchanged"."""
    from compiler.commands.compile import CompileRequest, compile_specs
    from compiler.local.session import branch_outcomes, output_heads
    from compiler.local.workflow import load_program

    h.standin.seed("texts", {"a.txt": b"1"})
    for repo in ("first", "second"):
        h.standin.seed(repo, {})
    docs = (pipeline("first", pfs("texts")), pipeline("second", pfs("first")))
    steps, _ = steps_for(h, *docs)
    compiled = compile_specs(CompileRequest(paths=(specs(h.tmp, *docs),)))
    assert compiled.documents is not None
    program = load_program(compiled.documents)
    store = h.client()
    before = output_heads(store, program)
    done = h.job(steps["first"], write("a.out", "x"))
    h.job(steps["second"], write("b.out", "y"), pins=[f"first@{done.commit}"])

    def place(repo: str, branch: str, commit: str) -> str:
        return f"{repo}@{branch}: advanced to {commit[:12]}"

    assert branch_outcomes(store, program, before, h.uid, place)["first"] == \
        f"first@main: advanced to {done.commit[:12]}"
    h.standin.faults.add("getBranch", 403, times=None, where=only("first", "getBranch"))
    h.standin.faults.add("logCommits", 403, times=None, where=only("second", "logCommits"))
    outcomes = branch_outcomes(store, program, before, h.uid, place)
    injected = "403: HTTP 403 (injected by the lakeFS stand-in)"
    assert outcomes == {
        "first": f"first@main: unknown (lakeFS get branch: {injected})",
        "second": (f"second@main: moved to {h.standin.head('second', 'main')[:12]}; unknown "
                   f"by whom (lakeFS log commits: {injected})")}


def test_open_creates_a_missing_output_repository_in_the_storage_namespace(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    with pytest.raises(JobError, match=r"output branch report@main does not exist .*"
                                       "storage_namespace"):
        h.open(steps["report"])
    h.env["DSC_STORAGE_NAMESPACE"] = "local://lakefs/{repo}"
    done = h.job(steps["report"], write("a.out", "x"))
    assert h.standin.read("report", done.commit, "a.out") == b"x"
    assert any("created lakeFS repository report at local://lakefs/report" in line
               for line in h.logs)


def test_a_worker_checks_what_it_downloads(h, monkeypatch):
    h.standin.seed("texts", {"a.txt": b"12345"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    opened = h.open(steps["report"])
    short_downloads(monkeypatch)
    with pytest.raises(JobError, match=r"texts@\w{12}:/a.txt: read 4 bytes, lakeFS lists 5"):
        h.work(steps["report"], opened.branch, write("a.out", "x"))


def test_a_worker_stages_through_presigned_urls(h):
    h.standin.seed("texts", {"a.txt": b"presigned bytes"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    opened = h.open(steps["report"])
    h.presign = True
    seen = []
    h.work(steps["report"], opened.branch,
           lambda pfs_dir, env: seen.append((pfs_dir / "texts" / "a.txt").read_bytes()))
    assert seen == [b"presigned bytes"]
    assert [r.query.get("presign") for r in h.standin.calls("getObject")][-1] == "true"


def test_a_worker_refuses_another_runs_branch(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    opened = h.open(steps["report"])
    h.run = "another-run"
    with pytest.raises(JobError, match=r"is not this run's branch"):
        h.work(steps["report"], opened.branch, write("a.out", "x"))


def branches(h: Harness, repo: str) -> list[str]:
    with h.standin.store.lock:
        return sorted(h.standin.store.repository(repo).branches)


def cron_pipeline(**cron: Any) -> dict[str, Any]:
    return pipeline("nightly", {"cron": {"name": "tick", "spec": "@daily", "repo": "ticks",
                                         **cron}})


def test_a_cron_run_commits_its_tick_once_and_plans_over_the_ticks(h):
    h.standin.seed("ticks", {"2026-11-23T00:00:00Z": b""})
    h.standin.seed("nightly", {})
    steps, _ = steps_for(h, cron_pipeline())
    h.env["DSC_RUN_CREATED"] = "2026-11-24T00:00:03Z"
    before = h.standin.head("ticks", "main")
    opened = verbs.open_job(h.context(), steps["nightly"].job, [], None, "ticks")
    assert h.planned(steps["nightly"], opened.branch) == [
        "0-2026-11-23T00_00_00Z", "1-2026-11-24T00_00_03Z"]
    tick = h.standin.commit("ticks", "main")
    assert tick.parents == (before,) and tick.metadata["dsc.cron.tick"] == "2026-11-24T00:00:03Z"
    # open run again by the retryStrategy: the tick is not committed twice
    verbs.open_job(h.context(), steps["nightly"].job, [], None, "ticks")
    assert h.standin.head("ticks", "main") == tick.id


def test_a_cron_tick_with_overwrite_replaces_the_last_and_none_is_written_before_start(h):
    h.standin.seed("ticks", {"2026-11-23T00:00:00Z": b""})
    h.standin.seed("nightly", {})
    steps, _ = steps_for(h, cron_pipeline(overwrite=True, start="2026-11-24T00:00:00Z"))
    h.env["DSC_RUN_CREATED"] = "2026-11-23T12:00:00+01:00"
    opened = verbs.open_job(h.context(), steps["nightly"].job, [], None, "ticks")
    assert h.planned(steps["nightly"], opened.branch) == ["0-2026-11-23T00_00_00Z"]
    assert "is before the input's start" in "\n".join(h.logs)
    h.run, h.uid = "nightly-2", "uid-2"
    h.env["DSC_RUN_CREATED"] = "2026-11-25T00:00:00Z"
    opened = verbs.open_job(h.context(), steps["nightly"].job, [], None, "ticks")
    assert h.planned(steps["nightly"], opened.branch) == ["0-2026-11-25T00_00_00Z"]
    assert set(h.standin.objects("ticks", "main")) == {"2026-11-25T00:00:00Z"}


def test_datum_keys_are_the_plan_index_and_a_readable_hint(h):
    h.standin.seed("texts", {f"a rather long file name {i:04d}.txt": b"x" for i in range(50)})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    keys = h.planned(steps["report"], h.open(steps["report"]).branch)
    assert len(keys) == 50
    assert keys[7] == "7-a_rather_long_file_name"


def test_an_input_branch_the_repo_lacks_names_its_branches_and_the_setting(h):
    """Pachyderm specs read `master`, Pachyderm's default, where dsc wrote `main`."""
    h.standin.seed("split", {"train.csv": b"1"})  # another graph's output, on main
    h.standin.seed("model", {})
    steps, _ = steps_for(h, pipeline("model", pfs("split", branch="master")))
    with pytest.raises(JobError, match=r"input `split`: lakeFS has no split@master \(.*\); "
                                       r"its branches are main: to read main, set the "
                                       r"input's `branch`"):
        h.open(steps["model"])
    steps, _ = steps_for(h, pipeline("model", pfs("split")),
                         config=Config(default_branch="master"))
    with pytest.raises(JobError, match=r"its branches are main: to read main, set "
                                       r"`default_branch` in dsc.yaml \(or --default-branch, "
                                       r"DSC_DEFAULT_BRANCH\), or the input's `branch`"):
        h.open(steps["model"])
