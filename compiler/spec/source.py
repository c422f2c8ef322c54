"""Where each value of a loaded document came from: JSON paths mapped to line and column."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Protocol

JsonPath = tuple[str | int, ...]
Position = tuple[int, int]
# (key line, key col, value line, value col); a list item or the root has key == value.
Entry = tuple[int, int, int, int]

_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


class LoadError(Exception):
    """A file that cannot be read as specs, located where the reader stopped (1-based)."""

    def __init__(self, message: str, code: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.line = line
        self.col = col


@lru_cache(maxsize=4096)
def canonical_key(key: str) -> str:
    """The snake_case spelling of a spec key (`joinOn` -> `join_on`; Pachyderm accepts both)."""
    if not key[:1].islower() or "_" in key:
        return key
    return _CAMEL_HUMP.sub(lambda m: "_" + m.group(1).lower(), key)


def json_pointer(path: JsonPath) -> str:
    """RFC 6901 rendering of a path, for `-o json` and editor integrations."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


class Positions(Protocol):
    """The entry of one exact path, or None: a dict for YAML (the composer hands us every mark
    anyway), a targeted scan of the text for JSON (`jsonsource.JsonPositions`)."""

    def get(self, path: JsonPath, /) -> Entry | None: ...


class SourceMap:
    """Answers "where is the value (or key) at this JSON path?" for one document.

    A clean file never pays for positions and a file with one finding pays for one path (see
    `Positions`). Paths use canonical (snake_case) keys, so model code can ask for `join_on`
    whatever the file spelled. A rendered template's lines are mapped back through
    `template_lines`. Plain data throughout, so a forked worker can send it back.
    """

    __slots__ = ("origin", "positions", "template_lines")

    def __init__(self, origin: Position, positions: Positions,
                 template_lines: tuple[int, ...] | None = None) -> None:
        self.origin = origin
        self.positions = positions
        self.template_lines = template_lines

    def locate(self, path: JsonPath, *, key: bool = False) -> Position:
        """Position of `path`, or of its nearest ancestor that exists (a missing field is
        reported where its parent object is)."""
        probe = tuple(canonical_key(p) if isinstance(p, str) else p for p in path)
        while probe:
            entry = self.positions.get(probe)
            if entry is not None:
                line, col = (entry[0], entry[1]) if key else (entry[2], entry[3])
                return self._map(line), col
            probe = probe[:-1]
        line, col = self.origin
        return self._map(line), col

    def _map(self, line: int) -> int:
        if self.template_lines is None:
            return line
        return template_line(self.template_lines, line)


def template_line(template_lines: tuple[int, ...], line: int) -> int:
    """The template line that rendered `line` (1-based), given the template line of each
    rendered line; lines past the end map to the last one."""
    if 1 <= line <= len(template_lines):
        return template_lines[line - 1]
    return template_lines[-1] if template_lines else line


@dataclass(frozen=True, slots=True)
class LineIndex:
    """Offsets of line starts in a text, to turn an offset into 1-based (line, col)."""

    starts: tuple[int, ...]

    @classmethod
    def of(cls, text: str) -> LineIndex:
        # Only "\n" ends a line for JSON and YAML marks (str.splitlines would also split on
        # \r, \f, U+2028...), and the text after the last "\n" is not a line start.
        return cls((0, *accumulate(len(line) + 1 for line in text.split("\n")[:-1])))

    @staticmethod
    def position_in(text: str, offset: int) -> Position:
        """One position without indexing the whole text (C-speed count and rfind)."""
        return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)

    def position(self, offset: int) -> Position:
        line = bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1
