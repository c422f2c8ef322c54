"""The lakeFS stand-in: an HTTP server on 127.0.0.1 serving lakeFS's API over an in-memory model.

Every request is routed and validated against swagger.yml before it is handled, and every
response before it is sent; a violation is recorded (and answered 400/401 as lakeFS would, for a
request) so the test that caused it fails. Faults from `faults` replace or follow the handling
of matching requests.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_to_bytes, urlsplit

from werkzeug.wrappers import Request

from .contract import API_PREFIX, Contract, load_contract
from .faults import Fault, FaultPlan, RequestInfo, fault_body
from .model import Entry, LakeFSError, NotModelled, Store
from .operations import PRESIGN_PREFIX, Call, Operations, Reply, presigned_blob
from .state import (
    BranchState,
    CommitInfo,
    RepositoryState,
    Snapshot,
    branch_state,
    repository_state,
)


@dataclass(frozen=True, slots=True)
class Violation:
    """A request or response that breaks swagger.yml, or a request the stand-in cannot model."""

    kind: str  # "request", "response" or "not modelled"
    method: str
    path: str
    operation_id: str | None
    status: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.method} {self.path}" + (f" ({self.operation_id})" if self.operation_id
                                                else "")
        status = f" -> {self.status}" if self.status is not None else ""
        return f"{self.kind} violation: {where}{status}: {self.message}"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the stand-in saw it, and what became of it."""

    method: str
    path: str  # below /api/v1, percent-decoded
    query: Mapping[str, str]
    operation_id: str | None
    status: int | str  # the HTTP status sent, or "timeout" / "reset"
    fault: Fault | None
    applied: bool  # the operation ran (its effect, if any, is in the state)


