"""`dsc run` as a user meets it: a construct it cannot run, Ctrl-C, and the progress it shows."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler.contract.job import Job
from compiler.local.executor import Event, Node
from compiler.local.progress import Progress
from compiler.local.runners import HostRunner, RunnerError
from tests.conftest import ROOT, sleep_marker, sleeping

MODEL_JOB = Job.of(pipeline="model", input=None, output_repo="model", output_branch="main",
                   image="", spec_sha256="", code="")


def dsc(*args: str, cwd: Path = ROOT, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "compiler", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def write_spec(where: Path, spec: dict) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"{spec['pipeline']['name']}.json"
    path.write_text(json.dumps(spec))
    return where


@pytest.fixture
def host():
    try:
        HostRunner(ROOT)
    except RunnerError as exc:
        pytest.skip(f"the host runner cannot run here: {exc}")


def test_a_construct_dsc_run_does_not_support_is_refused_by_name(tmp_path):
    specs = write_spec(tmp_path / "specs", {
        "pipeline": {"name": "edge"}, "transform": {"image": "alpine:3.20", "cmd": ["true"]},
        "pod_spec": json.dumps({"hostNetwork": True}),
        "input": {"pfs": {"repo": "data", "glob": "/*"}}})
    (tmp_path / "data" / "data").mkdir(parents=True)
    process = dsc("run", str(specs), "--data", str(tmp_path / "data"))
    _out, err = process.communicate(timeout=600)
    assert process.returncode == 3, err
    assert "`podSpecPatch` is not supported by dsc run" in err
    assert "templates[edge-worker]" in err
    assert "Traceback" not in err
    assert not (tmp_path / "data" / "edge").exists()  # refused before anything ran


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_the_datums_and_leaves_no_output(tmp_path, host, stop):
    """Ctrl-C, and what `timeout`, a cancelled CI job and a closed SSH session send: the
    user's processes are killed, the exit handler runs, nothing is left behind."""
    marker = sleep_marker("31.4159")  # a sleep only this test starts
    specs = write_spec(tmp_path / "specs", {
        "pipeline": {"name": "slow"}, "transform": {"image": "alpine:3.20",
                                                    "cmd": ["sh", "-c", f"sleep {marker}"]},
        "parallelism_spec": {"constant": 2},
        "input": {"pfs": {"repo": "data", "glob": "/*"}}})
    data = tmp_path / "data"
    (data / "data").mkdir(parents=True)
    for name in "abc":
        (data / "data" / name).write_text(name)
    process = dsc("run", str(specs), "--data", str(data), "-j", "2")
    assert process.stderr is not None
    seen = []
    while True:  # waits for an event, not on the machine's speed: no deadline of its own
        line = process.stderr.readline()
        seen.append(line)
        if line.startswith("slow: 3 datums") or not line:
            break
    assert line, "".join(seen)
    waited = time.monotonic() + 600  # generous: it waits for an event, not on work
    while sleeping(marker) < 2 and time.monotonic() < waited:  # both datums' commands run
        time.sleep(0.05)
    process.send_signal(stop)
    _out, err = process.communicate(timeout=600)
    assert process.returncode == 128 + stop, "".join(seen) + err
    assert f"stopped by {stop.name}" in err
    assert "slow@main: created empty by this run, no job committed" in err
    assert "Traceback" not in err
    # killed with their PID namespace, which the kernel empties just after dsc's child
    # exits: gone long before the sleep would end (it waits for the event, with a bound)
    waited = time.monotonic() + float(marker) / 2
    while sleeping(marker) and time.monotonic() < waited:
        time.sleep(0.05)
    assert sleeping(marker) == 0
    assert not [p for p in (data / "slow").rglob("*") if p.is_file()]
    branches = data / ".dsc" / "repos" / "slow" / "branches"
    assert sorted(p.stem for p in branches.iterdir()) == ["main"], err  # the job branch is gone



