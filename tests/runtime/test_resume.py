"""Resuming after a failed run (issue 16, item 8; compiler.runtime.resume): the next run takes
the datums the failed job finished instead of processing them again, its outputs still land
in one merge, and nothing is taken that the exit handler did not keep or that changed since."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from compiler.contract.job import JobError
from compiler.runtime import gc, verbs
from tests.runtime.harness import Harness, Killed, UserFailed
from tests.runtime.test_verbs import pfs, pipeline, steps_for

TEXTS = {"a.txt": b"one two\n", "b.txt": b"three\n", "c.txt": b"four five six\n"}
OUTPUT = "report=report@main"


@pytest.fixture
def h(lakefs_standin, tmp_path) -> Harness:
    lakefs_standin.seed("texts", TEXTS)
    lakefs_standin.seed("report", {"old": b"x"})
    return Harness(lakefs_standin, tmp_path)


def run_of(h: Harness, name: str) -> Harness:
    return dataclasses.replace(h, run=name, uid=f"uid-{name}", logs=[], env=dict(h.env))


def counting(seen: list[str], fail: str = ""):
    """Counts the words of each text; the datum of `fail` fails."""
    def user(pfs_dir: Path, env: dict[str, str]) -> None:
        path = Path(env["texts"])
        seen.append(path.name)
        if path.name == fail:
            raise UserFailed(2, "no")
        (pfs_dir / "out" / (path.stem + ".count")).write_text(str(len(path.read_text().split())))
    return user


def fail_once(h: Harness, steps) -> Harness:
    """A run whose datum c.txt fails; its exit handler runs."""
    first = run_of(h, "first")
    opened = first.open(steps)
    with pytest.raises(JobError, match="1 datum failed"):
        first.work(steps, opened.branch, counting([], fail="c.txt"))
    verbs.abort(first.context(), "g", "Failed", [OUTPUT], keep_branches=False)
    return first


def branches(h: Harness) -> list[str]:
    return sorted(h.standin.state()["report"].branches)


def outputs(h: Harness) -> dict[str, bytes]:
    return {p: v for p, v in h.standin.objects("report", "main").items()
            if not p.startswith(".dsc/")}


def index(h: Harness) -> list[dict[str, Any]]:
    return json.loads(h.standin.objects("report", "main")[".dsc/index/000000.json"])


def test_the_next_run_takes_what_the_failed_one_finished_and_lands_once(h):
    steps = steps_for(h, pipeline("report", pfs("texts")))[0]["report"]
    before = h.standin.branch_state("report", "main")
    fail_once(h, steps)
    assert h.standin.branch_state("report", "main") == before  # the output is untouched
    assert branches(h) == ["dsc_failed-report-first", "main"]  # no job branch
    kept = h.standin.commit("report", "dsc_failed-report-first")
    assert kept.metadata["dsc.failed.workflow.uid"] == "uid-first"
    assert "dsc.workflow.uid" not in kept.metadata  # never taken for the job's own commit

    seen: list[str] = []
    second = run_of(h, "second")
    done = second.job(steps, counting(seen))
    assert seen == ["c.txt"]  # a and b were taken from the failed job
    head = h.standin.commit("report", "main")
    assert head.id == done.commit and head.parents[0] == before.head  # one commit
    assert head.metadata["dsc.datums"] == \
        "total=3 processed=1 skipped=0 deleted=0 recovered=0 resumed=2"
    assert outputs(h) == {"a.count": b"2", "b.count": b"1", "c.count": b"3"}
    assert [e["job"] for e in index(h)] == ["uid-first", "uid-first", "uid-second"]
    jobs = json.loads(h.standin.objects("report", "main")[".dsc/index/jobs.json"])
    assert jobs["uid-first"]["run"] == "first" and jobs["uid-first"]["failed"] is True
    assert ".dsc/resumed.json" not in h.standin.objects("report", "main")
    from compiler.commands.provenance import file_provenance, render_file

    found = file_provenance(h.client(), "report", "main", "a.count")
    assert (found.run, found.run_uid, found.failed_run) == ("first", "uid-first", True)
    assert "run first (job started" in render_file(found, "text")
    assert "a run that failed: a later job took the outputs it finished" in \
        render_file(found, "text")
    assert branches(h) == ["main"]  # the failed branch went with the merge
    assert any("2 resumed (done by failed run first)" in line for line in second.logs)


def test_a_second_failure_keeps_what_the_first_did_for_the_third_run(h):
    steps = steps_for(h, pipeline("report", pfs("texts")))[0]["report"]
    fail_once(h, steps)
    second = run_of(h, "second")
    opened = second.open(steps)
    with pytest.raises(JobError, match="1 datum failed"):
        second.work(steps, opened.branch, counting([], fail="c.txt"))
    verbs.abort(second.context(), "g", "Failed", [OUTPUT], keep_branches=False)
    seen: list[str] = []
    run_of(h, "third").job(steps, counting(seen))
    assert seen == ["c.txt"]
    assert h.standin.commit("report", "main").metadata["dsc.datums"].endswith(" resumed=2")
    assert branches(h) == ["main"]


def test_each_datum_is_taken_from_the_failed_job_that_did_it_from_the_same_content(h):
    steps = steps_for(h, pipeline("report", pfs("texts")))[0]["report"]
    h.standin.seed("texts", {"b.txt": b"other words\n"})
    fail_once(h, steps)  # did a.txt and this b.txt
    h.standin.seed("texts", {"b.txt": TEXTS["b.txt"]})
    second = run_of(h, "second")
    opened = second.open(steps)
    seen: list[str] = []
    with pytest.raises(JobError, match="1 datum failed"):
        second.work(steps, opened.branch, counting(seen, fail="c.txt"))
    assert sorted(set(seen)) == ["b.txt", "c.txt"]  # a.txt taken from the first
    verbs.abort(second.context(), "g", "Failed", [OUTPUT], keep_branches=False)
    # b.txt as it is now: the first failed branch did it from other content, the second not
    seen = []
    run_of(h, "third").job(steps, counting(seen))
    assert seen == ["c.txt"]
    assert outputs(h) == {"a.count": b"2", "b.count": b"1", "c.count": b"3"}
    assert [e["job"] for e in index(h)] == ["uid-first", "uid-second", "uid-third"]
    assert branches(h) == ["main"]


def test_changed_input_code_or_a_forced_reprocess_takes_nothing_that_changed(h):
    steps = steps_for(h, pipeline("report", pfs("texts")))[0]["report"]
    fail_once(h, steps)
    # the code changed: nothing is taken
    other = steps_for(h, pipeline("report", pfs("texts"), transform={
        "image": "busybox:2", "cmd": ["true"]}))[0]["report"]
    ctx = run_of(h, "preview").context()
    head = ctx.store.commit_of("report", "main")
    commits = {"texts": h.standin.head("texts", "main")}
    from compiler.contract.job import Job
    from compiler.runtime.incremental import Forced

    def planned(s, forced: str = "") -> tuple[int, int]:
        p = verbs.plan_job(ctx, Job.parse(s.job), commits, head, Forced.parse(forced, "report"))
        assert p.sorting is not None
        return p.sorting.processed, len(p.sorting.resumed)

    assert planned(steps) == (1, 2)
    assert planned(other) == (3, 0)
    assert planned(steps, "report") == (3, 0)
    assert planned(steps, "report:" + json.loads(h.standin.objects(
        "report", "dsc_failed-report-first")[".dsc/plan/000000.json"])[0]["id"][:8]) == (2, 1)
    # an input changed: its datum is processed, the others are taken
    h.standin.seed("texts", {"b.txt": b"seven\n"})
    seen: list[str] = []
    run_of(h, "second").job(steps, counting(seen))
    assert sorted(seen) == ["b.txt", "c.txt"]
    assert outputs(h) == {"a.count": b"2", "b.count": b"1", "c.count": b"3"}
    assert h.standin.commit("report", "main").metadata["dsc.datums"] == \
        "total=3 processed=2 skipped=0 deleted=0 recovered=0 resumed=1"


def test_a_job_whose_exit_handler_has_not_run_gives_nothing(h):
    """The failed run's job branch, not yet aborted (a live run, or one that may be): only
    a failed branch, which `abort` makes once the run ended, is ever read."""
    steps = steps_for(h, pipeline("report", pfs("texts")))[0]["report"]
    live = run_of(h, "live")  # an Argo run: the next one passes it (it holds the mutex)
    opened = live.open(steps)
    with pytest.raises(JobError):
        live.work(steps, opened.branch, counting([], fail="c.txt"))
    seen: list[str] = []
    run_of(h, "next").job(steps, counting(seen))
    assert sorted(seen) == ["a.txt", "b.txt", "c.txt"]
    assert "resumed" not in h.standin.commit("report", "main").metadata["dsc.datums"]


def test_a_failed_branch_someone_committed_on_is_not_trusted(h):
    steps = steps_for(h, pipeline("report", pfs("texts")))[0]["report"]
    fail_once(h, steps)
    client = h.client()
    kept = client.head("report", "dsc_failed-report-first")
    client.upload("report", "dsc_failed-report-first", "a.count", b"999")
    client.commit_once("report", "dsc_failed-report-first", "edited", {"who": "me"}, "who",
                       since=kept)
    seen: list[str] = []
    run_of(h, "second").job(steps, counting(seen))
    assert sorted(seen) == ["a.txt", "b.txt", "c.txt"]
    assert outputs(h)["a.count"] == b"2"


def test_gc_keeps_a_resumable_failed_branch_and_removes_a_superseded_one(h):
    steps = steps_for(h, pipeline("report", pfs("texts")))[0]["report"]
    fail_once(h, steps)
    client = h.client()
    kept = gc.collect(client, ["report"], older_than=None, dry_run=False, log=lambda _: None)
    assert [(b.name, b.state) for b in kept.found] == [("dsc_failed-report-first",
                                                        gc.RESUMABLE)]
    # someone else's commit moves the output branch: the failed job can no longer be resumed
    client.create_branch_once("report", "edit", client.head("report", "main"))
    client.upload("report", "edit", "mine", b"1")
    client.commit_once("report", "edit", "mine", {"who": "me"}, "who",
                       since=client.head("report", "main"))
    client.merge_once("report", "edit", "main", "mine", {"who": "me"}, "who",
                      since=client.head("report", "main"))
    gone = gc.collect(client, ["report"], older_than=None, dry_run=False, log=lambda _: None)
    assert [(b.name, b.state) for b in gone.removed] == [("dsc_failed-report-first",
                                                          gc.SUPERSEDED)]
    assert branches(h) == ["edit", "main"]


def test_killed_at_any_call_of_abort_or_of_the_resuming_open_each_output_lands_once(h):
    steps = steps_for(h, pipeline("report", pfs("texts")))[0]["report"]
    before = h.standin.branch_state("report", "main")
    first = run_of(h, "first")
    opened = first.open(steps)
    with pytest.raises(JobError):
        first.work(steps, opened.branch, counting([], fail="c.txt"))
    failed = h.standin.snapshot()

    def abort(run: Harness) -> None:
        verbs.abort(run.context(), "g", "Failed", [OUTPUT], keep_branches=False)

    def killed_at_each_call(run: Harness, verb, then) -> int:
        """Kill `verb` before each of its lakeFS calls in turn, run it again, then `then`."""
        start = h.standin.snapshot()
        run.calls, run.kill_at = 0, None
        verb(run)
        total = run.calls
        for n in range(1, total + 1):
            h.standin.restore(start)
            run.calls, run.kill_at = 0, n
            with pytest.raises(Killed):
                verb(run)
            run.kill_at = None
            verb(run)  # the retry
            then()
        return total

    def one_failed_branch() -> None:
        assert branches(h) == ["dsc_failed-report-first", "main"]
        assert h.standin.branch_state("report", "main") == before
        log = h.standin.log("report", "dsc_failed-report-first", first_parent=True)
        assert log[1].id == before.head  # one commit, on the job's base

    h.standin.restore(failed)
    assert killed_at_each_call(first, abort, one_failed_branch) > 5
    aborted = h.standin.snapshot()

    second = run_of(h, "second")

    def landed_once() -> None:
        seen: list[str] = []
        branch = second.context().run.job_branch("report")
        for worker in range(1):
            second.work(steps, branch, counting(seen), worker)
        second.commit(steps, branch)
        assert seen == ["c.txt"]
        assert outputs(h) == {"a.count": b"2", "b.count": b"1", "c.count": b"3"}
        head = h.standin.commit("report", "main")
        assert head.parents[0] == before.head
        assert head.metadata["dsc.datums"].endswith("processed=1 skipped=0 deleted=0 "
                                                    "recovered=0 resumed=2")
        assert branches(h) == ["main"]
        h.standin.restore(start_of_open)

    h.standin.restore(aborted)
    start_of_open = h.standin.snapshot()
    copies = len(h.standin.calls("copyObject"))
    assert killed_at_each_call(second, lambda run: run.open(steps), landed_once) > 5
    assert len(h.standin.calls("copyObject")) > copies  # the copies were among the calls
