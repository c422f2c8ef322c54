"""`dsc compile` at the limits Argo and Kubernetes set: names at their longest, a graph at
Argo's 200 templates an object, sections halved until each fits the size budget. Each test
pins a number a user meets (an object Argo refuses, a name Kubernetes refuses), chosen so a
limit one off either way fails it (tests/README.md, the mutation sample)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from compiler.argo.emit import to_json
from compiler.commands.compile import CompileRequest, compile_specs
from compiler.config import Config
from tests.test_compile_graph import documents, spec, templates, write

# Kubernetes object names, and the label values Argo copies them into: at most 63.
K8S_NAME = 63
# what the API server appends to a generateName (5 random characters)
GENERATED_SUFFIX = 5


def chain(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [spec("p000", "raw", **extra)] + [
        spec(f"p{i:03d}", f"p{i - 1:03d}", **extra) for i in range(1, count)]


def workflow_templates(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "WorkflowTemplate"]


# --- names -------------------------------------------------------------------------------------

def test_a_long_graph_names_generate_name_leaves_room_for_the_random_suffix(
        tmp_path: Path) -> None:
    """`--generate-name` (kubectl create): the API server appends 5 characters, and the run's
    name must stay a 63-character name; the generateName uses all of the rest."""
    name = "a-graph-whose-name-is-far-longer-than-any-kubernetes-object-name-may-be"
    d = write(tmp_path / name, spec("solo", "raw"))
    run = documents(d, req={"generate_name": True})[-1]
    generate = run["metadata"]["generateName"]
    assert "name" not in run["metadata"]
    assert len(generate) + GENERATED_SUFFIX == K8S_NAME
    assert generate.endswith("-") and re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{6}-", generate)
    assert generate.startswith("a-graph-whose-name-is-far-longer-than-any")


def test_a_long_graph_names_run_is_a_whole_kubernetes_name_ending_in_the_hash(
        tmp_path: Path) -> None:
    name = "a-graph-whose-name-is-far-longer-than-any-kubernetes-object-name-may-be"
    docs = documents(write(tmp_path / name, spec("solo", "raw")))
    template, run = docs
    digest = run["metadata"]["labels"]["dsc.io/template-hash"]
    assert len(template["metadata"]["name"]) == K8S_NAME
    assert len(run["metadata"]["name"]) == K8S_NAME
    assert run["metadata"]["name"].endswith("-" + digest)


# --- Argo's 200 templates an object ----------------------------------------------------------

ROOMY = Config(size_budget=4 * 1024 * 1024, stored_budget=16 * 1024 * 1024)


def test_98_pipelines_fill_one_object_to_argos_200_templates(tmp_path: Path) -> None:
    """Each pipeline is two templates (its DAG and its worker pod); every object has `main`,
    `abort`, `open` and `commit`: 98 pipelines are 200 templates, the most Argo's CRD allows,
    and still one WorkflowTemplate when the size budget allows it."""
    docs = documents(write(tmp_path, *chain(98)), ROOMY)
    (template,) = workflow_templates(docs)
    assert len(template["spec"]["templates"]) == 200
    assert len(templates(template)["main"]["dag"]["tasks"]) == 98


def test_99_pipelines_are_split_so_no_object_passes_200_templates(tmp_path: Path) -> None:
    docs = documents(write(tmp_path, *chain(99)), ROOMY)
    main, *sections = workflow_templates(docs)
    # a section has `section`, `open` and `commit` besides its pipelines' (`abort` is main's)
    assert [len(s["spec"]["templates"]) for s in sections] == [98 * 2 + 3, 1 * 2 + 3]
    assert max(len(d["spec"]["templates"]) for d in workflow_templates(docs)) <= 200
    assert [t["name"] for t in templates(main)["main"]["dag"]["tasks"]] == ["part-1", "part-2"]


# --- the size budget ---------------------------------------------------------------------------

def test_a_section_over_the_size_budget_is_halved_until_every_object_fits(
        tmp_path: Path) -> None:
    """The first section sizes the others; when a later one is bigger (here the last 20
    pipelines carry 4 KB of `stdin` each), sections are halved until every object fits."""
    small = chain(120)
    for s in small[100:]:
        s["transform"]["stdin"] = [f"echo {'x' * 4000}"]
    budget = 120_000
    docs = documents(write(tmp_path, *small), Config(size_budget=budget,
                                                     stored_budget=16 * 1024 * 1024))
    objects = workflow_templates(docs)
    sizes = [len(to_json([d], compact=True)) for d in objects]
    assert max(sizes) <= budget
    per_section = [len(templates(d)["section"]["dag"]["tasks"]) for d in objects[1:]]
    assert sum(per_section) == 120
    # the probe (the first 98) gave sections of 41; the one holding the big pipelines did
    # not fit, nor at 20: 10 a section fit
    assert per_section == [10] * 12


def test_pipelines_each_over_the_size_budget_are_refused_not_split_forever(
        tmp_path: Path) -> None:
    """Halving stops at one pipeline a section: if that does not fit, compile says so."""
    big = [spec("first", "raw"), spec("second", "first")]
    for s in big:
        s["transform"]["stdin"] = [f"echo {'x' * 4000}"]
    compiled = compile_specs(CompileRequest(paths=(write(tmp_path, *big),),
                                            config=Config(size_budget=4000)))
    assert compiled.documents is None
    (error,) = compiled.result.diagnostics
    assert re.search(r"WorkflowTemplate `[a-z0-9-]+` would be [0-9,]+ bytes, over the size "
                     r"budget of 4,000; raise `limits.size_budget` in dsc.yaml", error.message)


# --- workers -----------------------------------------------------------------------------------

def test_a_pipeline_may_ask_for_exactly_the_most_workers_allowed(tmp_path: Path) -> None:
    """`limits.max_workers` is the most a pipeline may run: asking for it compiles, one more
    is refused (tests/test_compile_graph.py)."""
    d = write(tmp_path, spec("wide", "raw", parallelism_spec={"constant": 1000}))
    (template, _run) = documents(d)
    job = json.loads(next(p["value"] for p in templates(template)["wide"]["inputs"]["parameters"]
                          if p["name"] == "job"))
    assert job["workers"] == 1000
