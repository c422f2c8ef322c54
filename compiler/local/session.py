"""`dsc run`: execute a compiled graph on this machine, with a store and a runner.

The Workflow runs as compiled (workflow.py, executor.py); the runtime steps get the store
in-process instead of lakeFS credentials from a Secret, and each `dsc run` is a new run
with its own name and UID, as `argo submit` would make it.
"""

from __future__ import annotations

import secrets as _random
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from compiler.local.executor import SUCCEEDED, Executor, Outcome, Settings
from compiler.local.progress import PipelineState, Progress, jobs_of
from compiler.local.runners import LocalPods, RuntimeCall, UserRunner
from compiler.local.workflow import Program
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


def directory_store(root: Path, program: Program) -> DirectoryStore:
    """The `--data DIR` store: each repo in the directory of its Pachyderm name."""
    names: dict[str, str] = {}
    for job in jobs_of(program).values():
        names[job.repo] = job.pipeline
        for repo, lakefs_repo, _kind in job.inputs:
            names.setdefault(lakefs_repo, repo)
    store = DirectoryStore(root, names)
    store.remember()
    return store


def missing_sources(store: DirectoryStore, program: Program) -> list[str]:
    """The data directories the graph reads and no pipeline of it writes, that are absent
    (said before anything runs, rather than by a failing `open` and its retries)."""
    jobs = jobs_of(program).values()
    produced = {job.repo for job in jobs}
    missing: dict[str, str] = {}
    for job in jobs:
        for repo, lakefs_repo, kind in job.inputs:
            if kind == "pfs" and lakefs_repo not in produced and \
                    not store.directory(lakefs_repo).is_dir():
                missing.setdefault(lakefs_repo, f"{store.directory(lakefs_repo)} (repo "
                                   f"`{repo}`, read by pipeline `{job.pipeline}`)")
    return sorted(missing.values())


def execute(program: Program, runtime: RuntimeCall, user: UserRunner, *,
            progress: Progress, parallelism: int, runtime_env: dict[str, str],
            secrets: Path | None, scratch: Path | None,
            on_start: Callable[[Executor, LocalPods], None] = lambda _e, _p: None,
            wait: Callable[[threading.Event], bool] | None = None) -> LocalRun:
    """Run `program`; `wait` waits for the run to finish and says whether the user
    interrupted it (the CLI turns Ctrl-C into a stop of every running datum)."""
    name = f"{program.name[:57]}-{_random.token_hex(3)[:5]}"
    directory = scratch or Path(tempfile.mkdtemp(prefix=f"dsc-run-{name}-"))
    pods = LocalPods(runtime, user, runtime_env=runtime_env, secrets=secrets)
    settings = Settings(name=name, uid=str(uuid.uuid4()),
                        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        namespace=program.namespace, directory=directory,
                        parallelism=parallelism)
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
    if outcome.phase == SUCCEEDED and not interrupted:
        shutil.rmtree(directory, ignore_errors=True)
    return LocalRun(outcome, progress, directory, name, interrupted)


def where_data(store: DirectoryStore) -> Callable[[PipelineState], str]:
    def where(state: PipelineState) -> str:
        return f"{store.directory(state.repo)}  (commit {state.commit[:12]})"
    return where


def where_lakefs(state: PipelineState) -> str:
    return state.url or f"lakefs://{state.repo}/{state.commit}"


def default_parallelism() -> int:
    from compiler.spec.lint import available_cpus

    return available_cpus()
