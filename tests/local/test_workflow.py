"""`dsc run` reads back exactly the subset of Argo that dsc emits, and names anything else."""

from __future__ import annotations

import copy

import pytest

from compiler.commands.compile import CompileRequest, compile_specs
from compiler.local.workflow import Unsupported, load_program, parse_depends, substitute
from tests.conftest import ROOT

HYPERPARAMETER = ROOT / "examples" / "hyperparameter" / "pipelines"


@pytest.fixture(scope="module")
def documents():
    compiled = compile_specs(CompileRequest(paths=(HYPERPARAMETER,)))
    assert compiled.documents is not None
    return compiled.documents


def test_the_compiled_seed_graph_loads(documents):
    program = load_program(documents)
    assert program.entrypoint == "main"
    assert program.on_exit == "abort"
    assert program.owner == "pipelines"
    names = {name for _owner, name in program.templates}
    assert {"main", "abort", "model", "open", "model-worker", "commit"} <= names


def _template(docs, name):
    spec = next(d for d in docs if d["kind"] == "WorkflowTemplate")["spec"]
    return next(t for t in spec["templates"] if t["name"] == name)


@pytest.mark.parametrize(("change", "named"), [
    (lambda d: _template(d, "model-worker").update(podSpecPatch="{}"), "`podSpecPatch`"),
    (lambda d: _template(d, "main").update(steps=[]), "`steps`"),
    (lambda d: _template(d, "model")["dag"]["tasks"][1].update(withSequence={"count": "3"}),
     "`withSequence`"),
    (lambda d: _template(d, "model")["dag"]["tasks"][2].update(depends="work.Daemoned"),
     "`.Daemoned`"),
    (lambda d: _template(d, "model-worker")["retryStrategy"].update(retryPolicy="Sometimes"),
     "retryPolicy `Sometimes`"),
    (lambda d: _template(d, "model-worker").update(sidecars=[]), "`sidecars`"),
    (lambda d: _template(d, "model-worker")["initContainers"][0].update(lifecycle={}),
     "`lifecycle`"),
    (lambda d: _template(d, "open")["container"].update(lifecycle={}), "`lifecycle`"),
    (lambda d: d.append({"kind": "Sensor", "apiVersion": "argoproj.io/v1alpha1",
                         "metadata": {"name": "s"}}), "`kind: Sensor`"),
])
def test_a_construct_outside_the_subset_is_rejected_by_name(documents, change, named):
    docs = copy.deepcopy(documents)
    change(docs)
    with pytest.raises(Unsupported, match=named.replace("`", ".").replace("(", r"\(")):
        load_program(docs)


def test_the_rejection_says_where(documents):
    docs = copy.deepcopy(documents)
    _template(docs, "model-worker").update(podSpecPatch="{}")
    with pytest.raises(Unsupported) as caught:
        load_program(docs)
    assert "WorkflowTemplate pipelines.spec.templates[model-worker]: `podSpecPatch`" in str(
        caught.value)


@pytest.mark.parametrize(("text", "done", "expected"), [
    ("a", {}, None),
    ("a", {"a": "Succeeded"}, True),
    ("a", {"a": "Skipped"}, True),
    ("a", {"a": "Failed"}, False),
    ("a && b", {"a": "Succeeded"}, None),
    ("a && b", {"a": "Failed"}, False),
    ("a && b", {"a": "Succeeded", "b": "Succeeded"}, True),
    ("a || b", {"b": "Succeeded"}, True),
    ("a.Failed || (b && !c)", {"a": "Succeeded", "b": "Succeeded", "c": "Failed"}, True),
    ("a.Failed", {"a": "Succeeded"}, False),
    ("model && split-pipeline", {"model": "Succeeded", "split-pipeline": "Succeeded"}, True),
])
def test_depends_follows_argo(text, done, expected):
    test, _names = parse_depends(text, "here")
    assert test(done) is expected


@pytest.mark.parametrize("text", ["a &&", "(a", "a b", "a.Succeeded.x", "a & b"])
def test_a_depends_it_cannot_read_is_named(text):
    with pytest.raises(Unsupported, match="depends"):
        parse_depends(text, "here")


def test_an_unknown_variable_is_named():
    assert substitute("{{item}}-{{ inputs.parameters.x }}", {"item": "1",
                                                            "inputs.parameters.x": "y"},
                      "t") == "1-y"
    with pytest.raises(Unsupported, match=r"\{\{workflow.labels.x\}\}"):
        substitute("{{workflow.labels.x}}", {}, "t")
