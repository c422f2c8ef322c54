"""Render diagnostics: `path:line:col: severity: message [code]`, JSON, or GitHub annotations."""

from __future__ import annotations

import json
from typing import TextIO

from compiler.diagnostics import Diagnostic, LintResult, Severity

FORMATS = ("text", "json", "github")
_COLOURS = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.INFO: "\033[36m"}
_RESET = "\033[0m"
_GITHUB_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def render(result: LintResult, fmt: str, out: TextIO, *, colour: bool = False,
           show_info: bool = True) -> None:
    shown = [d for d in result.sorted() if show_info or d.severity is not Severity.INFO]
    if fmt == "json":
        # One write per report: json.dump and writelines write each chunk separately.
        out.write(json.dumps({"diagnostics": [_as_dict(d) for d in shown],
                              "summary": summary_dict(result)}, indent=2) + "\n")
    elif fmt == "github":
        out.write("".join(_github(d) + "\n" for d in shown))
    else:
        out.write("".join(_text(d, colour) + "\n" for d in shown))


def _text(d: Diagnostic, colour: bool) -> str:
    severity = d.severity.value
    if colour:
        severity = f"{_COLOURS[d.severity]}{severity}{_RESET}"
    return f"{d.path}:{d.line}:{d.col}: {severity}: {d.message} [{d.code}]"


def _as_dict(d: Diagnostic) -> dict[str, object]:
    return {"path": d.path, "line": d.line, "col": d.col, "severity": d.severity.value,
            "code": d.code, "message": d.message, "json_path": d.json_path}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _github(d: Diagnostic) -> str:
    # Workflow command syntax: ::error file=...,line=...,col=...,title=...::message
    props = (f"file={_escape_property(d.path)},line={d.line},col={d.col},"
             f"title={_escape_property('dsc ' + d.code)}")
    return f"::{_GITHUB_LEVEL[d.severity]} {props}::{_escape_data(d.message)}"


def summary_dict(result: LintResult) -> dict[str, int]:
    return {"files": result.files, "specs": result.specs,
            "errors": result.count(Severity.ERROR), "warnings": result.count(Severity.WARNING),
            "info": result.count(Severity.INFO)}


def summary_line(result: LintResult) -> str:
    counts = summary_dict(result)
    parts = [_plural(counts["errors"], "error"), _plural(counts["warnings"], "warning")]
    return (f"{', '.join(parts)} in {_plural(counts['files'], 'file')} "
            f"({_plural(counts['specs'], 'spec')})")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
