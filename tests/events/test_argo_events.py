"""The Argo Events model on the reference EventSource/Sensor pair and recorded lakeFS payloads."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
import yaml

from tests.conftest import SHARED, needs_shared
from tests.events.argo_events import (
    LABEL_ACTION_TIMESTAMP,
    LABEL_SENSOR,
    LABEL_TRIGGER,
    MASKED_AUTH,
    Event,
    InvalidSensor,
    SensorModel,
    Submitted,
    Unsupported,
    WebhookResponse,
    sensor_triggers,
    webhook_request,
)
from tests.events.go_regexp import compile_go_regexp
from tests.events.go_template import render
from tests.events.lakefs_webhook import lakefs_payload, lakefs_request_headers, payload_names

EXAMPLES = SHARED / "reference" / "events" / "examples"
TOKEN = "REPLACE-with-a-random-token"  # the example Secret's value
SECRETS = {("dsc-lakefs-webhook", "token"): TOKEN}
SUBMITTING = ["post-commit-images-main", "post-merge-images-main"]
NOT_SUBMITTING = ["post-commit-images-job-branch", "post-create-branch-images",
                  "post-delete-branch-images", "post-commit-images-old-main-old"]
# compiler/argo/triggers.py BOOKKEEPING_FILTER for contract.BOOKKEEPING_KEY
BOOKKEEPING = r'^.*[{,]"dsc\.bookkeeping":.*$'


@pytest.fixture(scope="module")
def eventsource() -> dict[str, Any]:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (the reference examples live beside the repository)")
    docs = list(yaml.safe_load_all((EXAMPLES / "lakefs-eventsource.yaml").read_text()))
    found: list[dict[str, Any]] = [d for d in docs if d["kind"] == "EventSource"]
    return found[0]


@pytest.fixture(scope="module")
def example_sensor() -> dict[str, Any]:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (the reference examples live beside the repository)")
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / "lakefs-sensor.yaml").read_text())
    return doc


@pytest.fixture
def sensor(example_sensor: dict[str, Any]) -> dict[str, Any]:
    """A copy each test may change."""
    return copy.deepcopy(example_sensor)


def post(eventsource: dict[str, Any], payload: str, *, token: str | None = TOKEN,
         extra: dict[str, str] | None = None, method: str = "POST") -> WebhookResponse:
    body = lakefs_payload(payload)
    action_headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    action_headers.update(extra or {})
    headers = lakefs_request_headers(body, action_headers)
    return webhook_request(eventsource, "lakefs", method, headers, body, SECRETS)


def event_of(eventsource: dict[str, Any], payload: str, **kwargs: Any) -> Event:
    response = post(eventsource, payload, **kwargs)
    assert response.status == 200, response
    assert response.event is not None
    return response.event


def run_name(repo: str, branch: str, commit: str) -> str:
    """The name dsc expects, computed without the model (events.md §3)."""
    return "dsc-edges-" + hashlib.sha256(f"{repo}/{branch}/{commit}".encode()).hexdigest()[:12]


def data_filters(sensor: dict[str, Any]) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = sensor["spec"]["dependencies"][0]["filters"]["data"]
    return filters


# --- the EventSource -----------------------------------------------------------------------------

@needs_shared
@pytest.mark.parametrize(("token", "message"), [
    ("wrong-token", "Invalid Auth token"),
    (None, "Invalid Authorization Header"),
    ("", "Invalid Authorization Header"),  # "Bearer " loses its space in Go's header parsing
])
def test_bad_or_missing_token_is_401(eventsource: dict[str, Any], token: str | None,
                                     message: str) -> None:
    assert post(eventsource, "post-commit-images-main", token=token) == \
        WebhookResponse(401, message)


@needs_shared
def test_other_auth_scheme_is_401(eventsource: dict[str, Any]) -> None:
    body = lakefs_payload("post-commit-images-main")
    headers = lakefs_request_headers(body, {"Authorization": f"Basic {TOKEN}"})
    response = webhook_request(eventsource, "lakefs", "POST", headers, body, SECRETS)
    assert response == WebhookResponse(401, "Invalid Authorization Header")


@needs_shared
@pytest.mark.parametrize("method", ["PUT", "post", "GET"])
def test_other_method_is_400(eventsource: dict[str, Any], method: str) -> None:
    response = post(eventsource, "post-commit-images-main", method=method)
    assert response == WebhookResponse(400, "http method does not match")


@needs_shared
def test_auth_is_checked_before_the_method(eventsource: dict[str, Any]) -> None:
    response = post(eventsource, "post-commit-images-main", token="wrong", method="PUT")
    assert response.status == 401


@needs_shared
def test_secret_file_loses_one_trailing_newline(eventsource: dict[str, Any]) -> None:
    body = lakefs_payload("post-commit-images-main")
    headers = lakefs_request_headers(body, {"Authorization": f"Bearer {TOKEN}"})
    secrets = {("dsc-lakefs-webhook", "token"): TOKEN + "\n"}
    assert webhook_request(eventsource, "lakefs", "POST", headers, body, secrets).status == 200
    secrets = {("dsc-lakefs-webhook", "token"): TOKEN + "\n\n"}
    assert webhook_request(eventsource, "lakefs", "POST", headers, body, secrets).status == 401


@needs_shared
def test_body_limits(eventsource: dict[str, Any]) -> None:
    headers = lakefs_request_headers(b"", {"Authorization": f"Bearer {TOKEN}"})
    too_big = b'{"a":"' + b"x" * 1048576 + b'"}'
    assert webhook_request(eventsource, "lakefs", "POST", headers, too_big, SECRETS).status == 400
    assert webhook_request(eventsource, "lakefs", "POST", headers, b"{", SECRETS).status == 400
    assert webhook_request(eventsource, "lakefs", "POST", headers, b"", SECRETS).status == 400


@needs_shared
@pytest.mark.parametrize("payload", payload_names())
def test_event_data_is_header_and_body(eventsource: dict[str, Any], payload: str) -> None:
    body = lakefs_payload(payload)
    event = event_of(eventsource, payload)
    assert (event.event_source_name, event.event_name) == ("dsc-lakefs", "lakefs")
    assert event.decoded() == {
        "header": {"Accept-Encoding": ["gzip"], "Authorization": [MASKED_AUTH],
                   "Content-Length": [str(len(body))], "Content-Type": ["application/json"],
                   "User-Agent": ["Go-http-client/1.1"]},
        "body": json.loads(body)}
    # lakeFS's body is already compact Go JSON, so the event carries it byte for byte
    assert event.data.endswith(b',"body":' + body + b"}")


@needs_shared
def test_header_names_are_canonical(eventsource: dict[str, Any]) -> None:
    event = event_of(eventsource, "post-commit-images-main", extra={"x-dsc-graph": "edges"})
    assert event.decoded()["header"]["X-Dsc-Graph"] == ["edges"]


def test_authorization_is_masked_without_an_auth_secret() -> None:
    eventsource = {"kind": "EventSource", "metadata": {"name": "open"},
                   "spec": {"webhook": {"hook": {"method": "POST", "endpoint": "/x",
                                                 "port": "12000"}}}}
    response = webhook_request(eventsource, "hook", "POST",
                               {"authorization": "Bearer anything"}, b'{"a": 1}', {})
    assert response.event is not None
    assert response.event.data == \
        b'{"header":{"Authorization":["*** Masked Auth Secret ***"]},"body":{"a":1}}'


# --- the example Sensor --------------------------------------------------------------------------

@needs_shared
@pytest.mark.parametrize("payload", SUBMITTING)
def test_example_sensor_submits_one_run(eventsource: dict[str, Any], sensor: dict[str, Any],
                                        payload: str) -> None:
    body = json.loads(lakefs_payload(payload))
    delivery = SensorModel(sensor).receive(event_of(eventsource, payload), now_ms=1764016708000)
    assert (delivery.failed, delivery.discarded) == ((), ())
    [submitted] = delivery.submitted
    commit = body["commit_id"]
    assert len(commit) == 64
    assert submitted.name == run_name("images", "main", commit)
    assert (submitted.sensor, submitted.trigger, submitted.namespace, submitted.dependencies) == \
        ("dsc-edges", "edges-from-images-main", "dsc", ("images-main",))
    workflow = submitted.workflow
    assert [p["value"] for p in workflow["spec"]["arguments"]["parameters"]] == \
        ["images", "main", commit, body["event_type"]]
    assert [p["name"] for p in workflow["spec"]["arguments"]["parameters"]] == \
        ["trigger-repo", "trigger-branch", "trigger-commit", "trigger-event"]
    assert workflow["metadata"]["annotations"] == {"dsc.example.io/trigger-commit": commit}
    assert workflow["metadata"]["labels"] == {
        "dsc.example.io/pipeline": "edges", "dsc.example.io/started-by": "lakefs-event",
        LABEL_SENSOR: "dsc-edges", LABEL_TRIGGER: "edges-from-images-main",
        LABEL_ACTION_TIMESTAMP: "1764016708000"}
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "dsc-edges"}


@needs_shared
def test_post_merge_runs_on_the_merge_commit(eventsource: dict[str, Any],
                                             sensor: dict[str, Any]) -> None:
    body = json.loads(lakefs_payload("post-merge-images-main"))
    assert body["merge_source"] == "feature-labels"
    assert body["commit_metadata"] == {".lakefs.merge.strategy": "default"}
    [submitted] = sensor_triggers(sensor, "dsc-lakefs", "lakefs",
                                  event_of(eventsource, "post-merge-images-main").data)
    assert submitted.workflow["spec"]["arguments"]["parameters"][2]["value"] == \
        body["commit_id"] == body["source_ref"]


@needs_shared
@pytest.mark.parametrize("payload", NOT_SUBMITTING)
def test_example_sensor_ignores(eventsource: dict[str, Any], sensor: dict[str, Any],
                                payload: str) -> None:
    delivery = SensorModel(sensor).receive(event_of(eventsource, payload))
    assert (delivery.submitted, delivery.failed) == ((), ())
    [discarded] = delivery.discarded
    assert (discarded.dependency, discarded.error) == ("images-main", None)


@needs_shared
def test_create_branch_is_excluded_by_event_type_not_by_commit_id(
        eventsource: dict[str, Any], sensor: dict[str, Any]) -> None:
    # graveler.CreateBranch fills CommitID (the source commit) in the post-create-branch record
    body = json.loads(lakefs_payload("post-create-branch-images"))
    assert len(body["commit_id"]) == 64 and "commit_message" not in body
    data_filters(sensor)[2]["value"] = ["^feature-labels$"]
    delivery = SensorModel(sensor).receive(event_of(eventsource, "post-create-branch-images"))
    assert delivery.submitted == () and delivery.discarded[0].error is None
    del data_filters(sensor)[0]  # without the event_type filter it would start a run
    [submitted] = sensor_triggers(sensor, "dsc-lakefs", "lakefs",
                                  event_of(eventsource, "post-create-branch-images").data)
    assert submitted.name == run_name("images", "feature-labels", body["commit_id"])


@needs_shared
def test_missing_path_discards_the_event(eventsource: dict[str, Any],
                                         sensor: dict[str, Any]) -> None:
    data_filters(sensor).insert(0, {"path": "body.commit_id", "type": "string", "value": ["."]})
    delivery = SensorModel(sensor).receive(event_of(eventsource, "post-delete-branch-images"))
    assert delivery.submitted == ()
    assert delivery.discarded[0].error == "data filter error (path 'body.commit_id' does not exist)"


@needs_shared
def test_event_without_commit_fails_the_trigger(eventsource: dict[str, Any],
                                                sensor: dict[str, Any]) -> None:
    """Why the event_type filter matters: parameters cannot resolve a missing commit_id."""
    del data_filters(sensor)[0]
    data_filters(sensor)[-1]["value"] = ["^feature-labels$"]
    delivery = SensorModel(sensor).receive(event_of(eventsource, "post-delete-branch-images"))
    [failed] = delivery.failed
    assert failed.trigger == "edges-from-images-main"
    assert failed.reason.startswith("unable to resolve 'images-main' parameter value")


@needs_shared
def test_unanchored_filter_matches_by_substring(eventsource: dict[str, Any],
                                                sensor: dict[str, Any]) -> None:
    data_filters(sensor)[1]["value"] = ["images"]
    data_filters(sensor)[2]["value"] = ["main"]
    event = event_of(eventsource, "post-commit-images-old-main-old")
    [submitted] = SensorModel(sensor).receive(event).submitted
    commit = json.loads(lakefs_payload("post-commit-images-old-main-old"))["commit_id"]
    assert submitted.name == run_name("images-old", "main-old", commit)


@needs_shared
def test_metadata_is_optional_in_the_payload(eventsource: dict[str, Any],
                                             sensor: dict[str, Any]) -> None:
    body = json.loads(lakefs_payload("post-commit-images-main-no-metadata"))
    assert "commit_metadata" not in body  # omitempty
    event = event_of(eventsource, "post-commit-images-main-no-metadata")
    assert len(SensorModel(sensor).receive(event).submitted) == 1
    data_filters(sensor).append({"path": "body.commit_metadata", "type": "string",
                                 "comparator": "!=", "value": [BOOKKEEPING]})
    assert SensorModel(sensor).receive(event).discarded[0].error == \
        "data filter error (path 'body.commit_metadata' does not exist)"


@needs_shared
@pytest.mark.parametrize(("payload", "runs"), [
    ("post-commit-images-main", 1), ("post-commit-images-main-no-metadata", 1),
    ("post-commit-images-main-bookkeeping", 0), ("post-commit-images-main-lookalike", 1)])
def test_bookkeeping_filter_on_the_raw_body(eventsource: dict[str, Any], sensor: dict[str, Any],
                                            payload: str, runs: int) -> None:
    data_filters(sensor).append({"path": "body", "type": "string", "comparator": "!=",
                                 "value": [BOOKKEEPING]})
    submitted = SensorModel(sensor).receive(event_of(eventsource, payload)).submitted
    assert len(submitted) == runs


@needs_shared
def test_header_filter_reads_the_first_value(eventsource: dict[str, Any],
                                             sensor: dict[str, Any]) -> None:
    data_filters(sensor).append({"path": "header.X-Dsc-Graph.0", "type": "string",
                                 "value": ["^edges$"]})
    tagged = event_of(eventsource, "post-commit-images-main", extra={"X-DSC-GRAPH": "edges"})
    untagged = event_of(eventsource, "post-commit-images-main")
    assert len(SensorModel(sensor).receive(tagged).submitted) == 1
    assert SensorModel(sensor).receive(untagged).discarded[0].error == \
        "data filter error (path 'header.X-Dsc-Graph.0' does not exist)"


@needs_shared
def test_data_logical_or(eventsource: dict[str, Any], sensor: dict[str, Any]) -> None:
    dep = sensor["spec"]["dependencies"][0]
    dep["filters"]["dataLogicalOperator"] = "or"
    dep["filters"]["data"] = [{"path": "body.branch_id", "type": "string", "value": ["^nope$"]},
                              {"path": "body.repository_id", "type": "string",
                               "value": ["^x$", "^images-old$"]}]
    event = event_of(eventsource, "post-commit-images-old-main-old")
    assert len(SensorModel(sensor).receive(event).submitted) == 1
    dep["filters"]["data"][1]["value"] = ["^x$"]
    assert SensorModel(sensor).receive(event).submitted == ()


@needs_shared
def test_template_error_falls_back_to_data_key(eventsource: dict[str, Any],
                                               sensor: dict[str, Any]) -> None:
    name_param = sensor["spec"]["triggers"][0]["template"]["argoWorkflow"]["parameters"][0]
    name_param["src"]["dataTemplate"] = "{{ .Input.body.missing | sha256sum }}"
    name_param["src"]["dataKey"] = "body.committer"
    [submitted] = SensorModel(sensor).receive(
        event_of(eventsource, "post-commit-images-main")).submitted
    assert submitted.name == "alice"


@needs_shared
def test_unsupported_constructs_reach_the_test(eventsource: dict[str, Any],
                                               sensor: dict[str, Any]) -> None:
    event = event_of(eventsource, "post-commit-images-main")
    upper = copy.deepcopy(sensor)
    upper["spec"]["triggers"][0]["template"]["argoWorkflow"]["parameters"][0]["src"][
        "dataTemplate"] = "{{ .Input.body.repository_id | upper }}"
    with pytest.raises(Unsupported, match="upper"):
        SensorModel(upper).receive(event)
    data_filters(sensor)[2]["value"] = ["^main(?!-old)"]
    with pytest.raises(Unsupported, match="lookaround"):
        SensorModel(sensor).receive(event)


@needs_shared
def test_operation_must_be_submit(sensor: dict[str, Any]) -> None:
    workflow_trigger = sensor["spec"]["triggers"][0]["template"]["argoWorkflow"]
    del workflow_trigger["operation"]
    with pytest.raises(InvalidSensor, match="unknown operation type ''"):
        SensorModel(sensor)
    workflow_trigger["operation"] = "resubmit"
    with pytest.raises(Unsupported):
        SensorModel(sensor)


@needs_shared
def test_generate_name_or_name_is_required(eventsource: dict[str, Any],
                                           sensor: dict[str, Any]) -> None:
    workflow_trigger = sensor["spec"]["triggers"][0]["template"]["argoWorkflow"]
    del workflow_trigger["parameters"][0]
    del workflow_trigger["source"]["resource"]["metadata"]["name"]
    event = event_of(eventsource, "post-commit-images-main")
    [failed] = SensorModel(sensor).receive(event).failed
    assert "neither name nor generateName" in failed.reason
    workflow_trigger["source"]["resource"]["metadata"]["generateName"] = "dsc-edges-"
    [submitted] = SensorModel(sensor).receive(event).submitted
    assert submitted.workflow["metadata"]["generateName"] == "dsc-edges-"


# --- conditions over several dependencies (no shared files needed) -------------------------------

def _dependency(name: str, branch: str) -> dict[str, Any]:
    return {"name": name, "eventSourceName": "dsc-lakefs", "eventName": "lakefs",
            "filters": {"data": [{"path": "body.branch_id", "type": "string",
                                  "value": [f"^{branch}$"]}]}}


def _two_input_sensor(conditions: str | None) -> dict[str, Any]:
    template: dict[str, Any] = {
        "name": "run",
        "argoWorkflow": {
            "operation": "submit",
            "source": {"resource": {
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "metadata": {"generateName": "g-", "labels": {"via-a": "pre-"}},
                "spec": {"arguments": {"parameters": [{"name": "a", "value": "none"},
                                                      {"name": "b", "value": "none"}]}}}},
            "parameters": [
                {"src": {"dependencyName": "a", "dataKey": "body.commit_id"},
                 "dest": "spec.arguments.parameters.0.value"},
                {"src": {"dependencyName": "b", "dataKey": "body.commit_id"},
                 "dest": "spec.arguments.parameters.1.value"},
                {"src": {"dependencyName": "a", "value": "x"}, "dest": "metadata.labels.via-a",
                 "operation": "append"}]}}
    if conditions is not None:
        template["conditions"] = conditions
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor",
            "metadata": {"name": "s", "namespace": "dsc"},
            "spec": {"dependencies": [_dependency("a", "main"), _dependency("b", "dev")],
                     "triggers": [{"template": template}]}}


def _commit_event(branch: str, commit: str) -> Event:
    body = {"event_type": "post-commit", "repository_id": "images", "branch_id": branch,
            "commit_id": commit}
    return Event("dsc-lakefs", "lakefs", json.dumps({"header": {}, "body": body}).encode())


def _values(submitted: Submitted) -> list[str]:
    return [p["value"] for p in submitted.workflow["spec"]["arguments"]["parameters"]]


def test_or_condition_skips_the_absent_dependency() -> None:
    sensor = SensorModel(_two_input_sensor("a || b"))
    [submitted] = sensor.receive(_commit_event("dev", "c2")).submitted
    assert _values(submitted) == ["none", "c2"]
    # a parameter with a `value` applies it when its dependency is absent (ResolveParamValue)
    assert submitted.workflow["metadata"]["labels"]["via-a"] == "pre-x"
    [submitted] = sensor.receive(_commit_event("main", "c1")).submitted
    assert _values(submitted) == ["c1", "none"]
    assert submitted.workflow["metadata"]["labels"]["via-a"] == "pre-x"


def test_or_condition_fires_once_per_matching_dependency() -> None:
    """trigger_conn processDependency: without `&&` each passing dependency triggers alone."""
    doc = _two_input_sensor("a || b")
    doc["spec"]["dependencies"][1] = _dependency("b", "main")
    submitted = SensorModel(doc).receive(_commit_event("main", "c1")).submitted
    assert [(s.dependencies, _values(s)) for s in submitted] == [
        (("a",), ["c1", "none"]), (("b",), ["none", "c1"])]


@pytest.mark.parametrize("conditions", ["a && b", None])
def test_and_condition_waits_for_every_dependency(conditions: str | None) -> None:
    sensor = SensorModel(_two_input_sensor(conditions))
    first = sensor.receive(_commit_event("main", "c1"))
    assert first.submitted == () and first.waiting == (("run", "a"),)
    [submitted] = sensor.receive(_commit_event("dev", "c2")).submitted
    assert _values(submitted) == ["c1", "c2"]
    assert submitted.dependencies == ("a", "b")
    assert sensor.receive(_commit_event("dev", "c3")).waiting == (("run", "b"),)


def test_conditions_must_name_dependencies() -> None:
    with pytest.raises(InvalidSensor, match="unknown dependencies"):
        SensorModel(_two_input_sensor("a || c"))


def test_parameter_operations_and_raw_data() -> None:
    sensor = _two_input_sensor("a")
    parameters = sensor["spec"]["triggers"][0]["template"]["argoWorkflow"]["parameters"]
    parameters[2] = {"src": {"dependencyName": "a", "dataKey": "body.commit_id"},
                     "dest": "metadata.labels.via-a", "operation": "prepend"}
    parameters += [
        {"src": {"dependencyName": "a", "dataKey": "body.meta"}, "dest": "spec.metaText"},
        {"src": {"dependencyName": "a", "dataKey": "body.meta", "useRawData": True},
         "dest": "spec.meta"},
        {"src": {"dependencyName": "a", "dataKey": "body.missing", "value": "fallback"},
         "dest": "spec.arguments.parameters.1.value"}]
    body = {"branch_id": "main", "commit_id": "c1", "meta": {"k": "v"}}
    event = Event("dsc-lakefs", "lakefs", b'{"header":{},"body":' + json.dumps(body).encode()
                  + b"}")
    [submitted] = SensorModel(sensor).receive(event).submitted
    assert submitted.workflow["metadata"]["labels"]["via-a"] == "c1pre-"
    assert submitted.workflow["spec"]["metaText"] == '{"k": "v"}'  # the event's own bytes
    assert submitted.workflow["spec"]["meta"] == {"k": "v"}
    assert _values(submitted) == ["c1", "fallback"]


def test_decoded_event_data_is_accepted() -> None:
    sensor = _two_input_sensor("a")
    body = {"branch_id": "main", "commit_id": "c1"}
    [submitted] = sensor_triggers(sensor, "dsc-lakefs", "lakefs", {"header": {}, "body": body})
    assert _values(submitted) == ["c1", "none"]
    assert sensor_triggers(sensor, "other-source", "lakefs", {"header": {}, "body": body}) == []


# --- the Go dialects (more cases in conformance/cases.json) --------------------------------------

def test_dsc_name_template() -> None:
    template = ('dsc-edges-{{ printf "%s/%s/%s" .Input.body.repository_id .Input.body.branch_id '
                ".Input.body.commit_id | sha256sum | trunc 12 }}")
    body = {"repository_id": "images", "branch_id": "main", "commit_id": "c" * 64}
    assert render(template, {"Input": {"body": body}}) == run_name("images", "main", "c" * 64)


@pytest.mark.parametrize("template", [
    "{{ .Input.x | upper }}", "{{ if .Input.x }}y{{ end }}", "{{ $x := 1 }}",
    '{{ printf "%d" 1 }}', "{{ (.Input.x) }}", "{{/* note */}}", "{{ index .Input 0 }}"])
def test_unknown_template_constructs_raise(template: str) -> None:
    with pytest.raises(Unsupported):
        render(template, {"Input": {"x": "a"}})


@pytest.mark.parametrize("pattern", [
    "^main(?=x)", "^main(?!-old)", "(?<=a)b", "(a)\\1", "(?P<n>a)(?P=n)", "a*+", "a++",
    "(?i)main", "[[:alpha:]]", "\\p{L}", "a{,3}", "(?>a)", "\\Z"])
def test_regexp_constructs_go_reads_differently_raise(pattern: str) -> None:
    with pytest.raises(Unsupported):
        compile_go_regexp(pattern)


@pytest.mark.parametrize(("pattern", "text", "match"), [
    ("^post-(commit|merge)$", "post-merge", True),
    ("^post-(commit|merge)$", "post-commit\n", False),  # Go's $ is end of text
    ("^images$", "images-old", False),
    ("main", "dsc-edges-main-old", True),
    (BOOKKEEPING, '{"dsc.bookkeeping":"trigger"}', True),
    (BOOKKEEPING, '{"note":",\\"dsc.bookkeeping\\":\\"y\\""}', False),
])
def test_dsc_patterns(pattern: str, text: str, match: bool) -> None:
    assert (compile_go_regexp(pattern).search(text) is not None) is match
