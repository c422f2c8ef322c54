"""`dsc compile --trigger` and `dsc triggers`: the objects that re-run a graph on new commits
(EventSource, Sensor, reconciler CronWorkflow, lakeFS action files) and their installation."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from compiler import contract, kit
from compiler.config import TRIGGER_EVENTS
from compiler.contract import run_name
from tests.conftest import ROOT, SHARED, needs_shared, run_dsc
from tests.runtime.test_verbs import pipeline, specs
from tests.test_compile import EXAMPLES, validate

EVENTS_VALIDATOR = SHARED / "tools" / "validate_events.py"
SEED = ROOT / "examples" / "hyperparameter"


def compile_trigger(*args: str) -> list[dict[str, Any]]:
    result = run_dsc("compile", "--trigger", "--namespace", "dsc", *args)
    assert result.exit_code == 0, result.stderr
    return list(yaml.safe_load_all(result.stdout))


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@needs_shared
def test_every_example_compiles_with_trigger_to_objects_argo_and_argo_events_accept(
        tmp_path: Path) -> None:
    events, argo = [], []
    for example in EXAMPLES:
        result = run_dsc("compile", "--trigger", "--namespace", "dsc", str(example))
        assert result.exit_code == 0, (example.name, result.stderr)
        docs = list(yaml.safe_load_all(result.stdout))
        assert [d["kind"] for d in docs][-3:] == ["EventSource", "Sensor", "CronWorkflow"]
        events.append(tmp_path / f"{example.name}.yaml")
        events[-1].write_text(result.stdout)
        # the WorkflowTemplate, the Workflow, the CronWorkflow(s)
        argo.append(tmp_path / f"{example.name}-argo.yaml")
        argo[-1].write_text("---\n".join(yaml.safe_dump(d) for d in docs
                                          if d["kind"] not in ("EventSource", "Sensor")))
    # One run of the validator for every example: it reads the CRDs once.
    done = subprocess.run(
        [sys.executable, str(EVENTS_VALIDATOR), "--strict", "--semantic", "--crd",
         *map(str, events)], capture_output=True, text=True, check=False)
    verdicts = [line for line in done.stdout.splitlines() if not line.startswith("skip ")]
    assert done.returncode == 0, done.stdout + done.stderr
    # every EventSource/Sensor line is `ok`, with no note
    assert verdicts == [v for v in verdicts if v.startswith("ok ")]
    assert len(verdicts) == 2 * len(EXAMPLES), verdicts
    # The Workflow each trigger submits, as the tool finds it: `--embedded validate_argo.py`
    # would check it (`--strict --crd`) in a new process per trigger, each reading Argo's
    # CRDs for seconds; validate() runs those checks, and `--rules`, in this process.
    tool = _events_tool()
    for example in events:
        for doc in yaml.safe_load_all(example.read_text()):
            if doc["kind"] != "Sensor":
                continue
            embedded = list(tool.embedded_resources(doc))
            assert embedded and len(embedded) == len(doc["spec"]["triggers"]), example.name
            for where, resource in embedded:
                argo.append(tmp_path / f"{example.stem}-{where}.yaml")
                argo[-1].write_text(yaml.safe_dump(resource, sort_keys=False))
    validate(argo)


def _events_tool() -> Any:
    """../shared/tools/validate_events.py as a module, for its own reading of a Sensor."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("validate_events", EVENTS_VALIDATOR)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_compiling_with_trigger_is_deterministic() -> None:
    first = run_dsc("compile", "--trigger", "--namespace", "dsc", str(SEED)).stdout
    assert first == run_dsc("compile", "--trigger", "--namespace", "dsc", str(SEED)).stdout


