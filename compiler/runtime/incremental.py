"""Incremental processing: a datum is processed only when its content or its pipeline's code
changed since it was last processed (issue 16; Pachyderm 2.x's `pending_job.go` rules).

- A datum's hash covers its ID (where its files are), the path, size and lakeFS checksum of
  every file under each of its matches (what they hold), and the pipeline's code identity
  (compiler.spec.identity: image, command, stdin, env, secrets, input tree, salt, ...).
- Every output commit holds the datum index of its job under `.dsc/index/`: per datum its ID,
  hash, state, the job that produced its outputs, and those outputs. The next job reads the
  index of the output head it starts from and sorts its plan: a datum with the same hash that
  succeeded before is skipped, its outputs carried as they are (the job branch starts from the
  output head); a new or changed one is processed (a changed one's earlier outputs go); a
  datum of the previous job that is not in this one has its outputs deleted.
- `reprocess_spec: every_job` processes every datum; a forced reprocess (`--reprocess`)
  processes a whole pipeline or named datums.

Pure but for `read_index`, which reads an index through a Store.
"""

from __future__ import annotations

import array
import bisect
import hashlib
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from compiler import contract
from compiler.store import NotFound, ObjectInfo, Store

T = TypeVar("T")

# Why a datum is processed (the preview and the plan say it with these words).
NEW, INPUT, CODE, FAILED, FORCED, EVERY_JOB = (
    "new", "input changed", "code changed", "failed before", "forced", "every job")
# A datum that would be processed, but a failed job of the pipeline did it already, from the
# same content with the same code (compiler.runtime.resume): its outputs are copied, not made.
RESUMED = "resumed"
REASONS = (NEW, INPUT, CODE, FAILED, FORCED, EVERY_JOB, RESUMED)  # every `Sorter.sort` gives
PROCESSED, RECOVERED = "processed", "recovered"


def datum_hash(datum_id: str, code: str, content: Iterable[tuple[int, str, Iterable[ObjectInfo]]]
               ) -> str:
    """BLAKE2b-256 of the datum's ID, the pipeline's code identity and, per match (leaf,
    matched path), the path, size and checksum of every file under it, in order."""
    parts = [datum_id, code]
    for leaf, path, files in content:
        parts += [str(leaf), path]
        for o in files:
            parts += [o.path, str(o.size), o.checksum]
        parts.append("\1")
    return hash_text("\0".join(parts))


def hash_text(text: str) -> str:
    """The datum hash of `datum_hash`'s text."""
    return hashlib.blake2b(text.encode(), digest_size=32).hexdigest()


RESERVED = ("/" + contract.META_DIR, "/_lakefs_actions/")


