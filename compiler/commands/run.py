"""`dsc run`: compile the specs and run the Workflow on this machine (compiler.local), on a
data directory or a lakeFS, then say what each output branch became."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from compiler.commands.compile import CompileRequest, compiled_or_refused
from compiler.commands.console import Console, isatty
from compiler.commands.errors import CouldNotRun
from compiler.commands.sources import (
    configuration,
    data_root,
    exclusive_stores,
    lakefs_client,
    template_values,
)
from compiler.diagnostics import ExitCode


def run(paths: tuple[Path, ...], *, data: Path | None, use_lakefs: bool, runner: str,
        parallelism: int | None, secrets: Path | None, graph_name: str | None,
        config_path: Path | None, verbose: bool, keep_scratch: bool, reprocess: str,
        sets: tuple[str, ...], values_files: tuple[Path, ...], console: Console) -> int:
    """Progress and the outcome on stderr; the exit code (128+N when stopped by signal N)."""
    from compiler.local.progress import Progress, jobs_of
    from compiler.local.runners import DockerRunner, HostRunner, RunnerError
    from compiler.local.session import (
        branch_outcomes,
        default_parallelism,
        directory_store,
        execute,
        in_process_runtime,
        missing_sources,
        output_heads,
        preflight,
        runtime_environment,
        where_data,
        where_lakefs,
    )
    from compiler.local.workflow import Unsupported, load_program
    from compiler.store import LakeFSError, Store

    exclusive_stores(data, use_lakefs)
    values = template_values(sets, values_files)
    config = configuration(config_path)
    documents = compiled_or_refused(CompileRequest(paths=paths, values=values, name=graph_name,
                                                   config=config, reprocess=reprocess), console)
    if isinstance(documents, int):
        return documents
    try:
        program = load_program(documents)
    except Unsupported as exc:
        raise CouldNotRun(f"the compiled Workflow: {exc}") from None
    say = console.say
    where: Callable[[str, str, str], str]
    store: Store
    if use_lakefs:
        store = lakefs_client(config, "--lakefs: ")
        try:
            preflight(store, program, config.lakefs.storage_namespace)
        except LakeFSError as exc:
            raise CouldNotRun.store(f"--lakefs {store.endpoint}: ", exc) from None
        where = where_lakefs(config.lakefs.ui_url)
        place = f"lakeFS at {store.endpoint}"
    else:
        root = data_root(data)
        directory = store = directory_store(root, program)
        missing = missing_sources(directory, program)
        if missing:
            raise CouldNotRun(f"--data {root}: no directory for the input "
                              + "; ".join(missing) + " (one directory per input repo)")
        where = where_data(directory)
        place = f"data in {root}"
    runtime_env = runtime_environment(runner, data_directory=not use_lakefs)
    try:
        user = HostRunner(Path.cwd(), log=say) if runner == "host" else \
            DockerRunner(secrets)
    except RunnerError as exc:
        raise CouldNotRun(str(exc)) from None
    progress = Progress(jobs_of(program), console.err, tty=isatty(console.err),
                        verbose=verbose)
    jobs = parallelism or default_parallelism()
    count = len(progress.states)
    say(f"dsc run: {program.name}, {count} pipeline{'' if count == 1 else 's'}, {runner} "
        f"runner, {place}, {jobs} pods at once")
    before = output_heads(store, program)
    stop: list[Any] = []
    stopped: list[int] = []

    def wait(finished: Any) -> bool:
        # A signal interrupts the wait (Linux, macOS), and its handler raises here in the main
        # thread; the bound only matters where a lock's wait cannot be interrupted.
        while not finished.is_set():
            try:
                finished.wait(60)
            except KeyboardInterrupt as exc:
                if stopped:
                    raise
                signum = getattr(exc, "signum", signal.SIGINT)
                stopped.append(signum)
                say(f"dsc run: {signal.Signals(signum).name}: stopping the running datums and "
                    "removing the job branches ("
                    + ("Ctrl-C" if signum == signal.SIGINT else "the signal")
                    + " again to quit at once)")
                executor, pods = stop[0]
                executor.cancel.set()
                pods.stop_all()
        return bool(stopped)

    with _stop_signals():
        result = execute(program, in_process_runtime(store), user, progress=progress,
                         parallelism=jobs, runtime_env=runtime_env, secrets=secrets,
                         scratch=None, on_start=lambda e, p: stop.append((e, p)), wait=wait,
                         keep_scratch=keep_scratch)
    outcomes = branch_outcomes(store, program, before, result.uid, where)
    say("")
    say(progress.summary(lambda state: outcomes.get(state.name, "?")).rstrip("\n"))
    if result.interrupted:
        name = signal.Signals(stopped[0]).name if stopped else "interrupted"
        say(f"dsc run: {result.name} stopped by {name}; pod logs in {result.scratch}")
        return 128 + (stopped[0] if stopped else signal.SIGINT)
    if result.outcome.phase != "Succeeded":
        failures = progress.failures()
        say(f"dsc run: pod logs in {result.scratch}")
        say(f"dsc run: {result.name} failed: "
            + ("; ".join(failures[:5]) if failures else result.outcome.message))
        # A step that failed on lakeFS exits as every command does for that condition.
        lakefs = [c for c in progress.step_exit_codes
                  if c in (ExitCode.COULD_NOT_RUN, ExitCode.UNAVAILABLE)]
        return lakefs[-1] if lakefs else int(ExitCode.FINDINGS)
    say(f"dsc run: {result.name} succeeded")
    return int(ExitCode.CLEAN)


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (`timeout`, a cancelled CI job, a closed SSH session): stopped as
    Ctrl-C stops a run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _stop_signals() -> Iterator[None]:
    def stop(signum: int, _frame: Any) -> None:
        raise _Stopped(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
