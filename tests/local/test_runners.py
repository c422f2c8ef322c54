"""The runners: the host runner's private /pfs and /tmp, deadlines, secrets; the docker
runner's command line."""

from __future__ import annotations

import threading
import uuid
import venv
from pathlib import Path

import pytest

from compiler.local.executor import FAILED, SUCCEEDED, Container, Mount, Node, Pod
from compiler.local.runners import DockerRunner, HostRunner, LocalPods, RunnerError, kept_under_tmp
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def host():
    try:
        return HostRunner(ROOT)
    except RunnerError as exc:
        pytest.skip(f"the host runner cannot run here: {exc}")


def user(*command: str, env=None, secret_env=None, mounts=None) -> Container:
    return Container("user", "alpine:3.20", list(command), [], dict(env or {}),
                     dict(secret_env or {}), mounts or [Mount("pfs", "/pfs", False)], None,
                     None, [])


def pod(tmp_path: Path, *containers: Container, deadline=None) -> Pod:
    p = Pod(Node("000001", "t", {}, None, None, None), list(containers),
            {"pfs": tmp_path / "pfs"}, {}, tmp_path, deadline, {})
    (tmp_path / "pfs" / "out").mkdir(parents=True)
    p.output_dir.mkdir()
    return p


def never(*_args):
    raise AssertionError("no runtime container here")


def test_the_host_runner_binds_the_datum_at_pfs_with_a_private_tmp(tmp_path, host):
    mark = uuid.uuid4().hex
    p = pod(tmp_path, user("/bin/sh", "-c", f"echo {mark} > /pfs/out/seen; "
                           f"echo x > /tmp/{mark}; ls /tmp > /pfs/out/tmp; pwd > /pfs/out/cwd"))
    result = LocalPods(never, host)(p, threading.Event())
    assert result.phase == SUCCEEDED, result
    assert (tmp_path / "pfs" / "out" / "seen").read_text().strip() == mark
    assert not Path("/tmp", mark).exists()
    assert (tmp_path / "pfs" / "out" / "tmp").read_text().split() == [mark]
    assert (tmp_path / "pfs" / "out" / "cwd").read_text().strip() == str(ROOT)
    assert list(Path("/pfs").iterdir()) == []  # the real /pfs stays empty


def test_a_pod_past_its_deadline_is_killed(tmp_path, host):
    p = pod(tmp_path, user("/bin/sh", "-c", "sleep 30"), deadline=0.5)
    result = LocalPods(never, host)(p, threading.Event())
    assert result.phase == FAILED
    assert "activeDeadlineSeconds (0.5 s)" in result.message


def test_a_failing_container_fails_the_pod_with_its_output(tmp_path, host):
    p = pod(tmp_path, user("/bin/sh", "-c", "echo something broke >&2; exit 7"))
    result = LocalPods(never, host)(p, threading.Event())
    assert (result.phase, result.message) == (FAILED, "container `user` exited with code 7")
    assert result.log_tail == "something broke"


def test_secrets_come_from_the_secrets_directory(tmp_path, host):
    secrets = tmp_path / "secrets"
    (secrets / "db").mkdir(parents=True)
    (secrets / "db" / "password").write_text("s3cret\n")
    c = user("/bin/sh", "-c", 'test "$PASSWORD" = s3cret', secret_env={
        "PASSWORD": ("db", "password")})
    assert LocalPods(never, host, secrets=secrets)(pod(tmp_path / "a", c),
                                                   threading.Event()).phase == SUCCEEDED
    result = LocalPods(never, host)(pod(tmp_path / "b", c), threading.Event())
    assert result.phase == "Error" and "--secrets DIR" in result.message
    assert "s3cret" not in result.message


def test_the_host_runner_refuses_other_mounts(tmp_path, host):
    from compiler.local.workflow import Unsupported

    c = user("true", mounts=[Mount("pfs", "/pfs", False), Mount("secret-0", "/etc/x", True)])
    with pytest.raises(Unsupported, match="binds only /pfs"):
        LocalPods(never, host)(pod(tmp_path, c), threading.Event())


def test_the_docker_runner_mounts_the_volumes_and_keeps_values_off_the_command_line(
        tmp_path):
    docker = DockerRunner(docker="/bin/true")  # `true version` answers like an engine
    p = pod(tmp_path, user("python", "/code/train.py", env={"TOKEN": "hidden-value"}))
    argv = docker.command(p.containers[0], p, {"TOKEN": "hidden-value"})
    assert argv[:3] == ["/bin/true", "run", "--rm"]
    assert argv[argv.index("-v"):argv.index("-v") + 2] == ["-v", f"{tmp_path / 'pfs'}:/pfs"]
    assert argv[argv.index("-e"):argv.index("-e") + 2] == ["-e", "TOKEN"]
    assert argv[-2:] == ["alpine:3.20", "/code/train.py"]
    assert argv[argv.index("--entrypoint") + 1] == "python"
    assert "hidden-value" not in " ".join(argv)


def test_the_docker_runner_says_when_there_is_no_engine():
    with pytest.raises(RunnerError, match="needs a running Docker engine"):
        DockerRunner(docker="/bin/false")


def test_code_and_a_virtualenv_named_by_absolute_paths_under_tmp_stay_reachable(tmp_path, host):
    # pytest's tmp_path is under /tmp, which the runner covers: a script and a virtualenv
    # outside the working directory, named by their absolute paths, must still run.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tool = elsewhere / "tool.sh"
    tool.write_text("#!/bin/sh\necho from-tool > /pfs/out/tool\n")
    tool.chmod(0o755)
    venv.EnvBuilder(with_pip=False, symlinks=True).create(tmp_path / "venv")
    python = tmp_path / "venv" / "bin" / "python"
    work = tmp_path / "work"
    work.mkdir()
    script = (f"{tool} && {python} -c 'import sys; "
              "open(\"/pfs/out/prefix\", \"w\").write(sys.prefix)'")
    p = pod(tmp_path / "pod", user("/bin/sh", "-c", script))
    assert LocalPods(never, HostRunner(work))(p, threading.Event()).phase == SUCCEEDED
    out = tmp_path / "pod" / "pfs" / "out"
    assert (out / "tool").read_text() == "from-tool\n"
    assert (out / "prefix").read_text() == str(tmp_path / "venv")


def test_a_working_directory_under_tmp_stays_reachable(tmp_path, host):
    work = tmp_path / "work"  # pytest's tmp_path is under /tmp, which the runner covers
    work.mkdir()
    (work / "code.txt").write_text("relative paths work\n")
    runner = HostRunner(work)
    p = pod(tmp_path / "pod", user("/bin/sh", "-c", "cat code.txt > /pfs/out/seen"))
    assert LocalPods(never, runner)(p, threading.Event()).phase == SUCCEEDED
    assert (tmp_path / "pod" / "pfs" / "out" / "seen").read_text() == "relative paths work\n"


def test_a_link_to_tmp_itself_is_not_kept_reachable(tmp_path):
    # Binding what it leads to would show the user's code the whole host /tmp.
    (tmp_path / "tmplink").symlink_to("/tmp")
    (tmp_path / "code").mkdir()
    kept = kept_under_tmp([f"ls {tmp_path}/tmplink/ && python3 {tmp_path}/code/a.py"])
    assert kept == [str(tmp_path / "code")]
