"""Pachyderm input globs (ohmyglob syntax) compiled to one anchored Python regular expression."""

# How Pachyderm evaluates a glob, and where each rule here comes from:
#
# * pachyderm 2.x `pfsfile.CleanPath` cleans the glob first (`path.Clean`, one leading "/", no
#   trailing "/"); `GlobFile` then tests every file *and* directory of the commit with
#   `globMatchFunction` (src/server/pfs/server/paths.go): trailing "/" trimmed from the path,
#   the root "/" special-cased to match only the glob "/".
# * the glob itself is compiled by github.com/pachyderm/ohmyglob (read at d5b4777): the lexer
#   `syntax/lexer/lexer.go` and parser `syntax/ast/parser.go` build a tree, `compiler/compiler.go`
#   turns it into a regexp2 (.NET-flavoured) regular expression anchored `\A...\z` with "/" as
#   the separator. regexp2 and Python's `re` agree on every construct that compiler emits
#   (groups, lookahead, `[^/]`, `.`, `$`), so the translation below follows ohmyglob's token
#   and tree rules exactly and only changes the regex spelling.
#
# ohmyglob is more lenient than its docs suggest and this module follows it: an unclosed "{" or
# "(" is closed at the end of the glob, a stray ")" "}" "," "|" is a literal, a trailing lone
# backslash is dropped, an unknown "[[:name:]]" is a plain character list. The inputs ohmyglob
# refuses (an unclosed "[", a backwards range, the "^(" quantifier it never implemented, an
# unreadable character) raise GlobError. The few places that deliberately differ, each where
# ohmyglob's behaviour is an accident (or random) that no pipeline can rely on, are marked
# "Deviation" below.

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CompiledGlob",
    "GlobError",
    "clean_glob",
    "compile_glob",
    "expand_template",
    "template_references",
]


class GlobError(ValueError):
    """A glob that ohmyglob would refuse."""

    def __init__(self, message: str, offset: int) -> None:
        # Both values go to ValueError so the error pickles and copies like any exception.
        super().__init__(message, offset)
        self.message = message
        self.offset = offset

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------------------------
# Cleaning (pachyderm 2.x src/internal/pfsfile/pfsfile.go CleanPath)


def clean_glob(glob: str) -> str:
    """Return the glob as Pachyderm 2.x matches it: `path.Clean`, one leading "/", no trailing "/".

    `""` -> `"/"`, `"*"` -> `"/*"`, `"dir/*"` -> `"/dir/*"`, `"/(*)/"` -> `"/(*)"`. Cleaning runs
    before glob parsing, so "." and ".." segments are resolved on the glob text itself.
    """
    return _clean_with_offsets(glob)[0]


def _clean_with_offsets(glob: str) -> tuple[str, tuple[int, ...]]:
    """Clean the glob and map each character of the result back to its index in `glob`.

    Errors are found in the cleaned glob (that is what ohmyglob parses) but reported against the
    glob the user wrote, so every kept character carries its original offset.
    """
    rooted = glob.startswith("/")
    kept: list[tuple[int, str]] = []  # (offset of the segment in `glob`, segment)
    start = 0
    for segment in glob.split("/"):
        at, start = start, start + len(segment) + 1
        if segment in ("", "."):
            continue
        if segment == "..":
            # Go path.Clean: ".." removes the previous real segment; at the root it vanishes;
            # in a relative path with nothing left to remove it stays.
            if kept and kept[-1][1] != "..":
                kept.pop()
            elif not rooted:
                kept.append((at, segment))
            continue
        kept.append((at, segment))

    chars = ["/"]
    offsets = [0]
    for index, (at, segment) in enumerate(kept):
        if index:
            chars.append("/")
            offsets.append(at - 1)
        chars.append(segment)
        offsets.extend(range(at, at + len(segment)))
    return "".join(chars), tuple(offsets)


# --------------------------------------------------------------------------------------------
# Lexing (ohmyglob syntax/lexer/lexer.go)

# ohmyglob's compiler marks the end of each `!(...)` alternative and every construct that bounds
# a negation with these two characters, then rewrites them (compiler.go closeNegDummy,
# boundaryDummy). The same markers are used here so the rewrite has the same outcome.
_CLOSE_NEGATION = "\uffff"
_BOUNDARY = "\ufffe"

_UNREADABLE = re.compile("[\x00\ud800-\udfff\ufffd-\uffff]")

