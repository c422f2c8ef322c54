"""What a user sees of a job run again: a run over unchanged inputs changes nothing, and
`dsc plan` predicts which datums a run will process. Against the lakeFS stand-in, with the
job documents `dsc compile` writes (tests/README.md, the mutation sample)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from compiler import contract
from compiler.commands.plan import plan_graph
from compiler.contract.job import Job, JobError
from tests.runtime.harness import Harness, Killed, short_downloads
from tests.runtime.test_verbs import branches, h, pfs, pipeline, steps_for, write

__all__ = ["h"]  # the harness fixture


def again(h: Harness) -> Harness:
    """The next run of the graph: a run of another name and UID, on the same lakeFS."""
    return dataclasses.replace(h, run="hyperparameter-1b2c3d4e5",
                               uid="8d7c6b5a-0000-4000-8000-000000000002", logs=[])


def test_a_run_over_unchanged_inputs_changes_nothing(h):
    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"2"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    first = h.job(steps["report"], lambda pfs_dir, env: None)
    log = h.standin.log("report", "main")

    second = again(h)
    opened = second.open(steps["report"])
    assert (opened.workers, opened.todo) == (0, 0)
    assert opened.branch == contract.noop_branch(first.commit)
    assert any("nothing to do" in line for line in second.logs)
    done = second.commit(steps["report"], opened.branch)
    assert done.commit == first.commit
    assert h.standin.log("report", "main") == log  # no commit, no merge
    assert branches(h, "report") == ["main"]  # no job branch was made


def test_plan_predicts_the_datums_a_run_processes_and_skips(h):
    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"2"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    job = Job.parse(steps["report"].job)
    store = h.context().store

    (fresh,) = plan_graph([job], store)
    assert (fresh.noop, fresh.count("process"), fresh.count("skip")) == (False, 2, 0)
    h.job(steps["report"], lambda pfs_dir, env: None)

    (unchanged,) = plan_graph([job], store)
    assert unchanged.noop and unchanged.count("process") == 0

    h.standin.seed("texts", {"b.txt": b"changed"})
    (changed,) = plan_graph([job], store)
    assert (changed.noop, changed.count("process"), changed.count("skip")) == (False, 1, 1)
    assert [d.inputs for d in changed.datums if d.action == "process"] == [[("texts",
                                                                               "/b.txt")]]
    processed = again(h).job(steps["report"], write("x", "y"))
    assert h.standin.commit("report", processed.commit).metadata[contract.DATUMS_KEY] == \
        "total=2 processed=1 skipped=1 deleted=0 recovered=0"


def test_commit_logs_what_the_job_wrote_and_where_it_landed(h):
    """The commit step's log (the Argo UI shows it): the job commit, the files and bytes
    written, and the output commit the job landed as."""
    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"2"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))

    def user(pfs_dir, env):
        name = env["texts"].rsplit("/", 1)[-1]
        (pfs_dir / "out" / name).write_bytes(b"k" * (1024 if name == "a.txt" else 0))

    done = h.job(steps["report"], user)
    job_line = next(line for line in h.logs if line.startswith("commit report: job commit"))
    assert re.fullmatch(r"commit report: job commit [0-9a-f]{12}; removed \d+ earlier files; "
                        r"2 files from 2 datums \(2 processed, 1\.0 KiB written, 0 skipped, "
                        r"0 recovered\)", job_line)
    (landed,) = [line for line in h.logs if line.startswith("commit report: report@")]
    assert landed.startswith(f"commit report: report@{done.commit} (merged into main) in ")


def test_a_worker_checks_what_it_downloads_for_a_datum_of_several_files(h, monkeypatch):
    """A cross datum's files are checked against the sizes `open` listed, as a one-file
    datum's are (tests/runtime/test_verbs.py): a short read fails the datum by name."""
    h.standin.seed("texts", {"a.txt": b"12345"})
    h.standin.seed("params", {"p.txt": b"123"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", {"cross": [pfs("texts"), pfs("params")]}))
    opened = h.open(steps["report"])
    short_downloads(monkeypatch)
    with pytest.raises(JobError, match=r"datum 0-\S+: (texts|params)@\w{12}:/[ap].txt: read "
                                       r"\d bytes, lakeFS lists \d"):
        h.work(steps["report"], opened.branch, write("a.out", "x"))


def test_a_removed_input_files_datum_is_counted_deleted_in_the_provenance(h):
    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"2"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    h.job(steps["report"], lambda pfs_dir, env: None)
    store = h.context().store
    store.delete_objects("texts", "main", ["a.txt"])
    store.commit_once("texts", "main", "remove a.txt", {"by": "test"}, "by",
                      since=store.head("texts", "main"))

    done = again(h).job(steps["report"], lambda pfs_dir, env: None)
    assert h.standin.commit("report", done.commit).metadata[contract.DATUMS_KEY] == \
        "total=1 processed=0 skipped=1 deleted=1 recovered=0"


def test_a_worker_lost_before_it_batched_its_manifests_still_lands_every_datum(h, monkeypatch):
    """A worker publishes each datum's manifest as it finishes, and gathers them into a batch
    file at the end of its share; one lost before that (its node gone) leaves them loose, and
    `commit` reads them there."""
    from compiler.runtime import worker

    h.standin.seed("texts", {"a.txt": b"1", "b.txt": b"2"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    opened = h.open(steps["report"])

    def lost(self):
        raise Killed("the node is gone")

    def user(pfs_dir, env):
        name = env["texts"].rsplit("/", 1)[-1]
        (pfs_dir / "out" / name).write_text(name)

    with monkeypatch.context() as m:
        m.setattr(worker._Worker, "_flush", lost)
        with pytest.raises(Killed):
            h.work(steps["report"], opened.branch, user)
    done = h.commit(steps["report"], opened.branch)
    files = {p: v for p, v in h.standin.objects("report", done.commit).items()
             if not p.startswith(".dsc/")}
    assert files == {"a.txt": b"a.txt", "b.txt": b"b.txt"}


@pytest.mark.parametrize("ref", ["abc123", "z" * 64])
def test_commit_refuses_a_nothing_to_do_branch_that_is_not_a_commit_id(h, ref):
    """`--job-branch @<commit>` (what `open` outputs when there is nothing to do) must name a
    64-hex commit ID: anything else is refused as such, before lakeFS is asked."""
    h.standin.seed("texts", {"a.txt": b"1"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", pfs("texts")))
    with pytest.raises(JobError, match=rf"--job-branch @{ref}: not `@` and a 64-hex commit ID"):
        h.commit(steps["report"], "@" + ref)


def test_the_output_commit_names_each_input_commit_once(h):
    texts = h.standin.seed("texts", {"a.txt": b"1"})
    params = h.standin.seed("params", {"p.txt": b"2"})
    h.standin.seed("report", {})
    steps, _ = steps_for(h, pipeline("report", {"cross": [pfs("texts"), pfs("params")]}))
    done = h.job(steps["report"], lambda pfs_dir, env: None)
    metadata = h.standin.commit("report", done.commit).metadata
    inputs = {k: v for k, v in metadata.items() if k.startswith(contract.INPUT_PREFIX)}
    assert inputs == {contract.INPUT_PREFIX + "texts": f"texts@{texts}",
                      contract.INPUT_PREFIX + "params": f"params@{params}"}
