"""`dsc plan`: what a run of the graph would do, pipeline by pipeline, before it runs.

Each pipeline is planned exactly as its `open` would plan it (compiler.runtime.verbs.plan_job:
the same inputs, datum hashes and index), against a data directory or a lakeFS, writing
nothing. A pipeline downstream of one that will commit reads outputs not written yet: they are
predicted from the upstream job's own plan. The outputs of skipped datums are known exactly;
a datum processed again is assumed to rewrite the paths it wrote before (their content
unknown: the datums reading them "may change"); a new datum is assumed to write as many files,
in the same places, as the datum before it in the plan did. Counts that depend on such a
prediction are marked as estimates.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.commands.console import Console
from compiler.commands.errors import UsageError
from compiler.contract.job import Job
from compiler.diagnostics import ExitCode
from compiler.runtime.incremental import INPUT, NEW, RESUMED, Forced, read_index
from compiler.runtime.job import Context, Run
from compiler.runtime.verbs import plan_job
from compiler.store import Commit, NotFound, ObjectInfo, Store

UNKNOWN = "?"  # the checksum of a predicted file: its content is not known
PREDICTED = "predicted:"  # the commit ID of an upstream output not made yet


@dataclass(slots=True)
class DatumPlan:
    id: str
    action: str  # process | skip | resume (a failed job did it: its outputs are taken) | delete
    reason: str  # why it is processed or resumed ("" when skipped or deleted)
    inputs: list[tuple[str, str]]  # (input name, path)
    estimated: bool = False  # reads an upstream output not written yet


@dataclass(slots=True)
class PipelinePlan:
    pipeline: str
    output: str  # repo@branch
    noop: bool = False
    head: str = ""  # the output head ("" when the branch does not exist yet)
    inputs: dict[str, str] = field(default_factory=dict)  # input name -> repo@commit
    datums: list[DatumPlan] = field(default_factory=list)
    error: str = ""  # why it cannot be planned (a missing input, ...)

    def count(self, action: str, estimated: bool | None = None) -> int:
        return sum(1 for d in self.datums if d.action == action
                   and (estimated is None or d.estimated == estimated))

    def reasons(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for d in self.datums:
            if d.action == "process":
                found[d.reason] = found.get(d.reason, 0) + 1
        return dict(sorted(found.items()))

    @property
    def estimated(self) -> bool:
        return any(d.estimated for d in self.datums)

    def as_json(self, verbose: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pipeline": self.pipeline, "output": self.output, "head": self.head,
            "inputs": self.inputs, "noop": self.noop,
            "total": self.count("process") + self.count("skip") + self.count("resume"),
            "process": self.count("process"), "skip": self.count("skip"),
            "resume": self.count("resume"),
            "delete": self.count("delete"), "reasons": self.reasons(),
            "estimated": self.count("process", estimated=True)}
        if self.error:
            out["error"] = self.error
        if verbose:
            out["datums"] = [{"id": d.id, "action": d.action, "reason": d.reason,
                              "estimated": d.estimated,
                              "inputs": [{"name": n, "path": p} for n, p in d.inputs]}
                             for d in self.datums]
        return out


class _Predicting:
    """The store, plus the predicted listings of upstream outputs not committed yet."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.predicted: dict[tuple[str, str], list[ObjectInfo]] = {}

    def objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[ObjectInfo]:
        if ref.startswith(PREDICTED):
            return (o for o in self.predicted[(repo, ref)] if o.path.startswith(prefix))
        return self.store.objects(repo, ref, prefix)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def plan_graph(jobs: list[Job], store: Store, reprocess: str = "",
               transfers: int = 8) -> list[PipelinePlan]:
    """Plan each job of a graph in order (upstream first), as a run would."""
    predicting = _Predicting(store)
    read = {leaf.lakefs_repo for job in jobs for leaf in job.leaves}
    run = Run.from_environment({"DSC_RUN": "dsc-plan", "DSC_PFS": os.devnull,
                                "DSC_OUTPUT_DIR": os.devnull})
    ctx = Context(predicting, run, lambda _line: None, transfers=transfers)
    produced: dict[str, str] = {}  # output repo -> the commit downstream reads
    plans: list[PipelinePlan] = []
    for job in jobs:
        plan = PipelinePlan(job.pipeline, f"{job.output_repo}@{job.output_branch}")
        plans.append(plan)
        try:
            commits = _inputs(store, job, produced)
        except NotFound as exc:
            plan.error = exc.message
            produced[job.output_repo] = ""
            continue
        plan.inputs = {leaf.name: f"{leaf.lakefs_repo}@{commits[leaf.name][:12]}"
                       if not commits[leaf.name].startswith(PREDICTED)
                       else f"{leaf.lakefs_repo}@(after its job)" for leaf in job.leaves}
        unknown = [leaf.repo for leaf in job.leaves if commits[leaf.name] == ""]
        if unknown:
            plan.error = (f"it reads `{unknown[0]}`, whose pipeline has not run yet (or cannot "
                          "be planned): its outputs are not known before it runs")
            produced[job.output_repo] = ""
            continue
        try:
            head: Commit | None = store.commit_of(job.output_repo, job.output_branch)
        except NotFound:
            head = None
        plan.head = head.id if head else ""
        planned = plan_job(ctx, job, commits, head, Forced.parse(reprocess, job.pipeline))
        if planned.noop:
            assert head is not None
            plan.noop = True
            produced[job.output_repo] = head.id
            continue
        guesses = {leaf.index: _Guesses(predicting.predicted[(leaf.lakefs_repo,
                                                              commits[leaf.name])])
                   for leaf in job.leaves if commits[leaf.name].startswith(PREDICTED)}
        downstream = job.output_repo in read  # another pipeline reads what it writes
        carried: dict[str, dict[str, Any]] = {}
        if head is not None and downstream:  # the outputs it carries, for the predictions
            carried = read_index(store, job.output_repo, head.id, transfers,
                                 keep=lambda _entry: True)[1]
        files: list[ObjectInfo] = []
        reference: dict[str, Any] | None = None
        for entry in planned.plan:
            estimated = any(m[0] in guesses and guesses[m[0]].covers(m[1]) for m in entry["m"])
            inputs = [(job.leaves[m[0]].name, m[1]) for m in entry["m"]]
            before = carried.get(entry["id"])
            if entry.get("s"):
                plan.datums.append(DatumPlan(entry["id"], "skip", "", inputs, estimated))
                if before is not None:
                    files += _files(before["files"], known=True)
                    reference = before
                continue
            why = entry["r"]
            if why == RESUMED and planned.resumable is not None:
                done = planned.resumable.datums[entry["id"]]
                plan.datums.append(DatumPlan(
                    entry["id"], "resume",
                    f"done in failed run {planned.resumable.run_of(entry['id'])}", inputs,
                    estimated))
                files += _files(done["files"], known=True)
                reference = done
                continue
            if estimated and why in (NEW, INPUT):  # changed code (forced...) runs whatever
                why = "input may change" if before is not None else f"{why}, estimated"
            plan.datums.append(DatumPlan(entry["id"], "process", why, inputs, estimated))
            if before is not None:  # assumed to rewrite what it wrote before
                files += _files(before["files"], known=False)
                reference = before
            elif reference is not None:  # assumed to write like the datum before it
                files += _files({_renamed(p, entry["id"]): v
                                 for p, v in reference["files"].items()}, known=False)
        for datum_id in planned.sorting.removed if planned.sorting else []:
            before = carried.get(datum_id)
            plan.datums.append(DatumPlan(datum_id, "delete", "", [
                (job.leaves[leaf].name, path) for leaf, path in before["m"]] if before else []))
        if not downstream:
            continue
        if head is None or (not carried and not plan.count("resume") and plan.count("process")):
            produced[job.output_repo] = ""  # a first job: nothing to predict its outputs by
            continue
        commit = PREDICTED + job.output_repo
        predicting.predicted[(job.output_repo, commit)] = sorted(files, key=lambda o: o.path)
        produced[job.output_repo] = commit
    return plans


