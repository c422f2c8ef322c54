"""Resuming after a failed run on the seed demo (issue 16, item 8), on a data directory (the
same against the lakeFS stand-in, faults included: tests/runtime/test_resume.py): a run in
which 7 model datums fail commits nothing to model, and the run after it processes only those
7, taking the others' outputs from the failed job, in one commit; the preview says so
beforehand."""

from __future__ import annotations

import shutil

from compiler.local.session import LOCAL_NAMESPACE
from compiler.runtime.resume import failed_branches
from compiler.store import Store
from tests.local.test_incremental import (
    Seed,
    heads,
    outputs,
    preview,
    processed,
    seed,
    values,
)
from tests.local.test_seed_run import EXAMPLE, first_run, host_runner, program_for, run_seed

# the fixtures: the seed demo after its first run; the runner (skips where it cannot run)
__all__ = ["first_run", "host_runner", "seed"]
C4 = ("parameters", "c_parameters.txt", "0000000000000004")


def attempt(seed: Seed, **more: str):
    seed.runs += 1
    result, log = run_seed(seed.store, seed.runner, seed.tmp / f"scratch{seed.runs}",
                           {"DSC_STORAGE_NAMESPACE": LOCAL_NAMESPACE},
                           program_for(values=values(**more)))
    return result, log


def commits(store: Store, repo: str) -> int:
    return sum(1 for _c in store.log(repo, "main"))


def test_a_rerun_after_a_failed_run_processes_only_what_did_not_finish(seed):
    root, store = seed.root, seed.store
    before = heads(store)
    good = root.joinpath(*C4).read_text()

    # model's code changed, and one C value is not a number: 70 datums succeed, 7 fail
    root.joinpath(*C4).write_text("notanumber\n")
    failed, log = attempt(seed, image="registry.example/iris-train:2.0")
    assert failed.outcome.phase == "Failed", log
    assert processed(failed)["model"] == 70
    assert heads(store) == before  # every output branch as it was
    assert [b.split("-")[0] for b in failed_branches(store, "model")] == ["dsc_failed"]

    # the preview shows what the next run takes from the failed one, and what it processes
    plan = preview(store, image="registry.example/iris-train:2.0")["model"]
    assert (plan["process"], plan["resume"], plan["skip"]) == (7, 70, 0)
    assert plan["reasons"] == {"code changed": 7}
    root.joinpath(*C4).write_text(good)  # fixed
    plan = preview(store, image="registry.example/iris-train:2.0")["model"]
    assert (plan["process"], plan["resume"]) == (7, 70)

    again = seed.run(image="registry.example/iris-train:2.0")
    assert processed(again)["model"] == 7
    assert len(outputs(store, "model")) == 77
    assert commits(store, "model") == sum(1 for _c in store.log("model", before["model"])) + 1
    model = store.commit_of("model", "main")
    assert model.parents[0] == before["model"]
    assert model.metadata["dsc.datums"] == \
        "total=77 processed=7 skipped=0 deleted=0 recovered=0 resumed=70"
    assert failed_branches(store, "model") == []


def test_what_changed_after_the_failure_is_processed_again(tmp_path, host_runner):
    root = tmp_path / "data"
    shutil.copytree(EXAMPLE / "data", root)
    seed = Seed(root, host_runner, tmp_path)
    store = seed.store
    root.joinpath(*C4).write_text("notanumber\n")
    failed, log = attempt(seed)
    assert failed.outcome.phase == "Failed", log
    assert store.commit_of("model", "main").metadata.get("dsc.datums") is None  # no job
    assert not outputs(store, "model")

    # code changed since: nothing is taken
    plan = preview(store, image="registry.example/iris-train:2.0")["model"]
    assert (plan["process"], plan["resume"]) == (77, 0)
    # one gamma value changed since: its 11 datums are processed (one of them failed)
    root.joinpath(*C4).write_text("8.000\n")
    root.joinpath("parameters", "gamma_parameters.txt", "0000000000000000").write_text("0.5\n")
    plan = preview(store)["model"]
    assert (plan["process"], plan["resume"]) == (17, 60)
    again = seed.run()
    assert processed(again)["model"] == 17
    assert len(outputs(store, "model")) == 77
    assert store.commit_of("model", "main").metadata["dsc.datums"].endswith(" resumed=60")