def test_the_sensor_watches_each_source_branch_and_nothing_the_graph_writes() -> None:
    docs = compile_trigger(str(SEED))
    sensor, = by_kind(docs, "Sensor")
    deps = {d["name"]: d for d in sensor["spec"]["dependencies"]}
    # split reads raw_data, model reads split (its own output: no dependency) and parameters
    assert sorted(deps) == ["parameters-main", "raw-data-main"]
    filters = {f["path"]: f for f in deps["raw-data-main"]["filters"]["data"]}
    assert filters["body.repository_id"]["value"] == ["^raw-data$"]
    assert filters["body.branch_id"]["value"] == ["^main$"]
    assert filters["header.X-Dsc-Graph.0"]["value"] == ["^hyperparameter$"]
    assert filters["body"]["comparator"] == "!="
    for dep in deps.values():  # every string filter is anchored
        for f in dep["filters"]["data"]:
            assert all(v.startswith("^") and v.endswith("$") for v in f["value"]), f
    for trigger in sensor["spec"]["triggers"]:
        template = trigger["template"]
        assert template["conditions"] == template["name"] and template["name"] in deps
        assert template["argoWorkflow"]["operation"] == "submit"
        assert trigger["atLeastOnce"] is True
        resource = template["argoWorkflow"]["source"]["resource"]
        assert resource["spec"]["workflowTemplateRef"] == {"name": "hyperparameter"}
        assert [p["name"] for p in resource["spec"]["arguments"]["parameters"]] == list(
            kit.TRIGGER_PARAMETERS)
        assert "generateName" not in resource["metadata"]
    assert sensor["spec"]["template"]["serviceAccountName"] == kit.SENSOR_SERVICE_ACCOUNT


def test_the_template_takes_the_trigger_parameters_and_its_runs_say_where_they_land() -> None:
    docs = compile_trigger(str(SEED))
    template = docs[0]
    assert template["kind"] == "WorkflowTemplate"
    assert [p["name"] for p in template["spec"]["arguments"]["parameters"]] == [
        *kit.TRIGGER_PARAMETERS, "reprocess"]
    annotations = template["spec"]["workflowMetadata"]["annotations"]
    assert annotations == {kit.OUTPUT_BRANCH_ANNOTATION: "main",
                           kit.OUTPUT_REPO_ANNOTATION: "select"}


def test_the_reconciler_submits_what_the_sensor_would_under_the_same_names() -> None:
    docs = compile_trigger(str(SEED))
    sensor, = by_kind(docs, "Sensor")
    cron, = by_kind(docs, "CronWorkflow")
    assert cron["metadata"]["name"] == "hyperparameter-reconcile"
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["schedules"] == ["*/15 * * * *"]
    assert spec["workflowSpec"]["serviceAccountName"] == kit.RECONCILER_SERVICE_ACCOUNT
    templates = {t["name"]: t for t in spec["workflowSpec"]["templates"]}
    detect = templates["detect"]["container"]["args"]
    document = json.loads(detect[detect.index("--sources") + 1])
    assert document["prefix"] == "hyperparameter"
    assert [(s["repo"], s["branch"]) for s in document["sources"]] == [
        ("parameters", "main"), ("raw-data", "main")]
    assert {r["pipeline"] for r in document["sources"][0]["readers"]} == {"model"}
    submit = templates["submit"]["resource"]
    assert submit["action"] == "create" and "setOwnerReference" not in submit
    made = yaml.safe_load(submit["manifest"])
    sent = sensor["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"]["resource"]
    assert made["spec"]["workflowTemplateRef"] == sent["spec"]["workflowTemplateRef"]
    assert [p["name"] for p in made["spec"]["arguments"]["parameters"]] == [
        p["name"] for p in sent["spec"]["arguments"]["parameters"]]
    assert made["metadata"]["name"] == "{{inputs.parameters.name}}"
    task = next(t for t in templates["main"]["dag"]["tasks"] if t["name"] == "submit")
    assert task["continueOn"] == {"failed": True}  # AlreadyExists: the run is there
    # The Sensor's name template is run_name's: same prefix, same hash length.
    name_param = sensor["spec"]["triggers"][0]["template"]["argoWorkflow"]["parameters"][0]
    assert name_param["dest"] == "metadata.name"
    assert name_param["src"]["dataTemplate"].startswith("hyperparameter-{{ printf")
    assert len(run_name("hyperparameter", "r", "b", "c")) == len("hyperparameter-") + 12


