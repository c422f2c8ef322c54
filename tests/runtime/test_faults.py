"""Faults at every lakeFS call of every verb: each job ends with exactly one new output commit
carrying complete provenance, or fails with the output branch exactly as before.

A small job (three datums, an earlier output to replace) runs once cleanly to learn its call
sequence. Then, for each request of that sequence, a fault fires there (an HTTP status, a
timeout, a reset, the effect applied and the answer lost) or the process dies just before it.
After the failure, two futures are checked from the same state: Argo retries the step
(`argo retry`, or the worker's retryStrategy) and the job must land once; or the exit handler
aborts and the output branch must be untouched, with no job branch left.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compiler.contract.job import JobError
from compiler.store import LakeFSError
from tests.runtime.harness import Harness, Killed, compiled_steps

TEXTS = {"a.txt": b"one two\n", "b.txt": b"three\n", "c.txt": b"four five six\n"}
PODS = itertools.count()  # each worker pod gets a fresh /pfs
PROVENANCE = {"dsc.pipeline", "dsc.spec.sha256", "dsc.input.texts", "dsc.image",
              "dsc.workflow", "dsc.workflow.uid", "dsc.datums", "dsc.version", "dsc.job"}


def count_words(pfs: Path, env: dict[str, str]) -> None:
    path = Path(env["texts"])
    (pfs / "out" / (path.stem + ".count")).write_text(str(len(path.read_text().split())))


@pytest.fixture
def job(lakefs_standin, tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "wordcount.json").write_text(json.dumps({
        "pipeline": {"name": "wordcount"}, "transform": {"image": "busybox:1", "cmd": ["true"]},
        "input": {"pfs": {"repo": "texts", "glob": "/*"}}}))
    lakefs_standin.seed("texts", TEXTS)
    lakefs_standin.seed("wordcount", {"old.count": b"7"})  # an earlier job's output
    steps, abort = compiled_steps(specs)
    return lakefs_standin, steps["wordcount"], abort


def drive(h: Harness, steps, on_failure=None, start: int = 0, opened=None,
          at_step=None) -> str:
    """open -> work -> commit, from step `start` (0 is open, 1 the worker, 2 commit; later
    steps take `opened` from a clean run). A step that fails calls `on_failure` (which sees
    the state the failure left), then runs again from its start, as `argo retry` (or the
    worker's retryStrategy, in a new pod with a fresh /pfs) would. `at_step(i)` is called
    before step i."""

    def step(fn, name: str):
        try:
            return fn()
        except (LakeFSError, JobError, Killed):
            h.kill_at = None
            h.standin.faults.clear()
            if on_failure is None:
                raise
            on_failure(name)
            return fn()

    if start == 0:
        if at_step:
            at_step(0)
        opened = step(lambda: h.open(steps), "open")
    if start <= 1:
        if at_step:
            at_step(1)

        def work() -> None:
            h.work(steps, opened.branch, count_words, pod=f"worker-0.{next(PODS)}")
        step(work, "work")
    if at_step:
        at_step(2)
    return step(lambda: h.commit(steps, opened.branch), "commit").commit


@dataclass
class CleanRun:
    """A clean run, recorded step by step, so that a fault in a step needs to replay only
    from that step's start: the stand-in's state, the requests and the calls before it."""

    sequence: list[tuple[str, int]]  # (operationId, its occurrence) of every request
    step_of: list[int]  # the step each request belongs to
    states: list[Any]  # the stand-in's state at each step's start
    seen: list[Counter]  # requests per operationId before each step
    calls: list[int]  # the adapter's calls before each step
    opened: Any


def clean_run(h: Harness, steps) -> CleanRun:
    s = h.standin
    first = len(s.requests)
    snapshot = s.snapshot()
    states, marks, calls = [], [], []
    h.calls = 0

    def at_step(i: int) -> None:
        states.append(s.snapshot())
        marks.append(len(s.requests))
        calls.append(h.calls)

    opened: list[Any] = []
    real_open = h.open

    def recording_open(*args: Any, **kwargs: Any) -> Any:
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    h.open = recording_open  # type: ignore[method-assign]
    try:
        drive(h, steps, at_step=at_step)
    finally:
        del h.open
    s.restore(snapshot)
    requests = s.requests[first:]
    sequence, step_of, seen_before = [], [], []
    seen = Counter[str]()
    bounds = [m - first for m in marks]
    for n, r in enumerate(requests):
        while len(seen_before) < len(bounds) and n >= bounds[len(seen_before)]:
            seen_before.append(Counter(seen))
        step_of.append(len(seen_before) - 1)
        sequence.append((r.operation_id, seen[r.operation_id]))
        seen[r.operation_id] += 1
    while len(seen_before) < len(bounds):
        seen_before.append(Counter(seen))
    return CleanRun(sequence, step_of, states, seen_before, calls, opened[0])


def check_landed(h: Harness, before, commit: str) -> None:
    s = h.standin
    head = s.commit("wordcount", "main")
    assert head.id == commit == s.head("wordcount", "main")
    assert head.parents[0] == before.head, "exactly one new commit on the output branch"
    assert set(head.metadata) >= PROVENANCE, PROVENANCE - set(head.metadata)
    assert head.metadata["dsc.datums"] == \
        "total=3 processed=3 skipped=0 deleted=0 recovered=0"
    files = s.objects("wordcount", commit)
    assert {p: v for p, v in files.items() if not p.startswith(".dsc/")} == \
        {"a.count": b"2", "b.count": b"1", "c.count": b"3"}
    assert sorted(p for p in files if p.startswith(".dsc/")) == \
        [".dsc/index/000000.json", ".dsc/index/000000.keys", ".dsc/index/jobs.json",
         ".dsc/job.json", ".dsc/plan/000000.json"]
    assert s.branch_state("wordcount", "main").staged == {}
    assert job_branches(h) == []


def job_branches(h: Harness) -> list[str]:
    with h.standin.store.lock:
        return [b for b in h.standin.store.repository("wordcount").branches if b.startswith("dsc-")]


def abort(h: Harness, abort_args: list[str], status: str = "Failed") -> None:
    """The exit handler, which Argo runs after every run."""
    from compiler.runtime import verbs

    outputs = [abort_args[i + 1] for i, a in enumerate(abort_args) if a == "--output"]
    verbs.abort(h.context(), "wordcount", status, outputs, keep_branches=False)


def aborting_changes_nothing(h: Harness, abort_args: list[str], before, failures: list[int],
                             killed: bool = False):
    """The failure's other future: the exit handler runs and the output branch is as before.
    Only a process killed after its merge landed leaves the output changed; the compiled
    commit step retries (retryStrategy), and the retry must then succeed."""
    def check(step: str) -> None:
        s = h.standin
        failures.append(1)
        if killed and step == "commit" and s.head("wordcount", "main") != before.head:
            assert s.commit("wordcount", "main").metadata["dsc.workflow.uid"] == h.uid
            return
        assert s.branch_state("wordcount", "main") == before
        failed = s.snapshot()
        abort(h, abort_args)
        assert s.branch_state("wordcount", "main") == before
        assert job_branches(h) == []
        s.restore(failed)
    return check


FAULTS = [(500, False), (409, False), (412, False), (429, False), ("timeout", False),
          ("reset", False), ("reset", True), ("timeout", True)]


@pytest.mark.parametrize("kind,apply", FAULTS, ids=[f"{k}{'-applied' if a else ''}"
                                                     for k, a in FAULTS])
def test_a_fault_at_any_call_lands_once_or_changes_nothing(job, tmp_path, kind, apply):
    standin, steps, abort_args = job
    # A short read timeout only where the fault is a timeout (it must fire within the test),
    # and a delay well past it; elsewhere the harness's 2 s, so that a request slowed by a
    # loaded machine is not taken for a fault and retried (shifting the calls the fault
    # counts).
    h = Harness(standin, tmp_path, transfers=1,
                **({"read_timeout": 0.5} if kind == "timeout" else {}))
    before = standin.branch_state("wordcount", "main")
    clean = clean_run(h, steps)
    assert len(clean.sequence) > 30
    failures: list[int] = []
    for n, (operation, occurrence) in enumerate(clean.sequence):
        # the requests before the fault's step are those of the clean run: start there
        at = clean.step_of[n]
        standin.restore(clean.states[at])
        fault = standin.faults.add(operation, kind, after=occurrence - clean.seen[at][operation],
                                   apply=apply, delay=1.0)
        commit = drive(h, steps, aborting_changes_nothing(h, abort_args, before, failures),
                       start=at, opened=clean.opened)
        assert fault.fired == 1, (n, operation, "the fault never reached the verb")
        standin.faults.clear()
        abort(h, abort_args, "Succeeded")
        check_landed(h, before, commit)
    # 5xx, 429 and transport faults are absorbed by retries; 409 and 412 fail a step
    assert bool(failures) == (kind in (409, 412)), len(failures)


def test_killed_before_any_call_and_restarted_lands_once(job, tmp_path):
    standin, steps, abort_args = job
    h = Harness(standin, tmp_path, transfers=1)
    before = standin.branch_state("wordcount", "main")
    clean = clean_run(h, steps)
    total = h.calls
    assert total > 25
    for n in range(1, total + 1):
        at = max(i for i, c in enumerate(clean.calls) if c < n)  # the step of call n
        standin.restore(clean.states[at])
        h.calls, h.kill_at = clean.calls[at], n
        failures: list[int] = []
        commit = drive(h, steps, aborting_changes_nothing(h, abort_args, before, failures,
                                                          killed=True),
                       start=at, opened=clean.opened)
        assert failures == [1], f"call {n} was never reached"
        abort(h, abort_args, "Succeeded")
        check_landed(h, before, commit)


@pytest.mark.parametrize("kind,apply", FAULTS, ids=[f"{k}{'-applied' if a else ''}"
                                                     for k, a in FAULTS])
@pytest.mark.parametrize("operation", ["getBranch", "deleteBranch"])
def test_abort_under_a_fault_is_rerun_to_no_job_branch(job, tmp_path, kind, apply, operation):
    standin, steps, abort_args = job
    # A short read timeout only where the fault is a timeout (it must fire within the test),
    # and a delay well past it; elsewhere the harness's 2 s, so that a request slowed by a
    # loaded machine is not taken for a fault and retried (shifting the calls the fault
    # counts).
    h = Harness(standin, tmp_path, transfers=1,
                **({"read_timeout": 0.5} if kind == "timeout" else {}))
    h.open(steps)
    before = standin.branch_state("wordcount", "main")
    fault = standin.faults.add(operation, kind, apply=apply, delay=1.0)
    try:
        abort(h, abort_args)
    except LakeFSError:
        abort(h, abort_args)  # the exit handler's retryStrategy
    assert fault.fired == 1
    assert job_branches(h) == [] and standin.branch_state("wordcount", "main") == before
