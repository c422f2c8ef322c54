"""`dsc compile`: every accepted spec compiles to manifests Argo's schema, CRDs and rules accept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import CORPUS, ROOT, SHARED, needs_shared, run_dsc

VALIDATOR = SHARED / "tools" / "validate_argo.py"
ARGO_SCHEMAS = SHARED / "reference" / "argo"
# The examples' graphs (examples/ci is the CI/CD recipe, not a graph: tests/test_ci_recipe.py)
EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("*/pipelines"))


def validate(files: list[Path]) -> None:
    """../shared/tools/validate_argo.py --strict --crd --rules, in this process (its
    validators built once); fail with its report."""
    from tests.argo_validation import validate as in_process

    in_process(files)


@needs_shared
def test_the_validator_in_this_process_reports_what_the_tool_reports(tmp_path: Path) -> None:
    from tests.argo_validation import report

    out = tmp_path / "out.yaml"
    bad = next(yaml.safe_load_all(run_dsc("compile", str(ROOT / "examples" / "wordcount"))
                                  .stdout))
    bad["spec"]["templates"][0]["retryStrategy"] = {"limit": 1, "unknown": True}
    out.write_text(run_dsc("compile", str(ROOT / "examples" / "hyperparameter")).stdout
                   + "---\n" + yaml.safe_dump(bad))
    done = subprocess.run(
        [sys.executable, str(VALIDATOR), "--strict", "--crd", "--rules", "--schema-dir",
         str(ARGO_SCHEMAS), str(out)], capture_output=True, text=True, check=False)
    assert done.stdout.splitlines() == report(out)
    assert any(line.startswith("FAIL ") for line in report(out))


@needs_shared
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_compiles_to_valid_argo_manifests(example: Path, tmp_path: Path) -> None:
    result = run_dsc("compile", str(example))
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "out.yaml"
    out.write_text(result.stdout)
    validate([out])
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout)]
    assert kinds == ["WorkflowTemplate", "Workflow"]


@needs_shared
def test_every_corpus_spec_lint_accepts_compiles_to_valid_manifests(tmp_path: Path) -> None:
    compiled: list[Path] = []
    for spec in sorted(CORPUS.iterdir()):
        if run_dsc("lint", "-q", str(spec)).exit_code != 0:
            continue
        result = run_dsc("compile", str(spec))
        assert result.exit_code == 0, f"{spec.name}: {result.stderr}"
        out = tmp_path / (spec.name + ".yaml")
        out.write_text(result.stdout)
        compiled.append(out)
    assert len(compiled) > 150  # most of the 253 specs are accepted
    validate(compiled)


def test_hyperparameter_graph_runs_split_model_test_select_in_order() -> None:
    result = run_dsc("compile", str(ROOT / "examples" / "hyperparameter"))
    template, run = yaml.safe_load_all(result.stdout)
    main = next(t for t in template["spec"]["templates"] if t["name"] == "main")
    tasks = {t["name"]: t for t in main["dag"]["tasks"]}
    # `split` is an expr builtin that breaks `depends` on Argo 3.5: never a bare task name
    assert [t["template"] for t in main["dag"]["tasks"]] == [
        "split-pipeline", "model", "test", "select"]
    split, model, test, select = (tasks[n] for n in tasks)
    assert model["depends"] == split["name"]
    assert set(select["depends"].split(" && ")) == {model["name"], test["name"]}
    pins = {p["name"]: p["value"] for p in test["arguments"]["parameters"]}
    assert set(pins.values()) == {f"{{{{tasks.{split['name']}.outputs.parameters.commit}}}}",
                                  f"{{{{tasks.{model['name']}.outputs.parameters.commit}}}}"}
    assert run["spec"] == {"workflowTemplateRef": {"name": template["metadata"]["name"]}}
    assert run["metadata"]["name"].startswith("hyperparameter-")


def test_model_workers_fan_out_from_open_as_a_containerset(tmp_path: Path) -> None:
    result = run_dsc("compile", str(ROOT / "examples" / "hyperparameter"))
    template = next(yaml.safe_load_all(result.stdout))
    by_name = {t["name"]: t for t in template["spec"]["templates"]}
    dag = {t["name"]: t for t in by_name["model"]["dag"]["tasks"]}
    assert list(dag) == ["open", "work", "commit"]
    # the workers' indices, never the datums, pass through Argo
    assert dag["work"]["withParam"] == "{{tasks.open.outputs.parameters.workers}}"
    assert dag["open"]["template"] == "open" and dag["commit"]["template"] == "commit"
    worker = by_name[dag["work"]["template"]]
    containers = {c["name"]: c for c in worker["containerSet"]["containers"]}
    assert list(containers) == ["main", "user"]  # side by side: the loop coordinates them
    assert not any("dependencies" in c for c in containers.values())
    assert [c["name"] for c in worker["initContainers"]] == ["prepare"]
    assert containers["main"]["args"][:2] == ["runtime", "work"]
    assert containers["user"]["command"] == ["/bin/sh", "/pfs/.dsc-worker/loop.sh"]
    stdin = next(e["value"] for e in containers["user"]["env"] if e["name"] == "DSC_STDIN")
    assert stdin.startswith("cp /pfs/split/train.csv /tmp/iris.csv\n")
    # a lost or OOM-killed worker runs again and resumes; failed datums (exit 1) do not
    assert worker["retryStrategy"]["limit"] == "6"
    assert worker["retryStrategy"]["backoff"] == {"duration": "10s", "factor": 2}
    assert worker["retryStrategy"]["expression"] == '!(lastRetry.exitCode in ["1", "2", "3"])'
    assert all(m["mountPath"] == "/pfs" for c in [*containers.values(),
                                                  *worker["initContainers"]]
               for m in c["volumeMounts"])
    assert containers["main"]["envFrom"][0]["secretRef"] == {"name": "dsc-lakefs"}
    assert "envFrom" not in containers["user"]
    assert "secret" not in json.dumps(containers["user"])


def test_compiling_twice_gives_identical_bytes() -> None:
    first = run_dsc("compile", str(ROOT / "examples" / "hyperparameter"))
    second = run_dsc("compile", str(ROOT / "examples" / "hyperparameter"))
    assert first.stdout == second.stdout and first.stdout


def test_a_changed_spec_gets_a_new_run_name(tmp_path: Path) -> None:
    spec = {"pipeline": {"name": "edges"}, "transform": {"image": "busybox:1.36",
                                                         "cmd": ["true"]},
            "input": {"pfs": {"repo": "images", "glob": "/*"}}}
    path = tmp_path / "edges.json"
    path.write_text(json.dumps(spec))
    one = list(yaml.safe_load_all(run_dsc("compile", str(path)).stdout))[1]
    spec["input"]["pfs"]["glob"] = "/*/*"  # type: ignore[index]
    path.write_text(json.dumps(spec))
    two = list(yaml.safe_load_all(run_dsc("compile", str(path)).stdout))[1]
    assert one["metadata"]["name"] != two["metadata"]["name"]
    assert one["metadata"]["name"].startswith("edges-")


def test_a_spec_with_errors_compiles_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"pipeline": {"name": "x"}, "input": {"pfs": {"repo": "r", "glob": "/[a"}}}')
    result = run_dsc("compile", str(path))
    assert result.exit_code == 1 and result.stdout == ""
    assert "[glob-syntax]" in result.stderr


def test_output_dir_writes_one_file_per_object(tmp_path: Path) -> None:
    result = run_dsc("compile", str(ROOT / "examples" / "hyperparameter"), "--output-dir",
                     str(tmp_path / "out"), "-o", "json")
    assert result.exit_code == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != ".dsc-compile")
    assert names[0] == "workflow-" + names[0][len("workflow-"):]
    assert names[1] == "workflowtemplate-hyperparameter.json"
    assert json.loads((tmp_path / "out" / names[1]).read_text())["kind"] == "List"


def test_generate_name_is_for_kubectl_create() -> None:
    result = run_dsc("compile", str(ROOT / "examples" / "hyperparameter"), "--generate-name")
    run = list(yaml.safe_load_all(result.stdout))[1]
    assert run["metadata"]["generateName"] == "hyperparameter-"
    assert "name" not in run["metadata"]


@pytest.mark.parametrize("case", ["template-braces", "err-stdin-without-err-cmd",
                                  "user-by-name", "pod-spec-and-pod-patch"])
def test_what_compile_refuses_in_a_spec_lint_finds_with_a_position(case: str) -> None:
    spec = ROOT / "tests" / "cases" / "invalid" / f"{case}.json"
    lint = run_dsc("lint", "-q", str(spec))
    compiled = run_dsc("compile", str(spec))
    assert lint.exit_code == compiled.exit_code == 1
    (error,) = [line for line in lint.stdout.splitlines() if ": error:" in line]
    assert error.startswith(f"{spec}:") and f"{spec}:0:0" not in error
    assert error in compiled.stderr and "<specs>:0:0" not in compiled.stderr