def _inputs(store: Store, job: Job, produced: dict[str, str]) -> dict[str, str]:
    commits: dict[str, str] = {}
    for leaf in job.leaves:
        if leaf.lakefs_repo in produced:
            commits[leaf.name] = produced[leaf.lakefs_repo]
        elif leaf.commit:
            commits[leaf.name] = store.commit_of(leaf.lakefs_repo, leaf.commit).id
        elif leaf.cron:
            commits[leaf.name] = store.head(leaf.lakefs_repo, job.default_branch)
        else:
            commits[leaf.name] = store.head(leaf.lakefs_repo, job.branch_of(leaf))
    return commits


def _files(files: dict[str, Any], known: bool) -> list[ObjectInfo]:
    return [ObjectInfo(path, str(stats["checksum"]) if known else UNKNOWN,
                       int(stats["size"])) for path, stats in files.items()]


def _renamed(path: str, datum_id: str) -> str:
    """A file a new datum is guessed to write: a file of another datum, made its own."""
    directory, _, name = path.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, extension = name, ""
    guess = f"{stem}~new-{datum_id[:8]}" + (f".{extension}" if extension else "")
    return f"{directory}/{guess}" if directory else guess


class _Guesses:
    """The files of a predicted listing whose content is a guess, for matching paths."""

    def __init__(self, listing: list[ObjectInfo]) -> None:
        self._paths = sorted("/" + o.path for o in listing if o.checksum == UNKNOWN)
        self._set = set(self._paths)

    def covers(self, path: str) -> bool:
        """Whether a match (a file, or a directory ending in `/`; `/` is everything) holds
        such a file."""
        if path in self._set:
            return True
        prefix = path if path.endswith("/") else path + "/"
        at = bisect.bisect_left(self._paths, prefix)
        return at < len(self._paths) and self._paths[at].startswith(prefix)