# The characters that end a run of literal text depend on what is open (lexer.go
# inTextBasicBreakers and friends). "Basic" is used for text that starts with "@", "!", "^" or
# "+" not followed by "(": that text then runs over ")", "|", "}" and "," even inside a group.
_BREAK_BASIC = frozenset("?*[{(")
_BREAK_TOP = _BREAK_BASIC | frozenset("@!^+")
_BREAK_IN_CAPTURE = _BREAK_TOP | frozenset(")|")
_BREAK_IN_TERMS = _BREAK_TOP | frozenset("},")


class _Kind(enum.Enum):
    TEXT = "text"
    ANY = "*"
    SUPER = "**"
    SINGLE = "?"
    CLASS = "[...]"
    OPEN_TERMS = "{"
    OPEN_CAPTURE = "("
    SEPARATOR = ", or |"
    CLOSE = ") or }"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    at: int  # index into the cleaned glob
    text: str = ""  # TEXT: the unescaped text; OPEN_CAPTURE: the quantifier ("@" for a bare "(")
    negated: bool = False  # CLASS
    members: tuple[tuple[str, int], ...] = ()  # CLASS: its characters with their indexes


def _lex(glob: str, offsets: Sequence[int]) -> list[_Token]:
    """Split a cleaned glob into ohmyglob's tokens."""
    bad = _UNREADABLE.search(glob)
    if bad is not None:
        raise GlobError(_unreadable_message(bad.group()), offsets[bad.start()])

    tokens: list[_Token] = []
    # ohmyglob tracks open "{" and "(" with two counters, not a stack: "," closes nothing but
    # separates whenever any "{" is open, "|" whenever any "(" is open, and a "}" or ")" closes
    # whatever group is innermost. The parser below reproduces the consequences.
    terms = captures = 0
    i, end = 0, len(glob)
    while i < end:
        char = glob[i]
        following = glob[i + 1 : i + 2]
        if char == "{":
            terms += 1
            tokens.append(_Token(_Kind.OPEN_TERMS, i))
            i += 1
        elif (char == "," and terms) or (char == "|" and captures):
            tokens.append(_Token(_Kind.SEPARATOR, i))
            i += 1
        elif char == "}" and terms:
            terms -= 1
            tokens.append(_Token(_Kind.CLOSE, i))
            i += 1
        elif char == "[":
            token, i = _lex_class(glob, i, offsets)
            tokens.append(token)
        elif char == "(":
            captures += 1
            tokens.append(_Token(_Kind.OPEN_CAPTURE, i, "@"))
            i += 1
        elif char in "@!^+?*" and following == "(":
            captures += 1
            tokens.append(_Token(_Kind.OPEN_CAPTURE, i, char))
            i += 2
        elif char in "@!^+":
            i = _lex_text(glob, i, _BREAK_BASIC, tokens)
        elif char == ")" and captures:
            captures -= 1
            tokens.append(_Token(_Kind.CLOSE, i))
            i += 1
        elif char == "?":
            tokens.append(_Token(_Kind.SINGLE, i))
            i += 1
        elif char == "*":
            # "**(" is "*" followed by the "*(" quantifier, not "**" followed by "(".
            if following == "*" and glob[i + 2 : i + 3] != "(":
                tokens.append(_Token(_Kind.SUPER, i))
                i += 2
            else:
                tokens.append(_Token(_Kind.ANY, i))
                i += 1
        else:
            if terms:
                breakers = _BREAK_IN_TERMS
            elif captures:
                breakers = _BREAK_IN_CAPTURE
            else:
                breakers = _BREAK_TOP
            i = _lex_text(glob, i, breakers, tokens)
    return tokens


def _unreadable_message(char: str) -> str:
    if char == "\x00":
        # Deviation: ohmyglob reads NUL as the end of the glob in some positions and drops it in
        # others; refusing it is clearer than either.
        return "the glob contains a NUL character (\\0), which Pachyderm's glob library misreads"
    if char in (_CLOSE_NEGATION, _BOUNDARY):
        # Deviation: ohmyglob would treat these as its own internal markers and silently change
        # the glob's meaning.
        return (
            f"the glob contains the character U+{ord(char):04X}, which Pachyderm's glob library"
            " uses internally"
        )
    # lexer.go peek: U+FFFD (and anything that is not valid UTF-8) is "could not read rune".
    return "the glob contains an unreadable character (U+FFFD or invalid UTF-8)"


