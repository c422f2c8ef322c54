"""The datum engine: Pachyderm's rules one at a time, laziness, identity, and properties."""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
import pickle
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.datums.glob import compile_glob
from compiler.datums.plan import (
    Combination,
    Datum,
    DatumInput,
    Match,
    Source,
    UnknownRepo,
    plan_datums,
    spell,
)
from compiler.spec.datum_input import datum_input
from compiler.spec.model import CombinedInput, CronInput, PfsInput


def pfs(name: str, glob: str, repo: str | None = None, **kw: object) -> Source:
    return Source(name, repo or name, None, compile_glob(glob), **kw)  # type: ignore[arg-type]


def paths(datums: Iterator[Datum] | list[Datum]) -> list[list[str]]:
    return [[f"{m.name}:{m.path}" for m in d.matches] for d in datums]


def plan(node: DatumInput, listing: dict[str, list[str]]) -> list[Datum]:
    return list(plan_datums(node, listing))


# --------------------------------------------------------------------------------------------
# Single inputs


def test_directories_implied_by_the_listing_match_and_are_spelled_with_a_slash() -> None:
    listing = {"r": ["/a.csv", "/dir/sub/z.csv", "/dir/x.csv"]}
    assert paths(plan(pfs("r", "/*"), listing)) == [["r:/a.csv"], ["r:/dir/"]]
    assert paths(plan(pfs("r", "/*/*"), listing)) == [["r:/dir/sub/"], ["r:/dir/x.csv"]]


def test_a_listed_directory_counts_even_when_empty() -> None:
    assert paths(plan(pfs("r", "/*"), {"r": ["/empty/", "/f"]})) == [["r:/empty/"], ["r:/f"]]


def test_root_glob_is_one_datum_unless_the_commit_is_empty() -> None:
    assert paths(plan(pfs("r", "/"), {"r": ["/a", "/b/c"]})) == [["r:/"]]
    assert plan(pfs("r", "/"), {"r": []}) == []
    assert paths(plan(pfs("r", ""), {"r": ["/a"]})) == [["r:/"]]  # "" cleans to "/"


def test_no_glob_but_the_root_glob_matches_the_root() -> None:
    assert paths(plan(pfs("r", "/**"), {"r": ["/a/b"]})) == [["r:/a/"], ["r:/a/b"]]


def test_reserved_prefixes_never_enter_a_datum() -> None:
    listing = {"r": ["/.dsc/plan.json", "/_lakefs_actions/dsc.yaml", "/data.csv",
                     "/x/.dsc/kept"]}
    assert paths(plan(pfs("r", "/**"), listing)) == [
        ["r:/data.csv"], ["r:/x/"], ["r:/x/.dsc/"], ["r:/x/.dsc/kept"]]
    only_reserved = {"r": ["/.dsc/plan.json", "/_lakefs_actions/a.yaml"]}
    assert plan(pfs("r", "/"), only_reserved) == []  # dsc's own files do not make a datum


def test_s3_input_is_always_the_whole_commit() -> None:
    assert paths(plan(pfs("r", "/", s3=True), {"r": ["/a", "/b"]})) == [["r:/"]]


def test_flags_are_carried_on_each_match() -> None:
    [datum] = plan(pfs("r", "/a", lazy=True, empty_files=True), {"r": ["/a"]})
    assert datum.matches[0].source.lazy and datum.matches[0].source.empty_files


def test_spell_gives_the_1x_form_without_trailing_slash_except_the_root() -> None:
    assert [spell(p, "1.x") for p in ("/dir/", "/", "/f")] == ["/dir", "/", "/f"]
    assert spell("/dir/", "2.x") == "/dir/"


def test_a_repo_missing_from_the_listing_is_an_error_naming_it() -> None:
    with pytest.raises(UnknownRepo, match="`absent`"):
        plan(pfs("absent", "/*"), {"r": []})


