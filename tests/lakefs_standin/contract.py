"""lakeFS's swagger.yml as the stand-in's contract: routing, and request/response validation.

Every request is routed to its operationId by the spec's own path templates and validated with
openapi-core before a handler runs, as lakeFS validates with kin-openapi (pkg/api/serve.go);
every response is validated before it is sent.
"""

from __future__ import annotations

import copy
import functools
import re
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest
from openapi_core.validation import validators as _openapi_validators
from openapi_core.validation.request.exceptions import SecurityValidationError
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request

API_PREFIX = "/api/v1"
_V = TypeVar("_V")
_UNREAD_BINARY = b"(binary body, streamed unread)"
METHODS = ("get", "put", "post", "delete", "head", "patch", "options")


class _WithoutAllowEmptyValueNotice:
    """openapi-core warns on every request that lakeFS's spec uses `allowEmptyValue` (an OAS 3.0
    keyword it calls deprecated; lakeFS needs it for `after=`). Only that notice is dropped;
    `warnings.catch_warnings` would do it too, but it is not thread-safe and the stand-in
    validates in its handler threads."""

    NOTICE = "Use of allowEmptyValue property is deprecated"

    def __getattr__(self, name: str) -> Any:
        return getattr(warnings, name)

    def warn(self, message: Any, category: Any = None, stacklevel: int = 1,
             source: Any = None) -> None:
        if message != self.NOTICE:
            warnings.warn(message, category, stacklevel + 1, source)


_openapi_validators.warnings = _WithoutAllowEmptyValueNotice()  # type: ignore[attr-defined,assignment]


@dataclass(frozen=True, slots=True)
class Route:
    operation_id: str
    template: str
    path_params: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """What openapi-core made of a request: typed parameters (defaults applied) and problems."""

    query: Mapping[str, Any]
    headers: Mapping[str, Any]
    body: Any
    errors: tuple[str, ...]
    security_failed: bool


@dataclass(frozen=True, slots=True)
class _Response:
    """openapi-core's Response protocol over what the stand-in is about to send."""

    status_code: int
    content_type: str
    headers: Headers
    data: bytes | None


class _UnreadBodyRequest(WerkzeugOpenAPIRequest):
    """A request whose body is not validated, like lakeFS's `x-validation-exclude-body`.

    uploadObject streams its body to the blob store: reading it here would hold it in memory.
    """

    @property
    def body(self) -> bytes | None:
        return None


class Contract:
    """One swagger.yml: its routes and its openapi-core validators."""

    def __init__(self, swagger: Path):
        with open(swagger, "rb") as f:
            spec = _string_keys(yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
        self.swagger = swagger
        # The spec with its local $refs inlined (the recursive ones kept): openapi-core would
        # otherwise resolve every $ref of an operation on every request, most of the
        # stand-in's time. The schemas are the same, only found without a lookup.
        inlined = _inlined(spec)
        self.openapi = OpenAPI.from_dict(inlined, base_uri=swagger.resolve().as_uri())
        self._verdicts = _Verdicts()
        self.operation_ids: set[str] = set()
        self.body_not_validated: set[str] = set()
        self.unauthenticated: set[str] = set()
        # Per operation, its query parameters: name -> (schema type, default), for `read_request`
        self._query: dict[str, dict[str, tuple[str, Any]]] = {}
        self._routes: dict[str, list[tuple[re.Pattern[str], str, str]]] = {}
        templates = sorted(inlined["paths"].items(), key=lambda kv: kv[0].count("{"))
        for template, item in templates:
            pattern = re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)",
                                        re.escape(API_PREFIX + template)) + "$")
            for method in METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                operation_id = operation["operationId"]
                self.operation_ids.add(operation_id)
                if operation.get("x-validation-exclude-body"):
                    self.body_not_validated.add(operation_id)
                if operation.get("security") == []:
                    self.unauthenticated.add(operation_id)
                self._query[operation_id] = {
                    p["name"]: (p.get("schema", {}).get("type", "string"),
                                p.get("schema", {}).get("default"))
                    for p in (*item.get("parameters", ()), *operation.get("parameters", ()))
                    if p.get("in") == "query"}
                self._routes.setdefault(method.upper(), []).append(
                    (pattern, operation_id, template))

    def route(self, method: str, raw_path: str) -> Route | None:
        """The operation a request addresses; path parameters are matched before decoding, so
        an encoded `/` stays inside its parameter."""
        for pattern, operation_id, template in self._routes.get(method.upper(), ()):
            m = pattern.match(raw_path)
            if m:
                params = {k: unquote(v) for k, v in m.groupdict().items()}
                return Route(operation_id, template, params)
        return None

    def check_request(self, request: Request, operation_id: str) -> CheckedRequest:
        """What openapi-core makes of the request; a request identical to one checked before
        (method, path, query, every header, body) gets that request's verdict again."""
        unread = operation_id in self.body_not_validated
        key = ("request", operation_id, *_identity(request),
               None if unread else request.get_data(cache=True))

        def check() -> CheckedRequest:
            adapter = _UnreadBodyRequest(request) if unread else WerkzeugOpenAPIRequest(request)
            result = self.openapi.unmarshal_request(adapter)
            errors = tuple(describe(e) for e in result.errors)
            security_failed = any(isinstance(e, SecurityValidationError) for e in result.errors)
            parameters = result.parameters
            return CheckedRequest(dict(parameters.query or {}), dict(parameters.header or {}),
                                  result.body, errors, security_failed)

        checked = self._verdicts.get(key, check)
        # a handler gets parameters of its own, whatever it does with them
        return CheckedRequest(copy.deepcopy(checked.query), copy.deepcopy(checked.headers),
                              checked.body, checked.errors, checked.security_failed)

    def read_request(self, request: Request, operation_id: str) -> CheckedRequest:
        """The request's query parameters typed and defaulted as swagger.yml declares them,
        and its body, without checking either (`LakeFSStandIn(validate_requests=False)`)."""
        query: dict[str, Any] = {}
        for name, (kind, default) in self._query[operation_id].items():
            value = request.args.get(name)
            if kind == "array" and value is not None:
                query[name] = request.args.getlist(name)  # style form, exploded: name=a&name=b
            elif value is None:
                if default is not None:
                    query[name] = default
            elif kind == "integer":
                query[name] = int(value)
            elif kind == "boolean":
                query[name] = value.lower() == "true"
            else:
                query[name] = value
        body = None
        if operation_id not in self.body_not_validated and request.get_data(cache=True):
            body = True  # the handler reads the raw body (server._json_body)
        return CheckedRequest(query, dict(request.headers), body, (), False)

    def check_response(self, request: Request, operation_id: str, status: int,
                       content_type: str, headers: Mapping[str, str],
                       data: bytes | None) -> tuple[str, ...]:
        """Problems with a response; `data` is None for a streamed binary body."""
        mimetype = content_type.split(";", 1)[0].strip().lower()
        checked_headers = Headers(list(headers.items()))
        mimetype, checked_headers = _as_documented(operation_id, status, mimetype,
                                                   checked_headers)
        # a streamed binary body is not read back: any bytes satisfy `format: binary`, and
        # openapi-core calls an empty body "missing"
        response = _Response(status, mimetype, checked_headers,
                             _UNREAD_BINARY if data is None else data)
        key = ("response", operation_id, *_identity(request), status, mimetype,
               tuple(checked_headers.items()), response.data)

        def check() -> tuple[str, ...]:
            adapter = (_UnreadBodyRequest(request) if operation_id in self.body_not_validated
                       else WerkzeugOpenAPIRequest(request))
            # validate, not unmarshal: unmarshalling a 1,000-row listing costs over a second
            return tuple(describe(e) for e in self.openapi.iter_response_errors(adapter,
                                                                                response))

        return self._verdicts.get(key, check)


