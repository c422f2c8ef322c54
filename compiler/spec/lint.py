"""Load every spec under the given paths, check them, and collect located diagnostics.

`load_specs` is the front end shared by `dsc lint` and the compiler: it returns the pipeline
models together with everything found on the way, so nothing is checked twice.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
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
    PortableDocument,
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


# Below this many files a second process costs more than it saves (fork, sending results).
PARALLEL_MIN_FILES = 100


@dataclass(slots=True)
class LoadedSpecs:
    """Every diagnostic met on the way, and what the checks across specs need of each pipeline
    that could be modelled: its graph node and the document it came from. With `models`, also
    the pipelines themselves. Documents checked in a forked worker keep their source map but
    not their values (`data` is None): the models hold what later stages need."""

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
               with_info: bool = True, jobs: int | None = None,
               models: bool = True, per_directory: bool = False,
               default_branch: str | None = None) -> LoadedSpecs:
    """Every spec under `paths`, modelled and checked.

    `with_info=False` drops info notes before they are located (locating is most of the cost
    of a clean JSON file). `jobs` processes check files in parallel (None: one per CPU for
    large batches); results are merged in file order, so the output does not depend on it.
    `models=False` keeps no pipeline models (all `dsc lint` needs is the diagnostics).
    A value of `values` that no template reads, or one rendered as text where it is a
    mapping, is raised as the values say (`TemplateValues.refuse`): a usage error.
    The checks across specs take every spec given as one graph (what `dsc compile` builds),
    or with `per_directory` the specs of each directory as a graph of its own (`dsc lint`).
    Given the configured `default_branch`, an input on a branch its upstream pipeline does
    not write is warned about.
    """
    files = list(enumerate(discover(paths)))
    workers = _workers(len(files), jobs)
    loaded = LoadedSpecs(with_info=with_info, models=models)
    # Checking allocates a great many small objects and makes no reference cycles worth
    # collecting: cyclic garbage collection passing over them only costs time (5% of a run).
    collecting = gc.isenabled()
    gc.disable()
    try:
        if workers > 1:
            loaded = _parallel(files, values or {}, with_info, models, workers)
        else:
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


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS says)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def _workers(files: int, jobs: int | None) -> int:
    if jobs is None:
        if files < PARALLEL_MIN_FILES:
            return 1
        jobs = available_cpus()
    return max(1, min(jobs, files, 8)) if hasattr(os, "fork") else 1


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


_SEVERITIES = {s.value: s for s in Severity}


# Which files a worker checked, each with the number of diagnostics it had after that file.
Checked = list[tuple[int, int]]


def _portable(part: LoadedSpecs, checked: Checked) -> tuple[Any, ...]:
    """A forked worker's results as plain data for `marshal` (much faster than pickling
    dataclasses); the models, only when asked for, are pickled."""
    documents: dict[int, int] = {}  # one entry per document, however many specs it holds
    portable_docs: list[PortableDocument] = []
    doc_refs: list[int] = []
    for doc in part.documents:
        ref = documents.get(id(doc))
        if ref is None:
            ref = documents[id(doc)] = len(portable_docs)
            portable_docs.append(doc.portable())
        doc_refs.append(ref)
    models = None
    if part.models:
        import pickle

        models = pickle.dumps([replace(d, data=None) for d in part.documents], protocol=5), (
            pickle.dumps(part.pipelines, protocol=5))
    result = part.result
    reads = part.reads
    return (
        checked,
        [(d.path, d.line, d.col, d.severity.value, d.code, d.message, d.json_path)
         for d in result.diagnostics],
        result.specs, result.could_not_run,
        [(n.name, n.path, n.at, n.repos, n.pfs_repos, n.output_branch) for n in part.graph],
        portable_docs, doc_refs, part.file_index, models,
        (sorted(reads.paths), reads.templates, reads.complete),
    )


def _from_portable(data: tuple[Any, ...], with_info: bool,
                   models: bool) -> tuple[LoadedSpecs, Checked]:
    (checked, diagnostics, specs, could_not_run, graph, portable_docs, doc_refs, file_index,
     pickled, (read_paths, templates, complete)) = data
    part = LoadedSpecs(with_info=with_info, models=models)
    part.result.diagnostics = [
        Diagnostic(path, line, col, _SEVERITIES[severity], code, message, json_path)
        for path, line, col, severity, code, message, json_path in diagnostics]
    part.result.files, part.result.specs = len(checked), specs
    part.result.could_not_run = could_not_run
    part.graph = [GraphNode(*node) for node in graph]
    if models:
        import pickle

        part.documents = pickle.loads(pickled[0])
        part.pipelines = pickle.loads(pickled[1])
    else:
        docs = [Document.from_portable(d) for d in portable_docs]
        part.documents = [docs[ref] for ref in doc_refs]
    part.file_index = file_index
    part.reads = TemplateReads(set(read_paths), templates, complete)
    return part, checked


def _check_files(part: LoadedSpecs, files: list[tuple[int, Path]], values: Mapping[str, Any],
                 checked: Checked) -> None:
    for file in files:
        _load_files(part, [file], values)
        checked.append((file[0], len(part.result.diagnostics)))


# Chunks submitted per worker: enough that a worker on a slower or busier core takes fewer,
# few enough that sending them and their results costs little.
_CHUNKS_PER_WORKER = 8

# What a pool worker checks with: set once in each worker by `_start_worker`.
_worker_state: tuple[Mapping[str, Any], bool, bool] | None = None


def _start_worker(values: Mapping[str, Any], with_info: bool, models: bool) -> None:
    global _worker_state
    _worker_state = (values, with_info, models)


def _check_chunk(files: list[tuple[int, Path]]) -> bytes:
    """In a pool worker: check `files` and return the results as `marshal` bytes."""
    import marshal

    assert _worker_state is not None
    values, with_info, models = _worker_state
    part = LoadedSpecs(with_info=with_info, models=models)
    checked: Checked = []
    _check_files(part, files, values, checked)
    return marshal.dumps(_portable(part, checked))


def _parallel(files: list[tuple[int, Path]], values: Mapping[str, Any], with_info: bool,
              models: bool, workers: int) -> LoadedSpecs:
    """Check `files` in a pool of `workers` forked processes, chunk by chunk, and merge what
    they found in file order.

    Forked, the workers share the loaded modules (and `values`, which need not pickle). A
    chunk whose worker failed, for any reason, is checked here: parallelism may never change
    the answer.
    """
    import marshal
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    size = max(1, -(-len(files) // (workers * _CHUNKS_PER_WORKER)))
    chunks = [files[i:i + size] for i in range(0, len(files), size)]
    parts: list[tuple[LoadedSpecs, Checked]] = []
    missed: list[tuple[int, Path]] = []
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=_start_worker,
                             initargs=(values, with_info, models)) as pool:
        futures = [(chunk, pool.submit(_check_chunk, chunk)) for chunk in chunks]
        for chunk, future in futures:
            try:
                parts.append(_from_portable(marshal.loads(future.result()), with_info, models))
            except Exception:
                missed.extend(chunk)
    if missed:
        redone = LoadedSpecs(with_info=with_info, models=models)
        redone_checked: Checked = []
        _check_files(redone, missed, values, redone_checked)
        parts.append((redone, redone_checked))
    return _merged(parts, with_info, models)


def _merged(parts: list[tuple[LoadedSpecs, Checked]], with_info: bool,
            models: bool) -> LoadedSpecs:
    """The workers' results as one, in file order: exactly what a serial run builds."""
    loaded = LoadedSpecs(with_info=with_info, models=models)
    result = loaded.result
    diagnostics: dict[int, list[Diagnostic]] = {}
    for part, checked in parts:
        start = 0
        for index, end in checked:
            diagnostics[index] = part.result.diagnostics[start:end]
            start = end
        result.files += part.result.files
        result.specs += part.result.specs
        result.could_not_run |= part.result.could_not_run
        loaded.reads.merge(part.reads)
    for index in sorted(diagnostics):
        result.diagnostics.extend(diagnostics[index])
    # A stable order: one file's pipelines are all in one part, already in order.
    order = sorted((file_index, p, i) for p, (part, _) in enumerate(parts)
                   for i, file_index in enumerate(part.file_index))
    for file_index, p, i in order:
        part = parts[p][0]
        loaded.graph.append(part.graph[i])
        loaded.documents.append(part.documents[i])
        loaded.file_index.append(file_index)
        if models:
            loaded.pipelines.append(part.pipelines[i])
    return loaded


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
               with_info: bool = True, jobs: int | None = None,
               default_branch: str | None = None) -> LintResult:
    """What `dsc lint` reports: the specs of each directory are one graph; `default_branch`
    is the configured one (None: inputs' branches are not compared with their upstream's)."""
    return load_specs(paths, values, with_info=with_info, jobs=jobs, models=False,
                      per_directory=True, default_branch=default_branch).result
