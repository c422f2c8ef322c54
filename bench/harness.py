"""The benchmarks' shared harness: run a command in a fresh process and read its own wall
time, exit code, peak RSS and CPU time; medians of repeated runs; format the figures as
Markdown.

Standard library only; the scripts beside it import it as `harness` (`python bench/x.py`
puts a script's directory first on `sys.path`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# Forks, execs argv[3:] with stdout/stderr sent to argv[1]/argv[2], and prints
# "<wall ns> <exit code> <ru_maxrss KiB> <ru_utime s> <ru_stime s>" for that child alone.
# A child's ru_maxrss starts at the RSS of the process it was forked from, so the wrapper is
# kept tiny (no imports beyond os/sys/time, run with -I -S): its own RSS stays below anything
# worth measuring.
_WRAPPER = """\
import os, sys, time
out, err, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
t0 = time.perf_counter_ns()
pid = os.fork()
if pid == 0:
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
t1 = time.perf_counter_ns()
print(t1 - t0, os.waitstatus_to_exitcode(status), ru.ru_maxrss, ru.ru_utime, ru.ru_stime)
"""


class MeasurementError(Exception):
    """A measurement could not be made (not a missed target)."""


@dataclass(frozen=True, slots=True)
class ProcessStats:
    wall_s: float
    exit_code: int
    maxrss_kib: int
    cpu_s: float


def run_measured(argv: Sequence[str], out: str | Path, err: Path, *, cwd: Path,
                 env: dict[str, str], what: str) -> ProcessStats:
    """Run argv once from a fresh wrapper, its stdout to `out` and stderr to `err`.

    The wrapper runs isolated (-I -S: PYTHON* variables do not affect it); the command it
    execs gets `env`. `what` names the command in errors.
    """
    wrapper = [sys.executable, "-I", "-S", "-c", _WRAPPER, str(out), str(err), *argv]
    proc = subprocess.run(wrapper, capture_output=True, text=True, cwd=cwd, check=False,
                          env=env)
    fields = proc.stdout.split()
    if proc.returncode != 0 or len(fields) != 5:
        raise MeasurementError(f"wrapper failed for {what}: "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
    return ProcessStats(int(fields[0]) / 1e9, int(fields[1]), int(fields[2]),
                        float(fields[3]) + float(fields[4]))


@dataclass(slots=True)
class Series:
    """The runs of one command: medians and extremes of what each fresh process reported."""

    label: str
    samples: list[ProcessStats] = field(default_factory=list)

    @property
    def walls(self) -> list[float]:
        return [s.wall_s for s in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def p90(self) -> float:
        return percentile(self.walls, 90)

    @property
    def median_cpu(self) -> float:
        return statistics.median(s.cpu_s for s in self.samples)

    @property
    def median_rss_kib(self) -> float:
        return statistics.median(s.maxrss_kib for s in self.samples)

    @property
    def peak_rss_kib(self) -> int:
        return max(s.maxrss_kib for s in self.samples)

    @property
    def exit_codes(self) -> str:
        return ",".join(str(c) for c in sorted({s.exit_code for s in self.samples}))


def percentile(values: Sequence[float], pct: int) -> float:
    """Linear-interpolation percentile (pct in 1..99) of at least one value."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def tool_output(argv: Sequence[str]) -> str:
    """What a tool prints about itself (a version line), run from the repository."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False,
                              timeout=120)
    except OSError as exc:
        raise MeasurementError(f"cannot run {argv[0]}: {exc}") from None
    if proc.returncode != 0:
        raise MeasurementError(f"{shlex.join(argv)} exited {proc.returncode}: {proc.stderr}")
    return (proc.stdout or proc.stderr).strip()


def rel(path: Path | str) -> str:
    """`path` relative to the repository when it is inside it."""
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return str(path)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**MISS**"


def sec(seconds: float) -> str:
    return f"{seconds:.3f} s"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def targets(rows: list[list[str]]) -> list[str]:
    """The report's closing section: target, limit, measured, verdict."""
    return ["## Targets", "", *table(["target", "limit", "measured", "verdict"], rows)]


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it ("?" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


# --------------------------------------------------------------------------------------------
# A benchmark's run: progress, its temporary directory, the report


def prog() -> str:
    """The running script's name (`lint_bench`): what it prints on stderr starts with it."""
    return Path(sys.argv[0]).stem


def progress(message: str) -> None:
    print(f"{prog()}: {message}", file=sys.stderr, flush=True)


def missing_executables(*paths: str) -> bool:
    """Whether one of `paths` is not an executable (each such one is reported on stderr)."""
    missing = [p for p in paths if not os.access(p, os.X_OK)]
    for path in missing:
        print(f"{prog()}: error: {path} is missing or not executable", file=sys.stderr)
    return bool(missing)


def add_run_options(parser: argparse.ArgumentParser, *, holds: str = "dsc", keeps: str = "",
                    rev: Sequence[str] = (), bytecode: bool = False) -> None:
    """The options a benchmark driver shares with the others: --venv (holding `holds`),
    --keep (the temporary directory, holding `keeps`) and -o, which `run_report` reads; with
    `rev` (the directories `export` extracts), --rev; with `bytecode`, --bytecode (`modes`)."""
    if bytecode:
        parser.add_argument("--bytecode", choices=["both", "cached", "as-is"], default="both",
                            help="cached: every interpreter reads .pyc from a cache in the "
                            "temporary directory (PYTHONPYCACHEPREFIX), as a normal install "
                            "does; as-is: the environment unchanged (e.g. "
                            "PYTHONDONTWRITEBYTECODE=1 makes an editable dsc recompile itself "
                            "on every start) (default: %(default)s)")
    parser.add_argument("--venv", type=Path, default=REPO / ".venv",
                        help=f"virtualenv holding {holds} (default: %(default)s)")
    if rev:
        dirs = [f"{d}/" for d in rev]
        parser.add_argument("--rev", metavar="REV",
                            help=f"measure {', '.join(dirs[:-1])} and {dirs[-1]} of this git "
                            "revision (exported with git archive and put first on "
                            "PYTHONPATH) instead of the working tree, e.g. while someone edits "
                            "it (default: the working tree)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory" + (f" ({keeps})" if keeps else ""))
    parser.add_argument("-o", "--output", type=Path,
                        help="also write the Markdown report to this file")


def run_report(args: argparse.Namespace, prefix: str, body: Callable[[Path], str], *,
               also: list[Path] | None = None, timed: bool = False) -> int:
    """Run `body` in a new temporary directory and print the Markdown report it returns (and
    write it to `args.output` when given); the exit status of a benchmark.

    The directory, and those `body` adds to `also`, are removed at the end unless
    `args.keep`. The status is 0 whether or not a target is met, 2 when a measurement could
    not be made (`body` raised MeasurementError). `timed`: say how long it all took.
    """
    also = [] if also is None else also
    work = Path(tempfile.mkdtemp(prefix=prefix))
    started = time.perf_counter()
    try:
        text = body(work)
    except MeasurementError as exc:
        print(f"{prog()}: measurement error: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            progress(f"kept the work directory {work}" + "".join(f" and {p}" for p in also))
        else:
            for path in (work, *also):
                shutil.rmtree(path, ignore_errors=True)
    if timed:
        progress(f"done in {time.perf_counter() - started:.0f} s")
    print(text, end="")
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    return 0


def cached_env(work: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this environment) with bytecode read from and written to a cache in
    `work`, as a pip-installed dsc reads its .pyc, whatever PYTHONDONTWRITEBYTECODE says."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


# --------------------------------------------------------------------------------------------
# Bytecode modes (the benchmarks that measure whole processes both ways)


@dataclass(frozen=True, slots=True)
class Mode:
    """How the measured interpreters find bytecode."""

    key: str
    title: str
    env: dict[str, str]
    cwd: Path = REPO  # the commands run from here: the repository, or an exported revision


def modes(choice: str, work: Path, others: str, source: Path | None = None) -> list[Mode]:
    """The bytecode modes `choice` names (`both`, `cached`, `as-is`). `others` names the
    site-packages measured beside dsc; with `source` (an exported revision), it is first on
    PYTHONPATH, so its `compiler` package shadows the editable install's, and the commands
    run from it."""
    base = dict(os.environ)
    if source is not None:
        base["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(source), os.environ.get("PYTHONPATH")) if p)
    cwd = source or REPO
    cached = Mode("cached", "bytecode cached (as in a pip-installed dsc; .pyc kept in the "
                  "temporary directory via PYTHONPYCACHEPREFIX)", cached_env(work, base), cwd)
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        as_is_title = ("environment as given: PYTHONDONTWRITEBYTECODE is set, so the "
                       "editable-installed dsc compiles its own modules from source on every "
                       f"start ({others} and the other site-packages have pip-compiled .pyc)")
    else:
        as_is_title = "environment as given (.pyc written next to the sources as usual)"
    as_is = Mode("as-is", as_is_title, base, cwd)
    return {"both": [cached, as_is], "cached": [cached], "as-is": [as_is]}[choice]


def measure(argv: Sequence[str], work: Path, tag: str, mode: Mode,
            ok_codes: Sequence[int] = (0,)) -> ProcessStats:
    """Run argv once from a fresh wrapper, in `mode`; stdout/stderr land in
    work/<tag>.out/.err. An exit code not in `ok_codes` is a MeasurementError."""
    out, err = work / f"{tag}.out", work / f"{tag}.err"
    what = shlex.join([Path(argv[0]).name, *argv[1:3]]) + " ..."
    sample = run_measured(argv, out, err, cwd=mode.cwd, env=mode.env, what=what)
    if sample.exit_code not in ok_codes:
        detail = err.read_text(errors="replace").strip()[-600:]
        expected = "" if tuple(ok_codes) == (0,) else f" (expected {sorted(ok_codes)})"
        raise MeasurementError(f"{what} exited {sample.exit_code}{expected}: {detail}")
    return sample


# --------------------------------------------------------------------------------------------
# What was measured: the machine, the dsc sources


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _git(*args: str) -> str:
    """What git prints, run on the repository ("" when it fails)."""
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=False).stdout


def dsc_source(paths: Sequence[str], rev: str | None = None) -> str:
    """Which dsc the figures are of: the checkout's commit and its uncommitted changes under
    `paths`, or, with `rev`, the revision whose `paths` the benchmark exported (`export`)."""
    if rev is not None:
        commit = tool_output(["git", "-C", str(REPO), "rev-parse", "--short", rev])
        return (f"git {commit} (`--rev {rev}`: {', '.join(paths)} exported with `git "
                "archive`, first on PYTHONPATH; the working tree is not used)")
    head = _git("rev-parse", "--short", "HEAD").strip()
    changed = ", ".join(line[3:] for line in _git("status", "--porcelain", "--",
                                                  *paths).splitlines())
    return f"git {head or '?'}" + (f" + uncommitted changes in {changed}" if changed else "")


def machine_facts(python: str, *, paths: Sequence[str], dsc: str | None = None,
                  rev: str | None = None, packages: Sequence[str] = (),
                  extra: Sequence[list[str]] = (), bytecode: bool = False) -> list[list[str]]:
    """The report's first rows (fact, value): CPUs, OS, load, the venv's Python, dsc's
    version (`dsc`, its console script) and source (`dsc_source`), the versions of
    `packages` in the venv, `extra`, and with `bytecode` PYTHONDONTWRITEBYTECODE."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    rows = [["CPUs", f"{os.cpu_count()} (usable: {usable}); {cpu_model()}"],
            ["OS", platform.platform()],
            ["load average at start", load_average()],
            ["python (venv)", tool_output([python, "--version"])]]
    if dsc is not None:
        rows.append(["dsc", tool_output([dsc, "--version"])])
    rows.append(["dsc source", dsc_source(paths, rev)])
    if packages:
        versions = tool_output([python, "-c", "import sys; from importlib.metadata import "
                                "version; print(*(version(p) for p in sys.argv[1:]))",
                                *packages])
        rows.append([" / ".join(packages), " / ".join(versions.split())])
    rows += extra
    if bytecode:
        rows.append(["PYTHONDONTWRITEBYTECODE",
                     os.environ.get("PYTHONDONTWRITEBYTECODE", "(unset)")])
    return rows


def source_digest(root: Path, dirs: Sequence[str] = ("compiler",)) -> str:
    """A digest of the Python sources under root/<dirs> (what the benchmark runs), to notice
    them changing while it runs."""
    digest = hashlib.sha256()
    for path in sorted(p for d in dirs for p in (root / d).rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def export(rev: str, work: Path, paths: Sequence[str]) -> Path:
    """`paths` of git revision `rev`, extracted into work/src (for `--rev`)."""
    target = work / "src"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "--",
                              *paths], capture_output=True, check=False)
    if archive.returncode != 0:
        raise MeasurementError(f"git archive {rev} failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def report_head(title: str, facts: list[list[str]], *, changed: bool = False,
                watched: Sequence[str] = ("compiler",)) -> list[str]:
    """A report's title, its facts (with the load at the end, and whether the sources under
    `watched` changed during the run) and the command that made it."""
    facts = [*facts, ["load average at end", load_average()]]
    if changed:
        facts.append(["dsc source changed during the run", "**yes: the figures may mix two "
                      f"versions of {' or '.join(f'{d}/' for d in watched)}**"])
    command = shlex.join([rel(sys.executable), rel(sys.argv[0]), *sys.argv[1:]])
    return [f"# {title}", "", *table(["fact", "value"], facts), "", f"Command: `{command}`",
            ""]


def trim_profile(text: str) -> str:
    """pstats output from its column header on, blank lines left out, with the paths
    shortened: relative to the repository, the working directory, the standard library and
    the interpreter's lib/ directories."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    prefixes = sorted({f"{p}/" for p in (REPO, os.getcwd(), os.path.dirname(os.__file__),
                                         Path(sys.prefix) / "lib",
                                         Path(sys.base_prefix) / "lib")},
                      key=len, reverse=True)
    out = []
    for line in lines[start:]:
        for prefix in prefixes:
            line = line.replace(prefix, "")
        if line.strip():
            out.append(line.rstrip())
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Scripts that run the checkout's code in their own process: set-ups serving the lakeFS
# stand-in (`tests/lakefs_standin`), process trees


