"""`dsc runtime open|stage|publish|commit|abort`: one job over lakeFS (contract.py says how
the manifests call them; DESIGN.md §4-§5 says why).

Every verb may be killed at any point and run again with the same arguments. Writes are
idempotent (an upload of the same bytes, a delete of what is gone) or read back first
(`*_once` in the adapter), and the order of writes makes a half-done verb visible: `open`
writes `.dsc/job.json` after the plan, `publish` the datum manifest after the outputs, and
`commit` trusts only manifests of this run. The output branch changes in one merge.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import sys
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from compiler import __version__, contract
from compiler.contract.job import Job, JobError, Leaf
from compiler.runtime import gc, resume
from compiler.runtime.incremental import (
    PROCESSED,
    REASONS,
    RECOVERED,
    RESUMED,
    Forced,
    Listing,
    Previous,
    Sorted,
    Sorter,
    datum_hash,
    hash_text,
    keys_text,
    read_index,
)
from compiler.runtime.job import Context, Run, write_outputs
from compiler.store import Commit, Conflict, LakeFSError, NotFound, Store

T = TypeVar("T")
_HEX64 = frozenset("0123456789abcdef")
_MD5 = 32
# Seconds a lakeFS server's clock may run behind the Kubernetes API server's: commits older
# than a run's creation by more than this cannot be the run's own.
CLOCK_SKEW = 300


# --- open ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Opened:
    branch: str
    workers: int  # worker pods to run (0: nothing to do)
    todo: int  # datums to process


@dataclass(frozen=True, slots=True)
class Trigger:
    """The new commit a triggered run was started for (a Sensor or the reconciler)."""

    repo: str  # lakeFS repository
    branch: str
    commit: str

    @classmethod
    def parse(cls, repo: str, branch: str, commit: str) -> Trigger | None:
        """None when all three are empty (a run started by hand or by kubectl apply)."""
        if not (repo or branch or commit):
            return None
        if not (repo and branch and commit):
            raise JobError("--trigger-repo, --trigger-branch and --trigger-commit go together "
                           f"(got {repo!r}, {branch!r}, {commit!r})")
        if len(commit) != 64 or not set(commit) <= _HEX64:
            raise JobError(f"--trigger-commit {commit!r} is not a 64-hex lakeFS commit ID")
        return cls(repo, branch, commit)


def open_job(ctx: Context, job_text: str, pins: Iterable[str],
             expect: tuple[int, str] | None = None, cron_tick: str = "",
             trigger: Trigger | None = None, reprocess: str = "") -> Opened:
    started = ctx.clock()
    job = Job.parse(job_text)
    store, run = ctx.store, ctx.run
    pinned = _parse_pins(pins)
    if cron_tick:
        _tick(ctx, job, cron_tick)
    commits = _resolve_inputs(ctx, job, pinned, trigger)
    branch = run.job_branch(job.pipeline)

    if run.storage_namespace:
        namespace = run.storage_namespace.replace("{repo}", job.output_repo)
        if store.ensure_repository(job.output_repo, namespace, job.output_branch):
            ctx.log(f"created lakeFS repository {job.output_repo} at {namespace}")
    try:
        head = store.commit_of(job.output_repo, job.output_branch)
    except NotFound:
        raise JobError(
            f"pipeline `{job.pipeline}`: the output branch {job.output_repo}@"
            f"{job.output_branch} does not exist (create the repository and branch, or set "
            "`lakefs.storage_namespace` in dsc.yaml so dsc creates the repository)") from None
    base = head.id
    pinned_text = ", ".join(f"{leaf.name}={leaf.lakefs_repo}@{commits[leaf.name][:12]}"
                            for leaf in job.leaves)
    chunks = _PlanChunks()
    planned = plan_job(ctx, job, commits, head, Forced.parse(reprocess, job.pipeline),
                       every_job=expect is not None, sink=chunks.add)
    if planned.noop:
        write_outputs(run, "open", {"workers": "[]", "datums": "0",
                                    "branch": contract.noop_branch(base)})
        ctx.log(f"open {job.pipeline}: nothing to do: {job.output_repo}@{job.output_branch} "
                f"({base[:12]}) already holds this code's outputs for {pinned_text}")
        return Opened(contract.noop_branch(base), 0, 0)
    sorting = planned.sorting
    assert sorting is not None
    chunks.finish()
    count = chunks.count
    if job.max_datums and count > job.max_datums:
        raise JobError(f"pipeline `{job.pipeline}` has {count:,} datums, over the budget of "
                       f"{job.max_datums:,} (`limits.max_datums` in dsc.yaml)")
    digest = chunks.digest.hexdigest()
    if expect is not None and (count, digest) != expect:
        raise JobError(
            f"pipeline `{job.pipeline}`: the pinned inputs now give {count} datums (plan "
            f"{digest[:12]}), but the Workflow was compiled for {expect[0]} (plan "
            f"{expect[1][:12]}); recompile with `dsc compile --pin`")

    todo = sorting.processed
    workers = min(job.workers, todo)  # none when every datum is skipped
    resumable = planned.resumable
    gc.check_others(store, job, branch, run, ctx.log, ctx.clock)
    try:
        store.create_branch_once(job.output_repo, branch, base)
    except Conflict:
        raise JobError(f"job branch {job.output_repo}@{branch} already exists and does not "
                       f"start at the output head {base[:12]}: an earlier run of the same "
                       "name left it; delete it and retry") from None
    if sorting.resumed:
        assert resumable is not None
        resume.adopt(ctx, job, branch, resumable, sorting.resumed)
    record = {"version": __version__, "run": run.name, "run_uid": run.uid, "branch": branch,
              "namespace": run.namespace, "runner": run.runner, "owner": run.owner,
              "pipeline": job.pipeline, "started": started, "base": base, "job": job_text,
              "inputs": [{"name": leaf.name, "repo": leaf.repo, "lakefs_repo": leaf.lakefs_repo,
                          "commit": commits[leaf.name]} for leaf in job.leaves],
              "datums": count, "digest": digest, "code": job.code,
              "process": sorting.processed, "skipped": sorting.skipped,
              "removed": len(sorting.removed), "reasons": sorting.reasons,
              "resumed": len(sorting.resumed),
              "reprocess": reprocess, "workers": workers}
    # The plan first, the job record last: its presence says `open` finished.
    _parallel(ctx, lambda item: store.upload(job.output_repo, branch, item[0], item[1]()),
              [*((contract.plan_path(i * contract.PLAN_CHUNK), functools.partial(chunks.read, i))
                 for i in range(len(chunks))),
               (contract.TODO_FILE, lambda: _json(sorting.todo))])
    chunks.close()
    store.upload(job.output_repo, branch, contract.JOB_FILE, _json(record))

    write_outputs(run, "open", {"workers": json.dumps([str(i) for i in range(workers)]),
                                "datums": str(todo), "branch": branch})
    why = ", ".join(f"{n} {r}" for r, n in sorted(sorting.reasons.items()))
    ctx.log(f"open {job.pipeline}: {count} datums (plan {digest[:12]}) over {pinned_text}: "
            f"{todo} to process{f' ({why})' if why else ''} by {workers} worker"
            f"{'' if workers == 1 else 's'}, {sorting.skipped} skipped, "
            + (f"{len(sorting.resumed)} resumed (done by failed run "
               f"{', '.join(_runs_of(resumable, sorting.resumed))}), "
               if sorting.resumed and resumable is not None else "")
            + f"{len(sorting.removed)} removed; job branch {job.output_repo}@{branch} from "
            f"{job.output_branch}@{base[:12]} in {ctx.clock() - started:.2f} s")
    return Opened(branch, workers, todo)


def _runs_of(resumable: resume.Resumable, chosen: list[tuple[int, str]]) -> list[str]:
    return sorted({resumable.run_of(datum_id) for _i, datum_id in chosen})


class _PlanChunks:
    """The plan as `open` uploads it, PLAN_CHUNK datums a JSON file, encoded as the datums are
    planned and kept in a temporary file until the checks before the job branch pass (a
    million datums are ~200 MB of JSON: not to be held in memory, nor as a million dicts)."""

    def __init__(self) -> None:
        self.count = 0
        self.digest = hashlib.sha256()  # contract.plan_digest, a chunk at a time
        self._ids: list[str] = []
        self._entries: list[str] = []
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (see close())
        self._spans: list[tuple[int, int]] = []  # (offset, length) of each chunk in the file

    def add(self, datum_id: str, hash_: str, matches: list[list[Any]], why: str | None
            ) -> None:
        self._ids.append(datum_id)
        self._entries.append(_entry_json(datum_id, hash_, matches, why))
        if len(self._entries) == contract.PLAN_CHUNK:
            self._flush()

    def finish(self) -> None:
        self._flush()
        self._file.flush()  # read back with os.pread, past the buffer

    def _flush(self) -> None:
        if not self._entries:
            return
        self.count += len(self._entries)
        self.digest.update(("\n".join(self._ids) + "\n").encode())
        data = ("[" + ",".join(self._entries) + "]").encode()
        self._spans.append((self._file.tell(), len(data)))
        self._file.write(data)
        self._ids, self._entries = [], []

    def __len__(self) -> int:
        return len(self._spans)

    def read(self, chunk: int) -> bytes:
        offset, length = self._spans[chunk]
        return os.pread(self._file.fileno(), length, offset)

    def close(self) -> None:
        self._file.close()


def _entry_json(datum_id: str, hash_: str, matches: list[list[Any]], why: str | None) -> str:
    """`_json` of a plan entry `{"id", "h", "m", "s": 1 | "r": why}`, byte for byte, written
    out: json.dumps of a million entries costs 2.3 s, this 1.1 s. IDs and hashes are hex."""
    text = _string
    parts = []
    for leaf, path, join_key, group_key, size, checksum in matches:
        parts.append(f"[{leaf},{text(path)},{text(join_key) if join_key else _EMPTY},"
                     f"{text(group_key) if group_key else _EMPTY},"
                     f"{'null' if size is None else int(size)},"
                     f"{'null' if checksum is None else text(checksum)}]")
    mark = _MARKS.get(why) or f'"r":{text(str(why))}'
    return f'{{"id":"{datum_id}","h":"{hash_}","m":[{",".join(parts)}],{mark}}}'


_string = json.encoder.encode_basestring  # what _json uses
_EMPTY = _string("")
# The mark of a skipped datum, and of each reason one is processed, encoded once.
_MARKS: dict[str | None, str] = {None: '"s":1', **{why: f'"r":{_string(why)}'
                                                    for why in REASONS}}


@dataclass(frozen=True, slots=True)
class Planned:
    """What a job would do (`open` does it; `dsc plan` shows it)."""

    noop: bool  # the output head already holds this code's outputs of these input commits
    plan: list[dict[str, Any]]  # empty when given to a sink
    sorting: Sorted | None
    previous: Previous
    resumable: resume.Resumable | None = None  # what failed jobs did that it may take


def plan_job(ctx: Context, job: Job, commits: dict[str, str], head: Commit | None,
             forced: Forced, every_job: bool = False,
             sink: Callable[[str, str, list[list[Any]], str | None], None] | None = None
             ) -> Planned:
    """Plan the datums and sort them against the output head's index; reads only. A pinned
    run (`every_job`: its datums are embedded in the Workflow) processes all of them. With
    `sink`, each datum goes there as it is planned instead of into `Planned.plan`."""
    every_job = every_job or job.reprocess_spec == "every_job"
    if head is not None and not every_job and not forced.everything and not forced.prefixes \
            and _holds(head, job, commits):
        return Planned(True, [], None, Previous.empty())
    plan: list[dict[str, Any]] = []
    # A forced or every-job reprocess takes nothing from a failed job either.
    resumable = resume.find(ctx.store, job, head.id, ctx.run.uid, ctx.transfers) \
        if head is not None and not every_job and not forced.everything else None
    with ThreadPoolExecutor(max_workers=1) as pool:  # the index is read while listing
        reading = pool.submit(read_index, ctx.store, job.output_repo, head.id,
                              ctx.transfers) if head is not None else None
        datums = _datums(ctx, job, commits)
        try:
            first = next(datums, None)  # the listing has begun
            previous = reading.result()[0] if reading is not None else Previous.empty()
            sorter = Sorter(previous, job.code, every_job, forced,
                            resumable.takes if resumable and resumable.done else None)
            emit = sink or _entry_into(plan)
            for datum_id, hash_, matches in itertools.chain((first,) if first else (), datums):
                emit(datum_id, hash_, matches, sorter.sort(datum_id, hash_))
        finally:
            datums.close()
    return Planned(False, plan, sorter.result(), previous, resumable)


def _entry_into(plan: list[dict[str, Any]]
                ) -> Callable[[str, str, list[list[Any]], str | None], None]:
    def add(datum_id: str, hash_: str, matches: list[list[Any]], why: str | None) -> None:
        plan.append({"id": datum_id, "h": hash_, "m": matches,
                     **({"s": 1} if why is None else {"r": why})})
    return add


def _holds(head: Commit, job: Job, commits: dict[str, str]) -> bool:
    """Whether the output head is this pipeline's output, made by this code from exactly
    these input commits (then a job would change nothing, and none runs)."""
    meta = head.metadata
    if not job.code or meta.get(contract.CODE_KEY) != job.code or \
            meta.get(contract.PIPELINE_KEY) != job.pipeline:
        return False
    return all(contract.recorded_commit(meta, leaf.name, leaf.lakefs_repo) == commits[leaf.name]
               for leaf in job.leaves)


def _tick(ctx: Context, job: Job, repo: str) -> None:
    """Commit this run's tick to cron repo `repo` (once: a retry finds it landed)."""
    leaf = next((x for x in job.leaves if x.cron and x.repo == repo), None)
    if leaf is None:
        raise JobError(f"--cron-tick {repo}: pipeline `{job.pipeline}` has no cron input "
                       "reading that repo")
    try:
        when = _utc(ctx.run.created)
    except ValueError:
        raise JobError("DSC_RUN_CREATED (Argo sets it from {{workflow.creationTimestamp}}) "
                       f"is not an RFC 3339 time: {ctx.run.created!r}") from None
    if leaf.start and when < _utc(leaf.start):
        ctx.log(f"cron {leaf.name}: {when:%Y-%m-%dT%H:%M:%SZ} is before the input's start "
                f"{leaf.start}: no tick")
        return
    tick = f"{when:%Y-%m-%dT%H:%M:%SZ}"
    store, branch = ctx.store, job.default_branch
    if ctx.run.storage_namespace:
        store.ensure_repository(leaf.lakefs_repo,
                                 ctx.run.storage_namespace.replace("{repo}", leaf.lakefs_repo),
                                 branch)
    try:
        head = store.commit_of(leaf.lakefs_repo, branch)
    except NotFound:
        raise JobError(f"cron input `{leaf.name}`: lakeFS has no {leaf.lakefs_repo}@{branch} "
                       "(create it, or set `lakefs.storage_namespace`)") from None
    # An earlier attempt of this run committed the tick, perhaps under later commits: look
    # back through the commits made since the run was created.
    for earlier in store.log(leaf.lakefs_repo, head.id):
        if earlier.metadata.get(contract.RUN_KEY) == ctx.run.uid:
            return
        if earlier.created and earlier.created < when.timestamp() - CLOCK_SKEW:
            break
    if leaf.overwrite:
        old = [o.path for o in store.objects(leaf.lakefs_repo, branch)
               if "/" not in o.path and o.path != tick]
        if old:
            store.delete_objects(leaf.lakefs_repo, branch, old)
    store.upload(leaf.lakefs_repo, branch, tick, b"")
    store.commit_once(leaf.lakefs_repo, branch, f"dsc: cron tick {tick}",
                       {contract.RUN_KEY: ctx.run.uid, contract.WORKFLOW_KEY: ctx.run.name,
                        "dsc.cron.tick": tick}, contract.RUN_KEY, since=head.id)
    ctx.log(f"cron {leaf.name}: tick {leaf.lakefs_repo}@{branch}:/{tick}")