def test_cron_reads_its_tick_repo_with_glob_star() -> None:
    node = datum_input(CronInput(name="tick", spec="@every 1h", repo="p_tick"))
    listing = {"p_tick": ["/2026-11-24T10:00:00Z", "/2026-11-24T11:00:00Z"]}
    assert paths(plan(node, listing)) == [
        ["tick:/2026-11-24T10:00:00Z"], ["tick:/2026-11-24T11:00:00Z"]]


# --------------------------------------------------------------------------------------------
# Streaming


def endless(prefix: str, seen: list[str]) -> Iterator[str]:
    for i in itertools.count():
        path = f"/{prefix}{i:09d}"
        seen.append(path)
        yield path


def test_a_pfs_input_streams_its_listing() -> None:
    seen: list[str] = []
    datums = plan_datums(pfs("r", "/*"), lambda repo: endless("f", seen))
    first = list(itertools.islice(datums, 3))
    assert paths(first) == [["r:/f000000000"], ["r:/f000000001"], ["r:/f000000002"]]
    assert len(seen) == 3


def test_a_cross_streams_its_first_member() -> None:
    seen: list[str] = []

    def listing(repo: str) -> Iterator[str] | list[str]:
        return endless("f", seen) if repo == "a" else ["/x", "/y"]

    datums = plan_datums(Combination("cross", (pfs("b", "/*"), pfs("a", "/*"))), listing)
    first = list(itertools.islice(datums, 4))
    assert paths(first) == [["a:/f000000000", "b:/x"], ["a:/f000000000", "b:/y"],
                            ["a:/f000000001", "b:/x"], ["a:/f000000001", "b:/y"]]
    assert len(seen) == 2


def test_a_cross_with_an_empty_member_reads_nothing_more() -> None:
    seen: list[str] = []

    def listing(repo: str) -> Iterator[str] | list[str]:
        return endless("f", seen) if repo == "a" else []

    assert list(plan_datums(Combination("cross", (pfs("a", "/*"), pfs("b", "/*"))),
                            listing)) == []
    assert seen == []


# --------------------------------------------------------------------------------------------
# Combinations


def test_join_pairs_keys_and_outer_members_keep_their_unmatched_files() -> None:
    listing = {"left": ["/k1.csv", "/k2.csv"], "right": ["/k1.txt", "/k3.txt"]}
    left = pfs("left", "/(*).csv", join_on="$1", outer_join=True)
    right = pfs("right", "/(*).txt", join_on="$1")
    assert paths(plan(Combination("join", (left, right)), listing)) == [
        ["left:/k1.csv", "right:/k1.txt"], ["left:/k2.csv"]]


def test_a_partial_outer_match_among_three_members_is_one_datum() -> None:
    # Key k is in a (outer) and b, not c: every (a, b) tuple keeps only a's file; Pachyderm
    # stores datums by ID, so the repeats are one datum.
    listing = {"a": ["/k.1"], "b": ["/k.1", "/k.2"], "c": ["/z.1"]}
    members = (pfs("a", "/(*).*", join_on="$1", outer_join=True),
               pfs("b", "/(*).*", join_on="$1"), pfs("c", "/(*).*", join_on="$1"))
    assert paths(plan(Combination("join", members), listing)) == [["a:/k.1"]]


def test_group_of_a_join_rekeys_every_file_by_its_own_group_by() -> None:
    listing = {"l": ["/a-1", "/b-1"], "r": ["/a-2"]}
    join = Combination("join", (pfs("l", "/(?)-(?)", join_on="$1", group_by="$2"),
                                pfs("r", "/(?)-(?)", join_on="$1", group_by="$2")))
    assert sorted(sorted(d) for d in paths(plan(Combination("group", (join,)), listing))) == [
        ["l:/a-1"], ["r:/a-2"]]


def test_member_order_in_the_spec_changes_neither_datums_nor_ids() -> None:
    listing = {"a": ["/1", "/2"], "b": ["/x"]}
    one = plan(Combination("cross", (pfs("a", "/*"), pfs("b", "/*"))), listing)
    two = plan(Combination("cross", (pfs("b", "/*"), pfs("a", "/*"))), listing)
    assert paths(one) == paths(two)
    assert [d.id for d in one] == [d.id for d in two]


