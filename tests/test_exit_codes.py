"""One exit-code contract: each command's --help lists the codes it can return, and the lakeFS
conditions give the same code in every command (3 lakeFS refused for good, 75 unavailable)."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import click
import pytest

from compiler.cli import cli
from compiler.lakefs.client import KEY_VARIABLES, SECRET_VARIABLES, RetryPolicy
from tests.conftest import run_dsc

SPEC = """{
  "pipeline": {"name": "edges"},
  "transform": {"image": "pachyderm/opencv:1.0", "cmd": ["python3", "/edges.py"]},
  "input": {"pfs": {"repo": "images", "glob": "/*"}}
}
"""

# What each command's --help must list: the codes it can return, and no other.
EXIT_CODES: dict[tuple[str, ...], set[str]] = {
    ("lint",): {"0", "1", "2", "3"},
    ("datums",): {"0", "1", "2", "3", "75"},
    ("compile",): {"0", "1", "2", "3", "75"},
    ("run",): {"0", "1", "2", "3", "75", "128+N", "130", "143", "129"},
    ("gc",): {"0", "1", "2", "3", "75"},
    ("schema",): {"0", "2", "3"},
    ("triggers", "action"): {"0", "1", "2", "3"},
    ("triggers", "install"): {"0", "1", "2", "3", "75"},
    ("runtime",): {"0", "1", "2", "3", "75"},  # one list for every step
    ("provenance",): {"0", "1", "2", "3", "75"},
    ("log",): {"0", "2", "3", "75"},
    ("plan",): {"0", "1", "2", "3", "75"},
}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group) and (*prefix, name) not in EXIT_CODES:
            out += _commands(command, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


def test_every_command_has_its_exit_codes_listed() -> None:
    assert sorted(_commands(cli)) == sorted(EXIT_CODES)


@pytest.mark.parametrize("command", sorted(EXIT_CODES), ids=" ".join)
def test_help_lists_exactly_the_exit_codes(command: tuple[str, ...]) -> None:
    result = run_dsc(*command, "--help")
    text = " ".join(result.stdout.split())
    listed = re.search(r"Exit codes[^:]*: (.*?)(?: Options:|$)", text)
    assert listed, f"dsc {' '.join(command)} --help lists no exit codes"
    assert set(re.findall(r"\b128\+N\b|\b\d+\b", listed[1])) == EXIT_CODES[command]


def test_the_group_help_names_what_every_command_may_exit_with() -> None:
    text = " ".join(run_dsc("--help").stdout.split())
    assert "exits 130 when interrupted (Ctrl-C) and 141 when the reader of its output" in text


# --- lakeFS conditions: the same code in every command that reaches lakeFS ---------------------

LAKEFS_COMMANDS = [
    ["datums", "SPEC", "--lakefs"],
    ["compile", "SPEC", "--pin"],
    ["gc", "SPEC", "--lakefs"],
    ["triggers", "install", "SPEC", "--namespace", "data-team"],
    ["provenance", "lakefs://edges/main"],
    ["log", "lakefs://edges/main"],
]


@pytest.fixture
def invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run a command in-process in a directory without dsc.yaml; lakeFS calls retry without
    pausing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(RetryPolicy, "with_timeout", classmethod(
        lambda cls, seconds: cls(sleep=lambda _: None, timeout=(2.0, 5.0))))
    spec = tmp_path / "specs" / "edges.json"
    spec.parent.mkdir()
    spec.write_text(SPEC)

    def run(args: list[str], endpoint: str, key: str, secret: str) -> Any:
        env: dict[str, str | None] = {name: None for name in (
            "LAKECTL_SERVER_ENDPOINT_URL", *KEY_VARIABLES, *SECRET_VARIABLES,
            "DSC_LAKEFS_ENDPOINT", "DSC_LAKEFS_TIMEOUT")}
        env.update(LAKEFS_ENDPOINT=endpoint, LAKEFS_ACCESS_KEY_ID=key,
                   LAKEFS_SECRET_ACCESS_KEY=secret)
        from click.testing import CliRunner

        return CliRunner().invoke(cli, [str(spec) if a == "SPEC" else a for a in args],
                                  env=env, catch_exceptions=False)

    return run


@pytest.mark.parametrize("args", LAKEFS_COMMANDS, ids=lambda a: a[0] if a[0] != "triggers"
                         else "triggers install")
def test_lakefs_unavailable_exits_75_in_every_command(invoke: Any, args: list[str]) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = invoke(args, f"http://127.0.0.1:{port}", "AKIA", "s3cr3t-value")
    assert result.exit_code == 75, result.output
    assert "75" in " ".join(run_dsc(*args[:2 if args[0] == "triggers" else 1],
                                    "--help").stdout.split())
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("dsc: error: ") and "no response" in lines[-1]
    assert "s3cr3t-value" not in result.output


@pytest.mark.parametrize("args", LAKEFS_COMMANDS, ids=lambda a: a[0] if a[0] != "triggers"
                         else "triggers install")
def test_lakefs_refusing_exits_3_in_every_command(invoke: Any, lakefs_standin: Any,
                                                  args: list[str]) -> None:
    s = lakefs_standin
    result = invoke(args, s.endpoint, s.access_key_id, "wrong-secret-Zq81x")
    assert result.exit_code == 3, result.output
    assert ": 401: " in result.stderr.splitlines()[-1]
    assert "wrong-secret-Zq81x" not in result.output