class Listing:
    """One commit's objects in the order the store lists them (lakeFS: by path), for planning
    and for hashing matches: a file, or everything under a directory. Filled page by page,
    by a thread of its own (`Listing.read`), while the planner reads what has arrived; kept
    as columns (paths "/path", sizes, checksums), not an object a file: a million files hold
    ~170 MB so, ~400 MB as ObjectInfo in a dict."""

    def __init__(self) -> None:
        self.paths: list[str] = []  # "/path", as plan_datums sees them
        self.sizes = array.array("q")
        # A checksum of 32 lowercase hex digits (an MD5: most) as its 16 bytes in `_md5`,
        # None in `_checksums`; any other as it is.
        self._checksums: list[str | None] = []
        self._md5 = bytearray()
        self._count = 0  # rows readable (the columns are appended to before it moves)
        self._done = False
        self._error: BaseException | None = None
        self._ordered = True  # each path after the one before (lakeFS lists by path)
        self._index: dict[str, int] | None = None  # path -> row, when not ordered
        self._sorted: list[str] | None = None
        self._changed = threading.Condition()
        self._closed = False  # the reader is gone: stop listing
        self.last = 0  # the row the iterator gave last

    @classmethod
    def read(cls, store: Store, repo: str, ref: str) -> Listing:
        """Start reading the objects of `ref` on a thread; the listing fills as pages come."""
        listing = cls()
        threading.Thread(target=listing._fill, args=(store, repo, ref), daemon=True,
                         name=f"dsc-list-{repo}").start()
        return listing

    def _fill(self, store: Store, repo: str, ref: str) -> None:
        try:
            # lakeFS's client gives a page's rows as columns, no object a row. Asked of the
            # class: a wrapper that lists some commits itself (dsc plan's) passes the rest on.
            if getattr(type(store), "object_columns", None) is not None:
                for paths, sizes, checksums in store.object_columns(  # type: ignore[attr-defined]
                        repo, ref):
                    if self._closed:
                        return
                    self.add(["/" + p for p in paths], sizes, checksums)
            else:
                page: list[ObjectInfo] = []
                for o in store.objects(repo, ref):
                    page.append(o)
                    if len(page) == 1000:
                        if self._closed:
                            return
                        self.add(["/" + o.path for o in page], [o.size for o in page],
                                 [o.checksum for o in page])
                        page = []
                self.add(["/" + o.path for o in page], [o.size for o in page],
                         [o.checksum for o in page])
        except BaseException as exc:  # raised to the reader
            self.finish(exc)
        else:
            self.finish()

    def add(self, paths: list[str], sizes: Iterable[int], checksums: list[str]) -> None:
        if not paths:
            return
        with self._changed:
            ordered = self._ordered and not (self.paths and paths[0] <= self.paths[-1]) \
                and all(a < b for a, b in itertools.pairwise(paths))
            self.paths += paths
            self.sizes.extend(sizes)
            joined = "".join(checksums)
            if len(joined) == 32 * len(checksums) and not joined.strip("0123456789abcdef"):
                self._md5 += bytes.fromhex(joined)
                self._checksums += [None] * len(checksums)
            else:
                self._md5 += bytes(16 * len(checksums))
                self._checksums += checksums
            if ordered:
                self._count = len(self.paths)  # the rows lookups may bisect
            self._ordered = ordered
            self._changed.notify_all()

    def close(self) -> None:
        self._closed = True

    def finish(self, error: BaseException | None = None) -> None:
        with self._changed:
            self._done = True
            self._error = error
            self._changed.notify_all()

    def _ready(self, count: int, at: str | None = None, under: bool = False
               ) -> tuple[int, bool]:
        """Wait until more than `count` rows are readable in order (with `at`: a row at or
        past the path `at`; with `under` too, past everything under the directory `at`), or
        the listing is complete or out of order; then the rows readable in order and whether
        the listing is complete and in order."""
        with self._changed:
            while True:
                if self._error is not None:
                    raise self._error
                if not self._ordered or self._done:
                    return self._count, self._done and self._ordered
                last = self.paths[self._count - 1] if self._count else ""
                if self._count > count if at is None else \
                        last > at and not last.startswith(at) if under else last >= at:
                    return self._count, False
                self._changed.wait()

    def __iter__(self) -> Iterator[str]:
        """The paths as listed, each once (as the keys of a dict of the listing)."""
        i = 0
        paths = self.paths
        while True:
            count, complete = self._ready(i)
            while i < count:
                self.last = i  # `find` of the path just given needs no search
                yield paths[i]
                i += 1
            if complete:
                return
            if not self._ordered:
                break
        # Out of order (never from lakeFS): the rest in the order of their first listing.
        first: dict[str, int] = {}
        for row, path in enumerate(self._all()):
            first.setdefault(path, row)
        yield from (path for path, row in first.items() if row >= i)

    def _all(self) -> list[str]:
        with self._changed:
            while not self._done:
                self._changed.wait()
            if self._error is not None:
                raise self._error
        return self.paths

    def _lookup(self) -> dict[str, int]:
        """Out of order: path -> its last row, once the listing is complete."""
        if self._index is None:
            self._index = {p: i for i, p in enumerate(self._all())}
            self._sorted = sorted(self._index)
        return self._index

    def find(self, path: str) -> int:
        """The row of the file `path` ("/path"), or -1."""
        last = self.last
        if last < self._count and self.paths[last] is path and self._ordered:
            return last
        count, _ = self._ready(0, at=path)
        if self._ordered:  # the first `count` rows are in order, and hold `path` if listed
            paths = self.paths
            i = bisect.bisect_left(paths, path, 0, count)
            return i if i < count and paths[i] == path else -1
        return self._lookup().get(path, -1)

    def checksum(self, row: int) -> str:
        checksum = self._checksums[row]
        return self._md5[16 * row:16 * row + 16].hex() if checksum is None else checksum

    def info(self, row: int) -> ObjectInfo:
        return ObjectInfo(self.paths[row][1:], self.checksum(row), self.sizes[row])

    def under(self, path: str, is_dir: bool) -> list[ObjectInfo]:
        """The file `path`, or every file under the directory `path` (`/dir/` as 2.x spells
        it, `/dir` as 1.x does), but dsc's own."""
        if not is_dir:
            row = self.find(path)
            return [self.info(row)] if row >= 0 else []
        path = path if path.endswith("/") else path + "/"
        count, _ = self._ready(0, at=path, under=True)
        keys: list[str] = self.paths
        rows: dict[str, int] | None = None
        if not self._ordered:
            rows = self._lookup()
            assert self._sorted is not None
            keys, count = self._sorted, len(self._sorted)
        found = []
        for k in range(bisect.bisect_left(keys, path, 0, count), count):
            key = keys[k]
            if not key.startswith(path):
                break
            if not key.startswith(RESERVED):
                found.append(self.info(k if rows is None else rows[key]))
        return found


