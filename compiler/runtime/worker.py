"""`dsc runtime prepare` and `dsc runtime work`: the runtime's side of a worker pod (the
worker protocol of compiler.contract).

A worker processes its share of a job's datums in a loop: stage a datum into /pfs, hand it
to the user container, move what it wrote aside, publish it. Staging the next datum and
publishing the last one overlap the user code. Each published datum leaves a manifest on the
job branch, so a worker pod that is lost and run again by Argo skips what it published and
redoes only the datum that was in flight. Manifests are gathered into batch files as the
worker goes, so `commit` reads a few files rather than one per datum.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from compiler import contract
from compiler.contract.job import Job, JobError, Leaf
from compiler.runtime.job import Context
from compiler.runtime.verbs import (
    _MD5,
    _bytes,
    _check_deadline,
    _job_record,
    _json,
    _parallel,
    _plan_chunk,
    published_manifests,
)
from compiler.store import NotFound, ObjectInfo

WORKER = os.path.basename(contract.WORKER_DIR)  # the protocol's directory, under /pfs
# How long `work` waits for the user container to open the loop's FIFOs: its image may be
# pulled after the runtime's has started.
START_TIMEOUT = 30 * 60
LOG_LINES = 10  # lines of a failed datum's output its report shows
RELAY_BYTES = 64 * 1024  # of a datum's output read at once to relay it to the worker's log
RELAY_MAX = 4 * 1024 * 1024  # of one datum's output relayed, at most (all of it stays in `log`)
FAILED_KEPT = 3  # failed datums whose files a worker keeps in its volume (--keep-scratch)
STOP_GRACE = 60.0  # seconds a stopped datum has to end before the worker gives the pod up


class UserGone(Exception):
    """The user container stopped answering (it died, or was killed with its pod's node):
    the worker exits 75 and Argo runs the pod again."""


# --- prepare -----------------------------------------------------------------------------------

def prepare(pfs: str) -> None:
    """The init container: the protocol's FIFOs and loop on the pod's /pfs volume. The user
    container may run as another UID than the runtime: everything is open to it."""
    directory = os.path.join(pfs, WORKER)
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o777)
    for name in contract.FIFOS:
        path = os.path.join(directory, name)
        if not (os.path.exists(path) and stat.S_ISFIFO(os.stat(path).st_mode)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.mkfifo(path)
        os.chmod(path, 0o666)
    # The datum's output: the loop (any UID) writes it, the runtime empties it in place
    log = os.path.join(directory, "log")
    os.close(os.open(log, os.O_WRONLY | os.O_CREAT, 0o666))
    os.chmod(log, 0o666)
    loop = os.path.join(directory, os.path.basename(contract.LOOP_SCRIPT))
    with open(loop + ".tmp", "w", encoding="utf-8") as f:
        f.write(contract.LOOP)
    os.chmod(loop + ".tmp", 0o644)
    os.replace(loop + ".tmp", loop)


# --- the user side -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Attempt:
    code: int  # the datum's exit status (128 + N: killed by signal N)
    timed_out: bool = False
    tail: tuple[str, ...] = ()  # the end of its output

    def why(self, timeout: float | None) -> str:
        if self.timed_out:
            return f"stopped after its datum_timeout of {timeout or 0:g} s"
        if self.code > 128:
            return f"killed by signal {self.code - 128}"
        return f"exit code {self.code}"


class UserSide(Protocol):
    """Runs one datum at a time in the user container (FifoLoop) or, in tests, in-process."""

    def open(self, alive: Callable[[], bool]) -> None: ...

    def run(self, n: int, timeout: float | None, relay: Callable[[str], None]) -> Attempt: ...

    def close(self) -> None: ...


class FifoLoop:
    """The runtime's end of the FIFOs that LOOP_SCRIPT reads and writes."""

    def __init__(self, pfs: str, clock: Callable[[], float] = time.monotonic,
                 start_timeout: float = START_TIMEOUT) -> None:
        self.directory = os.path.join(pfs, WORKER)
        self.clock = clock
        self.start_timeout = start_timeout
        self._go = self._done = self._kill = -1
        self._buffer = b""

    def open(self, alive: Callable[[], bool]) -> None:
        """Wait for the loop to open its end of `go` (the user container may still be
        starting), then open `done` and `kill` in the loop's order."""
        go = os.path.join(self.directory, "go")
        started = self.clock()
        while True:
            try:
                self._go = os.open(go, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
            if not alive():
                raise UserGone("the user container exited before it started the loop")
            if self.clock() - started > self.start_timeout:
                raise UserGone(f"the user container did not start the loop in "
                               f"{self.start_timeout:g} s")
            time.sleep(0.02)
        os.set_blocking(self._go, True)
        self._done = os.open(os.path.join(self.directory, "done"), os.O_RDONLY)
        self._kill = os.open(os.path.join(self.directory, "kill"), os.O_WRONLY)

    def run(self, n: int, timeout: float | None, relay: Callable[[str], None]) -> Attempt:
        log = os.path.join(self.directory, "log")
        try:
            os.truncate(log, 0)  # in place: the file stays open to the loop's UID
        except FileNotFoundError:
            open(log, "wb").close()
        try:
            os.write(self._go, f"{n}\n".encode())
        except BrokenPipeError:
            raise UserGone("the user container's loop is gone") from None
        started = self.clock()
        stopped: float | None = None
        relayed = _Relayed(log, relay)
        while True:
            wait = 1.0
            if timeout is not None and stopped is None:
                wait = max(0.0, min(wait, started + timeout - self.clock()))
            ready, _, _ = select.select([self._done], [], [], wait)
            relayed.lines()
            if ready:
                line = self._line()
                if line is None:
                    raise UserGone("the user container stopped while it ran the datum")
                got, _, code = line.partition(" ")
                if got != str(n) or not code.lstrip("-").isdigit():
                    raise UserGone(f"the user container's loop answered {line!r} for datum {n}")
                relayed.rest()
                return Attempt(int(code), stopped is not None, tuple(_tail(log)))
            now = self.clock()
            if timeout is not None and stopped is None and now - started >= timeout:
                stopped = now
                try:
                    os.write(self._kill, f"stop {n}\n".encode())
                except BrokenPipeError:
                    raise UserGone("the user container's loop is gone") from None
            elif stopped is not None and now - stopped > STOP_GRACE:
                raise UserGone(f"the datum did not end {STOP_GRACE:g} s after its "
                               "datum_timeout stopped it")

    def _line(self) -> str | None:
        while b"\n" not in self._buffer:
            chunk = os.read(self._done, 4096)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("ascii", "replace").strip()

    def close(self) -> None:
        """Closing `go` ends the loop; `kill`, its watcher."""
        for fd in (self._go, self._kill, self._done):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._go = self._done = self._kill = -1


class _Relayed:
    """A datum's output passed on to the worker's log as it is written, line by line, up to
    RELAY_MAX bytes (then a line says how much more there is, in the pod's volume)."""

    def __init__(self, path: str, relay: Callable[[str], None]) -> None:
        self.path, self.relay = path, relay
        self.offset = 0

    def lines(self, final: bool = False) -> None:
        """Every complete line written since the last call (with `final`, the rest too)."""
        try:
            with open(self.path, "rb") as f:
                while self.offset < RELAY_MAX:
                    f.seek(self.offset)
                    data = f.read(min(RELAY_BYTES, RELAY_MAX - self.offset))
                    if not data:
                        return
                    end = data.rfind(b"\n") + 1
                    if end == 0 and len(data) < RELAY_BYTES and not final:
                        return  # a line still being written
                    end = end or len(data)
                    for line in data[:end].decode("utf-8", "replace").splitlines():
                        self.relay(line)
                    self.offset += end
                size = os.fstat(f.fileno()).st_size
        except FileNotFoundError:
            return
        if final and size > self.offset:
            self.relay(f"(... {size - self.offset:,} bytes more of this datum's output not "
                       "shown)")

    def rest(self) -> None:
        self.lines(final=True)


# --- work --------------------------------------------------------------------------------------

@dataclass(slots=True)
class Share:
    """A worker's datums (plan indices, in order) and what this run already published."""

    indices: list[int]
    published: set[int] = field(default_factory=set)  # plan indices
    pending: list[dict[str, Any]] = field(default_factory=list)  # manifests not in a batch


@dataclass(frozen=True, slots=True)
class Failure:
    key: str
    datum_id: str
    why: str
    tail: list[str]


def work(ctx: Context, pipeline: str, repo: str, branch: str, worker: int,
         user: UserSide | None = None, alive: Callable[[], bool] = lambda: True) -> None:
    started = ctx.clock()
    record = _job_record(ctx, pipeline, repo, branch)
    if record is None:
        raise JobError(f"pipeline `{pipeline}`: job branch {repo}@{branch} is gone or was "
                       "never opened (an aborted run deletes it: resubmit the run)")
    job = Job.parse(record["job"])
    _check_deadline(ctx, job, record, f"worker {worker}")
    workers = int(record.get("workers") or 1)
    if not 0 <= worker < workers:
        raise JobError(f"--worker {worker}: the job has {workers} workers (0 to {workers - 1})")
    share = _share(ctx, repo, branch, worker, workers)
    total = len(share.indices)
    left = [i for i in share.indices if i not in share.published]
    ctx.log(f"worker {worker}/{workers} of {pipeline}: {_datums(total)}"
            + (f", {total - len(left)} published by an earlier attempt" if share.published
               else "") + f"; {len(left)} to process")
    ctx.progress(total - len(left), total, 0)
    w = _Worker(ctx, job, record, branch, worker, share, total)
    try:
        # Even with nothing left (a retry after the last datum was published), the loop is
        # opened and closed: it waits for `go`, and its container must end for the pod to.
        side = user or FifoLoop(ctx.run.pfs, ctx.clock)
        side.open(alive)
        try:
            if left:
                w.loop(side, left)
        finally:
            side.close()
    finally:
        w.finish()
    if w.failures:
        raise JobError(w.report())
    ctx.log(f"worker {worker}/{workers} of {pipeline}: {_datums(w.done)} done "
            f"({w.processed} processed now) in {ctx.clock() - started:.2f} s")


def _datums(n: int) -> str:
    return f"{n:,} datum{'' if n == 1 else 's'}"


def _share(ctx: Context, repo: str, branch: str, worker: int, workers: int) -> Share:
    try:
        ranges = json.loads(ctx.store.read(repo, branch, contract.TODO_FILE))
    except NotFound:
        raise JobError(f"job branch {repo}@{branch} has no {contract.TODO_FILE}: `open` did "
                       "not finish") from None
    todo = sum(stop - start for start, stop in ranges)
    first, last = contract.worker_share(todo, workers, worker)
    indices: list[int] = []
    position = 0
    for start, stop in ranges:
        lo, hi = max(first - position, 0), min(last - position, stop - start)
        if lo < hi:
            indices.extend(range(start + lo, start + hi))
        position += stop - start
        if position >= last:
            break
    # this worker's batch files only (listed by their prefix: a job may have 1,000 workers)
    batched, loose = published_manifests(ctx, repo, branch, set(indices),
                                         f"{contract.BATCH_DIR}{worker:05d}-")
    return Share(indices, published={*batched, *loose}, pending=list(loose.values()))


@dataclass(slots=True)
class Staged:
    index: int
    key: str
    datum: dict[str, Any]
    root: str  # holds the datum's input directories, ready to move into /pfs
    files: int
    size: int


class _Worker:
    """One worker's loop and the threads beside it: a stager (the next datum) and a
    publisher (the last one)."""

    def __init__(self, ctx: Context, job: Job, record: dict[str, Any], branch: str,
                 worker: int, share: Share, total: int) -> None:
        self.ctx, self.job, self.record, self.branch = ctx, job, record, branch
        self.worker, self.share, self.total = worker, share, total
        self.pfs = ctx.run.pfs
        self.directory = os.path.join(self.pfs, WORKER)
        self.done = len(share.published)
        self.processed = 0
        self.failures: list[Failure] = []
        self.failed = 0
        self._stager = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dsc-stage")
        self._publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dsc-publish")
        self._published: list[Future[None]] = []
        self._batch: list[dict[str, Any]] = list(share.pending)
        self._batch_first = min((m["index"] for m in self._batch), default=None)
        self._reported = 0.0
        self.tries = int(job.datum_tries or 1)
        self.timeout = job.datum_timeout

    # -- the loop ---------------------------------------------------------------------------

    def loop(self, side: UserSide, left: list[int]) -> None:
        os.makedirs(self.directory, exist_ok=True)
        ahead: Future[Staged] | None = self._stager.submit(self._stage, left[0], "next")
        for position, index in enumerate(left):
            assert ahead is not None
            staged = ahead.result()
            _check_deadline(self.ctx, self.job, self.record, f"datum {staged.key}")
            self._swap_in(staged)
            ahead = self._stager.submit(self._stage, left[position + 1], "next") \
                if position + 1 < len(left) else None
            began = self.ctx.clock()
            attempt = 1
            def relay(line: str, key: str = staged.key) -> None:
                self.ctx.log(f"  {key} | {line}")

            while True:
                self._clear_marker()
                timeout, job_left = self.timeout, self._job_left()
                if job_left is not None and (timeout is None or job_left < timeout):
                    timeout = max(job_left, 0.0)  # job_timeout ends the datum too
                try:
                    result = side.run(index, timeout, relay)
                except UserGone as exc:
                    raise UserGone(f"datum {staged.key} ({staged.datum['id'][:12]}): {exc} "
                                   "(out of memory?)") from None
                if result.timed_out and timeout != self.timeout:
                    _check_deadline(self.ctx, self.job, self.record, f"datum {staged.key}")
                if result.code == 0 or attempt >= self.tries:
                    break
                self.ctx.log(f"worker {self.worker}: datum {staged.key} failed "
                             f"({result.why(self.timeout)}), attempt {attempt} of "
                             f"{self.tries}; running it again")
                attempt += 1
                self._discard_current(f"retry-{index}-{attempt}")
                self._swap_in(self._stage(index, "retry"))
            why = ""
            if result.code == 0:
                recovered = os.path.exists(os.path.join(
                    self.pfs, contract.RECOVERED_NAME))
                try:
                    outputs = [] if recovered else \
                        list(collect_outputs(self.pfs, self.job, staged.key))
                except JobError as exc:  # what it wrote cannot be published: it failed
                    result, why = Attempt(1, tail=(str(exc),)), str(exc)
            if result.code == 0:
                self._hand_over(staged, outputs, recovered, self.ctx.clock() - began, attempt)
            else:
                self._fail(staged, result, attempt, why)
                if self.failed <= FAILED_KEPT:
                    # What the failed datum saw, for `dsc run --keep-scratch` (a pod's volume
                    # goes with the pod): the first few only, the disk is the pod's.
                    self._keep_current(staged.key)
                else:
                    self._discard_current(f"failed-{index}")
            self._reap()

    def _job_left(self) -> float | None:
        """Seconds left of the job's job_timeout (None: no job_timeout)."""
        if not self.job.job_timeout:
            return None
        return float(self.record["started"]) + self.job.job_timeout - self.ctx.clock()

    def _stage(self, index: int, slot: str) -> Staged:
        root = os.path.join(self.directory, "work", slot)
        if os.path.lexists(root):
            shutil.rmtree(root)
        os.makedirs(root)
        chunk = _plan_chunk(self.ctx, self.job.output_repo, self.branch, self.record, index)
        datum = chunk[index % contract.PLAN_CHUNK]
        key = contract.planned_key(index, datum)
        files, size = stage_into(self.ctx, self.job, self.record, datum, key, root)
        return Staged(index, key, datum, root, files, size)

    def _swap_in(self, staged: Staged) -> None:
        """Make the staged datum the one /pfs holds: its inputs in place, an empty
        /pfs/out, its variables in ENV_FILE."""
        for name in os.listdir(staged.root):
            os.rename(os.path.join(staged.root, name), os.path.join(self.pfs, name))
        os.rmdir(staged.root)
        out = os.path.join(self.pfs, "out")
        os.makedirs(out, exist_ok=True)
        os.chmod(out, 0o777)  # the user container may run as another UID than the runtime
        write_env(self.pfs, self.job, self.record, staged.datum, self.branch)

    def _current(self) -> list[str]:
        """What /pfs holds of the current datum: its inputs and /pfs/out."""
        names = {leaf.name for leaf in self.job.leaves} | {"out"}
        return [n for n in names if os.path.lexists(os.path.join(self.pfs, n))]

    def _move_current(self, *where: str) -> tuple[str, dict[str, str]]:
        """Move the current datum out of /pfs into work/<where...> (emptied first: a try of
        this pod's that died may have left it); the directory, and where each name's real
        path went."""
        place = os.path.join(self.directory, "work", *where)
        if os.path.lexists(place):
            shutil.rmtree(place)
        os.makedirs(place)
        moved = {}
        for n in self._current():
            real = os.path.realpath(os.path.join(self.pfs, n))
            os.rename(os.path.join(self.pfs, n), os.path.join(place, n))
            moved[real] = os.path.join(place, n)
        return place, moved

    def _discard_current(self, name: str) -> None:
        self._move_current("trash", name)

    def _keep_current(self, key: str) -> None:
        self._move_current("failed", key)

    def _clear_marker(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.pfs, contract.RECOVERED_NAME))

    def _hand_over(self, staged: Staged, outputs: list[Output], recovered: bool,
                   seconds: float, attempts: int) -> None:
        """Move what the datum wrote and its inputs out of /pfs (the next datum goes there),
        and publish it on the publisher thread."""
        place, moved = self._move_current("published", str(staged.index))
        outputs = [o.moved(moved) for o in outputs]
        if len(self._published) >= 2:  # publishing is behind: wait rather than pile up
            self._published.pop(0).result()
        self._published.append(self._publisher.submit(
            self._publish, staged, outputs, recovered, place, seconds, attempts))

    def _reap(self) -> None:
        """Re-raise a publisher's error at once (the datums after it would be lost work)."""
        for future in [f for f in self._published if f.done()]:
            self._published.remove(future)
            future.result()
        trash = os.path.join(self.directory, "work", "trash")
        if os.path.isdir(trash):
            shutil.rmtree(trash, ignore_errors=True)

    # -- the publisher thread ---------------------------------------------------------------

    def _publish(self, staged: Staged, outputs: list[Output], recovered: bool, place: str,
                 seconds: float, attempts: int) -> None:
        ctx, repo, branch = self.ctx, self.job.output_repo, self.branch
        files: dict[str, dict[str, Any]] = {}

        def put(output: Output) -> tuple[str, ObjectInfo]:
            source = output.fetch_into(ctx, self.job, self.record, place) \
                if output.fetch else output.local
            try:
                content = open(source, "rb")  # noqa: SIM115 (closed just below)
            except PermissionError:
                st = os.stat(source)
                raise JobError(f"datum {staged.key}: cannot read /pfs/out/{output.path} (mode "
                               f"{stat.S_IMODE(st.st_mode):o}, uid {st.st_uid}): make outputs "
                               "readable (chmod a+r) or run the user container as the "
                               "runtime's UID") from None
            with content:
                return output.path, ctx.store.upload(repo, branch, output.path, content)

        for path, info in _parallel(ctx, put, outputs):
            files[path] = {"size": info.size, "checksum": info.checksum}
        manifest = {"run_uid": ctx.run.uid, "index": staged.index, "key": staged.key,
                    "id": staged.datum["id"], "hash": staged.datum.get("h", ""),
                    "recovered": recovered, "files": dict(sorted(files.items()))}
        ctx.store.upload(repo, branch, contract.manifest_path(staged.index), _json(manifest))
        shutil.rmtree(place, ignore_errors=True)
        self._batch.append(manifest)
        if self._batch_first is None:
            self._batch_first = staged.index
        if len(self._batch) >= contract.MANIFEST_BATCH:
            self._flush()
        self.done += 1
        self.processed += 1
        size = sum(f["size"] for f in files.values())
        what = "recovered by err_cmd, no output" if recovered else \
            f"{len(files)} files, {_bytes(size)}"
        again = f" after {attempts} attempts" if attempts > 1 else ""
        ctx.log(f"worker {self.worker}: datum {staged.key} ({staged.datum['id'][:12]}) "
                f"done{again} in {seconds:.2f} s: {what} [{self.done}/{self.total}]")
        self._progress()

    def _flush(self) -> None:
        """Gather the loose manifests into one batch file, then delete them."""
        if not self._batch:
            return
        first = self._batch_first if self._batch_first is not None else \
            self._batch[0]["index"]
        repo, branch = self.job.output_repo, self.branch
        self.ctx.store.upload(repo, branch, contract.batch_path(self.worker, first),
                              _json(self._batch))
        self.ctx.store.delete_objects(repo, branch, [contract.manifest_path(m["index"])
                                                     for m in self._batch])
        self._batch = []
        self._batch_first = None

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._reported >= 1.0 or self.done == self.total:
            self._reported = now
            self.ctx.progress(self.done, self.total, self.failed)

    # -- the end ----------------------------------------------------------------------------

    def _fail(self, staged: Staged, result: Attempt, attempts: int, why: str = "") -> None:
        self.failed += 1
        why = why or result.why(self.timeout)
        if len(self.failures) < contract.FAILED_NAMED:
            self.failures.append(Failure(staged.key, staged.datum["id"], why,
                                         list(result.tail)))
        self.ctx.log(f"worker {self.worker}: datum {staged.key} ({staged.datum['id'][:12]}) "
                     f"failed after {attempts} attempt{'' if attempts == 1 else 's'} ({why})")

    def finish(self) -> None:
        """Let the publisher finish what it was given and write the last batch."""
        self._stager.shutdown(wait=True, cancel_futures=True)
        error: BaseException | None = None
        for future in self._published:
            try:
                future.result()
            except BaseException as exc:  # the first error is the one to report
                error = error or exc
        self._publisher.shutdown(wait=True)
        if error is not None:
            raise error
        self._flush()
        self._progress(force=True)

    def report(self) -> str:
        """The job's failure: every failed datum (up to FAILED_NAMED) and how its output
        ended, in the log; a summary for the error line."""
        for f in self.failures:
            self.ctx.log(f"worker {self.worker}: datum {f.key} ({f.datum_id[:12]}) failed "
                         f"({f.why}); its output ended:")
            for line in f.tail or ["(no output)"]:
                self.ctx.log(f"    | {line}")
        by_why: dict[str, list[str]] = {}
        for f in self.failures:
            by_why.setdefault(f.why, []).append(f.key)
        named = "; ".join(f"{', '.join(keys)} ({why})" for why, keys in by_why.items())
        more = self.failed - len(self.failures)
        return (f"pipeline `{self.job.pipeline}`: {self.failed} datum"
                f"{'' if self.failed == 1 else 's'} failed after {self.tries} attempt"
                f"{'' if self.tries == 1 else 's'} each: {named}"
                + (f", and {more} more" if more > 0 else ""))


def _tail(path: str) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    return lines[-LOG_LINES:]


# --- staging -----------------------------------------------------------------------------------

def stage_into(ctx: Context, job: Job, record: dict[str, Any], datum: dict[str, Any],
               key: str, root: str) -> tuple[int, int]:
    """Download the datum's files from the pinned commits to `root`/<input>/<path>; returns
    the number of files and their bytes."""
    inputs = record["inputs"]
    transfers: list[tuple[Leaf, str, int | None, str | None]] = []
    for leaf_index, path, *_rest, size, checksum in datum["m"]:
        leaf = job.leaves[leaf_index]
        commit = inputs[leaf_index]["commit"]
        if path.endswith("/"):
            prefix = path.lstrip("/")
            transfers += [(leaf, "/" + o.path, o.size, o.checksum)
                          for o in ctx.store.objects(leaf.lakefs_repo, commit, prefix)
                          if not o.path.startswith((".dsc/", "_lakefs_actions/"))]
        else:
            transfers.append((leaf, path, size, checksum))
        os.makedirs(os.path.join(root, leaf.name), exist_ok=True)

    def fetch(item: tuple[Leaf, str, int | None, str | None]) -> int:
        leaf, path, size, checksum = item
        target = under(root, leaf.name, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if leaf.empty_files:
            open(target, "wb").close()  # Pachyderm's placeholder; publish resolves links
            return 0
        commit = inputs[leaf.index]["commit"]
        with open(target, "wb") as sink:
            got, md5 = ctx.store.download(leaf.lakefs_repo, commit, path.lstrip("/"), sink,
                                          presign=ctx.presign)
        if size is not None and got != size:
            raise JobError(f"datum {key}: {leaf.lakefs_repo}@{commit[:12]}:{path}: read "
                           f"{got} bytes, lakeFS lists {size}")
        if checksum and len(checksum) == _MD5 and md5 != checksum:
            raise JobError(f"datum {key}: {leaf.lakefs_repo}@{commit[:12]}:{path}: checksum "
                           f"{md5} differs from lakeFS's {checksum}")
        return got

    return len(transfers), sum(_parallel(ctx, fetch, transfers))


def under(root: str, name: str, path: str) -> str:
    """`<root>/<name>/<path>`, refusing a path that would leave it."""
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise JobError(f"input `{name}`: object path {path!r} has a `.` or `..` segment")
    return os.path.join(root, name, *parts)


def write_env(pfs: str, job: Job, record: dict[str, Any], datum: dict[str, Any],
              branch: str) -> None:
    """The variables Pachyderm gives user code, for the loop to export (ENV_FILE)."""
    values: dict[str, str] = {"PACH_JOB_ID": branch, "PACH_OUTPUT_COMMIT_ID": branch,
                              "PACH_DATUM_ID": datum["id"]}
    for leaf_index, path, join_key, group_key, *_rest in reversed(datum["m"]):
        name = job.leaves[leaf_index].name
        # the path as the user container sees it: /pfs there, wherever the volume is here
        values[name] = os.path.join(contract.PFS, name, path.lstrip("/")).rstrip("/")
        values[f"{name}_COMMIT"] = record["inputs"][leaf_index]["commit"]
        values[f"PACH_DATUM_{name}_JOIN_ON"] = join_key
        values[f"PACH_DATUM_{name}_GROUP_BY"] = group_key
    lines = [f"{k}={_sh_quote(v)}" for k, v in values.items() if k.isidentifier() and k.isascii()]
    data = ("\n".join(lines) + "\n").encode()
    # Rewritten in place, then cut to length: truncating a file that holds data to zero
    # makes ext4 flush it on close (auto_da_alloc), ~0.2 ms a datum on the loop's path.
    fd = os.open(os.path.join(pfs, contract.ENV_NAME),
                 os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


# --- what a datum wrote ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Output:
    """One file a datum wrote: its object path and the local file holding its content. A
    placeholder of an `empty_files` input (`fetch`: its leaf and path) is fetched first."""

    path: str
    local: str
    fetch: tuple[int, str] | None = None

    def moved(self, places: dict[str, str]) -> Output:
        """The same file after the directories in `places` (old -> new) were moved."""
        for old, new in places.items():
            if self.local == old or self.local.startswith(old + os.sep):
                return Output(self.path, new + self.local[len(old):], self.fetch)
        return self

    def fetch_into(self, ctx: Context, job: Job, record: dict[str, Any], place: str) -> str:
        assert self.fetch is not None
        leaf = job.leaves[self.fetch[0]]
        commit = record["inputs"][leaf.index]["commit"]
        target = os.path.join(place, ".dsc-fetched", leaf.name, *self.fetch[1].split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as sink:
            try:
                ctx.store.download(leaf.lakefs_repo, commit, self.fetch[1], sink,
                                   presign=ctx.presign)
            except NotFound:
                return self.local  # an empty file of the datum's own making
        return target


def collect_outputs(pfs: str, job: Job, key: str) -> Iterator[Output]:
    """Everything under /pfs/out. Symlinks are stored as what they point to: into
    /pfs/<input> (Pachyderm's copy by reference), anywhere else by content."""
    pfs = os.path.realpath(pfs)
    out = os.path.join(pfs, "out")
    seen: set[str] = set()
    empty = {leaf.name: leaf for leaf in job.leaves if leaf.empty_files}

    def walk(directory: str, prefix: str) -> Iterator[Output]:
        real = container_realpath(directory, pfs)
        if real in seen:
            raise JobError(f"datum {key}: /pfs/out/{prefix} loops back to a directory above it")
        seen.add(real)
        for entry in sorted(os.scandir(real), key=lambda e: e.name):
            path = f"{prefix}{entry.name}"
            try:
                target = container_realpath(entry.path, pfs)
                st = os.stat(target)
            except OSError:
                raise JobError(f"datum {key}: /pfs/out/{path} is a symlink to "
                               f"{os.readlink(entry.path)!r}, which does not exist") from None
            if stat.S_ISDIR(st.st_mode):
                yield from walk(target, path + "/")
            elif stat.S_ISREG(st.st_mode):
                if path.startswith(contract.META_DIR):
                    raise JobError(f"datum {key}: /pfs/out/{path}: `.dsc/` is dsc's own")
                if len(path.encode()) > 1024:
                    raise JobError(f"datum {key}: /pfs/out/{path}: lakeFS paths are at most "
                                   "1,024 bytes")
                fetch = None
                if empty and not st.st_size:
                    name, _, inside = os.path.relpath(target, pfs).partition(os.sep)
                    if name in empty and inside:
                        fetch = (empty[name].index, inside.replace(os.sep, "/"))
                yield Output(path, target, fetch)
        seen.discard(real)

    if os.path.isdir(out):
        yield from walk(out, "")


def container_realpath(path: str, pfs: str) -> str:
    """`os.path.realpath(path)` as the container sees it: a link to an absolute path under
    /pfs (`ln -s /pfs/model/x /pfs/out/x`) points under `pfs`, where the pod's /pfs is on
    this machine (the same place in a pod; a worker's directory under `dsc run`)."""
    parts = path.split("/")[::-1]
    resolved = "/"
    hops = 0
    while parts:
        part = parts.pop()
        if part in ("", "."):
            continue
        if part == "..":
            resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, part)
        if not os.path.islink(candidate):
            resolved = candidate
            continue
        hops += 1
        if hops > 40:  # the kernel's limit (ELOOP)
            raise OSError(f"too many levels of symbolic links: {path}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = "/"
            if target == contract.PFS or target.startswith(contract.PFS + "/"):
                target = pfs + target[len(contract.PFS):]
        parts += target.split("/")[::-1]
    return resolved
