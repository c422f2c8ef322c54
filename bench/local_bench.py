"""Measure the two performance targets of the `dsc run` issue (issue 6) and print a Markdown
report.

1. Executor overhead per datum (stage + publish + bookkeeping, host runner, empty user
   command) at most 50 ms. A synthetic pipeline `empty`: input repo `files` of N small files
   (default 200 of 1 KiB), glob `/*` (one datum per file), `"cmd": ["true"]` with no stdin, and
   `parallelism_spec: {constant: 1}`, so the datums run one at a time and the time of the
   pipeline's datums phase (from the datums fan-out to the last datum's end) divided by N is
   the wall time of one datum, everything included. "Empty" means the spec's command is
   `true` and nothing else: what the host runner then starts is still a process, `unshare`
   with two bind mounts and dsc's compiled user container (its `/bin/sh` wrapper that reads
   `.dsc-env`, feeds stdin and honours `err_cmd`; `true` is a builtin of that shell). The floor
   that is not dsc's is the cost of starting the host runner's process alone: `unshare --mount
   --propagation private /bin/sh -c 'mount --bind A /pfs && mount --bind B /tmp && cd C &&
   exec true'` (root here; `--user --map-root-user` in front otherwise, as the runner does),
   started N times from the same process, the same way (`subprocess.Popen`, output to a log
   file, a new session). dsc's own part is the per-datum time minus that floor. For
   information, the compiled user container started bare the same way (the floor + dsc's
   shell wrapper) is timed beside it.
2. The 77-datum `model` step of the seed demo uses both cores. examples/hyperparameter with
   host.values (bash, `python3`, code/ by absolute path), the pipelines directory copied with
   `parallelism_spec` removed from model.json.j2 (so `-j` alone caps the datums) and with only
   `split` and `model` kept (`test` and `select` run after `model` and are not measured). The
   graph runs with `-j 1` and `-j 2` alternately (1, 2, 2, 1, ...); measured over the model's
   datums phase alone: wall time, the dsc process's CPU time and its reaped children's (every
   user process and what it ran), and utilisation = (process + children CPU) / wall, in cores.
   Passes when `-j 2` is at least 1.3x faster than `-j 1` (ratio of the medians) and uses more
   than 1.5 cores. Beside it, the ceiling without dsc: in the untimed run's process, the user
   process of the model's first datum started again as the runner starts it (on copies of
   that datum's /pfs), one at a time and two at a time.

For information (`--scale-files`, default 1,000), one more run of the overhead pipeline over
more files, beside the judged runs: what grows with the number of datums (the stage and publish
of the first and last tenth of the datums, open and commit). `--profile` adds a cProfile of
one more overhead run, every thread's profile merged.

Since workers (0f9982f) a pipeline's datums run in worker pods, as many as its
parallelism_spec asks (one without it): each starts its user container once (the worker loop)
and runs `dsc runtime work` beside it, which stages each datum, hands it to the loop and
publishes it. At such a revision: (1) the datums phase is from the fan-out of the workers to
the last worker's end, the datums counted from the workers' logs; per datum it is split into
`work` (of which each datum's turn in the loop, `FifoLoop.run` timed), the pod's start
(`prepare`, `HostRunner.start`) and the rest; the floor is one start of the runner's process a
worker pod, over its datums; the compiled user container can no longer be started bare (it
waits on its FIFOs), so it is not timed. (2) model.json.j2 gets `parallelism_spec: {constant:
2}` instead of none, so that two worker pods share the 77 datums and `-j` alone says whether
they run at once; the replay of the first datum's user process (the ceiling) is not available.

Both run through the real code path, `compiler.local.session.execute` (what `dsc run` calls
after compiling), each run in a fresh child process of this script (`--child ...`): the CLI's
own steps are repeated there (compile_specs, load_program, directory_store, HostRunner, the
in-process runtime of compiler/local/session.py) with two additions that change nothing in dsc: a
`Progress` that also records every executor event with its time, and a wrapper around the
in-process runtime call that times each `dsc runtime <verb>` call (the stage and publish of
each datum; the user process is the gap between them, in the datum's thread). Each run gets a
fresh copy of its data directory. `--rev REV` measures compiler/, schemas/ and examples/ of
a git revision (exported under /var/tmp, not /tmp, whose private copy the host runner binds
before it enters the working directory; first on PYTHONPATH, the children's working
directory) instead of the working tree.

The script writes nothing in the repository (specs, data directories, pod scratch space and
the bytecode cache go to a temporary directory). It exits 0 whether or not a target is met
(each is reported PASS or MISS) and 2 when a measurement could not be made (a run failing, a
datum count other than the expected one, no unshare). It needs what the host runner needs:
Linux, unshare(1), root or unprivileged user namespaces, and a /pfs mount point.

Run it with `.venv/bin/python bench/local_bench.py` from the repository.
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    MeasurementError,
    add_run_options,
    cached_env,
    export,
    machine_facts,
    missing_executables,
    percentile,
    progress,
    report_head,
    run_report,
    source_digest,
    table,
    targets,
    tool_output,
    trim_profile,
    verdict,
)

TARGET_OVERHEAD_MS = 50.0
TARGET_CORES = 1.5  # "clearly above one core"
TARGET_SPEEDUP = 1.3  # "clearly faster": our reading of it

EXAMPLE = Path("examples") / "hyperparameter"  # under the repository or the exported --rev
# What `--rev` exports: the package, the schemas it reads, the seed demo; under
# SOURCE_PARENT, not under /tmp: the host runner binds a private /tmp before it changes into
# the working directory (and the model's code is read from there), so a working directory
# under /tmp cannot be entered (every datum fails with "can't cd").
EXPORTED = ("compiler", "schemas", "examples")
SOURCE_PARENT = "/var/tmp"
PIPELINE = "empty"
INPUT_REPO = "files"
FILE_BYTES = 1024
MODEL_DATUMS = 77


# --------------------------------------------------------------------------------------------
# Child mode: one run of a graph through compiler.local.session.execute, in this process.


class _Recorder:
    """Times kept by the run's threads: executor events and runtime calls."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []  # runtime verbs and user-process starts
        self.datums: list[dict[str, Any]] = []  # since workers: each datum a worker logged
        self.loops: list[dict[str, Any]] = []  # since workers: each datum's turn in the loop


def _has_workers() -> bool:
    """Whether the checkout run (the working directory of a child) processes datums with
    worker pods (`dsc runtime work`, since 0f9982f) rather than a pod per datum."""
    return (Path.cwd() / "compiler" / "runtime" / "worker.py").is_file()


# A datum a worker finished: "worker 0: datum 12-f00012.txt (3f2a...) done in 0.01 s: ..."
_DATUM_DONE = re.compile(r"worker (\d+): datum (\S+) \((\w+)\) done(?: after \d+ attempts)? "
                         r"in (\d+(?:\.\d+)?) s: ")


