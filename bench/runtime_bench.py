"""Measure the three performance targets of the `dsc runtime` issue (issue 5) against the lakeFS
stand-in and print a Markdown report.

1. Stage: one datum of 1,000 small objects (input glob `/` over a repo of 1,000 random 4 KiB
   files) staged with parallel transfers (DSC_TRANSFERS=8, the default) and one at a time
   (DSC_TRANSFERS=1), alternately, each run into a fresh DSC_PFS. Target: 8 transfers at least
   3x faster than 1 (ratio of the medians).
2. Publish: a 1 GiB file of random bytes in DSC_PFS/out. Target: the publishing process's peak
   RSS under 100 MiB. Beside it, for scale: a publish of a tiny file and `dsc runtime --help`.
3. Open: an input repo of 100,000 objects in 1,000 directories, glob `/*` (1,000 datums).
   Target: `open` lists, plans and stores the plan in at most 10 s.

Since workers (0f9982f) there is no `stage` or `publish` verb: a worker pod's `dsc runtime
work` stages each datum, hands it to the user container's loop and publishes its output. At
such a revision cases 1 and 2 time `work` over one datum instead (a new job each run: an
untimed `open` under a new run name, `dsc runtime prepare`, the loop started with /bin/sh in
DSC_PFS as the user container), its time what the worker logs; the datum's user code counts
the staged files (1) or hard-links the 1 GiB file into /pfs/out (2). At a revision before,
the verbs are timed as they were.

Every verb runs as the real CLI (`python -m compiler runtime <verb> ...`) in a fresh process,
started by the fork/exec/wait4 wrapper of `harness.py`, so its wall time and peak RSS are its
own. The times judged are what the verb itself logs ("... in X s": from the verb's start, after
the interpreter, the imports and the lakeFS client are up, to its end), so the ~0.5 s import of
lakefs-sdk does not blur the comparisons; the process walls are reported beside them.

The stand-in (`tests/lakefs_standin`) runs in a process of its own, started by this script in
a child mode (`--serve`), which also seeds its repositories directly (no HTTP) and compiles the
specs (untimed). It validates every request with openapi-core, and every response unless told
not to (`validate_responses=False`); it can add a fixed delay to every request (`latency`), as
a network would. The script runs up to three stand-ins: `defaults` (what the issue names: every
request and response validated, no delay), `unvalidated responses`, and, for information only,
`defaults + latency`.

The script writes nothing in the repository: specs, /pfs directories, the 1 GiB file, the
stand-in's spilled blobs and the bytecode cache go to a temporary directory, removed at the end
(`--keep` keeps it). It exits 0 whether or not a target is met (each is reported PASS or MISS)
and 2 when a measurement could not be made (a verb failing, files missing after a stage, a
published object with the wrong size or checksum, too little disk space).

Run it with `.venv/bin/python bench/runtime_bench.py` from the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    MeasurementError,
    ProcessStats,
    add_run_options,
    cached_env,
    export,
    machine_facts,
    mib,
    missing_executables,
    progress,
    rel,
    report_head,
    run_measured,
    run_report,
    sec,
    source_digest,
    table,
    targets,
    trim_profile,
    verdict,
)

TARGET_STAGE_RATIO = 3.0
TARGET_PUBLISH_MIB = 100
TARGET_OPEN_S = 10.0

STAGE_FILES = 1000
STAGE_FILE_BYTES = 4096
PUBLISH_BYTES = 1 << 30
OPEN_DIRS, OPEN_FILES_PER_DIR = 1000, 100
# lakeFS's API, beside the repository (as tests/lakefs_standin/fixtures.py finds it)
SWAGGER = REPO.parent / "shared" / "reference" / "lakefs" / "swagger.yml"
PARTS_RUNS = 3  # of the open breakdown, in one process

CASES = ("stage", "publish", "open")
# What `--rev` exports: the package, the schemas it reads, the stand-in and the test harness.
EXPORTED = ("compiler", "schemas", "tests")
WATCHED = ("compiler", "tests")  # the sources of what runs, digested to notice a change


@dataclass(frozen=True, slots=True)
class StandinConfig:
    key: str
    title: str
    validate_responses: bool
    latency_s: float
    info: bool  # not the condition: reported, not judged


def standin_configs(latency_ms: float) -> dict[str, StandinConfig]:
    return {c.key: c for c in (
        StandinConfig("defaults", "stand-in defaults: every request and response validated, "
                      "no added latency", True, 0.0, False),
        StandinConfig("unvalidated", "responses not validated (`validate_responses=False`); "
                      "requests still are", False, 0.0, False),
        StandinConfig("latency", f"defaults + `latency={latency_ms / 1000:g}` (a {latency_ms:g} ms "
                      "delay on every request, as a network or object store adds)", True,
                      latency_ms / 1000, True))}


# --------------------------------------------------------------------------------------------
# Child modes: the stand-in server (`--serve OPTIONS`) and the open breakdown (`--child ...`).
# Both run with the repository (or the exported revision) as their working directory.


def _reply(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def serve_main(options: dict[str, Any]) -> int:
    """A stand-in in this process, driven by JSON lines on stdin; one JSON line back for each."""
    sys.path.insert(0, os.getcwd())
    from tests.lakefs_standin import LakeFSStandIn

    standin = LakeFSStandIn(Path(options["swagger"]),
                            validate_responses=options["validate_responses"],
                            latency=options["latency"]).start()
    _reply({"endpoint": standin.endpoint, "access_key_id": standin.access_key_id,
            "secret_access_key": standin.secret_access_key})
    try:
        for line in sys.stdin:
            command = json.loads(line)
            try:
                _reply(_serve_command(standin, command))
            except Exception as exc:  # answered, so the driver can report it
                _reply({"error": f"{type(exc).__name__}: {exc}"})
            if command["op"] == "stop":
                break
    finally:
        standin.stop()
    return 0


def _serve_command(standin: Any, command: dict[str, Any]) -> dict[str, Any]:
    op = command["op"]
    if op == "seed":
        started = time.perf_counter()
        kind = command["kind"]
        if kind == "random":
            files = {f"file-{i:04d}.bin": os.urandom(command["size"])
                     for i in range(command["count"])}
        elif kind == "tree":
            per = command["per_dir"]
            files = {f"dir-{i // per:04d}/file-{i % per:03d}.txt": b"%d\n" % i
                     for i in range(command["dirs"] * per)}
        else:
            files = {}
        commit = standin.seed(command["repo"], files)
        return {"commit": commit, "objects": len(files),
                "seconds": time.perf_counter() - started}
    if op == "compile":
        from tests.runtime.harness import compiled_steps

        specs = Path(command["dir"])
        specs.mkdir(parents=True, exist_ok=True)
        spec = {"pipeline": {"name": command["pipeline"]},
                "transform": {"image": "busybox:1", "cmd": command.get("cmd") or ["true"]},
                "input": {"pfs": {"repo": command["input_repo"], "glob": command["glob"]}}}
        (specs / f"{command['pipeline']}.json").write_text(json.dumps(spec), encoding="utf-8")
        steps, _abort = compiled_steps(specs)
        step = steps[command["pipeline"]]
        return {"job": step.job, "repo": step.repo}
    if op == "stat":
        with standin.store.lock:
            store = standin.store
            entry = store.resolve(store.repository(command["repo"]),
                                  command["ref"]).get(command["path"])
        return {"size": entry.size, "checksum": entry.checksum} if entry else {"size": None}
    if op == "cpu":  # this process's CPU time, every handler thread included
        return {"cpu_s": time.process_time()}
    if op == "stats":
        return {"requests": len(standin.requests), "problems": standin.problems()}
    if op == "stop":
        return {"stopped": True}
    raise ValueError(f"unknown command {op!r}")


def open_parts_main(args: dict[str, Any]) -> int:
    """Time the parts of `open` in this process: the listing through the adapter and
    planning the in-memory listing."""
    sys.path.insert(0, os.getcwd())
    from compiler.contract.job import Job
    from compiler.lakefs.client import LakeFS
    from compiler.runtime import verbs
    from compiler.runtime.job import Context, Run

    lakefs = LakeFS(args["endpoint"], args["access_key_id"], args["secret_access_key"])
    job = Job.parse(args["job"])
    leaf, = job.leaves
    commit = lakefs.head(leaf.lakefs_repo, job.branch_of(leaf))
    run = Run.from_environment({"DSC_RUN": "open-parts", "DSC_PFS": args["tmp"],
                                "DSC_OUTPUT_DIR": args["tmp"]})
    out: dict[str, Any] = {"list": [], "plan": []}

    class Listed:
        """The adapter's `objects`, answered from memory: planning alone."""

        def __init__(self, infos: list[Any]) -> None:
            self.infos = infos

        def objects(self, repo: str, ref: str, prefix: str = "") -> Any:
            return iter(self.infos)

    for _ in range(args["runs"]):
        t0 = time.perf_counter()
        listed = list(lakefs.objects(leaf.lakefs_repo, commit))
        t1 = time.perf_counter()
        ctx = Context(Listed(listed), run, lambda _line: None)  # type: ignore[arg-type]
        t2 = time.perf_counter()
        plan = verbs._plan(ctx, job, {leaf.name: commit})
        t3 = time.perf_counter()
        out["list"].append(t1 - t0)
        out["plan"].append(t3 - t2)
        out["objects"], out["datums"] = len(listed), len(plan)
    if args["profile"]:
        import cProfile
        import io
        import pstats

        ctx = Context(lakefs, Run.from_environment({
            "DSC_RUN": "open-profile", "DSC_PFS": args["tmp"], "DSC_OUTPUT_DIR": args["tmp"]}),
            lambda _line: None)
        profiler = cProfile.Profile()
        t0 = time.perf_counter()
        profiler.enable()
        verbs.open_job(ctx, args["job"], [])
        profiler.disable()
        out["profile_s"] = time.perf_counter() - t0
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(14)
        out["profile"] = trim_profile(text.getvalue())
    _reply(out)
    return 0


