"""Tests for compiler.datums.glob: Pachyderm globs, their errors and join/group templates."""

from __future__ import annotations

import json
import pickle
import re
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.datums.glob import (
    CompiledGlob,
    GlobError,
    clean_glob,
    compile_glob,
    expand_template,
    template_references,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
DATUM_CASES = SHARED / "reference" / "pachyderm" / "datum_cases.json"


def select(glob: str, files: list[str]) -> set[str]:
    """The datums a single pfs input yields: matching files, directories (2.x "dir/") and root."""
    listing = set(files)
    for file in files:
        parts = file.strip("/").split("/")
        listing.update("/" + "/".join(parts[:depth]) + "/" for depth in range(1, len(parts)))
    if files:  # an empty commit lists nothing, not even the root (datums.md §1 rule 2)
        listing.add("/")
    compiled = compile_glob(glob)
    return {path for path in listing if compiled.match(path)}


# --------------------------------------------------------------------------------------------
# datum_cases.json: every single pfs/atom input


def single_input_cases() -> list[Any]:
    if not DATUM_CASES.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{DATUM_CASES} is absent"))]
    cases = json.loads(DATUM_CASES.read_text(encoding="utf-8"))
    return [
        pytest.param(case, id=case["name"])
        for case in cases
        if set(case["input"]) & {"pfs", "atom"}
    ]


@pytest.mark.parametrize("case", single_input_cases())
def test_datum_cases_single_input(case: dict[str, Any]) -> None:
    (spec,) = case["input"].values()
    (files,) = [case["files"][spec["repo"]]]
    assert all(len(datum) == 1 for datum in case["expected_datums"])
    expected = {datum[0] for datum in case["expected_datums"]}
    got = select(spec["glob"], files)
    if "2.x" not in case["version"]:
        # 1.x spells directories without the trailing "/".
        got = {path.rstrip("/") or "/" for path in got}
    assert got == expected


def test_datum_cases_cover_the_glob_features() -> None:
    if not DATUM_CASES.is_file():
        pytest.skip(f"{DATUM_CASES} is absent")
    assert len(single_input_cases()) >= 20


# --------------------------------------------------------------------------------------------
# datums.md §1 worked example

WORKED_FILES = [
    "/a.csv",
    "/b.txt",
    "/dir/x.csv",
    "/dir/y.txt",
    "/dir/sub/z.csv",
    "/other/q.csv",
]


@pytest.mark.parametrize(
    ("glob", "datums"),
    [
        ("/", {"/"}),
        ("/*", {"/a.csv", "/b.txt", "/dir/", "/other/"}),
        ("/*/*", {"/dir/sub/", "/dir/x.csv", "/dir/y.txt", "/other/q.csv"}),
        ("/dir/*", {"/dir/sub/", "/dir/x.csv", "/dir/y.txt"}),
        (
            "/**",
            {
                "/a.csv",
                "/b.txt",
                "/dir/",
                "/dir/sub/",
                "/dir/sub/z.csv",
                "/dir/x.csv",
                "/dir/y.txt",
                "/other/",
                "/other/q.csv",
            },
        ),
        ("/**.csv", {"/a.csv", "/dir/sub/z.csv", "/dir/x.csv", "/other/q.csv"}),
        ("/*.{csv,txt}", {"/a.csv", "/b.txt"}),
        ("/[ab].*", {"/a.csv", "/b.txt"}),
        ("/[!a]*", {"/b.txt", "/dir/", "/other/"}),
    ],
)
def test_worked_example(glob: str, datums: set[str]) -> None:
    assert select(glob, WORKED_FILES) == datums


def test_empty_commit_has_no_datums_even_for_root() -> None:
    assert select("/", []) == set()


# --------------------------------------------------------------------------------------------
# Cleaning and the root


@pytest.mark.parametrize(
    ("glob", "cleaned"),
    [
        ("", "/"),
        ("/", "/"),
        (".", "/"),
        ("*", "/*"),
        ("dir/*", "/dir/*"),
        ("/(*)/", "/(*)"),
        ("//a//b//", "/a/b"),
        ("/a/./b/../c", "/a/c"),
        ("/..", "/"),
        ("a/..", "/"),
        ("../a", "/../a"),
        ("a/../../b", "/../b"),
    ],
)
def test_clean_glob(glob: str, cleaned: str) -> None:
    assert clean_glob(glob) == cleaned
    assert compile_glob(glob).source == cleaned


def test_root_matches_only_the_root_glob() -> None:
    assert compile_glob("/").match("/") is not None
    assert compile_glob("").match("/") is not None
    assert compile_glob("/").match("/a") is None
    for glob in ("/*", "/**", "**", "/*(x)", "/!(x)", "/{,a}"):
        assert compile_glob(glob).match("/") is None, glob
        assert compile_glob(glob).pattern.match("/") is None, glob


def test_directory_trailing_slash_is_ignored() -> None:
    compiled = compile_glob("/*")
    assert compiled.match("/dir/") is not None
    assert compiled.match("/dir") is not None
    assert compiled.match("/dir/x") is None


def test_compiled_glob_is_cached_and_a_single_pattern() -> None:
    compiled = compile_glob("/data/*.csv")
    assert compile_glob("/data/*.csv") is compiled
    assert isinstance(compiled, CompiledGlob)
    assert isinstance(compiled.pattern, re.Pattern)
    assert compiled.pattern.match("/data/a.csv") is not None
    assert compiled.pattern.match("/data/sub/a.csv") is None


# --------------------------------------------------------------------------------------------
# Syntax


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("/foo*2", "/foo2", True),
        ("/foo?1", "/foo1", False),
        ("/foo?1", "/foo21", True),
        ("/*", "/a/b", False),
        ("/**", "/a/b/c", True),
        ("/**test*.txt", "/foo-2/foo-2_1/anothertest.txt", True),
        ("**.2", "/dir1/file1.2", True),
        ("/[a-c]x", "/bx", True),
        ("/[a-c]x", "/dx", False),
        # A negated class compiles to [^...] and does not exclude "/".
        ("/a[!b]c", "/a/c", True),
        ("/a[^b]c", "/abc", False),
        ("/[[:digit:]]", "/7", True),
        ("/[[:digit:]]", "/x", False),
        ("/[[:alpha:]]", "/[", True),  # ohmyglob keeps the brackets as class members
        ("/[[:foo:]]", "/f", True),  # unknown POSIX name: a plain list of characters
        ("/[[:foo:]]", "/x", False),
        ("/{a,b{c,d}}.csv", "/bd.csv", True),
        ("/{a,b{c,d}}.csv", "/b.csv", False),
        ("/{*.csv,sub/*}", "/sub/x", True),
        ("/(*)-(*).csv", "/2020-01.csv", True),
        ("/@(a|b)", "/b", True),
        ("/*(ab)", "/ababab", True),
        ("/+(ab)", "/", False),
        ("/?(ab)c", "/c", True),
        ("/!(*.csv)", "/a.txt", True),
        ("/!(*.csv)", "/a.csv", False),
        ("/!(**)", "/anything", False),
        ("!(**)", "/foo1", False),
        ("/a\\*b", "/a*b", True),
        ("/a\\*b", "/axb", False),
        ("/\\(x\\)", "/(x)", True),
        ("/a.b+c^d$e", "/a.b+c^d$e", True),  # regex metacharacters are literal
        ("/a.b", "/axb", False),
        # ohmyglob accepts these and so do we (see module comment):
        ("/{a,b", "/b", True),  # unclosed "{" closes at the end
        ("/(a|b", "/b", True),  # unclosed "(" closes at the end
        ("/a)b}c,d|e", "/a)b}c,d|e", True),  # stray closers and separators are literal
        ("/foo\\", "/foo", True),  # a trailing lone backslash is dropped
        ("/(a|!b|c)", "/!b|c)", True),  # text after a bare "!" runs over "|" and ")"
        ("/{a,(b,c)}", "/c)", True),  # ")" is text inside "{...}"; "}" closes the "("
    ],
)
def test_glob_syntax(glob: str, path: str, matches: bool) -> None:
    assert (compile_glob(glob).match(path) is not None) is matches


