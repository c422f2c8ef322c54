"""The Store interface: what the runtime verbs need from a versioned object store, with its
value and error types.

Two implementations: `compiler.lakefs.client.LakeFS` (a real lakeFS, in pods and with
`dsc run --lakefs`) and `compiler.store.directory.DirectoryStore` (`dsc run --data DIR`).
Both speak lakeFS's model (repositories, branches, commits with metadata, three-way merge)
and raise the typed errors below with lakeFS's HTTP statuses, so the verbs cannot tell them
apart. This module imports neither (DESIGN.md §1: `store` imports no implementation).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol


class LakeFSError(Exception):
    """A store call that failed: `status` is the HTTP status (0: no response). `where` says
    which store answered ("lakeFS", "data directory"), so a message never confuses them."""

    def __init__(self, operation: str, status: int, message: str,
                 where: str = "lakeFS") -> None:
        super().__init__(f"{where} {operation}: {status or 'no response'}: {message}")
        self.operation = operation
        self.status = status
        self.message = message
        self.where = where

    @property
    def transient(self) -> bool:
        """Whether the same call may succeed later (only `Unavailable`: 429, 5xx, a timeout,
        no connection). Everything else is an answer that a retry would only repeat."""
        return False


class NotFound(LakeFSError):
    pass


class Conflict(LakeFSError):
    pass


class PreconditionFailed(LakeFSError):
    pass


class Unauthorized(LakeFSError):
    """401 (wrong or missing credentials, or too few permissions) or 403 (a protected branch,
    a read-only repository)."""


class Unavailable(LakeFSError):
    """429, 5xx, a timeout or a broken connection: the call may be retried if idempotent
    (and may or may not have taken effect)."""

    @property
    def transient(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Commit:
    id: str
    parents: tuple[str, ...]
    message: str
    metadata: dict[str, str]
    committer: str = ""
    created: int = 0  # seconds since the epoch
    # lakeFS's meta_range_id: two commits with the same one hold the same objects.
    meta_range: str = ""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    path: str
    checksum: str
    size: int


class Store(Protocol):
    def head(self, repo: str, branch: str) -> str: ...

    def commit_of(self, repo: str, ref: str) -> Commit: ...

    def log(self, repo: str, ref: str, stop_at: str | None = None) -> Iterator[Commit]:
        """The first-parent chain from `ref` (its publish history), newest first, ending
        with `stop_at` when the chain reaches it."""
        ...

    def branches(self, repo: str, prefix: str = "") -> Iterator[tuple[str, str]]:
        """(name, head commit) of every branch whose name starts with `prefix`."""
        ...

    def objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def read(self, repo: str, ref: str, path: str) -> bytes: ...

    def download(self, repo: str, ref: str, path: str, sink: BinaryIO,
                 presign: bool = False) -> tuple[int, str]: ...

    def upload(self, repo: str, branch: str, path: str, content: bytes | BinaryIO,
               size: int | None = None) -> ObjectInfo: ...

    def copy(self, repo: str, source_ref: str, path: str, branch: str) -> ObjectInfo:
        """Copy object `path` of `source_ref` to the same path on `branch`, in the store (no
        bytes through this process); the copy's stats. The same copy again leaves the same
        state."""
        ...

    def delete_objects(self, repo: str, branch: str, paths: list[str]) -> None: ...

    def ensure_repository(self, repo: str, storage_namespace: str,
                          default_branch: str) -> bool: ...

    def create_branch_once(self, repo: str, name: str, source_commit: str) -> None: ...

    def delete_branch(self, repo: str, branch: str) -> None: ...

    def commit_once(self, repo: str, branch: str, message: str, metadata: dict[str, str],
                    key: str, since: str) -> Commit:
        """Commit `branch` with `metadata` once: an earlier attempt is found on the branch's
        first-parent chain since commit `since` by `metadata[key]`."""
        ...

    def merge_once(self, repo: str, source: str, destination: str, message: str,
                   metadata: dict[str, str], key: str, since: str) -> Commit:
        """Merge `source` into `destination` once, found again the same way."""
        ...
