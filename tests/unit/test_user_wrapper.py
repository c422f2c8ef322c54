"""The user container's /bin/sh wrapper: Pachyderm's stdin, accept_return_code, err_cmd and
per-datum variables, with user values only ever passed as positional parameters."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.argo.build import USER_WRAPPER
from compiler.runtime import contract

SHELLS = [s for s in ("sh", "dash", "bash", "busybox") if shutil.which(s)]


def run(tmp_path: Path, cmd: list[str], err_cmd: tuple[str, ...] = (), *, shell: str = "sh",
        env: dict[str, str] | None = None, env_file: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    script = (USER_WRAPPER.replace(contract.RECOVERED_MARKER, str(tmp_path / "recovered"))
              .replace(contract.ENV_FILE, str(tmp_path / "env")))
    if env_file is not None:
        (tmp_path / "env").write_text(env_file)
    argv = [shell, *(["sh"] if shell == "busybox" else []), "-c", script, "dsc-user",
            str(len(cmd)), *cmd, *err_cmd]
    return subprocess.run(argv, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                          **(env or {})}, cwd=tmp_path, check=False)


@pytest.mark.parametrize("shell", SHELLS)
def test_arguments_reach_the_command_verbatim_and_are_never_evaluated(
        tmp_path: Path, shell: str) -> None:
    hostile = ["a b", "$(touch pwned)", "`touch pwned`", "'", '"', "*", "$HOME", ";", "x" * 3]
    done = run(tmp_path, ["printf", "%s\\n", *hostile, "10th", "11th"], shell=shell)
    assert done.returncode == 0, done.stderr
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
    assert (done.returncode, done.stdout) == (0, "recover\n")
    assert "exit code 5" in done.stderr
    assert (tmp_path / "recovered").exists()


def test_a_failing_err_cmd_fails_the_datum_with_the_original_code(tmp_path: Path) -> None:
    done = run(tmp_path, ["sh", "-c", "exit 5"], ("false",))
    assert done.returncode == 5
    assert not (tmp_path / "recovered").exists()


def test_err_cmd_does_not_run_when_the_command_succeeds(tmp_path: Path) -> None:
    done = run(tmp_path, ["true"], ("touch", "ran"))
    assert done.returncode == 0
    assert not (tmp_path / "ran").exists() and not (tmp_path / "recovered").exists()


def test_the_datum_variables_stage_writes_are_exported(tmp_path: Path) -> None:
    done = run(tmp_path, ["sh", "-c", 'printf "%s|%s" "$images" "$PACH_DATUM_ID"'],
               env_file="images='/pfs/images/it'\\''s.png'\nPACH_DATUM_ID='abc'\n")
    assert (done.returncode, done.stdout) == (0, "/pfs/images/it's.png|abc")
