"""Where a command core writes: stdout for its result (manifests, tables, JSON) and stderr for
everything else, with colour only on a terminal and never under NO_COLOR."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from compiler.diagnostics import LintResult


@dataclass(frozen=True, slots=True)
class Console:
    out: TextIO
    err: TextIO

    @classmethod
    def of_process(cls) -> Console:
        """The process's streams, read when the command runs (a test runner swaps them)."""
        return cls(sys.stdout, sys.stderr)

    def say(self, line: str) -> None:
        """One line on stderr, flushed: it interleaves with what the user's code prints."""
        self.err.write(f"{line}\n")
        self.err.flush()

    def print(self, line: str) -> None:
        """One line of the command's result on stdout."""
        self.out.write(f"{line}\n")
        self.out.flush()

    def diagnostics(self, result: LintResult) -> None:
        """The spec's findings on stderr (no info notes), for commands whose result is not
        the diagnostics themselves."""
        from compiler.report import render

        if result.diagnostics:
            render(result, "text", self.err, colour=colour(self.err), show_info=False)

    def refused(self, result: LintResult) -> None:
        """The summary line after findings that stop the command."""
        from compiler.report import summary_line

        self.say(summary_line(result))


def colour(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set."""
    return not os.environ.get("NO_COLOR") and isatty(stream)


def isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
