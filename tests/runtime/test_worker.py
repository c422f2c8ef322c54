"""Workers with the real worker protocol: `work` on one side of the FIFOs, the compiled
user container's loop (contract.LOOP, run by /bin/sh) on the other, against the stand-in.
Pachyderm's per-datum semantics: shares, datum_tries, datum_timeout, err_cmd,
accept_return_code, and a failure report that names every failed datum."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compiler import contract
from compiler.commands.compile import CompileRequest, compile_specs
from compiler.contract.job import JobError
from compiler.runtime import worker
from tests.conftest import sleep_marker, sleeping
from tests.runtime.harness import Harness, Steps, steps_of
from tests.runtime.test_verbs import pfs, specs


@pytest.fixture
def h(lakefs_standin, tmp_path) -> Harness:
    return Harness(lakefs_standin, tmp_path)


def compiled(h: Harness, cmd: list[str], **extra: Any) -> tuple[Steps, Container]:
    """The pipeline's steps and its compiled user container."""
    transform = {"image": "busybox:1", "cmd": cmd,
                 **{k: extra.pop(k) for k in ("err_cmd", "accept_return_code") if k in extra}}
    doc = {"pipeline": {"name": "report"}, "transform": transform,
           "input": pfs("texts"), **extra}
    result = compile_specs(CompileRequest(paths=(specs(h.tmp, doc),)))
    assert result.documents is not None
    steps, _abort, _reconcile = steps_of(result.documents)
    (template,) = [t for t in result.documents[0]["spec"]["templates"]
                   if t["name"] == "report-worker"]
    (user,) = [c for c in template["containerSet"]["containers"] if c["name"] == "user"]
    assert user["command"] == ["/bin/sh", contract.LOOP_SCRIPT]
    return steps["report"], Container(user["args"], {e["name"]: e["value"]
                                                     for e in user.get("env", [])})


@dataclass(frozen=True)
class Container:
    args: list[str]
    env: dict[str, str]


def run_worker(h: Harness, steps: Steps, user: Container, branch: str, worker_index: int = 0,
               pod: str | None = None) -> Path:
    """One worker pod: `prepare`, the user container's loop (in /pfs, so the commands
    below use relative paths) and `work`."""
    volume = h.tmp / "pods" / (pod or f"worker-{worker_index}")
    volume.mkdir(parents=True, exist_ok=True)
    worker.prepare(str(volume))
    loop = subprocess.Popen(["/bin/sh", str(volume / ".dsc-worker" / "loop.sh"), *user.args],
                            cwd=volume, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={"PATH": os.environ["PATH"], "LOG": str(h.tmp / "ran"),
                                 **user.env})
    try:
        worker.work(h.context(volume), steps.pipeline, steps.repo, branch, worker_index,
                    alive=lambda: loop.poll() is None)
    finally:
        # closing `go` ends the loop, whatever happened on the runtime's side
        out, _ = loop.communicate(timeout=600)
    assert loop.returncode == 0, out
    return volume


def ran(h: Harness) -> list[str]:
    """Every datum attempt the user code started ($LOG, outside the pods)."""
    log = h.tmp / "ran"
    return log.read_text().split() if log.exists() else []


COUNT = 'echo "$PACH_DATUM_ID" >> "$LOG"; for f in texts/*; do wc -c < "$f" > "out/${f##*/}"; done'


def test_two_workers_split_the_datums_and_the_commit_holds_each_output_once(h):
    texts = {f"{i}.txt": b"x" * i for i in range(1, 6)}
    h.standin.seed("texts", texts)
    h.standin.seed("report", {"stale": b"old"})
    steps, user = compiled(h, ["sh", "-c", COUNT], parallelism_spec={"constant": 2})
    opened = h.open(steps)
    assert (opened.workers, opened.todo) == (2, 5)
    for i in range(opened.workers):
        run_worker(h, steps, user, opened.branch, i)
    done = h.commit(steps, opened.branch)
    files = h.standin.objects("report", done.commit)
    assert {p: v for p, v in files.items() if not p.startswith(".dsc/")} == {
        p: f"{len(v)}\n".encode() for p, v in texts.items()}  # `stale` is no datum's output
    assert len(ran(h)) == len(set(ran(h))) == 5  # each datum ran once, by one worker
    assert h.standin.commit("report", done.commit).metadata["dsc.datums"] == \
        "total=5 processed=5 skipped=0 deleted=0 recovered=0"
    # the job's bookkeeping went with the job branch: no manifests or batches committed
    assert not [p for p in files if p.startswith((contract.MANIFEST_DIR, contract.BATCH_DIR,
                                                  contract.TODO_FILE))]


def test_a_datum_is_retried_in_the_worker_up_to_datum_tries(h):
    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"22"})
    h.standin.seed("report", {})
    # fails on its first attempt, then works: each datum once more, in the same pod
    flaky = ('echo "$PACH_DATUM_ID" >> "$LOG"; [ "$(grep -c "$PACH_DATUM_ID" "$LOG")" -gt 1 ] '
             '|| { echo "first attempt fails"; exit 3; }; ' + COUNT.split("; ", 1)[1])
    steps, user = compiled(h, ["sh", "-c", flaky])
    opened = h.open(steps)
    run_worker(h, steps, user, opened.branch)
    done = h.commit(steps, opened.branch)
    assert len(ran(h)) == 4 and len(set(ran(h))) == 2
    assert h.standin.read("report", done.commit, "b.txt") == b"2\n"
    log = "\n".join(h.logs)
    assert "datum 0-a.txt failed (exit code 3), attempt 1 of 3; running it again" in log
    assert "0-a.txt | first attempt fails" in log  # its output, relayed as it runs
    assert "done after 2 attempts" in log