class _Verdicts:
    """openapi-core's verdicts on the requests and responses seen lately, by their exact
    bytes. A verdict is a function of those bytes and the spec alone, and the stand-in sees
    the same ones again and again (a fault matrix replays one job's few dozen requests
    hundreds of times; a seed run reads the same objects once per datum), while checking one
    takes milliseconds, most of a request's time in the stand-in."""

    SIZE = 4096  # recent enough for a test's repeats; older ones are dropped first

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[Any, ...], Any] = {}

    def get(self, key: tuple[Any, ...], check: Callable[[], _V]) -> _V:
        with self._lock:
            if key in self._seen:
                verdict: _V = self._seen[key]
                return verdict
        verdict = check()
        with self._lock:
            if len(self._seen) >= self.SIZE:
                del self._seen[next(iter(self._seen))]
            self._seen[key] = verdict
        return verdict


def _identity(request: Request) -> tuple[Any, ...]:
    """Everything of a request but its body that openapi-core may read."""
    environ = request.environ
    return (request.method, environ["PATH_INFO"], environ.get("QUERY_STRING", ""),
            tuple(request.headers.items()))


def _inlined(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with each `{"$ref": "#/..."}` replaced by what it points to, except where that
    would recurse (a schema that contains itself keeps its $ref)."""
    def target(ref: str) -> Any:
        node: Any = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def walk(node: Any, active: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/") and len(node) == 1:
                if ref in active:
                    return node
                return walk(target(ref), (*active, ref))
            return {k: walk(v, active) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, active) for v in node]
        return node

    inlined: dict[str, Any] = walk(spec, ())
    return inlined


def _string_keys(node: Any) -> Any:
    """YAML reads response codes (`200:`) as integers; OpenAPI keys are strings."""
    if isinstance(node, dict):
        return {str(k): _string_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_string_keys(v) for v in node]
    return node


def _as_documented(operation_id: str, status: int, mimetype: str,
                   headers: Headers) -> tuple[str, Headers]:
    """Map the places where lakeFS 1.84 itself departs from its swagger.yml onto what the spec
    documents, so the stand-in can answer as lakeFS does (api.md "Corrections") while every other
    part of the response is still validated. Nothing else is excused.
    """
    if operation_id == "createBranch" and status == 201 and mimetype == "text/plain":
        mimetype = "text/html"  # lakeFS labels the commit ID text/plain; the spec says text/html
    if operation_id == "getObject" and status in (200, 206):
        mimetype = "application/octet-stream"  # lakeFS answers with the object's content type
        if status == 206:
            headers.remove("Content-Range")  # "bytes a-b/size" does not match the spec's pattern
    return mimetype, headers


def describe(error: BaseException) -> str:
    """One line for an openapi-core error, with the schema errors that caused it."""
    text = str(error) or type(error).__name__
    cause = error.__cause__
    details = [getattr(e, "message", str(e)) for e in getattr(cause, "schema_errors", ()) or ()]
    if not details and cause is not None and str(cause) and str(cause) not in text:
        details = [str(cause)]
    return f"{text}: {'; '.join(details)}" if details else text


@functools.cache
def load_contract(swagger: Path) -> Contract:
    """The contract for a swagger.yml, built once per process (openapi-core checks the spec)."""
    return Contract(swagger)
