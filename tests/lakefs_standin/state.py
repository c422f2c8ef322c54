"""Read-only, comparable views of the stand-in's state, and snapshots that can be restored.

Tests assert on these rather than through the API, e.g. "the output branch is exactly as
before": `assert standin.branch_state("out", "main") == before`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .model import Commit, Repository, Store


@dataclass(frozen=True, slots=True)
class BranchState:
    """A branch's head commit and its uncommitted writes (path -> checksum, None for a delete)."""

    head: str
    staged: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class CommitInfo:
    id: str
    parents: tuple[str, ...]
    committer: str
    message: str
    creation_date: int
    metadata: Mapping[str, str]
    meta_range_id: str

    @classmethod
    def of(cls, commit: Commit) -> CommitInfo:
        return cls(commit.id, commit.parents, commit.committer, commit.message,
                   commit.creation_date, dict(commit.metadata), commit.meta_range_id)


@dataclass(frozen=True, slots=True)
class RepositoryState:
    branches: Mapping[str, BranchState]
    tags: Mapping[str, str]
    commits: frozenset[str]


def branch_state(repo: Repository, name: str) -> BranchState:
    branch = repo.branch(name)
    return BranchState(branch.head, {path: None if e is None else e.checksum
                                     for path, e in branch.staging.items()})


def repository_state(repo: Repository) -> RepositoryState:
    return RepositoryState({name: branch_state(repo, name) for name in repo.branches},
                           dict(repo.tags), frozenset(repo.commits))


class Snapshot:
    """The whole model at one moment. Equal snapshots describe equal states; `restore` puts one
    back (commits and blobs are immutable, so they are shared, not copied)."""

    def __init__(self, store: Store):
        self._repositories = {name: repo.copy() for name, repo in store.repositories.items()}
        self._namespaces = set(store.used_namespaces)
        self.state: Mapping[str, RepositoryState] = {
            name: repository_state(repo) for name, repo in self._repositories.items()}

    def restore_into(self, store: Store) -> None:
        store.repositories = {name: repo.copy() for name, repo in self._repositories.items()}
        store.used_namespaces = set(self._namespaces)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Snapshot) and self.state == other.state

    def __repr__(self) -> str:
        return f"Snapshot({dict(self.state)!r})"
