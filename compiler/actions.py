"""`dsc triggers install`: commit a graph's lakeFS action file to each tracked branch.

The file is data in the repository (lakefs-action.md §5): lakeFS reads `_lakefs_actions/` at
the event's commit, so every tracked branch needs it. Installing is idempotent: a branch whose
head already holds the same bytes gets no commit. Otherwise the file is committed on a side
branch from the head and merged, so nothing a user left uncommitted on the tracked branch is
swept into dsc's commit (lakeFS refuses the merge into a dirty branch instead, and says so).
Both commits carry `dsc.bookkeeping`: their events start no run, and a retry after any fault
finds what landed (`*_once`) instead of committing twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from compiler import contract
from compiler.store import Conflict, NotFound, Store


@dataclass(frozen=True, slots=True)
class Installed:
    repo: str
    branch: str
    commit: str | None  # None: the head already held the file


def install(store: Store, repo: str, branch: str, path: str, text: str,
            graph: str) -> Installed:
    content = text.encode()
    head = store.commit_of(repo, branch)
    try:
        current: bytes | None = store.read(repo, head.id, path)
    except NotFound:
        current = None
    digest = hashlib.sha256(content).hexdigest()[:12]
    side = contract.job_branch(f"install-{graph}-{branch}", digest)
    if current == content:
        store.delete_branch(repo, side)  # left by an attempt that died after its merge
        return Installed(repo, branch, None)
    marker = {contract.BOOKKEEPING_KEY: f"trigger-install {graph} {branch} {digest}"}
    message = f"dsc: install the trigger of graph {graph} ({path})"
    try:
        store.create_branch_once(repo, side, head.id)
    except Conflict:
        # An earlier attempt's side branch, from an older head: start it again.
        store.delete_branch(repo, side)
        store.create_branch_once(repo, side, head.id)
    store.upload(repo, side, path, content)
    store.commit_once(repo, side, message, marker, contract.BOOKKEEPING_KEY, since=head.id)
    merged = store.merge_once(repo, side, branch, message, marker, contract.BOOKKEEPING_KEY,
                              since=head.id)
    store.delete_branch(repo, side)  # already gone is success
    return Installed(repo, branch, merged.id)
