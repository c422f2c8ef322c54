"""`dsc gc`: remove the job branches that runs of a graph left behind (compiler.runtime.gc
decides which a run no longer needs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compiler.commands.compile import graph_of
from compiler.commands.console import Console
from compiler.commands.errors import CouldNotRun, UsageError
from compiler.commands.sources import (
    data_root,
    exclusive_stores,
    lakefs_client,
)
from compiler.diagnostics import ExitCode


def gc(paths: tuple[Path, ...], *, data: Path | None, use_lakefs: bool, older_than: str | None,
       dry_run: bool, graph_name: str | None, config_path: Path | None, sets: tuple[str, ...],
       values_files: tuple[Path, ...], console: Console) -> int:
    """A line per branch on stdout, the count on stderr; the exit code."""
    from compiler.runtime.gc import collect
    from compiler.spec.values import parse_duration
    from compiler.store import LakeFSError

    exclusive_stores(data, use_lakefs)
    age = None
    if older_than is not None:
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise UsageError(str(exc), "--older-than") from None
    config, graph = graph_of(paths, graph_name=graph_name, config_path=config_path, sets=sets,
                             values_files=values_files, console=console)
    if graph is None:
        return int(ExitCode.FINDINGS)
    store: Any
    if use_lakefs:
        store = lakefs_client(config, "--lakefs: ")
    else:
        from compiler.store.directory import DirectoryStore

        store = DirectoryStore(data_root(data))
    repos = sorted({config.lakefs_repo(p.name) for p in graph.pipelines})
    try:
        done = collect(store, repos, older_than=age, dry_run=dry_run, log=console.print)
    except LakeFSError as exc:
        raise CouldNotRun.store("gc: ", exc) from None
    removable = sum(1 for b in done.found if b.removable)
    console.say(f"dsc gc: {len(done.found)} job branches in {len(repos)} repositories: "
                f"{'would remove' if dry_run else 'removed'} {removable}, kept "
                f"{len(done.found) - removable}")
    return int(ExitCode.CLEAN)