def _lex_text(glob: str, i: int, breakers: frozenset[str], tokens: list[_Token]) -> int:
    """Read literal text up to the next breaker; a backslash makes the next character literal."""
    start = i
    text: list[str] = []
    escaped = False
    while i < len(glob):
        char = glob[i]
        if not escaped:
            if char == "\\":
                # A backslash at the very end escapes nothing and is dropped (ohmyglob accepts it).
                escaped = True
                i += 1
                continue
            if char in breakers:
                break
        escaped = False
        text.append(char)
        i += 1
    if text:
        tokens.append(_Token(_Kind.TEXT, start, "".join(text)))
    return i


def _lex_class(glob: str, i: int, offsets: Sequence[int]) -> tuple[_Token, int]:
    """Read a "[...]" character class starting at the "[" at `i` (lexer.go fetchRange)."""
    start = i
    i += 1
    negated = in_posix = escaped = False
    members: list[tuple[str, int]] = []
    while True:
        if i >= len(glob):
            raise GlobError(
                "unclosed '[' (character class): add the closing ']', or write '\\[' to match"
                " a literal '['",
                offsets[start],
            )
        char = glob[i]
        i += 1
        if not escaped:
            if char == "\\":
                escaped = True
                continue
            if char == "[":
                in_posix = True
            if char == "]":
                if not in_posix:
                    break
                in_posix = False
            # ohmyglob takes the first unescaped "!" or "^" anywhere in the class (not only
            # right after "[") as the negation, and drops it.
            if not negated and char in "!^":
                negated = True
                continue
        escaped = False
        members.append((char, i - 1))
    if not members:
        # Deviation: ohmyglob emits the regex "[]" (or "[^]"), which regexp2 either refuses or,
        # when a later "]" follows, reads as a different class altogether.
        raise GlobError(
            "empty character class '[]' matches nothing: list the characters to match, or"
            " write '[\\]]' for a literal ']'",
            offsets[start],
        )
    return _Token(_Kind.CLASS, start, negated=negated, members=tuple(members)), i


# --------------------------------------------------------------------------------------------
# Parsing and translation (ohmyglob syntax/ast/parser.go, compiler/compiler.go)

# POSIX classes are replaced textually inside the class (parser.go `posix`), brackets included,
# so "[[:digit:]]" is the class "[0-9]" plus the literal characters "[" and "]"; ":graph:" keeps
# ohmyglob's stray "]". Names that are not in the table stay literal text.
_POSIX_CLASSES = {
    ":alnum:": "0-9A-Za-z",
    ":alpha:": "A-Za-z",
    ":ascii:": "\x00-\x7f",
    ":blank:": "\t ",
    ":cntrl:": "\x00-\x1f\x7f",
    ":digit:": "0-9",
    ":graph:": "!-~]",
    ":lower:": "a-z",
    ":print:": " -~",
    ":punct:": "!-/:-@[-`{-~",
    ":space:": "\t\n\v\f\r ",
    ":upper:": "A-Z",
    ":word:": "0-9A-Za-z_",
    ":xdigit:": "0-9A-Fa-f",
}
_POSIX_NAME = re.compile("|".join(re.escape(name) for name in _POSIX_CLASSES))

# Deviation: ohmyglob has no limit. Nesting is capped so that Python's recursive regex compiler
# can never overflow its stack (a negation nests four regex groups); no real glob comes near.
_MAX_NESTING = 50


@dataclass(slots=True)
class _Group:
    quantifier: str  # "{" for alternation, else the capture quantifier: "@", "*", "?", "+", "!"
    alternatives: list[list[str]]


