"""`dsc run --lakefs` as a user meets it when lakeFS is wrong (issue 19): a wrong secret, a
refused endpoint, a missing repository and an endpoint that never answers each fail before
anything runs, with the exit code every command gives; SIGTERM leaves no job branch; after
`kill -9`, `dsc gc` removes the leftover and a re-run succeeds."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import sleep_marker, sleeping
from tests.local.test_cli_run import dsc, host, write_spec

MARKER = sleep_marker("27.1828")  # a sleep only these tests start
__all__ = ["host"]  # the fixture: skips where the host runner cannot run


def spec(tmp: Path, cmd: str = "cp $texts /pfs/out/") -> Path:
    return write_spec(tmp / "specs", {
        "pipeline": {"name": "copy"}, "transform": {"image": "alpine:3.20",
                                                    "cmd": ["sh", "-c", cmd]},
        "parallelism_spec": {"constant": 2},
        "input": {"pfs": {"repo": "texts", "glob": "/*"}}})


def env(standin, **changes: str) -> dict[str, str]:
    import os

    return {**os.environ, "LAKEFS_ENDPOINT": standin.endpoint,
            "LAKEFS_ACCESS_KEY_ID": standin.access_key_id,
            "LAKEFS_SECRET_ACCESS_KEY": standin.secret_access_key, **changes}


def finish(process, code: int) -> str:
    _out, err = process.communicate(timeout=600)
    assert process.returncode == code, err
    assert "Traceback" not in err
    return err


@pytest.fixture
def seeded(lakefs_standin):
    lakefs_standin.seed("texts", {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"})
    lakefs_standin.seed("copy", {})
    return lakefs_standin


def test_a_wrong_secret_fails_before_anything_runs_with_exit_3(seeded, tmp_path, host):
    err = finish(dsc("run", str(spec(tmp_path)), "--lakefs",
                     env=env(seeded, LAKEFS_SECRET_ACCESS_KEY="not-it")), 3)
    assert "--lakefs http://127.0.0.1:" in err and "list repositories: 401" in err
    assert "not-it" not in err and seeded.secret_access_key not in err
    assert not seeded.calls("createBranch")


def test_a_missing_repository_is_named_before_anything_runs(seeded, tmp_path, host):
    specs = write_spec(tmp_path / "specs", {
        "pipeline": {"name": "copy"}, "transform": {"image": "a:1", "cmd": ["true"]},
        "input": {"pfs": {"repo": "no_such_repo", "glob": "/*"}}})
    err = finish(dsc("run", str(specs), "--lakefs", env=env(seeded)), 3)
    assert ("repository `no-such-repo` does not exist (repo `no_such_repo`, read by pipeline "
            "`copy`)") in err
    assert not seeded.calls("createBranch")


def test_a_missing_output_repository_names_the_setting_that_creates_it(lakefs_standin,
                                                                        tmp_path, host):
    lakefs_standin.seed("texts", {"a.txt": b"a"})
    err = finish(dsc("run", str(spec(tmp_path)), "--lakefs", env=env(lakefs_standin)), 3)
    assert "repository `copy` does not exist (the output of pipeline `copy`; set " \
        "`lakefs.storage_namespace`" in err


def test_a_refused_endpoint_fails_at_once_with_exit_75(tmp_path, host):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err = finish(dsc("run", str(spec(tmp_path)), "--lakefs", env={
        **env_without_lakefs(), "LAKEFS_ENDPOINT": f"http://127.0.0.1:{port}",
        "LAKEFS_ACCESS_KEY_ID": "AKIA", "LAKEFS_SECRET_ACCESS_KEY": "s3cr3t-value"}), 75)
    assert "cannot connect" in err and "s3cr3t-value" not in err


@pytest.fixture
def silent() -> Iterator[str]:
    """An endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for c in held:
        c.close()
    server.close()


