"""The benchmarks' shared harness: run a command in a fresh process and read its own wall
time, exit code, peak RSS and CPU time; medians of repeated runs; format the figures as
Markdown.

Standard library only; the scripts beside it import it as `harness` (`python bench/x.py`
puts a script's directory first on `sys.path`).
"""

from __future__ import annotations

import shlex
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
