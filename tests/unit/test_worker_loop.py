"""The user container's worker loop (contract.LOOP) under every /bin/sh at hand: Pachyderm's
stdin, accept_return_code, err_cmd and per-datum variables, with user values only ever passed
as positional parameters. One datum each, driven through the FIFOs as `dsc runtime work`
drives them."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from compiler import contract
from compiler.runtime.worker import FifoLoop, prepare

SHELLS = [s for s in ("sh", "dash", "bash", "busybox") if shutil.which(s)]


@dataclass
class Done:
    returncode: int
    stdout: str  # the datum's output (stdout and stderr, as the worker's log relays them)


def run(tmp_path: Path, cmd: list[str], err_cmd: tuple[str, ...] = (), *, shell: str = "sh",
        env: dict[str, str] | None = None, env_file: str | None = None) -> Done:
    pfs = tmp_path / "pfs"
    pfs.mkdir(exist_ok=True)
    prepare(str(pfs))
    if env_file is not None:
        (pfs / contract.ENV_NAME).write_text(env_file)
    loop = str(pfs / ".dsc-worker" / "loop.sh")
    argv = [shell, *(["sh"] if shell == "busybox" else []), loop,
            *contract.user_args(cmd, err_cmd)]
    process = subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin", **(env or {})},
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    side = FifoLoop(str(pfs))
    side.open(lambda: process.poll() is None)
    try:
        attempt = side.run(0, None, lambda _line: None)
    finally:
        side.close()
    _out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err  # the loop itself ends cleanly
    output = (pfs / ".dsc-worker" / "log").read_text()
    return Done(attempt.code, output)


@pytest.mark.parametrize("shell", SHELLS)
def test_arguments_reach_the_command_verbatim_and_are_never_evaluated(
        tmp_path: Path, shell: str) -> None:
    hostile = ["a b", "$(touch pwned)", "`touch pwned`", "'", '"', "*", "$HOME", ";", "x" * 3]
    done = run(tmp_path, ["printf", "%s\\n", *hostile, "10th", "11th"], shell=shell)
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines() == [*hostile, "10th", "11th"]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_stdin_lines_are_piped_to_the_command(tmp_path: Path, shell: str) -> None:
    done = run(tmp_path, ["cat"], env={"DSC_STDIN": "echo $x\nline 2\n"}, shell=shell)
    assert (done.returncode, done.stdout) == (0, "echo $x\nline 2\n")


def test_exit_code_is_kept_unless_accepted(tmp_path: Path) -> None:
    assert run(tmp_path, ["sh", "-c", "exit 3"]).returncode == 3
    accepted = run(tmp_path, ["sh", "-c", "exit 3"], env={"DSC_ACCEPT_RETURN_CODE": "1 3"})
    assert accepted.returncode == 0
    assert run(tmp_path, ["sh", "-c", "exit 4"],
               env={"DSC_ACCEPT_RETURN_CODE": "1 3"}).returncode == 4


def test_err_cmd_recovers_a_failed_datum_and_marks_it(tmp_path: Path) -> None:
    done = run(tmp_path, ["sh", "-c", "exit 5"], ("cat",), env={"DSC_ERR_STDIN": "recover\n"})
    assert (done.returncode, done.stdout) == (
        0, "dsc: the datum failed with exit code 5; running err_cmd\nrecover\n")
    assert (tmp_path / "pfs" / contract.RECOVERED_NAME).exists()


def test_a_failing_err_cmd_fails_the_datum_with_the_original_code(tmp_path: Path) -> None:
    done = run(tmp_path, ["sh", "-c", "exit 5"], ("false",))
    assert done.returncode == 5
    assert not (tmp_path / "pfs" / contract.RECOVERED_NAME).exists()


def test_err_cmd_does_not_run_when_the_command_succeeds(tmp_path: Path) -> None:
    done = run(tmp_path, ["true"], ("touch", "ran"))
    assert done.returncode == 0
    assert not (tmp_path / "ran").exists()
    assert not (tmp_path / "pfs" / contract.RECOVERED_NAME).exists()


def test_the_datum_variables_stage_writes_are_exported(tmp_path: Path) -> None:
    done = run(tmp_path, ["sh", "-c", 'printf "%s|%s" "$images" "$PACH_DATUM_ID"'],
               env_file="images='/pfs/images/it'\\''s.png'\nPACH_DATUM_ID='abc'\n")
    assert (done.returncode, done.stdout) == (0, "/pfs/images/it's.png|abc")


@pytest.mark.parametrize("shell", SHELLS)
def test_inputs_named_like_the_loops_own_variables_change_nothing(tmp_path: Path,
                                                                  shell: str) -> None:
    """An input's variable may have any name an input may have: `c`, `n`, `pfs`..."""
    names = ("c", "n", "pfs", "d", "k", "i", "code", "marker", "me")
    env_file = "".join(f"{name}='/pfs/{name}/x'\n" for name in names)
    done = run(tmp_path, ["sh", "-c", 'printf "%s %s|" "$c" "$pfs"; exit 3'],
               ("sh", "-c", "echo recovered"), shell=shell, env_file=env_file)
    assert (done.returncode, done.stdout) == (
        0, "/pfs/c/x /pfs/pfs/x|dsc: the datum failed with exit code 3; running err_cmd\n"
        "recovered\n")
    assert (tmp_path / "pfs" / contract.RECOVERED_NAME).exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_the_users_code_gets_sigint_and_a_umask_that_lets_the_runtime_clean_up(
        tmp_path: Path, shell: str) -> None:
    # a shell without job control starts a background job with SIGINT and SIGQUIT ignored
    done = run(tmp_path, ["sh", "-c", "grep -E '^SigIgn' /proc/self/status; umask"],
               shell=shell)
    ignored = int(done.stdout.split()[1], 16)
    assert ignored & (1 << (2 - 1)) == 0 and ignored & (1 << (3 - 1)) == 0
    assert done.stdout.split()[2] in ("0000", "000", "0")
