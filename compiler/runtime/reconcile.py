"""`dsc runtime reconcile`: the runs lakeFS's webhooks missed (issue 7).

lakeFS posts each post-commit event once and never retries it, so a triggered graph also runs
a reconciler on a schedule. For every source branch it compares the branch head with what the
output heads of the pipelines reading it record in their provenance (`dsc.input.<name>`); a
head that some reader has not processed is a missed run. It is emitted under the name the
Sensor gives the event of that commit (compiler.contract.run_name), so a run that exists
already, finished or still going, is never started twice: creating it fails with
AlreadyExists, which the reconciler tolerates.

Commits dsc makes that change no data (installing the trigger's action file) carry
`dsc.bookkeeping`; the reconciler, like the Sensor, looks through them to the data commit
below.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from compiler import contract
from compiler.contract.job import JobError
from compiler.runtime.job import Context, write_outputs
from compiler.store import Commit, NotFound, Store

MAX_BOOKKEEPING = 20  # bookkeeping commits looked through above a data commit


def head_chain(store: Store, repo: str, branch: str) -> list[str]:
    """The branch head, then its first parents while the commit is dsc bookkeeping: every
    commit in the list holds the same data as the last one."""
    commit = store.commit_of(repo, branch)
    chain = [commit.id]
    while contract.BOOKKEEPING_KEY in commit.metadata and commit.parents \
            and len(chain) <= MAX_BOOKKEEPING:
        commit = store.commit_of(repo, commit.parents[0])
        chain.append(commit.id)
    return chain


@dataclass(frozen=True, slots=True)
class Missed:
    name: str
    repo: str
    branch: str
    commit: str
    why: str

    def item(self) -> dict[str, str]:
        return {"name": self.name, "repo": self.repo, "branch": self.branch,
                "commit": self.commit}


def detect(store: Store, document: dict[str, Any]) -> list[Missed]:
    """One missed run per source branch whose data head some reader has not processed."""
    missed: list[Missed] = []
    outputs: dict[tuple[str, str], Commit | None] = {}  # each output head read once

    def output_head(repo: str, branch: str) -> Commit | None:
        if (repo, branch) not in outputs:
            try:
                outputs[(repo, branch)] = store.commit_of(repo, branch)
            except NotFound:
                outputs[(repo, branch)] = None
        return outputs[(repo, branch)]

    for source in document["sources"]:
        repo, branch = source["repo"], source["branch"]
        try:
            chain = head_chain(store, repo, branch)
        except NotFound as exc:
            raise JobError(f"source input {repo}@{branch}: {exc.where} has no such branch "
                           f"({exc.message}); the graph cannot run until it exists") from None
        behind = []
        for reader in source["readers"]:
            where = f"{reader['output_repo']}@{reader['output_branch']}"
            head = output_head(reader["output_repo"], reader["output_branch"])
            if head is None:
                behind.append(f"pipeline `{reader['pipeline']}` has no output yet ({where})")
                continue
            seen = contract.recorded_commit(head.metadata, reader["input"], repo)
            if seen is None:
                behind.append(f"pipeline `{reader['pipeline']}`'s output head {where} "
                              f"({head.id[:12]}) records no commit of input "
                              f"`{reader['input']}`")
            elif seen not in chain:
                behind.append(f"pipeline `{reader['pipeline']}` last read {seen[:12]}")
        if behind:
            data = chain[-1]
            missed.append(Missed(contract.run_name(document["prefix"], repo, branch, data), repo,
                                 branch, data, "; ".join(behind)))
    return missed


def reconcile(ctx: Context, sources_text: str) -> list[Missed]:
    """The verb: detect, log each missed run and why, write the `runs` output (JSON list)."""

    try:
        document = json.loads(sources_text)
    except ValueError as exc:
        raise JobError(f"--sources is not JSON: {exc}") from None
    missed = detect(ctx.store, document)
    for m in missed:
        ctx.log(f"reconcile: {m.repo}@{m.branch} head {m.commit[:12]} was not processed "
                f"({m.why}): submit {m.name}")
    if not missed:
        ctx.log(f"reconcile: all {len(document['sources'])} source branches processed")
    write_outputs(ctx.run, "reconcile", {"runs": json.dumps(
        [m.item() for m in missed], separators=(",", ":"))})
    return missed