# A selection of github.com/pachyderm/ohmyglob's own match tests (glob_test.go, extglob_test.go)
# whose glob and path contain no "/": a leading "/" is added to both so cleaning changes nothing.
OHMYGLOB_VECTORS = [
    ("*.(a|b)", "a.a.a", True),
    ("*.(a|b)", "a.bb", False),
    ("*.(a|b)*", "a.ccc", False),
    ("??", "a", False),
    ("?(a*|b)", "ax", True),
    ("?@(a|b)*@(c)d", "abcd", True),
    ("(*(a|b\\[)|f*)", "foo", True),
    ("(a+|b)+", "abcdef", False),
    ("[a*\\(]*z", "abcz", True),
    ("[a*\\(]*z", "abcx", False),
    ("@(ab|a*(b))*(c)d", "abbcd", True),
    ("@(b+(c)d|e*(f)g?|?(h)i@(j|k))", "effgz", True),
    ("@(b+(c)d|e+(f)g?|?(h)i@(j|k))", "egz", False),
    ("@(foo|f|fo)*(f|of+(o))", "foofoofo", True),
    ("*;[1-9]*([0-9])", '"MS.FILE;1"', False),
    ("*;[1-9]**([0-9])*", '"MS.FILE;13"', True),
    ("*(*(of*(o)x)o)", "ofoooxoofxoofoooxoofxofo", False),
    ("*(*(of*(o)x)o)", "ofoooxoofxo", True),
    ("*(a|b\\[)", "*(a|b[)", False),
    ("*(f*(o)x)", "foooxfooxofoxfooox", False),
    ("*(oxf+(ox))", "oxfoxoxfox", True),
    ("+()c", "abc", False),
    ("+([0-7])", "09", False),
    ("+([0-7])", "0377", True),
    ("a[b*(foo|bar)]d", "abd", True),
    ("a[b*(foo|bar)]d", "abc", False),
    ("a\\(*b", "a((((b", True),
    ("ab**(e|f)g", "abcfefg", True),
    ("ab**(e|f)g", "ab", False),
    ("ab***ef", "abcdef", True),
    ("ab*d+(e|f)", "abcdef", True),
    ("para?([345]|99)1", "para381", False),
    ("para*([0-9])", "para", True),
    ("para+([0-9])", "para", False),
    ("\\\\$..!(!())", "\\$..", True),
    ("!(*.js|*.json)", "a.js", False),
    ("!(*.js|*.json)", "a.js.gz", True),
    ("a*!(x)", "ax", True),
    ("a!(x)", "ax", False),
    ("!(x)", "foo/bar", False),
    ("!(!(foo))", "foo", True),
    ("!(!(!(foo)))", "foo", False),
    ("!(foo)*", "foobar", False),
    ("!(*.*).!(*.*)", "moo.cow", False),
    ("mu!(*(c))?.pa!(*(z))?", "mucca.pazza", False),
    ("+(!(f))", "fff", True),
    ("*(!(f))", "f", False),
    ("@(!(z*)|*x)", "zoox", True),
    ("@(!(z*)|*x)", "zoot", False),
    ("!(foo)b*", "foobb", False),
    ("*.!(js|css)", "bar.min.js", True),
    ("!*.+(js|css)", "bar.min.js", False),
    ("!(*(*.json|!(*.js)))*", "other.bar", False),
    ("*.!(js)*.!(xyz)*", "asd.js.xyz", False),
    ("*-!(integration-)test.js", "a-integration-test.js", True),
    ("*-!(integration)-test.js", "a-integration-test.js", False),
    ("*te!(gration-te)st.js", "a-integration-test.js", True),
    ("*?!(integration)?test.js", "a-integration-test.js", True),
    ("**(.js.js)", "foo.js.js", True),
    ("*(.js.js)", "foo.js.js", False),
    ("*.!(js)", "foo.js.js", True),
    ("*.!(js)*", "foo.js.js", False),
    ("?(*.json|!(*.js))", "foojs.js", False),
    ("!(*.[a-b]*)", "a.a", False),
    ("*.!(a|b|c)", "a.abcd", True),
    ("* ?at * eyes", "my cat has very bright eyes", True),
    ("*ä", "åä", True),
    ("\\*", "*", True),
    ("**is**a***test*", "this is a test", True),
    ("sta?n", "stagnation", False),
    ("{abc,abcd}a", "abcda", True),
    ("{*,**}{a,b}", "ac", False),
    ("[a-z]", "C", False),
    ("[[:^alpha:]]", ".", True),
    ("[^[:alpha:]]", ".", True),
    ("[[:space:]]", "\t", True),
    ("[![:graph:]]", "!", False),
    ("[a-z][!a-x]*cat*[h][!b]*eyes*", "my cat has very bright eyes", True),
    ("[a-z][!a-x]*cat*[h][!b]*eyes*", "my dog has very bright eyes", False),
    ("{abc*[a-c]def,abc?[d-g]def,abc[zte]?def}", "abczqdef", True),
]


