"""Load every spec under the given paths, check them, and collect located diagnostics.

`load_specs` is the front end shared by `dsc lint` and the compiler: it returns the pipeline
models together with everything found on the way, so nothing is checked twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from compiler.diagnostics import Diagnostic, Finding, LintResult, Severity
from compiler.spec.checks import (
    feature_findings,
    graph_findings,
    legacy_markers,
    pipeline_findings,
)
from compiler.spec.loader import Document, LoadError, discover, read_documents
from compiler.spec.model import Pipeline
from compiler.spec.normalize import canonicalize, normalize
from compiler.spec.schema import Validator, load_schema
from compiler.spec.source import JsonPath, json_pointer

# Problems with the file itself, reported whatever else the spec does.
LOAD_CODES = frozenset({"duplicate-field"})


@dataclass(slots=True)
class LoadedSpecs:
    """The pipelines that could be modelled, and every diagnostic met on the way."""

    pipelines: list[Pipeline] = field(default_factory=list)
    result: LintResult = field(default_factory=LintResult)
    documents: dict[int, Document] = field(default_factory=dict)  # id(pipeline) -> its doc
    with_info: bool = True


@cache
def _validator() -> Validator:
    return Validator(load_schema())


def locate(doc: Document, finding: Finding) -> Diagnostic:
    line, col = doc.source.locate(finding.path, key=finding.at_key)
    return Diagnostic(doc.path, line, col, finding.severity, finding.code, finding.message,
                      json_pointer(finding.path))


def load_specs(paths: Iterable[Path], values: Mapping[str, Any] | None = None, *,
               with_info: bool = True) -> LoadedSpecs:
    """Every spec under `paths`, modelled and checked. `with_info=False` drops info notes
    before they are located (locating is most of the cost of a clean JSON file)."""
    loaded = LoadedSpecs(with_info=with_info)
    result = loaded.result
    for path in discover(paths):
        result.files += 1
        display = str(path)
        try:
            documents = read_documents(path, display, values or {})
        except LoadError as exc:
            result.add(Diagnostic(display, exc.line, exc.col, Severity.ERROR, exc.code,
                                  exc.message))
            if exc.code == "io-error":
                result.could_not_run = True
            continue
        for doc in documents:
            if isinstance(doc.data, list):
                for i, item in enumerate(doc.data):
                    _check_spec(loaded, doc, item, (i,))
            elif doc.data is not None:
                _check_spec(loaded, doc, doc.data, ())
    for pipeline, finding in graph_findings(loaded.pipelines):
        if with_info or finding.severity is not Severity.INFO:
            result.add(locate(loaded.documents[id(pipeline)], finding))
    return loaded


def _check_spec(loaded: LoadedSpecs, doc: Document, raw: Any, at: JsonPath) -> None:
    result = loaded.result
    findings: list[Finding] = []
    if not isinstance(raw, dict):
        findings.append(Finding(at, "not-a-spec", "expected a pipeline spec (a mapping with "
                                "`pipeline`, `transform` and `input`)"))
    elif "apiVersion" in raw and "kind" in raw:
        findings.append(Finding(at, "not-a-spec", (
            f"skipped: a Kubernetes {raw.get('kind')!s} object, not a pipeline spec"),
            Severity.INFO))
    elif legacy_markers(raw):
        marker = legacy_markers(raw)[0]
        findings.append(Finding((*at, *marker.split(".")), "unsupported", (
            f"dsc does not support the pre-1.4.6 spec dialect (`{marker}`; an `inputs` array "
            "with `method`/`partition`); rewrite it with `input` (pfs, cross, union)"),
            at_key=True))
    else:
        result.specs += 1
        findings.extend(Finding((*at, *v.path), v.code, v.message, at_key=v.at_key)
                        for v in _validator().violations(raw))
        spec = canonicalize(raw, at, findings)
        findings.extend(feature_findings(spec, at))
        pipeline = normalize(spec, path=doc.path, at=at, findings=findings)
        if pipeline is not None:
            findings.extend(pipeline_findings(pipeline, spec))
            loaded.pipelines.append(pipeline)
            loaded.documents[id(pipeline)] = doc
    if any(f.code == "unsupported" for f in findings):
        # A spec that needs a feature dsc cannot run is reported for that feature only: the
        # rest (a spout has no input, a tf_job no transform) follows from it.
        findings = [f for f in findings if f.code == "unsupported" or f.code in LOAD_CODES
                    or f.severity is Severity.INFO]
    for finding in findings:
        if loaded.with_info or finding.severity is not Severity.INFO:
            result.add(locate(doc, finding))


def lint_paths(paths: Iterable[Path], values: Mapping[str, Any] | None = None, *,
               with_info: bool = True) -> LintResult:
    return load_specs(paths, values, with_info=with_info).result
