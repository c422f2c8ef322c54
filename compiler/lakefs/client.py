"""The one adapter over lakefs-sdk (DESIGN.md §5): timeouts on every call, bounded retries with
backoff for 429/5xx and transport faults on idempotent calls only, typed errors.

Non-idempotent calls (create branch, commit, merge) are never retried blindly: the `*_once`
methods read back what a lost response may have done and treat "already done" as success
(`../shared/reference/lakefs/api.md` §3, §11, §13). lakefs-sdk costs ~0.5 s to import, so
only this module imports it, and only when a client is made.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

from compiler.store import (
    Commit,
    Conflict,
    LakeFSError,
    NotFound,
    ObjectInfo,
    PreconditionFailed,
    Unauthorized,
    Unavailable,
)

T = TypeVar("T")
PAGE = 1000  # lakeFS's largest page (`amount` above it is a 400)
LIST_STREAMS = 4  # ranges of a listing read at once by `object_columns`
SPLIT_PAGES = 10  # pages of a level's entries read, at most, to find where to split it
SPLIT_DEPTH = 4  # levels descended, at most, while a level is one directory
RANGE_AHEAD = 8  # pages a range reads ahead of the reader, at most
Columns = tuple[list[str], list[int], list[str]]  # a page's paths, sizes and checksums
CHUNK = 1 << 20  # transfer buffer: a large object never sits whole in memory


_BY_STATUS: dict[int, type[LakeFSError]] = {401: Unauthorized, 403: Unauthorized,
                                            404: NotFound, 409: Conflict,
                                            412: PreconditionFailed}


DEFAULT_TIMEOUT = 30.0  # seconds: `lakefs.timeout` in dsc.yaml, DSC_LAKEFS_TIMEOUT in pods


@dataclass(slots=True)
class RetryPolicy:
    """How long one call may take. A request that gets no answer within `timeout` (connect,
    read) is an attempt lost; a transient failure (429, 5xx, no answer) of an idempotent call
    is tried again after a growing pause, up to `attempts`, and no attempt starts once
    `deadline` seconds have passed since the first: an endpoint that accepts and never answers
    costs at most `deadline` plus one read timeout."""

    attempts: int = 5
    base_delay: float = 0.2  # seconds, doubled each attempt, with jitter
    max_delay: float = 5.0
    timeout: tuple[float, float] = (5.0, DEFAULT_TIMEOUT)  # connect, read
    deadline: float = 2 * DEFAULT_TIMEOUT
    sleep: Callable[[float], None] = field(default=time.sleep)
    clock: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def with_timeout(cls, seconds: float) -> RetryPolicy:
        """The policy for a configured read timeout: the deadline follows it."""
        return cls(timeout=(min(5.0, seconds), seconds), deadline=2 * seconds)


# Where dsc finds lakeFS credentials outside a pod: the runtime's own variables (set from the
# Secret in pods), else lakectl's (api.md §1).
ENDPOINT_VARIABLES = ("LAKEFS_ENDPOINT", "LAKECTL_SERVER_ENDPOINT_URL")
KEY_VARIABLES = ("LAKEFS_ACCESS_KEY_ID", "LAKECTL_CREDENTIALS_ACCESS_KEY_ID")
SECRET_VARIABLES = ("LAKEFS_SECRET_ACCESS_KEY", "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY")


def from_environment(environ: Mapping[str, str], endpoint: str | None = None,
                     timeout: float | None = None) -> LakeFS:
    """A client from `endpoint` (the config's) or the environment. Raises LookupError naming
    the variables to set; never shows a secret. `timeout` (seconds; else DSC_LAKEFS_TIMEOUT,
    else 30) bounds every request."""
    def first(names: tuple[str, ...]) -> str | None:
        return next((environ[n] for n in names if environ.get(n)), None)

    endpoint = endpoint or first(ENDPOINT_VARIABLES)
    key, secret = first(KEY_VARIABLES), first(SECRET_VARIABLES)
    missing = [names[0] for names, value in ((ENDPOINT_VARIABLES, endpoint),
                                             (KEY_VARIABLES, key), (SECRET_VARIABLES, secret))
               if not value]
    if missing:
        raise LookupError("reaching lakeFS needs " + ", ".join(missing) + " (or lakectl's "
                          "LAKECTL_* variables; the endpoint may also be `lakefs.endpoint` "
                          "in dsc.yaml)")
    assert endpoint and key and secret
    if timeout is None:
        text = environ.get("DSC_LAKEFS_TIMEOUT", "")
        try:
            timeout = float(text) if text else DEFAULT_TIMEOUT
        except ValueError:
            raise LookupError(f"DSC_LAKEFS_TIMEOUT={text!r} is not a number of seconds") \
                from None
        if timeout <= 0:
            raise LookupError(f"DSC_LAKEFS_TIMEOUT={text!r} must be above 0")
    return LakeFS(endpoint, key, secret, RetryPolicy.with_timeout(timeout))


class LakeFS:
    """A lakeFS server, reached with an access key pair."""

    def __init__(self, endpoint: str, access_key_id: str, secret_access_key: str,
                 policy: RetryPolicy | None = None) -> None:
        import lakefs_sdk
        import urllib3

        sdk: Any = lakefs_sdk  # pydantic v1 models without explicit re-exports
        host = endpoint.rstrip("/")
        if not host.endswith("/api/v1"):
            host += "/api/v1"
        configuration = sdk.Configuration(host=host, username=access_key_id,
                                                 password=secret_access_key)
        # Retries are ours: urllib3's would resend a commit whose response was lost.
        configuration.retries = urllib3.Retry(total=0, connect=0, read=0, redirect=0,
                                              status=0, raise_on_status=False)
        self._client = sdk.ApiClient(configuration)
        self._sdk = sdk
        self.policy = policy or RetryPolicy()
        self.endpoint = endpoint
        self._plain: Any = None  # presigned reads go to the object store without our auth

    # --- plumbing -----------------------------------------------------------------------

    def _call(self, operation: str, fn: Callable[..., T], *args: Any, idempotent: bool,
              **kwargs: Any) -> T:
        policy = self.policy
        first = policy.clock()
        for attempt in range(1, policy.attempts + 1):
            try:
                return fn(*args, _request_timeout=policy.timeout, **kwargs)
            except Exception as exc:  # mapped to a typed error, or re-raised, just below
                error = self._typed(operation, exc)
                if not error.transient or not idempotent or attempt == policy.attempts:
                    raise error from None
                delay = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
                headers: Any = getattr(exc, "headers", None) or {}
                retry_after = headers.get("Retry-After")
                if retry_after and str(retry_after).isdigit():
                    delay = min(policy.max_delay, float(retry_after))
                delay *= 0.5 + random.random() / 2
                if policy.clock() - first + delay > policy.deadline:
                    raise Unavailable(operation, error.status, f"{error.message} (gave up "
                                      f"after {attempt} attempts in "
                                      f"{policy.clock() - first:.0f} s)") from None
                policy.sleep(delay)
        raise AssertionError("unreachable")

    def _pause(self, attempt: int) -> None:
        self.policy.sleep(self.policy.base_delay * 2 ** (attempt - 1))

    def _typed(self, operation: str, exc: Exception) -> LakeFSError:
        import urllib3

        if isinstance(exc, self._sdk.ApiException):
            status = int(exc.status or 0)
            message = _message(exc.body) or str(exc.reason or "")
            return _error_for(status)(operation, status, message)
        if isinstance(exc, (urllib3.exceptions.HTTPError, OSError, TimeoutError)):
            return Unavailable(operation, 0, _transport_message(exc))
        raise exc

    def _api(self, name: str) -> Any:
        return getattr(self._sdk, name)(self._client)

    # --- reads (idempotent, retried) -------------------------------------------------------

    def head(self, repo: str, branch: str) -> str:
        """The full commit ID at the head of `branch`."""
        ref = self._call("get branch", self._api("BranchesApi").get_branch, repo, branch,
                         idempotent=True)
        return str(ref.commit_id)

    def commit_of(self, repo: str, ref: str) -> Commit:
        c = self._call("get commit", self._api("CommitsApi").get_commit, repo, ref,
                       idempotent=True)
        return Commit(c.id, tuple(c.parents), c.message, dict(c.metadata or {}),
                      str(c.committer or ""), int(c.creation_date or 0),
                      str(c.meta_range_id or ""))

    def log(self, repo: str, ref: str, stop_at: str | None = None) -> Iterator[Commit]:
        """The first-parent chain from `ref`, newest first, ending with `stop_at` (included)
        when the chain reaches it; 1,000 commits a request, read as plain JSON."""
        path = f"/repositories/{_q(repo)}/refs/{_q(ref)}/commits"
        after = ""
        amount = 50  # most walks end within a few commits: a first page of 1,000 is wasted
        while True:
            url = self._url(path, after=after, amount=amount, first_parent="true",
                            **({"stop_at": stop_at} if stop_at else {}))
            amount = PAGE
            page = self._call("log commits",
                              lambda url=url, **_: json.loads(self._raw("GET", url).data),
                              idempotent=True)
            for c in page["results"]:
                yield Commit(c["id"], tuple(c.get("parents") or ()), c.get("message", ""),
                             dict(c.get("metadata") or {}), c.get("committer", ""),
                             int(c.get("creation_date") or 0), c.get("meta_range_id", ""))
                if c["id"] == stop_at:
                    return
            if not page["pagination"]["has_more"]:
                return
            after = page["pagination"]["next_offset"]

    def branches(self, repo: str, prefix: str = "") -> Iterator[tuple[str, str]]:
        """(name, head commit) of the branches starting with `prefix`, 1,000 a request."""
        path = f"/repositories/{_q(repo)}/branches"
        after = ""
        while True:
            url = self._url(path, prefix=prefix, after=after, amount=PAGE)
            page = self._call("list branches",
                              lambda url=url, **_: json.loads(self._raw("GET", url).data),
                              idempotent=True)
            for ref in page["results"]:
                yield ref["id"], ref["commit_id"]
            if not page["pagination"]["has_more"]:
                return
            after = page["pagination"]["next_offset"]

    def preflight(self, repos: Mapping[str, str]) -> None:
        """Before a run: the endpoint answers, the credentials are good, and each repository
        (name -> what reads it) exists. One attempt each, no retries: a wrong secret, a
        refused endpoint or a missing repository fails at once, an endpoint that never
        answers within the read timeout."""
        quick = LakeFS.__new__(LakeFS)
        quick._client, quick._sdk, quick._plain = self._client, self._sdk, None
        quick.endpoint = self.endpoint
        quick.policy = RetryPolicy(attempts=1, timeout=self.policy.timeout,
                                   deadline=0.0, sleep=self.policy.sleep,
                                   clock=self.policy.clock)
        # The credentials: a cheap call whose 401 lakeFS documents (getCurrentUser's is not).
        quick._call("list repositories", quick._api("RepositoriesApi").list_repositories,
                    amount=1, idempotent=True)
        for repo, why in repos.items():
            try:
                quick._call("get repository", quick._api("RepositoriesApi").get_repository,
                            repo, idempotent=True)
            except NotFound:
                raise NotFound("get repository", 404, f"repository `{repo}` does not exist "
                               f"({why})") from None

    def objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under `prefix` at `ref`, lexicographically, 1,000 per request. Pages
        are read as plain JSON: lakefs-sdk's models cost 20 us a row (2 s per 100,000)."""
        for rows in self._object_pages(repo, ref, prefix):
            for row in rows:
                yield ObjectInfo(row["path"], row.get("checksum", ""),
                                 int(row.get("size_bytes") or 0))

    def object_columns(self, repo: str, ref: str, prefix: str = "",
                       streams: int = LIST_STREAMS) -> Iterator[Columns]:
        """`objects`, a page at a time as columns: paths, sizes, checksums (no object a row:
        a million rows cost ~1 s less). Where many pages follow the first (`_split_points`)
        and `streams` > 1, the rest is cut into ranges, `streams` of them listed at once,
        their pages given in the order one listing gives them: against a lakeFS a network
        away, a million objects are a thousand requests, one after the other."""
        rows, more = self._object_page(repo, ref, prefix)
        yield _columns(rows)
        if more is None:
            return
        starts = self._split_points(repo, ref, prefix, [r["path"] for r in rows], more,
                                    4 * streams) if streams > 1 else []
        if not starts:
            for rows in self._object_pages(repo, ref, prefix, after=more):
                yield _columns(rows)
            return
        yield from self._ranges(repo, ref, prefix, more, starts, streams)

    def _split_points(self, repo: str, ref: str, level: str, first: list[str], after: str,
                      ranges: int) -> list[str]:
        """Keys after `after` (the last of the first page, `first`) where ranges of the rest
        of the listing start: entries (objects and directories) of the first level with
        several after `after`, evenly spaced, about one a page left (the first page's keys
        spread over so many entries of that level), `ranges` at most; that level is found
        going down the directories that hold `after`. None when it is flat as far as the
        first page shows (the listing itself is then the cheaper read), when it is longer
        than SPLIT_PAGES pages, or when a page or two is all that is left."""
        for _depth in range(SPLIT_DEPTH):
            first = [p for p in first if p.startswith(level)]
            spanned = {p[:len(level) + p[len(level):].find("/") + 1] for p in first
                       if "/" in p[len(level):]}
            if not spanned:
                return []  # the first page's keys are all files of this level: flat
            entries: list[str] = []
            pages = self._object_pages(repo, ref, level, delimiter="/", after=after)
            for rows in pages:
                entries += [e["path"] for e in rows if e["path"] > after]
                if len(entries) > SPLIT_PAGES * PAGE:
                    pages.close()
                    return []
            # pages left ~ entries left x keys an entry (as on the first page) / PAGE
            count = min(ranges, len(entries) * len(first) // (len(spanned) * PAGE))
            if count >= 2:
                return [entries[len(entries) * i // count] for i in range(count)]
            rest = after[len(level):]
            if "/" not in rest:
                return []
            level += rest[:rest.find("/") + 1]  # what is left is mostly under `after`'s directory
        return []

    def _ranges(self, repo: str, ref: str, prefix: str, after: str, starts: list[str],
                streams: int) -> Iterator[Columns]:
        """The listing under `prefix` after the key `after`, range after range (the first
        up to `starts[0]`, then from each start to the next), `streams` ranges listed at once
        on threads, each read ahead into its queue."""
        import bisect
        import queue
        import threading
        from concurrent.futures import ThreadPoolExecutor

        stop = threading.Event()
        Pages = queue.Queue[Any]
        bounds = [after, *starts]  # range i: from bounds[i] to bounds[i + 1]; the first
        # from just after `after`, the others from their start

        def put(out: Pages, item: Any) -> bool:  # False once the reader is gone
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def listed(i: int, out: Pages) -> None:  # on a thread: one range's pages
            first, end = bounds[i], bounds[i + 1] if i + 1 < len(bounds) else None
            try:
                # The first range from after `after`; the others from just before their
                # first entry. A page may hold keys of the ranges either side
                for rows in self._object_pages(repo, ref, prefix,
                                               after=_just_before(first) if i else after):
                    if stop.is_set():
                        return
                    paths = [row["path"] for row in rows]
                    low = bisect.bisect_left(paths, first) if i else 0
                    high = len(paths) if end is None else bisect.bisect_left(paths, end)
                    if low < high and not put(out, _columns(rows[low:high])):
                        return
                    if high < len(paths):
                        break
            except BaseException as exc:  # given to the reader in its turn
                put(out, exc)
            else:
                put(out, None)

        queues: list[Pages | None] = []
        pool = ThreadPoolExecutor(streams, thread_name_prefix="dsc-list")
        try:
            for i in range(len(bounds)):
                while len(queues) < min(i + streams, len(bounds)):  # `streams` ahead
                    out: Pages = queue.Queue(RANGE_AHEAD)
                    pool.submit(listed, len(queues), out)
                    queues.append(out)
                pages, queues[i] = queues[i], None
                assert pages is not None
                while (page := pages.get()) is not None:
                    if isinstance(page, BaseException):
                        raise page
                    yield page
        finally:  # done, failed or the reader gone: the others stop after their request
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)

    def _object_pages(self, repo: str, ref: str, prefix: str, delimiter: str = "",
                      after: str = "") -> Generator[list[Any], None, None]:
        """The rows of each page: objects, and with a delimiter the common prefixes too;
        from the first key after `after`."""
        more: str | None = after
        while more is not None:
            rows, more = self._object_page(repo, ref, prefix, delimiter, more)
            yield rows

    def _object_page(self, repo: str, ref: str, prefix: str, delimiter: str = "",
                     after: str = "") -> tuple[list[Any], str | None]:
        """One page's rows (`_object_pages`), and the `after` of the next page, if any."""
        url = self._url(f"/repositories/{_q(repo)}/refs/{_q(ref)}/objects/ls", prefix=prefix,
                        after=after, amount=PAGE, user_metadata="false",
                        **({"delimiter": delimiter} if delimiter else {}))
        page = self._call("list objects",
                          lambda **_: json.loads(self._raw("GET", url).data), idempotent=True)
        rows = page["results"] if delimiter else \
            [row for row in page["results"] if row.get("path_type") == "object"]
        pagination = page["pagination"]
        return rows, pagination["next_offset"] if pagination["has_more"] else None

    def _url(self, route: str, /, **query: Any) -> str:
        """An API URL: `route` below /api/v1 (its parts quoted with `_q`), and the query."""
        from urllib.parse import urlencode

        return f"{self._client.configuration.host}{route}?{urlencode(query)}"

    def _raw(self, method: str, url: str, *, accept: str = "application/json",
             headers: dict[str, str] | None = None, preload: bool = True, **kwargs: Any
             ) -> Any:
        """One request on lakefs-sdk's connection pool, past its models (plain JSON pages,
        streamed bodies); an error status raises what lakefs-sdk would, for `_call`."""
        import urllib3

        response = self._client.rest_client.pool_manager.urlopen(
            method, url, retries=False, preload_content=preload,
            timeout=urllib3.Timeout(connect=self.policy.timeout[0],
                                    read=self.policy.timeout[1]),
            headers={"Authorization": self._basic(), "Accept": accept, **(headers or {})},
            **kwargs)
        if response.status >= 400:
            _fail(self._sdk, response)
        return response

    def listing(self, repo: str, commit: str) -> Iterator[str]:
        """The paths of a commit (`compiler.commands.pins.PinResolver`)."""
        return (o.path for o in self.objects(repo, commit))

    def read(self, repo: str, ref: str, path: str) -> bytes:
        data = self._call("get object", self._api("ObjectsApi").get_object, repo, ref, path,
                          idempotent=True)
        return bytes(data)

    def download(self, repo: str, ref: str, path: str, sink: BinaryIO,
                 presign: bool = False) -> tuple[int, str]:
        """Stream one object into `sink` (from its start; truncated and rewritten on a retry),
        1 MiB at a time. Returns (bytes, MD5 hex). With `presign`, lakeFS redirects to the
        object store and the data is read from there, without lakeFS's credentials."""
        import hashlib

        import urllib3

        url = self._url(f"/repositories/{_q(repo)}/refs/{_q(ref)}/objects", path=path,
                        **({"presign": "true"} if presign else {}))
        start = sink.tell()

        def fetch() -> tuple[int, str]:
            sink.seek(start)
            sink.truncate()
            response = self._raw("GET", url, accept="application/octet-stream", preload=False,
                                 redirect=False)
            try:
                if presign and response.status in (301, 302, 303, 307):
                    location = response.headers.get("Location", "")
                    response.release_conn()
                    # A fresh request without our Authorization header: the signature is in
                    # the URL, and the object store must never see lakeFS credentials.
                    response = self._object_store().urlopen(
                        "GET", location, retries=False, preload_content=False,
                        timeout=urllib3.Timeout(connect=self.policy.timeout[0],
                                                read=self.policy.timeout[1]))
                    if response.status >= 400:
                        _fail(self._sdk, response)
                digest = hashlib.md5(usedforsecurity=False)
                size = 0
                for chunk in response.stream(CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
                    size += len(chunk)
                return size, digest.hexdigest()
            finally:
                response.release_conn()

        return self._call("get object", lambda **_: fetch(), idempotent=True)

    def _object_store(self) -> Any:
        if self._plain is None:
            import urllib3

            self._plain = urllib3.PoolManager(maxsize=16, retries=False)
        return self._plain

    def _basic(self) -> str:
        import base64

        configuration = self._client.configuration
        return "Basic " + base64.b64encode(
            f"{configuration.username}:{configuration.password}".encode()).decode()

    # --- writes ----------------------------------------------------------------------------

    def ensure_repository(self, repo: str, storage_namespace: str, default_branch: str) -> bool:
        """Create repository `repo` unless it exists; True when this call created it. A lost
        answer is read back: the repository existing afterwards is success."""
        try:
            self._call("get repository", self._api("RepositoriesApi").get_repository, repo,
                       idempotent=True)
            return False
        except NotFound:
            pass
        creation = self._sdk.RepositoryCreation(name=repo, storage_namespace=storage_namespace,
                                                default_branch=default_branch)
        for attempt in range(1, self.policy.attempts + 1):
            try:
                self._call("create repository",
                           self._api("RepositoriesApi").create_repository, creation,
                           idempotent=False)
                return True
            except Conflict:
                return False  # made meanwhile (by a concurrent run, or our lost attempt)
            except Unavailable:
                try:
                    self._call("get repository",
                               self._api("RepositoriesApi").get_repository, repo,
                               idempotent=True)
                    return True
                except NotFound:
                    if attempt == self.policy.attempts:
                        raise
                self._pause(attempt)
        raise AssertionError("unreachable")

    def delete_objects(self, repo: str, branch: str, paths: list[str]) -> None:
        """Delete `paths` from `branch` (staged), 1,000 per call. Deleting what is already
        gone succeeds, so this is retried like a read. lakeFS answers 200 with a list of the
        paths it could not delete (per-path 401/403 of RBAC or a protected branch, 500 of
        its KV store): a transient one is deleted again, a permanent one fails the call,
        naming the paths (a stale file must never be committed as an output)."""
        api = self._api("ObjectsApi")
        for i in range(0, len(paths), PAGE):
            batch = paths[i:i + PAGE]
            for attempt in range(1, self.policy.attempts + 1):
                result = self._call("delete objects", api.delete_objects, repo, branch,
                                    self._sdk.PathList(paths=batch), idempotent=True)
                failed = [(str(e.path or ""), int(e.status_code), str(e.message))
                          for e in (result.errors or []) if int(e.status_code) != 404]
                if not failed:
                    break
                permanent = [f for f in failed if not _transient_status(f[1])]
                if permanent or attempt == self.policy.attempts:
                    bad = permanent or failed
                    shown = ", ".join(f"{path} ({status}: {message})"
                                      for path, status, message in bad[:3])
                    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
                    raise _error_for(bad[0][1])(
                        "delete objects", bad[0][1], f"could not delete {len(bad)} of "
                        f"{len(batch)} paths on {repo}@{branch}: {shown}{more}")
                batch = [path for path, _status, _message in failed]  # only those again
                self._pause(attempt)

    def upload(self, repo: str, branch: str, path: str, content: bytes | BinaryIO,
               size: int | None = None) -> ObjectInfo:
        """Write one object on a branch, streamed as `application/octet-stream` (a file
        object is never read whole into memory; lakefs-sdk's multipart upload would). The
        same bytes again leave the same state, so this is retried like a read."""
        if isinstance(content, bytes):
            size = len(content)
            rewind = None
        else:
            rewind = content.tell()
            if size is None:
                size = content.seek(0, 2) - rewind
                content.seek(rewind)
        url = self._url(f"/repositories/{_q(repo)}/branches/{_q(branch)}/objects", path=path)

        def send() -> Any:
            if rewind is not None:
                content.seek(rewind)  # type: ignore[union-attr]
            return json.loads(self._raw("POST", url, body=content, headers={
                "Content-Length": str(size), "Content-Type": "application/octet-stream"}).data)

        stats = self._call("upload object", lambda **_: send(), idempotent=True)
        return ObjectInfo(stats["path"], stats["checksum"], int(stats.get("size_bytes") or 0))

    def copy(self, repo: str, source_ref: str, path: str, branch: str) -> ObjectInfo:
        """copyObject from `source_ref` to `branch`, same path: the data is copied inside
        lakeFS's object store. Copying the same source again stages the same object, so
        this is retried like a read."""
        stats = self._call("copy object", self._api("ObjectsApi").copy_object, repo, branch,
                           path, self._sdk.ObjectCopyCreation(src_path=path,
                                                              src_ref=source_ref),
                           idempotent=True)
        return ObjectInfo(str(stats.path), str(stats.checksum), int(stats.size_bytes or 0))

    def delete_branch(self, repo: str, branch: str) -> None:
        """Delete `branch`; already gone is success."""
        try:
            self._call("delete branch", self._api("BranchesApi").delete_branch, repo, branch,
                       idempotent=True)
        except NotFound:
            return

    def create_branch_once(self, repo: str, name: str, source_commit: str) -> None:
        """Create `name` at `source_commit`. It already existing there is success (a retry
        after a lost response); existing anywhere else is a Conflict (api.md §3)."""
        creation = self._sdk.BranchCreation(name=name, source=source_commit)
        for attempt in range(1, self.policy.attempts + 1):
            try:
                self._call("create branch", self._api("BranchesApi").create_branch, repo,
                           creation, idempotent=False)
                return
            except Conflict as exc:
                if self._branch_at(repo, name) == source_commit:
                    return
                raise Conflict(exc.operation, 409, f"branch `{name}` exists and does not "
                               f"point at {source_commit[:12]}") from None
            except Unavailable:
                if self._branch_at(repo, name) == source_commit:
                    return
                if attempt == self.policy.attempts:
                    raise
                self._pause(attempt)

    def _branch_at(self, repo: str, name: str) -> str | None:
        try:
            return self.head(repo, name)
        except NotFound:
            return None

    def commit_once(self, repo: str, branch: str, message: str, metadata: dict[str, str],
                    key: str, since: str) -> Commit:
        """Commit `branch` with `metadata`, where `metadata[key]` identifies this commit
        (the run). A commit carrying it on the branch's first-parent chain since `since`
        means an earlier attempt landed: success, even if others committed on top of it
        since. An empty job still makes its commit, as a Pachyderm job does."""
        def act() -> str:
            made = self._call("commit", self._api("CommitsApi").commit, repo, branch,
                              self._sdk.CommitCreation(message=message, metadata=metadata,
                                                       allow_empty=True), idempotent=False)
            return str(made.id)

        return self._once(repo, branch, metadata[key], key, since, act)

    def merge_once(self, repo: str, source: str, destination: str, message: str,
                   metadata: dict[str, str], key: str, since: str) -> Commit:
        """Merge `source` into `destination` once; a merge carrying `metadata[key]` on the
        destination's first-parent chain since `since` is success. A conflict raises
        Conflict. `allow_empty` lets a job whose outputs equal the previous ones still make
        its output commit; it is safe on a retry only because a landed merge is found in
        the history first (a second, empty merge would carry this run's provenance over
        whatever another writer committed meanwhile: api.md §12, §15)."""
        def act() -> str:
            result = self._call("merge", self._api("RefsApi").merge_into_branch, repo, source,
                                destination, merge=self._sdk.Merge(
                                    message=message, metadata=metadata, allow_empty=True),
                                idempotent=False)
            return str(result.reference)

        return self._once(repo, destination, metadata[key], key, since, act)

    def _once(self, repo: str, branch: str, value: str, key: str, since: str,
              act: Callable[[], str]) -> Commit:
        for attempt in range(1, self.policy.attempts + 1):
            done = self._landed(repo, branch, key, value, since)
            if done is not None:
                return done
            try:
                return self.commit_of(repo, act())
            except LakeFSError as exc:
                # The answer is lost or wrong, not necessarily the write: look again (an
                # error after the write landed must not fail what succeeded).
                try:
                    done = self._landed(repo, branch, key, value, since)
                except LakeFSError:
                    done = None
                if done is not None:
                    return done
                if not exc.transient or attempt == self.policy.attempts:
                    raise
                self._pause(attempt)
        raise AssertionError("unreachable")

    def _landed(self, repo: str, branch: str, key: str, value: str,
                since: str) -> Commit | None:
        for commit in self.log(repo, branch, stop_at=since):
            if commit.metadata.get(key) == value:
                return commit
        return None


def _just_before(key: str) -> str:
    """A key below `key` and above nearly every key below it (lakeFS's `after` is exclusive):
    its last character one less, then the last code point. A key between the two (only
    another such odd one) is listed, and dropped by whoever reads a range from `key`."""
    last = ord(key[-1]) - 1
    if last < 0:
        return key[:-1]
    if 0xD800 <= last <= 0xDFFF:  # surrogates are no characters of a UTF-8 key
        last = 0xD7FF
    return key[:-1] + chr(last) + "\U0010ffff"


def _columns(rows: list[Any]) -> Columns:
    """A page's objects as columns: paths, sizes, checksums."""
    return ([row["path"] for row in rows], [int(row.get("size_bytes") or 0) for row in rows],
            [row.get("checksum", "") for row in rows])


def _q(part: str) -> str:
    from urllib.parse import quote

    return quote(part, safe="")


def _fail(sdk: Any, response: Any) -> None:
    """Raise what lakefs-sdk raises for an error answer (its body read, for the message)."""
    raise sdk.ApiException(status=response.status, reason=response.reason,
                           http_resp=_Body(response))


class _Body:
    """What lakefs_sdk.ApiException reads of a raw urllib3 response."""

    def __init__(self, response: Any) -> None:
        self.status = response.status
        self.reason = response.reason
        self.data = response.data
        self.headers = response.headers

    def getheaders(self) -> Any:
        return self.headers


def _transient_status(status: int) -> bool:
    """429 (lakeFS lost its branch-pointer race, or a proxy's rate limit) and 5xx: the same
    request may succeed later. 4xx answers are final (api.md §0)."""
    return status == 429 or status >= 500


def _error_for(status: int) -> type[LakeFSError]:
    if _transient_status(status):
        return Unavailable
    return _BY_STATUS.get(status, LakeFSError)


def _transport_message(exc: Exception) -> str:
    """What went wrong on the wire, in a line: urllib3's messages repeat the pool and the URL
    (a presigned one carries a signature in its query, which must never be shown)."""
    import urllib3

    reason: Any = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # before its base class
        cause = reason.__cause__ or reason.__context__
        return f"cannot connect ({cause or 'connection failed'})"
    if isinstance(reason, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
        return "no answer within the read timeout"
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return "no connection within the connect timeout"
    if isinstance(reason, urllib3.exceptions.ProtocolError):
        return "the connection broke before the answer (" + str(reason).split(":", 1)[0] + ")"
    return re.sub(r"\?[^\s'\")]*", "?...", f"{type(reason).__name__}: {reason}")


def _message(body: Any) -> str:
    try:
        return str(json.loads(body).get("message", "")) if body else ""
    except (ValueError, AttributeError):
        return str(body)[:200]
