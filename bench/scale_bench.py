"""Set up issue 17's benchmarks and serve them: `dsc runtime open` planning 1,000,000 datums,
and `dsc runtime commit` of a job whose workers published 100,000 datum manifests.

    .venv/bin/python bench/scale_bench.py /tmp/scale   # prints when ready, then serves

It serves the lakeFS stand-in (responses not validated: a 1,000-row listing costs ~60 ms to
validate, which a real lakeFS does not spend) in this process, and writes into the directory.
With `--unchecked` the stand-in checks no request against swagger.yml either (openapi-core's
parameter checks cost ~5 ms a request: 45% of serving a listing page); `--latency S` adds S
seconds to every request, as a network and a busier lakeFS would.

- `env`: LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID, LAKEFS_SECRET_ACCESS_KEY, DSC_RUN, DSC_RUN_UID,
  DSC_OUTPUT_DIR, DSC_PFS;
- `open-first.sh`: one `dsc runtime open` of pipeline `fresh` (`/*/*` over repo `texts`,
  1,000,000 files in 1,000 directories: one datum a file), whose output branch holds no
  index: every datum is new;
- `open-changed.sh`: the same for pipeline `counts`, whose output branch holds the previous
  job's datum index (made from the plan of the files before the change), with 1% of the
  files changed since;
- `commit.sh`: one `dsc runtime commit` of a job of 100,000 datums (repo `small`), all
  processed: on its job branch the plan, 100,000 output files and the workers' manifests in
  100 batch files of 1,000 (as `worker.py` leaves them). A commit merges and deletes its job
  branch, so the script prepares `--commit-jobs` such jobs, each in its own output repository,
  and each run of `commit.sh` takes the next (`commit.next` counts them);
- `commit-loose.sh` (with `--loose-jobs`): the same job with its manifests loose, one file a
  datum, none in a batch;
- `list.sh`: dsc's lakeFS client reading the listing of `texts` and doing nothing else (the
  floor under `open`: the stand-in's time to serve the pages); `STREAMS=N list.sh` lists N
  directories at once (1: one listing, page after page).

Each script is one whole process; `SCRIPT TREE` runs the `compiler` package of the checkout
TREE (another worktree, for a baseline) instead of this one. Stop the server with Ctrl-C.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import REPO, changed_files, seed_previous_job, serving, tree_files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--datums", type=int, default=1_000_000, help="open's datums")
    parser.add_argument("--changed", type=float, default=0.01, help="fraction changed")
    parser.add_argument("--commit-datums", type=int, default=100_000)
    parser.add_argument("--commit-jobs", type=int, default=12,
                        help="jobs prepared for commit.sh (one a run, warm-ups included)")
    parser.add_argument("--unchecked", action="store_true",
                        help="the stand-in checks no request against swagger.yml either")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds the stand-in adds to every request, as a network would")
    parser.add_argument("--loose-jobs", type=int, default=0,
                        help="jobs prepared for commit-loose.sh")
    args = parser.parse_args()
    with serving(args.directory, validate_requests=not args.unchecked,
                 latency=args.latency) as (work, standin):
        _forget_replaced_plans(standin)
        env = {"LAKEFS_ENDPOINT": standin.endpoint,
               "LAKEFS_ACCESS_KEY_ID": standin.access_key_id,
               "LAKEFS_SECRET_ACCESS_KEY": standin.secret_access_key, "DSC_RUN": "bench",
               "DSC_RUN_UID": "uid-bench", "DSC_OUTPUT_DIR": str(work / "out"),
               "DSC_PFS": str(work / "pfs")}
        (work / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        steps = _pipelines(work, args.datums, args.commit_datums, args.commit_jobs,
                           args.loose_jobs)
        _open_case(standin, work, steps, args.datums, args.changed)
        _commit_cases(standin, work, steps, env, args.commit_datums, args.commit_jobs,
                      args.loose_jobs)
        print(f"ready: {work}/open-first.sh, {work}/open-changed.sh, {work}/commit.sh "
              f"({args.commit_jobs} jobs)", flush=True)
    return 0


def _pipelines(work: Path, datums: int, commit_datums: int, commit_jobs: int,
               loose_jobs: int) -> dict[str, Any]:
    """Compile the pipelines: `fresh` and `counts` over `texts`, c000... over `small`."""
    from compiler.config import Config
    from tests.runtime.harness import compiled_steps

    def spec(name: str, repo: str) -> None:
        (work / "specs" / f"{name}.json").write_text(json.dumps({
            "pipeline": {"name": name},
            "transform": {"image": "busybox@sha256:" + "0" * 64, "cmd": ["true"]},
            "parallelism_spec": {"constant": 4},
            "input": {"pfs": {"repo": repo, "glob": "/*/*"}}}))

    spec("fresh", "texts")
    spec("counts", "texts")
    for k in range(commit_jobs):
        spec(f"c{k:03d}", "small")
    for k in range(loose_jobs):
        spec(f"l{k:03d}", "small")
    limit = 10 * max(datums, commit_datums)
    (work / "dsc.yaml").write_text(f"limits: {{max_datums: {limit}}}\n")
    return compiled_steps(work / "specs", Config(max_datums=limit))[0]


def _open_case(standin: Any, work: Path, steps: dict[str, Any], n: int,
               changed: float) -> None:
    from compiler.contract.job import Job
    from compiler.runtime.job import Context, Run
    from compiler.runtime.verbs import _plan

    before = standin.seed("texts", tree_files(n))
    standin.seed("fresh", {})
    job = Job.parse(steps["counts"].job)
    run = Run.from_environment({"DSC_RUN": "previous", "DSC_RUN_UID": "uid-previous",
                                "DSC_PFS": str(work / "pfs"),
                                "DSC_OUTPUT_DIR": str(work / "out")})
    # The previous index, from the plan of the files before the change, read from the
    # stand-in's model directly (no HTTP: 1,000 pages would take minutes here).
    ctx = Context(_Listed(standin), run, lambda _line: None)  # type: ignore[arg-type]
    seed_previous_job(standin, "counts", job.code, _plan(ctx, job, {job.leaves[0].name: before}))
    standin.seed("texts", changed_files(n, changed))
    for name, pipeline in (("open-first", "fresh"), ("open-changed", "counts")):
        (work / f"{pipeline}.job.json").write_text(steps[pipeline].job)
        _script(work, name, "runtime open --job \"$(cat " + f"{work}/{pipeline}.job.json)\"")
    _script(work, "list", "", python=LIST_TEXTS)


# The floor under `open`: dsc's lakeFS client reading the pages of `texts`, and no more.
# STREAMS=N: list N directories at once (the client's default otherwise).
LIST_TEXTS = ("-c 'import os; from compiler.lakefs.client import from_environment as f; "
              "c = f(os.environ); h = c.head(\"texts\", \"main\"); "
              "s = os.environ.get(\"STREAMS\"); "
              "print(sum(len(p[0]) for p in c.object_columns(\"texts\", h, "
              "**({\"streams\": int(s)} if s else {}))))'")


def _commit_cases(standin: Any, work: Path, steps: dict[str, Any], env: dict[str, str],
                  n: int, jobs: int, loose_jobs: int) -> None:
    """Open each commit job (through lakeFS, as `dsc runtime open` does), then put on its
    job branch what its workers would have left: the outputs and the manifests."""
    from compiler.lakefs.client import LakeFS
    from compiler.runtime.job import Context, Run
    from compiler.runtime.verbs import open_job

    standin.seed("small", tree_files(n))
    client = LakeFS(standin.endpoint, standin.access_key_id, standin.secret_access_key)
    run = Run.from_environment(env)
    ctx = Context(client, run, lambda _line: None)
    for prefix, count, loose in (("c", jobs, False), ("l", loose_jobs, True)):
        for k in range(count):
            pipeline = f"{prefix}{k:03d}"
            standin.seed(pipeline, {})
            opened = open_job(ctx, steps[pipeline].job, ())
            _publish(standin, pipeline, opened.branch, run.uid, opened.workers, loose)
            (work / f"{pipeline}.job.json").write_text(steps[pipeline].job)
            (work / f"{pipeline}.branch").write_text(opened.branch)
    for name, prefix in (("commit", "c"), ("commit-loose", "l")):
        (work / f"{name}.next").write_text("0\n")
        _script(work, name, "runtime commit --job \"$(cat " + f"{work}/{prefix}$k.job.json)\" "
                f"--job-branch \"$(cat {work}/{prefix}$k.branch)\"",
                pick=f"k=$(cat {work}/{name}.next); echo $((k + 1)) >{work}/{name}.next; "
                     "k=$(printf %03d $k)\n")


def _publish(standin: Any, repo: str, branch: str, uid: str, workers: int,
             loose: bool) -> None:
    """Stage a worker's leavings on the job branch, in the stand-in's model: each datum's
    output file and manifest, the manifests gathered 1,000 a batch file (or left loose)."""
    from compiler import contract
    from tests.lakefs_standin.model import Entry

    store = standin.store
    with store.lock:
        model = store.repository(repo)
        namespace = model.storage_namespace
        output = store.blobs.new_address(namespace)
        checksum, size = store.blobs.put(output, b"1\n")
        now = store.now()
        plan = []
        for i in itertools.count(0, contract.PLAN_CHUNK):
            entry = store.resolve(model, branch).get(contract.plan_path(i))
            if entry is None:
                break
            plan.extend(json.loads(store.blobs.read(entry.address)))
        manifests = []
        for index, datum in enumerate(plan):
            out = datum["m"][0][1].lstrip("/") + ".out"
            store.stage(model, branch, out, Entry(output, checksum, size, now))
            manifests.append({"run_uid": uid, "index": index,
                              "key": contract.datum_key(index, datum["m"][0][1]),
                              "id": datum["id"], "hash": datum["h"], "recovered": False,
                              "files": {out: {"size": size, "checksum": checksum}}})

        def put(path: str, value: Any) -> None:
            address = store.blobs.new_address(namespace)
            data = json.dumps(value, separators=(",", ":")).encode()
            blob_checksum, blob_size = store.blobs.put(address, data)
            store.stage(model, branch, path, Entry(address, blob_checksum, blob_size, now))

        if loose:
            for manifest in manifests:
                put(contract.manifest_path(manifest["index"]), manifest)
            return
        for worker in range(workers):
            first, last = contract.worker_share(len(manifests), workers, worker)
            for start in range(first, last, contract.MANIFEST_BATCH):
                put(contract.batch_path(worker, start),
                    manifests[start:min(last, start + contract.MANIFEST_BATCH)])


class _Listed:
    """What `_plan` reads of a store (`objects`), from the stand-in's model."""

    def __init__(self, standin: Any) -> None:
        self.standin = standin

    def objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[Any]:
        from compiler.store import ObjectInfo

        store = self.standin.store
        with store.lock:
            view = store.resolve(store.repository(repo), ref)
            rows = [(path, view.get(path)) for path in store.keys(view)
                    if path.startswith(prefix)]
        for path, entry in rows:
            yield ObjectInfo(path, entry.checksum, entry.size)