def test_the_progress_bar_shows_each_pipeline_on_a_terminal():
    stream = io.StringIO()
    clock = iter(range(100)).__next__
    progress = Progress({"model": MODEL_JOB}, stream, tty=True,
                        clock=lambda: float(clock()))
    opening = Node("1", "open", {}, "model", "open", None)
    progress(Event("finish", opening, phase="Succeeded",
                   outputs={"datums": "4", "workers": '["0", "1"]', "branch": "dsc-model-r"}))
    first, second = (Node(str(i), "model-worker", {}, "model", "work", str(i - 2))
                     for i in (2, 3))
    progress(Event("progress", first, count=1, total=2))
    progress(Event("progress", second, count=1, total=2, failed=1))
    progress(Event("retry", second, phase="Failed", attempt=1, message="exit code 75"))
    progress(Event("finish", second, phase="Failed", attempt=2,
                   message="1 datum failed after 3 attempts each: 3-d (exit code 1)",
                   log_tail="boom", pod=True, exit_code=1))
    progress.close()
    text = stream.getvalue()
    # the workers' datums add up per pipeline
    assert "model  [############------------] 2/4 datums  1 failed  1 retries" in text
    assert "model: worker 1 failed (attempt 2): 1 datum failed after 3 attempts each: 3-d " \
        "(exit code 1)\n    | boom\n" in text
    assert "\x1b[" in text  # redrawn in place
    assert progress.failures() == [
        "model: worker 1: 1 datum failed after 3 attempts each: 3-d (exit code 1)"]


def test_without_a_terminal_progress_is_plain_lines():
    stream = io.StringIO()
    progress = Progress({"model": MODEL_JOB}, stream, tty=False)
    progress(Event("finish", Node("1", "open", {}, "model", "open", None), phase="Succeeded",
                   outputs={"datums": "2", "workers": '["0", "1"]', "branch": "dsc-model-r"}))
    for worker in ("0", "1"):
        progress(Event("progress", Node(f"w{worker}", "model-worker", {}, "model", "work",
                                        worker), count=1, total=1))
    progress(Event("finish", Node("3", "commit", {}, "model", "commit", None),
                   phase="Succeeded", outputs={"commit": "ab" * 32}))
    assert stream.getvalue().splitlines() == [
        "model: 2 datums to process by 2 workers",
        "model: committed abababababab (2 datums processed, 0.0 s)"]
    assert "\x1b" not in stream.getvalue()


def test_a_cron_graph_runs_one_tick_now(tmp_path, host):
    specs = write_spec(tmp_path / "specs", {
        "pipeline": {"name": "ticker"},
        "transform": {"image": "alpine:3.20",
                      "cmd": ["sh", "-c", "ls /pfs/tick > /pfs/out/seen"]},
        "input": {"cron": {"name": "tick", "spec": "@every 1h"}}})
    data = tmp_path / "data"
    data.mkdir()
    process = dsc("run", str(specs), "--data", str(data))
    _out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    ticks = [p.name for p in (data / "ticker_tick").iterdir() if p.is_file()]
    assert len(ticks) == 1 and ticks[0].endswith("Z")  # an RFC 3339 tick, as the CronWorkflow
    assert (data / "ticker" / "seen").read_text().split() == ticks


def test_missing_input_directories_are_named_before_anything_runs(tmp_path):
    (tmp_path / "data").mkdir()
    process = dsc("run", "--values", str(ROOT / "examples/hyperparameter/host.values"),
                  str(ROOT / "examples/hyperparameter/pipelines"), "--data",
                  str(tmp_path / "data"))
    _out, err = process.communicate(timeout=600)
    assert process.returncode == 3
    assert (f"no directory for the input {tmp_path / 'data' / 'parameters'} (repo "
            "`parameters`, read by pipeline `model`); "
            f"{tmp_path / 'data' / 'raw_data'} (repo `raw_data`, read by pipeline `split`)"
            ) in err
    assert list((tmp_path / "data").iterdir()) in ([], [tmp_path / "data" / ".dsc"])