def _translate(tokens: Sequence[_Token], offsets: Sequence[int]) -> str:
    """Build the regex body ohmyglob would build for these tokens (without anchors)."""
    stack = [_Group("", [[]])]
    for token in tokens:
        kind = token.kind
        pieces = stack[-1].alternatives[-1]
        if kind is _Kind.TEXT:
            # Text, "*" and "**" are "more aggressive than !(...)" and bound a negation's scope.
            pieces.append(re.escape(token.text) + _BOUNDARY)
        elif kind is _Kind.ANY:
            pieces.append("[^/]*" + _BOUNDARY)
        elif kind is _Kind.SUPER:
            pieces.append(".*" + _BOUNDARY)
        elif kind is _Kind.SINGLE:
            pieces.append("[^/]")
        elif kind is _Kind.CLASS:
            pieces.append(_class_regex(token, offsets))
        elif kind is _Kind.OPEN_TERMS or kind is _Kind.OPEN_CAPTURE:
            if token.text == "^":
                # The lexer accepts "^(" but compiler.go has no case for it: "unimplemented
                # quatifier ^". (Some docs call "^(...)" a negation; in ohmyglob it is an error.)
                raise GlobError(
                    "'^(...)' is not supported by Pachyderm's glob library: use '!(...)' to"
                    " exclude names, or write '\\^' for a literal '^'",
                    offsets[token.at],
                )
            if len(stack) > _MAX_NESTING:
                raise GlobError(
                    f"the glob nests more than {_MAX_NESTING} groups", offsets[token.at]
                )
            stack.append(_Group(token.text or "{", [[]]))
        elif kind is _Kind.SEPARATOR:
            # The lexer only emits a separator or a close while some group is open, so the
            # stack always holds more than the top-level pattern here.
            stack[-1].alternatives.append([])
        else:
            group = stack.pop()
            stack[-1].alternatives[-1].append(_group_regex(group))
    # parser.go stops at the end of input wherever it is: unclosed groups end there.
    while len(stack) > 1:
        group = stack.pop()
        stack[-1].alternatives[-1].append(_group_regex(group))
    regex = "".join(stack[0].alternatives[0])

    # compiler.go Compile: if anything that bounds a negation follows the end of the first
    # negation, each negated alternative only has to fail as a prefix; otherwise it must fail
    # up to the end of the path ("$"). `!(**)` therefore matches nothing.
    first_negation_end = regex.find(_CLOSE_NEGATION + ")")
    if first_negation_end > 0:
        bounded = _BOUNDARY in regex[first_negation_end:]
        regex = regex.replace(_CLOSE_NEGATION, "" if bounded else "$")
    return regex.replace(_BOUNDARY, "")


def _group_regex(group: _Group) -> str:
    alternatives = ["".join(pieces) for pieces in group.alternatives]
    quantifier = group.quantifier
    if quantifier == "{":
        return "(?:" + "|".join(alternatives) + ")"
    if quantifier == "!":
        negated = (_CLOSE_NEGATION + "|").join(alternatives) + _CLOSE_NEGATION
        return "((?:(?!(?:" + negated + "))[^/]*))"
    body = "|".join(alternatives)
    if quantifier == "@":
        return "(" + body + ")"
    return "((?:" + body + ")" + quantifier + ")"


def _class_regex(token: _Token, offsets: Sequence[int]) -> str:
    members = _expand_posix(token.members)
    # compiler.go writes "[" + QuoteMeta(chars) + "]": every bracket, caret and backslash is
    # escaped, so "-" between two characters is the only operator left (a backslash in the glob
    # cannot make "-" literal: the lexer already dropped it). regexp2 reads "a-z" as a range,
    # a "-" first or last as itself, and refuses a backwards range.
    parts: list[str] = []
    k = 0
    while k < len(members):
        low, low_at = members[k]
        if k + 2 < len(members) and members[k + 1][0] == "-":
            high = members[k + 2][0]
            if high < low:
                raise GlobError(
                    f"character range '{low}-{high}' runs backwards: write '{high}-{low}'",
                    offsets[low_at],
                )
            parts.append(re.escape(low) + "-" + re.escape(high))
            k += 3
        else:
            parts.append(re.escape(low))
            k += 1
    return "[" + ("^" if token.negated else "") + "".join(parts) + "]"


def _expand_posix(members: tuple[tuple[str, int], ...]) -> list[tuple[str, int]]:
    # Deviation: ohmyglob applies the table with strings.ReplaceAll in Go's random map order;
    # that only matters when names overlap (":alpha:digit:"). Left to right here.
    text = "".join(char for char, _ in members)
    expanded: list[tuple[str, int]] = []
    done = 0
    for found in _POSIX_NAME.finditer(text):
        expanded.extend(members[done : found.start()])
        at = members[found.start()][1]
        expanded.extend((char, at) for char in _POSIX_CLASSES[found.group()])
        done = found.end()
    expanded.extend(members[done:])
    return expanded


# --------------------------------------------------------------------------------------------
# The compiled glob


@dataclass(frozen=True, slots=True)
class CompiledGlob:
    """A cleaned glob and the single regex that decides which paths it selects.

    `pattern` is anchored and takes a path without its trailing "/" ("/dir/a.csv", "/dir"); the
    root is "/" and only the glob "/" matches it. `groups` counts the capture groups, numbered
    like ohmyglob's `$1`, `$2`, ... by opening parenthesis, left to right, nesting included.
    """

    source: str
    pattern: re.Pattern[str]
    groups: int

    def match(self, path: str) -> re.Match[str] | None:
        """Match one listed path; a directory's trailing "/" is ignored, as in 2.x GlobFile."""
        return self.pattern.match(path.rstrip("/") or "/")