def test_an_endpoint_that_never_answers_fails_within_the_configured_timeout(
        silent, tmp_path, host):
    err = finish(dsc("run", str(spec(tmp_path)), "--lakefs", env={
        **env_without_lakefs(), "LAKEFS_ENDPOINT": silent, "LAKEFS_ACCESS_KEY_ID": "AKIA",
        "LAKEFS_SECRET_ACCESS_KEY": "s3cr3t-value", "DSC_LAKEFS_TIMEOUT": "1"}), 75)
    assert "list repositories: no response: no answer within the read timeout" in err


def env_without_lakefs() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("LAKEFS_", "LAKECTL_"))}


def job_branches(standin) -> list[str]:
    return sorted(b for b in standin.state()["copy"].branches if b.startswith("dsc-"))


def start_slow_run(standin, tmp_path) -> object:
    process = dsc("run", str(spec(tmp_path, f"sleep {MARKER}")), "--lakefs", "-j", "2",
                  env=env(standin))
    waited = time.monotonic() + 600  # waits for an event, not on work
    while sleeping(MARKER) < 2 and time.monotonic() < waited and process.poll() is None:
        time.sleep(0.05)
    assert job_branches(standin), "the job opened"
    return process


def test_sigterm_stops_a_lakefs_run_and_leaves_no_job_branch(seeded, tmp_path, host):
    before = seeded.head("copy", "main")
    process = start_slow_run(seeded, tmp_path)
    process.send_signal(signal.SIGTERM)
    err = finish(process, 128 + signal.SIGTERM)
    assert "stopped by SIGTERM" in err and "copy@main: unchanged" in err
    # killed with their PID namespace, which the kernel empties just after dsc's child
    # exits: gone long before the sleep would end (it waits for the event, with a bound)
    waited = time.monotonic() + float(MARKER) / 2
    while sleeping(MARKER) and time.monotonic() < waited:
        time.sleep(0.05)
    assert sleeping(MARKER) == 0
    assert job_branches(seeded) == []
    assert seeded.head("copy", "main") == before


def test_after_kill_9_gc_removes_the_leftover_and_a_rerun_succeeds(seeded, tmp_path,
                                                                   host):
    process = start_slow_run(seeded, tmp_path)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=600)
    # the user's processes die with it (long before their sleep would end)
    waited = time.monotonic() + float(MARKER) / 2
    while sleeping(MARKER) and time.monotonic() < waited:
        time.sleep(0.05)
    assert sleeping(MARKER) == 0
    (leftover,) = job_branches(seeded)
    gc = dsc("gc", str(spec(tmp_path)), "--lakefs", env=env(seeded))
    _out, err = gc.communicate(timeout=600)
    assert gc.returncode == 0, err
    assert f"removed lakefs://copy/{leftover}" in _out and "that process is gone" in _out
    assert job_branches(seeded) == []
    err = finish(dsc("run", str(spec(tmp_path)), "--lakefs", env=env(seeded)), 0)
    assert "copy@main: advanced to" in err
    assert sorted(seeded.objects("copy", "main")) == [".dsc/index/000000.json",
                                                      ".dsc/index/000000.keys",
                                                      ".dsc/index/jobs.json",
                                                      ".dsc/job.json",
                                                      ".dsc/plan/000000.json",
                                                      "a.txt", "b.txt", "c.txt"]


