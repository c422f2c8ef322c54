"""The errors a command core raises for the command line to turn into a message and an exit
code (compiler/cli.py does that in one place): usage (2), could not run (3, or 75 when lakeFS
is unavailable and a later attempt may succeed), and the configuration's located findings."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from typing import Any

from compiler.commands.console import colour
from compiler.diagnostics import ExitCode


class UsageError(Exception):
    """Options or arguments the command cannot run with (exit 2), said as click says it:
    `Invalid value for OPTION: ...` when one option is to blame."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class CouldNotRun(Exception):
    """A command that cannot do its job for a reason outside the specs (exit 3, or 75 when
    lakeFS is unavailable and a later attempt may succeed)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.COULD_NOT_RUN) -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def store(cls, context: str, exc: Any) -> CouldNotRun:
        """A lakeFS (or data directory) failure: the same exit code in every command."""
        return cls(f"{context}{exc}", ExitCode.of_store(exc.transient))


@dataclass(frozen=True, slots=True)
class Failure:
    """What the user is told of an error that is not a bug in dsc: the text for stderr and
    the exit code."""

    text: str
    code: int


def failure_of(exc: BaseException) -> Failure | None:
    """The message and exit code of an expected error; None for a bug in dsc."""
    from compiler.config import ConfigError
    from compiler.store import LakeFSError

    if isinstance(exc, CouldNotRun):
        return Failure(f"dsc: error: {exc}\n", int(exc.code))
    if isinstance(exc, LakeFSError):  # a store (lakeFS, a data directory) refused or failed
        return failure_of(CouldNotRun.store("", exc))
    if isinstance(exc, ConfigError):
        from compiler.diagnostics import LintResult
        from compiler.report import render

        result = LintResult()
        for diagnostic in exc.diagnostics:
            result.add(diagnostic)
        text = io.StringIO()
        render(result, "text", text, colour=colour(sys.stderr), show_info=False)
        return Failure(text.getvalue(), int(ExitCode.USAGE))
    return None
