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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")
PAGE = 1000  # lakeFS's largest page (`amount` above it is a 400)
CHUNK = 1 << 20  # transfer buffer: a large object never sits whole in memory


class LakeFSError(Exception):
    """A store call that failed: `status` is the HTTP status (0: no response). The local
    directory store (compiler.store.directory) raises the same types with lakeFS's statuses,
    so the runtime handles both alike."""

    def __init__(self, operation: str, status: int, message: str,
                 where: str = "lakeFS") -> None:
        super().__init__(f"{where} {operation}: {status or 'no response'}: {message}")
        self.operation = operation
        self.status = status
        self.message = message
        self.where = where


class NotFound(LakeFSError):
    pass


class Conflict(LakeFSError):
    pass


class PreconditionFailed(LakeFSError):
    pass


class Unauthorized(LakeFSError):
    pass


class Unavailable(LakeFSError):
    """429, 5xx, a timeout or a broken connection: the call may be retried if idempotent
    (and may or may not have taken effect)."""


_BY_STATUS: dict[int, type[LakeFSError]] = {401: Unauthorized, 403: Unauthorized,
                                            404: NotFound, 409: Conflict,
                                            412: PreconditionFailed}


@dataclass(frozen=True, slots=True)
class Commit:
    id: str
    parents: tuple[str, ...]
    message: str
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    path: str
    checksum: str
    size: int