def _cpu() -> tuple[float, float]:
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy() -> float:
    """CPU seconds every process of the machine has used since boot (all cores; /proc/stat:
    user, nice, system, irq, softirq, steal)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


def _run_graph(specs: Path, data: Path, values: dict[str, Any], parallelism: int,
               recorder: _Recorder, host_argv: list[Any],
               profiler: _AllThreads | None = None, keep: tuple[str, Path] | None = None,
               ) -> dict[str, Any]:
    """Compile `specs` and run them as `dsc run --data DATA -j PARALLELISM` would.

    `host_argv` gets the argv and environment of the first user process of the pipeline
    `keep[0]` (of any pipeline without `keep`), whose staged /pfs is copied to `keep[1]`."""
    try:
        from compiler.commands.compile import CompileRequest, compile_specs
    except ModuleNotFoundError:  # a revision before the commands/ layout
        from compiler.compile import CompileRequest, compile_specs  # type: ignore[no-redef]
    from compiler.local.progress import Progress, jobs_of
    from compiler.local.runners import HostRunner
    from compiler.local.session import LOCAL_NAMESPACE, directory_store, execute
    from compiler.local.workflow import load_program

    try:
        from compiler.local.session import in_process_runtime
    except ImportError:  # before c8008cc, the CLI's own
        from compiler.cli import _in_process_runtime as in_process_runtime  # type: ignore[no-redef]

    t0 = time.perf_counter()
    compiled = compile_specs(CompileRequest(paths=(specs,), values=values))
    if compiled.documents is None:
        raise MeasurementError(f"{specs} did not compile")
    program = load_program(compiled.documents)
    store = directory_store(data, program)
    compile_s = time.perf_counter() - t0

    class Recording(Progress):
        def __call__(self, event: Any) -> None:
            now = time.perf_counter()
            process, children = _cpu()
            recorder.events.append({
                "t": now, "cpu": process, "children": children, "machine": _machine_busy(),
                "kind": event.kind,
                "dag": event.node.dag, "task": event.node.task, "item": event.node.item,
                "phase": event.phase, "count": event.count, "seconds": event.seconds,
                "attempt": event.attempt, "message": event.message[:300]})
            super().__call__(event)

    claim = threading.Lock()
    claimed: list[bool] = []

    class TimedHost(HostRunner):
        def start(self, container: Any, pod: Any, env: dict[str, str], log: Path) -> Any:
            with claim:  # the first user process (of pipeline keep[0]) to start
                first = not claimed and not host_argv and (
                    keep is None or pod.node.template == f"{keep[0]}-datum")
                if first:
                    claimed.append(True)
            if first and keep is not None:  # untimed: before the process starts
                for m in container.mounts:
                    if m.path.rstrip("/") == "/pfs":
                        shutil.copytree(pod.volumes[m.volume], keep[1])
            started = time.perf_counter()
            process = super().start(container, pod, env, log)
            recorder.calls.append({"thread": threading.current_thread().name,
                                   "verb": "user-start", "t0": started,
                                   "t1": time.perf_counter()})
            if first:
                host_argv.extend([process.args, {**self.host_env, **env}])
            return process

    inner = in_process_runtime(store)

    def runtime(args: list[str], environ: dict[str, str], log: Any, *more: Any) -> int:
        # `more`: since workers, a worker's progress callback and whether its user container
        # is alive (compiler.local.runners.RuntimeCall)
        started = time.perf_counter()
        pipeline = args[args.index("--pipeline") + 1] if "--pipeline" in args else ""
        thread = threading.current_thread().name
        write = log
        if args[1] == "work":
            def write(line: str) -> None:  # each datum's line, timed, then the pod's log
                m = _DATUM_DONE.match(line)
                if m:
                    recorder.datums.append({"t": time.perf_counter(), "thread": thread,
                                            "pipeline": pipeline, "worker": int(m.group(1)),
                                            "key": m.group(2), "loop_s": float(m.group(4))})
                log(line)
        code = inner(args, environ, write, *more)
        recorder.calls.append({"thread": thread, "verb": args[1], "pipeline": pipeline,
                               "t0": started, "t1": time.perf_counter()})
        return code

    user = TimedHost(Path.cwd())
    progress = Recording(jobs_of(program), io.StringIO(), tty=False, verbose=True)
    restore = _time_the_loop(recorder) if _has_workers() else None
    if profiler:
        profiler.start()
    t0 = time.perf_counter()
    # at revisions of 6c8f82e's time, execute took the store too (program, store, ...)
    store_arg = (store,) if "store" in inspect.signature(execute).parameters else ()
    try:
        result = execute(program, *store_arg, runtime, user, progress=progress,
                         parallelism=parallelism,
                         runtime_env={"DSC_STORAGE_NAMESPACE": LOCAL_NAMESPACE}, secrets=None,
                         scratch=None)
    finally:
        if restore is not None:
            restore()
    total = time.perf_counter() - t0
    if profiler:
        profiler.stop()
    if result.outcome.phase != "Succeeded":
        raise MeasurementError(f"the run failed: {result.outcome.message}; progress: "
                               f"{progress.stream.getvalue()[-2000:]}")  # type: ignore[attr-defined]
    return {"compile_s": compile_s, "run_s": total}


def _time_the_loop(recorder: _Recorder) -> Any:
    """Since workers: time each datum's turn in the user container, the worker's call of
    `FifoLoop.run` (from writing the datum's number on `go` to its answer on `done`), which
    changes nothing in what it does; returns what undoes it."""
    from compiler.runtime.worker import FifoLoop

    original = FifoLoop.run

    def run(self: Any, n: int, timeout: float | None, relay: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, n, timeout, relay)
        finally:
            recorder.loops.append({"thread": threading.current_thread().name,
                                   "s": time.perf_counter() - started})

    FifoLoop.run = run  # type: ignore[method-assign]

    def restore() -> None:
        FifoLoop.run = original  # type: ignore[method-assign]
    return restore


def _phases(recorder: _Recorder, pipeline: str) -> dict[str, Any]:
    """One pipeline's datums phase: from its fan-out to its last datum's end. Before workers
    the fan-out is of a pod per datum (task `datums`); since, of the worker pods (task
    `work`), and the datums are those the workers logged."""
    events = [e for e in recorder.events if e["dag"] == pipeline]
    task = "work" if _has_workers() else "datums"
    expand = [e for e in events if e["kind"] == "expand" and e["task"] == task]
    pods = [e for e in events if e["kind"] == "finish" and e["task"] == task]
    opened = [e for e in events if e["kind"] == "finish" and e["task"] == "open"]
    commit = [e for e in events if e["kind"] == "finish" and e["task"] == "commit"]
    retries = [e for e in events if e["kind"] == "retry"]
    if len(expand) != 1 or not pods or len(pods) != expand[0]["count"] or not commit:
        raise MeasurementError(f"pipeline {pipeline}: {len(expand)} fan-outs, {len(pods)} "
                               f"{task} pods finished, "
                               f"{expand[0]['count'] if expand else '?'} expected")
    datums = len(pods)
    if task == "work":
        datums = sum(1 for d in recorder.datums if d["pipeline"] == pipeline)
    start, last = expand[0], max(pods, key=lambda e: e["t"])
    inside = [e for e in recorder.events if start["t"] <= e["t"] <= last["t"]
              and e["dag"] != pipeline]
    return {"datums": datums, "pods": len(pods), "workers": task == "work",
            "phase_s": last["t"] - start["t"],
            "cpu_s": last["cpu"] - start["cpu"],
            "children_s": last["children"] - start["children"],
            "machine_s": last["machine"] - start["machine"],
            "pod_s": [e["seconds"] for e in pods],
            "open_s": opened[0]["seconds"] if opened else None,
            "commit_s": commit[0]["seconds"], "retries": len(retries),
            "other_events": len(inside)}


def _per_datum(recorder: _Recorder, pipeline: str) -> dict[str, list[float]]:
    """Per datum (one pod thread each): the stage call, the user process (from the stage's
    end to the publish's start, the runner's start included), the publish call, and the
    runner's start alone."""
    by_thread: dict[str, dict[str, tuple[float, float]]] = {}
    for c in recorder.calls:
        by_thread.setdefault(c["thread"], {})[c["verb"]] = (c["t0"], c["t1"])
    out: dict[str, list[float]] = {"stage": [], "user": [], "publish": [], "spawn": [],
                                   "span": []}
    for c in recorder.calls:
        if c["verb"] != "stage" or c["pipeline"] != pipeline:
            continue
        verbs = by_thread[c["thread"]]
        if "publish" not in verbs or "user-start" not in verbs:
            raise MeasurementError(f"datum thread {c['thread']}: no publish or user process")
        (s0, s1), (p0, p1), (u0, u1) = verbs["stage"], verbs["publish"], verbs["user-start"]
        out["stage"].append(s1 - s0)
        out["user"].append(p0 - s1)
        out["publish"].append(p1 - p0)
        out["spawn"].append(u1 - u0)
        out["span"].append(p1 - s0)
    return out


def _per_worker(recorder: _Recorder, pipeline: str) -> dict[str, list[float]]:
    """Since workers: per datum, its turn in the user container's loop (`FifoLoop.run`, go
    to done); per worker pod, its `prepare`, the start of its user container
    (`HostRunner.start`) and its `work` call."""
    threads = {c["thread"] for c in recorder.calls
               if c["verb"] == "work" and c["pipeline"] == pipeline}
    out: dict[str, list[float]] = {
        "loop": [d["s"] for d in recorder.loops if d["thread"] in threads],
        "work": [], "prepare": [], "spawn": []}
    for c in recorder.calls:
        if c["thread"] not in threads:
            continue
        if c["verb"] == "work":
            out["work"].append(c["t1"] - c["t0"])
        elif c["verb"] == "prepare":
            out["prepare"].append(c["t1"] - c["t0"])
        elif c["verb"] == "user-start":
            out["spawn"].append(c["t1"] - c["t0"])
    return out


def _floor(argv: list[str], env: dict[str, str], log: Path) -> float:
    """Start a process as the host runner does and wait for it; its wall time."""
    started = time.perf_counter()
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    code = process.wait()
    elapsed = time.perf_counter() - started
    if code != 0:
        raise MeasurementError(f"{shlex.join(argv)} exited {code}: {log.read_text()[-500:]}")
    return elapsed


def _floors(args: dict[str, Any], host_argv: list[Any], work: Path) -> dict[str, list[float]]:
    """N starts of the bare host-runner process (`exec true`), and, interleaved, N of the
    compiled user container as the runner started it for the first datum."""
    from compiler.local.runners import _ENTER, HostRunner

    runner = HostRunner(Path.cwd())
    pfs, tmp = work / "floor-pfs", work / "floor-tmp"
    pfs.mkdir(exist_ok=True)
    tmp.mkdir(exist_ok=True)
    # since 0f9982f the runner's script takes the directories under /tmp to keep (none here)
    kept = ["0"] if "n=$4" in _ENTER else []
    bare = [*runner.prefix, "/bin/sh", "-c", _ENTER, "dsc-host", str(pfs), str(tmp),
            str(Path.cwd()), *kept, "true"]
    argv, env = host_argv
    argv = list(argv)
    at = argv.index(_ENTER)  # ..., _ENTER, "dsc-host", pfs, tmp, cwd, user command...
    argv[at + 2:at + 4] = [str(pfs), str(tmp)]
    # Since workers the compiled user container is the worker loop, which waits for `dsc
    # runtime work` on its FIFOs: it cannot be started bare, so only the floor is timed.
    wrapped = not _has_workers()
    out: dict[str, list[float]] = {"bare": [], "wrapped": []}
    for _ in range(args["floors"]):
        out["bare"].append(_floor(bare, runner.host_env, work / "floor.log"))
        if wrapped:
            out["wrapped"].append(_floor(argv, env, work / "floor.log"))
    return out


def _child_start(args: dict[str, Any]) -> tuple[Path, Path]:
    """A child run's start: the checkout it runs (its working directory) first on sys.path,
    a fresh copy of the data directory; its scratch directory and that copy."""
    sys.path.insert(0, os.getcwd())
    work = Path(args["work"])
    data = work / "data"
    shutil.copytree(args["data"], data)
    return work, data


def overhead_main(args: dict[str, Any]) -> int:
    work, data = _child_start(args)
    recorder = _Recorder()
    host_argv: list[Any] = []
    floors: dict[str, list[float]] = {}
    profiler = _AllThreads() if args.get("profile") else None
    if args["floor_first"]:  # the first datum's argv is needed: a one-datum run first
        pre = work / "pre"
        shutil.copytree(args["pre"], pre)
        _run_graph(Path(args["pre_specs"]), pre, {}, 1, _Recorder(), host_argv)
        floors = _floors(args, host_argv, work)
    run = _run_graph(Path(args["specs"]), data, {}, 1, recorder, host_argv, profiler)
    if profiler:
        run["profile"] = profiler.report(args.get("profile_lines", 25))
    if not args["floor_first"]:
        floors = _floors(args, host_argv, work)
    parts = _per_worker(recorder, PIPELINE) if _has_workers() else _per_datum(recorder, PIPELINE)
    out = {**run, **_phases(recorder, PIPELINE), "parts": parts,
           "floors": floors, "user_argv": [str(a) for a in host_argv[0]]}
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


def _replay(host_argv: list[Any], pfs: Path, work: Path, starts: int,
            rounds: int) -> dict[str, list[dict[str, float]]]:
    """The user process of one datum, started again and again without dsc (each start on
    its own copy of the datum's /pfs and its own /tmp): `starts` one after the other, then
    two threads doing `starts` each side by side; `rounds` times, alternating."""
    from compiler.local.runners import _ENTER

    argv, env = host_argv
    at = list(argv).index(_ENTER)
    lanes = []
    for lane in range(2):
        own_pfs, own_tmp = work / f"replay-pfs{lane}", work / f"replay-tmp{lane}"
        shutil.copytree(pfs, own_pfs, symlinks=True)
        own_tmp.mkdir()
        lanes.append([*argv[:at + 2], str(own_pfs), str(own_tmp), *argv[at + 4:]])
    log = work / "replay.log"

    def loop(lane: int) -> None:
        for _ in range(starts):
            shutil.rmtree(work / f"replay-pfs{lane}" / "out", ignore_errors=True)
            (work / f"replay-pfs{lane}" / "out").mkdir()
            _floor(lanes[lane], env, log)

    out: dict[str, list[dict[str, float]]] = {"1": [], "2": []}
    for _ in range(rounds):
        for threads in (1, 2):
            cpu0, machine0, t0 = sum(_cpu()), _machine_busy(), time.perf_counter()
            workers = [threading.Thread(target=loop, args=(lane,)) for lane in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            wall = time.perf_counter() - t0
            out[str(threads)].append({"wall_s": wall, "starts": starts * threads,
                                      "cpu_s": sum(_cpu()) - cpu0,
                                      "machine_s": _machine_busy() - machine0})
    return out


def model_main(args: dict[str, Any]) -> int:
    work, data = _child_start(args)
    recorder = _Recorder()
    host_argv: list[Any] = []
    kept = work / "kept-pfs"
    # Since workers a pod's /pfs holds no datum when its user container (the loop) starts,
    # and the loop cannot be started bare: the replay is not available.
    replay = args.get("replay") and not _has_workers()
    run = _run_graph(Path(args["specs"]), data, args["values"], args["parallelism"], recorder,
                     host_argv, keep=("model", kept) if replay else None)
    parts = _per_worker(recorder, "model") if _has_workers() else _per_datum(recorder, "model")
    out = {**run, **_phases(recorder, "model"), "parts": parts}
    if replay:
        out["replay"] = _replay(host_argv, kept, work, args["replay"], 2)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


class _AllThreads:
    """cProfile of every thread started while it runs (one profiler per thread, merged)."""

    def __init__(self) -> None:
        import cProfile

        self.cprofile = cProfile
        self.profilers: list[Any] = []

    def _hook(self, *_args: Any) -> None:
        sys.setprofile(None)
        profiler = self.cprofile.Profile()
        self.profilers.append(profiler)
        profiler.enable()

    def start(self) -> None:
        threading.setprofile(self._hook)
        main = self.cprofile.Profile()
        self.profilers.append(main)
        main.enable()

    def stop(self) -> None:
        threading.setprofile(None)
        self.profilers[0].disable()

    def report(self, lines: int) -> dict[str, str]:
        import pstats

        stats = pstats.Stats(self.profilers[0])
        for profiler in self.profilers[1:]:
            stats.add(profiler)
        out = {}
        for key in ("tottime", "cumulative"):
            text = io.StringIO()
            stats.stream = text  # type: ignore[attr-defined]
            stats.sort_stats(key).print_stats(lines)
            out[key] = trim_profile(text.getvalue())
        return out


# --------------------------------------------------------------------------------------------
# The driver


def write_overhead_inputs(work: Path, files: int) -> tuple[Path, Path]:
    """The `empty` pipeline's spec directory and a data directory of `files` 1 KiB files."""
    specs = work / "overhead-specs"
    specs.mkdir()
    spec = {"pipeline": {"name": PIPELINE},
            "description": "An empty user command over one small file per datum.",
            "transform": {"image": "busybox:1", "cmd": ["true"]},
            "parallelism_spec": {"constant": 1},
            "input": {"pfs": {"repo": INPUT_REPO, "glob": "/*"}}}
    (specs / f"{PIPELINE}.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    data = work / "overhead-data"
    (data / INPUT_REPO).mkdir(parents=True)
    for i in range(files):
        line = f"file {i:05d}\n".encode()
        body = (line * (FILE_BYTES // len(line) + 1))[:FILE_BYTES]
        (data / INPUT_REPO / f"f{i:05d}.txt").write_bytes(body)
    return specs, data


def workers_in(source: Path) -> bool:
    """Whether the checkout at `source` runs datums in worker pods (since 0f9982f)."""
    return (source / "compiler" / "runtime" / "worker.py").is_file()


def write_model_inputs(work: Path, source: Path) -> Path:
    """A copy of the demo's pipelines, split and model only: model without its
    parallelism_spec (before workers), with two workers (since)."""
    specs = work / "model-specs"
    shutil.copytree(source / EXAMPLE / "pipelines", specs)
    model = specs / "model.json.j2"
    text = model.read_text(encoding="utf-8")
    line = '  "parallelism_spec": {"constant": "1"},\n'
    if line not in text:
        raise MeasurementError(f"{EXAMPLE / 'pipelines' / 'model.json.j2'} has no "
                               f"{line.strip()!r} line to remove")
    # Since workers, parallelism_spec is the number of worker pods (one without it), each
    # taking its share of the datums: two workers, and -j alone says whether they run at once.
    two = '  "parallelism_spec": {"constant": "2"},\n' if workers_in(source) else ""
    model.write_text(text.replace(line, two), encoding="utf-8")
    for name in ("test.json.j2", "select.json"):
        (specs / name).unlink(missing_ok=True)
    return specs


class Children:
    """Fresh child processes of this script, run from `cwd` (the repository or the exported
    revision)."""

    def __init__(self, python: str, work: Path, env: dict[str, str], cwd: Path) -> None:
        self.python = python
        self.work = work
        self.env = env
        self.cwd = cwd
        self.count = 0

    def run(self, mode: str, args: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        scratch = self.work / f"child{self.count}"
        scratch.mkdir()
        proc = subprocess.run(
            [self.python, str(Path(__file__).resolve()), "--child", mode,
             json.dumps({**args, "work": str(scratch)})],
            cwd=self.cwd, env={**self.env, "TMPDIR": str(scratch)}, capture_output=True,
            text=True, check=False)
        shutil.rmtree(scratch, ignore_errors=True)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise MeasurementError(f"child {mode} exited {proc.returncode}: "
                                   f"{proc.stderr.strip()[-2000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result


@dataclass(frozen=True, slots=True)
class OverheadResult:
    files: int
    reps: list[dict[str, Any]]
    profile: dict[str, str] | None

    @property
    def workers(self) -> bool:
        return bool(self.reps[0].get("workers"))

    def per_rep(self, key: str) -> list[float]:
        """Per repetition: mean seconds per datum of `key`."""
        out = []
        for r in self.reps:
            n = r["datums"]
            parts = r["parts"]
            if self.workers and key in ("pod", "work", "podstart", "inwork", "loop",
                                        "bookkeeping", "floor", "own"):
                # since workers: per datum, what a worker pod spends on all of its datums
                work, start = sum(parts["work"]), sum(parts["prepare"]) + sum(parts["spawn"])
                floor = statistics.fmean(r["floors"]["bare"]) * r["pods"] / n
                out.append({"pod": sum(r["pod_s"]) / n, "work": work / n, "podstart": start / n,
                            "loop": statistics.fmean(parts["loop"]),
                            "inwork": (work - sum(parts["loop"])) / n,
                            "bookkeeping": (r["phase_s"] - work - start) / n,
                            "floor": floor, "own": r["phase_s"] / n - floor}[key])
            elif key == "datum":
                out.append(r["phase_s"] / r["datums"])
            elif key == "pod":
                out.append(statistics.fmean(r["pod_s"]))
            elif key in ("stage", "user", "publish", "spawn"):
                out.append(statistics.fmean(r["parts"][key]))
            elif key == "bookkeeping":
                parts = r["parts"]
                out.append(r["phase_s"] / r["datums"] - sum(
                    statistics.fmean(parts[k]) for k in ("stage", "user", "publish")))
            elif key in ("bare", "wrapped"):
                out.append(statistics.fmean(r["floors"][key]))
            elif key == "own":
                out.append(r["phase_s"] / r["datums"] - statistics.fmean(r["floors"]["bare"]))
            elif key == "cpu":
                out.append(r["cpu_s"] / r["datums"])
            elif key == "children":
                out.append(r["children_s"] / r["datums"])
            elif key == "others":
                out.append(max(0.0, r["machine_s"] - r["cpu_s"] - r["children_s"])
                           / r["phase_s"])
            else:
                raise KeyError(key)
        return out

    def singles(self, key: str) -> list[float]:
        """Every datum (or floor start) of every repetition."""
        if self.workers:
            if key == "loop":
                return [s for r in self.reps for s in r["parts"]["loop"]]
            return [s for r in self.reps for s in r["floors"]["bare"]] if key == "bare" else []
        if key == "pod":
            return [s for r in self.reps for s in r["pod_s"]]
        if key in ("bare", "wrapped"):
            return [s for r in self.reps for s in r["floors"][key]]
        if key in ("stage", "user", "publish", "spawn"):
            return [s for r in self.reps for s in r["parts"][key]]
        return []

    def median(self, key: str) -> float:
        return statistics.median(self.per_rep(key))


def run_overhead(children: Children, specs: Path, data: Path, pre_specs: Path, pre: Path,
                 files: int, reps: int, profile: bool) -> OverheadResult:
    base = {"specs": str(specs), "data": str(data), "pre_specs": str(pre_specs),
            "pre": str(pre), "floors": files}
    progress(f"overhead: warm-up run ({files} datums)")
    children.run("overhead", {**base, "floor_first": False})
    results = []
    for i in range(reps):
        floor_first = i % 2 == 1
        progress(f"overhead: run {i + 1}/{reps} ({files} datums, the floor "
                 f"{'before' if floor_first else 'after'} the run)")
        r = children.run("overhead", {**base, "floor_first": floor_first})
        if r["datums"] != files:
            raise MeasurementError(f"the overhead run counted {r['datums']} datums, not {files}")
        results.append(r)
    text = None
    if profile:
        progress("overhead: one more run under cProfile (every thread)")
        text = children.run("overhead", {**base, "floor_first": False,
                                         "profile": True})["profile"]
    return OverheadResult(files, results, text)


def run_scale(children: Children, work: Path, files: int) -> dict[str, Any]:
    """One run of the overhead pipeline over `files` files, no floor (information)."""
    scale = work / f"scale-{files}"
    scale.mkdir()
    specs, data = write_overhead_inputs(scale, files)
    progress(f"scaling: one run of {files} datums")
    r = children.run("overhead", {"specs": str(specs), "data": str(data), "floors": 0,
                                  "floor_first": False, "pre_specs": "", "pre": ""})
    if r["datums"] != files:
        raise MeasurementError(f"the scaling run counted {r['datums']} datums, not {files}")
    return r


@dataclass(frozen=True, slots=True)
class ModelResult:
    runs: dict[int, list[dict[str, Any]]]
    replay: dict[str, list[dict[str, float]]] | None  # "1" / "2" at a time -> rounds

    @property
    def workers(self) -> bool:
        return bool(self.runs[1][0].get("workers"))

    def walls(self, j: int) -> list[float]:
        return [r["phase_s"] for r in self.runs[j]]

    def median(self, j: int) -> float:
        return statistics.median(self.walls(j))

    def cores(self, j: int) -> list[float]:
        return [(r["cpu_s"] + r["children_s"]) / r["phase_s"] for r in self.runs[j]]

    def others(self, j: int) -> list[float]:
        """Cores the rest of the machine used meanwhile (all CPU time less the run's)."""
        return [max(0.0, r["machine_s"] - r["cpu_s"] - r["children_s"]) / r["phase_s"]
                for r in self.runs[j]]

    def in_flight(self, j: int) -> list[float]:
        """Pods running at once, on average over the datums phase (stage start to publish
        end of each datum, summed, over the phase's wall time; since workers, the worker
        pods' times as the executor gives them)."""
        if self.workers:
            return [sum(r["pod_s"]) / r["phase_s"] for r in self.runs[j]]
        return [sum(r["parts"]["span"]) / r["phase_s"] for r in self.runs[j]]

    def med(self, j: int, key: str) -> float:
        return float(statistics.median(r[key] for r in self.runs[j]))

    def part(self, j: int, key: str) -> float:
        """Median over all datums of all runs."""
        return float(statistics.median(s for r in self.runs[j] for s in r["parts"][key]))

    @property
    def speedup(self) -> float:
        return self.median(1) / self.median(2)


def run_model(children: Children, specs: Path, runs: int, replay: int) -> ModelResult:
    example = children.cwd / EXAMPLE
    values = {"shell": "/bin/bash", "python": "python3", "code": str(example / "code")}
    base = {"specs": str(specs), "data": str(example / "data"), "values": values}
    progress(f"model: warm-up run (-j 2), then {replay} starts of its first datum's user "
             "process, one and two at a time, twice")
    warm = children.run("model", {**base, "parallelism": 2, "replay": replay})
    out: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    order = [j for i in range(runs) for j in ((1, 2) if i % 2 == 0 else (2, 1))]
    for n, j in enumerate(order, 1):
        progress(f"model: run {n}/{len(order)} (-j {j})")
        r = children.run("model", {**base, "parallelism": j})
        if r["datums"] != MODEL_DATUMS:
            raise MeasurementError(f"model ran {r['datums']} datums, not {MODEL_DATUMS}")
        if r["other_events"]:
            raise MeasurementError(f"{r['other_events']} events of other pipelines during the "
                                   "model's datums phase")
        out[j].append(r)
    return ModelResult(out, warm.get("replay"))


def python3_facts() -> list[list[str]]:
    """What the model's datums run with: `python3` (and how fast it starts), /bin/sh."""
    python3 = shutil.which("python3") or "?"
    real = tool_output(["python3", "-c", "import sys; print(sys.executable)"])
    starts: dict[str, float] = {}
    for _ in range(10):  # alternately, the fastest of 10
        for exe in (python3, real):
            t0 = time.perf_counter()
            subprocess.run([exe, "-c", "pass"], check=True)
            starts[exe] = min(starts.get(exe, 1e9), time.perf_counter() - t0)
    return [["`python3` of the model's datums", f"{python3} (`python3 -c pass`: "
             f"{ms(starts[python3])}; the interpreter it runs, {real}: {ms(starts[real])}; "
             "fastest of 10)"],
            ["/bin/sh", os.path.realpath("/bin/sh")]]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


WORKER_LABELS = [
    ("datum", "**per datum: datums phase / N** (the worker's fan-out to its end)"),
    ("pod", "worker pod, as the executor times it (`finish` event), / N"),
    ("work", "`dsc runtime work` in-process, / N"),
    ("loop", "  of which a datum's turn in the user container's loop (go to done)"),
    ("inwork", "  the rest of `work`, / N: staging and publishing not overlapped, the "
     "worker's start and end"),
    ("podstart", "pod start: `prepare` + `HostRunner.start` of the loop, once a pod, / N"),
    ("bookkeeping", "bookkeeping: per datum - work - pod start"),
    ("bare", "floor: `unshare` + its namespaces + 2 bind mounts + `exec true`, one start"),
    ("floor", "**floor per datum**: one start a worker pod / its datums"),
    ("own", "**dsc's own part: per datum - floor per datum**"),
    ("cpu", "dsc process CPU per datum"),
    ("children", "children CPU per datum (the loop and what it ran)"),
]


def _overhead_section(o: OverheadResult) -> list[str]:
    if o.workers:
        return _overhead_workers_section(o)
    n = len(o.reps)
    out = [f"## 1. Executor overhead per datum: {o.files} datums of one 1 KiB file, "
           "`cmd: [true]`, one at a time", "",
           f"{n} runs, each in a fresh process after one untimed run; in each, {o.files} "
           "starts of the bare host-runner process and, interleaved, "
           f"{o.files} of the compiled user container, after the run in odd runs and before "
           "it in even ones. A row's `median`, `min` and `max` are over the runs, of each "
           "run's mean per datum; `single datums` are over every datum (or start) of every "
           "run.", ""]
    labels = [
        ("datum", "**per datum: datums phase / N** (fan-out to the last datum's end)"),
        ("pod", "pod, as the executor times it (`finish` event)"),
        ("stage", "stage: `dsc runtime stage` in-process"),
        ("user", "user: the host runner's process, start to exit"),
        ("spawn", "  of which `HostRunner.start` (mkdir, log file, `Popen`)"),
        ("publish", "publish: `dsc runtime publish` in-process"),
        ("bookkeeping", "bookkeeping: per datum - stage - user - publish"),
        ("bare", "**floor**: `unshare` + 2 bind mounts + `exec true`"),
        ("wrapped", "info: the compiled user container started bare (floor + dsc's sh "
         "wrapper)"),
        ("own", "**dsc's own part: per datum - floor**"),
        ("cpu", "dsc process CPU per datum"),
        ("children", "children CPU per datum (reaped user processes)"),
    ]
    return out + _overhead_rows(
        o, labels, "The user process the host runner started for the first datum of the "
        "first run (the compiled container: dsc's wrapper, then `true`):")


def _overhead_workers_section(o: OverheadResult) -> list[str]:
    n = len(o.reps)
    out = [f"## 1. Executor overhead per datum: {o.files} datums of one 1 KiB file, "
           "`cmd: [true]`, one worker", "",
           f"{n} runs, each in a fresh process after one untimed run; in each, {o.files} "
           "starts of the bare host-runner process, after the run in odd runs and before it "
           "in even ones. Since workers one worker pod (`parallelism_spec: {constant: 1}`) "
           "processes every datum: `prepare`, then its user container (the worker loop, "
           "started once) beside `dsc runtime work`, which stages each datum, hands it to the "
           "loop and publishes it. So the floor, one start of the runner's process, is paid "
           "once a pod, not once a datum. A row's `median`, `min` and `max` are over the runs, "
           "of each run's mean per datum; `single datums` are over every datum (or start) of "
           "every run.", ""]
    return out + _overhead_rows(
        o, WORKER_LABELS, "The user container the host runner started for the worker of the "
        "first run (the worker loop, which runs `true` for each datum):")


def _overhead_rows(o: OverheadResult, labels: list[tuple[str, str]], started: str
                   ) -> list[str]:
    """The per-datum table, the phases outside the datums, the user process as `started`
    says, and the profile: what both executors' overhead sections show."""
    rows = []
    for key, label in labels:
        values = o.per_rep(key)
        singles = o.singles(key)
        rows.append([label, ms(statistics.median(values)), ms(min(values)), ms(max(values)),
                     f"{ms(statistics.median(singles))} / {ms(percentile(singles, 90))}"
                     if singles else "-"])
    out = table(["per datum", "median", "min", "max", "single datums: median / p90"], rows)
    first = o.reps[0]
    opened = statistics.median(r["open_s"] for r in o.reps)
    commit = statistics.median(r["commit_s"] for r in o.reps)
    compiled = statistics.median(r["compile_s"] for r in o.reps)
    out += ["", f"Outside the datums phase (medians): compile {ms(compiled)}, open "
            f"{ms(opened)}, commit {ms(commit)}; the whole graph "
            f"{statistics.median(r['run_s'] for r in o.reps):.2f} s. Retries: "
            f"{sum(r['retries'] for r in o.reps)}. Other processes used "
            f"{statistics.median(o.per_rep('others')):.2f} cores of the machine during the "
            "datums phase (median).", "", started, "", "```",
            shlex.join(first["user_argv"])[:1500], "```", ""]
    if o.profile:
        for key, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
            out += [f"cProfile of one more run (every thread, merged; the profiler inflates "
                    f"per-call costs), by {title}:", "", "```", o.profile[key], "```", ""]
    return out


def _tenths(reps: list[dict[str, Any]], key: str) -> str:
    """Median of the first and of the last tenth of the datums (in the order they ran),
    pooled over the runs."""
    first: list[float] = []
    last: list[float] = []
    for r in reps:
        values = r["parts"][key]
        tenth = max(1, len(values) // 10)
        first += values[:tenth]
        last += values[-tenth:]
    return f"{ms(statistics.median(first))} / {ms(statistics.median(last))}"


def _scale_section(o: OverheadResult, scale: dict[str, Any]) -> list[str]:
    out = [f"## 1b. Information: the same pipeline over {scale['datums']:,} files", "",
           f"One run of {scale['datums']:,} datums beside the {o.files}-datum runs above (their "
           "figures pooled). Stage and publish: medians of the first and of the last tenth of "
           "the datums, in the order they ran.", ""]
    if o.workers:
        out[-2] = (f"One run of {scale['datums']:,} datums beside the {o.files}-datum runs "
                   "above (their figures pooled). The loop: the medians of the first and of "
                   "the last tenth of the datums, in the order they ran; work: the worker's "
                   "`work` call, per datum.")
        rows = []
        for label, reps in ((f"{o.files:,} ({len(o.reps)} runs)", o.reps),
                            (f"{scale['datums']:,} (1 run)", [scale])):
            per = statistics.median(r["phase_s"] / r["datums"] for r in reps)
            work = statistics.median(sum(r["parts"]["work"]) / r["datums"] for r in reps)
            whole = statistics.median((r["phase_s"] + r["commit_s"] + r["open_s"])
                                      / r["datums"] for r in reps)
            rows.append([label, ms(per), ms(work), _tenths(reps, "loop"),
                         ms(statistics.median(r["open_s"] for r in reps)),
                         f"{statistics.median(r['commit_s'] for r in reps):.2f} s", ms(whole)])
        out += table(["datums", "per datum", "work / datum", "loop: first / last tenth",
                      "open", "commit", "(open + datums + commit) / N"], rows)
        return [*out, ""]
    rows = []
    for label, reps in ((f"{o.files:,} ({len(o.reps)} runs)", o.reps),
                        (f"{scale['datums']:,} (1 run)", [scale])):
        per = statistics.median(r["phase_s"] / r["datums"] for r in reps)
        commit = statistics.median(r["commit_s"] for r in reps)
        opened = statistics.median(r["open_s"] for r in reps)
        whole = statistics.median((r["phase_s"] + r["commit_s"] + r["open_s"]) / r["datums"]
                                  for r in reps)
        user = statistics.median(s for r in reps for s in r["parts"]["user"])
        rows.append([label, ms(per), _tenths(reps, "stage"), ms(user),
                     _tenths(reps, "publish"), ms(opened), f"{commit:.2f} s", ms(whole)])
    out += table(["datums", "per datum", "stage: first / last tenth", "user",
                  "publish: first / last tenth", "open", "commit",
                  "(open + datums + commit) / N"], rows)
    return [*out, ""]


def _model_section(m: ModelResult) -> list[str]:
    out = ["## 2. The 77-datum `model` step, `-j 1` against `-j 2`", "",
           "The model's datums phase alone (fan-out to the last datum's end; no other "
           "pipeline runs meanwhile, checked), each run in a fresh process, alternating. CPU: "
           "the dsc process's own (executor, in-process stage and publish) and its reaped "
           "children's (unshare, bash, python3 pytrain.py per datum); utilisation = both / "
           "wall. Pods in flight: the datums' stage-start-to-publish-end spans summed, over "
           "the wall time. Other processes: the machine's CPU time (/proc/stat) less the "
           "run's, in cores. Per datum: medians over every datum of every run.", ""]
    if m.workers:
        out[2] = ("The model's datums phase alone (the fan-out of its two worker pods to the "
                  "last one's end; no other pipeline runs meanwhile, checked), each run in a "
                  "fresh process, alternating. Since workers the model has "
                  "`parallelism_spec: {constant: 2}`: two worker pods share the 77 datums, "
                  "and `-j` says whether they run one after the other or at once. CPU: the "
                  "dsc process's own (executor, in-process `work`) and its reaped children's "
                  "(unshare, the worker loops and what they ran: cp, cat, `python3 "
                  "pytrain.py`); utilisation = both / wall. Pods in flight: the worker pods' "
                  "times summed, over the wall time. Other processes: the machine's CPU time "
                  "(/proc/stat) less the run's, in cores. Loop / datum: a datum's turn in "
                  "the loop (`FifoLoop.run`: go to done), median over every datum of every "
                  "run.")
    rows = []
    for j in (1, 2):
        walls, cores = m.walls(j), m.cores(j)
        phase = m.med(j, "phase_s")
        if m.workers:
            rows.append([f"-j {j}", str(len(walls)), f"{statistics.median(walls):.2f} s",
                         f"{min(walls):.2f} / {max(walls):.2f} s",
                         f"{MODEL_DATUMS / phase:.1f}/s",
                         f"{m.med(j, 'cpu_s'):.2f} s", f"{m.med(j, 'children_s'):.2f} s",
                         f"**{statistics.median(cores):.2f}** "
                         f"({min(cores):.2f}-{max(cores):.2f})",
                         f"{statistics.median(m.in_flight(j)):.2f}",
                         f"{statistics.median(m.others(j)):.2f}", ms(m.part(j, "loop"))])
            continue
        rows.append([f"-j {j}", str(len(walls)), f"{statistics.median(walls):.2f} s",
                     f"{min(walls):.2f} / {max(walls):.2f} s",
                     f"{MODEL_DATUMS / phase:.1f}/s",
                     f"{m.med(j, 'cpu_s'):.2f} s", f"{m.med(j, 'children_s'):.2f} s",
                     f"**{statistics.median(cores):.2f}** ({min(cores):.2f}-{max(cores):.2f})",
                     f"{statistics.median(m.in_flight(j)):.2f}",
                     f"{statistics.median(m.others(j)):.2f}",
                     ms(m.part(j, "user")), ms(m.part(j, "stage")), ms(m.part(j, "publish"))])
    out += table(["setting", "runs", "median wall", "min / max", "datums", "dsc CPU",
                  "children CPU", "cores used", "pods in flight", "other processes (cores)",
                  *(["loop / datum"] if m.workers else
                    ["user process / datum", "stage / datum", "publish / datum"])], rows)
    pairs = [a["phase_s"] / b["phase_s"] for a, b in zip(m.runs[1], m.runs[2], strict=False)]
    out += ["", f"Speedup -j 1 / -j 2 (ratio of the medians): **{m.speedup:.2f}x**; per pair "
            f"{min(pairs):.2f}x to {max(pairs):.2f}x.", ""]
    if m.replay is None:
        return [*out, "The ceiling without dsc (a datum's user process started again bare, one "
                "and two at a time) is not available since workers: the user container is "
                "the worker loop, which waits for `dsc runtime work` on its FIFOs, and the "
                "pod's /pfs holds no datum when it starts.", ""]
    one, two = m.replay["1"], m.replay["2"]
    out += ["The ceiling without dsc: the user process of the model's first datum (unshare, "
            "the mounts, dsc's wrapper, bash running the spec's stdin: cp, cat, `python3 "
            "pytrain.py`), started again from one process of this script the way the host "
            f"runner starts it, on copies of that datum's /pfs: {one[0]['starts']} starts one "
            f"after the other, then two threads of {two[0]['starts'] // 2} starts side by side; "
            f"{len(one)} rounds, medians (in the warm-up run's process, after its run).", ""]
    rows = []
    for label, rounds in (("one at a time", one), ("two at a time", two)):
        slot = statistics.median(r["wall_s"] / r["starts"] for r in rounds)
        per = statistics.median(r["wall_s"] / r["starts"] * (2 if rounds is two else 1)
                                for r in rounds)
        rows.append([label, ms(slot), ms(per),
                     ms(statistics.median(r["cpu_s"] / r["starts"] for r in rounds)),
                     f"{statistics.median(r['cpu_s'] / r['wall_s'] for r in rounds):.2f}",
                     f"{statistics.median(r['machine_s'] / r['wall_s'] for r in rounds):.2f}"])
    out += table(["user process started bare", "wall per datum (throughput)",
                  "wall of one start", "CPU per start", "cores used", "machine busy (cores)"],
                 rows)
    ceiling = (statistics.median(r["wall_s"] / r["starts"] for r in one)
               / statistics.median(r["wall_s"] / r["starts"] for r in two))
    out += ["", f"Two at a time against one at a time, without dsc: **{ceiling:.2f}x**.", ""]
    return out


def report(facts: list[list[str]], o: OverheadResult | None, scale: dict[str, Any] | None,
           m: ModelResult | None, changed: bool, quick: bool) -> str:
    out = report_head("dsc run benchmark", facts, changed=changed)
    if quick:
        out += ["**Smoke sizes (`--quick`): the verdicts are indicative only.**", ""]
    if o is not None:
        out += _overhead_section(o)
        if scale is not None:
            out += _scale_section(o, scale)
    if m is not None:
        out += _model_section(m)
    rows = []
    if o is not None:
        datum, own = o.median("datum"), o.median("own")
        floor = o.median("floor") if o.workers else o.median("bare")
        rows.append([f"1 executor overhead per datum (stage + publish + bookkeeping), "
                     f"empty command, {o.files} datums "
                     f"{'one worker' if o.workers else 'one at a time'}: per datum - floor",
                     f"<= {TARGET_OVERHEAD_MS:g} ms",
                     f"{ms(own)} ({ms(datum)} per datum - {ms(floor)} floor)",
                     verdict(own <= TARGET_OVERHEAD_MS / 1000)])
    if m is not None:
        cores = statistics.median(m.cores(2))
        rows.append(["2 model step, 77 datums, `-j 2`: cores used (CPU / wall)",
                     f"> {TARGET_CORES:g}", f"{cores:.2f} (`-j 1`: "
                     f"{statistics.median(m.cores(1)):.2f})", verdict(cores > TARGET_CORES)])
        rows.append(["2 model step: speedup, wall `-j 1` / `-j 2`",
                     f">= {TARGET_SPEEDUP:g}x", f"{m.speedup:.2f}x ({m.median(1):.2f} s / "
                     f"{m.median(2):.2f} s)", verdict(m.speedup >= TARGET_SPEEDUP)])
    out += targets(rows)
    return "\n".join(out) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure dsc run against its performance targets (the executor's "
        "overhead per datum with an empty command, against the cost of starting the host "
        "runner's process; the seed demo's 77-datum model step with -j 1 and -j 2) and print "
        "a Markdown report. Exit status is 0 even when a target is missed; 2 on a "
        "measurement error.")
    parser.add_argument("--files", type=int,
                        help="datums of the overhead pipeline (default: 200; 30 with --quick)")
    parser.add_argument("--runs", type=int,
                        help="overhead runs (default: 5; 2 with --quick)")
    parser.add_argument("--model-runs", type=int,
                        help="model runs of each -j setting (default: 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke sizes: about 30 s instead of about 4 min")
    parser.add_argument("--scale-files", type=int,
                        help="information: one more overhead run over this many files, to see "
                        "what grows with N (default: 1000; 0: none; none with --quick)")
    parser.add_argument("--only", choices=("overhead", "model"), action="append",
                        help="run only this case (default: both)")
    parser.add_argument("--profile", action="store_true",
                        help="add a cProfile of one more overhead run (every thread)")
    add_run_options(parser, rev=EXPORTED)
    args = parser.parse_args(argv)
    args.files = args.files or (30 if args.quick else 200)
    args.runs = args.runs or (2 if args.quick else 5)
    args.model_runs = args.model_runs or (1 if args.quick else 3)
    if args.scale_files is None:
        args.scale_files = 0 if args.quick else 1000
    if min(args.files, args.runs, args.model_runs) < 1:
        parser.error("--files, --runs and --model-runs must be >= 1")
    args.only = args.only or ["overhead", "model"]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    python = str(args.venv / "bin" / "python")
    if missing_executables(python):
        return 2
    exported: list[Path] = []  # the exported sources, removed with the work directory

    def run(work: Path) -> str:
        env = cached_env(work)  # as a pip-installed dsc reads .pyc
        facts = machine_facts(python, paths=EXPORTED, rev=args.rev, extra=python3_facts())
        cwd = REPO
        if args.rev is not None:
            source = Path(tempfile.mkdtemp(prefix="dsc-local-bench-src-", dir=SOURCE_PARENT))
            exported.append(source)
            cwd = export(args.rev, source, EXPORTED)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), env.get("PYTHONPATH"))
                                                if p)
        digest = source_digest(cwd)
        children = Children(python, work, env, cwd)
        overhead = scale = model = None
        if "overhead" in args.only:
            specs, data = write_overhead_inputs(work, args.files)
            pre = work / "pre"
            pre.mkdir()
            pre_specs, pre_data = write_overhead_inputs(pre, 1)
            overhead = run_overhead(children, specs, data, pre_specs, pre_data, args.files,
                                    args.runs, args.profile)
            if args.scale_files:
                scale = run_scale(children, work, args.scale_files)
        if "model" in args.only:
            model = run_model(children, write_model_inputs(work, cwd), args.model_runs,
                              5 if args.quick else 20)
        return report(facts, overhead, scale, model, source_digest(cwd) != digest,
                      args.quick)

    return run_report(args, "dsc-local-bench-", run, also=exported, timed=True)


if __name__ == "__main__":
    if sys.argv[1:3] == ["--child", "overhead"]:
        sys.exit(overhead_main(json.loads(sys.argv[3])))
    if sys.argv[1:3] == ["--child", "model"]:
        sys.exit(model_main(json.loads(sys.argv[3])))
    sys.exit(main())