def _utc(text: str) -> datetime:
    """An RFC 3339 time (Python 3.10's fromisoformat knows no `Z`); naive means UTC."""
    when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _parse_pins(pins: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pin in pins:
        repo, at, commit = pin.rpartition("@")
        if not at or not repo or len(commit) != 64 or not set(commit) <= _HEX64:
            raise JobError(f"--pin {pin!r} is not REPO@<64-hex commit ID>")
        if out.setdefault(repo, commit) != commit:
            raise JobError(f"--pin pins repo `{repo}` twice, at {out[repo][:12]} and "
                           f"{commit[:12]}")
    return out


def _resolve_inputs(ctx: Context, job: Job, pinned: dict[str, str],
                    trigger: Trigger | None = None) -> dict[str, str]:
    """The commit every leaf reads: its pin, the commit its spec names, the commit that
    triggered the run, or its branch head read now (once per repository and branch)."""
    heads: dict[tuple[str, str], str] = {}
    commits: dict[str, str] = {}
    by_repo: dict[str, str] = {}
    for leaf in job.leaves:
        if leaf.repo in pinned:
            commit = pinned[leaf.repo]
        elif leaf.commit:
            commit = _lookup(job, leaf, leaf.commit, ctx.store.commit_of).id
        else:
            branch = job.branch_of(leaf)
            key = (leaf.lakefs_repo, branch)
            if key not in heads:
                heads[key] = (_triggered(ctx, job, trigger)
                              if trigger is not None and key == (trigger.repo, trigger.branch)
                              else _lookup(job, leaf, branch, ctx.store.head, ctx.store))
            commit = heads[key]
        if by_repo.setdefault(leaf.repo, commit) != commit:
            raise JobError(f"pipeline `{job.pipeline}` reads repo `{leaf.repo}` at two "
                           f"commits ({by_repo[leaf.repo][:12]}, {commit[:12]}); an input "
                           "repo is read at one commit per job")
        commits[leaf.name] = commit
    return commits


def _triggered(ctx: Context, job: Job, trigger: Trigger) -> str:
    """The commit a triggered run reads of its trigger's branch: the trigger's commit while
    it is the branch's data (the head, or under dsc bookkeeping commits only). When the branch
    has moved on, its head: the run started for an older commit must not publish older data
    over a newer run's (the newer commit's own run then finds the same inputs)."""
    from compiler.runtime.reconcile import head_chain

    try:
        chain = head_chain(ctx.store, trigger.repo, trigger.branch)
    except NotFound as exc:
        raise JobError(f"pipeline `{job.pipeline}`: the trigger's branch {trigger.repo}@"
                       f"{trigger.branch} is gone ({exc.where}: {exc.message})") from None
    if trigger.commit in chain:
        return trigger.commit
    ctx.log(f"open {job.pipeline}: {trigger.repo}@{trigger.branch} moved on from the "
            f"trigger's commit {trigger.commit[:12]} to {chain[0][:12]}; reading the head")
    return chain[0]


def _lookup(job: Job, leaf: Leaf, ref: str, read: Callable[[str, str], T],
            store: Store | None = None) -> T:
    try:
        return read(leaf.lakefs_repo, ref)
    except NotFound as exc:
        hint = _branch_hint(store, job, leaf, ref) if store is not None else ""
        raise JobError(f"pipeline `{job.pipeline}`, input `{leaf.name}`: {exc.where} "
                       f"has no {leaf.lakefs_repo}@{ref} ({exc.message}){hint}") from None


def _branch_hint(store: Store, job: Job, leaf: Leaf, branch: str) -> str:
    """When the repository exists but not the branch: which branches it has, and the
    settings that choose one (Pachyderm specs read `master`, its default; dsc writes the
    configured default branch, `main` unless set)."""
    try:
        names = sorted(name for name, _head in store.branches(leaf.lakefs_repo)
                       if not name.startswith(contract.JOB_BRANCH_PREFIX))
    except LakeFSError:
        return ""
    if not names:
        return ""
    setting = ("the input's `branch`" if leaf.branch else
               "`default_branch` in dsc.yaml (or --default-branch, DSC_DEFAULT_BRANCH), or the "
               "input's `branch`")
    return (f"; its branches are {', '.join(names)}: to read "
            f"{'one of them' if len(names) > 1 else names[0]}, set {setting}")


def _plan(ctx: Context, job: Job, commits: dict[str, str]) -> list[dict[str, Any]]:
    """The datums, as stored: per datum its ID, its hash (incremental.datum_hash) and matches
    `[leaf, path, join key, group key, size, checksum]` (size and checksum of a file match; a
    directory is listed by `stage`). `open` adds `"s": 1` (skipped) or `"r": why`."""
    return [{"id": datum_id, "h": hash_, "m": matches}
            for datum_id, hash_, matches in _datums(ctx, job, commits)]


def _datums(ctx: Context, job: Job, commits: dict[str, str]
            ) -> Generator[tuple[str, str, list[list[Any]]], None, None]:
    """Each datum of `_plan` as (ID, hash, matches), planned while the inputs are listed."""
    from compiler.datums.plan import Source, matched_paths, plan_datums

    tree, by_source = job.tree()
    at = {leaf.repo: (leaf.lakefs_repo, commits[leaf.name]) for leaf in job.leaves}
    leaf_of = {source: leaf.index for source, leaf in by_source.items()}
    listed: dict[tuple[str, str], Listing] = {}

    def listing(repo: str) -> Listing:
        where = at[repo]
        if where not in listed:
            listed[where] = Listing.read(ctx.store, *where)
        return listed[where]

    code = job.code
    one_file: dict[int, tuple[int, Listing]] = {}  # a source's leaf and listing, by its id

    def one(datum_id: str, source: Source, path: str, join_key: str, group_key: str
            ) -> tuple[str, str, list[list[Any]]]:
        """A datum of one match: of a file (most are), datum_hash's text without objects."""
        where = one_file.get(id(source))
        if where is None:
            where = one_file[id(source)] = (leaf_of[id(source)], listing(source.repo))
        leaf, files = where
        row = files.find(path) if path[-1] != "/" else -1
        if row < 0:
            return datum_id, datum_hash(datum_id, code, [
                (leaf, path, files.under(path, path[-1] == "/"))]), [
                [leaf, path, join_key, group_key, None, None]]
        size, checksum = files.sizes[row], files.checksum(row)
        return datum_id, hash_text(
            f"{datum_id}\0{code}\0{leaf}\0{path}\0{path[1:]}\0{size}\0{checksum}\0\1"), [
            [leaf, path, join_key, group_key, size, checksum]]

    _quick_switches(True)
    try:
        if isinstance(tree, Source) and not tree.s3 and tree.glob.source != "/" \
                and tree.join_on is None and tree.group_by is None:
            # One input without keys (most pipelines): a datum a matched path, planned
            # without a Match or a Datum (a million datums: ~1 s less)
            for path, _found in matched_paths(tree, iter(listing(tree.repo))):
                yield one(tree.datum_id(path), tree, path, "", "")
            return
        for datum in plan_datums(tree, lambda repo: iter(listing(repo))):
            datum_id = datum.id
            matches = datum.matches
            if len(matches) == 1:
                m = matches[0]
                yield one(datum_id, m.source, m.path, m.join_key, m.group_key)
                continue
            entries: list[list[Any]] = []
            content = []
            for m in matches:
                leaf = leaf_of[id(m.source)]
                files = listing(m.source.repo)
                row = -1 if m.is_dir else files.find(m.path)
                entries.append([leaf, m.path, m.join_key, m.group_key,
                                files.sizes[row] if row >= 0 else None,
                                files.checksum(row) if row >= 0 else None])
                content.append((leaf, m.path, files.under(m.path, m.is_dir)))
            yield datum_id, datum_hash(datum_id, code, content), entries
    finally:
        _quick_switches(False)
        for each in listed.values():
            each.close()


_SWITCHES = threading.Lock()
_switching = [0, 0.0]  # plans being made (`dsc run` may make several at once), the interval


def _quick_switches(on: bool) -> None:
    """While a plan is made, Python switches threads every 0.5 ms, not 5: a listing thread
    waits for the GIL after every read from lakeFS, and behind a busy planner waited ~15 ms
    a page (1,000 pages: the first run of 1,000,000 datums 31 -> 20 s)."""
    with _SWITCHES:
        if on:
            if not _switching[0]:
                _switching[1] = sys.getswitchinterval()
                sys.setswitchinterval(min(_switching[1], 0.0005))
            _switching[0] += 1
        else:
            _switching[0] -= 1
            if not _switching[0]:
                sys.setswitchinterval(_switching[1])


# --- what the workers read ---------------------------------------------------------------

# Plan chunks already read through a store: a worker reads its share's chunks in order, and
# `dsc run` runs every worker in one process with one store. A chunk is named by the job's
# plan digest, so a plan written again (open retried on moved inputs) is never read from
# here. Kept per store object (weakly), never by id().
_PLANS: weakref.WeakKeyDictionary[Any, OrderedDict[tuple[str, str, str, str, str],
                                                   list[Any]]] = weakref.WeakKeyDictionary()
_PLANS_LOCK = threading.Lock()
PLANS_KEPT = 8


def _plan_chunk(ctx: Context, repo: str, branch: str, record: dict[str, Any],
                index: int) -> list[Any]:
    path = contract.plan_path(index)
    key = (repo, branch, str(record.get("run_uid")), str(record.get("digest")), path)
    with _PLANS_LOCK:
        kept = _PLANS.setdefault(ctx.store, OrderedDict())
        chunk = kept.get(key)
        if chunk is not None:
            kept.move_to_end(key)
            return chunk
    chunk = list(json.loads(ctx.store.read(repo, branch, path)))
    with _PLANS_LOCK:
        kept[key] = chunk
        while len(kept) > PLANS_KEPT:
            kept.popitem(last=False)
    return chunk


def _job_record(ctx: Context, pipeline: str, repo: str, branch: str) -> dict[str, Any] | None:
    """The job record `open` wrote on this run's job branch; None when it is not there."""
    if branch != ctx.run.job_branch(pipeline):
        raise JobError(f"--job-branch {branch} is not this run's branch for pipeline "
                       f"`{pipeline}` ({ctx.run.job_branch(pipeline)})")
    try:
        record: dict[str, Any] = json.loads(ctx.store.read(repo, branch, contract.JOB_FILE))
    except NotFound:
        return None
    if record.get("run_uid") != ctx.run.uid or record.get("pipeline") != pipeline:
        raise JobError(f"job branch {repo}@{branch} belongs to run {record.get('run')} "
                       f"(pipeline {record.get('pipeline')}), not to this one")
    return record


def _check_deadline(ctx: Context, job: Job, record: dict[str, Any], what: str) -> None:
    if job.job_timeout and ctx.clock() - float(record["started"]) > job.job_timeout:
        raise JobError(f"pipeline `{job.pipeline}`: {what}: the job has run longer than its "
                       f"job_timeout of {job.job_timeout} s")


# --- commit ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Committed:
    commit: str
    url: str


def commit(ctx: Context, job_text: str, branch: str) -> Committed:
    started = ctx.clock()
    job = Job.parse(job_text)
    store, run = ctx.store, ctx.run
    repo = job.output_repo
    if branch.startswith("@"):
        return _noop(ctx, job, branch[1:], started)
    record = _job_record(ctx, job.pipeline, repo, branch)
    if record is None:
        # Gone after a merge of this run (a retry after the branch was deleted), or never made.
        landed = _run_commit(ctx, job.pipeline, repo, job.output_branch)
        if landed is not None:
            return _done(ctx, job, landed.id, started, "already committed")
        raise JobError(f"pipeline `{job.pipeline}`: job branch {repo}@{branch} is gone or was "
                       "never opened, and the output branch holds no commit of this run")
    _check_deadline(ctx, job, record, "commit")
    base = str(record["base"])
    made = next((c for c in store.log(repo, branch, stop_at=base)
                 if c.metadata.get(contract.RUN_KEY) == run.uid), None)
    if made is not None:  # an earlier attempt committed the job branch: merge that commit
        merged = _merge(ctx, job, branch, base, made.message, dict(made.metadata))
        _drop_branch(ctx, job, branch)
        resume.drop(ctx, job, base)
        return _done(ctx, job, merged.id, started, "merged into " + job.output_branch)

    count = int(record["datums"])
    plan = [entry for chunk in _parallel(ctx, lambda i: _plan_chunk(ctx, repo, branch, record, i),
                                         range(0, count, contract.PLAN_CHUNK))
            for entry in chunk]
    processed = [i for i, entry in enumerate(plan)
                 if not entry.get("s") and entry.get("r") != RESUMED]
    resumed = [i for i, entry in enumerate(plan) if entry.get("r") == RESUMED]
    carried_ids = {entry["id"] for entry in plan if entry.get("s")}
    index = _uploaded_index(ctx, repo, branch, record)
    if index is None:
        index = _assemble_index(ctx, job, branch, record, plan, processed, carried_ids,
                                resumed)
    writers = _check_paths(job, index)
    uploads = [path for i in range(0, count, contract.INDEX_CHUNK)
               for path in (contract.index_path(i), contract.index_keys_path(i))]
    keep = {contract.JOB_FILE, contract.INDEX_JOBS, *uploads,
            *(contract.plan_path(i) for i in range(0, count, contract.PLAN_CHUNK)), *writers}
    stale = [o.path for o in store.objects(repo, branch) if o.path not in keep]
    if stale:
        store.delete_objects(repo, branch, stale)
    done = [index[i] for i in processed]
    recovered = sum(1 for e in done if e["state"] == RECOVERED)
    counts = {"total": count, "processed": len(processed) - recovered,
              "skipped": len(carried_ids), "deleted": int(record.get("removed") or 0),
              "recovered": recovered}
    if resumed:
        counts["resumed"] = len(resumed)
    metadata = _provenance(job, record, run, counts)
    message = (f"dsc: {job.pipeline} ({len(processed)} of {count} datums processed"
               + (f", {len(resumed)} resumed from a failed run" if resumed else "")
               + f", run {run.name})")
    made = store.commit_once(repo, branch, message, metadata, contract.RUN_KEY, since=base)
    merged = _merge(ctx, job, branch, base, message, metadata)
    _drop_branch(ctx, job, branch)
    for name in resume.drop(ctx, job, base):
        ctx.log(f"commit {job.pipeline}: deleted the failed branch {repo}@{name} (merged "
                "what it held, or it can no longer be resumed)")
    size = sum(f["size"] for e in done for f in e["files"].values())
    ctx.log(f"commit {job.pipeline}: job commit {made.id[:12]}; removed {len(stale)} earlier "
            f"files; {len(writers)} files from {count} datums ({len(processed)} processed, "
            f"{_bytes(size)} written, {len(carried_ids)} skipped, {recovered} recovered"
            + (f", {len(resumed)} resumed" if resumed else "") + ")")
    return _done(ctx, job, merged.id, started, "merged into " + job.output_branch)


def _assemble_index(ctx: Context, job: Job, branch: str, record: dict[str, Any],
                    plan: list[dict[str, Any]], processed: list[int],
                    carried_ids: set[str], resumed: list[int]) -> list[dict[str, Any]]:
    """The job's datum index, from this run's manifests (processed datums), the outputs
    `open` took from failed jobs (resumed ones: RESUMED_FILE) and the output head's index
    (skipped ones), uploaded to the job branch: the chunks first, jobs.json last, so a retry
    that finds jobs.json of this run finds the whole index (the manifests may be deleted by
    then)."""
    store, run, repo = ctx.store, ctx.run, job.output_repo
    base = str(record["base"])
    manifests = _manifests(ctx, repo, branch, processed)
    taken = resume.resumed_datums(store, repo, branch) if resumed else {"datums": {}}
    for i in resumed:
        entry = taken["datums"].get(str(i))
        if not entry or entry.get("id") != plan[i]["id"] or entry.get("hash") != plan[i]["h"]:
            raise JobError(f"pipeline `{job.pipeline}`: datum {i} ({plan[i]['id'][:12]}) is "
                           f"planned as resumed, but {contract.RESUMED_FILE} on {repo}@{branch} "
                           "does not record it: `open` did not finish")
        manifests[i] = {"recovered": False, "files": entry["files"], "job": entry["job"]}
    previous, carried = read_index(store, repo, base, ctx.transfers,
                                   keep=lambda e: e["id"] in carried_ids) if carried_ids \
        else (Previous.empty(), {})
    missing = carried_ids - set(carried)
    if missing:
        raise JobError(f"pipeline `{job.pipeline}`: {len(missing)} datums marked skipped are "
                       f"not in the index of {repo}@{base[:12]} (e.g. {sorted(missing)[0][:12]})"
                       "; the output branch changed under the job: run it again")
    index = [_index_entry(plan[i], manifests[i], manifests[i].get("job", run.uid))
             if i in manifests else carried[plan[i]["id"]] for i in range(len(plan))]
    jobs = {uid: previous.jobs[uid] for uid in {e["job"] for e in index}
            if uid in previous.jobs}
    jobs.update(taken.get("jobs") or {})
    jobs[run.uid] = {"run": run.name, "pipeline": job.pipeline, "started": record["started"],
                     "code": job.code, "image": job.image if run.runner != "host" else "",
                     "runner": run.runner, "spec_sha256": job.spec_sha256,
                     "inputs": record["inputs"], "plan": record["digest"]}
    _parallel(ctx, lambda item: store.upload(repo, branch, item[0], item[1]),
              [item for i in range(0, len(index), contract.INDEX_CHUNK) for item in (
                  (contract.index_path(i), _json(index[i:i + contract.INDEX_CHUNK])),
                  (contract.index_keys_path(i), keys_text(index[i:i + contract.INDEX_CHUNK])))])
    store.upload(repo, branch, contract.INDEX_JOBS, _json(dict(sorted(jobs.items()))))
    return index


def _uploaded_index(ctx: Context, repo: str, branch: str, record: dict[str, Any]
                    ) -> list[dict[str, Any]] | None:
    """The index an earlier attempt of this commit uploaded in full, or None."""
    try:
        jobs = json.loads(ctx.store.read(repo, branch, contract.INDEX_JOBS))
    except NotFound:
        return None
    mine = jobs.get(ctx.run.uid) if isinstance(jobs, dict) else None
    if not mine or mine.get("plan") != record["digest"]:
        return None  # the output head's, carried over when the job branch was made
    count = int(record["datums"])
    return [entry for chunk in _parallel(
        ctx, lambda i: json.loads(ctx.store.read(repo, branch, contract.index_path(i))),
        range(0, count, contract.INDEX_CHUNK)) for entry in chunk]


def _drop_branch(ctx: Context, job: Job, branch: str) -> None:
    try:
        ctx.store.delete_branch(job.output_repo, branch)
    except LakeFSError as exc:  # the job has landed: a leftover branch must not fail it
        ctx.log(f"commit {job.pipeline}: warning: could not delete the job branch "
                f"{job.output_repo}@{branch} ({exc}); `dsc gc` removes it")


def _index_entry(entry: dict[str, Any], manifest: dict[str, Any], uid: str) -> dict[str, Any]:
    """A processed datum's line of the datum index (compiler.runtime.incremental)."""
    return {"id": entry["id"], "hash": entry.get("h", ""),
            "state": RECOVERED if manifest["recovered"] else PROCESSED, "job": uid,
            "m": [[leaf, path] for leaf, path, *_rest in entry["m"]],
            "files": manifest["files"]}


def _noop(ctx: Context, job: Job, commit_id: str, started: float) -> Committed:
    """`open` found the output head already holding this job's result: no job branch, no
    commit; the step outputs that commit (downstream reads it)."""
    if not (len(commit_id) == 64 and set(commit_id) <= _HEX64):
        raise JobError(f"--job-branch @{commit_id}: not `@` and a 64-hex commit ID")
    ctx.store.commit_of(job.output_repo, commit_id)  # it exists (a NotFound says which)
    return _done(ctx, job, commit_id, started, "nothing to do: already the output head")


def _merge(ctx: Context, job: Job, branch: str, base: str, message: str,
           metadata: dict[str, str]) -> Commit:
    """Merge the job commit into the output branch, once. The output commit must hold exactly
    this job's outputs (as a Pachyderm output commit does): when the branch's content moved
    since `open` (a person's commit, another run), merging would mix the two under this run's
    provenance, so the job fails instead, naming what moved it. lakeFS has no conditional
    merge: a commit landing between this check and the merge is merged as lakeFS merges."""
    store, repo, output = ctx.store, job.output_repo, job.output_branch
    head = store.commit_of(repo, output)
    if head.id != base:
        moved: list[Commit] = []
        for commit in store.log(repo, head.id, stop_at=base):
            if commit.metadata.get(contract.RUN_KEY) == ctx.run.uid:
                return commit  # an earlier attempt of this step merged; others came after
            if commit.id != base:
                moved.append(commit)
        if head.meta_range != store.commit_of(repo, base).meta_range:
            raise JobError(
                f"pipeline `{job.pipeline}`: the output branch {repo}@{output} moved since "
                f"this job opened at {base[:12]}: {len(moved)} commit"
                f"{'' if len(moved) == 1 else 's'} changed its content, the newest "
                f"{head.id[:12]} ({_describe(head)}). Merging would mix them with this job's "
                "outputs under its provenance, so nothing was merged; run the pipeline again")
    try:
        return store.merge_once(repo, branch, output, message, metadata, contract.RUN_KEY,
                                since=base)
    except Conflict as exc:
        now = store.commit_of(repo, output)
        raise JobError(f"pipeline `{job.pipeline}`: {exc.where} refused to merge the job "
                       f"into {repo}@{output}: a conflict with {now.id[:12]} "
                       f"({_describe(now)}), committed since this job opened at "
                       f"{base[:12]}; nothing was merged; run the pipeline again") from None


def _describe(commit: Commit) -> str:
    meta = commit.metadata
    if contract.WORKFLOW_KEY in meta:
        return f"run {meta[contract.WORKFLOW_KEY]}" + (
            f", pipeline {meta[contract.PIPELINE_KEY]}" if contract.PIPELINE_KEY in meta else "")
    who = f"by {commit.committer}" if commit.committer else "not by dsc"
    first = commit.message.splitlines()[0] if commit.message else ""
    return f"{who}: {first[:60]!r}" if first else who


def _run_commit(ctx: Context, pipeline: str, repo: str, branch: str) -> Commit | None:
    """This run's commit of `pipeline` on the output branch, looked for among the commits
    made since the run was created; None when there is none."""
    try:
        created = _utc(ctx.run.created).timestamp() if ctx.run.created else None
    except ValueError:
        created = None
    for n, commit in enumerate(ctx.store.log(repo, branch)):
        meta = commit.metadata
        if meta.get(contract.RUN_KEY) == ctx.run.uid and \
                meta.get(contract.PIPELINE_KEY) == pipeline:
            return commit
        if (created is not None and commit.created and commit.created < created - CLOCK_SKEW) \
                or n >= gc.LOOKBACK:
            return None
    return None


def _manifests(ctx: Context, repo: str, branch: str, processed: list[int]
               ) -> dict[int, dict[str, Any]]:
    """The manifest of every datum processed (published_manifests), or why not."""
    batched, loose = published_manifests(ctx, repo, branch, set(processed),
                                         contract.BATCH_DIR)
    found = {**batched, **loose}
    missing = [i for i in processed if i not in found]
    if missing:
        raise JobError(f"{len(missing)} of the {len(processed)} datums to process have not "
                       f"published in this run (the first: datum {missing[0]}): the job is "
                       "incomplete")
    return found


def published_manifests(ctx: Context, repo: str, branch: str, wanted: set[int],
                        batches: str) -> tuple[dict[int, dict[str, Any]],
                                               dict[int, dict[str, Any]]]:
    """This run's manifests of the `wanted` datums on the job branch (index -> manifest):
    those in the batch files whose paths start with `batches`, and the loose ones of the
    others (published since their worker's last batch, by a worker lost mid-way)."""
    store, uid = ctx.store, ctx.run.uid

    def read(path: str) -> Any:
        try:
            return json.loads(store.read(repo, branch, path))
        except (NotFound, ValueError):
            return None

    batched: dict[int, dict[str, Any]] = {}
    for batch in _parallel(ctx, read, [o.path for o in store.objects(repo, branch, batches)]):
        for manifest in batch or ():
            if manifest.get("run_uid") == uid and manifest.get("index") in wanted:
                batched[int(manifest["index"])] = manifest
    left = wanted - batched.keys()
    loose: dict[int, dict[str, Any]] = {}
    if left:
        paths = [o.path for o in store.objects(repo, branch, contract.MANIFEST_DIR)
                 if _manifest_index(o.path) in left]
        for manifest in _parallel(ctx, read, paths):
            if manifest and manifest.get("run_uid") == uid and manifest.get("index") in left:
                loose[int(manifest["index"])] = manifest
    return batched, loose


def _manifest_index(path: str) -> int | None:
    name = path.rsplit("/", 1)[-1].removesuffix(".json")
    return int(name) if name.isdigit() else None


def _check_paths(job: Job, index: list[dict[str, Any]]) -> dict[str, str]:
    """Path -> the datum that wrote it (processed now, or carried from an earlier job); two
    datums writing one path, or one writing a file where another writes a directory, fail
    the job (Pachyderm 2.x)."""
    writers: dict[str, tuple[int, dict[str, Any]]] = {}

    def name(i: int, d: dict[str, Any]) -> str:
        key = contract.planned_key(i, d)
        return f"{key} ({d['id'][:12]})"

    for i, d in enumerate(index):
        for path in d["files"]:
            other = writers.setdefault(path, (i, d))
            if other[1] is not d:
                raise JobError(f"pipeline `{job.pipeline}`: datums {name(*other)} and "
                               f"{name(i, d)} both wrote /{path}; each output path must come "
                               "from one datum (put $PACH_DATUM_ID in file names)")
    ordered = sorted(writers)
    for a, b in itertools.pairwise(ordered):
        if b.startswith(a + "/"):
            raise JobError(f"pipeline `{job.pipeline}`: datum {name(*writers[a])} wrote the "
                           f"file /{a} and datum {name(*writers[b])} wrote /{b} under it")
    return {path: d["id"] for path, (_i, d) in writers.items()}


def _provenance(job: Job, record: dict[str, Any], run: Run,
                counts: dict[str, int]) -> dict[str, str]:
    metadata = {contract.PIPELINE_KEY: job.pipeline, "dsc.spec.sha256": job.spec_sha256,
                contract.RUNNER_KEY: run.runner, contract.WORKFLOW_KEY: run.name,
                contract.RUN_KEY: run.uid,
                contract.DATUMS_KEY: " ".join(f"{k}={v}" for k, v in counts.items()),
                "dsc.version": __version__, "dsc.job": record["branch"]}
    if job.code:
        metadata[contract.CODE_KEY] = job.code
    metadata.update(contract.input_metadata(
        (entry["name"], entry["lakefs_repo"], entry["commit"]) for entry in record["inputs"]))
    if run.runner != "host":  # the host runner runs the command here, never the image
        metadata[contract.IMAGE_KEY] = job.image
    if url := run.argo_url():
        metadata[contract.ARGO_LINK_KEY] = url
    return metadata


def _done(ctx: Context, job: Job, commit_id: str, started: float, how: str) -> Committed:
    url = ctx.run.lakefs_commit_url(job.output_repo, commit_id)
    write_outputs(ctx.run, "commit", {"commit": commit_id, "url": url})
    ctx.log(f"commit {job.pipeline}: {job.output_repo}@{commit_id} ({how}) in "
            f"{ctx.clock() - started:.2f} s" + (f"; {url}" if url else ""))
    return Committed(commit_id, url)


# --- abort -------------------------------------------------------------------------------------

def abort(ctx: Context, graph: str, status: str, outputs: Iterable[str],
          keep_branches: bool) -> None:
    """The exit handler. A failed run's job branches are deleted (or kept, when configured);
    after a success, only what a commit could not delete is left to remove. Output branches
    are never touched; the log says what became of each: advanced by this run (to which
    commit), unchanged by it, or unknown, and why."""
    succeeded = status == "Succeeded"
    for output in outputs:
        pipeline, eq, where = output.partition("=")
        repo, _, output_branch = where.partition("@")
        if not eq or not pipeline or not repo:
            raise JobError(f"--output {output!r} is not PIPELINE=REPO@BRANCH")
        branch = ctx.run.job_branch(pipeline)
        outcome = _outcome(ctx, pipeline, repo, output_branch) if output_branch else ""
        try:
            ctx.store.head(repo, branch)
        except NotFound:
            if outcome:
                ctx.log(f"abort {graph} ({status}): {pipeline}: {outcome}")
            continue
        if keep_branches and not succeeded:
            ctx.log(f"abort {graph} ({status}): {pipeline}: kept job branch {repo}@{branch} "
                    f"for inspection" + (f"; {outcome}" if outcome else ""))
            continue
        kept = None
        if not succeeded:
            try:
                kept = resume.keep_failed(ctx, pipeline, repo, branch)
            except LakeFSError as exc:
                if exc.transient:
                    raise  # the exit handler is retried; keeping may succeed then
                # Refused for good: the job branch goes as it did before resuming existed
                # (the next run redoes its datums), rather than stay behind.
                ctx.log(f"abort {graph} ({status}): {pipeline}: the job's finished datums "
                        f"cannot be kept for the next run to resume ({exc})")
        if kept is not None:
            ctx.log(f"abort {graph} ({status}): {pipeline}: committed what the job did to "
                    f"{repo}@{kept}, for the next run to resume")
        ctx.store.delete_branch(repo, branch)
        ctx.log(f"abort {graph} ({status}): {pipeline}: deleted job branch {repo}@{branch}"
                + (f"; {outcome}" if outcome else ""))


def _outcome(ctx: Context, pipeline: str, repo: str, branch: str) -> str:
    """What this run did to an output branch, as a clause."""
    where = f"{repo}@{branch}"
    try:
        landed = _run_commit(ctx, pipeline, repo, branch)
        head = ctx.store.head(repo, branch)
    except NotFound:
        return f"output branch {where} does not exist: unchanged by this run"
    except LakeFSError as exc:
        return f"output branch {where}: unknown, it could not be read ({exc})"
    if landed is None:
        return f"output branch {where} unchanged by this run (head {head[:12]})"
    later = "" if head == landed.id else f" (since moved on to {head[:12]})"
    return f"output branch {where} advanced to {landed.id[:12]} by this run{later}"


# --- plumbing ----------------------------------------------------------------------------------


def _parallel(ctx: Context, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    items = list(items)
    if len(items) <= 1 or ctx.transfers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(ctx.transfers, len(items))) as pool:
        return list(pool.map(fn, items))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"

