"""lakeFS's versioning model in memory: repositories, branches with staging, commits, merges, diffs.

The rules follow lakeFS 1.84's graveler and catalog packages (the commit swagger.yml was taken
from); `../shared/reference/lakefs/api.md` names the source of each. The model knows nothing about
HTTP: it raises `LakeFSError(status, message)` with the status lakeFS maps that error to.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import io
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import BinaryIO

# pkg/validator and pkg/graveler/validate.go; Go's \w is ASCII-only.
BRANCH_ID = re.compile(r"^\w[-\w]*$", re.ASCII)
FULL_COMMIT_ID = re.compile(r"^[0-9a-fA-F]{64}$")
HEX_PREFIX = re.compile(r"^[0-9a-fA-F]{1,64}$")
# a ref is a base name followed by modifiers: ~N, ^N, and a final @ or $ (graveler.ParseRef)
REF_MODIFIER = re.compile(r"([~^])(\d*)|([@$])")
MAX_PATH_BYTES = 1024  # catalog.MaxPathLength
DEFAULT_PER_PAGE = 100  # api.DefaultPerPage
MAX_PER_PAGE = 1000  # api.DefaultMaxPerPage
MERGE_STRATEGY_KEY = ".lakefs.merge.strategy"
MERGE_STRATEGIES = {"": "default", "dest-wins": "dest-wins", "source-wins": "source-wins"}
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class LakeFSError(Exception):
    """An error as lakeFS answers it: the HTTP status and the `message` of its Error body.

    `body` replaces the Error body where lakeFS sends something else (a merge conflict answers
    409 with a MergeResult).
    """

    def __init__(self, status: int, message: str, body: dict[str, object] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body if body is not None else {"message": message}


class NotModelled(Exception):
    """A request the stand-in does not model (answered 501 and reported as a gap, never faked)."""


def _not_found(what: str) -> LakeFSError:
    return LakeFSError(404, f"{what} not found")


@dataclass(frozen=True, slots=True)
class Entry:
    """One object as the catalog stores it."""

    address: str
    checksum: str
    size: int
    mtime: int
    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def identity(self) -> tuple[object, ...]:
        # catalog.EntryToValue: identity is size, ETag, user metadata and content type, not the
        # physical address, so re-uploading the same bytes is "no change".
        return (self.size, self.checksum, self.metadata, self.content_type)


def _same(a: Entry | None, b: Entry | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.identity == b.identity


class Tree:
    """The committed contents of a commit (lakeFS's metarange): path -> Entry, never mutated."""

    __slots__ = ("_keys", "entries", "meta_range_id")

    def __init__(self, entries: dict[str, Entry]):
        self.entries = entries
        self._keys: list[str] | None = None
        self.meta_range_id = _meta_range_id(entries, self.keys) if entries else ""

    @property
    def keys(self) -> list[str]:
        if self._keys is None:
            self._keys = sorted(self.entries)
        return self._keys


EMPTY_TREE = Tree({})


def _meta_range_id(entries: Mapping[str, Entry], keys: list[str]) -> str:
    digest = hashlib.sha256()
    for path in keys:
        e = entries[path]
        digest.update(
            f"{path}\0{e.address}\0{e.checksum}\0{e.size}\0{e.mtime}\0{e.content_type}\0"
            f"{e.metadata}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Commit:
    id: str
    parents: tuple[str, ...]
    committer: str
    message: str
    creation_date: int
    metadata: Mapping[str, str]
    generation: int
    tree: Tree = field(compare=False, repr=False)
    version: int = 1

    @property
    def meta_range_id(self) -> str:
        return self.tree.meta_range_id


def _commit_id(committer: str, message: str, meta_range_id: str, creation_date: int,
               metadata: Mapping[str, str], parents: Iterable[str], version: int) -> str:
    # Commit.Identity() in graveler.go hashes exactly these fields: the same commit made a
    # second later has another ID.
    canonical = json.dumps(
        [version, committer, message, meta_range_id, creation_date, sorted(metadata.items()),
         list(parents)], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(slots=True)
class Branch:
    name: str
    head: str
    staging: dict[str, Entry | None] = field(default_factory=dict)  # None is a tombstone
    hidden: bool = False
    writes: int = 0  # bumped by every staging write; keys the listing cache

    def copy(self) -> Branch:
        return replace(self, staging=dict(self.staging))


@dataclass(slots=True)
class Repository:
    name: str
    storage_namespace: str
    default_branch: str
    creation_date: int
    read_only: bool = False
    branches: dict[str, Branch] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def copy(self) -> Repository:
        return replace(self, branches={n: b.copy() for n, b in self.branches.items()},
                       tags=dict(self.tags), commits=dict(self.commits))

    def branch(self, name: str) -> Branch:
        try:
            return self.branches[name]
        except KeyError:
            raise _not_found(f"branch '{name}'") from None

    def commit(self, commit_id: str) -> Commit:
        try:
            return self.commits[commit_id]
        except KeyError:
            raise _not_found(f"commit '{commit_id}'") from None


@dataclass(frozen=True, slots=True)
class View:
    """What a ref resolves to for reading: a commit, plus a branch's staging when read by name."""

    commit: Commit
    branch: Branch | None = None  # set when uncommitted changes are visible
    staging_only: bool = False  # `branch$`

    def get(self, path: str) -> Entry | None:
        if self.branch is not None and path in self.branch.staging:
            return self.branch.staging[path]
        if self.staging_only:
            return None
        return self.commit.tree.entries.get(path)


@dataclass(frozen=True, slots=True)
class Change:
    """One row of a diff: lakeFS's Diff {type, path, path_type, size_bytes}."""

    type: str  # added | removed | changed | conflict | prefix_changed
    path: str
    entry: Entry | None  # the side that describes the change (left for removed)
    right: Entry | None = None
    common_prefix: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[tuple[str, bool]]  # (path, is common prefix)
    has_more: bool


def paginate(keys: list[str], *, prefix: str = "", after: str = "", delimiter: str = "",
             amount: int = DEFAULT_PER_PAGE) -> Page:
    """One page of a sorted key list as lakeFS lists it (catalog.ListEntries).

    `after` is exclusive; with a delimiter, keys below the prefix collapse into common-prefix
    rows, and a common prefix already returned (at or before `after`) is not returned again.
    """
    amount = page_amount(amount)
    i = bisect.bisect_left(keys, prefix)
    if after:
        i = max(i, bisect.bisect_right(keys, after))
    rows: list[tuple[str, bool]] = []
    while i < len(keys) and len(rows) <= amount:
        key = keys[i]
        if not key.startswith(prefix):
            break
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut < 0:
            rows.append((key, False))
            i += 1
            continue
        common = key[:cut + len(delimiter)]
        i = bisect.bisect_left(keys, _successor(common), i)
        if not after or common > after:
            rows.append((common, True))
    return Page(rows[:amount], len(rows) > amount)


def page_amount(amount: int | None) -> int:
    # paginationAmount in controller.go: <= 0 means the default, above the maximum is clamped
    if amount is None or amount <= 0:
        return DEFAULT_PER_PAGE
    return min(amount, MAX_PER_PAGE)


def _successor(prefix: str) -> str:
    """The smallest string greater than every string that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class BlobStore:
    """Object data by physical address: small blobs in memory, large ones spilled to disk."""

    SPILL_BYTES = 8 * 1024 * 1024

    def __init__(self) -> None:
        self._memory: dict[str, bytes] = {}
        self._files: dict[str, str] = {}
        self._dir: str | None = None
        self._lock = threading.Lock()

    @staticmethod
    def new_address(storage_namespace: str) -> str:
        # the shape of lakeFS's PathProvider.NewPath under the repository's namespace
        namespace = storage_namespace.rstrip("/")
        return f"{namespace}/data/g{secrets.token_hex(10)}/c{secrets.token_hex(16)}"

    def writer(self, address: str) -> BlobWriter:
        return BlobWriter(self, address)

    def put(self, address: str, data: bytes) -> tuple[str, int]:
        with self.writer(address) as w:
            w.write(data)
        return w.checksum, w.size

    def open(self, address: str) -> BinaryIO:
        with self._lock:
            if address in self._memory:
                return io.BytesIO(self._memory[address])
            path = self._files.get(address)
        if path is None:
            raise LakeFSError(410, "No data")  # block.ErrDataNotFound
        return open(path, "rb")

    def read(self, address: str) -> bytes:
        with self.open(address) as f:
            return f.read()

    def link(self, source: str, address: str) -> None:
        """Give the data at `source` a second address (a copy without copying bytes)."""
        with self._lock:
            if source in self._memory:
                self._memory[address] = self._memory[source]
                return
            path = self._files[source]
            target = self._spill_path()
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
            self._files[address] = target

    def _spill_path(self) -> str:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="lakefs-standin-")
        return os.path.join(self._dir, secrets.token_hex(16))

    def _commit(self, address: str, data: bytes | None, path: str | None) -> None:
        with self._lock:
            if data is not None:
                self._memory[address] = data
            elif path is not None:
                self._files[address] = path

    def close(self) -> None:
        with self._lock:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
            self._memory.clear()
            self._files.clear()
            self._dir = None


class BlobWriter(io.RawIOBase):
    """A writable stream that stores a blob and computes its MD5 (lakeFS's checksum) as it goes."""

    def __init__(self, store: BlobStore, address: str):
        super().__init__()
        self._store = store
        self.address = address
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._buffer: io.BytesIO | None = io.BytesIO()
        self._file: BinaryIO | None = None
        self._path: str | None = None
        self.size = 0
        self.checksum = ""

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        data = bytes(data)
        self._md5.update(data)
        self.size += len(data)
        if self._buffer is not None:
            self._buffer.write(data)
            if self._buffer.tell() > BlobStore.SPILL_BYTES:
                with self._store._lock:
                    self._path = self._store._spill_path()
                self._file = open(self._path, "wb")  # noqa: SIM115 -- closed in close()
                self._file.write(self._buffer.getvalue())
                self._buffer = None
        elif self._file is not None:
            self._file.write(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        # werkzeug's form parser rewinds a finished file part; the blob is read by address
        return 0

    def close(self) -> None:
        if self.closed:
            return
        self.checksum = self._md5.hexdigest()
        if self._file is not None:
            self._file.close()
            self._store._commit(self.address, None, self._path)
        elif self._buffer is not None:
            self._store._commit(self.address, self._buffer.getvalue(), None)
        super().close()


def parse_ref(ref: str) -> tuple[str, list[tuple[str, int]]]:
    """Split `main~2^1` into ("main", [("~", 2), ("^", 1)]); `@` and `$` are modifiers too."""
    cut = len(ref)
    for i, ch in enumerate(ref):
        if ch in "~^@$":
            cut = i
            break
    base, rest = ref[:cut], ref[cut:]
    modifiers: list[tuple[str, int]] = []
    pos = 0
    while pos < len(rest):
        m = REF_MODIFIER.match(rest, pos)
        if m is None or not base:
            raise LakeFSError(400, f"ref: invalid value: {ref!r}")
        if m.group(3):
            modifiers.append((m.group(3), 0))
        else:
            modifiers.append((m.group(1), int(m.group(2) or 1)))
        pos = m.end()
    return base, modifiers


class Store:
    """All repositories of one lakeFS installation. Callers hold `lock` around every operation."""

    def __init__(self, clock: Callable[[], float], committer: str):
        self.clock = clock
        self.committer = committer
        self.repositories: dict[str, Repository] = {}
        # ensureStorageNamespace: a namespace that held a repository stays taken after the
        # repository is deleted (its data is not removed)
        self.used_namespaces: set[str] = set()
        self.blobs = BlobStore()
        self.lock = threading.RLock()
        self._listing_cache: dict[tuple[object, ...], tuple[Branch, list[str]]] = {}

    def now(self) -> int:
        return int(self.clock())

    # -- repositories -------------------------------------------------------------------------

    def create_repository(self, name: str, storage_namespace: str, default_branch: str = "main",
                          read_only: bool = False, bare: bool = False) -> Repository:
        if name in self.repositories:
            raise LakeFSError(409, "error creating repository: not unique")
        if not bare and not read_only and _namespace_key(storage_namespace) in self.used_namespaces:
            raise LakeFSError(400, "failed to create repository: storage namespace already in use")
        _validate_branch_id(default_branch)
        now = self.now()
        repo = Repository(name, storage_namespace, default_branch, now, read_only)
        if not bare:
            # catalog.CreateRepository: an initial commit with an empty metarange on the default
            # branch
            initial = self._add_commit(repo, message="Repository created", parents=(),
                                       metadata={}, tree=EMPTY_TREE, creation_date=now)
            repo.branches[default_branch] = Branch(default_branch, initial.id)
        self.repositories[name] = repo
        self.used_namespaces.add(_namespace_key(storage_namespace))
        return repo

    def repository(self, name: str) -> Repository:
        try:
            return self.repositories[name]
        except KeyError:
            raise _not_found("repository") from None

    def delete_repository(self, name: str) -> None:
        self.repository(name)
        del self.repositories[name]

    # -- refs ---------------------------------------------------------------------------------

    def resolve(self, repo: Repository, ref: str, *, staged: bool = True) -> View:
        """Resolve any ref the way graveler.ResolveRawRef does.

        A bare branch name reads the branch with its uncommitted changes when `staged`;
        `branch@` is its committed state, `branch$` its staging only, `~N`/`^N` walk parents.
        Order for the base name: full commit ID, branch, tag, commit-ID prefix.
        """
        if not ref or any(ch.isspace() for ch in ref):
            raise LakeFSError(400, f"ref: invalid value: {ref!r}")
        base, modifiers = parse_ref(ref)
        branch: Branch | None = None
        commit_id: str | None = None
        if FULL_COMMIT_ID.match(base) and base.lower() in repo.commits:
            commit_id = base.lower()
        elif base in repo.branches:
            branch = repo.branches[base]
            commit_id = branch.head
        elif base in repo.tags:
            commit_id = repo.tags[base]
        elif HEX_PREFIX.match(base):
            matches = [c for c in repo.commits if c.startswith(base.lower())]
            if len(matches) == 1:  # an ambiguous prefix is "not found" (GetCommitByPrefix)
                commit_id = matches[0]
        if commit_id is None:
            raise _not_found(f"reference '{base}'")
        commit = repo.commit(commit_id)
        if not modifiers:
            return View(commit, branch if staged else None)
        kind = modifiers[0][0]
        if kind in "@$":
            if branch is None or len(modifiers) != 1:
                raise LakeFSError(400, f"ref: invalid value: {ref!r}")
            return View(commit, branch if kind == "$" else None, staging_only=kind == "$")
        for kind, n in modifiers:
            if kind in "@$":
                raise LakeFSError(400, f"ref: invalid value: {ref!r}")
            if kind == "~":
                for _ in range(n):
                    if not commit.parents:
                        raise _not_found(f"reference '{ref}'")
                    commit = repo.commit(commit.parents[0])
            elif n:
                if n > len(commit.parents):
                    raise LakeFSError(400, f"ref: invalid value: {ref!r}")
                commit = repo.commit(commit.parents[n - 1])
        return View(commit)

    def resolve_commit(self, repo: Repository, ref: str) -> Commit:
        view = self.resolve(repo, ref, staged=False)
        if view.staging_only:
            raise LakeFSError(400, "reference to staging area with $ is not a commit")
        return view.commit

    # -- branches and tags --------------------------------------------------------------------

    def create_branch(self, repo: Repository, name: str, source: str, hidden: bool = False) -> str:
        _validate_branch_id(name)
        _, modifiers = parse_ref(source)
        if modifiers and modifiers[-1][0] == "$":
            # api.md "Corrections": lakeFS 1.84 answers 500 here, not a 4xx
            raise LakeFSError(500, "can't create a branch without commit")
        commit = self.resolve_commit(repo, source)
        if name in repo.branches:
            raise LakeFSError(409, "branch already exists: not unique")
        if name in repo.tags or name.lower() in repo.commits:
            raise LakeFSError(409, f"branch name '{name}' clashes with a tag or commit ID: "
                              "not unique")
        repo.branches[name] = Branch(name, commit.id, hidden=hidden)
        return commit.id

    def delete_branch(self, repo: Repository, name: str) -> None:
        repo.branch(name)
        if name == repo.default_branch:
            raise LakeFSError(403, "cannot delete repository default branch")
        del repo.branches[name]

    def create_tag(self, repo: Repository, tag: str, ref: str) -> str:
        if (not tag or tag == "@" or tag.endswith((".", ".lock")) or ".." in tag
                or any(ch in tag for ch in " /\\^:?*[~") or "@{" in tag):
            raise LakeFSError(400, "tag: invalid value")
        commit = self.resolve_commit(repo, ref)
        if tag in repo.tags:
            raise LakeFSError(409, "tag already exists: not unique")
        if tag in repo.branches or tag.lower() in repo.commits:
            raise LakeFSError(409, f"tag '{tag}' clashes with a branch or commit ID: not unique")
        repo.tags[tag] = commit.id
        return commit.id

    def delete_tag(self, repo: Repository, tag: str) -> None:
        if tag not in repo.tags:
            raise _not_found("tag")
        del repo.tags[tag]

    # -- objects ------------------------------------------------------------------------------

    def keys(self, view: View) -> list[str]:
        """The sorted paths visible through a view (cached per branch state)."""
        tree = view.commit.tree
        if view.branch is None:
            return tree.keys
        b = view.branch
        cache_key = (id(b), b.writes, view.staging_only)
        cached = self._listing_cache.get(cache_key)
        # the cached branch object is kept alive, so its id cannot be reused by another branch
        keys = cached[1] if cached is not None and cached[0] is b else None
        if keys is None:
            if view.staging_only:
                keys = sorted(p for p, e in b.staging.items() if e is not None)
            elif not b.staging:
                keys = tree.keys
            else:
                merged = set(tree.entries)
                for path, entry in b.staging.items():
                    if entry is None:
                        merged.discard(path)
                    else:
                        merged.add(path)
                keys = sorted(merged)
            if len(self._listing_cache) > 64:
                self._listing_cache.clear()
            self._listing_cache[cache_key] = (b, keys)
        return keys

    def stage(self, repo: Repository, branch_name: str, path: str, entry: Entry | None, *,
              if_absent: bool = False) -> None:
        branch = repo.branch(branch_name)
        validate_path(path)
        if if_absent and View(repo.commit(branch.head), branch).get(path) is not None:
            raise LakeFSError(412, "path already exists")
        if (entry is None and path not in branch.staging
                and path not in self._tree(repo, branch).entries):
            return  # deleting a missing object is not an error and changes nothing
        branch.staging[path] = entry
        branch.writes += 1

    def _tree(self, repo: Repository, branch: Branch) -> Tree:
        return repo.commit(branch.head).tree

    def uncommitted(self, repo: Repository, branch: Branch) -> list[Change]:
        """The branch's effective uncommitted changes (graveler's UncommittedDiffIterator)."""
        committed = self._tree(repo, branch).entries
        changes = []
        for path in sorted(branch.staging):
            staged, before = branch.staging[path], committed.get(path)
            if _same(staged, before):
                continue
            if staged is None:
                changes.append(Change("removed", path, before))
            elif before is None:
                changes.append(Change("added", path, staged, staged))
            else:
                changes.append(Change("changed", path, staged, staged))
        return changes

    # -- commits ------------------------------------------------------------------------------

    def _add_commit(self, repo: Repository, *, message: str, parents: tuple[str, ...],
                    metadata: Mapping[str, str], tree: Tree, creation_date: int) -> Commit:
        generation = 1 + max((repo.commits[p].generation for p in parents), default=0)
        commit_id = _commit_id(self.committer, message, tree.meta_range_id, creation_date,
                               metadata, parents, 1)
        commit = Commit(commit_id, parents, self.committer, message, creation_date,
                        dict(metadata), generation, tree)
        repo.commits.setdefault(commit_id, commit)
        return repo.commits[commit_id]

    def commit(self, repo: Repository, branch_name: str, message: str,
               metadata: Mapping[str, str] | None = None, date: int | None = None,
               allow_empty: bool = False) -> Commit:
        branch = repo.branch(branch_name)
        parent = repo.commit(branch.head)
        entries = dict(parent.tree.entries)
        changed = False
        for path, staged in branch.staging.items():
            before = entries.get(path)
            if _same(staged, before):
                continue  # same identity: the committed entry stays (committed/commit.go)
            changed = True
            if staged is None:
                del entries[path]
            else:
                entries[path] = staged
        if not changed and not allow_empty:
            raise LakeFSError(400, "commit: no changes")
        tree = Tree(entries) if changed else parent.tree
        commit = self._add_commit(repo, message=message, parents=(parent.id,),
                                  metadata=metadata or {}, tree=tree,
                                  creation_date=self.now() if date is None else date)
        branch.head = commit.id
        branch.staging = {}
        branch.writes += 1
        return commit

    def log(self, repo: Repository, ref: str, *, first_parent: bool = False,
            stop_at: str = "", since: int | None = None) -> Iterator[Commit]:
        """Commits reachable from ref, newest generation first (CommitsGenerationPriorityQueue)."""
        start = self.resolve_commit(repo, ref)
        stop = self.resolve_commit(repo, stop_at).id if stop_at else None
        heap: list[tuple[int, int, str]] = [(-start.generation, -start.creation_date, start.id)]
        seen = {start.id}
        while heap:
            _, _, commit_id = heapq.heappop(heap)
            commit = repo.commits[commit_id]
            if since is not None and commit.creation_date < since:
                return
            yield commit
            if commit_id == stop:
                return
            parents = commit.parents[:1] if first_parent else commit.parents
            for parent_id in parents:
                if parent_id not in seen:
                    seen.add(parent_id)
                    parent = repo.commits[parent_id]
                    heapq.heappush(heap, (-parent.generation, -parent.creation_date, parent_id))

    def merge_base(self, repo: Repository, a: Commit, b: Commit) -> Commit | None:
        ancestors_of_a = {c.id for c in self.log(repo, a.id)}
        for commit in self.log(repo, b.id):
            if commit.id in ancestors_of_a:
                return commit
        return None

    def merge(self, repo: Repository, source_ref: str, destination: str, *, message: str = "",
              metadata: Mapping[str, str] | None = None, strategy: str = "",
              allow_empty: bool = False, force: bool = False, squash: bool = False) -> Commit:
        """Graveler.Merge: always a new commit (no fast-forward), three-way per whole object."""
        branch = repo.branch(destination)
        if self.uncommitted(repo, branch):
            raise LakeFSError(400, f"{destination}: uncommitted changes (dirty branch)")
        source = self.resolve_commit(repo, source_ref)
        dest = repo.commit(branch.head)
        base = self.merge_base(repo, source, dest)
        if base is None:
            raise LakeFSError(500, "find merge base: no merge base")
        if strategy not in MERGE_STRATEGIES:
            raise LakeFSError(400, "invalid merge strategy")
        if source.meta_range_id == base.meta_range_id and not (allow_empty or force):
            raise LakeFSError(400, "no changes")
        if dest.meta_range_id == base.meta_range_id:
            tree = source.tree  # changes only on the source side
        else:
            tree = self._three_way(base.tree, source.tree, dest.tree, strategy)
        merged_metadata = dict(metadata or {})
        merged_metadata[MERGE_STRATEGY_KEY] = MERGE_STRATEGIES[strategy]
        parents = (dest.id,) if squash else (dest.id, source.id)
        commit = self._add_commit(repo, message=message or f"Merge '{source_ref}' into "
                                  f"'{destination}'", parents=parents, metadata=merged_metadata,
                                  tree=tree, creation_date=self.now())
        branch.head = commit.id
        branch.writes += 1
        return commit

    @staticmethod
    def _three_way(base: Tree, source: Tree, dest: Tree, strategy: str) -> Tree:
        merged = dict(dest.entries)
        conflicts = []
        for path in set(base.entries) | set(source.entries) | set(dest.entries):
            b, s, d = base.entries.get(path), source.entries.get(path), dest.entries.get(path)
            if _same(s, b) or _same(s, d):
                continue  # unchanged on the source side, or both sides agree
            if not _same(d, b):
                if strategy == "dest-wins":
                    continue
                if strategy != "source-wins":
                    conflicts.append(path)
                    continue
            if s is None:
                merged.pop(path, None)
            else:
                merged[path] = s
        if conflicts:
            # MergeIntoBranch answers a conflict with a MergeResult, not an Error (api.md §12)
            raise LakeFSError(409, "conflict found", body={"reference": ""})
        return Tree(merged)

    # -- diffs --------------------------------------------------------------------------------

    def diff(self, repo: Repository, left_ref: str, right_ref: str, *,
             three_dot: bool = True) -> list[Change]:
        """Graveler.Diff (two_dot) or Graveler.Compare (three_dot, lakeFS's default)."""
        left = self.resolve_commit(repo, left_ref)
        right_view = self.resolve(repo, right_ref, staged=False)
        if right_view.staging_only:  # `branch$`: the committed state plus uncommitted changes
            right_view = View(right_view.commit, right_view.branch)
        right_entries = self._entries(right_view)
        if not three_dot:
            return _diff_entries(left.tree.entries, right_entries)
        base = self.merge_base(repo, right_view.commit, left)
        if base is None:
            raise LakeFSError(500, "find merge base: no merge base")
        changes = []
        for change in _diff_entries(left.tree.entries, right_entries):
            before = base.tree.entries.get(change.path)
            right = right_entries.get(change.path)
            left_entry = left.tree.entries.get(change.path)
            if _same(right, before):
                continue  # changed on the left only
            if _same(left_entry, before):
                kind = "added" if before is None else "removed" if right is None else "changed"
                changes.append(Change(kind, change.path, right or before, right))
            else:
                changes.append(Change("conflict", change.path, right or left_entry, right))
        return changes

    def _entries(self, view: View) -> Mapping[str, Entry]:
        if view.branch is None:
            return view.commit.tree.entries
        return {path: e for path in self.keys(view) if (e := view.get(path)) is not None}


def _diff_entries(left: Mapping[str, Entry], right: Mapping[str, Entry]) -> list[Change]:
    changes = []
    for path in sorted(set(left) | set(right)):
        a, b = left.get(path), right.get(path)
        if _same(a, b):
            continue
        if a is None:
            changes.append(Change("added", path, b, b))
        elif b is None:
            changes.append(Change("removed", path, a))
        else:
            changes.append(Change("changed", path, b, b))
    return changes


def group_changes(changes: list[Change], *, prefix: str = "", after: str = "",
                  delimiter: str = "", amount: int = DEFAULT_PER_PAGE) -> tuple[list[Change], bool]:
    """A page of a diff, common prefixes folded into prefix_changed rows as lakeFS does."""
    by_path = {c.path: c for c in changes}
    page = paginate(list(by_path), prefix=prefix, after=after, delimiter=delimiter, amount=amount)
    rows = [by_path[path] if not common else Change("prefix_changed", path, None,
                                                      common_prefix=True)
            for path, common in page.rows]
    return rows, page.has_more


def validate_path(path: str) -> None:
    if not path:
        raise LakeFSError(400, "path: required value")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise LakeFSError(400, f"path: invalid value: longer than {MAX_PATH_BYTES} bytes")


def _validate_branch_id(name: str) -> None:
    if not BRANCH_ID.match(name):
        raise LakeFSError(400, "branch id must consist of letters, digits, underscores and "
                          "dashes, and cannot start with a dash")


def _namespace_key(storage_namespace: str) -> str:
    return storage_namespace.rstrip("/")