@pytest.mark.parametrize(("glob", "path", "matches"), OHMYGLOB_VECTORS)
def test_ohmyglob_vectors(glob: str, path: str, matches: bool) -> None:
    assert (compile_glob("/" + glob).match("/" + path) is not None) is matches


# --------------------------------------------------------------------------------------------
# Captures


def test_capture_numbering_by_opening_parenthesis() -> None:
    compiled = compile_glob("/*/(bar-(123))/*")
    assert compiled.groups == 2
    found = compiled.match("/foo/bar-123/baz")
    assert found is not None
    assert found.group(1) == "bar-123"
    assert found.group(2) == "123"


@pytest.mark.parametrize(
    ("glob", "path", "captures"),
    [
        ("/(*)-(*).csv", "/2020-01.csv", ("2020", "01")),
        ("/foo(?)(?)", "/foo12", ("1", "2")),
        ("/*-PATID(*)-*.txt", "/T1-PATID7-x.txt", ("7",)),
        ("/{a,b}(*)", "/bcd", ("cd",)),  # braces do not capture
        # ohmyglob capture_test.go, with "/" prepended:
        ("/test/(a|b)/x.go", "/test/b/x.go", ("b",)),
        ("/test/a*(a|b)/x.go", "/test/aba/x.go", ("ba",)),
        ("/test/a*(a|b)/x.go", "/test/a/x.go", ("",)),
        ("/test/+(a|b)/x.go", "/test/aba/x.go", ("aba",)),
        ("/test/a?(a|b)/x.go", "/test/a/x.go", ("",)),
        ("/test/!(a|b)/x.go", "/test/y/x.go", ("y",)),
        ("/test/a*(a|b)/*(*).go", "/test/aaaa/x.go", ("aaa", "x")),
        ("/test*(/?(+(a|b)/*.go))", "/test/a/x.go", ("/a/x.go", "a/x.go", "a")),
    ],
)
def test_captures(glob: str, path: str, captures: tuple[str, ...]) -> None:
    compiled = compile_glob(glob)
    found = compiled.match(path)
    assert found is not None
    assert compiled.groups == len(captures)
    assert tuple(group or "" for group in found.groups()) == captures


