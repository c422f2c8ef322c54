"""What `dsc compile --trigger` emits, fed with recorded lakeFS webhook payloads as Argo Events
applies them: the action file's request, the EventSource, the Sensor's filters and parameters,
and the Workflow that would be submitted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler import contract, kit
from tests.conftest import needs_shared, run_dsc
from tests.events.argo_events import Delivery, SensorModel, webhook_request
from tests.events.lakefs_webhook import lakefs_payload, lakefs_request_headers

TOKEN = "a-token-only-the-test-knows"
SECRETS = {(kit.WEBHOOK_SECRET, kit.WEBHOOK_SECRET_KEY): TOKEN}
SUBMITTING = ["post-commit-images-main", "post-merge-images-main",
              "post-commit-images-main-no-metadata", "post-commit-images-main-lookalike"]
NOT_SUBMITTING = ["post-commit-images-job-branch", "post-create-branch-images",
                  "post-delete-branch-images", "post-commit-images-old-main-old",
                  "post-commit-images-main-bookkeeping"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Graph `edges` (pipeline `edges` reads lakeFS `images`, branch main) with its
    EventSource, Sensor and action file, as the CLI emits them."""
    specs = tmp_path_factory.mktemp("edges") / "edges"
    specs.mkdir()
    (specs / "edges.json").write_text(json.dumps({
        "pipeline": {"name": "edges"},
        "transform": {"image": "busybox:1", "cmd": ["true"]},
        "input": {"pfs": {"repo": "images", "glob": "/*"}}}))
    out = run_dsc("compile", "--trigger", "--namespace", "dsc", str(specs))
    assert out.exit_code == 0, out.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(out.stdout)}
    action = run_dsc("triggers", "action", "--namespace", "dsc", str(specs))
    assert action.exit_code == 0, action.stderr
    return {**docs, "action": yaml.safe_load(action.stdout)}


def action_headers(action: dict[str, Any], token: str = TOKEN) -> dict[str, str]:
    """The action's headers as lakeFS sends them: `{{ ENV.X }}` replaced by the server's
    LAKEFSACTION_ variable (secure_string.go)."""
    headers: dict[str, str] = action["hooks"][0]["properties"]["headers"]
    env = f"{{{{ ENV.{kit.TOKEN_ENV} }}}}"
    return {k: v.replace(env, token) for k, v in headers.items()}


def deliver(compiled: dict[str, Any], payload: str, *, token: str = TOKEN,
            headers: dict[str, str] | None = None) -> Delivery:
    body = lakefs_payload(payload)
    sent = lakefs_request_headers(body, headers or action_headers(compiled["action"], token))
    response = webhook_request(compiled["EventSource"], kit.EVENT_NAME, "POST", sent, body,
                               SECRETS)
    assert response.status == 200, response
    assert response.event is not None
    return SensorModel(compiled["Sensor"]).receive(response.event, now_ms=1764016708000)


def expected_name(repo: str, branch: str, commit: str) -> str:
    """Computed here without dsc's code: graph name, `-`, 12 hex of sha256(repo/branch/commit)."""
    return "edges-" + hashlib.sha256(f"{repo}/{branch}/{commit}".encode()).hexdigest()[:12]


@pytest.mark.parametrize("payload", SUBMITTING)
def test_a_new_commit_on_the_input_branch_submits_its_run(compiled: dict[str, Any],
                                                          payload: str) -> None:
    body = json.loads(lakefs_payload(payload))
    submitted, = deliver(compiled, payload).submitted
    commit = body["commit_id"]
    assert submitted.name == expected_name("images", "main", commit)
    assert submitted.name == contract.run_name("edges", "images", "main", commit)
    assert submitted.namespace == "dsc"
    workflow = submitted.workflow
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "edges"}
    assert {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]} == {
        "trigger-repo": "images", "trigger-branch": "main", "trigger-commit": commit,
        "trigger-event": body["event_type"]}
    annotations = workflow["metadata"]["annotations"]
    assert annotations[kit.TRIGGER_COMMIT_ANNOTATION] == commit  # the full 64 hex
    assert (annotations[kit.TRIGGER_REPO_ANNOTATION],
            annotations[kit.TRIGGER_BRANCH_ANNOTATION]) == ("images", "main")
    assert annotations["workflows.argoproj.io/description"] == (
        f"A run of dsc graph `edges` for new commit `{commit}` on lakeFS `images/main`.")
    assert workflow["metadata"]["labels"][kit.STARTED_BY_LABEL] == "lakefs-event"
    assert workflow["metadata"]["labels"]["dsc.io/graph"] == "edges"


@pytest.mark.parametrize("payload", NOT_SUBMITTING)
def test_job_branches_other_events_other_repos_and_dsc_bookkeeping_never_trigger(
        compiled: dict[str, Any], payload: str) -> None:
    delivery = deliver(compiled, payload)
    assert (delivery.submitted, delivery.failed) == ((), ())
    assert [d.dependency for d in delivery.discarded] == ["images-main"]


def test_a_repeated_event_gives_the_same_run_name(compiled: dict[str, Any]) -> None:
    first, = deliver(compiled, "post-commit-images-main").submitted
    again, = deliver(compiled, "post-commit-images-main").submitted
    assert first.name == again.name  # the second `argo submit` fails with AlreadyExists
    merge, = deliver(compiled, "post-merge-images-main").submitted
    assert merge.name != first.name


def test_an_event_another_graphs_action_posted_is_not_this_graphs(
        compiled: dict[str, Any]) -> None:
    headers = {**action_headers(compiled["action"]), kit.GRAPH_HEADER: "another-graph"}
    delivery = deliver(compiled, "post-commit-images-main", headers=headers)
    assert delivery.submitted == ()


def test_a_wrong_token_is_refused_before_any_sensor_sees_it(compiled: dict[str, Any]) -> None:
    body = lakefs_payload("post-commit-images-main")
    sent = lakefs_request_headers(body, action_headers(compiled["action"], "stale-token"))
    response = webhook_request(compiled["EventSource"], kit.EVENT_NAME, "POST", sent, body,
                               SECRETS)
    assert (response.status, response.event) == (401, None)


def test_the_sensor_and_the_reconciler_name_a_commit_alike(compiled: dict[str, Any]) -> None:
    cron = compiled["CronWorkflow"]
    detect = next(t for t in cron["spec"]["workflowSpec"]["templates"] if t["name"] == "detect")
    args = detect["container"]["args"]
    prefix = json.loads(args[args.index("--sources") + 1])["prefix"]
    body = json.loads(lakefs_payload("post-commit-images-main"))
    submitted, = deliver(compiled, "post-commit-images-main").submitted
    assert contract.run_name(prefix, body["repository_id"], body["branch_id"],
                             body["commit_id"]) == submitted.name


@needs_shared
def test_the_submitted_workflow_passes_argo_validation(compiled: dict[str, Any],
                                                       tmp_path: Path) -> None:
    submitted, = deliver(compiled, "post-commit-images-main").submitted
    out = tmp_path / "submitted.yaml"
    out.write_text(yaml.safe_dump(submitted.workflow))
    from tests.argo_validation import validate

    validate([out])  # validate_argo.py --strict --crd --rules, in this process
