"""The seed's `split -> model` jobs through every verb against the lakeFS stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.config import Config
from tests.runtime.harness import SEED, Harness, compiled_steps

DATA = SEED / "data"


def seed_inputs(standin) -> dict[str, str]:
    """raw_data and parameters as the seed's `put-file --split line` left them."""
    heads = {}
    for repo, local in (("raw-data", DATA / "raw_data"), ("parameters", DATA / "parameters")):
        files = {str(p.relative_to(local)): p.read_bytes()
                 for p in sorted(local.rglob("*")) if p.is_file()}
        heads[repo] = standin.seed(repo, files, branch="master")
    for repo in ("split", "model"):
        standin.seed(repo, {}, branch="master")
    return heads


def branches(standin, repo: str) -> list[str]:
    with standin.store.lock:
        return sorted(standin.store.repository(repo).branches)


def split_user(pfs: Path, env: dict[str, str]) -> None:
    rows = Path(env["raw_data"], "iris.csv").read_text().splitlines()
    (pfs / "out" / "train.csv").write_text("\n".join(rows[:80]) + "\n")
    (pfs / "out" / "test.csv").write_text("\n".join(rows[80:]) + "\n")


def model_user(pfs: Path, env: dict[str, str]) -> None:
    # `c-parameters` is no shell name: the wrapper cannot export it; read the files
    c, = (p.read_text().strip() for p in (pfs / "c-parameters").rglob("*") if p.is_file())
    gamma, = (p.read_text().strip() for p in (pfs / "gamma-parameters").rglob("*")
              if p.is_file())
    train = (pfs / "split" / "train.csv").read_text()
    (pfs / "out" / f"model_C{c}_G{gamma}.txt").write_text(f"svc C={c} gamma={gamma} "
                                                          f"rows={len(train.splitlines())}\n")


@pytest.fixture
def seed(lakefs_standin, tmp_path):
    heads = seed_inputs(lakefs_standin)
    steps, _abort = compiled_steps(SEED / "pipelines", Config(default_branch="master"))
    return Harness(lakefs_standin, tmp_path), steps, heads


def test_split_then_model_gives_a_77_datum_index_and_one_commit_with_provenance(seed):
    h, steps, heads = seed
    s = h.standin
    split_before = s.head("split", "master")
    split = h.job(steps["split"], split_user)
    assert s.head("split", "master") == split.commit
    assert s.commit("split", split.commit).parents[0] == split_before
    assert s.read("split", split.commit, "train.csv").count(b"\n") == 80

    model_before = s.log("model", "master")
    model = h.job(steps["model"], model_user, pins=[f"split@{split.commit}"])
    after = s.log("model", "master")
    assert len(after) == len(model_before) + 2  # the job commit and its merge
    files = s.objects("model", model.commit)
    assert not [p for p in files if p.startswith(".dsc/datums/")]  # the job's, not committed
    index = json.loads(files[".dsc/index/000000.json"])
    assert len(index) == 77 and {e["state"] for e in index} == {"processed"}
    models = sorted(p for p in files if p.startswith("model_"))
    values = {name: [p.read_text().strip() for p in sorted((DATA / "parameters" / name).iterdir())]
              for name in ("c_parameters.txt", "gamma_parameters.txt")}
    assert models == sorted(f"model_C{c}_G{g}.txt" for c in values["c_parameters.txt"]
                            for g in values["gamma_parameters.txt"])
    meta = s.commit("model", model.commit).metadata
    assert meta["dsc.pipeline"] == "model"
    assert meta["dsc.input.split"] == f"split@{split.commit}"
    assert meta["dsc.input.c-parameters"] == f"parameters@{heads['parameters']}"
    assert meta["dsc.input.gamma-parameters"] == f"parameters@{heads['parameters']}"
    assert meta["dsc.workflow"] == h.run and meta["dsc.workflow.uid"] == h.uid
    assert meta["dsc.datums"] == "total=77 processed=77 skipped=0 deleted=0 recovered=0"
    assert len(meta["dsc.spec.sha256"]) == 64 and len(meta["dsc.code"]) == 64
    # every datum names its outputs with lakeFS's checksum, and the job that made them
    one = index[0]
    assert one["job"] == h.uid and len(one["files"]) == 1 and len(one["hash"]) == 64
    (path, stats), = one["files"].items()
    assert stats["size"] == len(files[path])
    jobs = json.loads(files[".dsc/index/jobs.json"])
    assert jobs[h.uid]["code"] == meta["dsc.code"] and jobs[h.uid]["run"] == h.run
    # the job branch is gone, the outputs name the commit
    assert not [b for b in branches(s, "model") if b.startswith("dsc-")]
    assert h.outputs()["commit"] == model.commit and h.outputs()["url"] == ""


