"""Load every spec under the given paths, check them, and collect located diagnostics.

`load_specs` is the front end shared by `dsc lint` and the compiler: it returns the pipeline
models together with everything found on the way, so nothing is checked twice.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from compiler.diagnostics import Diagnostic, Finding, LintResult, Severity
from compiler.spec.checks import (
    GraphNode,
    feature_findings,
    graph_findings,
    legacy_markers,
    pipeline_findings,
)
from compiler.spec.loader import (
    Document,
    LoadError,
    discover,
    read_documents,
)
from compiler.spec.model import Pipeline
from compiler.spec.normalize import canonicalize, drop_null_fields, normalize
from compiler.spec.schema import Validator, load_schema
from compiler.spec.source import JsonPath, canonical_key, json_pointer
from compiler.spec.values_input import TemplateReads, check_values_read

# Problems with the file itself, reported whatever else the spec does.
LOAD_CODES = frozenset({"duplicate-field"})


@dataclass(slots=True)
class LoadedSpecs:
    """Every diagnostic met on the way, and what the checks across specs need of each pipeline
    that could be modelled: its graph node and the document it came from. With `models`, also
    the pipelines themselves."""

    graph: list[GraphNode] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)  # documents[i] holds graph[i]
    pipelines: list[Pipeline] = field(default_factory=list)  # pipelines[i] is graph[i]
    file_index: list[int] = field(default_factory=list)  # graph[i] came from file N
    result: LintResult = field(default_factory=LintResult)
    reads: TemplateReads = field(default_factory=TemplateReads)  # what templates read
    with_info: bool = True
    models: bool = True


@cache
def _validator() -> Validator:
    return Validator(load_schema())


def locate(doc: Document, finding: Finding) -> Diagnostic:
    line, col = doc.source.locate(finding.path, key=finding.at_key)
    return Diagnostic(doc.path, line, col, finding.severity, finding.code, finding.message,
                      json_pointer(finding.path))


def load_specs(paths: Iterable[Path], values: Mapping[str, Any] | None = None, *,
               with_info: bool = True, models: bool = True, per_directory: bool = False,
               default_branch: str | None = None) -> LoadedSpecs:
    """Every spec under `paths`, modelled and checked.

    `with_info=False` drops info notes before they are located (locating is most of the cost
    of a clean JSON file). `models=False` keeps no pipeline models (all `dsc lint` needs is
    the diagnostics).
    A value of `values` that no template reads, or one rendered as text where it is a
    mapping, is raised as the values say (`TemplateValues.refuse`): a usage error.
    The checks across specs take every spec given as one graph (what `dsc compile` builds),
    or with `per_directory` the specs of each directory as a graph of its own (`dsc lint`).
    Given the configured `default_branch`, an input on a branch its upstream pipeline does
    not write is warned about.
    """
    files = list(enumerate(discover(paths)))
    loaded = LoadedSpecs(with_info=with_info, models=models)
    # Checking allocates a great many small objects and makes no reference cycles worth
    # collecting: cyclic garbage collection passing over them only costs time (5% of a run).
    collecting = gc.isenabled()
    gc.disable()
    try:
        _load_files(loaded, files, values or {})
        if values:
            check_values_read(values, loaded.reads)
        for members in _graphs(loaded, files, per_directory):
            for index, finding in graph_findings([loaded.graph[i] for i in members],
                                                 default_branch):
                if with_info or finding.severity is not Severity.INFO:
                    loaded.result.add(locate(loaded.documents[members[index]], finding))
    finally:
        if collecting:
            gc.enable()
    return loaded


def _graphs(loaded: LoadedSpecs, files: list[tuple[int, Path]],
            per_directory: bool) -> list[list[int]]:
    """The pipelines of each graph, as indices into `loaded.graph`, in file order.

    Per directory, the way users lay specs out and the way `dsc compile DIR` is pointed at
    them: a repository of examples keeps independent graphs, and alternative versions of one
    pipeline, in directories side by side, and none of them may collide with another.
    """
    if not per_directory:
        return [list(range(len(loaded.graph)))]
    directory_of = {index: os.path.abspath(path.parent) for index, path in files}
    graphs: dict[str, list[int]] = {}
    for i, file_index in enumerate(loaded.file_index):
        graphs.setdefault(directory_of[file_index], []).append(i)
    return list(graphs.values())


def _load_files(loaded: LoadedSpecs, files: list[tuple[int, Path]],
                values: Mapping[str, Any]) -> None:
    result = loaded.result
    for index, path in files:
        result.files += 1
        display = str(path)
        try:
            documents = read_documents(path, display, values, loaded.reads)
        except LoadError as exc:
            result.add(Diagnostic(display, exc.line, exc.col, Severity.ERROR, exc.code,
                                  exc.message))
            if exc.code == "io-error":
                result.could_not_run = True
            continue
        for doc in documents:
            data = doc.data
            if isinstance(data, list) and any(looks_like_spec(item) for item in data):
                for i, item in enumerate(data):
                    _check_spec(loaded, doc, item, (i,), index)
            elif isinstance(data, dict):
                _check_spec(loaded, doc, data, (), index)
            elif data is not None and loaded.with_info:
                what = ("a list holding no mapping with `pipeline`, `transform` or `input`"
                        if isinstance(data, list) else f"a {_KINDS.get(type(data), 'value')}, "
                        "where a spec is a mapping")
                result.add(locate(doc, Finding((), "not-a-spec", (
                    f"skipped: not a pipeline spec ({what})"), Severity.INFO)))


# The fields every pipeline spec has, one of which even a spec full of typos keeps.
SPEC_FIELDS = ("pipeline", "transform", "input")
_KINDS = {str: "string", int: "number", float: "number", bool: "boolean"}


def looks_like_spec(value: Any) -> bool:
    """Whether a document is meant as a pipeline spec: a mapping with `pipeline`, `transform`
    or `input`, or a near miss of one (`pipline`, `trasnform`), so that a spec with typos is
    checked and reported, while a package.json, a Helm values file or a docker-compose.yml
    lying among specs is not."""
    if not isinstance(value, dict):
        return False
    if any(key in value for key in SPEC_FIELDS):
        return True
    from difflib import get_close_matches

    return any(isinstance(key, str) and get_close_matches(
        canonical_key(key).lower(), SPEC_FIELDS, n=1, cutoff=0.8) for key in value)


def _check_spec(loaded: LoadedSpecs, doc: Document, raw: Any, at: JsonPath,
                file_index: int) -> None:
    result = loaded.result
    findings: list[Finding] = []
    if doc.nulls:
        raw = drop_null_fields(raw)
    if not isinstance(raw, dict):
        # An item of a list that holds specs: a mistake, not a file of something else.
        findings.append(Finding(at, "not-a-spec", "expected a pipeline spec (a mapping with "
                                "`pipeline`, `transform` and `input`)"))
    elif "apiVersion" in raw and "kind" in raw:
        findings.append(Finding(at, "not-a-spec", (
            f"skipped: a Kubernetes {raw.get('kind')!s} object, not a pipeline spec"),
            Severity.INFO))
    elif not looks_like_spec(raw):
        findings.append(Finding(at, "not-a-spec", (
            "skipped: not a pipeline spec (no `pipeline`, `transform` or `input` field)"),
            Severity.INFO))
    elif markers := legacy_markers(raw):
        marker = markers[0]
        findings.append(Finding((*at, *marker.split(".")), "unsupported", (
            f"dsc does not support the pre-1.4.6 spec dialect (`{marker}`; an `inputs` array "
            "with `method`/`partition`); rewrite it with `input` (pfs, cross, union)"),
            at_key=True))
    else:
        result.specs += 1
        findings.extend(Finding((*at, *v.path), v.code, v.message, at_key=v.at_key)
                        for v in _validator().violations(raw))
        spec = raw if doc.snake_case else canonicalize(raw, at, findings)
        findings.extend(feature_findings(spec, at))
        pipeline = normalize(spec, path=doc.path, at=at, findings=findings)
        if pipeline is not None:
            findings.extend(pipeline_findings(pipeline, spec))
            loaded.graph.append(GraphNode.of(pipeline))
            loaded.documents.append(doc)
            loaded.file_index.append(file_index)
            if loaded.models:
                loaded.pipelines.append(pipeline)
    if any(f.code == "unsupported" for f in findings):
        # A spec that needs a feature dsc cannot run is reported for that feature only: the
        # rest (a spout has no input, a tf_job no transform) follows from it.
        findings = [f for f in findings if f.code == "unsupported" or f.code in LOAD_CODES
                    or f.severity is Severity.INFO]
    for finding in findings:
        if loaded.with_info or finding.severity is not Severity.INFO:
            result.add(locate(doc, finding))


def lint_paths(paths: Iterable[Path], values: Mapping[str, Any] | None = None, *,
               with_info: bool = True, default_branch: str | None = None) -> LintResult:
    """What `dsc lint` reports: the specs of each directory are one graph; `default_branch`
    is the configured one (None: inputs' branches are not compared with their upstream's)."""
    return load_specs(paths, values, with_info=with_info, models=False,
                      per_directory=True, default_branch=default_branch).result
