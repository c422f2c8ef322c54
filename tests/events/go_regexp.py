"""Go `regexp` patterns (RE2 syntax) as Python `re` patterns, for the constructs both read alike.

A `type: string` data filter compiles each value with `regexp.Compile` and tests it with
`Regexp.Match`: true when the pattern matches anywhere (filter.go filterData), i.e. `re.search`.
The translation keeps Go's meaning where Python differs on a construct dsc may use:

* `$` (no multi-line flag) is end of text in Go; Python's `$` also matches before a final
  newline, so it becomes `\\Z`. Go's `\\z` is the same `\\Z`.
* `\\d`, `\\w`, `\\b` are ASCII in Go (re.ASCII); `\\s` is `[\\t\\n\\f\\r ]` in Go (no `\\v`).
* `{,n}` is a literal in Go but a repeat in Python.

Everything else Go rejects or reads differently raises Unsupported: backreferences (`\\1`),
lookarounds, atomic groups, possessive or nested repeats, inline flags, `\\p{..}`, `\\Q..\\E`,
`[[:alpha:]]`, `(?<name>`, `(?P=name)`, repeat counts over 1000.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tests.events.unsupported import Unsupported

_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"  # regexp/syntax isPunct
_GO_SPACE = "\\t\\n\\f\\r "
_KEPT_ESCAPES = "dDwWbBAtnrfva"
_CLASS_ESCAPES = "dDwWtnrfva"
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_GROUP_NAME = re.compile(r"\(\?P<([A-Za-z0-9_]+)>")
_MAX_REPEAT = 1000  # regexp/syntax maxRepeat


def go_regexp_search(pattern: str, text: str) -> bool:
    """`regexp.MustCompile(pattern).Match([]byte(text))`."""
    return compile_go_regexp(pattern).search(text) is not None


@lru_cache(maxsize=256)
def compile_go_regexp(pattern: str) -> re.Pattern[str]:
    """Translate and compile; Unsupported where the model cannot vouch for Go's reading."""
    translated = translate(pattern)
    try:
        return re.compile(translated, re.ASCII)
    except re.error as err:
        raise Unsupported(f"regexp {pattern!r} does not compile in Python ({err}); "
                          "the model cannot tell what Go makes of it") from err


def translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    after_atom = False  # a repeat operator needs something to repeat
    after_repeat = False
    while i < len(pattern):
        ch = pattern[i]
        repeat = _repeat_at(pattern, i)
        if repeat is not None:
            if after_repeat:
                raise Unsupported(f"nested or possessive repetition in {pattern!r}")
            if not after_atom:
                raise Unsupported(f"repetition without an operand in {pattern!r}")
            out.append(repeat)
            i += len(repeat)
            if i < len(pattern) and pattern[i] == "?":  # lazy: same match/no-match answer
                out.append("?")
                i += 1
            after_atom, after_repeat = False, True
            continue
        after_repeat = False
        if ch == "\\":
            piece, i = _escape(pattern, i, in_class=False)
            out.append(piece)
            after_atom = True
        elif ch == "[":
            piece, i = _char_class(pattern, i)
            out.append(piece)
            after_atom = True
        elif ch == "(":
            piece, i = _group_open(pattern, i)
            out.append(piece)
            after_atom = False
        elif ch == "$":
            out.append("\\Z")
            i += 1
            after_atom = False  # Go repeats an assertion, Python refuses: leave it Unsupported
        elif ch in "|^":
            out.append(ch)
            i += 1
            after_atom = False
        elif ch == "{":
            out.append("\\{")  # not a valid repeat, so a literal in Go
            i += 1
            after_atom = True
        else:
            out.append(ch)
            i += 1
            after_atom = True
    return "".join(out)


def _repeat_at(pattern: str, i: int) -> str | None:
    ch = pattern[i]
    if ch in "*+?":
        return ch
    if ch != "{":
        return None
    if pattern.startswith("{,", i):
        raise Unsupported(f"{{,n}} is a literal in Go but a repeat in Python: {pattern!r}")
    match = _REPEAT.match(pattern, i)
    if match is None:
        return None
    low = int(match.group(1))
    high = match.group(3)
    if low > _MAX_REPEAT or (high and int(high) > _MAX_REPEAT):
        raise Unsupported(f"repeat count over {_MAX_REPEAT} in {pattern!r} (Go rejects it)")
    if high and int(high) < low:
        raise Unsupported(f"invalid repeat range in {pattern!r}")
    return match.group(0)


def _group_open(pattern: str, i: int) -> tuple[str, int]:
    if not pattern.startswith("(?", i):
        return "(", i + 1
    if pattern.startswith("(?:", i):
        return "(?:", i + 3
    named = _GROUP_NAME.match(pattern, i)
    if named is not None:
        return named.group(0), named.end()
    raise Unsupported(f"group syntax {pattern[i:i + 4]!r}... in {pattern!r} (lookaround, flags, "
                      "atomic or other groups Go rejects or reads differently)")


def _escape(pattern: str, i: int, *, in_class: bool) -> tuple[str, int]:
    if i + 1 == len(pattern):
        raise Unsupported(f"trailing backslash in {pattern!r}")
    ch = pattern[i + 1]
    kept = _CLASS_ESCAPES if in_class else _KEPT_ESCAPES
    if ch in kept:
        return "\\" + ch, i + 2
    if ch == "s":
        return (_GO_SPACE if in_class else f"[{_GO_SPACE}]"), i + 2
    if ch == "S" and not in_class:
        return f"[^{_GO_SPACE}]", i + 2
    if ch == "z" and not in_class:
        return "\\Z", i + 2
    if ch == "x":
        digits = pattern[i + 2:i + 4]
        if len(digits) == 2 and all(c in "0123456789abcdefABCDEF" for c in digits):
            return "\\x" + digits, i + 4
        raise Unsupported(f"\\x escape other than \\xHH in {pattern!r}")
    if ch in _PUNCT:
        return "\\" + ch, i + 2
    raise Unsupported(f"escape \\{ch} in {pattern!r} (backreference, octal, \\p, \\Q or an "
                      "escape Go rejects)")


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    out = ["["]
    i += 1
    if i < len(pattern) and pattern[i] == "^":
        out.append("^")
        i += 1
    first = True
    while i < len(pattern):
        ch = pattern[i]
        if ch == "]" and not first:
            out.append("]")
            return "".join(out), i + 1
        if ch == "]":
            out.append("\\]")  # a leading ] is a literal in Go and in Python
            i += 1
        elif ch == "[":
            raise Unsupported(f"'[' inside a character class ([:name:] or nesting) in {pattern!r}")
        elif ch == "\\":
            piece, i = _escape(pattern, i, in_class=True)
            out.append(piece)
        elif pattern[i:i + 2] in ("--", "&&", "~~", "||"):
            raise Unsupported(f"{pattern[i:i + 2]!r} in a class reads differently in Python")
        else:
            out.append(ch)
            i += 1
        first = False
    raise Unsupported(f"unterminated character class in {pattern!r}")
