"""Datums from the file listings of a pipeline's inputs: pfs, cross, union, join, group, cron.

Pure and lazy: `plan_datums` reads each repo's listing as an iterable of paths and yields one
`Datum` at a time, holding only what a combination needs (the members of a cross after the
first, the keyed files of a join or group). Every rule follows Pachyderm 2.x
(`src/server/worker/datum/worker.go`, `create.go`; see ../shared/reference/pachyderm/datums.md):

* a pfs input tests every file and every directory implied by the listing against its glob,
  and each match is one datum; a directory holds everything below it. The root matches only
  the glob "/", and only when the commit holds something (an empty commit has no entries);
* an `s3` input is always the single datum "/" (nothing is downloaded for it);
* cron is a pfs input with glob "/*" over its tick repo (2.x `createCron`): one datum per
  tick file (`compiler.spec.datum_input` builds that source);
* cross is the product of its members (a member with no datums makes it empty), union their
  concatenation;
* join and group key every matched path of every member datum by `join_on` / `group_by`,
  filled from the path's own glob captures (ohmyglob `Replace`, "" without a template). Join
  crosses, per key, the files of each member that has it; a key some member lacks yields the
  `outer_join` files of the tuple, if any (2.x `processMergeTask`). Group makes one datum per
  key holding every file with that key, repeats included;
* members of every combination are sorted by input name first (Pachyderm `SortInput`), so
  reordering them in a spec changes neither the datums nor their IDs.

Paths are absolute and "/"-separated; a listed path that ends in "/" names a directory.
Directory matches are reported the 2.x way, with a trailing "/" (`spell` gives the 1.x form).
The reserved prefixes `.dsc/` (dsc's own bookkeeping) and `_lakefs_actions/` (lakeFS hooks)
never enter a datum.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from compiler.datums.glob import CompiledGlob, expand_template

__all__ = [
    "RESERVED_PREFIXES",
    "Combination",
    "Datum",
    "DatumInput",
    "Listing",
    "Match",
    "Source",
    "UnknownRepo",
    "is_reserved",
    "plan_datums",
    "sources",
    "spell",
]

RESERVED_PREFIXES = ("/.dsc/", "/_lakefs_actions/")
CRON_GLOB = "/*"

Listing = Callable[[str], Iterable[str]]


class UnknownRepo(LookupError):
    """The listing has nothing for a repo an input reads."""

    def __init__(self, repo: str) -> None:
        super().__init__(repo)
        self.repo = repo

    def __str__(self) -> str:
        return f"no listing for repo `{self.repo}`"


def is_reserved(path: str) -> bool:
    """Whether `path` (absolute) lies under `.dsc/` or `_lakefs_actions/`."""
    return path.startswith(RESERVED_PREFIXES)


def spell(path: str, dialect: str) -> str:
    """A matched path as the given dialect prints it: 1.x has no trailing "/" on directories."""
    if dialect == "1.x" and len(path) > 1 and path.endswith("/"):
        return path[:-1]
    return path


@dataclass(frozen=True, slots=True, eq=False)
class Source:
    """One input that reads files (a pfs input, or a cron input's tick repo)."""

    name: str
    repo: str
    branch: str | None
    glob: CompiledGlob
    join_on: str | None = None
    group_by: str | None = None
    outer_join: bool = False
    lazy: bool = False
    empty_files: bool = False
    s3: bool = False
    # What every datum ID hashes for a match of this source before its path (length-prefixed
    # name, repo and branch), encoded once here rather than once per datum.
    id_prefix: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id_prefix", b"".join(
            _field(value) for value in (self.name, self.repo, self.branch or "")))

    def datum_id(self, path: str) -> str:
        """`Datum.id` of the datum of one match of this source, at `path`: a copy of the
        prefix's hash, updated (a third cheaper than hashing the prefix again). The hash is
        kept beside the class, not in the Source, which stays a plain value to copy."""
        prefix = _PREFIX_HASHES.get(self.id_prefix)
        if prefix is None:
            prefix = _PREFIX_HASHES[self.id_prefix] = hashlib.blake2b(self.id_prefix,
                                                                      digest_size=32)
        digest = prefix.copy()
        digest.update(_field(path))
        return str(digest.hexdigest())


_PREFIX_HASHES: dict[bytes, Any] = {}  # Source.id_prefix -> its BLAKE2b, to copy


def _field(value: str) -> bytes:
    data = value.encode("utf-8", "surrogatepass")
    return len(data).to_bytes(8, "big") + data


