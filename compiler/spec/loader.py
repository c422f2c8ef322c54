"""Read spec files (JSON, YAML, Jinja2 templates of either) into documents with positions."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.spec.source import (
    LineIndex,
    LoadError,
    SourceMap,
    template_line,
)

if TYPE_CHECKING:
    from compiler.spec.values_input import TemplateReads

__all__ = ["Document", "LoadError", "discover", "is_spec_file", "read_documents"]

# A pipeline spec is a few KiB; the largest corpus file is 13 KiB. Anything this big is not a
# spec, and refusing it keeps a pre-commit hook from stalling on a data file.
MAX_FILE_BYTES = 2 * 1024 * 1024

SPEC_SUFFIXES = (".json", ".yaml", ".yml")
TEMPLATE_SUFFIXES = (".j2", ".jinja")
JSONNET_SUFFIX = ".jsonnet"


@dataclass(frozen=True, slots=True)
class Document:
    """One top-level value of a file (a spec, or an array of specs) with its source map."""

    path: str
    data: Any
    source: SourceMap
    # True when no field name needs renaming to snake_case (`canonicalize` would return the
    # data as it is): known for free while reading, it spares a walk over every spec.
    snake_case: bool = False
    # False when the document surely sets no field to null (`drop_null_fields` would return
    # the data as it is), known as cheaply.
    nulls: bool = True

def _rendered_name(path: Path) -> tuple[str, bool]:
    """The lowercased name the file has once rendered (`a.json.j2` -> `a.json`), and whether
    it is a Jinja2 template."""
    name = path.name.lower()
    if name.endswith(TEMPLATE_SUFFIXES):
        return name.rsplit(".", 1)[0], True
    return name, False


def is_spec_file(path: Path) -> bool:
    """Whether a directory walk reads the file: JSON and YAML, plain or as Jinja2 templates.

    A `.jsonnet` file is read only when named: dsc refuses Jsonnet, and a directory holding
    Pachyderm's examples (which keep a Jsonnet twin beside many specs) must not fail for it.
    """
    return _rendered_name(path)[0].endswith(SPEC_SUFFIXES)


def discover(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named on the command line as given; directories walked for spec files, sorted,
    skipping hidden directories (`.git`, `.venv`)."""
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                candidate = Path(root, name)
                if is_spec_file(candidate):
                    yield candidate


def read_documents(path: Path, display: str, values: Mapping[str, Any],
                   reads: TemplateReads | None = None) -> list[Document]:
    """Every document of one file. Raises LoadError for a file that is not specs at all.

    What a template reads of `values` is added to `reads`; a template that cannot be read
    or parsed makes it incomplete.
    """
    name, template = _rendered_name(path)
    if name.endswith(JSONNET_SUFFIX):
        raise LoadError(
            "dsc does not support Jsonnet pipeline templates (`pachctl create pipeline "
            "--jsonnet`); render them with `jsonnet` first, or write a Jinja2 template (.j2)",
            "unsupported")
    try:
        text = _read_text(path)
    except LoadError:
        if template and reads is not None:
            reads.complete = False
        raise
    template_lines = None
    if template:
        from compiler.spec.template import render

        rendered = render(text, values, display, reads)
        text, template_lines = rendered.text, rendered.template_lines
    as_json = name.endswith(".json") or text.lstrip()[:1] in ("{", "[")
    if name.endswith((".yaml", ".yml")) and text.lstrip()[:1] == "[":
        as_json = False  # a YAML flow sequence; Pachyderm only sniffs "{" for JSON
    try:
        return (_json_documents if as_json else _yaml_documents)(text, display, template_lines)
    except LoadError as exc:
        if template_lines is not None:  # a rendered template: say which template line it was
            exc.line = template_line(template_lines, exc.line)
        raise


def _read_text(path: Path) -> str:
    try:
        raw = _read_capped(path)
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}", "io-error") from None
    if len(raw) > MAX_FILE_BYTES:
        raise LoadError(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; "
                        "a pipeline spec is a few KiB", "file-too-large")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8", "replace")
        line, col = LineIndex.position_in(prefix, len(prefix))
        raise LoadError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", "encoding",
                        line, col) from None


def _read_capped(path: Path) -> bytes:
    """The file's bytes, at most MAX_FILE_BYTES + 1 of them. Asks for the size the file says
    it has, not for the cap: a 2 MiB read buffer per file cost more than reading a spec."""
    limit = MAX_FILE_BYTES + 1
    fd = os.open(path, os.O_RDONLY)
    try:
        raw = os.read(fd, min(os.fstat(fd).st_size + 1, limit))
        # A pipe or a growing file says less than it holds: read on to EOF or the cap.
        while raw and len(raw) < limit:
            more = os.read(fd, limit - len(raw))
            if not more:
                break
            raw += more
    finally:
        os.close(fd)
    return raw


def _json_documents(text: str, display: str,
                    template_lines: tuple[int, ...] | None) -> list[Document]:
    from compiler.spec.jsonsource import (
        JsonPositions,
        JsonSyntaxError,
        decode_documents,
        snake_case_keys,
    )

    docs = []
    try:
        for value, start, end in decode_documents(text):
            docs.append(Document(display, value, SourceMap(
                LineIndex.position_in(text, start), JsonPositions(text, start), template_lines),
                snake_case_keys(text, start, end), text.find("null", start, end) >= 0))
    except JsonSyntaxError as exc:
        raise LoadError(exc.message, exc.code, *LineIndex.position_in(text, exc.offset)) from None
    return docs


def _yaml_documents(text: str, display: str,
                    template_lines: tuple[int, ...] | None) -> list[Document]:
    from compiler.spec.yamlsource import compose_documents

    return [Document(display, value, SourceMap(origin, index, template_lines), snake_case, nulls)
            for value, index, origin, snake_case, nulls in compose_documents(text)]
