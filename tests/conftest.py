"""Shared test fixtures: where ../shared is, and how to run dsc in-process."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from compiler.cli import cli
from tests.lakefs_standin.fixtures import lakefs_standin

__all__ = ["lakefs_standin"]  # the lakeFS stand-in fixture, for every test

# A test run started in the background by a shell without job control (`pytest &` in a script)
# inherits SIGINT and SIGQUIT ignored, and so would every process a test starts (an ignored
# signal stays ignored across exec): the tests of Ctrl-C would fail for how pytest was started.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "reference" / "pachyderm" / "corpus"
SEED = SHARED / "reference" / "seed" / "pipelines"
CASES = ROOT / "tests" / "cases"

needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"{SHARED} is absent (the reference material lives beside the "
    "repository; CI always has it)")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers more than the cores this process may use. A quarter of the
    suite's time is spent waiting (on the processes a test starts, on lakeFS timeouts it
    injects), which spare workers fill: on 2 cores, from a clean clone, 2 workers ran the
    tests in 4 min 51 s, 3 in 3 min 45 s to 4 min 27 s, 4 in 4 min 16 s."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    return cores + 2


@pytest.fixture(autouse=True, scope="session")
def _scratch_in_pytests_own_temp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """What dsc leaves in the temporary directory (a failed `dsc run` keeps its pods' logs
    there, as users want) goes under pytest's own, which keeps only its last three runs."""
    import tempfile

    os.environ["TMPDIR"] = str(tmp_path_factory.mktemp("tmpdir"))
    tempfile.tempdir = None  # read TMPDIR again


def run_dsc(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def sleep_marker(seconds: str) -> str:
    """A `sleep` argument only this test process uses: `seconds` with the process ID's digits
    appended, so two test runs on one machine never count each other's sleeps."""
    return f"{seconds}{os.getpid()}"


def sleeping(marker: str) -> int:
    """How many `sleep <marker>` processes run (on the whole machine): a test's user code,
    killed or not."""
    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline[:2] == [b"sleep", marker.encode()]:
                count += 1
    return count
