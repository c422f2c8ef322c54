"""Argo Events v1.9.11 in memory: lakeFS webhook -> EventSource -> Sensor -> the Workflow submitted.

    from tests.events.argo_events import SensorModel, webhook_request
    from tests.events.lakefs_webhook import lakefs_payload, lakefs_request_headers

    body = lakefs_payload("post-commit-images-main")
    headers = lakefs_request_headers(body, {"Authorization": f"Bearer {token}"})
    response = webhook_request(eventsource, "lakefs", "POST", headers, body,
                               {("dsc-lakefs-webhook", "token"): token})
    delivery = SensorModel(sensor).receive(response.event)
    [submitted] = delivery.submitted
    submitted.workflow["metadata"]["name"]

Each step follows the upstream code (paths at tag v1.9.11 of argoproj/argo-events):

* the webhook route: auth and masking (`pkg/eventsources/common/webhook/webhook.go`
  startServer's route handler), method and body (`pkg/eventsources/sources/webhook/start.go`
  HandleRoute, GetBody); the event data is the exact bytes `json.Marshal(WebhookEventData)`
  writes, which reach the Sensor unchanged;
* the Sensor's delivery of an event to each trigger (`pkg/eventbus/jetstream/sensor/
  trigger_conn.go` processMsg/processDependency, `pkg/sensors/listener.go`): per dependency,
  data filters (`pkg/sensors/dependencies/filter.go` filterData); without `&&` in the trigger's
  conditions each passing dependency fires the trigger on its own, with `&&` the model keeps
  the received dependencies between calls as the JetStream key/value store does;
* the trigger: `argoWorkflow.source.resource`, parameters (`pkg/sensors/triggers/params.go`
  ApplyParams/ResolveParamValue), and what `submit` adds before `argo submit`
  (`pkg/sensors/triggers/argo-workflow/argo-workflow.go` Execute).

Not modelled, and refused with Unsupported where a document asks for it: other trigger and
EventSource types, expr/context/time/script filters, transforms, trigger-level parameters,
`conditionsReset`, context keys, operations other than submit, GET/form webhooks. Not modelled
and not visible in a document: the EventBus (every event is published), de-duplication by
event ID, rate limits and retries, and what `argo submit` itself checks or refuses.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.events import go_json
from tests.events.go_regexp import go_regexp_search
from tests.events.go_template import TemplateError, render
from tests.events.json_paths import (
    GjsonResult,
    SjsonError,
    gjson_get,
    parse_go_bool,
    parse_go_float,
    sjson_set,
)
from tests.events.unsupported import Unsupported

__all__ = [
    "MASKED_AUTH",
    "Delivery",
    "Discarded",
    "Event",
    "InvalidSensor",
    "SensorModel",
    "Submitted",
    "TriggerFailed",
    "Unsupported",
    "WebhookResponse",
    "canonical_header_key",
    "sensor_triggers",
    "webhook_event_data",
    "webhook_request",
]

MASKED_AUTH = "*** Masked Auth Secret ***"  # webhook.go, after the token check
DEFAULT_MAX_PAYLOAD = 1048576  # v1alpha1 DefaultMaxWebhookPayloadSize
LABEL_SENSOR = "events.argoproj.io/sensor"
LABEL_TRIGGER = "events.argoproj.io/trigger"
LABEL_ACTION_TIMESTAMP = "events.argoproj.io/action-timestamp"
# reconciler/sensor/validate.go validateArgoWorkflowTrigger; "" is rejected there
ARGO_WORKFLOW_OPERATIONS = ("submit", "submit-from", "suspend", "retry", "resume", "resubmit",
                            "terminate", "stop")
PARAMETER_OPERATIONS = ("", "append", "overwrite", "prepend")
COMPARATORS = ("", ">=", ">", "=", "!=", "<", "<=")
LOGICAL_OPERATORS = ("", "and", "or")
_TOKEN_BYTES = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
                         "VWXYZ")


class InvalidSensor(ValueError):
    """A Sensor the controller's validation rejects, or whose trigger cannot start."""


