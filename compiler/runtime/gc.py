"""Job branches left behind, and whether the run that owns one is still alive (`dsc gc`, and
`open`'s check for another job writing the same output branch).

A job branch `dsc-<pipeline>-<run>` lives from `open` to its `commit` (which deletes it after
the merge) or to the exit handler (`abort`, after a failure). It is left behind when what
would delete it never runs: `dsc run` killed with SIGKILL, a Workflow deleted mid-run, an exit
handler that failed. Nothing a live run needs may be deleted, so a branch is removable only
when one of these is known:

- **landed**: its run's merge is on the output branch (the commit that would have deleted the
  branch died after merging);
- **expired**: the job has run longer than its `job_timeout` (its later steps all refuse);
- **orphaned**: a `dsc run` on this machine opened it and that process is gone (the host, the
  boot, the pid and the process's start time name one process, never a later one that
  reuses the pid);
- **unopened**: `open` died before writing the job record (the record is its last write);
- **older** than the `--older-than` age given to `dsc gc`: the one rule for runs whose
  liveness cannot be read from here (a cluster run seen from a laptop, a `dsc run` on another
  machine). dsc never guesses it on its own.

A failed branch (`dsc_failed-<pipeline>-<run>`, compiler.runtime.resume) holds what a failed
job did, for the next job to resume; it is kept (**resumable**) while its job's base is still
the output head, and removable once the output branch moved on (**superseded**: no job can
take from it any more), when it is not a failed job's commit (**unopened**), or past
`--older-than`.

A step of an Argo run also knows this: the other job is not running when it was opened by an
Argo run of the same namespace, because this run's step holds the mutex on the output
branch (`synchronization.mutexes`), which the other released when its pipeline finished.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from compiler import contract
from compiler.contract.job import Job, JobError
from compiler.runtime.job import Run
from compiler.runtime.resume import failed_branches, failed_record
from compiler.store import NotFound, Store

LANDED, EXPIRED, ORPHANED, UNOPENED, OLDER = "landed", "expired", "orphaned", "unopened", "older"
ALIVE, RELEASED, UNKNOWN = "alive", "released", "unknown"
SUPERSEDED, RESUMABLE = "superseded", "resumable"  # failed branches
REMOVABLE = frozenset({LANDED, EXPIRED, ORPHANED, UNOPENED, OLDER, SUPERSEDED})
LOOKBACK = 1000  # output commits searched for a job's landed merge when its base is not met


@dataclass(frozen=True, slots=True)
class JobBranch:
    repo: str
    name: str
    state: str  # one of the states above
    why: str  # for people: who owns it and how dsc knows
    record: dict[str, Any] | None = None

    @property
    def removable(self) -> bool:
        return self.state in REMOVABLE

    @property
    def run(self) -> str:
        return str(self.record.get("run", "")) if self.record else "?"


# --- who owns a local run ------------------------------------------------------------------

def this_process() -> str:
    """The owner of a `dsc run` (contract: `<host>:<boot id>:<pid>:<start>`)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{_boot_id()}:{pid}:{_start_ticks(pid)}"


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """The process's start time since boot (field 22 of /proc/<pid>/stat), "" if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after its last `)`.
    fields = text[text.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else ""


def local_owner_alive(owner: str) -> bool | None:
    """True/False for an owner on this machine (since its last boot); None elsewhere."""
    host, boot, pid, start = [*owner.split(":"), "", "", "", ""][:4]
    if host != socket.gethostname() or not boot or boot != _boot_id() or not pid.isdigit():
        return None
    return bool(start) and _start_ticks(int(pid)) == start


# --- reading a job branch --------------------------------------------------------------------

def job_branches(store: Store, repo: str, pipeline: str | None = None
                 ) -> Iterator[tuple[str, str]]:
    """(name, head) of the job branches in `repo` (of one pipeline's name prefix)."""
    prefix = contract.job_branch(pipeline, "") if pipeline else contract.JOB_BRANCH_PREFIX
    yield from store.branches(repo, prefix)


def read_record(store: Store, repo: str, branch: str) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(store.read(repo, branch, contract.JOB_FILE))
    except NotFound:
        return None
    except ValueError:
        return {}
    return record


def inspect(store: Store, repo: str, name: str, *, now: float, seen_from: Run | None = None,
            older_than: float | None = None, look_for_merge: bool = True) -> JobBranch:
    """What is known of job branch `name`: its state and why (see the module's rules)."""
    record = read_record(store, repo, name)
    if record is None:
        return JobBranch(repo, name, UNOPENED, "no job record: its `open` never finished")
    if not record:
        return JobBranch(repo, name, UNOPENED, "its job record is not JSON", {})
    owner = str(record.get("owner", ""))
    runner = str(record.get("runner", "argo"))
    opened = float(record.get("started") or 0)
    age = f"opened {_ago(now - opened)} ago" if opened else "opened at an unknown time"
    who = (f"`dsc run` ({runner} runner) pid {owner.split(':')[2]} on {owner.split(':')[0]}"
           if runner != "argo" and owner.count(":") >= 3
           else f"Argo run {record.get('namespace') or '?'}/{record.get('run', '?')}")
    made = f"{who}, {age}"

    def branch(state: str, why: str) -> JobBranch:
        return JobBranch(repo, name, state, f"{made}: {why}", record)

    try:
        job = Job.parse(str(record.get("job", "")))
    except JobError:
        job = None
    if look_for_merge and job is not None and _landed(store, repo, job, record):
        return branch(LANDED, "its run's commit is on the output branch")
    if job is not None and job.job_timeout and opened and now - opened > job.job_timeout:
        return branch(EXPIRED, f"past its job_timeout of {job.job_timeout} s")
    if runner != "argo":
        alive = local_owner_alive(owner)
        if alive is True:
            return branch(ALIVE, "that process is running")
        if alive is False:
            return branch(ORPHANED, "that process is gone")
    elif seen_from is not None and not seen_from.local and \
            record.get("namespace") == seen_from.namespace:
        return branch(RELEASED, "its pipeline finished (this run holds the output branch's "
                      "mutex), so it is not running; its exit handler or `dsc gc` removes it")
    if older_than is not None and opened and now - opened > older_than:
        return branch(OLDER, f"older than {_ago(older_than)}")
    return branch(UNKNOWN, "whether it still runs cannot be seen from here")


def inspect_failed(store: Store, repo: str, name: str, *, now: float,
                   older_than: float | None = None) -> JobBranch:
    """What is known of failed branch `name` (compiler.runtime.resume)."""
    kept = failed_record(store, repo, name)
    if kept is None:
        return JobBranch(repo, name, UNOPENED, "not a failed job's commit made by `abort`")
    _commit, record = kept
    opened = float(record.get("started") or 0)
    made = f"failed run {record.get('run', '?')}, opened {_ago(now - opened)} ago"
    try:
        output = Job.parse(str(record.get("job", ""))).output_branch
        head = store.head(repo, output)
    except (JobError, NotFound):
        head = None
    if head != record.get("base"):
        return JobBranch(repo, name, SUPERSEDED, f"{made}: its output branch moved on from "
                         "where that job started, so no job can resume it", record)
    if older_than is not None and opened and now - opened > older_than:
        return JobBranch(repo, name, OLDER, f"{made}: older than {_ago(older_than)}", record)
    return JobBranch(repo, name, RESUMABLE, f"{made}: the next run of its pipeline resumes "
                     "the datums it finished", record)


def _landed(store: Store, repo: str, job: Job, record: dict[str, Any]) -> bool:
    uid, base = record.get("run_uid"), record.get("base")
    try:
        for n, commit in enumerate(store.log(repo, job.output_branch, stop_at=base)):
            if commit.metadata.get(contract.RUN_KEY) == uid and \
                    commit.metadata.get(contract.PIPELINE_KEY) == job.pipeline:
                return True
            if n >= LOOKBACK:
                break
    except NotFound:
        return False
    return False


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


# --- dsc gc ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Collected:
    found: list[JobBranch]
    removed: list[JobBranch]


def collect(store: Store, repos: list[str], *, older_than: float | None, dry_run: bool,
            log: Callable[[str], None], clock: Callable[[], float] = time.time) -> Collected:
    """Find the job branches of `repos` and delete the removable ones (not with `dry_run`)."""
    found: list[JobBranch] = []
    removed: list[JobBranch] = []
    for repo in repos:
        try:
            names = [name for name, _head in job_branches(store, repo)]
        except NotFound:
            continue  # a pipeline that never ran: no repository yet
        for name in [*names, *failed_branches(store, repo)]:
            b = inspect(store, repo, name, now=clock(), older_than=older_than) \
                if not name.startswith(contract.FAILED_BRANCH_PREFIX) \
                else inspect_failed(store, repo, name, now=clock(), older_than=older_than)
            found.append(b)
            if not b.removable:
                log(f"kept    lakefs://{repo}/{name}  {b.why}")
                continue
            if not dry_run:
                store.delete_branch(repo, name)
                removed.append(b)
            log(f"{'would remove' if dry_run else 'removed'} lakefs://{repo}/{name}  {b.why}")
    return Collected(found, removed)


def check_others(store: Store, job: Job, own: str, run: Run, log: Callable[[str], None],
                 clock: Callable[[], float] = time.time) -> None:
    """`open`: fail when another job may be writing this output branch now, naming it (its
    work would end in a merge conflict, or mix with this job's outputs); report the stale
    job branches of this pipeline."""
    now = clock()
    for name, _head in job_branches(store, job.output_repo, job.pipeline):
        if name == own:
            continue
        b = inspect(store, job.output_repo, name, now=now, seen_from=run,
                    look_for_merge=False)
        if b.record is not None and b.record and b.record.get("pipeline") != job.pipeline:
            continue  # another pipeline whose name only starts like this one
        other = Job.parse(str(b.record["job"])) if b.record and "job" in b.record else None
        if other is not None and other.output_branch != job.output_branch:
            continue
        if b.state in (ALIVE, UNKNOWN):
            raise JobError(
                f"pipeline `{job.pipeline}`: another job is writing {job.output_repo}@"
                f"{job.output_branch}: job branch {name} of run {b.run} ({b.why}). Wait for "
                "it to finish; if that run is gone, `dsc gc --older-than 0 SPECS` removes "
                "its branch")
        log(f"open {job.pipeline}: stale job branch {job.output_repo}@{name} of run {b.run} "
            f"({b.why}); `dsc gc` removes it")
