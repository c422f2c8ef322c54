"""Data-driven lint cases: tests/cases/{valid,invalid}/<case> with the expected output beside.

A case is a spec file (or a directory of them, for cross-file rules) plus `<case>.expected`
holding the exact diagnostics `dsc lint` prints, one per line, with the case's path removed
(`line:col: severity: message [code]`; directory cases keep the file name relative to the
case). Optional `<case>.args` holds extra command-line arguments, one per line. A valid case
without `.expected` must produce no diagnostic at all. Adding a regression test = adding files;
DSC_REGENERATE=1 rewrites the `.expected` files from the current output.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import CASES, run_dsc

SIDE_FILES = (".expected", ".args", ".values.yaml")


def _cases(kind: str) -> list[Path]:
    folder = CASES / kind
    return sorted(p for p in folder.iterdir()
                  if not p.name.endswith(SIDE_FILES) and not p.name.startswith("."))


def _run(case: Path) -> tuple[int, list[str]]:
    args_file = case.parent / (case.name + ".args")
    extra = args_file.read_text().split("\n") if args_file.exists() else []
    extra = [a.replace("{case_dir}", str(case.parent)) for a in extra if a]
    result = run_dsc("lint", *extra, str(case), env={"NO_COLOR": "1"})
    prefix = str(case) + (os.sep if case.is_dir() else ":")
    lines = [line.replace(prefix, "") for line in result.stdout.splitlines()]
    return result.exit_code, lines


def _expected(case: Path, lines: list[str]) -> list[str]:
    expected = case.parent / (case.name + ".expected")
    if os.environ.get("DSC_REGENERATE") and (lines or expected.exists()):
        expected.write_text("".join(line + "\n" for line in lines))
    return expected.read_text().splitlines() if expected.exists() else []


@pytest.mark.parametrize("case", _cases("invalid"), ids=lambda p: p.name)
def test_invalid_case(case: Path) -> None:
    code, lines = _run(case)
    assert lines == _expected(case, lines)
    assert any(": error: " in line for line in lines), "an invalid case must report an error"
    assert code == 1


@pytest.mark.parametrize("case", _cases("valid"), ids=lambda p: p.name)
def test_valid_case(case: Path) -> None:
    code, lines = _run(case)
    assert lines == _expected(case, lines)
    assert code == 0