def test_union_members_sharing_a_name_stay_distinct_datums() -> None:
    listing = {"u0": ["/f"], "u1": ["/f"]}
    datums = plan(Combination("union", (pfs("in", "/*", repo="u0"),
                                        pfs("in", "/*", repo="u1"))), listing)
    assert paths(datums) == [["in:/f"], ["in:/f"]]
    assert datums[0].id != datums[1].id


def test_the_spec_model_converts_to_the_same_tree() -> None:
    spec_input = CombinedInput("cross", (
        PfsInput(name="b", repo="rb", glob="/*", branch="dev", join_on=None),
        PfsInput(name="a", repo="ra", glob="/*", branch=None)))
    node = datum_input(spec_input)
    assert isinstance(node, Combination)
    assert [(s.name, s.repo, s.branch) for s in node.members  # type: ignore[union-attr]
            ] == [("b", "rb", "dev"), ("a", "ra", None)]


# --------------------------------------------------------------------------------------------
# Identity


def test_datum_id_is_pinned() -> None:
    # Plans and provenance stored in lakeFS refer to datums by this ID: a change to the formula
    # would make every stored datum look new. Change this value only with a migration note.
    # The formula: BLAKE2b-256 over name, repo, branch ("" = default) and path of each match,
    # each field prefixed with its UTF-8 length as 8 big-endian bytes.
    [datum] = plan(pfs("in", "/*", repo="repo"), {"repo": ["/a.csv"]})
    fields = [b"in", b"repo", b"", b"/a.csv"]
    data = b"".join(len(f).to_bytes(8, "big") + f for f in fields)
    assert datum.id == hashlib.blake2b(data, digest_size=32).hexdigest()


def test_datum_id_depends_on_name_repo_branch_and_path() -> None:
    base = plan(pfs("in", "/*", repo="repo"), {"repo": ["/a"]})[0].id
    assert plan(pfs("in", "/*", repo="repo"), {"repo": ["/a"]})[0].id == base
    other_branch = Source("in", "repo", "dev", compile_glob("/*"))
    for changed in (plan(pfs("in2", "/*", repo="repo"), {"repo": ["/a"]}),
                    plan(pfs("in", "/*", repo="repo2"), {"repo2": ["/a"]}),
                    plan(other_branch, {"repo": ["/a"]}),
                    plan(pfs("in", "/*", repo="repo"), {"repo": ["/b"]})):
        assert changed[0].id != base
    assert len(base) == 64


def test_content_hash_follows_checksums_and_salt_but_not_s3_inputs() -> None:
    listing = {"a": ["/f"], "s": ["/x"]}
    [datum] = plan(Combination("cross", (pfs("a", "/*"), pfs("s", "/", s3=True))), listing)
    sums = {"/f": "sha-1", "/": "never read"}
    base = datum.content_hash(lambda m: sums[m.path], "salt")
    assert datum.content_hash(lambda m: sums[m.path], "salt") == base
    assert datum.content_hash(lambda m: "sha-2" if m.path == "/f" else "x", "salt") != base
    assert datum.content_hash(lambda m: sums[m.path], "other salt") != base
    assert datum.content_hash(lambda m: "sha-1" if m.path == "/f" else "changed", "salt") == base
    assert base != datum.id


# --------------------------------------------------------------------------------------------
# Properties

SEGMENTS = ["a", "b", "ab", "a.csv", "b.txt", "x-1", "x-2"]
GLOBS = ["/", "/*", "/*/*", "/**", "/a*", "/*.csv", "/**.txt", "/(*)", "/(*)/*", "/[ab]*",
         "/{a,b}/*", "/?", "/x-(?)", "/*/(*).csv", "/!(a*)", "/+(a|b)", "/*(a)b"]

trees = st.lists(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map(
    lambda parts: "/" + "/".join(parts)), max_size=12)


