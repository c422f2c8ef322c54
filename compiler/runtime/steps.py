"""The runtime steps as a Python API: `dsc runtime <verb>` in a pod and `dsc run`, which runs
the same steps in its own process, both call `run_step` with the options of the step's argv
(compiler.contract.parse_args reads them back from the argv the manifests carry).

A step returns its exit code (compiler.diagnostics.ExitCode): 0 done, 1 the job cannot go on
(the message names why), 2 usage (a missing variable or option), 3 lakeFS refused for good,
75 lakeFS unavailable or the user container gone (the one code Argo retries, with lost pods:
contract.RETRY_EXPRESSION).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compiler import contract
from compiler.contract.job import JobError
from compiler.diagnostics import ExitCode
from compiler.runtime.job import Context, Run
from compiler.store import LakeFSError, Store

Options = Mapping[str, Sequence[str]]
Action = Callable[[Context], Any]
# Kubernetes shows a container's termination message (4 KiB at most) as why it stopped.
TERMINATION_LOG = "/dev/termination-log"


class StepUsage(ValueError):
    """A step given options it cannot run with (exit 2)."""


@dataclass(frozen=True, slots=True)
class Host:
    """Where a step runs: the pod's environment and where its log lines go; under `dsc run`
    also the store (a pod reads lakeFS's endpoint and keys from its environment instead),
    where a worker's progress goes, and whether the pod's user container still runs."""

    environ: Mapping[str, str]
    log: Callable[[str], None]
    store: Store | None = None
    progress: Callable[[int, int, int], None] | None = None
    alive: Callable[[], bool] | None = None


def run_step(verb: str, options: Options, host: Host) -> int:
    """Run one step; its exit code."""
    try:
        if verb == "prepare":
            return _prepare(host)
        act = _ACTIONS[verb](options, host)
    except StepUsage as exc:
        host.log(f"dsc runtime {verb}: error: {exc}")
        return int(ExitCode.USAGE)
    return _run(verb, act, host)


def _run(verb: str, act: Action, host: Host) -> int:
    from compiler.runtime.worker import UserGone

    environ = host.environ
    try:
        run = Run.from_environment(environ)
        if host.store is not None:
            store = host.store
        else:
            from compiler.lakefs.client import from_environment

            store = from_environment(contract.lakefs_variables(dict(environ)))
    except (LookupError, ValueError, JobError) as exc:  # a variable the manifests set
        host.log(f"dsc runtime {verb}: error: {exc}")
        return int(ExitCode.USAGE)
    transfers = environ.get("DSC_TRANSFERS", "8")
    ctx = Context(store, run, host.log, transfers=int(transfers) if transfers.isdigit() else 8,
                  presign=environ.get("DSC_PRESIGN", "") in ("1", "true", "yes"),
                  progress=host.progress or argo_progress(environ.get("ARGO_PROGRESS_FILE", "")))
    try:
        act(ctx)
    except JobError as exc:
        host.log(f"dsc runtime {verb}: error: {exc}")
        if host.store is None:
            _termination_message(str(exc))
        return int(ExitCode.FINDINGS)
    except LakeFSError as exc:
        host.log(f"dsc runtime {verb}: error: {exc}")
        return int(ExitCode.of_store(exc.transient))
    except UserGone as exc:
        host.log(f"dsc runtime {verb}: error: {exc}; the pod is run again")
        return int(ExitCode.UNAVAILABLE)
    return int(ExitCode.CLEAN)


def argo_progress(path: str) -> Callable[[int, int, int], None]:
    """Argo's self-reported progress: `done/total` in the file Argo names (its executor
    reads it into the node's `progress`, shown in the UI)."""
    def write(done: int, total: int, _failed: int) -> None:
        if path:
            with contextlib.suppress(OSError), open(path, "w", encoding="utf-8") as f:
                f.write(f"{done}/{total}\n")
    return write


def _termination_message(message: str) -> None:
    if os.access(TERMINATION_LOG, os.W_OK):
        with contextlib.suppress(OSError), open(TERMINATION_LOG, "w", encoding="utf-8") as f:
            f.write(message[:4000])


# --- each step's options -----------------------------------------------------------------------

def _one(options: Options, name: str) -> str:
    values = options.get(name) or []
    if not values:
        raise StepUsage(f"--{name} is required")
    if len(values) > 1:
        raise StepUsage(f"--{name} is given {len(values)} times; give it once")
    return values[0]


def _opt(options: Options, name: str) -> str:
    """An option given at most once; "" when absent (an empty value is the option left out)."""
    values = options.get(name) or []
    if len(values) > 1:
        raise StepUsage(f"--{name} is given {len(values)} times")
    return values[0] if values else ""


def _open(options: Options, host: Host) -> Action:
    from compiler.runtime.verbs import Trigger, open_job

    job = _one(options, "job")
    expect_datums, digest = _opt(options, "expect-datums"), _opt(options, "plan-digest")
    if bool(expect_datums) != bool(digest):
        raise StepUsage("--expect-datums and --plan-digest go together")
    if expect_datums and not expect_datums.isdigit():
        raise StepUsage(f"--expect-datums {expect_datums!r} is not a number of datums")
    expect = (int(expect_datums), digest) if expect_datums else None
    pins = [*(options.get("pin") or []),
            *(p.strip() for p in _opt(options, "pins").split(",") if p.strip())]
    trigger = (_opt(options, "trigger-repo"), _opt(options, "trigger-branch"),
               _opt(options, "trigger-commit"))
    cron_tick, reprocess = _opt(options, "cron-tick"), _opt(options, "reprocess")
    return lambda ctx: open_job(ctx, job, pins, expect, cron_tick, Trigger.parse(*trigger),
                                reprocess)


def _prepare(host: Host) -> int:
    from compiler.runtime.worker import prepare

    try:
        prepare(host.environ.get("DSC_PFS") or contract.PFS)
    except OSError as exc:
        host.log(f"dsc runtime prepare: error: {exc}")
        return int(ExitCode.COULD_NOT_RUN)
    return int(ExitCode.CLEAN)


def _work(options: Options, host: Host) -> Action:
    from compiler.runtime.worker import work

    pipeline, repo = _one(options, "pipeline"), _one(options, "repo")
    branch, worker = _one(options, "job-branch"), _one(options, "worker")
    if not worker.isdigit():
        raise StepUsage(f"--worker {worker!r} is not a worker index")
    alive = host.alive or (lambda: True)
    return lambda ctx: work(ctx, pipeline, repo, branch, int(worker), alive=alive)


def _commit(options: Options, host: Host) -> Action:
    from compiler.runtime.verbs import commit

    job, branch = _one(options, "job"), _one(options, "job-branch")
    return lambda ctx: commit(ctx, job, branch)


def _abort(options: Options, host: Host) -> Action:
    from compiler.runtime.verbs import abort

    graph, status = _one(options, "graph"), _one(options, "status")
    outputs = list(options.get("output") or [])
    keep = "keep-branches" in options
    return lambda ctx: abort(ctx, graph, status, outputs, keep)


def _reconcile(options: Options, host: Host) -> Action:
    from compiler.runtime.reconcile import reconcile

    sources = _one(options, "sources")
    return lambda ctx: reconcile(ctx, sources)


_ACTIONS: dict[str, Callable[[Options, Host], Action]] = {
    "open": _open, "work": _work, "commit": _commit, "abort": _abort, "reconcile": _reconcile}