@dataclass(slots=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.2  # seconds, doubled each attempt, with jitter
    max_delay: float = 5.0
    timeout: tuple[float, float] = (5.0, 60.0)  # connect, read
    sleep: Callable[[float], None] = field(default=time.sleep)


# Where dsc finds lakeFS credentials outside a pod: the runtime's own variables (set from the
# Secret in pods), else lakectl's (api.md §1).
ENDPOINT_VARIABLES = ("LAKEFS_ENDPOINT", "LAKECTL_SERVER_ENDPOINT_URL")
KEY_VARIABLES = ("LAKEFS_ACCESS_KEY_ID", "LAKECTL_CREDENTIALS_ACCESS_KEY_ID")
SECRET_VARIABLES = ("LAKEFS_SECRET_ACCESS_KEY", "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY")


def from_environment(environ: Mapping[str, str], endpoint: str | None = None) -> LakeFS:
    """A client from `endpoint` (the config's) or the environment. Raises LookupError naming
    the variables to set; never shows a secret."""
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
    return LakeFS(endpoint, key, secret)


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
        for attempt in range(1, policy.attempts + 1):
            try:
                return fn(*args, _request_timeout=policy.timeout, **kwargs)
            except Exception as exc:  # mapped to a typed error, or re-raised, just below
                error = self._typed(operation, exc)
                if not isinstance(error, Unavailable) or not idempotent \
                        or attempt == policy.attempts:
                    raise error from None
                delay = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
                headers: Any = getattr(exc, "headers", None) or {}
                retry_after = headers.get("Retry-After")
                if retry_after and str(retry_after).isdigit():
                    delay = min(policy.max_delay, float(retry_after))
                policy.sleep(delay * (0.5 + random.random() / 2))
        raise AssertionError("unreachable")

    def _typed(self, operation: str, exc: Exception) -> LakeFSError:
        import urllib3

        if isinstance(exc, self._sdk.ApiException):
            status = int(exc.status or 0)
            message = _message(exc.body) or str(exc.reason or "")
            if status == 429 or status >= 500:
                return Unavailable(operation, status, message)
            return _BY_STATUS.get(status, LakeFSError)(operation, status, message)
        if isinstance(exc, (urllib3.exceptions.HTTPError, OSError, TimeoutError)):
            # urllib3 names the URL; a presigned one carries a signature in its query.
            text = re.sub(r"\?[^\s'\")]*", "?...", f"{type(exc).__name__}: {exc}")
            return Unavailable(operation, 0, text)
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
        return Commit(c.id, tuple(c.parents), c.message, dict(c.metadata or {}))

    def objects(self, repo: str, ref: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under `prefix` at `ref`, lexicographically, 1,000 per request. Pages
        are read as plain JSON: lakefs-sdk's models cost 20 us a row (2 s per 100,000)."""
        path = f"/repositories/{_q(repo)}/refs/{_q(ref)}/objects/ls"
        after = ""
        while True:
            url = self._url(path, prefix=prefix, after=after, amount=PAGE,
                            user_metadata="false")
            page = self._call("list objects",
                              lambda url=url, **_: json.loads(self._raw("GET", url).data),
                              idempotent=True)
            for row in page["results"]:
                if row.get("path_type") == "object":
                    yield ObjectInfo(row["path"], row.get("checksum", ""),
                                     int(row.get("size_bytes") or 0))
            if not page["pagination"]["has_more"]:
                return
            after = page["pagination"]["next_offset"]

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
        """The paths of a commit (`compiler.pins.PinResolver`)."""
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
                self.policy.sleep(self.policy.base_delay * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def delete_objects(self, repo: str, branch: str, paths: list[str]) -> None:
        """Delete `paths` from `branch` (staged), 1,000 per call. Deleting what is already
        gone succeeds, so this is retried like a read."""
        api = self._api("ObjectsApi")
        for i in range(0, len(paths), PAGE):
            batch = self._sdk.PathList(paths=paths[i:i + PAGE])
            self._call("delete objects", api.delete_objects, repo, branch, batch,
                       idempotent=True)

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
                self.policy.sleep(self.policy.base_delay * 2 ** (attempt - 1))

    def _branch_at(self, repo: str, name: str) -> str | None:
        try:
            return self.head(repo, name)
        except NotFound:
            return None

    def commit_once(self, repo: str, branch: str, message: str, metadata: dict[str, str],
                    key: str) -> Commit:
        """Commit `branch` with `metadata`, where `metadata[key]` identifies this commit
        (the run). A head already carrying it means an earlier attempt landed: success.
        An empty job still makes its commit, as a Pachyderm job does."""
        def act() -> str:
            made = self._call("commit", self._api("CommitsApi").commit, repo, branch,
                              self._sdk.CommitCreation(message=message, metadata=metadata,
                                                       allow_empty=True), idempotent=False)
            return str(made.id)

        return self._once(repo, branch, metadata, key, act)

    def merge_once(self, repo: str, source: str, destination: str, message: str,
                   metadata: dict[str, str], key: str) -> Commit:
        """Merge `source` into `destination`; a destination head already carrying
        `metadata[key]` is success. A conflict raises Conflict."""
        def act() -> str:
            result = self._call("merge", self._api("RefsApi").merge_into_branch, repo, source,
                                destination, merge=self._sdk.Merge(
                                    message=message, metadata=metadata, allow_empty=True),
                                idempotent=False)
            return str(result.reference)

        return self._once(repo, destination, metadata, key, act)

    def _once(self, repo: str, branch: str, metadata: dict[str, str], key: str,
              act: Callable[[], str]) -> Commit:
        for attempt in range(1, self.policy.attempts + 1):
            done = self._landed(repo, branch, key, metadata[key])
            if done is not None:
                return done
            try:
                return self.commit_of(repo, act())
            except LakeFSError as exc:
                # The answer is lost or wrong, not necessarily the write: read the head again
                # (an error after the write landed must not fail what succeeded).
                try:
                    done = self._landed(repo, branch, key, metadata[key])
                except LakeFSError:
                    done = None
                if done is not None:
                    return done
                if not isinstance(exc, Unavailable) or attempt == self.policy.attempts:
                    raise
                self.policy.sleep(self.policy.base_delay * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _landed(self, repo: str, branch: str, key: str, value: str) -> Commit | None:
        head = self.commit_of(repo, branch)
        return head if head.metadata.get(key) == value else None


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


def _message(body: Any) -> str:
    try:
        return str(json.loads(body).get("message", "")) if body else ""
    except (ValueError, AttributeError):
        return str(body)[:200]
