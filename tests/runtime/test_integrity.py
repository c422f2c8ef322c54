"""lakeFS integrity (issue 19): an output commit holds exactly its job's outputs and its
provenance tells the truth, whoever else writes the output branch; job branches left behind
are found and removed, and never one a live run needs."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
from typing import Any

import pytest

from compiler.contract.job import JobError
from compiler.runtime import gc, verbs
from compiler.store import LakeFSError
from tests.runtime.harness import Harness
from tests.runtime.test_verbs import pfs, pipeline, steps_for, write


@pytest.fixture
def h(lakefs_standin, tmp_path) -> Harness:
    return Harness(lakefs_standin, tmp_path)


def other_run(h: Harness, name: str, owner: str | None = None, runner: str = "host"
              ) -> Harness:
    """Another run of the same graph, against the same lakeFS."""
    other = dataclasses.replace(h, run=name, uid=f"uid-{name}", logs=[], env=dict(h.env))
    other.env.update({"DSC_RUNNER": runner, "DSC_RUN_OWNER": owner or gc.this_process()})
    if runner == "argo":
        del other.env["DSC_RUNNER"], other.env["DSC_RUN_OWNER"]
    return other


def dead_owner() -> str:
    """This machine and boot, this pid, but another start time: a process that is gone."""
    host, boot, pid, _start = gc.this_process().split(":")
    return f"{host}:{boot}:{pid}:1"


def test_open_refuses_while_another_live_run_writes_the_output_branch(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {"old": b"x"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    first = other_run(h, "first-run")
    first.open(steps["report"])
    second = other_run(h, "second-run")
    with pytest.raises(JobError, match=r"another job is writing report@main: job branch "
                                       r"dsc-report-first-run of run first-run \(`dsc run` "
                                       rf"\(host runner\) pid {os.getpid()} on "
                                       rf"{socket.gethostname()}, opened .* ago: that "
                                       r"process is running\)"):
        second.open(steps["report"])
    # nothing was created for the refused run
    assert sorted(h.standin.state()["report"].branches) == ["dsc-report-first-run", "main"]


def test_open_reports_and_passes_a_job_branch_whose_run_is_gone(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {"old": b"x"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    other_run(h, "killed-run", owner=dead_owner()).open(steps["report"])
    rerun = other_run(h, "rerun")
    done = rerun.job(steps["report"], write("a.out", "y"))
    assert any("stale job branch report@dsc-report-killed-run of run killed-run" in line
               and "that process is gone" in line and "`dsc gc` removes it" in line
               for line in rerun.logs)
    assert h.standin.head("report", "main") == done.commit


def test_an_argo_run_passes_a_job_branch_its_mutex_shows_is_not_running(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {"old": b"x"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    other_run(h, "failed-run", runner="argo").open(steps["report"])  # exit handler not yet
    retry = other_run(h, "next-run", runner="argo")
    retry.job(steps["report"], write("a.out", "y"))
    assert any("of run failed-run" in line and "mutex" in line for line in retry.logs)


def per_datum(pfs_dir: Any, env: dict[str, str]) -> None:
    (pfs_dir / "out" / env["PACH_DATUM_ID"]).write_text("z")


def test_two_runs_at_once_never_both_land_and_the_loser_is_named(h):
    """Two `dsc run`s of one graph in threads: one output commit lands; the other run fails
    with a message naming the other run (at open) or what moved the branch (at merge)."""
    h.standin.seed("texts", {f"{i}.txt": b"1" for i in range(3)})
    base = h.standin.seed("report", {"old": b"x"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    runs = [other_run(h, f"run-{i}") for i in range(2)]
    start = threading.Barrier(2)
    results: dict[int, Any] = {}

    def go(i: int) -> None:
        start.wait()
        try:
            results[i] = runs[i].job(steps["report"], per_datum)
        except (JobError, LakeFSError) as exc:
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    landed = [r for r in results.values() if isinstance(r, verbs.Committed)]
    failed = [r for r in results.values() if isinstance(r, Exception)]
    assert len(landed) == 1 and len(failed) == 1, results
    assert isinstance(failed[0], JobError)
    # at open; or both opened at once and the second to merge finds the branch moved, or
    # (both past that check together) lakeFS refuses its merge as a conflict: each is final
    # and names the other run
    assert any(reason in str(failed[0]) for reason in (
        "another job is writing report@main: job branch dsc-report-run-",
        "moved since this job opened", "refused to merge the job into report@main")), failed
    assert "run run-" in str(failed[0])
    log = h.standin.log("report", "main", first_parent=True)
    assert [c.id for c in log[:2]] == [landed[0].commit, base]


def test_commit_refuses_to_mix_a_concurrent_writers_content_into_its_output(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {"old": b"x"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    opened = h.open(steps["report"])
    h.work(steps["report"], opened.branch, write("a.out", "y"))
    theirs = h.standin.seed("report", {"readme.md": b"added by hand"},
                            message="add a readme")
    with pytest.raises(JobError, match=rf"output branch report@main moved since this job "
                                       rf"opened at \w{{12}}: 1 commit changed its content, "
                                       rf"the newest {theirs[:12]} \(by admin: 'add a "
                                       rf"readme'\).*nothing was merged"):
        h.commit(steps["report"], opened.branch)
    assert h.standin.head("report", "main") == theirs
    assert not h.standin.calls("mergeIntoBranch")


def test_commit_merges_when_the_branch_moved_without_changing_content(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {"old": b"x"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    opened = h.open(steps["report"])
    h.work(steps["report"], opened.branch, write("a.out", "y"))
    empty = h.standin.seed("report", {}, message="a tag-like empty commit")
    done = h.commit(steps["report"], opened.branch)
    merged = h.standin.commit("report", done.commit)
    assert merged.parents[0] == empty
    assert set(h.standin.objects("report", done.commit)) >= {"a.out"}


def test_a_merge_conflict_is_named_and_final(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {"old": b"x"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    opened = h.open(steps["report"])
    h.work(steps["report"], opened.branch, write("a.out", "y"))
    h.standin.faults.add("mergeIntoBranch", 409)
    with pytest.raises(JobError, match=r"refused to merge the job into report@main: a conflict"
                                       r".*nothing was merged"):
        h.commit(steps["report"], opened.branch)
    assert len(h.standin.calls("mergeIntoBranch")) == 1


def test_a_stale_output_that_cannot_be_deleted_fails_the_commit_by_name(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    before = h.standin.seed("report", {"old.out": b"x"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    opened = h.open(steps["report"])
    h.work(steps["report"], opened.branch, write("a.out", "y"))
    h.standin.faults.add_path("deleteObjects", 403, where=lambda p: p == "old.out",
                              times=None)
    with pytest.raises(LakeFSError, match=r"could not delete 1 of \d paths on "
                                          r"report@dsc-report-\S+: old.out \(403"):
        h.commit(steps["report"], opened.branch)
    assert h.standin.head("report", "main") == before


def test_local_runs_record_their_runner_and_no_argo_link(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {})
    h.env.update({"DSC_RUNNER": "host", "DSC_RUN_OWNER": gc.this_process(),
                  "DSC_ARGO_UI_URL": "https://argo.example"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    done = h.job(steps["report"], write("a.out", "y"))
    meta = h.standin.commit("report", done.commit).metadata
    assert meta["dsc.runner"] == "host"
    assert "dsc.image" not in meta  # the host runner never ran the image
    assert not any(k.startswith("::lakefs::") for k in meta)
    h.env.update({"DSC_RUNNER": "argo"})
    del h.env["DSC_RUN_OWNER"]
    h.standin.seed("texts", {"a.txt": b"2"})  # new input, so the job has work to do
    argo = dataclasses.replace(h, run="on-the-cluster", uid="uid-cluster")
    done = argo.job(steps["report"], write("a.out", "z"))
    meta = h.standin.commit("report", done.commit).metadata
    assert meta["dsc.runner"] == "argo" and meta["dsc.image"] == "busybox:1"
    assert meta["::lakefs::Argo::url[url:ui]"] == \
        "https://argo.example/workflows/argo/on-the-cluster"


# --- dsc gc --------------------------------------------------------------------------------

def test_gc_removes_what_no_live_run_needs_and_keeps_the_rest(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {"old": b"x"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    killed = other_run(h, "killed", owner=dead_owner())
    killed.open(steps["report"])
    # a run whose commit merged but whose branch could not be deleted
    landed = other_run(h, "landed")
    h.standin.faults.add("deleteBranch", 403)
    landed.job(steps["report"], write("a.out", "y"))
    h.standin.faults.clear()
    # a run of this very process: alive
    live_steps, _ = steps_for(h, pipeline("summary", pfs("texts")))
    h.standin.seed("summary", {})
    other_run(h, "live").open(live_steps["summary"])
    lines: list[str] = []
    done = gc.collect(h.client(), ["report", "summary"], older_than=None, dry_run=False,
                      log=lines.append)
    assert sorted(b.name for b in done.removed) == ["dsc-report-killed", "dsc-report-landed"]
    assert {b.name: b.state for b in done.found} == {
        "dsc-report-killed": gc.ORPHANED, "dsc-report-landed": gc.LANDED,
        "dsc-summary-live": gc.ALIVE}
    assert sorted(h.standin.state()["report"].branches) == ["main"]
    assert any(line.startswith("kept    lakefs://summary/dsc-summary-live") for line in lines)


def test_gc_takes_runs_it_cannot_see_only_past_the_age_given(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {"old": b"x"})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    other_run(h, "on-the-cluster", runner="argo").open(steps["report"])
    client = h.client()
    kept = gc.collect(client, ["report"], older_than=None, dry_run=False, log=lambda _: None)
    assert [b.state for b in kept.found] == [gc.UNKNOWN] and not kept.removed
    soon = gc.collect(client, ["report"], older_than=3600, dry_run=False, log=lambda _: None)
    assert not soon.removed
    dry = gc.collect(client, ["report"], older_than=0, dry_run=True, log=lambda _: None)
    assert [b.state for b in dry.found] == [gc.OLDER] and not dry.removed
    gone = gc.collect(client, ["report"], older_than=0, dry_run=False, log=lambda _: None)
    assert [b.name for b in gone.removed] == ["dsc-report-on-the-cluster"]
    assert sorted(h.standin.state()["report"].branches) == ["main"]