# --------------------------------------------------------------------------------------------
# The driver


class Standin:
    """A stand-in in its own process (this script's `--serve` mode)."""

    def __init__(self, config: StandinConfig, python: str, work: Path, env: dict[str, str],
                 cwd: Path) -> None:
        self.config = config
        spill = work / f"standin-{config.key}"  # where it spills large blobs
        spill.mkdir()
        options = json.dumps({"swagger": str(SWAGGER),
                              "validate_responses": config.validate_responses,
                              "latency": config.latency_s})
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--serve", options], cwd=cwd,
            env={**env, "TMPDIR": str(spill)}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        hello = self._read()
        self.endpoint = hello["endpoint"]
        self.credentials = {"LAKEFS_ENDPOINT": hello["endpoint"],
                            "LAKEFS_ACCESS_KEY_ID": hello["access_key_id"],
                            "LAKEFS_SECRET_ACCESS_KEY": hello["secret_access_key"]}

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise MeasurementError(f"the stand-in ({self.config.key}) exited "
                                   f"{self.proc.wait()} before answering")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise MeasurementError(f"the stand-in ({self.config.key}): {answer['error']}")
        return answer

    def ask(self, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def stop(self) -> list[str]:
        """Stop it; the contract violations and crashes it saw (none expected)."""
        if self.proc.poll() is not None:
            return []
        try:
            problems: list[str] = self.ask("stats")["problems"]
            self.ask("stop")
        except (MeasurementError, OSError, ValueError):
            problems = []
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return problems


@dataclass(frozen=True, slots=True)
class VerbRun:
    process: ProcessStats
    verb_s: float  # what the verb logged: "... in X s"
    line: str
    standin_cpu_s: float  # the stand-in process's CPU time meanwhile


@dataclass(slots=True)
class Runs:
    label: str
    runs: list[VerbRun] = field(default_factory=list)

    @property
    def verb_median(self) -> float:
        return statistics.median(r.verb_s for r in self.runs)

    @property
    def verb_min(self) -> float:
        return min(r.verb_s for r in self.runs)

    @property
    def verb_max(self) -> float:
        return max(r.verb_s for r in self.runs)

    @property
    def wall_median(self) -> float:
        return statistics.median(r.process.wall_s for r in self.runs)

    @property
    def cpu_median(self) -> float:
        return statistics.median(r.process.cpu_s for r in self.runs)

    @property
    def standin_cpu_median(self) -> float:
        return statistics.median(r.standin_cpu_s for r in self.runs)

    @property
    def rss_median_kib(self) -> float:
        return statistics.median(r.process.maxrss_kib for r in self.runs)

    @property
    def rss_peak_kib(self) -> int:
        return max(r.process.maxrss_kib for r in self.runs)


class Driver:
    def __init__(self, python: str, work: Path, cwd: Path, env: dict[str, str]) -> None:
        self.python = python
        self.work = work
        self.cwd = cwd
        self.env = env
        self.count = 0
        # Since workers (0f9982f) a job's datums are processed by `dsc runtime work`, not by
        # `stage` and `publish` per datum: which of the two the measured source has.
        self.workers = (cwd / "compiler" / "runtime" / "worker.py").is_file()

    def run(self, standin: Standin | None, argv: list[str], extra: dict[str, str],
            verb: str | None, pattern: str | None = None) -> VerbRun:
        """One fresh process; with `verb`, its log line "<verb> ... in X s" is required
        (`pattern`, when given: a line matching it, whose group 1 is the seconds)."""
        self.count += 1
        out, err = self.work / f"run{self.count}.out", self.work / f"run{self.count}.err"
        env = {**self.env, **(standin.credentials if standin else {}), **extra}
        what = "dsc " + shlex.join(argv[:2])
        cpu0 = standin.ask("cpu")["cpu_s"] if standin else 0.0
        sample = run_measured([self.python, "-m", "compiler", *argv], out, err, cwd=self.cwd,
                              env=env, what=what)
        standin_cpu = standin.ask("cpu")["cpu_s"] - cpu0 if standin else 0.0
        text = err.read_text(errors="replace")
        if sample.exit_code != 0:
            raise MeasurementError(f"{what} exited {sample.exit_code}: {text.strip()[-800:]}")
        if verb is None:
            return VerbRun(sample, 0.0, "", standin_cpu)
        for line in text.splitlines():
            m = re.fullmatch(pattern or rf"{verb} .* in (\d+(?:\.\d+)?) s(?:;.*)?", line)
            if m:
                return VerbRun(sample, float(m.group(1)), line, standin_cpu)
        raise MeasurementError(f"{what}: no `{verb} ... in X s` line in its log: "
                               f"{text.strip()[-400:]}")

    def open_job(self, standin: Standin, job: str, run_name: str) -> tuple[VerbRun, str, str]:
        """`dsc runtime open`; returns the run, the job branch and the first datum key (before
        workers, from OUT/datums.json) or, since, "" (OUT/workers.json must name one worker
        at least)."""
        params = self.work / f"params-{run_name}"
        r = self.run(standin, ["runtime", "open", "--job", job],
                     {"DSC_RUN": run_name, "DSC_RUN_UID": run_name,
                      "DSC_PFS": str(self.work / "pfs-open"), "DSC_OUTPUT_DIR": str(params)},
                     "open")
        branch = (params / "branch").read_text().strip()
        if (params / "datums.json").is_file():
            key = json.loads((params / "datums.json").read_text())[0]
        else:
            workers = json.loads((params / "workers.json").read_text())
            if not workers:
                raise MeasurementError(f"open of {run_name} gave no worker: {r.line}")
            key = ""
        shutil.rmtree(params)
        return r, branch, key

    def work_job(self, standin: Standin, job: str, pipeline: str, cmd: list[str],
                 run_name: str, extra: dict[str, str],
                 loop_env: dict[str, str]) -> tuple[VerbRun, str, str, int]:
        """A job of one worker as its pod runs it: `open` (untimed), `dsc runtime prepare`
        into a fresh DSC_PFS, the user container's loop (compiler.contract.LOOP, run by
        /bin/sh in DSC_PFS with `loop_env`, running the spec's `cmd`), and, timed, `dsc
        runtime work --worker 0` in a fresh process. Returns the work run (its time: what the
        worker logs, "worker 0/1 of P: ... done ... in X s"), the job branch, the worker's
        log and the requests the stand-in served during `work`."""
        _, branch, _ = self.open_job(standin, job, run_name)
        pfs = Path(tempfile.mkdtemp(prefix="pfs-", dir=self.work))
        env = {**self.env, "DSC_RUN": run_name, "DSC_RUN_UID": run_name, "DSC_PFS": str(pfs)}
        try:
            prepared = subprocess.run([self.python, "-m", "compiler", "runtime", "prepare"],
                                      cwd=self.cwd, env=env, capture_output=True, text=True,
                                      check=False)
            if prepared.returncode != 0:
                raise MeasurementError(f"dsc runtime prepare exited {prepared.returncode}: "
                                       f"{prepared.stderr.strip()[-400:]}")
            loop = subprocess.Popen(
                ["/bin/sh", str(pfs / ".dsc-worker" / "loop.sh"), str(len(cmd)), *cmd],
                cwd=pfs, env={**self.env, **loop_env}, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                before = standin.ask("stats")["requests"]
                argv = ["runtime", "work", "--pipeline", pipeline, "--repo", pipeline,
                        "--job-branch", branch, "--worker", "0"]
                r = self.run(standin, argv, {"DSC_RUN": run_name, "DSC_RUN_UID": run_name,
                                             "DSC_PFS": str(pfs),
                                             "DSC_OUTPUT_DIR": str(self.work / "params"),
                                             **extra}, "work",
                             r"worker 0/1 of \S+: .* done \(.*\) in (\d+(?:\.\d+)?) s")
                requests = standin.ask("stats")["requests"] - before
                loop.wait(timeout=60)  # `work` closed `go`: the loop ends
            finally:
                if loop.poll() is None:
                    os.killpg(loop.pid, 9)
                    loop.wait()
            text = (self.work / f"run{self.count}.err").read_text(errors="replace")
        finally:
            shutil.rmtree(pfs, ignore_errors=True)
        return r, branch, text, requests


def datum_argv(verb: str, pipeline: str, repo: str, branch: str, key: str) -> list[str]:
    return ["runtime", verb, "--pipeline", pipeline, "--repo", repo, "--job-branch", branch,
            "--datum", key]


# --- 1. stage ---------------------------------------------------------------------------------

@dataclass(slots=True)
class StageResult:
    config: StandinConfig
    parallel: Runs
    serial: Runs
    requests_per_run: int
    command: str
    workers: bool = False  # measured through `work` (since workers), not `stage`

    @property
    def ratio(self) -> float:
        return self.serial.verb_median / self.parallel.verb_median

    @property
    def pair_ratios(self) -> list[float]:
        return [s.verb_s / p.verb_s for s, p in zip(self.serial.runs, self.parallel.runs,
                                                    strict=True)]


# Since workers, the datum's user code (run by the loop in DSC_PFS) says what was staged, so
# that a run is checked though the worker removes the datum's files once it is published.
STAGE_CMD = ["sh", "-c", 'echo "staged $(find smallfiles -type f | wc -l) '
             '$(find smallfiles -type f -size 4096c | wc -l)"']


def prepare_stage(standin: Standin, work: Path, cmd: list[str] | None = None) -> str:
    standin.ask("seed", repo="smallfiles", kind="random", count=STAGE_FILES,
                size=STAGE_FILE_BYTES)
    standin.ask("seed", repo="stagebench", kind="empty")
    job: str = standin.ask("compile", dir=str(work / f"specs-stage-{standin.config.key}"),
                           pipeline="stagebench", input_repo="smallfiles", glob="/",
                           cmd=cmd)["job"]
    return job


def run_stage_work(driver: Driver, standin: Standin, runs: int) -> StageResult:
    """Stage since workers: one worker's `work` over the one datum, DSC_TRANSFERS 8 and 1.
    A worker skips the datums its run has published, so each run is a new job (an untimed
    `open` under a new run name)."""
    label = standin.config.key
    progress(f"stage, stand-in `{label}`: seeding {STAGE_FILES:,} objects")
    job = prepare_stage(standin, driver.work, STAGE_CMD)
    series = {8: Runs("DSC_TRANSFERS=8"), 1: Runs("DSC_TRANSFERS=1")}
    count = 0
    requests = 0

    def once(transfers: int) -> VerbRun:
        nonlocal count, requests
        count += 1
        r, _branch, text, requests = driver.work_job(
            standin, job, "stagebench", STAGE_CMD, f"stagebench-{label}-{count}",
            {"DSC_TRANSFERS": str(transfers)}, {})
        if f"| staged {STAGE_FILES} {STAGE_FILES}" not in text:
            raise MeasurementError(f"the datum's user code did not see {STAGE_FILES} files of "
                                   f"{STAGE_FILE_BYTES} bytes: {text.strip()[-600:]}")
        return r

    once(8)  # warm-up, untimed: the bytecode cache, the page cache, the stand-in's caches
    for i in range(runs):
        for transfers in ((8, 1) if i % 2 == 0 else (1, 8)):
            r = once(transfers)
            series[transfers].runs.append(r)
            progress(f"stage (work) `{label}` run {i + 1}/{runs}: DSC_TRANSFERS={transfers}: "
                     f"{r.verb_s:.2f} s")
    argv = ["runtime", "work", "--pipeline", "stagebench", "--repo", "stagebench",
            "--job-branch", "$BRANCH", "--worker", "0"]
    command = "DSC_TRANSFERS=8|1 " + shlex.join([rel(driver.python), "-m", "compiler", *argv])
    return StageResult(standin.config, series[8], series[1], requests, command, workers=True)


def run_stage(driver: Driver, standin: Standin, runs: int) -> StageResult:
    if driver.workers:
        return run_stage_work(driver, standin, runs)
    label = standin.config.key
    progress(f"stage, stand-in `{label}`: seeding {STAGE_FILES:,} objects, opening the job")
    job = prepare_stage(standin, driver.work)
    run_name = f"stagebench-{label}"
    _, branch, key = driver.open_job(standin, job, run_name)
    argv = datum_argv("stage", "stagebench", "stagebench", branch, key)
    series = {8: Runs("DSC_TRANSFERS=8"), 1: Runs("DSC_TRANSFERS=1")}

    def once(transfers: int) -> VerbRun:
        pfs = Path(tempfile.mkdtemp(prefix="pfs-", dir=driver.work))
        try:
            r = driver.run(standin, argv, {"DSC_RUN": run_name, "DSC_RUN_UID": run_name,
                                           "DSC_PFS": str(pfs),
                                           "DSC_OUTPUT_DIR": str(driver.work / "params"),
                                           "DSC_TRANSFERS": str(transfers)}, "stage")
            staged = [p for p in (pfs / "smallfiles").rglob("*") if p.is_file()]
            total = sum(p.stat().st_size for p in staged)
            if len(staged) != STAGE_FILES or total != STAGE_FILES * STAGE_FILE_BYTES:
                raise MeasurementError(f"stage wrote {len(staged)} files ({total} bytes), not "
                                       f"{STAGE_FILES} of {STAGE_FILE_BYTES} bytes")
            return r
        finally:
            shutil.rmtree(pfs, ignore_errors=True)

    before = standin.ask("stats")["requests"]
    once(8)  # warm-up, untimed: the bytecode cache, the page cache, the stand-in's caches
    requests = standin.ask("stats")["requests"] - before
    for i in range(runs):
        for transfers in ((8, 1) if i % 2 == 0 else (1, 8)):
            r = once(transfers)
            series[transfers].runs.append(r)
            progress(f"stage `{label}` run {i + 1}/{runs}: DSC_TRANSFERS={transfers}: "
                     f"{r.verb_s:.2f} s")
    command = ("DSC_TRANSFERS=8|1 " + shlex.join([rel(driver.python), "-m", "compiler", *argv])
               .replace(branch, "$BRANCH"))
    return StageResult(standin.config, series[8], series[1], requests, command)


# --- 2. publish -------------------------------------------------------------------------------

@dataclass(slots=True)
class PublishResult:
    help: Runs
    tiny: Runs
    big: Runs
    stored_size: int
    checksum_ok: bool
    command: str
    workers: bool = False  # measured through `work` (since workers), not `publish`


def write_random(path: Path, size: int) -> str:
    """`size` random bytes, written 1 MiB at a time (never whole in memory); their MD5."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


# Since workers, the datum's user code writes its output: a hard link to the file the script
# wrote (BENCH_OUTPUT, in the loop's environment), so the user code costs nothing to speak of
# and the worker publishes those very bytes.
PUBLISH_CMD = ["sh", "-c", 'ln "$BENCH_OUTPUT" out/']


def run_publish_work(driver: Driver, standin: Standin, runs: int) -> PublishResult:
    """Publish since workers: one worker's `work` over one datum (a 16-byte input file),
    whose user code puts the 1 GiB file (or a 5-byte one) in /pfs/out. Each run is a new job
    (an untimed `open` under a new run name)."""
    progress("publish: writing 1 GiB of random bytes")
    standin.ask("seed", repo="pubinput", kind="random", count=1, size=16)
    standin.ask("seed", repo="publishbench", kind="empty")
    job = standin.ask("compile", dir=str(driver.work / "specs-publish"),
                      pipeline="publishbench", input_repo="pubinput", glob="/*",
                      cmd=PUBLISH_CMD)["job"]
    big, tiny = driver.work / "big.bin", driver.work / "tiny.txt"
    md5 = write_random(big, PUBLISH_BYTES)
    tiny.write_bytes(b"tiny\n")
    result = PublishResult(Runs("`dsc runtime --help`"), Runs("work: a 5-byte output"),
                           Runs("work: the 1 GiB output"), 0, False, "", workers=True)
    count = 0
    branch = ""

    def job_run(source: Path) -> VerbRun:
        nonlocal count, branch
        count += 1
        r, branch, _text, _requests = driver.work_job(
            standin, job, "publishbench", PUBLISH_CMD, f"publishbench-{count}", {},
            {"BENCH_OUTPUT": str(source)})
        return r

    commands = {
        "help": lambda: driver.run(None, ["runtime", "--help"], {}, None),
        "tiny": lambda: job_run(tiny),
        "big": lambda: job_run(big),
    }
    _publish_in_turn(commands, result, runs, "publish (work)")
    _check_landed(standin, branch, md5, result)
    result.command = shlex.join([rel(driver.python), "-m", "compiler", "runtime", "work",
                                 "--pipeline", "publishbench", "--repo", "publishbench",
                                 "--job-branch", "$BRANCH", "--worker", "0"])
    big.unlink()
    return result


def _publish_in_turn(commands: dict[str, Callable[[], VerbRun]], result: PublishResult,
                     runs: int, what: str) -> None:
    """`runs` rounds of the three commands, the order turning each round, after an untimed
    one of `help` and `tiny`; the big file published last, so that what landed is its."""
    commands["help"]()  # warm-up, untimed
    commands["tiny"]()
    order = ["help", "tiny", "big"]
    last = ""
    for i in range(runs):
        for name in order[i % 3:] + order[:i % 3]:
            r = commands[name]()
            getattr(result, name).runs.append(r)
            last = name if name != "help" else last
            if name == "big":
                progress(f"{what} run {i + 1}/{runs}: 1 GiB in {r.verb_s:.2f} s, peak RSS "
                         f"{mib(r.process.maxrss_kib)}")
    if last != "big":
        commands["big"]()


def _check_landed(standin: Standin, branch: str, md5: str, result: PublishResult) -> None:
    """The big file on `branch` has its size and MD5, or the measurement is void."""
    stat = standin.ask("stat", repo="publishbench", ref=branch, path="big.bin")
    result.stored_size = stat["size"] or 0
    result.checksum_ok = stat.get("checksum") == md5
    if result.stored_size != PUBLISH_BYTES or not result.checksum_ok:
        raise MeasurementError(f"the stand-in holds big.bin with {result.stored_size} bytes and "
                               f"checksum {stat.get('checksum')}, not {PUBLISH_BYTES} / {md5}")


def run_publish(driver: Driver, standin: Standin, runs: int) -> PublishResult:
    need = (runs + 2) * PUBLISH_BYTES + (1 << 30)  # the file, one stored copy per run, margin
    free = shutil.disk_usage(driver.work).free
    if free < need:
        raise MeasurementError(f"publish needs about {need / 2**30:.0f} GiB free under "
                               f"{driver.work} (the file and the stand-in's copies); "
                               f"{free / 2**30:.1f} GiB free")
    if driver.workers:
        return run_publish_work(driver, standin, runs)
    progress("publish: writing 1 GiB of random bytes, opening the job")
    standin.ask("seed", repo="pubinput", kind="random", count=1, size=16)
    standin.ask("seed", repo="publishbench", kind="empty")
    job = standin.ask("compile", dir=str(driver.work / "specs-publish"),
                      pipeline="publishbench", input_repo="pubinput", glob="/*")["job"]
    run_name = "publishbench"
    _, branch, key = driver.open_job(standin, job, run_name)
    big_pfs, tiny_pfs = driver.work / "pfs-big", driver.work / "pfs-tiny"
    (big_pfs / "out").mkdir(parents=True)
    (tiny_pfs / "out").mkdir(parents=True)
    md5 = write_random(big_pfs / "out" / "big.bin", PUBLISH_BYTES)
    (tiny_pfs / "out" / "tiny.txt").write_bytes(b"tiny\n")
    argv = datum_argv("publish", "publishbench", "publishbench", branch, key)
    base = {"DSC_RUN": run_name, "DSC_RUN_UID": run_name,
            "DSC_OUTPUT_DIR": str(driver.work / "params")}
    result = PublishResult(Runs("`dsc runtime --help`"), Runs("publish of a 5-byte file"),
                           Runs("publish of the 1 GiB file"), 0, False, "")
    commands = {
        "help": lambda: driver.run(None, ["runtime", "--help"], {}, None),
        "tiny": lambda: driver.run(standin, argv, {**base, "DSC_PFS": str(tiny_pfs)},
                                   "publish"),
        "big": lambda: driver.run(standin, argv, {**base, "DSC_PFS": str(big_pfs)}, "publish"),
    }
    _publish_in_turn(commands, result, runs, "publish")
    _check_landed(standin, branch, md5, result)
    result.command = shlex.join([rel(driver.python), "-m", "compiler", *argv]).replace(
        branch, "$BRANCH")
    (big_pfs / "out" / "big.bin").unlink()
    return result


# --- 3. open ----------------------------------------------------------------------------------

@dataclass(slots=True)
class OpenResult:
    series: dict[str, Runs]  # stand-in config key -> runs
    seed_s: float
    command: str
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)


def run_open(driver: Driver, standins: list[Standin], runs: int, parts: bool,
             profile: bool) -> OpenResult:
    jobs: dict[str, str] = {}
    seed_s = 0.0
    for s in standins:
        progress(f"open, stand-in `{s.config.key}`: seeding {OPEN_DIRS * OPEN_FILES_PER_DIR:,} "
                 "objects")
        seed_s = s.ask("seed", repo="bigrepo", kind="tree", dirs=OPEN_DIRS,
                       per_dir=OPEN_FILES_PER_DIR)["seconds"]
        s.ask("seed", repo="openbench", kind="empty")
        jobs[s.config.key] = s.ask("compile", dir=str(driver.work / f"specs-open-{s.config.key}"),
                                   pipeline="openbench", input_repo="bigrepo", glob="/*")["job"]
    result = OpenResult({s.config.key: Runs(s.config.key) for s in standins}, seed_s, "")
    for s in standins:  # warm-up, untimed
        driver.open_job(s, jobs[s.config.key], f"openbench-{s.config.key}-warm")
    for i in range(runs):
        for s in (standins if i % 2 == 0 else list(reversed(standins))):
            r, _branch, _key = driver.open_job(s, jobs[s.config.key],
                                               f"openbench-{s.config.key}-{i}")
            if f": {OPEN_DIRS} datums" not in r.line:
                raise MeasurementError(f"open planned something else: {r.line}")
            result.series[s.config.key].runs.append(r)
            progress(f"open `{s.config.key}` run {i + 1}/{runs}: {r.verb_s:.2f} s")
    result.command = shlex.join([rel(driver.python), "-m", "compiler", "runtime", "open",
                                 "--job", "$JOB"])
    if parts or profile:
        for s in standins:
            progress(f"open, stand-in `{s.config.key}`: timing the parts in one process")
            args = {"endpoint": s.endpoint, "job": jobs[s.config.key], "runs": PARTS_RUNS,
                    "profile": profile and s is standins[0], "tmp": str(driver.work / "parts"),
                    "access_key_id": s.credentials["LAKEFS_ACCESS_KEY_ID"],
                    "secret_access_key": s.credentials["LAKEFS_SECRET_ACCESS_KEY"]}
            proc = subprocess.run([driver.python, str(Path(__file__).resolve()), "--child",
                                   "open-parts", json.dumps(args)], cwd=driver.cwd,
                                  env=driver.env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise MeasurementError(f"the open-parts child failed: {proc.stderr[-800:]}")
            result.parts[s.config.key] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------------------------
# Report


def logged(seconds: float) -> str:
    """A time the verb logged (with two decimals)."""
    return f"{seconds:.2f} s"


def _stage_section(results: list[StageResult]) -> list[str]:
    first = results[0]
    if first.workers:
        return _stage_work_section(results)
    out = ["## 1. Stage: 1,000 objects of 4 KiB, one datum (glob `/`)", "",
           f"`{first.command}`, each run into a fresh DSC_PFS; the two settings alternate "
           f"(8, 1, 1, 8, ...) after one untimed run. One stage makes "
           f"{first.requests_per_run:,} requests (job record, plan, one listing page, one GET "
           "per object). Time: what the verb logs (\"... in X s\"); process: the whole fresh "
           "process; stand-in CPU: the stand-in process's CPU time during the run (all its "
           "threads).", ""]
    return out + _stage_rows(results)


def _stage_work_section(results: list[StageResult]) -> list[str]:
    first = results[0]
    out = ["## 1. Stage: 1,000 objects of 4 KiB, one datum (glob `/`), staged by `work`", "",
           f"`{first.command}`: since workers, a datum is staged inside `dsc runtime work`, "
           "so what is timed is one worker processing the one datum: stage it (one listing "
           "page, one GET per object), run the user code (through the loop, a `/bin/sh` "
           "process started beside it in DSC_PFS, as the user container; it counts the staged "
           "files, which checks the run), publish its empty output (the manifest, the batch). "
           "Each run is a new job: an untimed `open` under a new run name, `dsc runtime "
           "prepare` into a fresh DSC_PFS and the loop's start, then `work` in a fresh "
           "process, its time what the worker logs (\"worker 0/1 of stagebench: ... in X "
           "s\"). The two settings alternate (8, 1, 1, 8, ...) after one untimed run. One "
           f"`work` makes {first.requests_per_run:,} requests. Process: the whole fresh "
           "process; stand-in CPU: the stand-in process's CPU time during the run.", ""]
    return out + _stage_rows(results)


def _stage_rows(results: list[StageResult]) -> list[str]:
    """The stage table and each stand-in's verdict."""
    rows = []
    for r in results:
        for s in (r.parallel, r.serial):
            rows.append([r.config.key + (" (info)" if r.config.info else ""), s.label,
                         logged(s.verb_median), logged(s.verb_min), logged(s.verb_max),
                         sec(s.wall_median), sec(s.cpu_median), sec(s.standin_cpu_median),
                         f"{STAGE_FILES / s.verb_median:,.0f}/s", mib(s.rss_peak_kib)])
    out = table(["stand-in", "setting", "median", "min", "max", "process wall", "process CPU",
                 "stand-in CPU", "objects", "peak RSS"], rows)
    out += [""]
    for r in results:
        pr = r.pair_ratios
        out.append(f"* `{r.config.key}` ({r.config.title}): 1 / 8 = **{r.ratio:.2f}x** "
                   f"(target >= {TARGET_STAGE_RATIO:g}x: "
                   f"{'info, ' if r.config.info else ''}{verdict(r.ratio >= TARGET_STAGE_RATIO)});"
                   f" per pair min {min(pr):.2f}x, median {statistics.median(pr):.2f}x, "
                   f"max {max(pr):.2f}x.")
    return [*out, ""]


def _publish_section(p: PublishResult) -> list[str]:
    if p.workers:
        how = (f"`{p.command}`: since workers, a datum's output is published inside `dsc "
               "runtime work`, so what is timed is one worker processing one datum (a 16-byte "
               "input file) whose user code (the loop, a `/bin/sh` process beside it, as the "
               "user container) hard-links the 1 GiB file, or a 5-byte one, into /pfs/out; the "
               "worker uploads it, then the manifest and the batch. Each run is a new job (an "
               "untimed `open` under a new run name, `prepare`, the loop's start). Rotated "
               f"with `{rel(sys.executable)} -m compiler runtime --help`; stand-in `defaults` "
               "in its own process. Peak RSS: the `work` process alone (`ru_maxrss`; the "
               "loop is not its child).")
    else:
        how = (f"`{p.command}` with DSC_PFS holding `out/big.bin` (1 GiB) or `out/tiny.txt`, "
               f"and `{rel(sys.executable)} -m compiler runtime --help`, rotated; stand-in "
               "`defaults` in its own process. Peak RSS: the verb's process alone "
               "(`ru_maxrss`).")
    out = ["## 2. Publish: a 1 GiB file of random bytes", "",
           f"{how} The stand-in then held big.bin with {p.stored_size:,} bytes and the file's "
           f"MD5 ({'checked' if p.checksum_ok else '**wrong**'}).", ""]
    rows = []
    for s in (p.help, p.tiny, p.big):
        rows.append([s.label, logged(s.verb_median) if s.runs[0].line else "-",
                     sec(s.wall_median), sec(s.cpu_median),
                     sec(s.standin_cpu_median) if s.runs[0].line else "-",
                     mib(s.rss_median_kib), mib(s.rss_peak_kib)])
    out += table(["command", "verb's time (median)", "process wall", "process CPU",
                  "stand-in CPU", "median peak RSS", "max peak RSS"], rows)
    rate = PUBLISH_BYTES / 2**20 / p.big.verb_median
    out += ["", f"Peak RSS of the 1 GiB publish: **{mib(p.big.rss_peak_kib)}** (target < "
            f"{TARGET_PUBLISH_MIB} MiB: {verdict(p.big.rss_peak_kib < TARGET_PUBLISH_MIB * 1024)}"
            f"), {(p.big.rss_peak_kib - p.tiny.rss_peak_kib) / 1024:+.1f} MiB against the tiny "
            f"publish; {rate:.0f} MiB/s.", ""]
    return out


def _open_section(o: OpenResult) -> list[str]:
    out = [f"## 3. Open: {OPEN_DIRS * OPEN_FILES_PER_DIR:,} objects in {OPEN_DIRS:,} directories,"
           f" glob `/*` ({OPEN_DIRS:,} datums)", "",
           f"`{o.command}`, a new run name (so a new job branch) each time, the stand-ins "
           f"alternating after one untimed run each. Seeding the repo directly took "
           f"{o.seed_s:.1f} s (untimed).", ""]
    rows = []
    for key, s in o.series.items():
        rows.append([key, logged(s.verb_median), logged(s.verb_min), logged(s.verb_max),
                     sec(s.wall_median), sec(s.cpu_median), sec(s.standin_cpu_median),
                     mib(s.rss_peak_kib), verdict(s.verb_median <= TARGET_OPEN_S)])
    out += table(["stand-in", "median", "min", "max", "process wall", "process CPU",
                  "stand-in CPU", "peak RSS", f"<= {TARGET_OPEN_S:g} s"], rows)
    if o.parts:
        out += ["", "The parts, timed in one process (medians of "
                f"{len(next(iter(o.parts.values()))['list'])} runs): the listing through the "
                "adapter (`LakeFS.objects`: 100 pages read as plain JSON) and planning the "
                "listing held in memory (`verbs._plan`).", ""]
        rows = []
        for key, parts in o.parts.items():
            listing, plan = (statistics.median(parts[k]) for k in ("list", "plan"))
            rows.append([key, sec(listing), sec(plan),
                         f"{parts['objects']:,} / {parts['datums']:,}"])
        out += table(["stand-in", "listing", "planning", "objects / datums"], rows)
        for key, parts in o.parts.items():
            if "profile" in parts:
                out += ["", f"cProfile of `open_job` in one process, stand-in `{key}` "
                        f"({parts['profile_s']:.1f} s under the profiler), by own time:", "",
                        "```", parts["profile"], "```"]
    return [*out, ""]


def report(facts: list[list[str]], stage: list[StageResult], publish: PublishResult | None,
           opened: OpenResult | None, configs: dict[str, StandinConfig],
           problems: list[str], changed: bool) -> str:
    if problems:
        facts = [*facts, ["stand-in problems", "; ".join(problems)[:500]]]
    out = report_head("dsc runtime benchmark", facts, changed=changed, watched=WATCHED)
    out += ["Stand-ins: " + "; ".join(f"`{c.key}`: {c.title}" for c in configs.values()) + ".",
            ""]
    if stage:
        out += _stage_section(stage)
    if publish is not None:
        out += _publish_section(publish)
    if opened is not None:
        out += _open_section(opened)
    rows = []
    for r in stage:
        rows.append([f"1 stage 1,000 objects: time(1) / time(8), stand-in `{r.config.key}`"
                     + (" (info)" if r.config.info else ""), f">= {TARGET_STAGE_RATIO:g}x",
                     f"{r.ratio:.2f}x ({logged(r.serial.verb_median)} / "
                     f"{logged(r.parallel.verb_median)})", verdict(r.ratio >= TARGET_STAGE_RATIO)])
    if publish is not None:
        rows.append(["2 publish 1 GiB: peak RSS (max of the runs)", f"< {TARGET_PUBLISH_MIB} MiB",
                     mib(publish.big.rss_peak_kib),
                     verdict(publish.big.rss_peak_kib < TARGET_PUBLISH_MIB * 1024)])
    if opened is not None:
        for key, s in opened.series.items():
            rows.append([f"3 open 100,000 objects: median, stand-in `{key}`",
                         f"<= {TARGET_OPEN_S:g} s", logged(s.verb_median),
                         verdict(s.verb_median <= TARGET_OPEN_S)])
    out += targets(rows)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure dsc runtime against its performance targets (stage of 1,000 "
        "objects, 8 transfers against 1; the peak RSS of publishing 1 GiB; open over 100,000 "
        "objects) with the lakeFS stand-in in its own process, and print a Markdown report. "
        "Exit status is 0 even when a target is missed; 2 on a measurement error.")
    parser.add_argument("--runs", type=int, default=5,
                        help="timed runs of each setting; medians are reported (default: 5; "
                        "the information-only latency stand-in gets at most 3)")
    parser.add_argument("--quick", action="store_true",
                        help="3 runs, the `defaults` stand-in only, no open breakdown "
                        "(about 3 min instead of about 8)")
    parser.add_argument("--only", choices=CASES, action="append",
                        help="run only this case; repeatable (default: all three)")
    parser.add_argument("--latency-ms", type=float, default=10.0,
                        help="the delay per request of the information-only stand-in "
                        "(default: 10)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile one `open` in one process (stand-in `defaults`)")
    add_run_options(parser, rev=EXPORTED)
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 3
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    args.only = args.only or list(CASES)
    return args


def _run(args: argparse.Namespace, work: Path, python: str) -> str:
    facts = machine_facts(python, paths=EXPORTED, rev=args.rev,
                          packages=("lakefs-sdk", "openapi-core", "urllib3"))
    # Bytecode cached in the temporary directory, as a pip-installed dsc reads its .pyc.
    env = cached_env(work)
    cwd = REPO
    if args.rev is not None:
        cwd = export(args.rev, work, EXPORTED)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(cwd), env.get("PYTHONPATH")) if p)
    configs = standin_configs(args.latency_ms)
    wanted = ["defaults"] if args.quick else ["defaults", "unvalidated", "latency"]
    if "stage" not in args.only:
        wanted = [k for k in wanted if k != "latency"]
    if args.only == ["publish"]:
        wanted = ["defaults"]
    digest = source_digest(cwd, WATCHED)
    driver = Driver(python, work, cwd, env)
    standins: dict[str, Standin] = {}
    problems: list[str] = []
    try:
        for key in wanted:
            progress(f"starting the stand-in `{key}`")
            standins[key] = Standin(configs[key], python, work, env, cwd)
        stage = []
        if "stage" in args.only:
            for s in standins.values():
                runs = min(args.runs, 3) if s.config.info else args.runs
                stage.append(run_stage(driver, s, runs))
        publish = run_publish(driver, standins["defaults"], args.runs) \
            if "publish" in args.only else None
        opened = None
        if "open" in args.only:
            judged = [s for s in standins.values() if not s.config.info]
            opened = run_open(driver, judged, args.runs, not args.quick, args.profile)
    finally:
        for key, s in standins.items():
            problems += [f"`{key}`: {p}" for p in s.stop()]
    return report(facts, stage, publish, opened, {k: configs[k] for k in standins}, problems,
                  source_digest(cwd, WATCHED) != digest)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    python = str(args.venv / "bin" / "python")
    if missing_executables(python):
        return 2
    if not SWAGGER.is_file():
        print(f"runtime_bench: error: {SWAGGER} (lakeFS's API, which the stand-in serves) is "
              "missing", file=sys.stderr)
        return 2
    return run_report(args, "dsc-runtime-bench-", lambda work: _run(args, work, python),
                      timed=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        sys.exit(serve_main(json.loads(sys.argv[2])))
    if sys.argv[1:3] == ["--child", "open-parts"]:
        sys.exit(open_parts_main(json.loads(sys.argv[3])))
    sys.exit(main())