def _forget_replaced_plans(standin: Any) -> None:
    """Each timed `open` uploads the plan again over the same job branch: drop the bytes of
    the plan it replaces (never committed there), or the stand-in would hold every run's."""
    store = standin.store
    stage = store.stage

    def staging(repo: Any, branch_name: str, path: str, entry: Any, **kw: Any) -> None:
        old = repo.branch(branch_name).staging.get(path)
        stage(repo, branch_name, path, entry, **kw)
        if old is not None and path.startswith(".dsc/plan/") and (
                entry is None or entry.address != old.address):
            store.blobs._memory.pop(old.address, None)

    store.stage = staging


def _script(work: Path, name: str, command: str, pick: str = "", python: str = "") -> None:
    script = work / f"{name}.sh"
    script.write_text(
        f"#!/bin/sh\n# {name}.sh [TREE]: one whole `dsc` process; TREE: the checkout to run\n"
        f"set -a\n. {work}/env\nset +a\nPYTHONPATH=${{1:-{REPO}}}\nexport PYTHONPATH\n{pick}"
        # -P: the working directory is not put first on sys.path (with -m or -c it would
        # be, and a run from inside a checkout would import that checkout, not TREE)
        f"exec {sys.executable} -P {python or '-m compiler ' + command} >/dev/null "
        f"2>>{work}/{name}.log\n")
    script.chmod(0o755)


if __name__ == "__main__":
    raise SystemExit(main())