@functools.lru_cache(maxsize=1024)
def compile_glob(glob: str) -> CompiledGlob:
    """Compile a pipeline input glob exactly as Pachyderm's ohmyglob reads it.

    Raises GlobError, with the offset into `glob` as written, for the globs ohmyglob refuses.

    Not modelled: Pachyderm 2.x `GlobFile` also narrows the listing to paths starting with the
    glob's text before its first `*?[]{}!()@+^` (`storage.GlobLiteralPrefix`). That prefix keeps
    backslashes, so in 2.x a backslash before the first wildcard makes the glob match (almost)
    nothing, while 1.x matches what this pattern matches.
    """
    source, offsets = _clean_with_offsets(glob)
    body = _translate(_lex(source, offsets), offsets)
    # globMatchFunction matches the root only for the glob "/"; for every other glob the guard
    # stops "/" (the root, once its trailing "/" is trimmed by callers) from matching "/*" etc.
    regex = r"\A/\Z" if source == "/" else r"\A(?!/\Z)" + body + r"\Z"
    try:
        pattern = re.compile(regex)
    except (re.error, RecursionError, OverflowError) as error:  # pragma: no cover - defensive
        raise GlobError(f"the glob could not be compiled ({error})", 0) from error
    return CompiledGlob(source=source, pattern=pattern, groups=pattern.groups)


# --------------------------------------------------------------------------------------------
# join_on / group_by templates (ohmyglob glob.go Replace and extract)


def template_references(template: str) -> list[int]:
    """Return the capture-group numbers a join_on / group_by template uses, in first-use order.

    Follows ohmyglob's `Replace`, which is Go's `regexp.Expand` restricted to numbers: `$n` and
    `${n}` take the longest run of digits (`$10` is group 10, `$1x` is group 1 then "x"), `$$`
    is a literal "$", and `$0` is the whole matched path (0 is included in the result).
    Anything else after a "$" (`$x`, `${x}`, `${1`, `${}`, a final "$") is not an error in
    Pachyderm: the "$" is kept as literal text, so those templates are accepted here too.

    Raises GlobError (offset of the "$") only for references Pachyderm cannot evaluate: a number
    with a leading zero (`$01`), more than nine digits, or non-ASCII digits. ohmyglob turns
    those into group -1 and indexes its match with it, which panics the worker.
    """
    seen: list[int] = []
    for piece in _parse_template(template):
        if isinstance(piece, int) and piece not in seen:
            seen.append(piece)
    return seen


def expand_template(template: str, match: re.Match[str]) -> str:
    """Fill a join_on / group_by template from a match, as ohmyglob's `Replace` does.

    `$n` and `${n}` become capture n ("" when n is beyond the glob's groups or did not take
    part in the match), `$$` becomes "$", malformed references stay literal text.
    """
    groups = match.re.groups
    out: list[str] = []
    for piece in _parse_template(template):
        if isinstance(piece, str):
            out.append(piece)
        elif piece <= groups:
            out.append(match.group(piece) or "")
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def _parse_template(template: str) -> tuple[str | int, ...]:
    pieces: list[str | int] = []
    literal: list[str] = []
    i = 0
    while True:
        dollar = template.find("$", i)
        if dollar < 0:
            literal.append(template[i:])
            break
        literal.append(template[i:dollar])
        if template.startswith("$$", dollar):
            literal.append("$")
            i = dollar + 2
            continue
        reference = _reference_at(template, dollar)
        if reference is None:
            literal.append("$")
            i = dollar + 1
            continue
        number, i = reference
        if any(literal):
            pieces.append("".join(literal))
        literal = []
        pieces.append(number)
    if any(literal):
        pieces.append("".join(literal))
    return tuple(pieces)


def _reference_at(template: str, dollar: int) -> tuple[int, int] | None:
    """Read `$n` / `${n}` at `dollar`: (group number, end index), or None if it is not one."""
    i = dollar + 1
    braced = template.startswith("{", i)
    if braced:
        i += 1
    start = i
    # Go's unicode.IsDigit is the Unicode category Nd, which is what str.isdecimal tests.
    while i < len(template) and template[i].isdecimal():
        i += 1
    name = template[start:i]
    if not name:
        return None
    if braced:
        if not template.startswith("}", i):
            return None
        i += 1
    shown = template[dollar:i]
    if not name.isascii():
        problem = "uses non-ASCII digits"
    elif name[0] == "0" and len(name) > 1:
        problem = "has a leading zero"
    elif len(name) > 9:
        problem = "has more than nine digits"
    else:
        return int(name), i
    raise GlobError(
        f"'{shown}' {problem}: Pachyderm's glob library crashes on such a group reference",
        dollar,
    )
