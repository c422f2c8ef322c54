"""Resuming after a failed run: the next job of a pipeline takes the datums a failed job of it
did, from the same content with the same code, instead of processing them again (issue 16,
item 8). Atomicity holds: the outputs are copied onto the new job's branch, and land with its
other outputs in its one merge, only when the whole job succeeds.

- `abort` (`keep_failed`) commits a failed job branch that holds published datums, with
  contract.FAILED_KEY, points `dsc_failed-<pipeline>-<run>` at that commit and deletes the
  job branch. Nothing writes that commit afterwards: its run had ended (the exit handler runs
  last), and a retried step of it finds its job branch gone.
- `open` (`find`, then `adopt`) takes a datum from such a branch only when all of these hold:
  its head is the commit `abort` made for the run its job record names, and that run is not
  this one; the failed job is of this pipeline and output branch, with this code identity, and
  opened at the very output head this job starts from; the datum's manifest there is of that
  run (or was resumed by it), not recovered by `err_cmd`, and every file it lists is in that
  commit with that size and checksum; and the datum's hash now (its content and the code) is
  the manifest's. The outputs are copied inside the store and each copy's checksum checked.
  `--reprocess` of the pipeline and `reprocess_spec: every_job` take nothing.
- `commit` (`drop`) deletes the failed branches its merge made useless (opened at the head
  the job started from); `dsc gc` removes those whose output branch has moved on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from compiler import contract
from compiler.contract.job import Job, JobError
from compiler.runtime.job import Context
from compiler.store import Conflict, LakeFSError, NotFound, Store


@dataclass(slots=True)
class Resumable:
    """The datums failed jobs did that a job opened at one output head may take."""

    # datum ID -> what each failed job did of it: {"hash", "files": {path: {"size",
    # "checksum"}}, "job": run UID, "source": the failed commit holding the files}
    done: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)  # run UID -> its job
    branches: list[str] = field(default_factory=list)  # the failed branches read
    datums: dict[str, dict[str, Any]] = field(default_factory=dict)  # taken (`takes`)

    def takes(self, datum_id: str, hash_: str) -> bool:
        """Whether a failed job did this datum with this hash (content and code); the first
        that did is the one its outputs are taken from."""
        for entry in self.done.get(datum_id, ()):
            if entry["hash"] == hash_:
                self.datums[datum_id] = entry
                return True
        return False

    def run_of(self, datum_id: str) -> str:
        """The name of the run that did the datum."""
        return str(self.jobs.get(self.datums[datum_id]["job"], {}).get("run", "?"))


def failed_branches(store: Store, repo: str, pipeline: str = "") -> list[str]:
    prefix = contract.failed_branch(pipeline, "") if pipeline else contract.FAILED_BRANCH_PREFIX
    try:
        return sorted(name for name, _head in store.branches(repo, prefix))
    except NotFound:
        return []


def failed_record(store: Store, repo: str, name: str) -> tuple[str, dict[str, Any]] | None:
    """(commit, job record) of a failed branch whose head is the commit `abort` made for the
    run its record names; None for anything else."""
    try:
        head = store.commit_of(repo, store.head(repo, name))
        record = json.loads(store.read(repo, head.id, contract.JOB_FILE))
    except (NotFound, ValueError):
        return None
    if not isinstance(record, dict) or not record.get("run_uid") or \
            head.metadata.get(contract.FAILED_KEY) != record["run_uid"]:
        return None
    return head.id, record


def find(store: Store, job: Job, base: str, own_uid: str, transfers: int = 8) -> Resumable:
    """What the failed jobs of `job`'s pipeline did that a job opened at output commit `base`
    may take (the module's rules)."""
    found = Resumable()
    for name in failed_branches(store, job.output_repo, job.pipeline):
        kept = failed_record(store, job.output_repo, name)
        if kept is None:
            continue
        commit, record = kept
        try:
            other = Job.parse(str(record.get("job", "")))
        except JobError:
            continue
        if record.get("pipeline") != job.pipeline or other.output_branch != job.output_branch \
                or record.get("base") != base or not job.code or record.get("code") != job.code \
                or record["run_uid"] == own_uid:
            continue
        done, jobs = _done_in(store, job.output_repo, commit, record, transfers)
        if not done:
            continue
        found.branches.append(name)
        for uid, described in jobs.items():
            found.jobs.setdefault(uid, described)
        for datum_id, entry in done.items():
            found.done.setdefault(datum_id, []).append(entry)
    return found


def _done_in(store: Store, repo: str, commit: str, record: dict[str, Any], transfers: int
             ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The datums a failed commit holds whole (datum ID -> entry), and the jobs that did
    them: its run's published manifests and what that run itself resumed, each kept only when
    every file it lists is in the commit with its size and checksum."""
    uid = str(record["run_uid"])

    def read(path: str) -> Any:
        try:
            return json.loads(store.read(repo, commit, path))
        except (NotFound, ValueError):
            return None

    manifests: list[dict[str, Any]] = []
    paths = [o.path for prefix in (contract.BATCH_DIR, contract.MANIFEST_DIR)
             for o in store.objects(repo, commit, prefix)]
    for content in _parallel(transfers, read, paths):
        for manifest in content if isinstance(content, list) else [content]:
            if isinstance(manifest, dict) and manifest.get("run_uid") == uid and \
                    not manifest.get("recovered"):
                manifests.append({"id": manifest.get("id"), "hash": manifest.get("hash"),
                                  "files": manifest.get("files"), "job": uid})
    jobs = {uid: describe(record)}
    resumed = read(contract.RESUMED_FILE)
    if isinstance(resumed, dict):
        manifests += [entry for entry in (resumed.get("datums") or {}).values()
                      if isinstance(entry, dict)]
        jobs.update(resumed.get("jobs") or {})
    wanted = {path for m in manifests if isinstance(m.get("files"), dict) for path in m["files"]}
    held = {o.path: (o.size, o.checksum) for o in store.objects(repo, commit)
            if o.path in wanted}
    done: dict[str, dict[str, Any]] = {}
    for m in manifests:
        files = m.get("files")
        if not (isinstance(m.get("id"), str) and isinstance(m.get("hash"), str) and m["hash"]
                and isinstance(files, dict) and m.get("job") in jobs):
            continue
        if all(held.get(path) == (f.get("size"), f.get("checksum")) for path, f in files.items()):
            done[m["id"]] = {"hash": m["hash"], "files": files, "job": m["job"],
                             "source": commit}
    return done, {u: jobs[u] for u in {e["job"] for e in done.values()}}


def describe(record: dict[str, Any]) -> dict[str, Any]:
    """A failed job as the datum index's jobs.json describes a job (provenance reads it)."""
    job = Job.parse(str(record["job"]))
    runner = str(record.get("runner", "argo"))
    return {"run": record.get("run"), "pipeline": record.get("pipeline"),
            "started": record.get("started"), "code": record.get("code"),
            "image": job.image if runner != "host" else "", "runner": runner,
            "spec_sha256": job.spec_sha256, "inputs": record.get("inputs"),
            "plan": record.get("digest"), "failed": True}


def adopt(ctx: Context, job: Job, branch: str, resumable: Resumable,
          chosen: list[tuple[int, str]]) -> None:
    """Copy the outputs of the `chosen` (plan index, datum ID) onto the job branch from their
    failed commits, checking each copy, then write RESUMED_FILE. Run again, it does the same."""
    store, repo = ctx.store, job.output_repo
    copies = [(datum_id, path, f) for _index, datum_id in chosen
              for path, f in sorted(resumable.datums[datum_id]["files"].items())]

    def copy(item: tuple[str, str, dict[str, Any]]) -> None:
        datum_id, path, expected = item
        made = store.copy(repo, resumable.datums[datum_id]["source"], path, branch)
        if (made.size, made.checksum) != (expected.get("size"), expected.get("checksum")):
            raise JobError(f"pipeline `{job.pipeline}`: resuming datum {datum_id[:12]}: the "
                           f"copy of /{path} has checksum {made.checksum} ({made.size} bytes), "
                           f"not the {expected.get('checksum')} its manifest records")

    _parallel(ctx.transfers, copy, copies)
    datums = {str(index): {"id": datum_id, **{k: resumable.datums[datum_id][k]
                                               for k in ("hash", "files", "job")}}
              for index, datum_id in chosen}
    jobs = {uid: resumable.jobs[uid] for uid in sorted({d["job"] for d in datums.values()})}
    store.upload(repo, branch, contract.RESUMED_FILE, json.dumps(
        {"datums": datums, "jobs": jobs}, separators=(",", ":")).encode())


def resumed_datums(store: Store, repo: str, branch: str) -> dict[str, Any]:
    """RESUMED_FILE of a job branch ({"datums": {index: entry}, "jobs": {...}})."""
    try:
        value = json.loads(store.read(repo, branch, contract.RESUMED_FILE))
    except NotFound:
        return {"datums": {}, "jobs": {}}
    return value if isinstance(value, dict) else {"datums": {}, "jobs": {}}


def keep_failed(ctx: Context, pipeline: str, repo: str, branch: str) -> str | None:
    """`abort` of a failed run: commit its job branch and keep it as `dsc_failed-...` when it
    holds datums this run did (or resumed); the branch's name, or None (then the job branch
    is deleted as before). Run again, it finds what an earlier attempt did."""
    store, run = ctx.store, ctx.run
    try:
        record = json.loads(store.read(repo, branch, contract.JOB_FILE))
    except (NotFound, ValueError):
        return None
    if not isinstance(record, dict) or record.get("run_uid") != run.uid or \
            record.get("pipeline") != pipeline or not record.get("base"):
        return None
    base = str(record["base"])
    if any(c.metadata.get(contract.RUN_KEY) == run.uid
           for c in store.log(repo, branch, stop_at=base)):
        return None  # its job commit was made: not a failed job's work
    worked = any(True for prefix in (contract.BATCH_DIR, contract.MANIFEST_DIR,
                                     contract.RESUMED_FILE)
                 for _o in store.objects(repo, branch, prefix))
    if not worked:
        return None
    made = store.commit_once(repo, branch, f"dsc: {pipeline} failed in run {run.name}; its "
                             "finished datums are kept for the next run to resume",
                             {contract.FAILED_KEY: run.uid, contract.WORKFLOW_KEY: run.name},
                             contract.FAILED_KEY, since=base)
    name = contract.failed_branch(pipeline, run.name)
    try:
        store.create_branch_once(repo, name, made.id)
    except Conflict:  # an earlier run of the same name failed too: this one is newer
        store.delete_branch(repo, name)
        store.create_branch_once(repo, name, made.id)
    return name


def drop(ctx: Context, job: Job, base: str) -> list[str]:
    """After `commit` merged a job opened at `base`: delete the failed branches of the
    pipeline opened there too (what they did is merged, or can no longer be taken)."""
    dropped: list[str] = []
    try:
        names = failed_branches(ctx.store, job.output_repo, job.pipeline)
    except LakeFSError as exc:  # the job has landed: a leftover branch must not fail it
        ctx.log(f"commit {job.pipeline}: warning: could not list the failed branches of "
                f"{job.output_repo} ({exc}); `dsc gc` removes them")
        return dropped
    for name in names:
        try:
            kept = failed_record(ctx.store, job.output_repo, name)
            if kept is None or kept[1].get("pipeline") != job.pipeline or \
                    kept[1].get("base") != base:
                continue
            ctx.store.delete_branch(job.output_repo, name)
            dropped.append(name)
        except LakeFSError as exc:  # the job has landed: a leftover branch must not fail it
            ctx.log(f"commit {job.pipeline}: warning: could not delete the failed branch "
                    f"{job.output_repo}@{name} ({exc}); `dsc gc` removes it")
    return dropped


def _parallel(transfers: int, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    items = list(items)
    if len(items) <= 1 or transfers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(transfers, len(items))) as pool:
        return list(pool.map(fn, items))
