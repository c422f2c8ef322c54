"""`dsc run`: execute a compiled graph on this machine, with a store and a runner.

The Workflow runs as compiled (workflow.py, executor.py); the runtime steps get the store
in-process instead of lakeFS credentials from a Secret, and each `dsc run` is a new run
with its own name and UID, as `argo submit` would make it.
"""

from __future__ import annotations

import os
import secrets as _random
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from compiler import contract
from compiler.local.executor import SUCCEEDED, Executor, Outcome, Settings
from compiler.local.progress import Progress, jobs_of
from compiler.local.runners import LocalPods, RuntimeCall, UserRunner
from compiler.local.workflow import Program
from compiler.runtime import gc
from compiler.store import LakeFSError, NotFound, Store
from compiler.store.directory import DirectoryStore

# Output repositories `--data` creates: the runtime's `open` creates a repository when a
# storage namespace is set; the directory store ignores the value.
LOCAL_NAMESPACE = "local://{repo}"


@dataclass(frozen=True, slots=True)
class LocalRun:
    outcome: Outcome
    progress: Progress
    scratch: Path
    name: str
    interrupted: bool
    uid: str = ""


def runtime_environment(runner: str, data_directory: bool) -> dict[str, str]:
    """What the runtime steps of a local run are told about it: the runner (recorded in the
    output commits as `dsc.runner`) and the process that owns the run (so another run, or
    `dsc gc`, can tell whether it is still alive)."""
    env = {"DSC_RUNNER": runner, "DSC_RUN_OWNER": gc.this_process()}
    if data_directory:
        env["DSC_STORAGE_NAMESPACE"] = LOCAL_NAMESPACE
    return env


def preflight(store: Store, program: Program, storage_namespace: str | None) -> None:
    """`dsc run --lakefs`, before anything runs: the endpoint, the credentials and every
    repository the graph reads (and writes, unless dsc creates them), one quick request
    each. Raises the store's error."""
    repos: dict[str, str] = {}
    jobs = jobs_of(program).values()
    produced = {job.output_repo for job in jobs}
    for job in jobs:
        for leaf in job.leaves:
            if not leaf.cron and leaf.lakefs_repo not in produced:
                repos.setdefault(leaf.lakefs_repo, f"repo `{leaf.repo}`, read by pipeline "
                                 f"`{job.pipeline}`")
        if not storage_namespace:
            repos.setdefault(job.output_repo, f"the output of pipeline `{job.pipeline}`; set "
                             "`lakefs.storage_namespace` in dsc.yaml to let dsc create it")
    check = getattr(store, "preflight", None)
    if check is not None:
        check(repos)


Heads = dict[tuple[str, str], "str | LakeFSError | None"]


def output_heads(store: Store, program: Program) -> Heads:
    """The head of every output branch of the graph now (None: it does not exist)."""
    heads: Heads = {}
    for job in jobs_of(program).values():
        key = (job.output_repo, job.output_branch)
        try:
            heads[key] = store.head(*key)
        except NotFound:
            heads[key] = None
        except LakeFSError as exc:
            heads[key] = exc
    return heads


def branch_outcomes(store: Store, program: Program, before: Heads, uid: str,
                    place: Callable[[str, str, str], str]) -> dict[str, str]:
    """Per pipeline, what the run did to its output branch, from the store itself: advanced
    to a commit of this run, unchanged, moved by another writer, or unknown (and why)."""
    after = output_heads(store, program)
    outcomes: dict[str, str] = {}
    for job in jobs_of(program).values():
        key = (job.output_repo, job.output_branch)
        was, now = before.get(key), after.get(key)
        where = f"{job.output_repo}@{job.output_branch}"
        if isinstance(was, LakeFSError) or isinstance(now, LakeFSError):
            error = was if isinstance(was, LakeFSError) else now
            outcomes[job.pipeline] = f"{where}: unknown ({error})"
            continue
        if now == was:
            outcomes[job.pipeline] = f"{where}: unchanged" + (
                f" at {now[:12]}" if now else " (it does not exist)")
            continue
        assert now is not None
        try:
            commits = list(store.log(job.output_repo, now, stop_at=was))
        except LakeFSError as exc:
            outcomes[job.pipeline] = f"{where}: moved to {now[:12]}; unknown by whom ({exc})"
            continue
        mine = next((c for c in commits if c.metadata.get(contract.RUN_KEY) == uid
                     and c.metadata.get(contract.PIPELINE_KEY) == job.pipeline), None)
        if mine is None and was is None and all(not c.parents for c in commits):
            # `open` created the repository (its first, empty commit); no job landed
            outcomes[job.pipeline] = f"{where}: created empty by this run, no job committed"
        elif mine is None:
            outcomes[job.pipeline] = (f"{where}: unchanged by this run; moved to {now[:12]} "
                                      "by another writer")
        elif mine.id == now:
            outcomes[job.pipeline] = place(job.output_repo, job.output_branch, now)
        else:
            outcomes[job.pipeline] = (place(job.output_repo, job.output_branch, mine.id)
                                      + f"; since moved on to {now[:12]} by another writer")
    return outcomes