def test_a_read_only_data_directory_is_named_not_an_internal_error(tmp_path, host):
    """The data directory on a read-only file system (a bind mount with `ro`, in a mount
    namespace of the test's own): a located one-line error and exit 3, nothing retried."""
    import shutil

    specs = write_spec(tmp_path / "specs", {
        "pipeline": {"name": "copy"}, "transform": {"image": "a:1", "cmd": ["true"]},
        "input": {"pfs": {"repo": "data", "glob": "/*"}}})
    data = tmp_path / "data"
    (data / "data").mkdir(parents=True)
    (data / "data" / "a").write_text("a")
    unshare = shutil.which("unshare")
    prefix = [unshare, "--mount", "--propagation", "private"] + (
        [] if os.geteuid() == 0 else ["--user", "--map-root-user"])
    script = ('mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && '
              'exec "$@"')
    process = subprocess.Popen(
        [*prefix, "/bin/sh", "-c", script, "ro", str(data), sys.executable, "-m", "compiler",
         "run", str(specs), "--data", str(data)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _out, err = process.communicate(timeout=600)
    assert process.returncode == 3, err
    assert "internal error" not in err and "Traceback" not in err
    assert f"data directory remember the repositories: 403: {data}/.dsc" in err
    assert "read-only file system" in err


def test_a_file_name_that_is_not_utf8_is_named_before_anything_runs(tmp_path):
    specs = write_spec(tmp_path / "specs", {
        "pipeline": {"name": "copy"}, "transform": {"image": "a:1", "cmd": ["true"]},
        "input": {"pfs": {"repo": "data", "glob": "/*"}}})
    data = tmp_path / "data"
    (data / "data").mkdir(parents=True)
    os.close(os.open(os.path.join(os.fsencode(data / "data"), b"caf\xe9.csv"),
                     os.O_CREAT | os.O_WRONLY))
    process = dsc("run", str(specs), "--data", str(data))
    _out, err = process.communicate(timeout=600)
    assert process.returncode == 3, err
    assert "internal error" not in err and "Traceback" not in err
    assert "caf\\xe9.csv': the file name is not UTF-8" in err


def test_keep_scratch_keeps_what_a_failed_pod_staged(tmp_path, host):
    specs = write_spec(tmp_path / "specs", {
        "pipeline": {"name": "fails"}, "datum_tries": 1,
        "transform": {"image": "a:1", "cmd": ["sh", "-c", "exit 4"]},
        "input": {"pfs": {"repo": "data", "glob": "/*"}}})
    data = tmp_path / "data"
    (data / "data").mkdir(parents=True)
    (data / "data" / "a").write_text("staged")
    for keep, staged in ((["--keep-scratch"], 1), ([], 0)):
        process = dsc("run", str(specs), "--data", str(data), *keep)
        _out, err = process.communicate(timeout=600)
        assert process.returncode == 1, err
        scratch = Path(err.split("pod logs in ")[1].split()[0])
        assert len([p for p in scratch.rglob("a") if p.read_text() == "staged"]) == staged
        assert [p.name for p in scratch.rglob("user.log")] == ["user.log"]
        assert err.splitlines()[-1].endswith(
            "fails: worker 0: pipeline `fails`: 1 datum failed after 1 attempt each: 0-a "
            "(exit code 4)")


def test_an_error_no_retry_can_fix_fails_the_step_once_and_names_itself(tmp_path, host):
    """Two datums writing one path: `commit` fails for good (exit 1), so Argo's
    retryStrategy expression, evaluated by dsc run as Argo would, does not run it again."""
    specs = write_spec(tmp_path / "specs", {
        "pipeline": {"name": "clash"},
        "transform": {"image": "a:1", "cmd": ["sh", "-c", "echo x > /pfs/out/same"]},
        "input": {"pfs": {"repo": "data", "glob": "/*"}}})
    data = tmp_path / "data"
    (data / "data").mkdir(parents=True)
    for name in "ab":
        (data / "data" / name).write_text(name)
    process = dsc("run", str(specs), "--data", str(data))
    _out, err = process.communicate(timeout=600)
    assert process.returncode == 1, err
    assert "retrying" not in err
    assert err.count("step `commit` failed (attempt 1)") == 1
    assert err.splitlines()[-1].endswith(
        "both wrote /same; each output path must come from one datum (put $PACH_DATUM_ID in "
        "file names)")
