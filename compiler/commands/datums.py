"""`dsc datums`: one pipeline's datums over a listing file, a data directory or a lakeFS, before
any run, as a table or JSON.

The listing adapters here are the only I/O; planning itself is `compiler.datums.plan`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from compiler.commands.console import Console, isatty
from compiler.commands.errors import CouldNotRun, UsageError
from compiler.datums.glob import GlobError, compile_glob, template_references
from compiler.datums.plan import Datum, plan_datums, sources, spell
from compiler.diagnostics import Diagnostic, ExitCode, Finding, LintResult, Severity
from compiler.spec.datum_input import datum_input
from compiler.spec.lint import load_specs, locate
from compiler.spec.model import PfsInput, Pipeline

# Features dsc compile refuses whose datums are still Pachyderm's to define: previewed, with
# the refusal shown as a warning. Anything else `unsupported` inside an input (git inputs,
# 2.12 `reference` inputs, placeholders) leaves nothing well-defined to preview.
_PREVIEWABLE_UNSUPPORTED = re.compile(r"(^|/)input/.*/(s3|trigger)$|^(?!(/\d+)?/input/)")



def datums(paths: tuple[Path, ...], *, pipeline: str | None, from_dir: Path | None,
           listing_file: Path | None, from_lakefs: bool, config_path: Path | None,
           fmt: str | None, count_only: bool, dialect: str | None, sets: tuple[str, ...],
           values_files: tuple[Path, ...], console: Console) -> int:
    """The datums on stdout (what read where, and the spec's findings, on stderr); the exit
    code."""
    from compiler.commands.sources import configuration, lakefs_client, template_values
    from compiler.store import LakeFSError

    if sum((from_dir is not None, listing_file is not None, from_lakefs)) != 1:
        raise UsageError("give the data as exactly one of --data DIR, --listing FILE or "
                         "--lakefs")
    values = template_values(sets, values_files)
    source: DataDir | LakeFSData | dict[str, list[str]]
    if from_lakefs:
        config = configuration(config_path)
        source = LakeFSData(lakefs_client(config, "--lakefs: "), config.lakefs_repo,
                            config.default_branch)
    elif listing_file is not None:
        try:
            source = read_listing(listing_file)
        except ListingError as exc:
            raise UsageError(str(exc), "--listing") from None
        except OSError as exc:
            raise CouldNotRun(f"cannot read the listing: {exc}") from None
    else:
        assert from_dir is not None
        source = DataDir(from_dir)
    try:
        preview = preview_datums(paths, source, pipeline=pipeline, dialect=dialect,
                                 values=values)
    except LakeFSError as exc:
        raise CouldNotRun.store("--lakefs: ", exc) from None
    except SelectionError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise CouldNotRun(f"cannot read the data directory: {exc}") from None
    result = preview.result
    console.diagnostics(result)
    code = result.exit_code()
    if code or preview.pipeline is None:
        if result.diagnostics:
            console.refused(result)
        return int(code)
    if isinstance(source, LakeFSData):
        for repo, name, branch, commit in source.read:
            console.say(f"dsc: repo `{repo}`: lakeFS {name}@{branch} at {commit}")
    for repo in preview.empty_repos:
        where = (f"{from_dir}/{repo}/" if from_dir is not None else f"{listing_file}"
                 if listing_file is not None else "lakeFS (no such repository or branch)")
        console.say(f"dsc: warning: repo `{repo}` is not in {where}; read as an empty repo")
    if count_only:
        console.print(str(sum(1 for _ in preview.datums)))
        return int(ExitCode.CLEAN)
    fmt = fmt or ("table" if isatty(console.out) else "json")
    shown = render_datums(preview.datums, fmt, console.out, dialect=preview.dialect)
    if fmt == "table":
        console.say(f"{shown} datum{'' if shown == 1 else 's'} for pipeline "
                    f"`{preview.pipeline.name}`")
    return int(ExitCode.CLEAN)


DATUM_FORMATS = ("table", "json")
SHORT_ID = 12


def render_datums(datums: Iterable[Datum], fmt: str, out: TextIO, *, dialect: str) -> int:
    """Write datums as they come (a million of them never sit in memory); return how many.

    json: `[{"id", "inputs": [{"name", "repo", "path"}]}, ...]`. table: number, the first 12
    hex digits of the ID, then `name:path` for each path of the datum.
    """
    count = 0
    if fmt == "json":
        # Each source's name and repo are encoded once; a datum costs its ID and its paths.
        heads: dict[int, str] = {}
        encode = json.JSONEncoder(ensure_ascii=False).encode
        out.write("[")
        for datum in datums:
            items = []
            for m in datum.matches:
                head = heads.get(id(m.source))
                if head is None:
                    head = heads[id(m.source)] = (
                        f'{{"name": {encode(m.source.name)}, "repo": {encode(m.source.repo)}, '
                        '"path": ')
                items.append(head + encode(spell(m.path, dialect)) + "}")
            out.write(",\n  " if count else "\n  ")
            out.write(f'{{"id": "{datum.id}", "inputs": [{", ".join(items)}]}}')
            count += 1
        out.write("\n]\n" if count else "]\n")
        return count
    for datum in datums:
        count += 1
        if count == 1:
            out.write(f"{'#':>5}  {'ID':<{SHORT_ID}}  INPUTS\n")
        paths = "  ".join(f"{m.source.name}:{spell(m.path, dialect)}" for m in datum.matches)
        out.write(f"{count:>5}  {datum.id[:SHORT_ID]}  {paths}\n")
    return count


class ListingError(ValueError):
    """A listing that is not `{"repo": ["/path", ...]}` (a usage error: exit 2)."""


class SelectionError(ValueError):
    """No pipeline, or not one pipeline, to preview (a usage error: exit 2)."""


@dataclass(slots=True)
class Preview:
    """What `dsc datums` shows: the spec's diagnostics, then (unless they hold errors) the
    datums of one pipeline, produced lazily, and notes about repos the listing lacks."""

    result: LintResult
    pipeline: Pipeline | None = None
    datums: Iterator[Datum] = field(default_factory=lambda: iter(()))
    dialect: str = "2.x"
    empty_repos: list[str] = field(default_factory=list)


def preview_datums(paths: Iterable[Path],
                   listing: Mapping[str, Iterable[str]] | DataDir | LakeFSData, *,
                   pipeline: str | None = None, dialect: str | None = None,
                   values: Mapping[str, Any] | None = None) -> Preview:
    """Load and check the specs under `paths`, pick one pipeline and plan its datums.

    Raises SelectionError when `pipeline` names none of them (or is needed and missing).
    """
    loaded = load_specs(paths, values, with_info=False)
    result = loaded.result
    result.diagnostics = [_previewable(d) for d in result.diagnostics]
    preview = Preview(result)
    if result.exit_code() != 0:
        return preview
    chosen = _select(loaded.pipelines, pipeline)
    index = loaded.pipelines.index(chosen)
    preview.pipeline = chosen
    preview.dialect = dialect or chosen.dialect
    if chosen.input is None:
        result.add(locate(loaded.documents[index], Finding(
            (*chosen.at, "input"), "no-input", f"pipeline `{chosen.name}` has no input dsc "
            "can plan datums for")))
        return preview
    # Lint reports bad globs and templates first, except in a spec it refuses for an
    # unsupported feature; the planner must not meet one halfway through a listing.
    for node in chosen.inputs():
        if isinstance(node, PfsInput):
            for key, text, check in (("glob", node.glob, compile_glob),
                                     ("join_on", node.join_on, template_references),
                                     ("group_by", node.group_by, template_references)):
                try:
                    if text is not None:
                        check(text)
                except GlobError as exc:
                    result.add(locate(loaded.documents[index], Finding(
                        (*node.at, key), "glob-syntax", f"`{key}` {text!r}: {exc}")))
    if result.exit_code() != 0:
        return preview
    root = datum_input(chosen.input)
    repos = list(dict.fromkeys(s.repo for s in sources(root)))
    if isinstance(listing, DataDir):
        listing = listing.listing(repos)
    elif isinstance(listing, LakeFSData):
        listing = listing.listing({s.repo: s.branch for s in sources(root)})
    known: dict[str, Iterable[str]] = {}
    for repo in repos:
        if repo in listing:
            known[repo] = listing[repo]
        else:
            known[repo] = ()
            preview.empty_repos.append(repo)
    preview.datums = plan_datums(root, known)
    return preview


def _previewable(d: Diagnostic) -> Diagnostic:
    if d.code == "unsupported" and _PREVIEWABLE_UNSUPPORTED.search(d.json_path):
        return replace(d, severity=Severity.WARNING,
                       message=f"{d.message} (dsc compile refuses it; the preview follows "
                       "Pachyderm)")
    return d


def _select(pipelines: list[Pipeline], name: str | None) -> Pipeline:
    names = [p.name for p in pipelines]
    if name is not None:
        for p in pipelines:
            if p.name == name:
                return p
        raise SelectionError(f"no pipeline `{name}` in the specs given (they define "
                             f"{_names(names)})")
    if len(pipelines) == 1:
        return pipelines[0]
    if not pipelines:
        raise SelectionError("the paths given hold no pipeline spec")
    raise SelectionError(f"the specs given define {len(pipelines)} pipelines ({_names(names)}); "
                         "choose one with --pipeline")


def _names(names: list[str]) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


# --------------------------------------------------------------------------------------------
# Listings


def read_listing(path: Path) -> dict[str, list[str]]:
    """A listing file: a JSON object mapping each repo to its paths at the commit to preview.

    Paths are made absolute ("a/b" is "/a/b"); one ending in "/" is a directory. Raises
    ListingError for anything else, OSError when the file cannot be read.
    """
    text = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ListingError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ListingError(f'{path}: expected an object like {{"repo": ["/path", ...]}}, '
                           f"not {_json_type(data)}")
    out: dict[str, list[str]] = {}
    for repo, paths in data.items():
        if not isinstance(paths, list):
            raise ListingError(f"{path}: repo `{repo}`: expected a list of paths, not "
                               f"{_json_type(paths)}")
        out[repo] = _absolute(paths, f"{path}: repo `{repo}`")
    return out


def _absolute(paths: list[Any], where: str) -> list[str]:
    if all(isinstance(p, str) and p.startswith("/") and "\0" not in p for p in paths):
        return paths  # the common case, checked without copying a large listing
    out: list[str] = []
    for i, p in enumerate(paths):
        if not isinstance(p, str) or not p or "\0" in p:
            raise ListingError(f"{where}: item {i}: expected a non-empty path, not "
                               f"{json.dumps(p)[:60]}")
        out.append(p if p.startswith("/") else "/" + p)
    return out


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


@dataclass(frozen=True, slots=True)
class DataDir:
    """A directory holding one subdirectory per repo (`DIR/<repo>/...` are its files)."""

    root: Path

    def listing(self, repos: Iterable[str]) -> dict[str, list[str]]:
        """The files of each repo that has a directory, sorted; symlinks count as what they
        point to. Empty directories are left out, as lakeFS and Pachyderm 2.x have none."""
        out: dict[str, list[str]] = {}
        for repo in repos:
            base = self.root / repo
            if base.is_dir():
                out[repo] = sorted(_walk(base))
        return out


@dataclass(slots=True)
class LakeFSData:
    """The repos as a live lakeFS holds them: each read at the head of the input's branch
    (the config's default branch when the spec names none), as a run's `open` would pin it.
    `read` records what was read: (repo, lakeFS repository, branch, commit)."""

    client: Any  # compiler.lakefs.client.LakeFS
    lakefs_repo: Any  # Callable[[str], str]: Pachyderm repo -> lakeFS repository
    default_branch: str
    read: list[tuple[str, str, str, str]] = field(default_factory=list)

    def listing(self, branches: Mapping[str, str | None]) -> dict[str, list[str]]:
        from compiler.store import NotFound

        out: dict[str, list[str]] = {}
        for repo, branch in branches.items():
            name, ref = self.lakefs_repo(repo), branch or self.default_branch
            try:
                commit = self.client.head(name, ref)
            except NotFound:
                continue  # reported as an empty repo, like a missing directory
            self.read.append((repo, name, ref, commit))
            out[repo] = ["/" + path for path in self.client.listing(name, commit)]
        return out


def _walk(base: Path) -> Iterator[str]:
    def fail(error: OSError) -> None:
        raise error

    for directory, _, files in os.walk(base, onerror=fail):
        rel = os.path.relpath(directory, base)
        prefix = "/" if rel == "." else "/" + rel.replace(os.sep, "/") + "/"
        for name in files:
            yield prefix + name
