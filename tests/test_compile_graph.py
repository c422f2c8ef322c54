"""`dsc compile` beyond the examples: config, pins, cron, big graphs, field mapping."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from compiler.argo.build import stored_size
from compiler.argo.emit import to_json, to_yaml
from compiler.commands.compile import CompileRequest, compile_specs
from compiler.config import Config, LakeFS, load_config
from compiler.contract import datum_key, plan_digest
from tests.conftest import ROOT, needs_shared, run_dsc
from tests.test_compile import validate


def spec(name: str, repo: str | None = None, glob: str = "/*", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"pipeline": {"name": name},
                           "transform": {"image": "python:3.12-slim",
                                         "cmd": ["python3", "/code/run.py"]}}
    if repo is not None:
        doc["input"] = {"pfs": {"repo": repo, "glob": glob}}
    doc.update(extra)
    return doc


def write(directory: Path, *specs: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for s in specs:
        (directory / f"{s['pipeline']['name']}.json").write_text(json.dumps(s))
    return directory


def documents(directory: Path, config: Config | None = None, **request: Any
              ) -> list[dict[str, Any]]:
    compiled = compile_specs(CompileRequest(paths=(directory,), config=config or Config(),
                                            **request.pop("req", {})), **request)
    assert compiled.documents is not None, [d.message for d in compiled.result.diagnostics]
    return compiled.documents


def templates(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in doc["spec"]["templates"]}


def check(docs: list[dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    out.write_text(to_yaml(docs))
    validate([out])


class FakeLakeFS:
    """A PinResolver over fixed listings: heads are sha256-like IDs derived from the name."""

    def __init__(self, files: dict[str, list[str]]) -> None:
        self.files = files
        self.calls: list[tuple[str, ...]] = []

    def head(self, repo: str, branch: str) -> str:
        self.calls.append(("head", repo, branch))
        return (repo.encode().hex() * 64)[:64]

    def listing(self, repo: str, commit: str) -> Iterable[str]:
        self.calls.append(("listing", repo, commit))
        assert commit == self.head(repo, "")
        return self.files[repo]


# --- configuration -----------------------------------------------------------------------

def test_config_file_env_and_flags_layer_in_that_order(tmp_path: Path) -> None:
    (tmp_path / "dsc.yaml").write_text(
        "runtime_image: registry.example/dsc:1\nnamespace: data\nnodes: 4\n"
        "lakefs:\n  secret: team-lakefs\n  ui_url: https://lakefs.example\n"
        "repos:\n  raw_data: iris-raw\nlimits:\n  max_datums: 50\n")
    config = load_config(cwd=tmp_path, environ={"DSC_NAMESPACE": "prod"},
                         overrides={("runtime_image",): "registry.example/dsc:2",
                                    ("namespace",): None})
    assert config.runtime_image == "registry.example/dsc:2"  # flag over file
    assert config.namespace == "prod"  # environment over file
    assert (config.nodes, config.lakefs.secret, config.max_datums) == (4, "team-lakefs", 50)
    assert config.lakefs_repo("raw_data") == "iris-raw"
    assert config.lakefs_repo("other_data") == "other-data"
    assert load_config(cwd=tmp_path / "nowhere", environ={}) == Config()


def test_a_bad_config_is_a_located_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "dsc.yaml"
    bad.write_text("runtime_image: x\nlakefs:\n  secrte: oops\nnodes: 0\n")
    write(tmp_path / "specs", spec("solo", "raw"))
    result = run_dsc("compile", "--config", str(bad), str(tmp_path / "specs"))
    assert result.exit_code == 2
    assert f"{bad}:3:3: error:" in result.stderr and "secrte" in result.stderr
    assert f"{bad}:4:8: error:" in result.stderr
    assert result.stdout == ""
    nodes = run_dsc("compile", str(tmp_path / "specs"), env={"DSC_NODES": "many"})
    assert nodes.exit_code == 2 and "DSC_NODES must be a whole number" in nodes.stderr


@needs_shared
def test_config_reaches_the_manifests_and_secrets_stay_references(tmp_path: Path) -> None:
    config = Config(namespace="data", service_account="dsc-workflow",
                    lakefs=LakeFS(secret="team-lakefs", ui_url="https://lakefs.example"),
                    repos={"raw": "raw-data"})
    docs = documents(write(tmp_path, spec("solo", "raw")), config)
    template, run = docs
    assert {d["metadata"]["namespace"] for d in docs} == {"data"}
    assert set(run["metadata"]["annotations"]) == {"workflows.argoproj.io/description"}
    assert template["spec"]["serviceAccountName"] == "dsc-workflow"
    shared = templates(template)
    # every runtime container takes the credentials from the Secret, by reference only
    for name in ("open", "commit", "abort"):
        container = shared[name]["container"]
        assert container["envFrom"] == [{"prefix": "DSC_SECRET_",
                                         "secretRef": {"name": "team-lakefs"}}]
        env = {e["name"]: e for e in container["env"]}
        assert not any("valueFrom" in e for e in env.values())
        assert env["DSC_LAKEFS_UI_URL"]["value"] == "https://lakefs.example"
    worker = {c["name"]: c for c in shared["solo-worker"]["containerSet"]["containers"]}
    assert worker["main"]["envFrom"] == shared["open"]["container"]["envFrom"]
    assert "envFrom" not in worker["user"]  # the user's code never gets the credentials
    job = json.loads(_job(shared["solo"]))
    assert job["input"]["pfs"]["lakefs_repo"] == "raw-data"
    assert "team-lakefs" not in json.dumps(shared["solo"])
    check(docs, tmp_path)


# --- field mapping -------------------------------------------------------------------------

def _job(pipeline_template: dict[str, Any]) -> str:
    """The job document a pipeline's DAG passes to its steps."""
    (job,) = [p["value"] for p in pipeline_template["inputs"]["parameters"]
              if p["name"] == "job"]
    return str(job)


