"""`dsc triggers action` and `dsc triggers install`: a graph's lakeFS action file per source
repository, printed, written, or committed to each tracked branch.

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
from pathlib import Path
from typing import Any

from compiler import contract
from compiler.commands.console import Console
from compiler.commands.errors import CouldNotRun
from compiler.diagnostics import ExitCode
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


@dataclass(frozen=True, slots=True)
class ActionFile:
    repo: str
    branches: tuple[str, ...]
    path: str
    text: str


def action_files(paths: tuple[Path, ...], *, graph_name: str | None, config_path: Path | None,
                 namespace: str | None, sets: tuple[str, ...], values_files: tuple[Path, ...],
                 console: Console) -> tuple[Any, str, list[ActionFile]] | int:
    """The config, the graph's name and its action file per source repository; or the exit
    code when the specs hold errors."""
    from compiler.argo.object_names import OBJECT_MAX, fit
    from compiler.argo.triggers import action_file, action_path, sources
    from compiler.commands.compile import graph_of

    config, graph = graph_of(paths, graph_name=graph_name, config_path=config_path, sets=sets,
                             values_files=values_files, console=console,
                             flags={("namespace",): namespace})
    if graph is None:
        return int(ExitCode.FINDINGS)
    template = fit(graph.name, OBJECT_MAX)
    by_repo: dict[str, list[str]] = {}
    for source in sources(graph, config):
        by_repo.setdefault(source.repo, []).append(source.branch)
    if not by_repo:
        raise CouldNotRun(f"graph `{graph.name}` reads no lakeFS branch it does not write: "
                          "there is nothing to trigger on")
    try:
        files = [ActionFile(repo, tuple(branches), action_path(template),
                            action_file(template, branches, config))
                 for repo, branches in by_repo.items()]
    except ValueError as exc:  # no URL for the EventSource: a setting is missing
        raise CouldNotRun(str(exc), ExitCode.USAGE) from None
    return config, template, files


def print_actions(paths: tuple[Path, ...], *, output_dir: Path | None, console: Console,
                  **options: Any) -> int:
    """`dsc triggers action`: the action files on stdout, or written under `output_dir`."""
    found = action_files(paths, console=console, **options)
    if isinstance(found, int):
        return found
    _, _, files = found
    if output_dir is None:
        for i, f in enumerate(files):
            where = ", ".join(f"lakefs://{f.repo}/{b}/{f.path}" for b in f.branches)
            console.out.write(("---\n" if i else "") + f"# {where}\n" + f.text)
        return int(ExitCode.CLEAN)
    try:
        for f in files:
            target = output_dir / f.repo / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.text, encoding="utf-8")
    except OSError as exc:
        raise CouldNotRun(f"cannot write the action files: {exc}") from None
    console.say(f"wrote {len(files)} action files to {output_dir}")
    return int(ExitCode.CLEAN)


def install_actions(paths: tuple[Path, ...], *, console: Console, **options: Any) -> int:
    """`dsc triggers install`: a line per branch on stdout."""
    from compiler.commands.sources import lakefs_client
    from compiler.store import LakeFSError

    found = action_files(paths, console=console, **options)
    if isinstance(found, int):
        return found
    config, graph, files = found
    client = lakefs_client(config, "install: ")
    for f in files:
        for branch in f.branches:
            try:
                done = install(client, f.repo, branch, f.path, f.text, graph)
            except LakeFSError as exc:
                raise CouldNotRun.store(f"install on lakefs://{f.repo}/{branch}: ", exc) \
                    from None
            state = (f"committed {done.commit[:12]}" if done.commit
                     else "unchanged, no commit")
            console.print(f"lakefs://{f.repo}/{branch}/{f.path}: {state}")
    return int(ExitCode.CLEAN)
