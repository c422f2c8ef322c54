"""`dsc compile`: specs -> checked pipelines -> one graph -> Argo manifests as text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.diagnostics import Diagnostic, Finding, LintResult, Severity
from compiler.spec.lint import load_specs, locate
from compiler.spec.model import Pipeline


@dataclass(frozen=True, slots=True)
class CompileRequest:
    paths: tuple[Path, ...]
    values: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    generate_name: bool = False
    runtime_image: str | None = None
    lakefs_secret: str | None = None
    default_branch: str | None = None


@dataclass(slots=True)
class Compiled:
    """The diagnostics, and (unless they hold errors) the manifests as plain data."""

    result: LintResult
    documents: list[dict[str, Any]] | None = None

    def text(self, fmt: str) -> str:
        """All documents: YAML separated by `---`, or one JSON `kind: List`."""
        from compiler.argo.emit import to_json, to_yaml

        docs = self.documents or []
        return to_json(docs) if fmt == "json" else to_yaml(docs)

    def files(self, fmt: str) -> dict[str, str]:
        """One file per object, named `<kind>-<name>.<fmt>`."""
        from compiler.argo.emit import to_json, to_yaml

        out: dict[str, str] = {}
        for doc in self.documents or []:
            meta = doc["metadata"]
            name = meta.get("name") or meta["generateName"].rstrip("-")
            out[f"{doc['kind'].lower()}-{name}.{fmt}"] = (
                to_json([doc]) if fmt == "json" else to_yaml([doc]))
        return out


# Fields lint accepts but the compiler cannot honour faithfully yet: refused by name.
_NOT_YET = {
    "err_cmd": "`transform.err_cmd` (recovering a failed datum) is not compiled yet",
    "err_stdin": "`transform.err_stdin` (recovering a failed datum) is not compiled yet",
}


def graph_name(paths: tuple[Path, ...], pipelines: list[Pipeline]) -> str:
    """The default name: the one directory given, else the single pipeline, else `dsc`."""
    if len(paths) == 1 and paths[0].is_dir():
        return paths[0].resolve().name
    if len(pipelines) == 1:
        return pipelines[0].name
    return "dsc"


def compile_specs(request: CompileRequest) -> Compiled:
    loaded = load_specs(request.paths, request.values, with_info=False, jobs=1)
    result = loaded.result
    for pipeline, doc in zip(loaded.pipelines, loaded.documents, strict=True):
        for key, why in _NOT_YET.items():
            if getattr(pipeline.transform, key):
                result.add(locate(doc, Finding((*pipeline.at, "transform", key),
                                               "unsupported", f"dsc: {why}", at_key=True)))
        if pipeline.pod_patch:
            result.add(locate(doc, Finding((*pipeline.at, "pod_patch"), "unsupported", (
                "`pod_patch` (a JSON patch) is not compiled yet; write it as `pod_spec` "
                "(a merge patch), which becomes Argo's podSpecPatch"), at_key=True)))
    if not loaded.pipelines and result.exit_code() == 0:
        result.add(_unlocated("no pipeline specs in the paths given"))
    if result.exit_code() != 0:
        return Compiled(result)
    from compiler.argo.build import CompileConfig, CompileError, build
    from compiler.argo.graph import build_graph

    defaults = CompileConfig()
    config = CompileConfig(
        runtime_image=request.runtime_image or defaults.runtime_image,
        lakefs_secret=request.lakefs_secret or defaults.lakefs_secret,
        default_branch=request.default_branch or defaults.default_branch)
    graph = build_graph(request.name or graph_name(request.paths, loaded.pipelines),
                        loaded.pipelines)
    try:
        return Compiled(result, build(graph, config, generate_name=request.generate_name))
    except CompileError as exc:
        result.add(_unlocated(str(exc)))
        return Compiled(result)


def _unlocated(message: str) -> Diagnostic:
    return Diagnostic("<specs>", 0, 0, Severity.ERROR, "compile", message)
