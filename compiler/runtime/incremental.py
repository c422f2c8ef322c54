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

import bisect
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from compiler.runtime import contract
from compiler.store import NotFound, ObjectInfo, Store

# Why a datum is processed (the preview and the plan say it with these words).
NEW, INPUT, CODE, FAILED, FORCED, EVERY_JOB = (
    "new", "input changed", "code changed", "failed before", "forced", "every job")
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
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=32).hexdigest()


class Listing:
    """One commit's objects, for hashing matches: a file, or everything under a directory."""

    def __init__(self, objects: Mapping[str, ObjectInfo]) -> None:
        self.objects = objects  # "/path" -> its object
        self._sorted: list[str] | None = None

    def under(self, path: str, is_dir: bool) -> list[ObjectInfo]:
        """The file `path`, or every file under the directory `path` (`/dir/` as 2.x spells
        it, `/dir` as 1.x does), but dsc's own."""
        if not is_dir:
            info = self.objects.get(path)
            return [info] if info is not None else []
        path = path if path.endswith("/") else path + "/"
        if self._sorted is None:
            self._sorted = sorted(self.objects)
        start = bisect.bisect_left(self._sorted, path)
        found = []
        for key in self._sorted[start:]:
            if not key.startswith(path):
                break
            if not key.startswith(RESERVED):
                found.append(self.objects[key])
        return found


RESERVED = ("/" + contract.META_DIR, "/_lakefs_actions/")


# --- the previous job's index -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Known:
    """What the previous index says of one datum (enough to sort a plan)."""

    hash: str
    state: str
    job: str  # the run UID whose job processed it


@dataclass(slots=True)
class Previous:
    datums: dict[str, Known]  # datum ID -> ...
    jobs: dict[str, dict[str, Any]]  # run UID -> the job that produced datums (code, ...)

    @classmethod
    def empty(cls) -> Previous:
        return cls({}, {})

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

    def keys(path: str) -> dict[str, Known]:
        text = store.read(repo, commit, path[:-len(".json")] + ".keys").decode()
        known: dict[str, Known] = {}
        for line in text.splitlines():
            datum, hash_, state, job = line.split(" ")
            known[datum] = Known(hash_, state, job)
        return known

    def entries(path: str) -> tuple[dict[str, Known], dict[str, dict[str, Any]]]:
        known: dict[str, Known] = {}
        kept: dict[str, dict[str, Any]] = {}
        for entry in json.loads(store.read(repo, commit, path)):
            known[entry["id"]] = Known(entry["hash"], entry["state"], entry["job"])
            if keep is not None and keep(entry):
                kept[entry["id"]] = entry
        return known, kept

    datums: dict[str, Known] = {}
    kept: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(transfers, len(paths)))) as pool:
        if keep is None:
            for known in pool.map(keys, paths):
                datums.update(known)
        else:
            for known, chosen in pool.map(entries, paths):
                datums.update(known)
                kept.update(chosen)
    return Previous(datums, jobs), kept


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
        return self.everything or any(datum_id.startswith(p) for p in self.prefixes)


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
    process: list[int]  # plan indices
    skipped: int
    removed: list[str]  # IDs of the previous job's datums not in this plan
    reasons: dict[str, int]  # why, -> how many


def sort_plan(plan: Sequence[Mapping[str, Any]], previous: Previous, code: str,
              every_job: bool, forced: Forced) -> Sorted:
    """Mark each plan entry (`"s": 1` skipped, or `"r": why`) and count."""
    process: list[int] = []
    reasons: dict[str, int] = {}
    seen: set[str] = set()
    for i, entry in enumerate(plan):
        seen.add(entry["id"])
        why = reason(entry["id"], entry["h"], previous, code, every_job, forced)
        if why is None:
            entry["s"] = 1  # type: ignore[index]
        else:
            entry["r"] = why  # type: ignore[index]
            process.append(i)
            reasons[why] = reasons.get(why, 0) + 1
    removed = [d for d in previous.datums if d not in seen]
    return Sorted(process, len(plan) - len(process), removed, reasons)


def chunks(entries: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    for i in range(0, len(entries), size):
        yield i, entries[i:i + size]
