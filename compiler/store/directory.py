"""`dsc run --data DIR`: a versioned store in a plain directory, with lakeFS's model.

What a user sees is one directory per repo: `DIR/raw_data/` holds the data they put there,
and `DIR/<pipeline>/` the latest output of each pipeline, with its provenance under
`DIR/<pipeline>/.dsc/` (the job record, plan and datum manifests the runtime commits).

- A plain directory is a repository the user manages: its one "commit" is its current
  content, named by a digest of every path, size and MD5, and it stands for every branch.
  A run pins that digest; a file changed before it is read fails the read (the MD5 no longer
  matches), never silently mixing two versions.
- A repository dsc writes (a pipeline's output) lives under `DIR/.dsc/`: content-addressed
  objects (`objects/<md5>`), commits as JSON (parents, message, metadata and the tree as
  path -> [md5, size]), branch heads, and staged changes as an append-only log per branch.
  `DIR/<pipeline>` is a symlink to a checkout of the default branch's head, swapped with one
  rename when a merge lands: a reader sees the old output or the new one, never a mix.

Every write is a new file renamed into place, so a killed run leaves either the old state or
the new one; commit and merge carry the run's key in their metadata and are found again on a
retry, as with lakeFS (compiler.lakefs.client). One process may call it from many threads;
a lock file per repository also keeps two `dsc run`s on one DIR from interleaving writes.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import inspect
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, ParamSpec, TypeVar

from compiler.store import Commit, Conflict, LakeFSError, NotFound, ObjectInfo, Unauthorized

CHUNK = 1 << 20
STATE = ".dsc"  # DIR/.dsc: the store's own records (a repo can never be named so)
WHERE = "data directory"
Tree = dict[str, tuple[str, int]]  # path -> (md5 hex, size)


def _filesystem_error(operation: str, exc: OSError | UnicodeError) -> LakeFSError:
    """A file-system error as the store's own: a located, one-line message naming the path
    (never "internal error"). None of these is transient: a retry meets the same disk."""
    if isinstance(exc, UnicodeError):
        text = getattr(exc, "object", "")
        name = os.fsencode(text) if isinstance(text, str) else text
        return LakeFSError(operation, 400, f"the file name {name!r} is not UTF-8 (lakeFS paths "
                           "are UTF-8): rename it", where=WHERE)
    where = exc.filename if exc.filename is not None else "a file of the data directory"
    why = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
           errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
           errno.EDQUOT: "disk quota exceeded"}.get(exc.errno or 0, exc.strerror or str(exc))
    kind = Unauthorized if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) \
        else LakeFSError
    return kind(operation, 403 if kind is Unauthorized else 500, f"{where}: {why}",
                where=WHERE)


P = ParamSpec("P")
R = TypeVar("R")


def _translated(operation: str, method: Callable[P, R]) -> Callable[P, R]:
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                yield from method(*args, **kwargs)
            except (OSError, UnicodeError) as exc:
                raise _filesystem_error(operation, exc) from None
        return generator

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (OSError, UnicodeError) as exc:
            raise _filesystem_error(operation, exc) from None
    return call


# The public calls, with the lakeFS operation each stands for (as messages name them).
_OPERATIONS = {"remember": "remember the repositories", "head": "get branch",
               "commit_of": "get commit", "log": "log commits", "branches": "list branches",
               "objects": "list objects", "read": "get object", "download": "get object",
               "ensure_repository": "create repository", "upload": "upload object",
               "delete_objects": "delete objects", "create_branch_once": "create branch",
               "delete_branch": "delete branch", "commit_once": "commit",
               "merge_once": "merge"}


class DirectoryStore:
    """A store over `root`; `directories` maps a lakeFS repository name to the directory
    under `root` that holds it (the Pachyderm repo name, `raw_data` for `raw-data`)."""

    def __init__(self, root: Path, directories: Mapping[str, str] | None = None) -> None:
        self.root = root
        self._state = root / STATE
        # Which directory holds which repository, remembered from the runs that named them
        # (so `dsc provenance --data DIR` finds `raw-data` in DIR/raw_data without the specs).
        self.directories = {**self._remembered(), **(directories or {})}
        self._lock = threading.RLock()
        self._hashes: dict[str, tuple[int, int, str]] = {}  # plain file -> (size, mtime, md5)
        # Reads must not cost the size of the repository each (a job reads its plan and
        # manifests once per datum): commits are immutable, a plain directory's tree is kept
        # by the digest that names it, and a branch's staged log is read on from where the
        # last read stopped.
        self._commits: dict[tuple[str, str], dict[str, Any]] = {}
        self._plain_trees: dict[tuple[str, str], Tree] = {}
        self._branches: dict[tuple[str, str], tuple[str, int, int, Tree]] = {}

    # --- where things are -----------------------------------------------------------------

    def _remembered(self) -> dict[str, str]:
        try:
            with open(self._state / "directories.json") as f:
                return {str(k): str(v) for k, v in json.load(f).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def remember(self) -> None:
        """Keep the repository -> directory names for later readers of DIR."""
        if self.directories and self.directories != self._remembered():
            self._write_json(self._state / "directories.json", self.directories)

    def directory(self, repo: str) -> Path:
        """Where repository `repo`'s default branch is seen: DIR/<name>."""
        return self.root / self.directories.get(repo, repo)

    def _repo(self, repo: str) -> Path:
        return self._state / "repos" / repo

    def repositories(self) -> list[str]:
        """The repositories DIR holds: each directory of the user's data, by the name the
        runs gave it (else its own), and each one dsc writes."""
        named = {directory: repo for repo, directory in self.directories.items()}
        found = set()
        with suppress(OSError):
            for entry in os.scandir(self.root):
                if not entry.name.startswith(".") and entry.is_dir():
                    found.add(named.get(entry.name, entry.name))
        with suppress(OSError):
            for entry in os.scandir(self._state / "repos"):
                if self._managed(entry.name):
                    found.add(entry.name)
        return sorted(found)

    def _managed(self, repo: str) -> bool:
        return (self._repo(repo) / "repository.json").is_file()

    def _object(self, md5: str) -> Path:
        return self._state / "objects" / md5[:2] / md5

    def _error(self, kind: type[LakeFSError], operation: str, status: int,
               message: str) -> LakeFSError:
        return kind(operation, status, message, where=WHERE)

    # --- reads --------------------------------------------------------------------------

    def head(self, repo: str, branch: str) -> str:
        if self._managed(repo):
            return self._head(repo, branch, "get branch")
        commit, tree = self._plain_commit(repo, "get branch")
        self._record_plain(repo, commit, tree)  # what a run pins: found again after an edit
        return commit

    def commit_of(self, repo: str, ref: str) -> Commit:
        if not self._managed(repo):
            return self._plain_commit_of(repo, ref)
        return self._value(repo, self._commit(
            repo, self._resolve(repo, ref, "get commit"), "get commit"))

    def _value(self, repo: str, record: dict[str, Any]) -> Commit:
        return Commit(record["id"], tuple(record["parents"]), record["message"],
                      dict(record["metadata"]), "dsc", int(record.get("created") or 0),
                      self._meta_range(repo, record))

    def _meta_range(self, repo: str, record: dict[str, Any]) -> str:
        """What lakeFS's meta_range_id is: one name for one tree (kept with the record)."""
        known: str | None = record.get("meta_range")
        if known is None:
            tree = self._tree(record)
            digest = hashlib.sha256()
            for path in sorted(tree):
                digest.update(f"{path}\0{tree[path][0]}\0{tree[path][1]}\n".encode())
            known = record["meta_range"] = digest.hexdigest()
        return known

    def log(self, repo: str, ref: str, stop_at: str | None = None) -> Iterator[Commit]:
        """The first-parent chain from `ref`, newest first, ending with `stop_at`. A plain
        directory has no parents: its log is the commit `ref` names, then the earlier
        versions runs read (recorded when they pinned them), newest first."""
        if not self._managed(repo):
            first = self.commit_of(repo, ref)
            yield first
            if first.id != stop_at:
                for version in self._plain_versions(repo, first, _hex(ref)):
                    yield version
                    if version.id == stop_at:
                        return
            return
        commit: str | None = self._resolve(repo, ref, "log commits")
        while commit:
            record = self._commit(repo, commit, "log commits")
            yield self._value(repo, record)
            if commit == stop_at:
                return
            commit = record["parents"][0] if record["parents"] else None

    def branches(self, repo: str, prefix: str = "") -> Iterator[tuple[str, str]]:
        if not self._managed(repo):
            raise self._error(NotFound, "list branches", 404, f"repository `{repo}` is a "
                              "plain directory, with no branches")
        where = self._repo(repo) / "branches"
        for entry in sorted(where.glob(f"{prefix}*.json") if where.is_dir() else []):
            name = entry.name[:-len(".json")]
            try:
                yield name, self._head(repo, name, "list branches")
            except NotFound:
                continue  # deleted while listed

    def objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[ObjectInfo]:
        tree = self._tree_at(repo, ref, "list objects")
        for path in sorted(tree):
            if path.startswith(prefix):
                md5, size = tree[path]
                yield ObjectInfo(path, md5, size)

    def listing(self, repo: str, commit: str) -> Iterator[str]:
        """The paths of a commit (`compiler.commands.pins.PinResolver`)."""
        return (o.path for o in self.objects(repo, commit))

    def read(self, repo: str, ref: str, path: str) -> bytes:
        with open(self._file(repo, ref, path, "get object"), "rb") as f:
            return f.read()

    def download(self, repo: str, ref: str, path: str, sink: BinaryIO,
                 presign: bool = False) -> tuple[int, str]:
        """Copy one object into `sink`; (bytes, MD5 hex) as lakeFS's download gives.
        `presign` means nothing here: there is no object store behind."""
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        with open(self._file(repo, ref, path, "get object"), "rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                sink.write(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def _file(self, repo: str, ref: str, path: str, operation: str) -> Path:
        tree = self._tree_at(repo, ref, operation)
        if path not in tree:
            raise self._error(NotFound, operation, 404, f"object {repo}@{_short(ref)}:{path} "
                              "not found")
        if self._managed(repo):
            return self._object(tree[path][0])
        full = self.directory(repo) / path
        if _is_commit(ref) and self._plain_hash(str(full))[0] != tree[path][0]:
            raise self._error(NotFound, operation, 404, f"{full} changed after the run "
                              f"pinned it at {_short(ref)}; run again to read the new data")
        return full

    def _tree_at(self, repo: str, ref: str, operation: str) -> Tree:
        """The tree at `ref`; callers only read it (it may be shared with later calls)."""
        if not self._managed(repo):
            with self._lock:
                known = self._plain_trees.get((repo, ref))
            if known is not None:
                # Pinned earlier in this process: each file read is checked against it, so
                # a file changed since then still fails its read.
                return known
            commit, tree = self._plain_commit(repo, operation)
            if ref != commit and not _branch_like(ref):
                raise self._changed(repo, ref, commit, operation)
            return tree
        with self._lock:
            if _is_commit(ref):
                return self._tree(self._commit(repo, ref, operation))
            return self._branch_tree(repo, ref, operation)

    def _changed(self, repo: str, ref: str, now: str, operation: str) -> LakeFSError:
        return self._error(NotFound, operation, 404, f"{self.directory(repo)} changed after "
                           f"the run pinned it at {_short(ref)} (its files now make "
                           f"{_short(now)}); run again to read the new data")

    # --- plain directories (the user's data) --------------------------------------------

    def _plain_commit_of(self, repo: str, ref: str) -> Commit:
        """The commit of a plain directory `ref` names: a version a run pinned (recorded), by
        its ID or a unique prefix of it, or the current files. Any other ref is a branch,
        and every branch is the current files; an all-hex ref is taken as a commit ID."""
        if _hex(ref) and not _is_commit(ref):
            current: tuple[str, ...] = ()
            with suppress(NotFound):  # the directory gone, what was recorded remains
                current = (self._plain_commit(repo, "get commit")[0],)
            ref = self._by_prefix(repo, ref, "get commit", current)
        if not (_is_commit(ref) and self._recorded(repo, ref)):
            commit, _ = self._plain_commit(repo, "get commit")
            if ref != commit and _is_commit(ref):
                raise self._changed(repo, ref, commit, "get commit")
            if not self._recorded(repo, commit):
                return Commit(commit, (), f"the files in {self.directory(repo)}", {},
                              meta_range=commit)
            ref = commit
        return self._value(repo, self._commit(repo, ref, "get commit"))

    def _recorded(self, repo: str, commit: str) -> bool:
        return (self._repo(repo) / "commits" / f"{commit}.json").is_file()

    def _record_plain(self, repo: str, commit: str, tree: Tree) -> None:
        """Keep the tree (paths, MD5s, sizes: the content stays the user's) of a plain
        directory's commit among the repository's commits, so that it is still found after
        the files change, as lakeFS keeps every commit (an older output's provenance names
        it)."""
        if self._recorded(repo, commit):
            return
        with self._locked(repo):
            where = self._repo(repo) / "commits"
            # `n` orders the versions recorded within one second of each other
            n = len(os.listdir(where)) if where.is_dir() else 0
            self._write_json(where / f"{commit}.json", {
                "id": commit, "parents": [], "metadata": {}, "created": int(time.time()),
                "n": n, "message": f"the files of {self.directory(repo).name}/ when a run "
                "read them",
                "tree": {p: list(tree[p]) for p in sorted(tree)}})

    def _plain_versions(self, repo: str, first: Commit, older: bool) -> list[Commit]:
        """The recorded versions of a plain directory other than `first`, newest first; with
        `older`, only those recorded before it."""
        try:
            names = os.listdir(self._repo(repo) / "commits")
        except FileNotFoundError:
            return []
        records = sorted((self._commit(repo, n[:-len(".json")], "log commits") for n in names
                          if n.endswith(".json") and _is_commit(n[:-len(".json")])),
                         key=lambda r: (r.get("created", 0), r.get("n", 0)), reverse=True)
        found = [r["id"] for r in records]
        if older and first.id in found:
            records = records[found.index(first.id) + 1:]
        return [self._value(repo, r) for r in records if r["id"] != first.id]

    def _plain_commit(self, repo: str, operation: str) -> tuple[str, Tree]:
        top = self.directory(repo)
        if not top.is_dir():
            raise self._error(NotFound, operation, 404, f"repository `{repo}`: no directory "
                              f"{top}")
        tree: Tree = {}

        def unreadable(exc: OSError) -> None:  # os.walk skips what it cannot list: say so
            raise exc

        for directory, subdirs, files in os.walk(top, onerror=unreadable):
            subdirs.sort()
            for name in files:
                full = os.path.join(directory, name)
                path = os.path.relpath(full, top).replace(os.sep, "/")
                try:
                    path.encode()
                except UnicodeEncodeError:
                    raise self._error(LakeFSError, operation, 400, f"{os.fsencode(full)!r}: "
                                      "the file name is not UTF-8 (lakeFS paths are UTF-8); "
                                      "rename it") from None
                tree[path] = self._plain_hash(full)
        digest = hashlib.sha256()
        for path in sorted(tree):
            digest.update(f"{path}\0{tree[path][0]}\0{tree[path][1]}\n".encode())
        commit = digest.hexdigest()
        with self._lock:
            self._plain_trees[(repo, commit)] = tree
        return commit, tree

    def _plain_hash(self, full: str) -> tuple[str, int]:
        try:
            st = os.stat(full)
        except FileNotFoundError:  # a dangling symlink in the user's data
            raise self._error(LakeFSError, "list objects", 400,
                              f"{full} is a symlink to nothing") from None
        with self._lock:
            known = self._hashes.get(full)
        if known and known[:2] == (st.st_size, st.st_mtime_ns):
            return known[2], st.st_size
        digest = hashlib.md5(usedforsecurity=False)
        with open(full, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        md5 = digest.hexdigest()
        with self._lock:
            self._hashes[full] = (st.st_size, st.st_mtime_ns, md5)
        return md5, st.st_size

    # --- writes -------------------------------------------------------------------------

    def ensure_repository(self, repo: str, storage_namespace: str, default_branch: str) -> bool:
        """Make `repo` a repository dsc writes, with an empty first commit on
        `default_branch`. A non-empty plain directory of that name is the user's data and is
        never replaced."""
        with self._locked(repo):
            if self._managed(repo):
                return False
            top = self.directory(repo)
            if top.is_symlink() or (top.exists() and not top.is_dir()):
                raise self._error(Conflict, "create repository", 409,
                                  f"{top} exists and is not a directory dsc made")
            if top.is_dir():
                if any(top.iterdir()):
                    raise self._error(Conflict, "create repository", 409, f"{top} holds "
                                      "files dsc did not write; a pipeline's output goes "
                                      "there: move them away or rename the pipeline")
                top.rmdir()
            first = self._new_commit(repo, [], "Repository created", {}, {})
            self._write_json(self._repo(repo) / "branches" / f"{default_branch}.json",
                             {"head": first})
            self._write_json(self._repo(repo) / "repository.json",
                             {"default_branch": default_branch})
            self._check_out(repo, first)
            return True

    def upload(self, repo: str, branch: str, path: str, content: bytes | BinaryIO,
               size: int | None = None) -> ObjectInfo:
        _check_path(path)
        tmp = self._temp()
        digest = hashlib.md5(usedforsecurity=False)
        written = 0
        try:
            with open(tmp, "wb") as f:
                if isinstance(content, bytes):
                    digest.update(content)
                    f.write(content)
                    written = len(content)
                else:
                    while chunk := content.read(CHUNK):
                        digest.update(chunk)
                        f.write(chunk)
                        written += len(chunk)
            md5 = digest.hexdigest()
            target = self._object(md5)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)  # objects are shared by checkouts: never edited in place
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        with self._locked(repo):
            self._head(repo, branch, "upload object")
            self._stage(repo, branch, [{"p": path, "m": md5, "s": written}])
        return ObjectInfo(path, md5, written)

    def copy(self, repo: str, source_ref: str, path: str, branch: str) -> ObjectInfo:
        """Objects are stored by content: a copy stages the same object under the path."""
        _check_path(path)
        if not self._managed(repo):
            raise self._error(NotFound, "copy object", 404, f"repository `{repo}` is a plain "
                              "directory: it has no branches to copy to")
        tree = self._tree_at(repo, source_ref, "copy object")
        if path not in tree:
            raise self._error(NotFound, "copy object", 404, f"object {repo}@"
                              f"{_short(source_ref)}:{path} not found")
        md5, size = tree[path]
        with self._locked(repo):
            self._head(repo, branch, "copy object")
            self._stage(repo, branch, [{"p": path, "m": md5, "s": size}])
        return ObjectInfo(path, md5, size)

    def delete_objects(self, repo: str, branch: str, paths: list[str]) -> None:
        with self._locked(repo):
            self._head(repo, branch, "delete objects")
            self._stage(repo, branch, [{"p": p, "d": 1} for p in paths])

    def create_branch_once(self, repo: str, name: str, source_commit: str) -> None:
        with self._locked(repo):
            self._commit(repo, source_commit, "create branch")
            where = self._repo(repo) / "branches" / f"{name}.json"
            if where.exists():
                if self._head(repo, name, "create branch") == source_commit:
                    return
                raise self._error(Conflict, "create branch", 409, f"branch `{name}` exists "
                                  f"and does not point at {source_commit[:12]}")
            self._staging(repo, name).unlink(missing_ok=True)
            self._write_json(where, {"head": source_commit})

    def delete_branch(self, repo: str, branch: str) -> None:
        with self._locked(repo):
            (self._repo(repo) / "branches" / f"{branch}.json").unlink(missing_ok=True)
            self._staging(repo, branch).unlink(missing_ok=True)

    def commit_once(self, repo: str, branch: str, message: str, metadata: dict[str, str],
                    key: str, since: str) -> Commit:
        with self._locked(repo):
            head = self._head(repo, branch, "commit")
            landed = self._landed(repo, head, key, metadata[key], since)
            if landed is not None:
                return landed
            tree = self._branch_tree(repo, branch, "commit")
            made = self._new_commit(repo, [head], message, metadata, tree)
            self._move(repo, branch, made)
            self._staging(repo, branch).unlink(missing_ok=True)
            return self.commit_of(repo, made)

    def merge_once(self, repo: str, source: str, destination: str, message: str,
                   metadata: dict[str, str], key: str, since: str) -> Commit:
        """Merge `source` into `destination` as lakeFS does: a three-way merge of the trees
        from their nearest common ancestor; a path both sides changed differently is a
        Conflict. The destination's checkout is swapped in when it is the default branch."""
        with self._locked(repo):
            ours = self._head(repo, destination, "merge")
            landed = self._landed(repo, ours, key, metadata[key], since)
            if landed is not None:
                return landed
            theirs = self._head(repo, source, "merge")
            base = self._ancestor(repo, ours, theirs)
            tree = _three_way(self._tree(self._commit(repo, base, "merge")) if base else {},
                              self._tree(self._commit(repo, ours, "merge")),
                              self._tree(self._commit(repo, theirs, "merge")),
                              lambda path: self._error(Conflict, "merge", 409,
                                                       f"conflict at {path}"))
            made = self._new_commit(repo, [ours, theirs], message, metadata, tree)
            self._move(repo, destination, made)
            return self.commit_of(repo, made)

    def _landed(self, repo: str, head: str, key: str, value: str,
                since: str) -> Commit | None:
        """The commit carrying `key` = `value` on the first-parent chain from `head` down to
        `since`: an earlier attempt's, even under commits made on top of it since."""
        for commit in self.log(repo, head, stop_at=since):
            if commit.metadata.get(key) == value:
                return commit
        return None

    # --- records ------------------------------------------------------------------------

    def _head(self, repo: str, branch: str, operation: str) -> str:
        try:
            with open(self._repo(repo) / "branches" / f"{branch}.json") as f:
                return str(json.load(f)["head"])
        except FileNotFoundError:
            if not self._managed(repo):
                raise self._error(NotFound, operation, 404, f"repository `{repo}` not "
                                  "found") from None
            raise self._error(NotFound, operation, 404, f"branch `{branch}` of `{repo}` not "
                              "found") from None

    def _resolve(self, repo: str, ref: str, operation: str) -> str:
        """A full commit ID, a branch, or (as lakeFS resolves refs) a unique prefix of a
        commit ID (the 12 characters dsc prints)."""
        if _is_commit(ref):
            return ref
        try:
            return self._head(repo, ref, operation)
        except NotFound:
            if not _hex(ref) or not self._managed(repo):
                raise
        return self._by_prefix(repo, ref, operation)

    def _by_prefix(self, repo: str, prefix: str, operation: str,
                   also: tuple[str, ...] = ()) -> str:
        """The one commit of `repo` (recorded, or among `also`) whose ID starts with
        `prefix`."""
        try:
            names = os.listdir(self._repo(repo) / "commits")
        except FileNotFoundError:
            names = []
        found = sorted({n[:-len(".json")] for n in names
                        if n.startswith(prefix) and n.endswith(".json")}
                       | {c for c in also if c.startswith(prefix)})
        if len(found) == 1:
            return found[0]
        if not found:
            raise self._error(NotFound, operation, 404, f"no commit of `{repo}` has an ID "
                              f"starting with {prefix}")
        shown = ", ".join(c[:max(12, len(prefix) + 1)] for c in found[:5])
        raise self._error(LakeFSError, operation, 400, f"{prefix} is the start of "
                          f"{len(found)} commit IDs of `{repo}` ({shown}"
                          f"{', ...' if len(found) > 5 else ''}): give more of it")

    def _commit(self, repo: str, commit: str, operation: str) -> dict[str, Any]:
        with self._lock:
            known = self._commits.get((repo, commit))
        if known is not None:
            return known
        try:
            with open(self._repo(repo) / "commits" / f"{commit}.json") as f:
                record: dict[str, Any] = json.load(f)
        except (FileNotFoundError, OSError, ValueError):
            raise self._error(NotFound, operation, 404, f"commit {_short(commit)} of "
                              f"`{repo}` not found") from None
        record["tree"] = {path: (md5, size) for path, (md5, size) in record["tree"].items()}
        with self._lock:
            self._commits[(repo, commit)] = record
        return record

    @staticmethod
    def _tree(record: dict[str, Any]) -> Tree:
        tree: Tree = record["tree"]
        return tree

    def _new_commit(self, repo: str, parents: list[str], message: str,
                    metadata: dict[str, str], tree: Tree) -> str:
        record: dict[str, Any] = {"parents": parents, "message": message,
                                  "metadata": metadata, "created": int(time.time()),
                                  "tree": {p: list(tree[p]) for p in sorted(tree)}}
        text = json.dumps(record, sort_keys=True, separators=(",", ":"))
        commit = hashlib.sha256(text.encode()).hexdigest()
        record["id"] = commit
        self._write_json(self._repo(repo) / "commits" / f"{commit}.json", record)
        return commit

    def _move(self, repo: str, branch: str, commit: str) -> None:
        self._write_json(self._repo(repo) / "branches" / f"{branch}.json", {"head": commit})
        with open(self._repo(repo) / "repository.json") as f:
            default = json.load(f)["default_branch"]
        if branch == default:
            self._check_out(repo, commit)

    def _check_out(self, repo: str, commit: str) -> None:
        """Materialise `commit` (a copy of each object) and point DIR/<repo> at it with
        one rename; the previous checkout goes once nothing points at it."""
        checkouts = self._repo(repo) / "checkouts"
        target = checkouts / commit
        if not target.exists():
            building = checkouts / f".{commit}.{os.getpid()}.{threading.get_ident()}"
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir(parents=True)
            for path, (md5, _size) in self._tree(self._commit(repo, commit, "merge")).items():
                where = building / path
                where.parent.mkdir(parents=True, exist_ok=True)
                _materialise(self._object(md5), where)
            os.replace(building, target)
        top = self.directory(repo)
        previous = os.readlink(top) if top.is_symlink() else None
        link = top.with_name(f".{top.name}.{os.getpid()}.{threading.get_ident()}")
        link.unlink(missing_ok=True)
        os.symlink(os.path.relpath(target, top.parent), link)
        os.replace(link, top)
        if previous and Path(previous).name != commit:
            shutil.rmtree(top.parent / previous, ignore_errors=True)

    def _ancestor(self, repo: str, ours: str, theirs: str) -> str | None:
        """The nearest common ancestor (breadth first from `theirs`)."""
        mine = set()
        todo = [ours]
        while todo:
            c = todo.pop()
            if c not in mine:
                mine.add(c)
                todo += self._commit(repo, c, "merge")["parents"]
        queue = [theirs]
        seen: set[str] = set()
        while queue:
            c = queue.pop(0)
            if c in mine:
                return c
            if c not in seen:
                seen.add(c)
                queue += self._commit(repo, c, "merge")["parents"]
        return None

    # --- staging ------------------------------------------------------------------------

    def _staging(self, repo: str, branch: str) -> Path:
        return self._repo(repo) / "staging" / f"{branch}.jsonl"

    def _stage(self, repo: str, branch: str, changes: list[dict[str, Any]]) -> None:
        where = self._staging(repo, branch)
        where.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(c, separators=(",", ":")) + "\n" for c in changes)
        fd = os.open(where, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                text = "\n" + text  # end a line a kill cut short, so this one stands alone
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def _branch_tree(self, repo: str, branch: str, operation: str) -> Tree:
        """The branch's head tree with its staged changes, read on from the last call's
        place in the log when the head and the log file are the same ones."""
        head = self._head(repo, branch, operation)
        where = self._staging(repo, branch)
        try:
            st = os.stat(where)
            inode, size = st.st_ino, st.st_size
        except FileNotFoundError:
            inode, size = 0, 0
        known = self._branches.get((repo, branch))
        if known and known[:2] == (head, inode) and known[2] <= size:
            offset, tree = known[2], known[3]
        else:
            offset, tree = 0, self._tree(self._commit(repo, head, operation))
        if size > offset:
            with open(where, "rb") as f:
                f.seek(offset)
                text = f.read(size - offset)
            complete = text.rfind(b"\n") + 1  # a last line still being written waits
            tree = self._apply(tree, text[:complete].decode().splitlines())
            offset += complete
        self._branches[(repo, branch)] = (head, inode, offset, tree)
        return tree

    @staticmethod
    def _apply(tree: Tree, lines: list[str]) -> Tree:
        tree = dict(tree)  # a new dict: trees handed out earlier stay as they were
        for line in lines:
            try:
                change = json.loads(line)
            except ValueError:  # a line cut short by a kill: its write never returned
                continue
            if change.get("d"):
                tree.pop(change["p"], None)
            else:
                tree[change["p"]] = (change["m"], change["s"])
        return tree

    # --- files --------------------------------------------------------------------------

    @contextmanager
    def _locked(self, repo: str) -> Iterator[None]:
        with self._lock:
            where = self._repo(repo)
            where.mkdir(parents=True, exist_ok=True)
            fd = os.open(where / "lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _temp(self) -> str:
        tmp = self._state / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return str(tmp / f"{os.getpid()}.{threading.get_ident()}.{time.monotonic_ns()}")

    def _write_json(self, where: Path, value: Any) -> None:
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp()
        with open(tmp, "w") as f:
            json.dump(value, f, sort_keys=True, separators=(",", ":"))
        os.replace(tmp, where)


for _name, _operation in _OPERATIONS.items():
    setattr(DirectoryStore, _name, _translated(_operation, getattr(DirectoryStore, _name)))


def _materialise(source: Path, target: Path) -> None:
    """A checkout's file: its own copy of the stored object (a reflink where the file system
    shares blocks, XFS or btrfs; else a copy), read-only. Never a hard link: an edit of the
    checkout would change the commit's object, and later reads would find it corrupt."""
    try:
        with open(source, "rb") as src, open(target, "wb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
    except OSError:  # no shared blocks here (ext4, tmpfs, ...): a copy (sendfile)
        shutil.copyfile(source, target)
    os.chmod(target, 0o444)


FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


def _three_way(base: Tree, ours: Tree, theirs: Tree,
               conflict: Callable[[str], Exception]) -> Tree:
    merged: Tree = {}
    for path in sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(path), ours.get(path), theirs.get(path)
        if o == t or t == b:
            value = o
        elif o == b:
            value = t
        else:
            raise conflict(path)
        if value is not None:
            merged[path] = value
    return merged


def _check_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise LakeFSError("upload object", 400, f"bad object path {path!r}", where=WHERE)
    if len(path.encode()) > 1024 or any(len(p.encode()) > 255 for p in parts):
        raise LakeFSError("upload object", 400, f"object path too long: {path[:80]}...",
                          where=WHERE)


def _is_commit(ref: str) -> bool:
    return len(ref) == 64 and all(c in "0123456789abcdef" for c in ref)


def _branch_like(ref: str) -> bool:
    return not _is_commit(ref)


def _hex(ref: str) -> bool:
    """Whether `ref` may be a commit ID or the start of one (lakeFS: `^[a-fA-F0-9]{1,64}$`;
    dsc's IDs are lowercase)."""
    return 0 < len(ref) <= 64 and all(c in "0123456789abcdef" for c in ref)


def _short(ref: str) -> str:
    return ref[:12] if _is_commit(ref) else ref