class LakeFSStandIn:
    """A lakeFS server for tests. Use as a context manager, or `start()` and `stop()`."""

    def __init__(self, swagger: Path, *, access_key_id: str | None = None,
                 secret_access_key: str | None = None, user: str = "admin",
                 clock: Callable[[], float] = time.time, latency: float = 0.0,
                 validate_responses: bool = True, validate_requests: bool = True):
        self.contract: Contract = load_contract(Path(swagger))
        # fresh keys per instance, so a test can search output for the exact secret
        self.access_key_id = access_key_id or "AKIASTANDIN" + secrets.token_hex(5).upper()
        self.secret_access_key = secret_access_key or secrets.token_urlsafe(30)
        self.user = user
        self.latency = latency  # seconds added to every API request, as a network would
        # Benchmarks may switch validation off: a 1,000-row listing costs ~60 ms to validate,
        # a request's parameters ~4 ms (a real lakeFS spends microseconds). Tests never should.
        self.validate_responses = validate_responses
        self.validate_requests = validate_requests
        self.store = Store(clock, committer=user)
        self.faults = FaultPlan(self.contract.operation_ids)
        self.operations = Operations(self.store, user, lambda: self.endpoint,
                                     self.faults.take_path)
        self._records: list[RequestRecord] = []
        self._violations: list[Violation] = []
        self._crashes: list[str] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LakeFSStandIn:
        self._httpd = _Server(("127.0.0.1", 0), _Handler, self)
        # serve_forever sees `stop()` only when its poll times out: every 5 ms, the teardown
        # of each of the suite's two hundred stand-ins waits 35 ms less than at 50 ms
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={
            "poll_interval": 0.005}, name="lakefs-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self.store.blobs.close()

    def __enter__(self) -> LakeFSStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """The server's base URL (lakefs-sdk's LakeFSClient appends /api/v1 itself)."""
        assert self._httpd is not None, "the stand-in is not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.endpoint + API_PREFIX

    # -- what happened ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._records)

    def calls(self, operation_id: str) -> list[RequestRecord]:
        return [r for r in self.requests if r.operation_id == operation_id]

    @property
    def violations(self) -> list[Violation]:
        with self._log_lock:
            return list(self._violations)

    def take_violations(self) -> list[Violation]:
        """Return and forget the violations so far: for tests that provoke them on purpose."""
        with self._log_lock:
            taken, self._violations = self._violations, []
        return taken

    def problems(self) -> list[str]:
        """Everything that must fail the test: contract violations, gaps of the stand-in,
        handler crashes, and declared faults that never fired."""
        with self._log_lock:
            found = [str(v) for v in self._violations] + list(self._crashes)
        found += [f"fault never fired: {f.describe()}" for f in self.faults.unfired()]
        return found

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise AssertionError("lakeFS stand-in:\n  " + "\n  ".join(problems))

    # -- state --------------------------------------------------------------------------------

    def seed(self, repository: str, files: Mapping[str, bytes], *, branch: str | None = None,
             message: str = "seed", metadata: Mapping[str, str] | None = None,
             storage_namespace: str | None = None) -> str:
        """Commit `files` to a branch directly, creating the repository (and the branch, from
        the default branch) if missing; returns the commit ID. For test setup: no HTTP."""
        store = self.store
        with store.lock:
            repo = store.repositories.get(repository)
            if repo is None:
                repo = store.create_repository(
                    repository, storage_namespace or f"local://lakefs-standin/{repository}")
            branch = branch or repo.default_branch
            if branch not in repo.branches:
                store.create_branch(repo, branch, repo.default_branch)
            now = store.now()
            for path, data in files.items():
                address = store.blobs.new_address(repo.storage_namespace)
                checksum, size = store.blobs.put(address, data)
                store.stage(repo, branch, path, Entry(address, checksum, size, now))
            return store.commit(repo, branch, message, metadata, allow_empty=True).id

    def head(self, repository: str, branch: str) -> str:
        with self.store.lock:
            return self.store.repository(repository).branch(branch).head

    def branch_state(self, repository: str, branch: str) -> BranchState:
        with self.store.lock:
            return branch_state(self.store.repository(repository), branch)

    def commit(self, repository: str, ref: str) -> CommitInfo:
        with self.store.lock:
            repo = self.store.repository(repository)
            return CommitInfo.of(self.store.resolve_commit(repo, ref))

    def log(self, repository: str, ref: str, *, first_parent: bool = False) -> list[CommitInfo]:
        with self.store.lock:
            repo = self.store.repository(repository)
            return [CommitInfo.of(c) for c in self.store.log(repo, ref,
                                                             first_parent=first_parent)]

    def objects(self, repository: str, ref: str) -> dict[str, bytes]:
        """Every object visible at a ref (a branch name includes uncommitted writes)."""
        with self.store.lock:
            view = self.store.resolve(self.store.repository(repository), ref)
            entries = {path: view.get(path) for path in self.store.keys(view)}
        return {path: self.store.blobs.read(e.address) for path, e in entries.items()
                if e is not None}

    def read(self, repository: str, ref: str, path: str) -> bytes:
        with self.store.lock:
            entry = self.store.resolve(self.store.repository(repository), ref).get(path)
        if entry is None:
            raise KeyError(f"{repository}@{ref}: no object {path!r}")
        return self.store.blobs.read(entry.address)

    def state(self) -> dict[str, RepositoryState]:
        with self.store.lock:
            return {name: repository_state(r) for name, r in self.store.repositories.items()}

    def snapshot(self) -> Snapshot:
        with self.store.lock:
            return Snapshot(self.store)

    def restore(self, snapshot: Snapshot) -> None:
        with self.store.lock:
            snapshot.restore_into(self.store)

    # -- serving ------------------------------------------------------------------------------

    def _serve(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        route = self.contract.route(h.command, split.path)
        info = RequestInfo(h.command, unquote(split.path.removeprefix(API_PREFIX)),
                           route.operation_id if route else None,
                           dict(parse_qsl(split.query, keep_blank_values=True)))
        fault: Fault | None = None
        applied = False
        try:
            body = _BodyReader.of(h)
            request = Request(_environ(h, split.path, split.query, body))
            if split.path.startswith(PRESIGN_PREFIX) and h.command == "GET":
                _send(h, presigned_blob(self.operations, split.path[len(PRESIGN_PREFIX):]))
                return
            if route is None:
                self._violation("request", info, 404, "no operation of swagger.yml has this "
                                "method and path")
                reply: Reply | str = Reply.json(404, {"message": "invalid API endpoint"})
            else:
                reply, fault, applied = self._handle(request, route.operation_id,
                                                     route.path_params, info)
            body.drain()
            # recorded before the answer goes out, so a client that has its answer finds it
            self._record(info, reply if isinstance(reply, str) else reply.status, fault,
                         applied)
            if isinstance(reply, str):
                self._drop(h, reply, fault)
            else:
                _send(h, reply)
        except (ConnectionError, TimeoutError):
            h.close_connection = True
            self._record(info, "client disconnected", fault, applied)
        except Exception as e:  # a bug of the stand-in outside a handler: fail the test loudly
            h.close_connection = True
            with self._log_lock:
                self._crashes.append(f"stand-in crashed serving {info.method} {info.path}: {e!r}")
            with contextlib.suppress(OSError):
                _send(h, Reply.json(500, {"message": f"lakeFS stand-in crashed: {e!r}"}))

    def _record(self, info: RequestInfo, status: int | str, fault: Fault | None,
                applied: bool) -> None:
        with self._log_lock:
            self._records.append(RequestRecord(info.method, info.path, info.query,
                                               info.operation_id, status, fault, applied))

    def _handle(self, request: Request, operation_id: str, path: Mapping[str, str],
                info: RequestInfo) -> tuple[Reply | str, Fault | None, bool]:
        if operation_id not in self.contract.body_not_validated:
            request.get_data()  # read and cache the body for validation and the handler
        checked = (self.contract.check_request if self.validate_requests
                   else self.contract.read_request)(request, operation_id)
        if checked.errors:
            for message in checked.errors:
                self._violation("request", info, None, message)
            # lakeFS's validator answers 401 for a missing credential, 400 for the rest
            status = 401 if checked.security_failed else 400
            return self._checked(request, info, Reply.json(
                status, {"message": "; ".join(checked.errors)})), None, False
        if operation_id not in self.contract.unauthenticated and not self._authenticated(request):
            return self._checked(request, info, Reply.json(
                401, {"message": "error authenticating request"})), None, False
        fault = self.faults.take(info)
        if self.latency:
            time.sleep(self.latency)
        if fault is not None and not fault.apply:
            return self._fault_reply(request, info, fault), fault, False
        call = Call(operation_id, path, checked.query, _json_body(request, checked.body),
                    request)
        reply = self._checked(request, info, self._invoke(call, info))
        if fault is not None:
            if reply.stream is not None:
                reply.stream.close()
            if fault.then is not None:
                fault.then()  # e.g. another writer's commit, landing before the answer is lost
            return self._fault_reply(request, info, fault), fault, True
        return reply, None, True

    def _invoke(self, call: Call, info: RequestInfo) -> Reply:
        try:
            return self.operations(call)
        except LakeFSError as e:
            return Reply.error(e)
        except (ConnectionError, TimeoutError):
            raise  # the client went away mid-request (e.g. during an upload): not a crash
        except NotModelled as e:
            self._violation("not modelled", info, 501, str(e))
            return Reply.json(501, {"message": f"not modelled by the lakeFS stand-in: {e}"})
        except Exception as e:
            with self._log_lock:
                self._crashes.append(f"stand-in crashed on {info.method} {info.path}: {e!r}")
            return Reply.json(500, {"message": f"lakeFS stand-in crashed: {e!r}"})

    def _fault_reply(self, request: Request, info: RequestInfo, fault: Fault) -> Reply | str:
        if isinstance(fault.kind, str):
            return fault.kind
        reply = Reply.json(fault.kind, fault_body(info.operation_id, fault.kind))
        if fault.retry_after is not None:
            reply.headers["Retry-After"] = str(fault.retry_after)
        return self._checked(request, info, reply)

    def _checked(self, request: Request, info: RequestInfo, reply: Reply) -> Reply:
        if self.validate_responses and info.operation_id is not None:
            data = None if reply.stream is not None else reply.body
            for message in self.contract.check_response(
                    request, info.operation_id, reply.status, reply.content_type or "",
                    reply.headers, data):
                self._violation("response", info, reply.status, message)
        return reply

    def _authenticated(self, request: Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            key, _, secret = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (secrets.compare_digest(key, self.access_key_id)
                and secrets.compare_digest(secret, self.secret_access_key))

    def _violation(self, kind: str, info: RequestInfo, status: int | None, message: str) -> None:
        with self._log_lock:
            self._violations.append(Violation(kind, info.method, info.path, info.operation_id,
                                              status, message))

    def _drop(self, h: _Handler, kind: str, fault: Fault | None) -> None:
        """Answer nothing: hold the request past the client's timeout, or reset at once."""
        if kind == "timeout" and fault is not None:
            self._stopping.wait(fault.delay)
        h.close_connection = True
        try:
            if kind == "reset":  # linger 0: close() sends RST instead of FIN
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
            h.connection.close()
        except OSError:
            pass


def _json_body(request: Request, unmarshalled: Any) -> Any:
    # openapi-core returns the body with schema defaults applied; handlers read plain values
    if unmarshalled is None:
        return None
    raw = request.get_data(cache=True)
    return json.loads(raw) if raw else None


def _send(h: _Handler, reply: Reply) -> None:
    h.send_response(reply.status)
    length = reply.length if reply.stream is not None else len(reply.body)
    if reply.content_type:
        h.send_header("Content-Type", reply.content_type)
    for name, value in reply.headers.items():
        if name.lower() != "content-length":
            h.send_header(name, value)
    h.send_header("Content-Length", reply.headers.get("Content-Length", str(length)))
    h.end_headers()
    if h.command == "HEAD":
        return
    if reply.stream is None:
        h.wfile.write(reply.body)
        return
    with reply.stream as stream:
        remaining = reply.length
        while remaining > 0:
            chunk = stream.read(min(remaining, 1 << 20))
            if not chunk:
                break
            h.wfile.write(chunk)
            remaining -= len(chunk)


def _environ(h: _Handler, raw_path: str, query: str, body: io.RawIOBase) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": h.command,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(h.server.server_address[1]),
        "SERVER_PROTOCOL": h.request_version,
        "REMOTE_ADDR": h.client_address[0],
        "CONTENT_TYPE": h.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": h.headers.get("Content-Length", ""),
        "wsgi.url_scheme": "http",
        "wsgi.input": body,
        "wsgi.input_terminated": True,  # the reader stops at the body's end itself
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in h.headers.items():
        key = "HTTP_" + name.upper().replace("-", "_")
        if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            environ[key] = value
    return environ


class _BodyReader(io.RawIOBase):
    """A request body read from the socket: Content-Length bytes, or chunked transfer coding
    (urllib3 streams a file object of unknown length that way)."""

    def __init__(self, rfile: io.BufferedIOBase, length: int | None):
        super().__init__()
        self._rfile = rfile
        self._remaining = length  # None: chunked, bytes left in the current chunk in _chunk
        self._chunk = 0
        self._done = length == 0

    @classmethod
    def of(cls, h: _Handler) -> _BodyReader:
        if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
            return cls(h.rfile, None)
        return cls(h.rfile, int(h.headers.get("Content-Length") or 0))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        if self._remaining is not None:
            n = self._rfile.readinto(memoryview(buffer)[:min(len(buffer), self._remaining)])
            if not n:
                raise ConnectionError("request body ended early")
            self._remaining -= n
            self._done = self._remaining == 0
            return n
        if self._chunk == 0:
            size_line = self._rfile.readline(65537)
            self._chunk = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if self._chunk == 0:
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self._done = True
                return 0
        n = self._rfile.readinto(memoryview(buffer)[:min(len(buffer), self._chunk)])
        if not n:
            raise ConnectionError("request body ended early")
        self._chunk -= n
        if self._chunk == 0:
            self._rfile.readline(3)  # the CRLF after a chunk
        return n

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as lakeFS serves
    server: _Server

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self.server.standin._serve(self)

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the stand-in keeps its own request log


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], handler: type[_Handler],
                 standin: LakeFSStandIn):
        self.standin = standin
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Close idle keep-alive connections, so no handler thread outlives the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