def _workers(doc: dict[str, Any], name: str) -> int:
    return int(json.loads(_job(templates(doc)[name])).get("workers", 1))


def test_coefficient_uses_the_configured_node_count(tmp_path: Path) -> None:
    d = write(tmp_path, spec("wc", "data", parallelism_spec={"coefficient": 1.5}))
    assert _workers(documents(d, Config(nodes=3))[0], "wc") == 4
    compiled = compile_specs(CompileRequest(paths=(d,)))
    assert compiled.documents is not None
    assert _workers(compiled.documents[0], "wc") == 1
    (warning,) = [d for d in compiled.result.diagnostics if d.code == "assumed"]
    assert "assuming 1 node" in warning.message and warning.line > 0


@needs_shared
def test_err_cmd_runs_under_the_wrapper_with_argv_entries(tmp_path: Path) -> None:
    s = spec("robust", "raw")
    s["transform"].update(cmd=["python3", "run.py", "$(rm -rf /)"], err_cmd=["sh"],
                          err_stdin=["echo recovered"], accept_return_code=[2])
    docs = documents(write(tmp_path, s))
    user = next(c for c in templates(docs[0])["robust-worker"]["containerSet"]["containers"]
                if c["name"] == "user")
    # the loop the init container writes; the command as argv entries, never a shell string
    assert user["command"] == ["/bin/sh", "/pfs/.dsc-worker/loop.sh"]
    assert user["args"] == ["3", "python3", "run.py", "$(rm -rf /)", "sh"]
    env = {e["name"]: e["value"] for e in user["env"]}
    assert env == {"DSC_ERR_STDIN": "echo recovered\n", "DSC_ACCEPT_RETURN_CODE": "2"}
    check(docs, tmp_path)


def test_argo_template_braces_in_a_spec_are_refused(tmp_path: Path) -> None:
    s = spec("braces", "raw")
    s["transform"]["stdin"] = ["echo {{workflow.name}}"]
    result = run_dsc("compile", str(write(tmp_path, s)))
    assert result.exit_code == 1
    assert "`transform.stdin.0` contains `{{`" in result.stderr


def test_timeouts_metadata_and_sidecar_requests_map_to_the_worker_pod(tmp_path: Path) -> None:
    s = spec("timed", "raw", datum_timeout="10m", job_timeout="1h", datum_tries=5,
             metadata={"labels": {"team": "ds"}, "annotations": {"owner": "ana"}},
             sidecar_resource_requests={"cpu": 0.5}, resource_requests={"memory": "1G"})
    template = documents(write(tmp_path, s))[0]
    worker = templates(template)["timed-worker"]
    assert worker["activeDeadlineSeconds"] == 3600  # the job's; a datum's is the worker's
    assert worker["metadata"]["labels"] == {"team": "ds", "dsc.io/pipeline": "timed"}
    assert worker["metadata"]["annotations"] == {"owner": "ana"}
    main, user = worker["containerSet"]["containers"]
    assert main["resources"]["requests"] == {"cpu": "0.5"}
    assert worker["initContainers"][0]["resources"]["requests"] == {"cpu": "0.5"}
    assert user["resources"]["requests"] == {"memory": "1G"}
    job = json.loads(_job(templates(template)["timed"]))
    assert (job["job_timeout"], job["datum_timeout"], job["datum_tries"]) == (3600, 600, 5)
    plain = json.loads(_job(templates(documents(write(tmp_path / "b", spec("plain", "raw")))[0])
                            ["plain"]))
    assert "datum_timeout" not in plain and "datum_tries" not in plain  # 3 tries, no bound