def test_no_secret_value_is_in_what_compile_emits() -> None:
    text = run_dsc("compile", "--trigger", "--namespace", "dsc", str(SEED)).stdout
    docs = list(yaml.safe_load_all(text))
    assert not by_kind(docs, "Secret")
    source, = by_kind(docs, "EventSource")
    assert source["spec"]["webhook"][kit.EVENT_NAME]["authSecret"] == {
        "name": kit.WEBHOOK_SECRET, "key": kit.WEBHOOK_SECRET_KEY}
    # the lakeFS credentials by the Secret's name (envFrom), the webhook's by key
    assert "secretRef:\n" in text and "stringData" not in text


def test_cron_repos_and_commit_pinned_inputs_are_not_watched(tmp_path: Path) -> None:
    graph = specs(tmp_path,
                  pipeline("nightly", {"cross": [
                         {"cron": {"name": "tick", "spec": "@daily", "repo": "ticks"}},
                         {"pfs": {"repo": "images", "glob": "/*"}},
                         {"pfs": {"repo": "frozen", "glob": "/", "commit": "a" * 64}}]}))
    docs = compile_trigger("--name", "graph", str(graph))
    sensor, = by_kind(docs, "Sensor")
    assert [d["name"] for d in sensor["spec"]["dependencies"]] == ["images-main"]
    crons = [d["metadata"]["name"] for d in by_kind(docs, "CronWorkflow")]
    assert crons == ["graph-ticks", "graph-reconcile"]
    template = docs[0]
    assert [p["name"] for p in template["spec"]["arguments"]["parameters"]] == [
        "cron-tick", *kit.TRIGGER_PARAMETERS, "reprocess"]


def test_a_graph_with_nothing_to_watch_is_refused(tmp_path: Path) -> None:
    graph = specs(tmp_path, pipeline("nightly", {
        "cron": {"name": "tick", "spec": "@daily", "repo": "ticks"}}))
    result = run_dsc("compile", "--trigger", str(graph))
    assert result.exit_code == 1
    assert "reads no lakeFS branch it does not write" in result.stderr
    assert result.stdout == ""


def test_trigger_and_pin_together_are_refused() -> None:
    env = {"LAKEFS_ENDPOINT": "http://127.0.0.1:9/api/v1", "LAKEFS_ACCESS_KEY_ID": "k",
           "LAKEFS_SECRET_ACCESS_KEY": "s"}
    result = run_dsc("compile", "--trigger", "--pin", str(SEED), env=env)
    assert result.exit_code == 2, result.stderr
    assert "use one of them" in result.stderr


# --- lakeFS action files --------------------------------------------------------------------

# lakeFS pkg/actions (action.go, webhook.go; lakefs-action.md §2): what ParseAction and
# NewWebhook accept, including what `lakectl actions validate` does not check.
_ACTION_NAME = re.compile(r"^\w[\w\-. ]+$")
_HOOK_ID = re.compile(r"^[_a-zA-Z][\-_a-zA-Z0-9]{1,255}$")
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


def check_action(action: dict[str, Any], branches: list[str]) -> None:
    assert _ACTION_NAME.match(action["name"])
    assert set(action["on"]) <= set(TRIGGER_EVENTS) and action["on"]
    for event in action["on"].values():
        assert event["branches"] == branches and "*" not in "".join(event["branches"])
    hook, = action["hooks"]
    assert _HOOK_ID.match(hook["id"]) and hook["type"] == "webhook"
    props = hook["properties"]
    assert isinstance(props["timeout"], str) and _GO_DURATION.match(props["timeout"])
    assert all(isinstance(v, str) for v in props["headers"].values())
    assert props["headers"]["Authorization"] == (
        f"Bearer {{{{ ENV.{kit.TOKEN_ENV} }}}}")
    assert kit.TOKEN_ENV.startswith("LAKEFSACTION_")