def test_a_worker_lays_out_pfs_and_the_variables_as_pachyderm_does(seed):
    h, steps, _heads = seed
    split = h.job(steps["split"], split_user)
    opened = h.open(steps["model"], [f"split@{split.commit}"])
    seen: list[dict[str, object]] = []

    def user(pfs: Path, env: dict[str, str]) -> None:
        # what the datum sees (the worker protocol's own files aside, in .dsc-*)
        files = sorted(str(p.relative_to(pfs)) for top in pfs.iterdir()
                       if not top.name.startswith(".dsc") for p in [top, *top.rglob("*")]
                       if p.is_file())
        seen.append({**env, "files": files})
        (pfs / "out" / f"{len(seen)}.txt").write_text("x")

    h.work(steps["model"], opened.branch, user)
    assert len(seen) == opened.todo == 77  # one worker, every datum, one at a time
    pfs = h.tmp / "pods" / f"{h.run}.worker-0"  # the pod's volume; the same /pfs for every datum
    datum = seen[12]
    assert datum["split"] == str(pfs / "split" / "train.csv")
    assert datum["split_COMMIT"] == split.commit
    assert "c-parameters_COMMIT" not in datum  # not a shell name
    files = datum["files"]
    assert isinstance(files, list) and "split/train.csv" in files
    c_files = [f for f in files if f.startswith("c-parameters/")]
    g_files = [f for f in files if f.startswith("gamma-parameters/")]
    assert len(c_files) == 1 and len(g_files) == 1
    assert not [f for f in files if f.startswith("out/")]  # /pfs/out starts empty each time
    assert len(str(datum["PACH_DATUM_ID"])) == 64
    assert len({d["PACH_DATUM_ID"] for d in seen}) == 77
    assert datum["PACH_JOB_ID"] == opened.branch


def test_dsc_provenance_prints_the_lineage_of_the_model_commit(seed):
    from click.testing import CliRunner

    from compiler.cli import cli

    h, steps, heads = seed
    s = h.standin
    split = h.job(steps["split"], split_user)
    model = h.job(steps["model"], model_user, pins=[f"split@{split.commit}"])
    env = {"LAKEFS_ENDPOINT": s.endpoint, "LAKEFS_ACCESS_KEY_ID": s.access_key_id,
           "LAKEFS_SECRET_ACCESS_KEY": s.secret_access_key}
    result = CliRunner().invoke(cli, ["provenance", "lakefs://model/master"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"model@{model.commit[:12]}  pipeline model · run {h.run}")
    assert "77 datums" in lines[0]
    text = result.output
    assert f"split: split@{split.commit[:12]}  pipeline split" in text
    assert f"raw_data: raw-data@{heads['raw-data'][:12]}  (source)" in text
    assert f"c-parameters: parameters@{heads['parameters'][:12]}  (source)" in text
    result = CliRunner().invoke(cli, ["provenance", "-o", "json", f"lakefs://model/{model.commit}"],
                                env=env)
    tree = json.loads(result.output)
    assert tree["commit"] == model.commit and tree["pipeline"] == "model"
    assert s.secret_access_key not in result.output