# --- pins ----------------------------------------------------------------------------------

def _open_task(pipeline_template: dict[str, Any]) -> dict[str, str]:
    """The arguments a pipeline's DAG passes to the shared `open` template."""
    (task,) = [t for t in pipeline_template["dag"]["tasks"] if t["name"] == "open"]
    return {a["name"]: a["value"] for a in task["arguments"]["parameters"]}


@needs_shared
def test_pinned_compile_embeds_the_plans_count_and_digest_and_pins_sources(
        tmp_path: Path) -> None:
    d = write(tmp_path, spec("prep", "raw", "/*"), spec("train", "prep", "/"))
    lakefs = FakeLakeFS({"raw": ["b.csv", "a.csv", "sub/c.csv"]})
    docs = documents(d, resolver=lakefs, req={"pin": True})
    template, run = docs
    assert "workflowTemplateRef" not in run["spec"]  # the run carries its pinned graph
    assert run["metadata"]["labels"]["dsc.io/pinned"] == "true"
    pinned = templates(run)
    head = lakefs.head("raw", "main")
    # runs carry no UI title (it would hide their names in the list); pins are described
    assert "workflows.argoproj.io/title" not in run["metadata"]["annotations"]
    assert f"`raw@{head}`" in run["metadata"]["annotations"]["workflows.argoproj.io/description"]
    prep = _open_task(pinned["prep"])
    assert prep["pins"] == f"raw@{head}"
    assert prep["expect-datums"] == "3"  # a.csv, b.csv, sub: `open` refuses another plan
    assert re.fullmatch(r"[0-9a-f]{64}", prep["plan-digest"])
    # the workers come from `open`, never from the datums themselves
    (work,) = [t for t in pinned["prep"]["dag"]["tasks"] if t["name"] == "work"]
    assert work["withParam"] == "{{tasks.open.outputs.parameters.workers}}"
    # downstream of a pipeline of the same run: planned at run time, on the upstream commit
    train = _open_task(pinned["train"])
    assert "expect-datums" not in train
    assert train["pins"] == "prep@{{tasks.prep.outputs.parameters.commit}}" or \
        "{{" in train["pins"]
    # the reusable template is the unpinned one
    assert "expect-datums" not in _open_task(templates(template)["prep"])
    check(docs, tmp_path)
    again = documents(d, resolver=lakefs, req={"pin": True})
    assert to_yaml(again) == to_yaml(docs)
    moved = FakeLakeFS({"raw": ["a.csv"]})
    moved.head = lambda repo, branch: "f" * 64  # type: ignore[method-assign]
    moved.listing = lambda repo, commit: ["a.csv"]  # type: ignore[method-assign]
    other = documents(d, resolver=moved, req={"pin": True})[1]
    assert other["metadata"]["name"] != run["metadata"]["name"]


@needs_shared
def test_a_pinned_run_is_the_same_size_at_ten_datums_and_at_a_million(
        tmp_path: Path, monkeypatch: Any) -> None:
    from compiler.argo.build import PipelinePins
    from compiler.commands import pins as pins_module

    commit = "c" * 64
    d = write(tmp_path, spec("big", "lake"))
    runs = {}
    for count in (10, 1_000_000):
        digest = plan_digest(f"datum-{i}" for i in range(3))  # any 64-hex digest
        monkeypatch.setattr(pins_module, "resolve_pins", lambda graph, resolver, config,
                            n=count, h=digest: {"big": PipelinePins((("lake", commit),), n, h)})
        docs = documents(d, resolver=FakeLakeFS({}), req={"pin": True})
        runs[count] = docs[1]
        (tmp_path / str(count)).mkdir()
        check(docs, tmp_path / str(count))
    small, big = (len(to_json([runs[n]], compact=True).encode()) for n in (10, 1_000_000))
    assert big <= 64 * 1024
    assert big - small == len("1000000") - len("10")  # only the count differs


