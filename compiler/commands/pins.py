"""`dsc compile --pin`: resolve a graph's source inputs to commits and plan their datums now.

A `PinResolver` answers two questions about a lakeFS installation: the head commit of a
branch, and the files of a commit. The lakeFS adapter implements it against a live server;
tests pass a fake. Pipelines whose every input is pinned get their number of datums and plan
digest compiled into the run (`open` refuses a plan that differs); the others still plan at
run time, on pinned source commits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from compiler.argo.build import Pins, PipelinePins
from compiler.config import Config
from compiler.contract import plan_digest
from compiler.spec.graph import Graph
from compiler.spec.model import CronInput, PfsInput
from compiler.store import NotFound

T = TypeVar("T")


class PinResolver(Protocol):
    def head(self, repo: str, branch: str) -> str:
        """The full (64-hex) commit ID at the head of `branch` of lakeFS repository `repo`."""
        ...

    def listing(self, repo: str, commit: str) -> Iterable[str]:
        """The path of every object in `commit` (as lakeFS gives them, without a leading
        `/`), in any order."""
        ...


class PinError(ValueError):
    """A source input that cannot be pinned (the message names pipeline, input and why)."""


_COMMIT = re.compile(r"[0-9a-f]{64}")


def _named(what: str, call: Callable[[str, str], T], repo: str, ref: str) -> T:
    """`call(repo, ref)`, its NotFound naming the repository and ref it could not find."""
    try:
        return call(repo, ref)
    except NotFound as exc:
        raise NotFound(exc.operation, exc.status, f"{what}: {exc.message}", exc.where) \
            from None


def resolve_pins(graph: Graph, resolver: PinResolver, config: Config) -> Pins:
    from compiler.argo.build import job_spec
    from compiler.datums.plan import plan_datums

    produced = {p.name for p in graph.pipelines}
    heads: dict[tuple[str, str], str] = {}
    pins: Pins = {}
    for p in graph.pipelines:
        commits: dict[str, str] = {}
        complete = p.input is not None
        for node in p.inputs():
            # A cron tick is written at run time, an upstream output by this very run.
            if isinstance(node, CronInput) or (isinstance(node, PfsInput)
                                               and node.repo in produced):
                complete = False
            if not isinstance(node, PfsInput) or node.repo in produced:
                continue
            branch = node.branch or config.default_branch
            commit = node.commit or heads.get((node.repo, branch))
            if commit is None:
                commit = _named(f"pipeline `{p.name}`, input `{node.name}`: "
                                f"{config.lakefs_repo(node.repo)}@{branch}",
                                resolver.head, config.lakefs_repo(node.repo), branch)
                if not _COMMIT.fullmatch(commit or ""):
                    raise PinError(f"pipeline `{p.name}`, input `{node.name}`: lakeFS gave "
                                   f"{commit!r} as the head of {node.repo}@{branch}, not a "
                                   "64-hex commit ID")
                heads[(node.repo, branch)] = commit
            if commits.setdefault(node.repo, commit) != commit:
                raise PinError(f"pipeline `{p.name}` reads repo `{node.repo}` at two commits "
                               f"({commits[node.repo][:12]}, {commit[:12]}); --pin pins one "
                               "commit per repo")
        datums = digest = None
        if complete and p.input is not None:
            def listing(repo: str, at: dict[str, str] = commits,
                        name: str = p.name) -> Iterable[str]:
                # lakeFS object paths are relative; the datum engine's are absolute. Sorted,
                # as lakeFS lists them to the runtime's `open`, so both plan the same order.
                return sorted("/" + path.lstrip("/") for path in _named(
                    f"pipeline `{name}`: {config.lakefs_repo(repo)}@{at[repo][:12]}",
                    lambda r, c: list(resolver.listing(r, c)), config.lakefs_repo(repo),
                    at[repo]))

            count = 0

            def ids(found: Iterable[Any]) -> Iterator[str]:
                nonlocal count
                for d in found:
                    count += 1
                    yield d.id

            # The tree `open` plans: the job document's, so the digest it checks is its own.
            tree, _ = job_spec(p, config).tree()
            digest = plan_digest(ids(plan_datums(tree, listing)))
            datums = count
        pins[p.name] = PipelinePins(tuple(sorted(commits.items())), datums, digest)
    return pins
