"""`dsc compile` beyond the examples: config, pins (withItems), cron, big graphs, field mapping."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from compiler.argo.emit import to_json, to_yaml
from compiler.compile import CompileRequest, compile_specs
from compiler.config import Config, LakeFS, load_config
from compiler.pins import datum_key, plan_digest
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
    open_ = templates(template)["solo-open"]["container"]
    env = {e["name"]: e for e in open_["env"]}
    assert env["LAKEFS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "key": "secret_access_key", "name": "team-lakefs"}
    assert env["DSC_LAKEFS_UI_URL"]["value"] == "https://lakefs.example"
    job = json.loads(open_["args"][open_["args"].index("--job") + 1])
    assert job["input"]["pfs"]["lakefs_repo"] == "raw-data"
    check(docs, tmp_path)


# --- field mapping -------------------------------------------------------------------------

def test_coefficient_uses_the_configured_node_count(tmp_path: Path) -> None:
    d = write(tmp_path, spec("wc", "data", parallelism_spec={"coefficient": 1.5}))
    assert templates(documents(d, Config(nodes=3))[0])["wc"]["parallelism"] == 4
    compiled = compile_specs(CompileRequest(paths=(d,)))
    assert templates(compiled.documents[0])["wc"]["parallelism"] == 1  # type: ignore[index]
    (warning,) = [d for d in compiled.result.diagnostics if d.code == "assumed"]
    assert "assuming 1 node" in warning.message and warning.line > 0


@needs_shared
def test_err_cmd_runs_under_the_wrapper_with_argv_entries(tmp_path: Path) -> None:
    s = spec("robust", "raw")
    s["transform"].update(cmd=["python3", "run.py", "$(rm -rf /)"], err_cmd=["sh"],
                          err_stdin=["echo recovered"], accept_return_code=[2])
    docs = documents(write(tmp_path, s))
    user = next(c for c in templates(docs[0])["robust-datum"]["containerSet"]["containers"]
                if c["name"] == "user")
    assert user["command"][:2] == ["/bin/sh", "-c"]
    assert user["command"][3:] == ["dsc-user", "3", "python3", "run.py", "$(rm -rf /)", "sh"]
    env = {e["name"]: e["value"] for e in user["env"]}
    assert env == {"DSC_ERR_STDIN": "echo recovered\n", "DSC_ACCEPT_RETURN_CODE": "2"}
    check(docs, tmp_path)


def test_argo_template_braces_in_a_spec_are_refused(tmp_path: Path) -> None:
    s = spec("braces", "raw")
    s["transform"]["stdin"] = ["echo {{workflow.name}}"]
    result = run_dsc("compile", str(write(tmp_path, s)))
    assert result.exit_code == 1
    assert "`transform.stdin.0` contains `{{`" in result.stderr


def test_timeouts_metadata_and_sidecar_requests_map_to_the_datum_pod(tmp_path: Path) -> None:
    s = spec("timed", "raw", datum_timeout="10m", job_timeout="1h",
             metadata={"labels": {"team": "ds"}, "annotations": {"owner": "ana"}},
             sidecar_resource_requests={"cpu": 0.5})
    template = documents(write(tmp_path, s))[0]
    datum = templates(template)["timed-datum"]
    assert datum["activeDeadlineSeconds"] == 600
    assert datum["metadata"]["labels"]["team"] == "ds"
    assert datum["metadata"]["annotations"] == {"owner": "ana"}
    stage = datum["containerSet"]["containers"][0]
    assert stage["resources"]["requests"] == {"cpu": "0.5"}
    args = templates(template)["timed-open"]["container"]["args"]
    assert json.loads(args[args.index("--job") + 1])["job_timeout"] == 3600
    short = documents(write(tmp_path / "b", spec("short", "raw", datum_timeout="2h",
                                                   job_timeout="30m")))[0]
    assert templates(short)["short-datum"]["activeDeadlineSeconds"] == 1800


# --- pins ----------------------------------------------------------------------------------

@needs_shared
def test_pinned_compile_embeds_datums_and_pins_sources(tmp_path: Path) -> None:
    d = write(tmp_path, spec("prep", "raw", "/*"), spec("train", "prep", "/"))
    lakefs = FakeLakeFS({"raw": ["b.csv", "a.csv", "sub/c.csv"]})
    docs = documents(d, resolver=lakefs, req={"pin": True})
    template, run = docs
    assert "workflowTemplateRef" not in run["spec"]  # the run carries its pinned graph
    assert run["metadata"]["labels"]["dsc.io/pinned"] == "true"
    pinned = templates(run)
    (datums,) = [t for t in pinned["prep"]["dag"]["tasks"] if t["name"] == "datums"]
    assert datums["withItems"] == ["0-a.csv", "1-b.csv", "2-sub"]
    head = lakefs.head("raw", "main")
    # runs carry no UI title (it would hide their names in the list); pins are described
    assert "workflows.argoproj.io/title" not in run["metadata"]["annotations"]
    assert f"`raw@{head}`" in run["metadata"]["annotations"]["workflows.argoproj.io/description"]
    open_args = pinned["prep-open"]["container"]["args"]
    assert open_args[open_args.index("--pin") + 1] == f"raw@{head}"
    assert open_args[open_args.index("--expect-datums") + 1] == "3"
    assert len(open_args[open_args.index("--plan-digest") + 1]) == 64
    # downstream of a pipeline of the same run: planned at run time, on the upstream commit
    (later,) = [t for t in pinned["train"]["dag"]["tasks"] if t["name"] == "datums"]
    assert "withParam" in later and "withItems" not in later
    # the reusable template is the unpinned one
    (unpinned,) = [t for t in templates(template)["prep"]["dag"]["tasks"]
                   if t["name"] == "datums"]
    assert "withParam" in unpinned
    check(docs, tmp_path)
    again = documents(d, resolver=lakefs, req={"pin": True})
    assert to_yaml(again) == to_yaml(docs)
    moved = FakeLakeFS({"raw": ["a.csv"]})
    moved.head = lambda repo, branch: "f" * 64  # type: ignore[method-assign]
    moved.listing = lambda repo, commit: ["a.csv"]  # type: ignore[method-assign]
    other = documents(d, resolver=moved, req={"pin": True})[1]
    assert other["metadata"]["name"] != run["metadata"]["name"]


@needs_shared
def test_ten_thousand_pinned_datums_stay_under_kubectls_256_kib(tmp_path: Path) -> None:
    files = [f"shard-{i:05d}.parquet" for i in range(10_000)]
    docs = documents(write(tmp_path, spec("big", "lake")), resolver=FakeLakeFS({"lake": files}),
                     req={"pin": True})
    run = docs[1]
    (datums,) = [t for t in templates(run)["big"]["dag"]["tasks"] if t["name"] == "datums"]
    assert len(datums["withItems"]) == 10_000
    # as kubectl stores it, and as `-o yaml` / `-o json` print it
    assert len(to_json([run], compact=True).encode()) < 256 * 1024
    assert len(to_yaml([run]).encode()) < 256 * 1024
    assert len(to_json([run]).encode()) < 256 * 1024
    assert json.loads(to_json([run]))["items"][0] == run
    check(docs, tmp_path)


def test_pinned_datums_over_the_fan_out_ceiling_are_refused(tmp_path: Path) -> None:
    compiled = compile_specs(CompileRequest(paths=(write(tmp_path, spec("big", "lake")),),
                                            config=Config(max_datums=10), pin=True),
                             resolver=FakeLakeFS({"lake": [f"{i}" for i in range(11)]}))
    assert compiled.documents is None
    assert "11 datums, over the fan-out ceiling of 10" in compiled.result.diagnostics[0].message


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
    open_args = templates(docs[0])["nightly-open"]["container"]["args"]
    assert open_args[-4:] == ["--cron-tick", "{{workflow.parameters.cron-tick}}",
                              "--reprocess", "{{workflow.parameters.reprocess}}"]
    job = json.loads(open_args[open_args.index("--job") + 1])
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
    assert len(sections) >= 3
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


def test_objects_over_the_size_budget_are_refused_with_the_reason(tmp_path: Path) -> None:
    compiled = compile_specs(CompileRequest(paths=(write(tmp_path, spec("solo", "raw")),),
                                            config=Config(size_budget=2000)))
    assert compiled.documents is None
    message = compiled.result.diagnostics[0].message
    assert "over the size budget of 2,000" in message and "limits.size_budget" in message


@needs_shared
@needs_shared
def test_pod_patch_becomes_the_datum_pods_spec_patch(tmp_path: Path) -> None:
    s = spec("gpu", "raw", scheduling_spec={"node_selector": {"pool": "cpu"}},
             pod_patch=json.dumps([
        {"op": "replace", "path": "/nodeSelector/pool", "value": "gpu"},
        {"op": "add", "path": "/containers/0/resources",
         "value": {"limits": {"nvidia.com/gpu": "1"}}}]))
    docs = documents(write(tmp_path, s))
    patch = json.loads(templates(docs[0])["gpu-datum"]["podSpecPatch"])
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