def test_pinned_datums_over_the_configured_budget_are_refused(tmp_path: Path) -> None:
    compiled = compile_specs(CompileRequest(paths=(write(tmp_path, spec("big", "lake")),),
                                            config=Config(max_datums=10), pin=True),
                             resolver=FakeLakeFS({"lake": [f"{i}" for i in range(11)]}))
    assert compiled.documents is None
    assert "pipeline `big` has 11 datums, over the budget of 10 (`limits.max_datums`)" in \
        compiled.result.diagnostics[0].message


def test_datum_keys_start_with_the_index_the_runtime_reads() -> None:
    assert datum_key(7, "/images/cat photo (1).png") == "7-cat_photo_1_.png"
    assert datum_key(0, "/") == "0"
    assert plan_digest(["a", "b"]) != plan_digest(["b", "a"])


# --- cron ----------------------------------------------------------------------------------

@needs_shared
@needs_shared
def test_cron_inputs_make_a_cronworkflow_instead_of_a_run(tmp_path: Path) -> None:
    s = spec("nightly", None)
    s["input"] = {"cross": [{"cron": {"name": "tick", "spec": "@every 6h",
                                      "start": "2026-12-01T00:00:00Z"}},
                            {"pfs": {"repo": "raw", "glob": "/"}}]}
    docs = documents(write(tmp_path, s))
    assert [d["kind"] for d in docs] == ["WorkflowTemplate", "CronWorkflow"]
    cron = docs[1]
    assert len(cron["metadata"]["name"]) <= 52
    assert cron["spec"]["schedules"] == ["@every 6h"]
    assert cron["spec"]["timezone"] == "UTC"
    assert cron["spec"]["workflowSpec"]["arguments"]["parameters"] == [
        {"name": "cron-tick", "value": "nightly_tick"}]
    assert _open_task(templates(docs[0])["nightly"])["cron-tick"] == \
        "{{workflow.parameters.cron-tick}}"
    job = json.loads(_job(templates(docs[0])["nightly"]))
    assert job["input"]["cross"][0]["cron"]["start"] == "2026-12-01T00:00:00Z"
    check(docs, tmp_path)


# --- big graphs ----------------------------------------------------------------------------

@needs_shared
@needs_shared
def test_a_graph_over_argos_template_limit_is_split_into_sections(tmp_path: Path) -> None:
    chain = [spec("p000", "raw")] + [spec(f"p{i:03d}", f"p{i - 1:03d}") for i in range(1, 120)]
    chain.append(spec("fan", None, input={"cross": [
        {"pfs": {"repo": "p000", "glob": "/"}}, {"pfs": {"repo": "p119", "glob": "/"}}]}))
    docs = documents(write(tmp_path, *chain))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["WorkflowTemplate"] * (len(docs) - 1) + ["Workflow"]
    main, sections = docs[0], docs[1:-1]
    assert len(sections) == 2  # 200 templates an object: 96 pipelines, then the rest
    for doc in docs[:-1]:
        assert len(doc["spec"]["templates"]) <= 200
        assert len(to_json([doc], compact=True)) <= Config().size_budget
    tasks = templates(main)["main"]["dag"]["tasks"]
    assert [t["templateRef"]["name"] for t in tasks] == [s["metadata"]["name"] for s in sections]
    last = tasks[-1]
    assert set(last.get("depends", "").split(" && ")) >= {"part-1", f"part-{len(sections) - 1}"}
    passed = {p["name"]: p["value"] for p in last["arguments"]["parameters"]}
    assert passed["pin-p000"] == "{{tasks.part-1.outputs.parameters.commit-p000}}"
    check(docs, tmp_path)


def test_a_300_pipeline_chain_fits_what_argo_stores_in_a_run(tmp_path: Path) -> None:
    """At run time the controller copies the WorkflowTemplate's spec into the Workflow's
    status (`storedWorkflowTemplateSpec`) and every template a node uses, from the section
    WorkflowTemplates, into `status.storedTemplates`; the object must stay under 1 MiB."""
    chain = [spec("p000", "raw")] + [spec(f"p{i:03d}", f"p{i - 1:03d}") for i in range(1, 300)]
    docs = documents(write(tmp_path, *chain))
    main, *sections = [d for d in docs if d["kind"] == "WorkflowTemplate"]
    (run,) = [d for d in docs if d["kind"] == "Workflow"]
    stored = {"storedWorkflowTemplateSpec": main["spec"], "storedTemplates": {
        f"namespaced/{s['metadata']['name']}/{t['name']}": t
        for s in sections for t in s["spec"]["templates"]}}
    workflow = {**run, "status": stored}
    templates_bytes = len(json.dumps(stored, separators=(",", ":")).encode())
    assert templates_bytes <= 900 * 1024
    assert len(json.dumps(workflow, separators=(",", ":")).encode()) < 1024 * 1024
    assert stored_size([main, *sections]) == templates_bytes  # what compile checks