# --- the previous job's index -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Known:
    """What the previous index says of one datum (enough to sort a plan)."""

    hash: str
    state: str
    job: str  # the run UID whose job processed it


class KnownDatums:
    """The previous index's datums, datum ID -> Known, compact: a million of them hold ~170
    MB so, ~500 MB as a dict of strings and Known objects. An ID or hash of 64 lowercase hex
    digits (every one dsc writes) is kept as its 32 bytes; (state, job) pairs, which few
    datums do not share, once each."""

    def __init__(self) -> None:
        self._rows: dict[bytes | str, int] = {}  # ID (bytes, or the text when not hex) -> row
        self._hashes = bytearray()  # 32 bytes a row
        self._odd: dict[int, str] = {}  # row -> hash, when not 64 lowercase hex digits
        self._kinds = array.array("I")  # row -> (state, job) in _pairs
        self._pairs: list[tuple[str, str]] = []
        self._pair_of: dict[tuple[str, str], int] = {}

    def add(self, ids: Sequence[str], hashes: Sequence[str], states: Sequence[str],
            jobs: Sequence[str]) -> None:
        """Rows of the index, in its order (a datum listed again: the later row counts)."""
        base = len(self._kinds)
        keys = _packed(ids)
        packed = b"".join(_packed(hashes) or ())
        if len(packed) == 32 * len(hashes):
            self._hashes += packed
        else:
            for i, hash_ in enumerate(hashes):
                key = _pack(hash_)
                if isinstance(key, str):
                    self._odd[base + i] = hash_
                    key = bytes(32)
                self._hashes += key
        pair_of, pairs = self._pair_of, self._pairs
        for pair in set(zip(states, jobs, strict=True)) - pair_of.keys():
            pair_of[pair] = len(pairs)
            pairs.append(pair)
        self._kinds.extend([pair_of[pair] for pair in zip(states, jobs, strict=True)])
        # A datum listed again keeps its first place, with the later row (as dict.update).
        rows: Sequence[bytes | str] = keys if keys is not None else [_pack(i) for i in ids]
        self._rows.update(zip(rows, range(base, base + len(ids)), strict=True))

    def row(self, datum_id: str) -> int:
        """The row of a datum, or -1."""
        return self._rows.get(_pack(datum_id), -1)

    def same_hash(self, row: int, hash_: str) -> bool:
        odd = self._odd.get(row) if self._odd else None
        if odd is not None:
            return odd == hash_
        return self._hashes[32 * row:32 * row + 32].hex() == hash_

    def pair(self, row: int) -> tuple[str, str]:
        """(state, job) of a row."""
        return self._pairs[self._kinds[row]]

    def get(self, datum_id: str) -> Known | None:
        row = self.row(datum_id)
        if row < 0:
            return None
        hash_ = self._odd.get(row)
        if hash_ is None:
            hash_ = self._hashes[32 * row:32 * row + 32].hex()
        return Known(hash_, *self.pair(row))

    def __contains__(self, datum_id: object) -> bool:
        return isinstance(datum_id, str) and self.row(datum_id) >= 0

    def __len__(self) -> int:
        return len(self._rows)

    def size(self) -> int:
        """Rows read (a datum listed twice is two)."""
        return len(self._kinds)

    def __iter__(self) -> Iterator[str]:
        """The IDs, in the index's order."""
        return (key.hex() if isinstance(key, bytes) else key for key in self._rows)

    def rows(self) -> Iterator[tuple[str, int]]:
        return ((key.hex() if isinstance(key, bytes) else key, row)
                for key, row in self._rows.items())


_HEX = b"0123456789abcdef"


def _pack(text: str) -> bytes | str:
    """64 lowercase hex digits as their 32 bytes; anything else as it is. (Parsed, then
    checked by writing it back: five times quicker than `strip` with the 16 digits, which
    cost ~3 us a datum when sorting a million.)"""
    if len(text) == 64:
        try:
            packed = bytes.fromhex(text)
        except ValueError:
            return text
        if packed.hex() == text:  # not upper case, no spaces
            return packed
    return text