def test_failed_datums_fail_the_job_by_name_with_their_output_and_the_rest_publish(h):
    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"2", "c.txt": b"3"})
    h.standin.seed("report", {})
    picky = ('echo "$PACH_DATUM_ID" >> "$LOG"; if [ "$(cat texts/*)" != 2 ]; then '
             'echo "bad value $(cat texts/*)"; exit 7; fi; ' + COUNT.split("; ", 1)[1])
    steps, user = compiled(h, ["sh", "-c", picky], datum_tries=2)
    opened = h.open(steps)
    with pytest.raises(JobError, match=r"pipeline `report`: 2 datums failed after 2 attempts "
                                       r"each: 0-a.txt, 2-c.txt \(exit code 7\)$"):
        run_worker(h, steps, user, opened.branch)
    assert len(ran(h)) == 5  # a and c twice, b once
    log = "\n".join(h.logs)
    assert "datum 2-c.txt (" in log and "failed (exit code 7); its output ended:\n" \
        "    | bad value 3" in log
    # what succeeded is published: a worker run again would not redo it
    manifests = [p for p in h.standin.objects("report", opened.branch)
                 if p.startswith(contract.BATCH_DIR)]
    batch = json.loads(h.standin.read("report", opened.branch, manifests[0]))
    assert [m["key"] for m in batch] == ["1-b.txt"]


def test_datum_timeout_stops_the_datum_and_every_process_it_started(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {})
    marker = sleep_marker("41.4142")  # a sleep only this test starts
    steps, user = compiled(h, ["sh", "-c", f"sh -c 'sleep {marker}' & sleep {marker}; wait"],
                           datum_timeout="1s", datum_tries=1)
    opened = h.open(steps)
    with pytest.raises(JobError, match=r"0-a.txt \(stopped after its datum_timeout of 1 s\)"):
        run_worker(h, steps, user, opened.branch)
    assert sleeping(marker) == 0  # the datum's whole process tree, not only its shell


def test_err_cmd_recovers_a_datum_and_accept_return_code_counts_as_success(h):
    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"2"})
    h.standin.seed("report", {})
    code = ('for f in texts/*; do cp "$f" out/; done; '
            '[ "$(cat texts/*)" = 1 ] && exit 4; exit 5')
    steps, user = compiled(h, ["sh", "-c", code], err_cmd=["sh", "-c", "exit 0"],
                           accept_return_code=[4])
    opened = h.open(steps)
    run_worker(h, steps, user, opened.branch)
    done = h.commit(steps, opened.branch)
    files = h.standin.objects("report", done.commit)
    # a: exit 4 is accepted, its output kept; b: exit 5, recovered by err_cmd, no output
    assert {p for p in files if not p.startswith(".dsc/")} == {"a.txt"}
    assert h.standin.commit("report", done.commit).metadata["dsc.datums"] == \
        "total=2 processed=1 skipped=0 deleted=0 recovered=1"  # as Pachyderm counts them



def test_a_worker_retried_after_its_last_datum_was_published_ends_its_loop_too(h):
    """A pod retried once everything is published (its last flush failed) must still end:
    the loop waits for `go`, and a pod ends only when both containers have."""
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {})
    steps, user = compiled(h, ["sh", "-c", COUNT])
    opened = h.open(steps)
    run_worker(h, steps, user, opened.branch, pod="first")
    run_worker(h, steps, user, opened.branch, pod="again")  # returns: the loop ended
    assert "1 published by an earlier attempt; 0 to process" in "\n".join(h.logs)
    assert len(ran(h)) == 1


def test_a_long_output_is_relayed_whole_up_to_a_bound_and_an_unpublishable_one_fails(h):
    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"2"})
    h.standin.seed("report", {})
    code = ('i=0; while [ $i -lt 30000 ]; do echo "line $i"; i=$((i + 1)); done; '
            'if [ "$(cat texts/*)" = 2 ]; then ln -s /no/such/file out/broken; fi; exit 0')
    steps, user = compiled(h, ["sh", "-c", code], datum_tries=1)
    opened = h.open(steps)
    with pytest.raises(JobError, match=r"1 datum failed after 1 attempt each: 1-b.txt \("):
        run_worker(h, steps, user, opened.branch)
    log = h.logs
    assert sum(1 for line in log if line.startswith("  0-a.txt | line ")) == 30000
    assert "  0-a.txt | line 29999" in log
    # the other datum was published all the same
    batch = [p for p in h.standin.objects("report", opened.branch)
             if p.startswith(contract.BATCH_DIR)]
    assert [m["key"] for m in json.loads(h.standin.read("report", opened.branch,
                                                        batch[0]))] == ["0-a.txt"]


def test_job_timeout_stops_the_datum_that_runs_past_it(h):
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {})
    marker = sleep_marker("51.7320")  # a sleep only this test starts
    steps, user = compiled(h, ["sh", "-c", f"sleep {marker}"], job_timeout="2s")
    opened = h.open(steps)
    with pytest.raises(JobError, match=r"datum 0-a.txt: the job has run longer than its "
                                       r"job_timeout of 2 s"):
        run_worker(h, steps, user, opened.branch)
    assert sleeping(marker) == 0
    assert "attempt 1 of 3" not in "\n".join(h.logs)  # not tried again: the job is over
