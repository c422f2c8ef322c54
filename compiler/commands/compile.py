"""`dsc compile`: specs -> checked pipelines -> one graph -> Argo manifests as text."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.commands.console import Console
from compiler.commands.errors import CouldNotRun, UsageError
from compiler.config import Config
from compiler.diagnostics import Diagnostic, ExitCode, Finding, LintResult, Severity
from compiler.spec.lint import load_specs, locate
from compiler.spec.model import Pipeline

if TYPE_CHECKING:
    from compiler.commands.pins import PinResolver
    from compiler.spec.graph import Graph
    from compiler.spec.loader import Document


@dataclass(frozen=True, slots=True)
class CompileRequest:
    paths: tuple[Path, ...]
    values: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    generate_name: bool = False
    config: Config = field(default_factory=Config)
    pin: bool = False  # resolve source inputs now (needs a resolver)
    trigger: bool = False  # add the EventSource, Sensor and reconciler (issue 7)
    reprocess: str = ""  # the run's `reprocess` parameter (issue 16)


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



def graph_name(paths: tuple[Path, ...], pipelines: list[Pipeline]) -> str:
    """The default name: the one directory given, else the single pipeline, else `dsc`."""
    if len(paths) == 1 and paths[0].is_dir():
        return paths[0].resolve().name
    if len(pipelines) == 1:
        return pipelines[0].name
    return "dsc"


def load_graph(request: CompileRequest) -> tuple[LintResult, Graph | None]:
    """Check the specs as `dsc lint` does and, unless that finds errors, order them into the
    graph `dsc compile` builds."""
    result, graph, _documents = _load_graph(request)
    return result, graph


def _load_graph(request: CompileRequest
                ) -> tuple[LintResult, Graph | None, dict[str, tuple[Pipeline, Document]]]:
    """load_graph, and where each pipeline was read (to locate what `build` refuses)."""
    loaded = load_specs(request.paths, request.values, with_info=False)
    result = loaded.result
    config = request.config
    for pipeline, doc in zip(loaded.pipelines, loaded.documents, strict=True):
        if pipeline.parallelism.coefficient and config.nodes is None:
            result.add(locate(doc, Finding(
                (*pipeline.at, "parallelism_spec", "coefficient"), "assumed",
                "a coefficient multiplies the cluster's node count, which is not "
                "configured; assuming 1 node (set `nodes` in dsc.yaml or DSC_NODES)",
                severity=Severity.WARNING)))
    if not loaded.pipelines and result.exit_code() == 0:
        result.add(_unlocated("no pipeline specs in the paths given"))
    if result.exit_code() != 0:
        return result, None, {}
    from compiler.spec.graph import build_graph

    documents = {p.name: (p, doc) for p, doc in zip(loaded.pipelines, loaded.documents,
                                                    strict=True)}
    return result, build_graph(request.name or graph_name(request.paths, loaded.pipelines),
                               loaded.pipelines), documents


def compile_specs(request: CompileRequest, resolver: PinResolver | None = None) -> Compiled:
    """Check the specs as `dsc lint` does and, unless that finds errors, build the manifests.
    With `request.pin`, `resolver` pins the source inputs (compiler.commands.pins)."""
    result, graph, documents = _load_graph(request)
    if graph is None:
        return Compiled(result)
    from compiler.argo.build import CompileError, ReprocessError, build
    from compiler.commands.pins import PinError, resolve_pins

    config = request.config
    try:
        pins = None
        if request.pin:
            if resolver is None:
                raise CompileError("--pin needs a lakeFS to resolve the inputs against")
            pins = resolve_pins(graph, resolver, config)
        return Compiled(result, build(graph, config, generate_name=request.generate_name,
                                      pins=pins, trigger=request.trigger,
                                      reprocess=request.reprocess))
    except ReprocessError as exc:  # a bad --reprocess is a usage error (exit 2)
        result.add(Diagnostic("--reprocess", 0, 0, Severity.ERROR, REPROCESS_CODE, str(exc)))
        return Compiled(result)
    except CompileError as exc:
        if exc.pipeline in documents:
            pipeline, doc = documents[exc.pipeline]
            result.add(locate(doc, Finding((*pipeline.at, *exc.field), "compile", str(exc))))
        else:
            result.add(_unlocated(str(exc)))
        return Compiled(result)
    except PinError as exc:
        result.add(_unlocated(str(exc)))
        return Compiled(result)


REPROCESS_CODE = "reprocess"  # the diagnostic of a --reprocess naming what is not there


def _unlocated(message: str) -> Diagnostic:
    return Diagnostic("<specs>", 0, 0, Severity.ERROR, "compile", message)


def checked_graph(request: CompileRequest, console: Console) -> Graph | None:
    """The graph of the specs, with their findings on stderr; None when they hold errors
    (after the summary line: the command exits 1)."""
    result, graph = load_graph(request)
    console.diagnostics(result)
    if graph is None:
        console.refused(result)
    return graph


def graph_of(paths: tuple[Path, ...], *, graph_name: str | None, config_path: Path | None,
             sets: tuple[str, ...], values_files: tuple[Path, ...], console: Console,
             flags: Mapping[tuple[str, ...], Any] | None = None) -> tuple[Config, Graph | None]:
    """The template values, the configuration (with `flags`), and the checked graph of the
    specs (None when they hold errors), as `plan`, `gc` and `triggers` read them."""
    from compiler.commands.sources import configuration, template_values

    values = template_values(sets, values_files)
    config = configuration(config_path, flags)
    return config, checked_graph(CompileRequest(paths=paths, values=values, name=graph_name,
                                                config=config), console)


def compiled_or_refused(request: CompileRequest, console: Console,
                        resolver: PinResolver | None = None) -> list[dict[str, Any]] | int:
    """The manifests, with the specs' findings on stderr; or the exit code when they hold
    errors: 1, or 2 when what was wrong is a --reprocess option."""
    compiled = compile_specs(request, resolver)
    console.diagnostics(compiled.result)
    if compiled.documents is not None:
        return compiled.documents
    console.refused(compiled.result)
    if any(d.code == REPROCESS_CODE for d in compiled.result.diagnostics):
        return int(ExitCode.USAGE)
    return int(ExitCode.FINDINGS)


def compile_command(paths: tuple[Path, ...], *, graph_name: str | None, fmt: str,
                    output_dir: Path | None, generate_name: bool, config_path: Path | None,
                    pin: bool, trigger: bool, runtime_image: str | None,
                    lakefs_secret: str | None, default_branch: str | None,
                    namespace: str | None, reprocess: str, sets: tuple[str, ...],
                    values_files: tuple[Path, ...], console: Console) -> int:
    """`dsc compile`: the manifests on stdout (or one file per object in `output_dir`);
    the exit code."""
    from compiler.commands.sources import configuration, lakefs_client, template_values
    from compiler.store import LakeFSError

    if pin and trigger:
        raise UsageError("--pin fixes a run's inputs and --trigger runs the graph on every new "
                         "commit; use one of them")
    values = template_values(sets, values_files)
    config = configuration(config_path, {("runtime_image",): runtime_image,
                                         ("lakefs", "secret"): lakefs_secret,
                                         ("default_branch",): default_branch,
                                         ("namespace",): namespace})
    request = CompileRequest(paths=paths, values=values, name=graph_name,
                             generate_name=generate_name, config=config, pin=pin,
                             trigger=trigger, reprocess=reprocess)
    try:
        documents = compiled_or_refused(
            request, console, lakefs_client(config, "--pin: ") if pin else None)
    except LakeFSError as exc:
        raise CouldNotRun.store("--pin: ", exc) from None
    if isinstance(documents, int):
        return documents
    compiled = Compiled(LintResult(), documents)
    if output_dir is None:
        console.out.write(compiled.text(fmt))
        return int(ExitCode.CLEAN)
    from compiler.commands.output_dir import write_files

    try:
        done = write_files(output_dir, compiled.files(fmt))
    except OSError as exc:
        raise CouldNotRun(f"cannot write the manifests: {exc}") from None
    console.say(f"wrote {len(done.written)} files to {output_dir}")
    if done.removed:
        console.say(f"removed {len(done.removed)} file{'' if len(done.removed) == 1 else 's'} "
                    f"an earlier compile wrote there: {', '.join(done.removed)}")
    for name in done.kept:
        console.say(f"dsc: warning: {output_dir / name}: an earlier compile wrote it and it has "
                    f"changed since, so it stays; remove it before `kubectl apply -f "
                    f"{output_dir}`")
    return int(ExitCode.CLEAN)