def digest(plans: list[PipelinePlan]) -> str:
    """A short digest of what the plan says (for tests and logs)."""
    h = hashlib.sha256()
    for p in plans:
        h.update(f"{p.pipeline}:{p.noop}:{p.count('process')}:{p.count('skip')}:"
                 f"{p.count('delete')}\n".encode())
    return h.hexdigest()[:12]


def job_documents(graph: Any, config: Any) -> list[Job]:
    """The job each pipeline's `open` gets, as `dsc compile` writes it."""
    from compiler.argo.build import job_spec

    return [job_spec(p, config) for p in graph.pipelines]


def render(plans: list[PipelinePlan], verbose: bool) -> str:
    """The text `dsc plan` prints: a line per pipeline, with `-v` a line per datum."""
    width = max((len(p.pipeline) for p in plans), default=0)
    lines = []
    for p in plans:
        name = f"{p.pipeline:<{width}}"
        if p.error:
            lines.append(f"{name}  cannot be planned: {p.error}")
            continue
        if p.noop:
            read = ", ".join(dict.fromkeys(p.inputs.values()))
            lines.append(f"{name}  nothing to do: {p.output} ({p.head[:12]}) already holds "
                         f"this code's outputs of {read}")
            continue
        total = p.count("process") + p.count("skip") + p.count("resume")
        why = ", ".join(f"{n} {r}" for r, n in p.reasons().items())
        resumed = sorted({d.reason.removeprefix("done in failed run ")
                          for d in p.datums if d.action == "resume"})
        line = (f"{name}  {total} datum{'' if total == 1 else 's'}: "
                f"{p.count('process')} to process{f' ({why})' if why else ''}, "
                + (f"{p.count('resume')} done in failed run {', '.join(resumed)} (their "
                   "outputs are taken), " if resumed else "")
                + f"{p.count('skip')} skipped, {p.count('delete')} to delete")
        if p.estimated:
            line += ("  [estimated: it reads outputs its upstream pipelines have not "
                     "written yet]")
        lines.append(line)
        if verbose:
            marks = {"process": "+", "skip": "=", "resume": "~", "delete": "-"}
            for d in p.datums:
                inputs = "  ".join(f"{n}:{path}" for n, path in d.inputs)
                lines.append(f"  {marks[d.action]} {d.id[:12]}  "
                             f"{d.reason or ('skipped' if d.action == 'skip' else 'removed')}"
                             f"  {inputs}")
    return "".join(line + "\n" for line in lines)


def plan_command(paths: tuple[Path, ...], *, data: Path | None, use_lakefs: bool,
                 verbose: bool, fmt: str, reprocess: str, graph_name: str | None,
                 config_path: Path | None, sets: tuple[str, ...],
                 values_files: tuple[Path, ...], console: Console) -> int:
    """`dsc plan`: the plan on stdout as text or JSON; the exit code."""
    from compiler.argo.build import CompileError, check_reprocess
    from compiler.commands.compile import graph_of
    from compiler.commands.sources import (
        data_root,
        exclusive_stores,
        lakefs_client,
    )

    exclusive_stores(data, use_lakefs)
    config, graph = graph_of(paths, graph_name=graph_name, config_path=config_path, sets=sets,
                             values_files=values_files, console=console)
    if graph is None:
        return int(ExitCode.FINDINGS)
    try:
        check_reprocess(graph, reprocess)
    except CompileError as exc:
        raise UsageError(str(exc), "--reprocess") from None
    jobs = job_documents(graph, config)
    store: Any
    if use_lakefs:
        store = lakefs_client(config, "--lakefs: ")
    else:
        from compiler.store.directory import DirectoryStore

        root = data_root(data)
        names = {job.output_repo: job.pipeline for job in jobs}
        for job in jobs:
            for leaf in job.leaves:
                names.setdefault(leaf.lakefs_repo, leaf.repo)
        store = DirectoryStore(root, names)
    plans = plan_graph(jobs, store, reprocess)
    if fmt == "json":
        console.print(json.dumps({"pipelines": [p.as_json(verbose) for p in plans]}, indent=1))
    else:
        console.out.write(render(plans, verbose))
    return int(ExitCode.CLEAN)