# --------------------------------------------------------------------------------------------
# Templates


def matched(glob: str, path: str) -> re.Match[str]:
    found = compile_glob(glob).match(path)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("glob", "path", "template", "expanded"),
    [
        # ohmyglob capture_test.go TestReplaceGlob, with "/" prepended
        ("/name=(*)", "/name=adele", "$1", "adele"),
        ("/name=(*)", "/name=adele", "${1}1", "adele1"),
        ("/name=(*)", "/name=adele", "$$1", "$1"),
        ("/(((((((((??)))))))))*(a|b)", "/xfbaaaababbbabaa", "$10", "baaaababbbabaa"),
        (
            "/name=(*)/year=(*)/(*).dat",
            "/name=adele/year=2016/photos.dat",
            "$3 of $1 from $2",
            "photos of adele from 2016",
        ),
        (
            "/name=(*)/year=(*)/(*).dat",
            "/name=adele/year=2016/p.dat",
            "$0",
            "/name=adele/year=2016/p.dat",
        ),
        (
            "/name=!(adele)/year=(2?1(?))/(*).dat",
            "/name=roxanne/year=2514/puzzle.dat",
            "$1 from the $3th year of the decade, obtained a $4",
            "roxanne from the 4th year of the decade, obtained a puzzle",
        ),
        # datums.md §3 join examples
        ("/foo(?)(?)", "/foo12", "$1$2", "12"),
        ("/foo(?)(?)", "/foo12", "$2$1", "21"),
        ("/(*)-(*).csv", "/2020-01.csv", "$1-$2", "2020-01"),
        # missing and non-participating groups give ""
        ("/(*).csv", "/a.csv", "$2", ""),
        ("/*.csv", "/a.csv", "$1", ""),
        ("/@(x|(y))", "/x", "[$2]", "[]"),
        # malformed references stay literal text (ohmyglob Replace)
        ("/(*)", "/a", "${1", "${1"),
        ("/(*)", "/a", "$x", "$x"),
        ("/(*)", "/a", "${}", "${}"),
        ("/(*)", "/a", "${x}", "${x}"),
        ("/(*)", "/a", "cost$", "cost$"),
        ("/(*)", "/a", "$1x", "ax"),
        ("/(*)", "/a", "", ""),
    ],
)
def test_expand_template(glob: str, path: str, template: str, expanded: str) -> None:
    assert expand_template(template, matched(glob, path)) == expanded