# --- the EventSource side ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Event:
    """One event as the Sensor receives it: names from the EventSource, data as exact bytes."""

    event_source_name: str
    event_name: str
    data: bytes

    def decoded(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What the EventSource answers lakeFS, and the event it published (only on 200)."""

    status: int
    message: str
    event: Event | None = None


def canonical_header_key(name: str) -> str:
    """textproto.CanonicalMIMEHeaderKey: `content-type` -> `Content-Type`."""
    if not name or any(ch not in _TOKEN_BYTES for ch in name):
        raise Unsupported(f"header name {name!r} (Go's server rejects or keeps it as sent)")
    out = []
    upper = True
    for ch in name:
        if upper and "a" <= ch <= "z":
            ch = ch.upper()
        elif not upper and "A" <= ch <= "Z":
            ch = ch.lower()
        out.append(ch)
        upper = ch == "-"
    return "".join(out)


def webhook_request(eventsource: Mapping[str, Any], event_name: str, method: str,
                    headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes,
                    secrets: Mapping[tuple[str, str], str]) -> WebhookResponse:
    """One HTTP request to the webhook `event_name` of an EventSource document.

    `secrets` maps (Secret name, key) to the value mounted in the EventSource pod.
    """
    hook = _webhook_context(eventsource, event_name)
    header = _go_header(headers)
    auth_secret = hook.get("authSecret")
    if auth_secret:
        selector = (auth_secret["name"], auth_secret["key"])
        if selector not in secrets:
            return WebhookResponse(500, "Error loading auth token")
        # util.GetSecretFromVolume trims one trailing newline of the mounted file
        token = secrets[selector].removesuffix("\n")
        authorization = header.get("Authorization", [""])[0]
        if not authorization.startswith("Bearer "):
            return WebhookResponse(401, "Invalid Authorization Header")
        if authorization.removeprefix("Bearer ") != token:
            return WebhookResponse(401, "Invalid Auth token")
    if header.get("Authorization", [""])[0] != "":
        header["Authorization"] = [MASKED_AUTH]
    if hook.get("method") != method:
        return WebhookResponse(400, "http method does not match")
    if method == "GET":
        raise Unsupported("GET webhooks (the body is the query string as JSON)")
    if method != "POST":
        return WebhookResponse(400, f"unsupoorted method: {method}")  # sic, start.go GetBody
    if header.get("Content-Type", [""])[0] == "application/x-www-form-urlencoded":
        raise Unsupported("form-encoded webhook bodies")
    if len(body) > int(hook.get("maxPayloadSize", DEFAULT_MAX_PAYLOAD)):
        return WebhookResponse(400, "http: request body too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Unsupported("a body that is not UTF-8 (Go copies the bytes through)") from err
    try:
        data = webhook_event_data(header, text, hook.get("metadata") or {})
    except go_json.InvalidJSON as err:
        return WebhookResponse(400, "json: error calling MarshalJSON for type *json.RawMessage: "
                               f"{err}")
    source_name = str(eventsource["metadata"]["name"])
    return WebhookResponse(200, "success", Event(source_name, event_name, data.encode()))


def webhook_event_data(header: Mapping[str, list[str]], body: str,
                       metadata: Mapping[str, str]) -> str:
    """`json.Marshal(events.WebhookEventData{...})`: header (a Go map, so sorted keys), the body
    compacted and HTML-escaped, metadata when not empty. InvalidJSON for a body Go rejects."""
    data = '{"header":' + go_json.encode(dict(header), sort_keys=True)
    data += ',"body":' + go_json.compact(body)
    if metadata:
        data += ',"metadata":' + go_json.encode(dict(metadata), sort_keys=True)
    return data + "}"


def _webhook_context(eventsource: Mapping[str, Any], event_name: str) -> Mapping[str, Any]:
    if eventsource.get("kind") != "EventSource":
        raise ValueError(f"not an EventSource document: kind {eventsource.get('kind')!r}")
    hooks = eventsource.get("spec", {}).get("webhook") or {}
    if event_name not in hooks:
        raise ValueError(f"EventSource {eventsource['metadata']['name']!r} has no webhook "
                         f"event {event_name!r}")
    hook: Mapping[str, Any] = hooks[event_name]
    if hook.get("filter"):
        raise Unsupported("EventSource webhook filter expressions")
    return hook


def _go_header(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    header: dict[str, list[str]] = {}
    for name, value in pairs:
        key = canonical_header_key(name)
        if key == "Host":
            continue  # net/http's server moves it to Request.Host
        if key == "Transfer-Encoding":
            raise Unsupported("Transfer-Encoding (net/http consumes it)")
        if any((ch < " " and ch != "\t") or ch == "\x7f" for ch in value):
            raise Unsupported(f"control characters in header {name!r} (Go's server answers 400)")
        header.setdefault(key, []).append(value.strip(" \t"))
    return header


# --- the Sensor side -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Submitted:
    """A Workflow the trigger hands to `argo -n <namespace> submit <file> <args...>`."""

    sensor: str
    trigger: str
    namespace: str
    dependencies: tuple[str, ...]
    workflow: dict[str, Any]
    args: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return str(self.workflow.get("metadata", {}).get("name") or "")


@dataclass(frozen=True, slots=True)
class Discarded:
    """A dependency the event did not satisfy; `error` is the filter error Argo Events logs."""

    dependency: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TriggerFailed:
    """A trigger that ran and failed before `argo submit` (the Sensor logs it, no Workflow)."""

    trigger: str
    reason: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one event caused: submissions, failed triggers, dependencies it did not satisfy."""

    submitted: tuple[Submitted, ...] = ()
    failed: tuple[TriggerFailed, ...] = ()
    discarded: tuple[Discarded, ...] = ()
    waiting: tuple[tuple[str, str], ...] = ()  # (trigger, dependency) kept for an `&&`


@dataclass(slots=True)
class _Trigger:
    name: str
    expression: _Condition
    dependencies: tuple[str, ...]
    requires_and: bool
    workflow_trigger: Mapping[str, Any]
    saved: dict[str, Event] = field(default_factory=dict)


class SensorModel:
    """A Sensor document, validated as the controller does, receiving events one at a time."""

    def __init__(self, sensor: Mapping[str, Any], *, namespace: str = "default"):
        if sensor.get("kind") != "Sensor":
            raise InvalidSensor(f"not a Sensor document: kind {sensor.get('kind')!r}")
        metadata = sensor.get("metadata") or {}
        if not metadata.get("name"):
            raise InvalidSensor("the Sensor has no metadata.name")
        self.name = str(metadata["name"])
        self.namespace = str(metadata.get("namespace") or namespace)
        spec = sensor.get("spec") or {}
        self.dependencies = {dep["name"]: dep for dep in _dependencies(spec)}
        self.triggers = [self._trigger(trigger) for trigger in _list(spec, "triggers")]
        if not self.triggers:
            raise InvalidSensor("no triggers found")

    def receive(self, event: Event, *, now_ms: int = 0) -> Delivery:
        """Deliver one event; `now_ms` is the clock the action-timestamp label reads."""
        submitted: list[Submitted] = []
        failed: list[TriggerFailed] = []
        filtered: dict[str, Discarded | None] = {}
        waiting: list[tuple[str, str]] = []
        for trigger in self.triggers:
            for dep_name in trigger.dependencies:
                dep = self.dependencies[dep_name]
                if (dep["eventSourceName"], dep["eventName"]) != (event.event_source_name,
                                                                 event.event_name):
                    continue
                if dep_name not in filtered:
                    filtered[dep_name] = _filter(dep, event.data)
                if filtered[dep_name] is not None:
                    continue
                fired = self._arrive(trigger, dep_name, event)
                if fired is None:
                    waiting.append((trigger.name, dep_name))
                    continue
                outcome = self._fire(trigger, fired, now_ms)
                if isinstance(outcome, Submitted):
                    submitted.append(outcome)
                else:
                    failed.append(outcome)
        discarded = tuple(d for d in filtered.values() if d is not None)
        return Delivery(tuple(submitted), tuple(failed), discarded, tuple(waiting))

    # JetStream trigger_conn processDependency
    def _arrive(self, trigger: _Trigger, dep_name: str, event: Event) -> dict[str, Event] | None:
        if not trigger.requires_and:
            return {dep_name: event}
        received = set(trigger.saved) | {dep_name}
        if trigger.expression.holds(received):
            fired = {**trigger.saved, dep_name: event}
            trigger.saved.clear()
            return fired
        trigger.saved[dep_name] = event
        return None

    def _fire(self, trigger: _Trigger, events: dict[str, Event],
              now_ms: int) -> Submitted | TriggerFailed:
        spec = trigger.workflow_trigger
        workflow = copy.deepcopy(dict(spec["source"]["resource"]))
        try:
            workflow = _apply_params(workflow, spec.get("parameters") or [], events)
        except (_ResolveError, SjsonError) as err:
            return TriggerFailed(trigger.name, str(err))
        meta = workflow.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        name, generate_name = meta.get("name"), meta.get("generateName")
        if not (isinstance(name, str) and name) and not (isinstance(generate_name, str)
                                                         and generate_name):
            return TriggerFailed(trigger.name, "failed to trigger the workflow, neither name nor "
                                 "generateName is given")
        labels = meta.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise Unsupported("metadata.labels that is not a map of strings (unstructured "
                              "GetLabels drops it)")
        labels.update({LABEL_SENSOR: self.name, LABEL_TRIGGER: trigger.name,
                       LABEL_ACTION_TIMESTAMP: str(now_ms)})
        meta["labels"] = labels
        workflow["metadata"] = meta
        namespace = meta.get("namespace") or self.namespace
        return Submitted(self.name, trigger.name, str(namespace), tuple(events), workflow,
                         tuple(str(arg) for arg in spec.get("args") or ()))

    def _trigger(self, trigger: Mapping[str, Any]) -> _Trigger:
        template = trigger.get("template") or {}
        name = template.get("name")
        if not name:
            raise InvalidSensor("trigger template name can't be empty")
        if trigger.get("parameters"):
            raise Unsupported(f"trigger {name!r}: trigger-level parameters")
        if template.get("conditionsReset"):
            raise Unsupported(f"trigger {name!r}: conditionsReset")
        kinds = [key for key in template if key not in ("name", "conditions", "argoWorkflow")]
        if kinds or "argoWorkflow" not in template:
            raise Unsupported(f"trigger {name!r}: only argoWorkflow triggers are modelled "
                              f"(found {kinds or 'none'})")
        workflow_trigger = _argo_workflow(name, template["argoWorkflow"])
        # listener.go getDependencyExpression: no conditions means all dependencies, AND'ed
        expression_text = template.get("conditions") or "&&".join(self.dependencies)
        expression = _parse_condition(expression_text)
        names = expression.names()
        unknown = [dep for dep in names if dep not in self.dependencies]
        if unknown:
            raise InvalidSensor(f"trigger {name!r}: conditions name unknown dependencies {unknown}")
        # a parameter naming a dependency that does not exist is accepted, and skipped at run
        # time (ResolveParamValue), so the model does not check src.dependencyName either
        return _Trigger(str(name), expression, tuple(dict.fromkeys(names)),
                        "&" in expression_text, workflow_trigger)


def sensor_triggers(sensor: Mapping[str, Any], event_source_name: str, event_name: str,
                    event_data: bytes | str | Mapping[str, Any], *,
                    now_ms: int = 0) -> list[Submitted]:
    """The Workflows one event submits through a fresh Sensor.

    `event_data` is the event's data: exact bytes from `webhook_request`, or a decoded
    document, which is written as Go would in the mapping's own key order.
    """
    if isinstance(event_data, Mapping):
        data = go_json.encode(event_data).encode()
    elif isinstance(event_data, str):
        data = event_data.encode()
    else:
        data = event_data
    event = Event(event_source_name, event_name, data)
    return list(SensorModel(sensor).receive(event, now_ms=now_ms).submitted)


# --- Sensor validation (reconciler/sensor/validate.go) -------------------------------------------

def _list(spec: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = spec.get(key) or []
    if not isinstance(value, list):
        raise InvalidSensor(f"{key} is not a list")
    return value


def _dependencies(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    deps = _list(spec, "dependencies")
    if not deps:
        raise InvalidSensor("no event dependencies found")
    seen: set[str] = set()
    for dep in deps:
        for key in ("name", "eventSourceName", "eventName"):
            if not dep.get(key):
                raise InvalidSensor(f"event dependency must define the {key}")
        if dep["name"] in seen:
            raise InvalidSensor(f"duplicate dependency name {dep['name']!r}")
        seen.add(dep["name"])
        if dep.get("transform"):
            raise Unsupported(f"dependency {dep['name']!r}: transform")
        if dep.get("filtersLogicalOperator", "") not in LOGICAL_OPERATORS:
            raise InvalidSensor(f"logical operator {dep['filtersLogicalOperator']} not supported")
        _check_filters(dep)
    return deps


def _check_filters(dep: Mapping[str, Any]) -> None:
    filters = dep.get("filters")
    if filters is None:
        return
    for kind in ("exprs", "context", "time", "script"):
        if filters.get(kind):
            raise Unsupported(f"dependency {dep['name']!r}: {kind} filters")
    for key in ("dataLogicalOperator", "exprLogicalOperator"):
        if filters.get(key, "") not in LOGICAL_OPERATORS:
            raise InvalidSensor(f"logical operator {filters[key]} not supported")
    for entry in filters.get("data") or []:
        if entry.get("comparator", "") not in COMPARATORS:
            raise InvalidSensor(f"comparator {entry['comparator']} not supported")
        values = entry.get("value") or []
        if not entry.get("path") or not entry.get("type") or not values:
            raise InvalidSensor("one of data filters is not valid (type, path and value must "
                                "be not empty)")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidSensor(f"data filter values must be strings (a Go []string): {values!r}")
        if any(value == "" for value in values):
            raise InvalidSensor("one of data filters is not valid (value must be not empty)")


def _argo_workflow(name: str, spec: Mapping[str, Any]) -> Mapping[str, Any]:
    operation = spec.get("operation", "")
    if operation not in ARGO_WORKFLOW_OPERATIONS:
        raise InvalidSensor(f"trigger {name!r}: unknown operation type {operation!r}")
    if operation != "submit":
        raise Unsupported(f"trigger {name!r}: argoWorkflow operation {operation!r}")
    source = spec.get("source")
    if not source:
        raise InvalidSensor(f"trigger {name!r}: argoWorkflow trigger does not contain an "
                            "absolute action")
    if set(source) != {"resource"} or not isinstance(source["resource"], Mapping):
        raise Unsupported(f"trigger {name!r}: argoWorkflow sources other than an inline "
                          f"resource ({sorted(source)})")
    for index, parameter in enumerate(spec.get("parameters") or []):
        src = parameter.get("src")
        where = f"trigger {name!r} resource parameter index: {index}"
        if not src:
            raise InvalidSensor(f"{where}: parameter source can't be empty")
        if not src.get("dependencyName"):
            raise InvalidSensor(f"{where}: parameter dependency name can't be empty")
        if not parameter.get("dest"):
            raise InvalidSensor(f"{where}: parameter destination can't be empty")
        if parameter.get("operation", "") not in PARAMETER_OPERATIONS:
            raise InvalidSensor(f"{where}: parameter operation {parameter['operation']} is "
                                "invalid")
        for key in ("dataKey", "dataTemplate", "value"):
            if key in src and not isinstance(src[key], str):
                raise InvalidSensor(f"{where}: src.{key} must be a string: {src[key]!r}")
        if src.get("contextKey") or src.get("contextTemplate"):
            raise Unsupported(f"{where}: contextKey/contextTemplate")
    return spec


# --- dependency conditions (govaluate over dependency names) -------------------------------------

@dataclass(frozen=True, slots=True)
class _Condition:
    op: str  # "name" | "&&" | "||"
    name: str = ""
    parts: tuple[_Condition, ...] = ()

    def holds(self, received: set[str]) -> bool:
        if self.op == "name":
            return self.name in received
        results = (part.holds(received) for part in self.parts)
        return all(results) if self.op == "&&" else any(results)

    def names(self) -> list[str]:
        if self.op == "name":
            return [self.name]
        return [name for part in self.parts for name in part.names()]


_CONDITION_TOKEN = re.compile(r"\s*(&&|\|\||\(|\)|[A-Za-z0-9_][A-Za-z0-9_-]*)")


def _parse_condition(text: str) -> _Condition:
    tokens: list[str] = []
    position = 0
    while position < len(text.rstrip()):
        match = _CONDITION_TOKEN.match(text, position)
        if match is None:
            raise Unsupported(f"conditions syntax in {text!r} (the model knows names, &&, || "
                              "and parentheses)")
        tokens.append(match.group(1))
        position = match.end()
    parsed, rest = _or(tokens)
    if rest:
        raise InvalidSensor(f"cannot parse conditions {text!r}")
    return parsed


def _or(tokens: list[str]) -> tuple[_Condition, list[str]]:
    part, tokens = _and(tokens)
    parts = [part]
    while tokens and tokens[0] == "||":
        part, tokens = _and(tokens[1:])
        parts.append(part)
    return (parts[0] if len(parts) == 1 else _Condition("||", parts=tuple(parts))), tokens


def _and(tokens: list[str]) -> tuple[_Condition, list[str]]:
    part, tokens = _atom(tokens)
    parts = [part]
    while tokens and tokens[0] == "&&":  # govaluate: && binds tighter than ||
        part, tokens = _atom(tokens[1:])
        parts.append(part)
    return (parts[0] if len(parts) == 1 else _Condition("&&", parts=tuple(parts))), tokens


def _atom(tokens: list[str]) -> tuple[_Condition, list[str]]:
    if not tokens or tokens[0] in ("&&", "||", ")"):
        raise InvalidSensor("incomplete conditions expression")
    if tokens[0] == "(":
        inner, rest = _or(tokens[1:])
        if not rest or rest[0] != ")":
            raise InvalidSensor("unbalanced parentheses in conditions")
        return inner, rest[1:]
    return _Condition("name", name=tokens[0]), tokens[1:]


# --- data filters (filter.go filterData) ---------------------------------------------------------

def _filter(dep: Mapping[str, Any], data: bytes) -> Discarded | None:
    """None when the dependency accepts the event, else why not (listener.go filterFunc)."""
    filters = dep.get("filters")
    if filters is None:
        return None
    text = data.decode()
    passed, error = _filter_data(filters.get("data"), filters.get("dataLogicalOperator", ""),
                                 text)
    if dep.get("filtersLogicalOperator", "") == "or":
        # filterEvent with "or": only the filter kinds that are present count
        passed = filters.get("data") is not None and passed
    elif error is not None:
        passed = False
    return None if passed else Discarded(dep["name"], error)


def _filter_data(entries: list[Mapping[str, Any]] | None, operator: str,
                 text: str) -> tuple[bool, str | None]:
    if not entries:
        return True, None
    either = operator == "or"
    errors: list[str] = []

    def fail(message: str) -> tuple[bool, str | None]:
        return False, f"data filter error ({message})"

    for entry in entries:
        path, kind = entry["path"], entry["type"]
        values: list[str] = entry["value"]
        comparator = entry.get("comparator", "")
        result = gjson_get(text, path)
        if not result.exists:
            if either:
                errors.append(f"path '{path}' does not exist")
                continue
            return fail(f"path '{path}' does not exist")
        if entry.get("template"):
            try:
                out = render(entry["template"], {"Input": result.string()})
            except TemplateError as err:
                if either:
                    errors.append(str(err))
                    continue
                return fail(str(err))
            if out in ("", "<no value>"):
                message = f"template '{entry['template']}' evaluated to empty string or no value"
                if either:
                    errors.append(message)
                    continue
                return fail(message)
            result = GjsonResult("String", go_json.encode_string(out))
        outcome = _match(kind, values, comparator, result)
        if isinstance(outcome, str):  # an error
            if either:
                errors.append(outcome)
                continue
            return fail(outcome)
        if outcome and either:
            return True, None
        if not outcome and not either:
            return False, None
    if either:
        if errors:
            return False, f"data filter errors [{' / '.join(errors)}]"
        return False, None
    return True, None


def _match(kind: str, values: list[str], comparator: str, result: GjsonResult) -> bool | str:
    """Whether any value matches; a str is the error that ends the entry (Go's `continue`)."""
    if kind == "bool":
        for value in values:
            parsed = parse_go_bool(value)
            if parsed is None:
                return f'strconv.ParseBool: parsing "{value}": invalid syntax'
            if parsed == result.bool():
                return True
        return False
    if kind == "number":
        for value in values:
            wanted = parse_go_float(value)
            if wanted is None:
                return f'strconv.ParseFloat: parsing "{value}": invalid syntax'
            actual = result.float()
            if {">=": actual >= wanted, ">": actual > wanted, "<": actual < wanted,
                    "<=": actual <= wanted, "!=": actual != wanted,
                    "=": actual == wanted, "": actual == wanted}[comparator]:
                return True
        return False
    if kind == "string":
        for value in values:
            matched = go_regexp_search(value, result.string())
            if (comparator in ("", "=") and matched) or (comparator == "!=" and not matched):
                return True
        return False
    return f"unsupported JSON type '{kind}'"


# --- parameters (params.go ApplyParams / ResolveParamValue) --------------------------------------

class _ResolveError(Exception):
    """ResolveParamValue's "unable to resolve" error: the trigger fails."""


def _apply_params(workflow: dict[str, Any], parameters: list[Mapping[str, Any]],
                  events: Mapping[str, Event]) -> dict[str, Any]:
    for parameter in parameters:
        resolved = _resolve(parameter["src"], events)
        if resolved is None:
            continue  # the dependency has no event and there is no default: skipped
        value, kind = resolved
        dest = parameter["dest"]
        operation = parameter.get("operation", "")
        if operation in ("append", "prepend"):
            current = gjson_get(go_json.encode(workflow, sort_keys=True), dest)
            if current.exists:
                kind = "String"
                value = current.string() + value if operation == "append" else \
                    value + current.string()
        if kind != "String" and parameter["src"].get("useRawData"):
            workflow = sjson_set(workflow, dest, json.loads(value))
        else:
            workflow = sjson_set(workflow, dest, value)
        if not isinstance(workflow, dict):
            raise Unsupported(f"parameter dest {dest!r} replaced the whole resource")
    return workflow


def _resolve(src: Mapping[str, Any], events: Mapping[str, Event]) -> tuple[str, str] | None:
    default = src.get("value")
    dependency = src["dependencyName"]
    if dependency not in events:
        return (str(default), "String") if default is not None else None
    key, template = src.get("dataKey", ""), src.get("dataTemplate", "")
    if not key and not template:
        if default is not None:
            return str(default), "String"
        raise Unsupported("a parameter without dataKey/dataTemplate/value (the whole event "
                          "with its CloudEvents context)")
    text = events[dependency].data.decode()
    template_error = None
    if template:
        try:
            out = render(template, {"Input": json.loads(text)})
            if out not in ("", "<no value>"):
                return out, "String"
            template_error = f"template evaluated to empty string or no value: {template}"
        except TemplateError as err:
            template_error = str(err)
    if key:
        result = gjson_get(text, key)
        if result.exists:
            if result.type in ("JSON", "Null"):
                return result.raw, result.type
            return result.string(), result.type
    if default is not None:
        return str(default), "String"
    raise _ResolveError(f"unable to resolve '{dependency}' parameter value. err: "
                        f"{template_error or f'key {key} does not exist to in the event payload'}")