def directory_store(root: Path, program: Program) -> DirectoryStore:
    """The `--data DIR` store: each repo in the directory of its Pachyderm name."""
    names: dict[str, str] = {}
    for job in jobs_of(program).values():
        names[job.output_repo] = job.pipeline
        for leaf in job.leaves:
            names.setdefault(leaf.lakefs_repo, leaf.repo)
    store = DirectoryStore(root, names)
    store.remember()
    return store


def missing_sources(store: DirectoryStore, program: Program) -> list[str]:
    """The data directories the graph reads and no pipeline of it writes, that are absent
    (said before anything runs, rather than by a failing `open` and its retries)."""
    jobs = jobs_of(program).values()
    produced = {job.output_repo for job in jobs}
    missing: dict[str, str] = {}
    for job in jobs:
        for leaf in job.leaves:
            where = store.directory(leaf.lakefs_repo)
            if not leaf.cron and leaf.lakefs_repo not in produced and not where.is_dir():
                missing.setdefault(leaf.lakefs_repo, f"{where} (repo `{leaf.repo}`, read by "
                                   f"pipeline `{job.pipeline}`)")
    return sorted(missing.values())


def in_process_runtime(store: Store) -> RuntimeCall:
    """A runtime container's step as a pod runs it, in this process (compiler.runtime.steps),
    against `store` instead of the lakeFS credentials a pod reads from its environment."""
    from compiler.runtime.steps import Host, run_step

    def call(args: list[str], environ: dict[str, str], log: Callable[[str], None],
             progress: Callable[[int, int, int], None] | None = None,
             alive: Callable[[], bool] | None = None) -> int:
        try:
            verb, options = contract.parse_args(args)
        except contract.ArgvError as exc:
            log(f"dsc: error: {exc}")
            return 2
        try:
            return run_step(verb, options, Host(environ, log, store, progress, alive))
        except Exception as exc:  # a bug in dsc: said in the pod's log, as a pod would
            log(f"dsc: internal error: {type(exc).__name__}: {exc} (report it)")
            return 3
    return call


def execute(program: Program, runtime: RuntimeCall, user: UserRunner, *,
            progress: Progress, parallelism: int, runtime_env: dict[str, str],
            secrets: Path | None, scratch: Path | None,
            on_start: Callable[[Executor, LocalPods], None] = lambda _e, _p: None,
            wait: Callable[[threading.Event], bool] | None = None,
            keep_scratch: bool = False) -> LocalRun:
    """Run `program`; `wait` waits for the run to finish and says whether the user
    interrupted it (the CLI turns Ctrl-C into a stop of every running datum). The pods'
    scratch directory is removed after a success; after a failure it keeps the pods' logs
    only, unless `keep_scratch` keeps everything (what each pod staged and wrote)."""
    name = f"{program.name[:57]}-{_random.token_hex(3)[:5]}"
    directory = scratch or Path(tempfile.mkdtemp(prefix=f"dsc-run-{name}-"))
    pods = LocalPods(runtime, user, runtime_env=runtime_env, secrets=secrets)
    settings = Settings(name=name, uid=str(uuid.uuid4()),
                        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        namespace=program.namespace, directory=directory,
                        parallelism=parallelism, keep_scratch=keep_scratch)
    executor = Executor(program, pods, settings, progress)
    on_start(executor, pods)
    box: list[Outcome] = []
    finished = threading.Event()

    def work() -> None:
        try:
            box.append(executor.run())
        finally:
            finished.set()

    # Waiting on an Event, not Thread.join: a Ctrl-C inside join() can leave a live thread
    # looking finished (CPython before 3.12), and the exit handler would never run.
    worker = threading.Thread(target=work, name="dsc-run", daemon=True)
    worker.start()
    interrupted = wait(finished) if wait else False
    finished.wait()
    progress.close()
    outcome = box[0] if box else Outcome("Error", "the run stopped without a result", {})
    if outcome.phase == SUCCEEDED and not interrupted and not keep_scratch:
        shutil.rmtree(directory, ignore_errors=True)
    return LocalRun(outcome, progress, directory, name, interrupted, settings.uid)


def where_data(store: DirectoryStore) -> Callable[[str, str, str], str]:
    def where(repo: str, branch: str, commit: str) -> str:
        return f"{repo}@{branch}: advanced to {commit[:12]} ({store.directory(repo)})"
    return where


def where_lakefs(ui: str | None) -> Callable[[str, str, str], str]:
    def where(repo: str, branch: str, commit: str) -> str:
        url = f"{ui.rstrip('/')}/repositories/{repo}/commits/{commit}" if ui \
            else f"lakefs://{repo}/{commit}"
        return f"{repo}@{branch}: advanced to {commit[:12]} ({url})"
    return where


def default_parallelism() -> int:
    """`dsc run`'s pods at once: one per CPU this process may run on."""
    return available_cpus()


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS says)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