def _well_formed(files: list[str]) -> list[str]:
    """A listing where no path is both a file and a directory (PFS and lakeFS cannot hold one)."""
    out: list[str] = []
    for f in sorted(set(files), key=lambda p: (p.count("/"), p)):
        if not any(o.startswith(f + "/") or f.startswith(o + "/") for o in out):
            out.append(f)
    return out


def _implied(files: list[str]) -> set[str]:
    """Every file and directory a listing holds, directories spelled with a trailing "/"."""
    found = set(files)
    for f in files:
        parts = f.split("/")[1:-1]
        found.update("/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1))
    return found


@settings(max_examples=150, deadline=None)
@given(files=trees, glob=st.sampled_from(GLOBS))
def test_a_pfs_input_matches_exactly_the_listed_paths_its_glob_selects(
        files: list[str], glob: str) -> None:
    files = _well_formed(files)
    compiled = compile_glob(glob)
    expected = {p for p in _implied(files) if compiled.match(p)}
    if glob == "/" and files:
        expected = {"/"}
    got = [d.matches[0].path for d in plan(pfs("r", glob), {"r": files})]
    assert sorted(got) == sorted(expected)  # and no path twice


@settings(max_examples=100, deadline=None)
@given(trees=st.lists(trees, min_size=1, max_size=3), globs=st.lists(
    st.sampled_from(GLOBS), min_size=3, max_size=3))
def test_union_adds_and_cross_multiplies_member_counts(
        trees: list[list[str]], globs: list[str]) -> None:
    listing = {f"r{i}": _well_formed(t) for i, t in enumerate(trees)}
    members = tuple(pfs(f"in{i}", globs[i], repo=f"r{i}") for i in range(len(trees)))
    counts = [len(plan(m, listing)) for m in members]
    assert len(plan(Combination("union", members), listing)) == sum(counts)
    assert len(plan(Combination("cross", members), listing)) == math.prod(counts)


@settings(max_examples=100, deadline=None)
@given(left=trees, right=trees, glob=st.sampled_from(["/(*)", "/(*)/*", "/*/(*).csv",
                                                       "/x-(?)", "/(a)*"]))
def test_an_inner_join_never_yields_more_than_the_cross(
        left: list[str], right: list[str], glob: str) -> None:
    listing = {"l": _well_formed(left), "r": _well_formed(right)}
    members = (pfs("l", glob, join_on="$1"), pfs("r", glob, join_on="$1"))
    joined = plan(Combination("join", members), listing)
    assert len(joined) <= len(plan(Combination("cross", members), listing))
    for datum in joined:
        assert len({m.join_key for m in datum.matches}) == 1


@settings(max_examples=100, deadline=None)
@given(trees=st.lists(trees, min_size=2, max_size=2), globs=st.lists(
    st.sampled_from(GLOBS), min_size=2, max_size=2), kind=st.sampled_from(
    ["cross", "union", "join", "group"]))
def test_every_datum_path_matches_its_glob_and_exists(
        trees: list[list[str]], globs: list[str], kind: str) -> None:
    listing = {f"r{i}": _well_formed(t) for i, t in enumerate(trees)}
    members = tuple(pfs(f"in{i}", globs[i], repo=f"r{i}", join_on="$1", group_by="$1")
                    for i in range(2))
    for datum in plan(Combination(kind, members), listing):
        for m in datum.matches:
            assert m.source.glob.match(m.path)
            assert m.path == "/" or m.path in _implied(listing[m.source.repo])


def test_a_source_is_a_plain_value_and_gives_the_ids_of_its_datums() -> None:
    source = Source("texts", "texts", None, compile_glob("/*"))
    for same in (copy.deepcopy(source), pickle.loads(pickle.dumps(source))):
        assert same.datum_id("/a") == source.datum_id("/a")
    assert source.datum_id("/a") == Datum((Match(source, "/a", "", ""),)).id
    assert source.datum_id("/a") != Source("texts", "texts", "main",
                                           compile_glob("/*")).datum_id("/a")