def _packed(texts: Sequence[str]) -> list[bytes] | None:
    """Each of `texts` packed, when all are 64 lowercase hex digits; else None."""
    joined = "".join(texts).encode()
    if len(joined) != 64 * len(texts) or joined.translate(None, _HEX):
        return None
    raw = bytes.fromhex(joined.decode())
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]


@dataclass(slots=True)
class Previous:
    datums: KnownDatums  # datum ID -> Known
    jobs: dict[str, dict[str, Any]]  # run UID -> the job that produced datums (code, ...)

    @classmethod
    def empty(cls) -> Previous:
        return cls(KnownDatums(), {})

    def code_of(self, known: Known) -> str | None:
        return self.jobs.get(known.job, {}).get("code")


def index_paths(store: Store, repo: str, commit: str) -> list[str]:
    """The index's chunk files (their details, `.json`) at `commit`."""
    return sorted(o.path for o in store.objects(repo, commit, contract.INDEX_DIR)
                  if o.path.endswith(".json") and o.path != contract.INDEX_JOBS)


def read_index(store: Store, repo: str, commit: str, transfers: int = 8,
               keep: Callable[[dict[str, Any]], bool] | None = None
               ) -> tuple[Previous, dict[str, dict[str, Any]]]:
    """The index of `commit`: what sorting a plan needs (read from the compact `.keys`
    files), and, with `keep`, the whole entries of the datums it selects (from the `.json`
    files). A commit without an index (not made by dsc, or by a version before it) has no
    datums."""
    paths = index_paths(store, repo, commit)
    if not paths:
        return Previous.empty(), {}
    try:
        jobs = json.loads(store.read(repo, commit, contract.INDEX_JOBS))
    except NotFound:
        jobs = {}

    def keys(path: str) -> tuple[list[str], list[str], list[str], list[str]]:
        text = store.read(repo, commit, path[:-len(".json")] + ".keys").decode()
        fields = text.split("\n")
        if fields[-1] == "":
            fields.pop()
        if not fields:
            return [], [], [], []
        if not all(line.count(" ") == 3 for line in fields):
            for line in fields:  # a line without four fields: the error unpacking it gives
                _datum, _hash, _state, _job = line.split(" ")
        fields = " ".join(fields).split(" ")
        return fields[0::4], fields[1::4], fields[2::4], fields[3::4]

    def entries(path: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        kept: dict[str, dict[str, Any]] = {}
        for entry in json.loads(store.read(repo, commit, path)):
            rows.append({"id": entry["id"], "hash": entry["hash"], "state": entry["state"],
                         "job": entry["job"]})
            if keep is not None and keep(entry):
                kept[entry["id"]] = entry
        return rows, kept

    datums = KnownDatums()
    kept: dict[str, dict[str, Any]] = {}
    workers = max(1, min(transfers, len(paths)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        if keep is None:
            for columns in _in_order(pool, keys, paths, workers):
                datums.add(*columns)
        else:
            for rows, chosen in _in_order(pool, entries, paths, workers):
                datums.add(*([row[k] for row in rows] for k in ("id", "hash", "state", "job")))
                kept.update(chosen)
    return Previous(datums, jobs), kept


def _in_order(pool: ThreadPoolExecutor, fn: Callable[[str], T], items: list[str], ahead: int
              ) -> Iterator[T]:
    """`pool.map`, but at most `ahead` results waiting: a chunk of keys read is ~3 MB of
    strings until packed, and pool.map's threads ran ahead of the packing (open of
    1,000,000 datums, 1% changed: a peak of 479 -> 436 MiB)."""
    pending: deque[Future[T]] = deque(pool.submit(fn, item) for item in items[:ahead])
    for item in items[ahead:]:
        result = pending.popleft().result()
        pending.append(pool.submit(fn, item))
        yield result
    while pending:
        yield pending.popleft().result()


def keys_text(entries: Sequence[Mapping[str, Any]]) -> bytes:
    """The `.keys` file of a chunk of index entries."""
    return "".join(f"{e['id']} {e['hash']} {e['state']} {e['job']}\n"
                   for e in entries).encode()


# --- sorting a plan -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Forced:
    """`--reprocess`: every datum of the pipeline, or those whose ID starts with a prefix."""

    everything: bool = False
    prefixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, pipeline: str) -> Forced:
        """`*`, a pipeline name, or `pipeline:<datum ID prefix>`, comma-separated; only the
        entries naming this pipeline (or `*`) apply."""
        everything = False
        prefixes: list[str] = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, datum = item.partition(":")
            if name not in ("*", pipeline):
                continue
            if datum:
                prefixes.append(datum.lower())
            else:
                everything = True
        return cls(everything, tuple(prefixes))

    def applies(self, datum_id: str) -> bool:
        return self.everything or datum_id.startswith(self.prefixes)


def reason(datum_id: str, hash_: str, previous: Previous, code: str, every_job: bool,
           forced: Forced) -> str | None:
    """None when the datum is skipped; else why it is processed."""
    if forced.applies(datum_id):
        return FORCED
    known = previous.datums.get(datum_id)
    if known is None:
        return NEW
    if every_job:
        return EVERY_JOB
    if known.state != PROCESSED:
        return FAILED
    if known.hash == hash_:
        return None
    return CODE if previous.code_of(known) not in (None, code) else INPUT


@dataclass(frozen=True, slots=True)
class Sorted:
    todo: list[list[int]]  # the plan indices to process, as [start, stop) ranges
    processed: int  # how many
    skipped: int
    removed: list[str]  # IDs of the previous job's datums not in this plan
    reasons: dict[str, int]  # why, -> how many
    # (plan index, ID) of the datums a failed job did (RESUMED): neither processed nor skipped
    resumed: list[tuple[int, str]] = field(default_factory=list)


class Sorter:
    """Sorts a plan's datums against the previous index as they are planned, one at a time
    and in plan order (what `reason` decides, without an object a datum)."""

    def __init__(self, previous: Previous, code: str, every_job: bool, forced: Forced,
                 done: Callable[[str, str], bool] | None = None) -> None:
        """`done(datum ID, hash)`: whether a failed job did that datum with that hash
        (resume.Resumable.takes); such a datum is RESUMED rather than processed."""
        self.previous, self.code, self.every_job = previous, code, every_job
        self.done = done
        self.resumed: list[tuple[int, str]] = []
        self.forced = forced if forced.everything or forced.prefixes else None
        self.known = previous.datums if len(previous.datums) else None
        self.seen = bytearray(previous.datums.size() if self.known is not None else 0)
        self.todo: list[list[int]] = []
        self.reasons: dict[str, int] = {}
        self.count = 0

    def sort(self, datum_id: str, hash_: str) -> str | None:
        """Why the next datum of the plan is processed; None when it is skipped."""
        index = self.count
        self.count += 1
        known, why = self.known, None
        row = known.row(datum_id) if known is not None else -1
        if row >= 0:
            self.seen[row] = 1
        if self.forced is not None and self.forced.applies(datum_id):
            why = FORCED
        elif row < 0:
            why = NEW
        elif self.every_job:
            why = EVERY_JOB
        else:
            assert known is not None
            state, job = known.pair(row)
            if state != PROCESSED:
                why = FAILED
            elif known.same_hash(row, hash_):
                return None
            else:
                code = self.previous.jobs.get(job, {}).get("code")
                why = CODE if code not in (None, self.code) else INPUT
        if self.done is not None and why not in (FORCED, EVERY_JOB) and \
                self.done(datum_id, hash_):
            self.resumed.append((index, datum_id))
            return RESUMED
        todo = self.todo
        if todo and todo[-1][1] == index:
            todo[-1][1] = index + 1
        else:
            todo.append([index, index + 1])
        self.reasons[why] = self.reasons.get(why, 0) + 1
        return why

    def result(self) -> Sorted:
        processed = sum(stop - start for start, stop in self.todo)
        seen = self.seen
        removed = [datum for datum, row in self.known.rows() if not seen[row]] \
            if self.known is not None and seen.count(0) else []
        return Sorted(self.todo, processed, self.count - processed - len(self.resumed),
                      removed, self.reasons, self.resumed)


def sort_plan(plan: Sequence[Mapping[str, Any]], previous: Previous, code: str,
              every_job: bool, forced: Forced) -> Sorted:
    """Mark each plan entry (`"s": 1` skipped, or `"r": why`) and count."""
    sorter = Sorter(previous, code, every_job, forced)
    for entry in plan:
        why = sorter.sort(entry["id"], entry["h"])
        if why is None:
            entry["s"] = 1  # type: ignore[index]
        else:
            entry["r"] = why  # type: ignore[index]
    return sorter.result()


def chunks(entries: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    for i in range(0, len(entries), size):
        yield i, entries[i:i + size]