def use_checkout() -> None:
    """Put the repository first on sys.path: `compiler` and `tests` (the stand-in, the
    runtime test harness) of this checkout."""
    sys.path.insert(0, str(REPO))


def stop_event() -> threading.Event:
    """An event that SIGTERM and SIGINT set: a server's cue to stop."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


@contextmanager
def serving(directory: Path, *, validate_requests: bool = True, latency: float = 0.0
            ) -> Iterator[tuple[Path, Any]]:
    """A served benchmark's set-up: yields its directory (resolved, with specs/ and out/) and
    the lakeFS stand-in, started in this process with its responses not validated (a
    1,000-row listing costs ~60 ms to validate, which a real lakeFS does not spend), nor,
    with `validate_requests=False`, its requests (~4 ms a request of openapi-core's
    parameter checks); `latency` is added to every request. When the block ends, it serves
    until SIGTERM or SIGINT, then stops the stand-in."""
    use_checkout()
    from tests.lakefs_standin.fixtures import SWAGGER
    from tests.lakefs_standin.server import LakeFSStandIn

    work = directory.resolve()
    (work / "specs").mkdir(parents=True, exist_ok=True)
    (work / "out").mkdir(exist_ok=True)
    stop = stop_event()
    with LakeFSStandIn(SWAGGER, validate_responses=False, validate_requests=validate_requests,
                       latency=latency) as standin:
        yield work, standin
        while not stop.wait(1.0):
            pass


def tree_files(n: int) -> dict[str, bytes]:
    """n small files, 1,000 a directory (`000/000000.txt`, ...), each holding its number."""
    return {f"{i // 1000:03d}/{i:06d}.txt": b"%d\n" % i for i in range(n)}


def changed_files(n: int, changed: float) -> dict[str, bytes]:
    """The fraction `changed` of the `tree_files(n)` (every k-th), with a new content."""
    step = max(1, round(1 / changed))
    return {f"{i // 1000:03d}/{i:06d}.txt": b"changed %d\n" % i for i in range(0, n, step)}


def seed_previous_job(standin: Any, pipeline: str, code: str,
                      plan: list[dict[str, Any]]) -> None:
    """Commit to `pipeline`'s output repo the datum index a previous job (`uid-previous` of
    run `previous`, the pipeline's code `code`) left: every datum of `plan` (what the
    runtime's `_plan` returns) processed, with one output file."""
    from compiler import contract
    from compiler.runtime.incremental import keys_text

    files = {}
    for i in range(0, len(plan), contract.INDEX_CHUNK):
        chunk = [{"id": e["id"], "hash": e["h"], "state": "processed", "job": "uid-previous",
                  "m": [[m[0], m[1]] for m in e["m"]],
                  "files": {e["m"][0][1].lstrip("/") + ".out": {"size": 2,
                                                               "checksum": "0" * 32}}}
                 for e in plan[i:i + contract.INDEX_CHUNK]]
        files[contract.index_path(i)] = json.dumps(chunk).encode()
        files[contract.index_keys_path(i)] = keys_text(chunk)
    files[contract.INDEX_JOBS] = json.dumps({"uid-previous": {
        "run": "previous", "pipeline": pipeline, "code": code, "inputs": []}}).encode()
    standin.seed(pipeline, files, message="the previous job",
                 metadata={contract.PIPELINE_KEY: pipeline, contract.CODE_KEY: code})


def processes() -> dict[int, tuple[int, int]]:
    """Every process now, from /proc (Linux): pid -> (parent pid, resident pages)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        out[int(entry)] = (int(fields[1]), int(fields[21]))  # ppid; rss (field 24 of stat)
    return out