def test_triggers_action_prints_one_valid_action_file_per_source_repository() -> None:
    result = run_dsc("triggers", "action", "--namespace", "dsc", str(SEED))
    assert result.exit_code == 0, result.stderr
    texts = result.stdout.split("---\n")
    assert [t.splitlines()[0] for t in texts] == [
        "# lakefs://parameters/main/_lakefs_actions/dsc-hyperparameter.yaml",
        "# lakefs://raw-data/main/_lakefs_actions/dsc-hyperparameter.yaml"]
    for text in texts:
        # lakeFS reads YAML 1.2, where `on` is a string: PyYAML must have quoted it.
        assert "\n'on':\n" in text
        action = yaml.safe_load(text)
        check_action(action, ["main"])
        props = action["hooks"][0]["properties"]
        assert props["url"] == (f"http://{kit.EVENT_SOURCE_SERVICE}.dsc.svc.cluster.local:"
                                f"{kit.WEBHOOK_PORT}{kit.WEBHOOK_ENDPOINT}")
        assert props["headers"][kit.GRAPH_HEADER] == "hyperparameter"


def test_triggers_action_takes_the_url_and_events_from_the_config(tmp_path: Path) -> None:
    config = tmp_path / "dsc.yaml"
    config.write_text("triggers:\n  webhook_url: https://events.example.com/lakefs\n"
                      "  events: [post-commit, post-merge]\n")
    out = tmp_path / "actions"
    result = run_dsc("triggers", "action", "--config", str(config), "--output-dir", str(out),
                     str(SEED))
    assert result.exit_code == 0, result.stderr
    action = yaml.safe_load((out / "raw-data" / "_lakefs_actions" /
                             "dsc-hyperparameter.yaml").read_text())
    assert list(action["on"]) == ["post-commit", "post-merge"]
    assert action["hooks"][0]["properties"]["url"] == "https://events.example.com/lakefs"
    # the Sensor accepts the same events, no more
    compiled = run_dsc("compile", "--trigger", "--config", str(config), str(SEED))
    sensor, = by_kind(list(yaml.safe_load_all(compiled.stdout)), "Sensor")
    event_filter = sensor["spec"]["dependencies"][0]["filters"]["data"][0]
    assert event_filter["value"] == ["^post-(commit|merge)$"]


def test_triggers_action_without_a_webhook_url_says_what_to_set() -> None:
    result = run_dsc("triggers", "action", str(SEED))
    assert result.exit_code == 2
    assert "set `namespace`" in result.stderr and "triggers.webhook_url" in result.stderr


# --- install against the lakeFS stand-in ----------------------------------------------------

@pytest.fixture
def standin_env(lakefs_standin) -> dict[str, str]:
    s = lakefs_standin
    return {"LAKEFS_ENDPOINT": s.endpoint, "LAKEFS_ACCESS_KEY_ID": s.access_key_id,
            "LAKEFS_SECRET_ACCESS_KEY": s.secret_access_key}


ACTION = "_lakefs_actions/dsc-hyperparameter.yaml"