def test_user_code_sees_neither_dsc_nor_its_credentials(seeded, tmp_path, host):
    """As in a pod: the user's command runs in its own PID namespace with its own /proc, so
    it cannot read `dsc`'s environment (which holds the lakeFS keys here), and gets no lakeFS
    variable itself. The output commit says which runner ran it, and names no image."""
    specs = write_spec(tmp_path / "specs", {
        "pipeline": {"name": "copy"}, "transform": {"image": "alpine:3.20", "cmd": [
            "sh", "-c", "ls /proc | grep -c '^[0-9]' > /pfs/out/processes; "
            "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '^LAKEFS_' "
            "> /pfs/out/lakefs-variables; env | grep -c '^LAKEFS_' > /pfs/out/own; "
            "cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | grep -c 'compi[l]er' > /pfs/out/dsc; true"]},
        "input": {"pfs": {"repo": "texts", "glob": "/"}}})
    finish(dsc("run", str(specs), "--lakefs", env=env(seeded)), 0)
    out = seeded.objects("copy", "main")
    assert out["lakefs-variables"] == b"0\n" and out["own"] == b"0\n"
    # the worker loop's (its shell, its watcher, the datum's subshell) and the command's
    # own (sh, ls, grep): nothing of dsc's
    assert int(out["processes"]) <= 7 and out["dsc"] == b"0\n"
    meta = seeded.commit("copy", "main").metadata
    assert meta["dsc.runner"] == "host" and "dsc.image" not in meta


def chain(tmp: Path, second_cmd: str) -> Path:
    """`copy` (texts -> copy) and `second` (copy -> second), as in one graph."""
    specs = spec(tmp)
    return write_spec(specs, {
        "pipeline": {"name": "second"}, "transform": {"image": "alpine:3.20",
                                                      "cmd": ["sh", "-c", second_cmd]},
        "datum_tries": 1, "input": {"pfs": {"repo": "copy", "glob": "/*"}}})


def summary(err: str) -> dict[str, str]:
    """The summary table's output-branch column, per pipeline."""
    lines = err[err.index("\npipeline "):].splitlines()[2:]
    return {line.split()[0]: line for line in lines if line.split()[0] in ("copy", "second")}


def test_a_failed_run_says_which_outputs_advanced_and_which_did_not(seeded, tmp_path, host):
    """Issue 19: `copy` committed before `second` failed. The summary says `copy` advanced
    (to the commit now at its head) and `second` is unchanged; nothing claims that all
    output branches are unchanged."""
    seeded.seed("second", {})
    before = seeded.head("second", "main")
    err = finish(dsc("run", str(chain(tmp_path, "exit 1")), "--lakefs", env=env(seeded)), 1)
    landed = seeded.head("copy", "main")
    assert seeded.commit("copy", "main").metadata["dsc.pipeline"] == "copy"
    rows = summary(err)
    assert rows["copy"].endswith(f"copy@main: advanced to {landed[:12]} (lakefs://copy/"
                                 f"{landed})"), err
    assert rows["second"].endswith(f"second@main: unchanged at {before[:12]}"), err
    assert seeded.head("second", "main") == before
    final = err.rstrip("\n").splitlines()[-1]
    assert final.startswith("dsc run: ") and " failed: second: " in final, err
    assert "unchanged" not in final
    assert sorted(b for repo in ("copy", "second")
                  for b in seeded.state()[repo].branches if b.startswith("dsc-")) == []


def test_when_only_the_exit_handlers_clean_up_fails_the_summary_says_all_advanced(
        seeded, tmp_path, host):
    """Issue 19: both pipelines merged, then no job branch could be deleted (a 403, as for a
    protected branch), so the exit handler failed: the summary still says that each output
    branch advanced, to the commit now at its head."""
    seeded.seed("second", {})
    seeded.faults.add("deleteBranch", 403, times=None)
    err = finish(dsc("run", str(chain(tmp_path, "cp $copy /pfs/out/")), "--lakefs",
                     env=env(seeded)), 3)
    rows = summary(err)
    for repo in ("copy", "second"):
        head = seeded.head(repo, "main")
        assert seeded.commit(repo, "main").metadata["dsc.pipeline"] == repo
        assert rows[repo].endswith(f"{repo}@main: advanced to {head[:12]} (lakefs://{repo}/"
                                   f"{head})"), err
    assert sorted(seeded.objects("second", "main")) == [
        ".dsc/index/000000.json", ".dsc/index/000000.keys", ".dsc/index/jobs.json",
        ".dsc/job.json", ".dsc/plan/000000.json", "a.txt", "b.txt", "c.txt"]
    assert "unchanged" not in err