class Match:
    """One matched path of one source: a file, or a directory (its path ends in "/")."""

    __slots__ = ("_id_part", "group_key", "join_key", "path", "source")

    def __init__(self, source: Source, path: str, join_key: str, group_key: str) -> None:
        self.source = source
        self.path = path
        self.join_key = join_key
        self.group_key = group_key
        self._id_part: bytes | None = None

    def id_part(self) -> bytes:
        """What this match adds to the ID of every datum holding it, encoded once (a match of
        a cross is in many datums)."""
        part = self._id_part
        if part is None:
            part = self._id_part = self.source.id_prefix + _field(self.path)
        return part

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def repo(self) -> str:
        return self.source.repo

    @property
    def is_dir(self) -> bool:
        return self.path.endswith("/")

    def __repr__(self) -> str:
        return f"Match({self.source.name}:{self.path})"


class Datum:
    """One unit of work: the matched paths mounted together at /pfs/<name>/<path>."""

    __slots__ = ("_id", "matches")

    def __init__(self, matches: tuple[Match, ...]) -> None:
        self.matches = matches
        self._id: str | None = None

    @property
    def id(self) -> str:
        """Stable identity by *where*: BLAKE2b-256 of each match's input name, repo, branch (as
        written; "" for the default) and path, like 2.x `common.DatumID`."""
        if self._id is None:
            matches = self.matches
            self._id = matches[0].source.datum_id(matches[0].path) if len(matches) == 1 \
                else hashlib.blake2b(b"".join([m.id_part() for m in matches]),
                                     digest_size=32).hexdigest()
        return self._id

    def content_hash(self, checksum: Callable[[Match], str], salt: str) -> str:
        """Identity by *what*: the ID, the checksum of every non-s3 match (for a directory, one
        that covers everything below it) and the pipeline's salt, like 2.x `HashDatum`. Equal
        hashes mean the datum's previous output can be reused."""
        parts = [_field(self.id)]
        parts.extend(_field(checksum(m)) for m in self.matches if not m.source.s3)
        parts.append(_field(salt))
        return hashlib.blake2b(b"".join(parts), digest_size=32).hexdigest()

    def __repr__(self) -> str:
        return f"Datum({', '.join(repr(m) for m in self.matches)})"


# --------------------------------------------------------------------------------------------
# From the spec model to sources


@dataclass(frozen=True, slots=True)
class Combination:
    """`cross`, `union`, `join` or `group` over member inputs."""

    kind: str
    members: tuple[DatumInput, ...]

    def sorted(self) -> Combination:
        """The same combination with members ordered by input name at every level, as
        Pachyderm's `SortInput` does at pipeline creation ("makes datum hashes comparable")."""
        members = [m.sorted() if isinstance(m, Combination) else m for m in self.members]
        members.sort(key=_first_name)  # stable, like sort.SliceStable
        return Combination(self.kind, tuple(members))


DatumInput = Source | Combination


def _first_name(node: DatumInput) -> str:
    while isinstance(node, Combination):
        if not node.members:
            return ""
        node = node.members[0]
    return node.name


def sources(root: DatumInput) -> list[Source]:
    """Every source of an input tree, in the order datums list them (members sorted)."""
    found: list[Source] = []
    stack: list[DatumInput] = [root.sorted() if isinstance(root, Combination) else root]
    while stack:
        node = stack.pop()
        if isinstance(node, Source):
            found.append(node)
        else:
            stack.extend(reversed(node.members))
    return found


# --------------------------------------------------------------------------------------------
# Planning


def plan_datums(root: DatumInput,
                listing: Listing | Mapping[str, Iterable[str]]) -> Iterator[Datum]:
    """Yield the datums of an input tree, lazily.

    `listing(repo)` (or `listing[repo]`) gives the paths of a repo at the pinned commit; it is
    called once per source that reads the repo, so it must give a fresh iterable each time.
    Raises UnknownRepo (when iteration reaches it) for a repo the listing lacks, and GlobError
    for a glob Pachyderm would refuse (lint reports both first).
    """
    lookup = _lookup(listing)
    if isinstance(root, Source):  # most pipelines: a datum a match
        for match in _matches(root, lookup):
            yield Datum((match,))
        return
    for matches in _iterate(root.sorted(), lookup):
        yield Datum(matches)


def _lookup(listing: Listing | Mapping[str, Iterable[str]]) -> Listing:
    if not isinstance(listing, Mapping):
        return listing

    def from_mapping(repo: str) -> Iterable[str]:
        try:
            return listing[repo]
        except KeyError:
            raise UnknownRepo(repo) from None

    return from_mapping


_Tuple = tuple[Match, ...]


def _iterate(node: DatumInput, listing: Listing) -> Iterator[_Tuple]:
    if isinstance(node, Source):
        return ((m,) for m in _matches(node, listing))
    if node.kind == "union":
        return itertools.chain.from_iterable(_iterate(m, listing) for m in node.members)
    if node.kind == "cross":
        return _cross(node.members, listing)
    if node.kind == "join":
        return _join(node.members, listing)
    return _group(node.members, listing)


