"""The one problem type every dsc check reports, and the result that collects them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    """A located finding: rendered as `path:line:col: severity: message [code]`.

    `line` and `col` are 1-based and come from the parser's marks. `json_path` is the location
    inside the document as a JSON Pointer (`/input/cross/1/atom/glob`), for `-o json` and editors.
    """

    path: str
    line: int
    col: int
    severity: Severity = field(compare=False)
    code: str = field(compare=False)
    message: str = field(compare=False)
    json_path: str = field(default="", compare=False)


class ExitCode(enum.IntEnum):
    """The exit-code contract of every dsc command (STYLE.md habit 3)."""

    CLEAN = 0
    FINDINGS = 1
    USAGE = 2
    COULD_NOT_RUN = 3
    # lakeFS unavailable (no connection, no answer, 429, 5xx): try again later
    # (compiler.contract.EXIT_UNAVAILABLE; EX_TEMPFAIL of sysexits.h).
    UNAVAILABLE = 75

    @classmethod
    def of_store(cls, transient: bool) -> ExitCode:
        """A lakeFS (or data directory) failure, the same in every command and step: 75
        when a later attempt may succeed, else 3."""
        return cls.UNAVAILABLE if transient else cls.COULD_NOT_RUN


@dataclass(slots=True)
class LintResult:
    """Everything one `dsc lint` run found, in the order it found it."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    specs: int = 0
    could_not_run: bool = False

    def add(self, diagnostic: Diagnostic) -> None:
        self.diagnostics.append(diagnostic)

    def count(self, severity: Severity) -> int:
        return sum(1 for d in self.diagnostics if d.severity is severity)

    def exit_code(self, *, strict: bool = False) -> ExitCode:
        if self.could_not_run:
            return ExitCode.COULD_NOT_RUN
        if self.count(Severity.ERROR) or (strict and self.count(Severity.WARNING)):
            return ExitCode.FINDINGS
        return ExitCode.CLEAN

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.diagnostics)


@dataclass(frozen=True, slots=True)
class Finding:
    """A diagnostic before it is located: where in the document (a JSON path), not yet where
    in the file. The linter turns it into a Diagnostic through the document's source map."""

    path: tuple[str | int, ...]
    code: str
    message: str
    severity: Severity = Severity.ERROR
    at_key: bool = False