def test_a_graph_over_the_stored_budget_is_refused_naming_the_limit(tmp_path: Path) -> None:
    chain = [spec("p000", "raw")] + [spec(f"p{i:03d}", f"p{i - 1:03d}") for i in range(1, 40)]
    compiled = compile_specs(CompileRequest(paths=(write(tmp_path, *chain),),
                                            config=Config(stored_budget=60_000)))
    assert compiled.documents is None
    message = compiled.result.diagnostics[0].message
    assert "too big for one run: Argo would copy" in message
    assert "over the budget of 60,000 (`limits.stored_budget`) within the 1 MiB" in message
    per = int(message.split("about ")[1].split(" a pipeline")[0].replace(",", ""))
    assert f"graphs of at most {60_000 // per:,} pipelines" in message


def test_more_workers_than_the_limit_are_refused(tmp_path: Path) -> None:
    d = write(tmp_path, spec("wide", "raw", parallelism_spec={"constant": 1001}))
    compiled = compile_specs(CompileRequest(paths=(d,)))
    assert compiled.documents is None
    (error,) = compiled.result.diagnostics
    assert "pipeline `wide`: `parallelism_spec` asks for 1,001 workers, over the 1,000 one " \
        "pipeline may run (`limits.max_workers`)" in error.message
    assert error.path.endswith("wide.json") and error.line == 1  # where the spec says it
    assert compile_specs(CompileRequest(paths=(d,), config=Config(max_workers=2000))).documents


def test_objects_over_the_size_budget_are_refused_with_the_reason(tmp_path: Path) -> None:
    compiled = compile_specs(CompileRequest(paths=(write(tmp_path, spec("solo", "raw")),),
                                            config=Config(size_budget=2000)))
    assert compiled.documents is None
    message = compiled.result.diagnostics[0].message
    assert "over the size budget of 2,000" in message and "limits.size_budget" in message


@needs_shared
@needs_shared
def test_pod_patch_becomes_the_worker_pods_spec_patch(tmp_path: Path) -> None:
    s = spec("gpu", "raw", scheduling_spec={"node_selector": {"pool": "cpu"}},
             pod_patch=json.dumps([
        {"op": "replace", "path": "/nodeSelector/pool", "value": "gpu"},
        {"op": "add", "path": "/containers/0/resources",
         "value": {"limits": {"nvidia.com/gpu": "1"}}}]))
    docs = documents(write(tmp_path, s))
    patch = json.loads(templates(docs[0])["gpu-worker"]["podSpecPatch"])
    assert patch == {"containers": [{"name": "user",
                                     "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
                     "nodeSelector": {"pool": "gpu"}}
    check(docs, tmp_path)
    s["pod_spec"] = json.dumps({"hostNetwork": True})
    both = run_dsc("compile", str(write(tmp_path / "both", s)))
    assert both.exit_code == 1 and "`pod_spec` and `pod_patch` together" in both.stderr


def test_reprocess_is_a_run_parameter_and_names_only_what_the_graph_has(tmp_path):
    import yaml

    specs = str(ROOT / "examples" / "hyperparameter")
    plain = yaml.safe_load_all(run_dsc("compile", specs).stdout)
    template, run = list(plain)
    assert {"name": "reprocess", "value": ""} in template["spec"]["arguments"]["parameters"]
    assert "arguments" not in run["spec"]
    result = run_dsc("compile", specs, "--reprocess", "model:1db69b82,test")
    assert result.exit_code == 0, result.stderr
    _template, forced = yaml.safe_load_all(result.stdout)
    assert forced["spec"]["arguments"]["parameters"] == [
        {"name": "reprocess", "value": "model:1db69b82,test"}]
    assert forced["metadata"]["name"] != run["metadata"]["name"]  # a new run
    wrong = run_dsc("compile", specs, "--reprocess", "modle")
    assert wrong.exit_code == 2 and wrong.stdout == ""
    assert "--reprocess 'modle': graph `hyperparameter` has no pipeline `modle`; did you " \
        "mean `model`?" in wrong.stderr
    assert run_dsc("compile", specs, "--reprocess", "model:xyz").exit_code == 2