def _matches(source: Source, listing: Listing) -> Iterator[Match]:
    """The paths of one source's repo that its glob selects, files and implied directories."""
    paths = listing(source.repo)
    if source.s3:
        # Served by the S3 gateway: always the whole commit, never downloaded (2.x iterator).
        yield _root_match(source)
        return
    glob = source.glob
    if glob.source == "/":
        # Only the root matches, and only if the commit holds anything at all.
        for path in paths:
            if not is_reserved(path):
                yield _root_match(source)
                return
        return
    keyed = source.join_on is not None or source.group_by is not None
    for path, found in matched_paths(source, paths):
        yield _keyed(source, path, found) if keyed else Match(source, path, "", "")


def matched_paths(source: Source, paths: Iterable[str]) -> Iterator[tuple[str, re.Match[str]]]:
    """Each path of `paths` (a listing in order) that the source's glob matches, and the
    match: files, and the directories their paths imply (spelled with a trailing "/").
    Not for an s3 source or the glob "/" (`_matches` sees to those)."""
    test = source.glob.pattern.match
    seen: set[str] = set()
    new_dirs: list[str] = []
    for path in paths:
        if path.startswith(RESERVED_PREFIXES):
            continue
        is_file = not path.endswith("/")
        # A listed directory is tested with the directories its path implies: deepest first,
        # until one already seen (then all of its parents were too). The root is left out:
        # no glob but "/" matches it.
        cut = path.rfind("/") if is_file else len(path) - 1
        while cut > 0:
            directory = path[:cut]
            if directory in seen:
                break
            seen.add(directory)
            new_dirs.append(directory)
            cut = path.rfind("/", 0, cut)
        while new_dirs:
            directory = new_dirs.pop()  # shallowest first, so a listing in order stays in order
            found = test(directory)
            if found is not None:
                yield directory + "/", found
        if is_file:
            found = test(path)
            if found is not None:
                yield path, found


def _root_match(source: Source) -> Match:
    """The whole commit, "/", keyed by what the glob captures of it (nothing, for "/")."""
    found = source.glob.pattern.match("/")
    if found is None or not (source.join_on or source.group_by):
        return Match(source, "/", "", "")
    return _keyed(source, "/", found)


def _keyed(source: Source, path: str, found: re.Match[str]) -> Match:
    join_key = expand_template(source.join_on, found) if source.join_on else ""
    group_key = expand_template(source.group_by, found) if source.group_by else ""
    return Match(source, path, join_key, group_key)


def _cross(members: tuple[DatumInput, ...], listing: Listing) -> Iterator[_Tuple]:
    if not members:
        return
    # The first member streams; the others are held, since each is read once per datum of
    # the first. A member with no datums empties the cross before the first is read.
    rest = [list(_iterate(m, listing)) for m in members[1:]]
    if any(not r for r in rest):
        return
    if all(len(d) == 1 for r in rest for d in r):
        flat = [[d[0] for d in r] for r in rest]
        for first in _iterate(members[0], listing):
            for combo in itertools.product(*flat):
                yield first + combo
        return
    for first in _iterate(members[0], listing):
        for parts in itertools.product(*rest):
            yield first + tuple(itertools.chain.from_iterable(parts))


def _keyed_members(members: tuple[DatumInput, ...], listing: Listing,
                   key: Callable[[Match], str]) -> list[dict[str, list[Match]]]:
    """Per member: key -> every match of every datum of that member with that key, in order
    (2.x processKeyTask files each input of each datum separately under its key)."""
    out: list[dict[str, list[Match]]] = []
    for member in members:
        buckets: dict[str, list[Match]] = {}
        for datum in _iterate(member, listing):
            for m in datum:
                buckets.setdefault(key(m), []).append(m)
        out.append(buckets)
    return out


def _join(members: tuple[DatumInput, ...], listing: Listing) -> Iterator[_Tuple]:
    keyed = _keyed_members(members, listing, _join_key)
    for key in sorted(set().union(*keyed)):
        present = [buckets[key] for buckets in keyed if key in buckets]
        if len(present) == len(keyed):
            yield from itertools.product(*present)
            continue
        # A key some member lacks: each tuple keeps its outer_join files, if any. With three
        # or more members the same outer files recur across tuples; Pachyderm stores datums by
        # ID, so a repeat is one datum.
        seen: set[_Tuple] = set()
        for combo in itertools.product(*present):
            outer = tuple(m for m in combo if m.source.outer_join)
            if outer and outer not in seen:
                seen.add(outer)
                yield outer


def _join_key(m: Match) -> str:
    return m.join_key


def _group_key(m: Match) -> str:
    return m.group_key


def _group(members: tuple[DatumInput, ...], listing: Listing) -> Iterator[_Tuple]:
    keyed = _keyed_members(members, listing, _group_key)
    for key in sorted(set().union(*keyed)):
        yield tuple(itertools.chain.from_iterable(
            buckets[key] for buckets in keyed if key in buckets))