def test_install_commits_the_action_file_once_and_is_a_no_op_the_second_time(
        lakefs_standin, standin_env) -> None:
    s = lakefs_standin
    before = {repo: s.seed(repo, {"data/1.txt": b"1"}) for repo in ("raw-data", "parameters")}
    result = run_dsc("triggers", "install", "--namespace", "dsc", str(SEED), env=standin_env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count(": committed ") == 2
    expected = run_dsc("triggers", "action", "--namespace", "dsc", str(SEED)).stdout
    for repo, old in before.items():
        head = s.commit(repo, s.head(repo, "main"))
        assert head.parents[0] == old  # one merge on top of what was there
        assert head.metadata[contract.BOOKKEEPING_KEY].startswith("trigger-install ")
        assert s.read(repo, "main", ACTION).decode() in expected
        assert s.objects(repo, "main").keys() == {"data/1.txt", ACTION}
        assert [b for b in s.state()[repo].branches if b.startswith("dsc-install")] == []
    heads = {repo: s.head(repo, "main") for repo in before}
    again = run_dsc("triggers", "install", "--namespace", "dsc", str(SEED), env=standin_env)
    assert again.exit_code == 0, again.stderr
    assert again.stdout.count(": unchanged, no commit") == 2
    assert {repo: s.head(repo, "main") for repo in before} == heads
    s.check()  # every request matched lakeFS's OpenAPI


def test_install_never_commits_a_users_uncommitted_work(lakefs_standin, standin_env) -> None:
    from compiler.lakefs.client import from_environment

    s = lakefs_standin
    for repo in ("raw-data", "parameters"):
        s.seed(repo, {"data/1.txt": b"1"})
    client = from_environment(standin_env, None)
    client.upload("raw-data", "main", "data/2.txt", b"work in progress")
    head = s.head("raw-data", "main")
    result = run_dsc("triggers", "install", "--namespace", "dsc", str(SEED), env=standin_env)
    assert result.exit_code == 3
    assert "lakefs://raw-data/main" in result.stderr and "dirty" in result.stderr
    assert s.head("raw-data", "main") == head
    assert s.objects("raw-data", "main")["data/2.txt"] == b"work in progress"
    # Once the user commits, installing again finishes, with one install commit.
    client.commit_once("raw-data", "main", "wip", {"k": "v"}, "k", since=head)
    result = run_dsc("triggers", "install", "--namespace", "dsc", str(SEED), env=standin_env)
    assert result.exit_code == 0, result.stderr
    log = s.log("raw-data", "main", first_parent=True)
    assert [c.metadata.get(contract.BOOKKEEPING_KEY, "")[:15] for c in log[:2]] == [
        "trigger-install", ""]
    assert not [b for b in s.state()["raw-data"].branches if b.startswith("dsc-install")]


def test_install_retried_after_a_crash_at_any_call_commits_once(lakefs_standin) -> None:
    from compiler.commands.triggers import install
    from compiler.lakefs.client import LakeFS, RetryPolicy

    s = lakefs_standin
    text = "name: dsc-g\n"
    for crash_at in range(1, 12):
        repo = f"repo-{crash_at:02d}"
        base = s.seed(repo, {"a": b"1"})

        class Crashing(LakeFS):
            calls = 0
            die_at = crash_at

            def _call(self, operation: str, fn: Any, *args: Any, idempotent: bool,
                      **kwargs: Any) -> Any:
                self.calls += 1
                if self.calls == self.die_at:
                    raise KeyboardInterrupt(operation)  # the process dies here
                return super()._call(operation, fn, *args, idempotent=idempotent, **kwargs)

        policy = RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.01, timeout=(2.0, 2.0),
                             sleep=lambda _s: None)
        crashing = Crashing(s.endpoint, s.access_key_id, s.secret_access_key, policy)
        with contextlib.suppress(KeyboardInterrupt):
            install(crashing, repo, "main", ACTION, text, "g")
        plain = LakeFS(s.endpoint, s.access_key_id, s.secret_access_key, policy)
        install(plain, repo, "main", ACTION, text, "g")
        assert install(plain, repo, "main", ACTION, text, "g").commit is None
        log = s.log(repo, "main", first_parent=True)
        assert log[1].id == base, f"crash at call {crash_at}: {len(log)} commits"
        assert s.read(repo, "main", ACTION) == text.encode()
        assert not [b for b in s.state()[repo].branches if b.startswith("dsc-install")]


def test_a_token_variable_lakefs_would_blank_and_a_number_timeout_are_config_errors(
        tmp_path: Path) -> None:
    # lakeFS substitutes only LAKEFSACTION_* (LAKEFSACTIONS_* is blanked, the request gets
    # 401) and ignores a timeout that is not a string (lakefs-action.md §2, §4).
    config = tmp_path / "dsc.yaml"
    config.write_text("namespace: dsc\ntriggers:\n  token_env: LAKEFSACTIONS_TOKEN\n"
                      "  timeout: 30\n")
    result = run_dsc("triggers", "action", "--config", str(config), str(SEED))
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{config}:3:14: error: config: `triggers.token_env` must be text matching" \
        in result.stderr
    assert f"{config}:4:12: error: config: `triggers.timeout` must be a string" in result.stderr
