"""The lakeFS API operations the stand-in serves, by operationId, over the versioning model.

Each handler turns a validated request into model calls and answers with the body lakeFS's
controller (pkg/api/controller.go) builds. Operations of swagger.yml without a handler here
answer 501 and are reported as a gap of the stand-in.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.utils import formatdate
from typing import Any, BinaryIO

from werkzeug.datastructures import FileStorage, Headers
from werkzeug.formparser import parse_form_data
from werkzeug.http import parse_options_header
from werkzeug.wrappers import Request

from .model import (
    DEFAULT_CONTENT_TYPE,
    MAX_PER_PAGE,
    BlobWriter,
    Change,
    Commit,
    Entry,
    LakeFSError,
    NotModelled,
    Repository,
    Store,
    View,
    group_changes,
    page_amount,
    paginate,
    validate_path,
)

PRESIGN_PREFIX = "/_presigned/"
PRESIGN_SECONDS = 15 * 60
MAX_DELETE_OBJECTS = 1000  # catalog.DefaultMaxDeleteObjects
USER_METADATA_HEADER = "x-lakefs-meta-"  # apiutil.LakeFSHeaderMetadataPrefix


@dataclass(frozen=True, slots=True)
class Call:
    """A validated request: path parameters, typed query parameters (defaults applied), body."""

    operation_id: str
    path: Mapping[str, str]
    query: Mapping[str, Any]
    body: Any
    request: Request  # its stream is still unread for uploadObject


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: BinaryIO | None = None  # a binary body sent from the blob store, `length` bytes
    length: int = 0

    @classmethod
    def json(cls, status: int, value: object) -> Reply:
        return cls(status, json.dumps(value).encode(), "application/json")

    @classmethod
    def error(cls, error: LakeFSError) -> Reply:
        return cls.json(error.status, error.body)


Handler = Callable[["Operations", Call], Reply]
HANDLERS: dict[str, tuple[Handler, bool]] = {}


def operation(operation_id: str, *, locked: bool = True) -> Callable[[Handler], Handler]:
    """Register a handler; a locked one runs holding the model lock from start to end."""

    def register(handler: Handler) -> Handler:
        HANDLERS[operation_id] = (handler, locked)
        return handler

    return register


@dataclass(slots=True)
class PresignedURL:
    address: str
    size: int
    expires: int


class Operations:
    """The operation handlers, bound to one model and one user."""

    def __init__(self, store: Store, user: str, base_url: Callable[[], str],
                 path_faults: Callable[[str, str], tuple[int, str] | None] = lambda *_: None):
        self.store = store
        self.user = user
        self.path_faults = path_faults  # (operationId, path) -> an injected per-path error
        self.started = store.now()
        self._base_url = base_url
        self.presigned: dict[str, PresignedURL] = {}

    def __call__(self, call: Call) -> Reply:
        entry = HANDLERS.get(call.operation_id)
        if entry is None:
            raise NotModelled(f"{call.operation_id} is not implemented by the lakeFS stand-in")
        handler, locked = entry
        if not locked:
            return handler(self, call)
        with self.store.lock:
            return handler(self, call)

    def repo(self, call: Call) -> Repository:
        return self.store.repository(call.path["repository"])

    def presign(self, entry: Entry) -> tuple[str, int]:
        token = secrets.token_urlsafe(24)
        expires = self.store.now() + PRESIGN_SECONDS
        self.presigned[token] = PresignedURL(entry.address, entry.size, expires)
        return f"{self._base_url()}{PRESIGN_PREFIX}{token}", expires


# -- serialisation: the JSON shapes of swagger.yml ------------------------------------------------

def _pagination(has_more: bool, results: int, next_offset: str) -> dict[str, Any]:
    return {"has_more": has_more, "next_offset": next_offset if has_more else "",
            "results": results, "max_per_page": MAX_PER_PAGE}


def _repository(repo: Repository) -> dict[str, Any]:
    return {"id": repo.name, "creation_date": repo.creation_date,
            "default_branch": repo.default_branch, "storage_namespace": repo.storage_namespace,
            "storage_id": "", "read_only": repo.read_only}


def _commit(commit: Commit) -> dict[str, Any]:
    return {"id": commit.id, "parents": list(commit.parents), "committer": commit.committer,
            "message": commit.message, "creation_date": commit.creation_date,
            "meta_range_id": commit.meta_range_id, "metadata": dict(commit.metadata),
            "generation": commit.generation, "version": commit.version}


def _object_stats(ops: Operations, path: str, entry: Entry, *, user_metadata: bool = True,
                  presign: bool = False) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "path": path, "path_type": "object", "physical_address": entry.address,
        "checksum": entry.checksum, "size_bytes": entry.size, "mtime": entry.mtime,
        "content_type": entry.content_type}
    if user_metadata:
        stats["metadata"] = dict(entry.metadata)
    if presign:
        stats["physical_address"], stats["physical_address_expiry"] = ops.presign(entry)
    return stats


def _common_prefix(path: str) -> dict[str, Any]:
    # Go serialises the non-pointer fields of ObjectStats even on a common prefix (api.md
    # "Corrections"): the spec marks them required
    return {"path": path, "path_type": "common_prefix", "physical_address": "", "checksum": "",
            "mtime": 0}


def _diff(change: Change, include_right_stats: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {"type": change.type, "path": change.path,
                           "path_type": "common_prefix" if change.common_prefix else "object"}
    if change.entry is not None:
        row["size_bytes"] = change.entry.size
    if include_right_stats and change.right is not None:
        row["right"] = {"checksum": change.right.checksum, "mtime": change.right.mtime,
                        "content_type": change.right.content_type,
                        "metadata": dict(change.right.metadata)}
    return row


def _ref_list(pairs: list[tuple[str, str]], query: Mapping[str, Any]) -> dict[str, Any]:
    by_name = dict(pairs)
    page = paginate(sorted(by_name), prefix=query.get("prefix") or "",
                    after=query.get("after") or "", amount=query.get("amount", 100))
    results = [{"id": name, "commit_id": by_name[name]} for name, _ in page.rows]
    return {"pagination": _pagination(page.has_more, len(results),
                                      results[-1]["id"] if results else ""),
            "results": results}


# -- repositories ---------------------------------------------------------------------------------

@operation("listRepositories")
def list_repositories(ops: Operations, call: Call) -> Reply:
    search = call.query.get("search") or ""
    repos = {name: repo for name, repo in ops.store.repositories.items() if search in name}
    page = paginate(sorted(repos), prefix=call.query.get("prefix") or "",
                    after=call.query.get("after") or "", amount=call.query.get("amount", 100))
    results = [_repository(repos[name]) for name, _ in page.rows]
    return Reply.json(200, {"pagination": _pagination(page.has_more, len(results),
                                                      results[-1]["id"] if results else ""),
                            "results": results})


@operation("createRepository")
def create_repository(ops: Operations, call: Call) -> Reply:
    body = call.body
    if body.get("sample_data") or body.get("storage_id"):
        raise NotModelled("createRepository with sample_data or storage_id")
    repo = ops.store.create_repository(
        body["name"], body["storage_namespace"], body.get("default_branch") or "main",
        read_only=bool(body.get("read_only")), bare=bool(call.query.get("bare")))
    return Reply.json(201, _repository(repo))


@operation("getRepository")
def get_repository(ops: Operations, call: Call) -> Reply:
    return Reply.json(200, _repository(ops.repo(call)))


@operation("deleteRepository")
def delete_repository(ops: Operations, call: Call) -> Reply:
    ops.store.delete_repository(call.path["repository"])
    return Reply(204)


# -- branches -------------------------------------------------------------------------------------

@operation("listBranches")
def list_branches(ops: Operations, call: Call) -> Reply:
    show_hidden = bool(call.query.get("show_hidden"))
    pairs = [(b.name, b.head) for b in ops.repo(call).branches.values()
             if show_hidden or not b.hidden]
    return Reply.json(200, _ref_list(pairs, call.query))


@operation("createBranch")
def create_branch(ops: Operations, call: Call) -> Reply:
    commit_id = ops.store.create_branch(ops.repo(call), call.body["name"], call.body["source"],
                                        hidden=bool(call.body.get("hidden")))
    # the body is the bare commit ID, labelled text/plain (api.md "Corrections")
    return Reply(201, commit_id.encode(), "text/plain; charset=utf-8")


@operation("getBranch")
def get_branch(ops: Operations, call: Call) -> Reply:
    branch = ops.repo(call).branch(call.path["branch"])
    return Reply.json(200, {"id": branch.name, "commit_id": branch.head})


@operation("deleteBranch")
def delete_branch(ops: Operations, call: Call) -> Reply:
    ops.store.delete_branch(ops.repo(call), call.path["branch"])
    return Reply(204)


@operation("diffBranch")
def diff_branch(ops: Operations, call: Call) -> Reply:
    repo = ops.repo(call)
    changes = ops.store.uncommitted(repo, repo.branch(call.path["branch"]))
    return _diff_page(changes, call.query)


# -- commits --------------------------------------------------------------------------------------

@operation("commit")
def commit(ops: Operations, call: Call) -> Reply:
    if call.query.get("source_metarange"):
        raise NotModelled("commit with source_metarange")
    body = call.body
    made = ops.store.commit(ops.repo(call), call.path["branch"], body["message"],
                            metadata=body.get("metadata") or {}, date=body.get("date"),
                            allow_empty=bool(body.get("allow_empty")))
    return Reply.json(201, _commit(made))


@operation("getCommit")
def get_commit(ops: Operations, call: Call) -> Reply:
    # the handler dereferences any ref, so commits/main is main's head (api.md §4)
    return Reply.json(200, _commit(ops.store.resolve_commit(ops.repo(call),
                                                            call.path["commitId"])))


@operation("logCommits")
def log_commits(ops: Operations, call: Call) -> Reply:
    repo, query = ops.repo(call), call.query
    since = query.get("since")
    if isinstance(since, datetime):
        since = int(since.timestamp())
    elif since:
        since = int(datetime.fromisoformat(str(since).replace("Z", "+00:00")).timestamp())
    objects, prefixes = query.get("objects") or [], query.get("prefixes") or []
    after, amount = query.get("after") or "", page_amount(query.get("amount"))
    results: list[Commit] = []
    skipping = bool(after)
    for c in ops.store.log(repo, call.path["ref"], first_parent=bool(query.get("first_parent")),
                           stop_at=query.get("stop_at") or "", since=since or None):
        if skipping:
            skipping = c.id != after
            continue
        if (objects or prefixes) and not _touches(repo, c, objects, prefixes):
            continue
        results.append(c)
        if len(results) > amount:
            break
    has_more = len(results) > amount
    results = results[:amount]
    return Reply.json(200, {"pagination": _pagination(has_more, len(results),
                                                      results[-1].id if results else ""),
                            "results": [_commit(c) for c in results]})


def _touches(repo: Repository, commit: Commit, objects: list[str], prefixes: list[str]) -> bool:
    before = repo.commits[commit.parents[0]].tree.entries if commit.parents else {}
    after = commit.tree.entries
    for path in set(before) | set(after):
        if path in objects or any(path.startswith(p) for p in prefixes):
            a, b = before.get(path), after.get(path)
            if (a is None) != (b is None) or (a is not None and b is not None
                                              and a.identity != b.identity):
                return True
    return False


# -- objects --------------------------------------------------------------------------------------

@operation("uploadObject", locked=False)
def upload_object(ops: Operations, call: Call) -> Reply:
    store, headers, path = ops.store, call.request.headers, call.query["path"]
    with store.lock:
        repo = ops.repo(call)
        branch = call.path["branch"]
        if branch not in repo.branches:
            raise LakeFSError(404, f"branch '{branch}' not found")
        validate_path(path)
        if headers.get("If-Match"):
            raise LakeFSError(501, "Not Implemented")  # open-source lakeFS (api.md "Corrections")
        if_none_match = headers.get("If-None-Match")
        if if_none_match not in (None, "*"):
            raise NotModelled("If-None-Match other than '*'")
        if if_none_match == "*" and store.resolve(repo, branch).get(path) is not None:
            raise LakeFSError(412, "path already exists")
        namespace = repo.storage_namespace
    # the body is streamed to the blob store outside the lock: a large upload blocks nobody
    blob, content_type = _receive(store, namespace, call.request)
    entry = Entry(blob.address, blob.checksum, blob.size, store.now(), content_type,
                  tuple(sorted(_user_metadata(headers).items())))
    with store.lock:
        store.stage(ops.repo(call), branch, path, entry, if_absent=if_none_match == "*")
    return Reply.json(201, _object_stats(ops, path, entry))


def _receive(store: Store, namespace: str, request: Request) -> tuple[BlobWriter, str]:
    mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
    if mimetype != "multipart/form-data":
        writer = store.blobs.writer(store.blobs.new_address(namespace))
        while chunk := request.stream.read(1 << 20):
            writer.write(chunk)
        writer.close()
        return writer, request.headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
    if "boundary" not in options:
        raise LakeFSError(500, "no multipart boundary param in Content-Type")

    def blob_part(*_: object, **__: object) -> BlobWriter:
        return store.blobs.writer(store.blobs.new_address(namespace))

    _, _, files = parse_form_data(request.environ, stream_factory=blob_part)  # type: ignore[arg-type]
    parts: list[FileStorage] = files.getlist("content")
    for part in files.values():
        part.stream.close()
    if not parts:
        # lakeFS answers 500 here, e.g. for lakefs-sdk's upload of empty content, which sends no
        # part at all
        raise LakeFSError(500, "multipart upload missing key 'content': http: no such file")
    content = parts[0].stream
    assert isinstance(content, BlobWriter)
    return content, parts[0].content_type or DEFAULT_CONTENT_TYPE


def _user_metadata(headers: Headers) -> dict[str, str]:
    return {k.lower()[len(USER_METADATA_HEADER):]: v for k, v in headers.items()
            if k.lower().startswith(USER_METADATA_HEADER)}


def _entry(ops: Operations, call: Call) -> tuple[View, Entry]:
    repo = ops.repo(call)
    view = ops.store.resolve(repo, call.path["ref"])
    path = call.query["path"]
    validate_path(path)
    entry = view.get(path)
    if entry is None:
        raise LakeFSError(404, "not found")
    return view, entry


@operation("statObject")
def stat_object(ops: Operations, call: Call) -> Reply:
    _, entry = _entry(ops, call)
    return Reply.json(200, _object_stats(ops, call.query["path"], entry,
                                         user_metadata=call.query.get("user_metadata", True),
                                         presign=bool(call.query.get("presign"))))


@operation("listObjects")
def list_objects(ops: Operations, call: Call) -> Reply:
    query = call.query
    view = ops.store.resolve(ops.repo(call), call.path["ref"])
    page = paginate(ops.store.keys(view), prefix=query.get("prefix") or "",
                    after=query.get("after") or "", delimiter=query.get("delimiter") or "",
                    amount=query.get("amount", 100))
    results = []
    for path, common in page.rows:
        if common:
            results.append(_common_prefix(path))
            continue
        entry = view.get(path)
        assert entry is not None
        results.append(_object_stats(ops, path, entry,
                                     user_metadata=query.get("user_metadata", True),
                                     presign=bool(query.get("presign"))))
    return Reply.json(200, {"pagination": _pagination(page.has_more, len(results),
                                                      results[-1]["path"] if results else ""),
                            "results": results})


@operation("getObject")
def get_object(ops: Operations, call: Call) -> Reply:
    _, entry = _entry(ops, call)
    if call.query.get("presign"):
        url, _ = ops.presign(entry)
        return Reply(302, headers={"Location": url})
    return _object_data(ops, entry, call.request.headers, head=False)


@operation("headObject")
def head_object(ops: Operations, call: Call) -> Reply:
    try:
        _, entry = _entry(ops, call)
    except LakeFSError as e:
        return Reply(e.status)  # the spec's HEAD answers carry no body
    return _object_data(ops, entry, call.request.headers, head=True)


def _object_data(ops: Operations, entry: Entry, headers: Headers, *,
                 head: bool) -> Reply:
    etag = f'"{entry.checksum}"'
    meta = {"ETag": etag, "Last-Modified": formatdate(entry.mtime, usegmt=True),
            "Accept-Ranges": "bytes"}
    if not head and headers.get("If-None-Match") in (etag, entry.checksum):
        return Reply(304, headers=meta)
    start, end, status = 0, entry.size, 200
    if headers.get("Range"):
        start, end = _byte_range(headers["Range"], entry.size)
        status = 206
        meta["Content-Range"] = f"bytes {start}-{end - 1}/{entry.size}"
    if head:
        return Reply(status, headers={**meta, "Content-Length": str(end - start)})
    stream = ops.store.blobs.open(entry.address)
    stream.seek(start)
    # lakeFS answers with the object's own content type (api.md "Corrections")
    return Reply(status, content_type=entry.content_type, headers=meta, stream=stream,
                 length=end - start)


def _byte_range(header: str, size: int) -> tuple[int, int]:
    unit, _, spec = header.partition("=")
    first, sep, last = spec.strip().partition("-")
    try:
        if unit.strip() != "bytes" or not sep or "," in spec:
            raise ValueError
        if not first:  # the last N bytes
            start, end = max(0, size - int(last)), size
        else:
            start = int(first)
            end = min(size, int(last) + 1) if last else size
    except ValueError:
        raise LakeFSError(416, "Requested Range Not Satisfiable") from None
    if start >= size or start >= end:
        raise LakeFSError(416, "Requested Range Not Satisfiable")
    return start, end


@operation("deleteObject")
def delete_object(ops: Operations, call: Call) -> Reply:
    ops.store.stage(ops.repo(call), call.path["branch"], call.query["path"], None)
    return Reply(204)


@operation("deleteObjects")
def delete_objects(ops: Operations, call: Call) -> Reply:
    paths = call.body["paths"]
    if len(paths) > MAX_DELETE_OBJECTS:
        raise LakeFSError(400, f"paths: invalid value: more than {MAX_DELETE_OBJECTS}")
    repo = ops.repo(call)
    repo.branch(call.path["branch"])
    errors = []
    for path in paths:
        injected = ops.path_faults("deleteObjects", path)
        if injected is not None:  # lakeFS answers per-path RBAC/protection/KV errors so
            errors.append({"status_code": injected[0], "message": injected[1], "path": path})
            continue
        try:
            ops.store.stage(repo, call.path["branch"], path, None)
        except LakeFSError as e:
            errors.append({"status_code": e.status, "message": e.message, "path": path})
    return Reply.json(200, {"errors": errors})


@operation("copyObject")
def copy_object(ops: Operations, call: Call) -> Reply:
    repo, body = ops.repo(call), call.body
    branch = call.path["branch"]
    if branch not in repo.branches:
        raise LakeFSError(404, f"branch '{branch}' not found")
    source = ops.store.resolve(repo, body.get("src_ref") or branch).get(body["src_path"])
    if source is None:
        raise LakeFSError(404, "not found")
    if body.get("shallow"):
        entry = replace(source, mtime=ops.store.now())
    else:
        # catalog.CopyEntry: the data goes to a new physical address in the same repository
        address = ops.store.blobs.new_address(repo.storage_namespace)
        ops.store.blobs.link(source.address, address)
        entry = replace(source, address=address, mtime=ops.store.now())
    dest_path = call.query["dest_path"]
    ops.store.stage(repo, branch, dest_path, entry)
    return Reply.json(201, _object_stats(ops, dest_path, entry))


# -- refs: diff and merge -------------------------------------------------------------------------

def _diff_page(changes: list[Change], query: Mapping[str, Any],
               include_right_stats: bool = False) -> Reply:
    rows, has_more = group_changes(changes, prefix=query.get("prefix") or "",
                                   after=query.get("after") or "",
                                   delimiter=query.get("delimiter") or "",
                                   amount=query.get("amount", 100))
    results = [_diff(c, include_right_stats) for c in rows]
    return Reply.json(200, {"pagination": _pagination(has_more, len(results),
                                                      results[-1]["path"] if results else ""),
                            "results": results})


@operation("diffRefs")
def diff_refs(ops: Operations, call: Call) -> Reply:
    changes = ops.store.diff(ops.repo(call), call.path["leftRef"], call.path["rightRef"],
                             three_dot=call.query.get("type", "three_dot") == "three_dot")
    return _diff_page(changes, call.query, bool(call.query.get("include_right_stats")))


@operation("mergeIntoBranch")
def merge_into_branch(ops: Operations, call: Call) -> Reply:
    body = call.body or {}
    merged = ops.store.merge(
        ops.repo(call), call.path["sourceRef"], call.path["destinationBranch"],
        message=body.get("message") or "", metadata=body.get("metadata") or {},
        strategy=body.get("strategy") or "", allow_empty=bool(body.get("allow_empty")),
        force=bool(body.get("force")), squash=bool(body.get("squash_merge")))
    return Reply.json(200, {"reference": merged.id})


@operation("findMergeBase")
def find_merge_base(ops: Operations, call: Call) -> Reply:
    repo = ops.repo(call)
    source = ops.store.resolve_commit(repo, call.path["sourceRef"])
    dest = ops.store.resolve_commit(repo, call.path["destinationBranch"])
    base = ops.store.merge_base(repo, source, dest)
    if base is None:
        raise LakeFSError(500, "find merge base: no merge base")
    # lakeFS 1.84 swaps the two commit fields (api.md §12): the stand-in answers as it does
    return Reply.json(200, {"source_commit_id": dest.id, "destination_commit_id": source.id,
                            "base_commit_id": base.id})


# -- tags -----------------------------------------------------------------------------------------

@operation("listTags")
def list_tags(ops: Operations, call: Call) -> Reply:
    return Reply.json(200, _ref_list(list(ops.repo(call).tags.items()), call.query))


@operation("createTag")
def create_tag(ops: Operations, call: Call) -> Reply:
    commit_id = ops.store.create_tag(ops.repo(call), call.body["id"], call.body["ref"])
    return Reply.json(201, {"id": call.body["id"], "commit_id": commit_id})


@operation("getTag")
def get_tag(ops: Operations, call: Call) -> Reply:
    tags = ops.repo(call).tags
    if call.path["tag"] not in tags:
        raise LakeFSError(404, "tag not found")
    return Reply.json(200, {"id": call.path["tag"], "commit_id": tags[call.path["tag"]]})


@operation("deleteTag")
def delete_tag(ops: Operations, call: Call) -> Reply:
    ops.store.delete_tag(ops.repo(call), call.path["tag"])
    return Reply(204)


# -- installation ---------------------------------------------------------------------------------

@operation("healthCheck", locked=False)
def health_check(ops: Operations, call: Call) -> Reply:
    return Reply(204)


@operation("getCurrentUser", locked=False)
def get_current_user(ops: Operations, call: Call) -> Reply:
    return Reply.json(200, {"user": {"id": ops.user, "creation_date": ops.started}})


@operation("getLakeFSVersion", locked=False)
def get_lakefs_version(ops: Operations, call: Call) -> Reply:
    return Reply.json(200, {"version": "1.84.0", "version_context": "lakeFS stand-in"})


def presigned_blob(ops: Operations, token: str) -> Reply:
    """A presigned URL's GET, outside the API (the object store's side of presign=true)."""
    with ops.store.lock:
        url = ops.presigned.get(token)
    if url is None or url.expires < ops.store.now():
        return Reply(403, b"AccessDenied", "text/plain")
    return Reply(200, content_type=DEFAULT_CONTENT_TYPE, stream=ops.store.blobs.open(url.address),
                 length=url.size)