@pytest.mark.parametrize(
    ("template", "references"),
    [
        ("", []),
        ("plain", []),
        ("$1", [1]),
        ("$1$2", [1, 2]),
        ("${2}-$1-$2", [2, 1]),
        ("$10", [10]),
        ("$0", [0]),
        ("$$1", []),
        ("$$$1", [1]),
        ("${1", []),
        ("$x", []),
        ("${x}", []),
        ("a$", []),
        ("$1x$3", [1, 3]),
        ("$999999999", [999999999]),
    ],
)
def test_template_references(template: str, references: list[int]) -> None:
    assert template_references(template) == references


@pytest.mark.parametrize(
    ("template", "offset", "fragment"),
    [
        ("$01", 0, "leading zero"),
        ("a-${007}", 2, "leading zero"),
        ("$1$1234567890", 2, "more than nine digits"),
        ("x$\u0663", 1, "non-ASCII digits"),
    ],
)
def test_template_errors(template: str, offset: int, fragment: str) -> None:
    with pytest.raises(GlobError) as raised:
        template_references(template)
    assert raised.value.offset == offset
    assert fragment in raised.value.message
    with pytest.raises(GlobError):
        expand_template(template, matched("/(*)", "/a"))


# --------------------------------------------------------------------------------------------
# Errors, with the offset into the glob as the user wrote it


@pytest.mark.parametrize(
    ("glob", "offset", "fragment"),
    [
        ("/[abc", 1, "unclosed '['"),
        ("dir/[abc", 4, "unclosed '['"),  # cleaning adds a "/"; the offset is into the input
        ("/a/./[x", 5, "unclosed '['"),  # cleaning drops "./"
        ("//data/../[", 10, "unclosed '['"),
        ("/{a,[b}", 4, "unclosed '['"),
        ("/x[a\\]", 2, "unclosed '['"),
        ("/[]", 1, "empty character class"),
        ("/x[!]", 2, "empty character class"),
        ("/[z-a]", 2, "runs backwards"),
        ("/[a-cz-b]", 5, "runs backwards"),
        ("/^(a|b)", 1, "'^(...)' is not supported"),
        ("/x{a,^(b)}", 5, "'^(...)' is not supported"),
        ("/a\x00b", 2, "NUL"),
        ("/\ufffd", 1, "unreadable character"),
        ("/\ud800", 1, "unreadable character"),
        ("/x\uffff", 2, "U+FFFF"),
        ("/" + "{" * 60, 51, "nests more than 50 groups"),
    ],
)
def test_glob_errors(glob: str, offset: int, fragment: str) -> None:
    with pytest.raises(GlobError) as raised:
        compile_glob(glob)
    assert raised.value.offset == offset
    assert fragment in raised.value.message
    assert str(raised.value) == raised.value.message
    assert isinstance(raised.value, ValueError)


def test_glob_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(GlobError("unclosed '['", 3)))
    assert (error.message, error.offset) == ("unclosed '['", 3)


# --------------------------------------------------------------------------------------------
# Properties

GLOB_ALPHABET = "*?[]{}()!@+^|,\\/-:.ab $"


@given(st.one_of(st.text(), st.text(alphabet=GLOB_ALPHABET, max_size=40)))
def test_compile_glob_only_raises_glob_error(glob: str) -> None:
    try:
        compiled = compile_glob(glob)
    except GlobError as error:
        assert 0 <= error.offset < len(glob)
        assert error.message
        return
    assert compiled.source == clean_glob(glob)
    assert compiled.groups == compiled.pattern.groups
    for path in ("/", "/a", "/a/b", "/ab.b", compiled.source):
        compiled.match(path)


LITERAL_NAMES = st.text(
    alphabet=string.ascii_letters + string.digits + string.punctuation.replace("/", "") + " ",
    min_size=1,
    max_size=20,
).filter(lambda name: name not in (".", ".."))


@given(LITERAL_NAMES)
def test_backslash_escapes_every_character(name: str) -> None:
    compiled = compile_glob("/" + "".join("\\" + char for char in name))
    assert compiled.match("/" + name) is not None
    assert compiled.match("/" + name + "x") is None
    assert compiled.groups == 0


@given(st.text(alphabet=string.printable.replace("$", "")))
def test_templates_without_dollar_are_literal(template: str) -> None:
    assert template_references(template) == []
    assert expand_template(template, matched("/(*)", "/a")) == template
