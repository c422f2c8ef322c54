"""The Store interface: what the runtime verbs need from a versioned object store.

Two implementations: `compiler.lakefs.client.LakeFS` (a real lakeFS, in pods and with
`dsc run --lakefs`) and `compiler.store.directory.DirectoryStore` (`dsc run --data DIR`).
Both speak lakeFS's model (repositories, branches, commits with metadata, three-way merge)
and raise the typed errors of `compiler.lakefs.client`, so the verbs cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, Protocol

from compiler.lakefs.client import Commit, ObjectInfo


class Store(Protocol):
    def head(self, repo: str, branch: str) -> str: ...

    def commit_of(self, repo: str, ref: str) -> Commit: ...

    def objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def read(self, repo: str, ref: str, path: str) -> bytes: ...

    def download(self, repo: str, ref: str, path: str, sink: BinaryIO,
                 presign: bool = False) -> tuple[int, str]: ...

    def upload(self, repo: str, branch: str, path: str, content: bytes | BinaryIO,
               size: int | None = None) -> ObjectInfo: ...

    def delete_objects(self, repo: str, branch: str, paths: list[str]) -> None: ...

    def ensure_repository(self, repo: str, storage_namespace: str,
                          default_branch: str) -> bool: ...

    def create_branch_once(self, repo: str, name: str, source_commit: str) -> None: ...

    def delete_branch(self, repo: str, branch: str) -> None: ...

    def commit_once(self, repo: str, branch: str, message: str, metadata: dict[str, str],
                    key: str) -> Commit: ...

    def merge_once(self, repo: str, source: str, destination: str, message: str,
                   metadata: dict[str, str], key: str) -> Commit: ...
