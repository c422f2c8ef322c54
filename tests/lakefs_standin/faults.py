"""A programmable plan of failures the stand-in injects into the requests that match it.

    standin.faults.add("commit", 500)                          # the next commit fails, unapplied
    standin.faults.add("mergeIntoBranch", "reset", apply=True)  # merged, but the answer is lost
    standin.faults.add("POST /repositories/out/branches/[^/]+/objects", 429, after=3, times=2)
    standin.faults.add("uploadObject", "timeout", where=lambda r: r.query.get("path") == "x")
    standin.faults.add("mergeIntoBranch", "reset", apply=True, then=another_writer_commits)
    standin.faults.add_path("deleteObjects", 403, where=lambda path: path == "keep.txt")

A selector is an operationId of swagger.yml, or "METHOD regex" matched in full against the path
below /api/v1. Kinds: an HTTP status (500, 503, 409, 412, 429, ...; `retry_after=` adds a
Retry-After header, which lakeFS itself never sends), "timeout" (hold the request past the
client's timeout, then close without answering) or "reset" (close the connection without
answering). With `apply=True` the operation takes effect first and only its answer is lost: the
case idempotent retries exist for; `then` runs after the effect and before the answer is lost
(a concurrent writer's commit, made over HTTP from another thread, lands in between).

A path fault answers one path of a batch call (`deleteObjects`) with an error inside a 200
answer, as lakeFS does for a per-path 401/403 (RBAC, a protected branch) or 500 (its KV store):
that path is left as it was.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

TRANSPORT_KINDS = ("timeout", "reset")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a fault selector sees of a request."""

    method: str
    path: str  # below /api/v1, percent-decoded
    operation_id: str | None
    query: Mapping[str, str]


@dataclass(eq=False, slots=True)
class Fault:
    selector: str
    kind: int | str
    times: int | None = 1  # None: every matching request from `after` on
    after: int = 0  # let this many matching requests through first
    apply: bool = False
    delay: float = 2.0  # seconds a "timeout" holds the request
    # a Retry-After header, in seconds: lakeFS never sends one, a proxy in front of it may;
    # urllib3 then retries idempotent requests (GET) on 413/429/503 by itself
    retry_after: int | None = None
    where: Callable[[RequestInfo], bool] | None = None
    then: Callable[[], None] | None = None  # after the effect (apply=True), before the answer
    seen: int = 0
    fired: int = 0
    _operation_id: str | None = field(default=None, repr=False)
    _method: str | None = field(default=None, repr=False)
    _path: re.Pattern[str] | None = field(default=None, repr=False)

    def matches(self, request: RequestInfo) -> bool:
        if self._operation_id is not None:
            hit = request.operation_id == self._operation_id
        else:
            assert self._path is not None
            hit = (self._method in ("*", request.method)
                   and self._path.fullmatch(request.path) is not None)
        return hit and (self.where is None or self.where(request))

    def describe(self) -> str:
        effect = "applied, then " if self.apply else ""
        limit = "every time" if self.times is None else f"{self.times} time(s)"
        return f"{self.selector!r}: {effect}{self.kind}, {limit} after {self.after}"


@dataclass(eq=False, slots=True)
class PathFault:
    """One path of a batch call answered with an error (the rest are done)."""

    operation_id: str
    status: int
    message: str
    where: Callable[[str], bool] | None = None
    times: int | None = 1
    fired: int = 0

    def describe(self) -> str:
        limit = "every time" if self.times is None else f"{self.times} time(s)"
        return f"{self.operation_id!r} path: {self.status}, {limit}"


@dataclass(frozen=True, slots=True)
class FiredFault:
    fault: Fault
    request: RequestInfo


class FaultPlan:
    """The faults of one stand-in, consulted once per request in the order they were added."""

    def __init__(self, operation_ids: Collection[str]):
        self._operation_ids = frozenset(operation_ids)
        self._faults: list[Fault] = []
        self._path_faults: list[PathFault] = []
        self._fired: list[FiredFault] = []
        self._lock = threading.Lock()

    def add_path(self, operation_id: str, status: int, *, times: int | None = 1,
                 where: Callable[[str], bool] | None = None,
                 message: str | None = None) -> PathFault:
        if operation_id not in self._operation_ids:
            raise ValueError(f"{operation_id!r} is not an operationId of swagger.yml")
        fault = PathFault(operation_id, status, message or {
            401: "insufficient permissions (injected by the lakeFS stand-in)",
            403: "cannot write to protected branch (injected by the lakeFS stand-in)",
        }.get(status, f"HTTP {status} (injected by the lakeFS stand-in)"), where, times)
        with self._lock:
            self._path_faults.append(fault)
        return fault

    def take_path(self, operation_id: str, path: str) -> tuple[int, str] | None:
        """The error to answer for this path of a batch call, counting it; None to do it."""
        with self._lock:
            for fault in self._path_faults:
                if fault.operation_id != operation_id or (fault.where and not fault.where(path)):
                    continue
                if fault.times is not None and fault.fired >= fault.times:
                    continue
                fault.fired += 1
                return fault.status, fault.message
        return None

    def add(self, selector: str, kind: int | str, *, times: int | None = 1, after: int = 0,
            apply: bool = False, delay: float = 2.0, retry_after: int | None = None,
            where: Callable[[RequestInfo], bool] | None = None,
            then: Callable[[], None] | None = None) -> Fault:
        if not (isinstance(kind, int) and 400 <= kind <= 599) and kind not in TRANSPORT_KINDS:
            raise ValueError(f"fault kind must be an HTTP error status or one of "
                             f"{TRANSPORT_KINDS}, not {kind!r}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for always)")
        if then is not None and not apply:
            raise ValueError("`then` runs after the effect: it needs apply=True")
        fault = Fault(selector, kind, times, after, apply, delay, retry_after, where, then)
        if " " in selector:
            method, _, pattern = selector.partition(" ")
            fault._method = method.upper()
            fault._path = re.compile(pattern.strip())
        elif selector in self._operation_ids:
            fault._operation_id = selector
        else:
            raise ValueError(f"{selector!r} is not an operationId of swagger.yml; use one, or "
                             f"'METHOD regex' for a path")
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, request: RequestInfo) -> Fault | None:
        """The fault to inject into this request, counting it as seen/fired; None to serve it."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(request):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                if fault.times is not None and fault.fired >= fault.times:
                    continue
                fault.fired += 1
                self._fired.append(FiredFault(fault, request))
                return fault
        return None

    @property
    def fired(self) -> list[FiredFault]:
        with self._lock:
            return list(self._fired)

    def unfired(self) -> list[Fault | PathFault]:
        """Faults that never fired: a test that declared them did not test what it meant to."""
        with self._lock:
            return [f for f in [*self._faults, *self._path_faults] if f.fired == 0]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._path_faults.clear()


def fault_body(operation_id: str | None, kind: int) -> dict[str, Any]:
    """The body lakeFS sends with this status (a merge conflict is a MergeResult, api.md §12)."""
    if kind == 409 and operation_id == "mergeIntoBranch":
        return {"reference": ""}
    messages = {
        409: "conflict (injected by the lakeFS stand-in): not unique",
        412: "Precondition failed (injected by the lakeFS stand-in)",
        429: "Too many attempts, try again later",
        500: "internal error (injected by the lakeFS stand-in)",
        503: "Throughput exceeded. Slow down and retry",
    }
    return {"message": messages.get(kind, f"HTTP {kind} (injected by the lakeFS stand-in)")}
