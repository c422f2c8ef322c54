"""`dsc provenance` and `dsc log`: the lineage of a lakeFS commit, traced through dsc's commit
metadata, and a ref's history.

Every output commit dsc makes names the commit each of its inputs was read at
(`dsc.input.<input> = <repo>@<commit id>`, DESIGN.md §5); a commit without `dsc.pipeline` was
not made by dsc and is a source, a leaf of the lineage. Tracing reads commits through a
`CommitReader` (the lakeFS adapter, or a fake in tests); rendering is pure.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from compiler.commands.console import Console
from compiler.commands.errors import CouldNotRun, UsageError
from compiler.contract import (
    ARGO_LINK_KEY,
    DATUMS_KEY,
    IMAGE_KEY,
    INPUT_PREFIX,
    PIPELINE_KEY,
    WORKFLOW_KEY,
    input_value,
)
from compiler.diagnostics import ExitCode
from compiler.spec.names import LAKEFS_REPO, lakefs_repo_name
from compiler.store import Commit, NotFound

# The rest of the provenance metadata `dsc runtime commit` writes (DESIGN.md §5) that is shown.

_COMMIT_ID = re.compile(r"[0-9a-f]{64}")
_DATUM_COUNT = re.compile(r"(\w+)=(\d+)")
SHORT = 12  # characters of a commit ID in the tree and in mermaid labels


class CommitReader(Protocol):
    def commit_of(self, repo: str, ref: str) -> Commit:
        """The commit `ref` (a branch, tag or commit ID) of lakeFS repository `repo`; raises
        `compiler.lakefs.client.NotFound` when either does not exist."""
        ...


class HistoryReader(CommitReader, Protocol):
    def log(self, repo: str, ref: str, stop_at: str | None = None) -> Iterator[Commit]:
        """The first-parent chain from `ref`, newest first."""
        ...


class LakeFSURLError(ValueError):
    """A `lakefs://` argument that does not name a repository and a ref."""


@dataclass(frozen=True, slots=True)
class RepoNames:
    """How a name typed in a `lakefs://` URL reaches a repository. `mapped` is the lakeFS
    repository dsc uses for a Pachyderm repo name (`wc` -> `wc-repo`, `raw_data` ->
    `raw-data`, or dsc.yaml's `repos`); `listed` names the repositories there are, where
    that is known (a data directory)."""

    mapped: Callable[[str], str] = lakefs_repo_name
    listed: Callable[[], list[str]] | None = None

    @classmethod
    def in_directory(cls, store: Any) -> RepoNames:
        """The names of a data directory (`compiler.store.directory.DirectoryStore`): a
        directory's name means the repository the runs kept in it."""
        held = {directory: repo for repo, directory in store.directories.items()}
        return cls(lambda name: held.get(name) or lakefs_repo_name(name), store.repositories)

    def hint(self, repo: str, ref: str) -> str:
        """What to add to an error about `repo`: the repository dsc maps the name to, or
        which repositories there are; "" when `repo` is one of them."""
        known = self.listed() if self.listed is not None else None
        if known is not None and repo in known:
            return ""
        target = self.mapped(repo)
        if target != repo and LAKEFS_REPO.fullmatch(target) and (known is None
                                                                  or target in known):
            return (f"; did you mean lakefs://{target}/{ref}? (dsc maps the Pachyderm repo "
                    f"`{repo}` to the lakeFS repository `{target}`)")
        if known is None:
            return ""
        return (f"; the data directory holds {', '.join(known)}" if known
                else "; the data directory holds no repository (is it one `dsc run --data` "
                "wrote?)")


def parse_lakefs_url(url: str, names: RepoNames | None = None) -> tuple[str, str]:
    """`lakefs://<repo>/<ref>` -> (repo, ref); one trailing `/` is allowed, a path is not.
    A repository name lakeFS refuses is said with the name dsc maps it to."""
    scheme = "lakefs://"
    if not url.startswith(scheme):
        raise LakeFSURLError(f"expected lakefs://<repo>/<ref>, got {url!r}")
    repo, _, ref = url[len(scheme):].partition("/")
    if not LAKEFS_REPO.fullmatch(repo):
        hint = (names or RepoNames()).hint(repo, ref.rstrip("/") or "main") if repo else ""
        raise LakeFSURLError(f"{url!r}: {repo!r} is not a lakeFS repository name "
                             f"(^{LAKEFS_REPO.pattern}$){hint}")
    ref = ref[:-1] if ref.endswith("/") else ref
    if not ref:
        raise LakeFSURLError(f"{url!r} names no ref: give a branch, tag or commit ID, e.g. "
                             f"lakefs://{repo}/main")
    if "/" in ref:
        raise LakeFSURLError(f"{url!r}: a path inside a commit has no provenance of its own; "
                             f"give the commit, e.g. lakefs://{repo}/{ref.split('/')[0]}")
    return repo, ref


@dataclass(frozen=True, slots=True, order=True)
class CommitRef:
    repo: str
    commit: str  # the full 64-hex ID

    def __str__(self) -> str:
        return f"{self.repo}@{self.commit}"

    @property
    def short(self) -> str:
        return f"{self.repo}@{self.commit[:SHORT]}"

    @property
    def url(self) -> str:
        return f"lakefs://{self.repo}/{self.commit}"


@dataclass(frozen=True, slots=True)
class InputLink:
    """One `dsc.input.<name>` entry: `source` is None when the value is not `repo@commit`."""

    name: str
    value: str
    source: CommitRef | None

    @property
    def key(self) -> str:
        return INPUT_PREFIX + self.name


@dataclass(frozen=True, slots=True)
class LineageNode:
    """A commit as its metadata describes it; `error` when it could not be read."""

    ref: CommitRef
    pipeline: str | None = None  # None: a source (not made by dsc)
    workflow: str | None = None
    image: str | None = None
    datums: str | None = None
    argo_url: str | None = None
    inputs: tuple[InputLink, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Lineage:
    """Every commit read, by reference; commits beyond `depth` are named but not read."""

    root: CommitRef
    nodes: dict[CommitRef, LineageNode]
    depth: int | None


def read_node(ref: CommitRef, commit: Commit) -> LineageNode:
    meta = commit.metadata
    links = []
    for key in sorted(k for k in meta if k.startswith(INPUT_PREFIX)):
        value = meta[key]
        read_repo, read_commit = input_value(value)
        source = None
        if _COMMIT_ID.fullmatch(read_commit) and LAKEFS_REPO.fullmatch(read_repo):
            source = CommitRef(read_repo, read_commit)
        links.append(InputLink(key[len(INPUT_PREFIX):], value, source))
    return LineageNode(ref, meta.get(PIPELINE_KEY), meta.get(WORKFLOW_KEY), meta.get(IMAGE_KEY),
                       meta.get(DATUMS_KEY), meta.get(ARGO_LINK_KEY), tuple(links))


def trace_lineage(reader: CommitReader, repo: str, ref: str,
                  depth: int | None = None) -> Lineage:
    """Read `repo`@`ref` and, breadth first, every commit its inputs name, up to `depth`
    steps away (None: all). Each commit is read once, at its shortest distance, so a diamond
    costs one read and a cycle ends. The root not existing raises NotFound; an upstream commit
    not existing is that node's `error`; any other lakeFS failure raises LakeFSError."""
    root_commit = reader.commit_of(repo, ref)
    root = CommitRef(repo, root_commit.id)
    nodes: dict[CommitRef, LineageNode] = {}
    queue: deque[tuple[CommitRef, int]] = deque([(root, 0)])
    queued = {root}
    while queue:
        current, distance = queue.popleft()
        if current == root:
            node = read_node(root, root_commit)
        else:
            try:
                node = read_node(current, reader.commit_of(current.repo, current.commit))
            except NotFound:
                node = LineageNode(current, error="not found in lakeFS")
        nodes[current] = node
        if depth is not None and distance >= depth:
            continue
        for link in node.inputs:
            if link.source is not None and link.source not in queued:
                queued.add(link.source)
                queue.append((link.source, distance + 1))
    return Lineage(root, nodes, depth)


# --- the lineage as a tree: each commit in full once, where a depth-first walk meets it first -

SEE_ABOVE = "see above"
CYCLE = "cycle"
NOT_FOLLOWED = "not followed"


@dataclass(frozen=True, slots=True)
class Occurrence:
    """A place in the tree: the root, or an input of the occurrence above it.

    `node` is set where the commit is shown in full; elsewhere `mark` says why not. A
    malformed input value has no `ref`."""

    input: str | None
    ref: CommitRef | None
    node: LineageNode | None = None
    mark: str | None = None
    link: InputLink | None = None
    children: tuple[Occurrence, ...] = ()


@dataclass(frozen=True, slots=True)
class LineageProblem:
    """Something wrong in the metadata, located by commit and metadata key."""

    ref: CommitRef
    key: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.ref.url}: {self.key}" if self.key else self.ref.url
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class LineageTree:
    root: Occurrence
    depth: int | None
    problems: tuple[LineageProblem, ...]


def unfold(lineage: Lineage) -> LineageTree:
    """The tree every output format shows. Inputs go in name order, so the output is a
    function of the metadata alone."""
    problems: list[LineageProblem] = []
    shown: set[CommitRef] = set()

    def visit(link: InputLink | None, ref: CommitRef, path: tuple[CommitRef, ...]
              ) -> Occurrence:
        name = link.name if link else None
        if ref in path:
            assert link is not None
            problems.append(LineageProblem(path[-1], link.key, f"{link.value!r} leads back "
                                           "to a commit on this path (a cycle)"))
            return Occurrence(name, ref, mark=CYCLE, link=link)
        if ref in shown:
            return Occurrence(name, ref, mark=SEE_ABOVE, link=link)
        node = lineage.nodes.get(ref)
        if node is None:
            return Occurrence(name, ref, mark=NOT_FOLLOWED, link=link)
        shown.add(ref)
        if node.error:
            problems.append(LineageProblem(ref, None, node.error))
        children = []
        for child in node.inputs:
            if child.source is None:
                problems.append(LineageProblem(ref, child.key, f"{child.value!r} is not "
                                               "<repo>@<64-hex commit id>"))
                children.append(Occurrence(child.name, None, link=child))
            else:
                children.append(visit(child, child.source, (*path, ref)))
        return Occurrence(name, ref, node, link=link, children=tuple(children))

    root = visit(None, lineage.root, ())
    return LineageTree(root, lineage.depth, tuple(problems))


def walk(occurrence: Occurrence) -> Iterator[tuple[Occurrence | None, Occurrence]]:
    """(parent, occurrence) pairs, depth first, the root first with no parent."""
    stack: list[tuple[Occurrence | None, Occurrence]] = [(None, occurrence)]
    while stack:
        parent, current = stack.pop()
        yield parent, current
        stack.extend((current, child) for child in reversed(current.children))


# --- a ref's history: `dsc log` ------------------------------------------------------------

def history(reader: HistoryReader, repo: str, ref: str, limit: int | None = None
            ) -> list[Commit]:
    """The first-parent chain from `repo`@`ref`, newest first, at most `limit` commits (only
    those are read). Raises NotFound when the repository or ref does not exist."""
    return list(islice(reader.log(repo, ref), limit))


def render_log(commits: list[Commit], fmt: str) -> str:
    """text: `short ID  date (UTC)  what made it`, one line per commit; json: a list."""
    if fmt == "json":
        return json.dumps([_log_json(c) for c in commits], indent=2, sort_keys=True,
                          ensure_ascii=False) + "\n"
    return "".join(f"{c.id[:SHORT]}  {_date(c.created) or '-':<20}  {_log_text(c)}\n"
                   for c in commits)


def _log_text(commit: Commit) -> str:
    meta = commit.metadata
    if PIPELINE_KEY not in meta:
        return commit.message.splitlines()[0] if commit.message.strip() else "(no message)"
    parts = [f"pipeline {meta[PIPELINE_KEY]}"]
    if meta.get(WORKFLOW_KEY):
        parts.append(f"run {meta[WORKFLOW_KEY]}")
    if meta.get(DATUMS_KEY):
        parts.append(_datums_text(meta[DATUMS_KEY]))
    return " · ".join(parts)


def _log_json(commit: Commit) -> dict[str, Any]:
    meta = commit.metadata
    return {"commit": commit.id, "parents": list(commit.parents),
            "created": _date(commit.created), "message": commit.message,
            "pipeline": meta.get(PIPELINE_KEY), "workflow": meta.get(WORKFLOW_KEY),
            "datums": meta.get(DATUMS_KEY),
            "inputs": {k[len(INPUT_PREFIX):]: v for k, v in sorted(meta.items())
                       if k.startswith(INPUT_PREFIX)}}


def _date(created: int) -> str | None:
    if not created:
        return None
    return datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- renderers -----------------------------------------------------------------------------

def render(tree: LineageTree, fmt: str) -> str:
    return {"tree": render_tree, "json": render_json, "mermaid": render_mermaid}[fmt](tree)


def render_tree(tree: LineageTree) -> str:
    """Like tree(1): `input: repo@commit  what made it`, one line per occurrence."""
    lines = [_tree_line(tree.root, tree.depth)]

    def children(occurrence: Occurrence, indent: str) -> None:
        for i, child in enumerate(occurrence.children):
            last = i == len(occurrence.children) - 1
            lines.append(f"{indent}{'└── ' if last else '├── '}{_tree_line(child, tree.depth)}")
            children(child, indent + ("    " if last else "│   "))

    children(tree.root, "")
    return "\n".join(lines) + "\n"


def _tree_line(occurrence: Occurrence, depth: int | None) -> str:
    prefix = f"{occurrence.input}: " if occurrence.input is not None else ""
    if occurrence.ref is None:
        assert occurrence.link is not None
        return (f"{prefix}error: {occurrence.link.key} = {occurrence.link.value!r} is not "
                "<repo>@<64-hex commit id>")
    return f"{prefix}{occurrence.ref.short}  {_describe(occurrence, depth)}"


def _describe(occurrence: Occurrence, depth: int | None) -> str:
    node = occurrence.node
    if occurrence.mark == NOT_FOLLOWED:
        return f"({NOT_FOLLOWED}: --depth {depth})"
    if occurrence.mark is not None or node is None:
        return f"({occurrence.mark})"
    if node.error:
        return f"error: {node.error}"
    if node.pipeline is None:
        return "(source)"
    parts = [f"pipeline {node.pipeline}"]
    if node.workflow:
        parts.append(f"run {node.workflow}")
    if node.datums:
        parts.append(_datums_text(node.datums))
    return " · ".join(parts)


def _datums_text(datums: str) -> str:
    """`total=77 processed=70 skipped=7 recovered=0` -> `77 datums, 7 skipped`."""
    counts = {k: int(v) for k, v in _DATUM_COUNT.findall(datums)}
    if "total" not in counts:
        return f"datums {datums}"
    total = counts["total"]
    text = f"{total} datum{'' if total == 1 else 's'}"
    for extra in ("skipped", "recovered"):
        if counts.get(extra):
            text += f", {counts[extra]} {extra}"
    return text


def render_json(tree: LineageTree) -> str:
    """Nested: each commit in full once ("inputs"); elsewhere {"repo", "commit", "elided"}."""
    return json.dumps(_json(tree.root), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _json(occurrence: Occurrence) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if occurrence.input is not None:
        out["input"] = occurrence.input
    ref, node = occurrence.ref, occurrence.node
    if ref is None:
        assert occurrence.link is not None
        out.update(value=occurrence.link.value, error="not <repo>@<64-hex commit id>")
        return out
    out.update(repo=ref.repo, commit=ref.commit)
    if occurrence.mark is not None or node is None:
        out["elided"] = occurrence.mark
        return out
    if node.error:
        out["error"] = node.error
        return out
    out.update(pipeline=node.pipeline, workflow=node.workflow, image=node.image,
               datums=node.datums, argo_url=node.argo_url,
               inputs=[_json(child) for child in occurrence.children])
    return out


def render_mermaid(tree: LineageTree) -> str:
    """`flowchart BT`: one node per commit, inputs below the commits made from them, each
    edge labelled with the input name. Ids are `n<i>`; labels are quoted and escaped."""
    ids: dict[CommitRef, str] = {}
    declarations: list[str] = []
    edges: list[str] = []
    links: list[str] = []
    flagged: set[str] = set()
    for parent, occurrence in walk(tree.root):
        ref = occurrence.ref
        if ref is None:  # a malformed value: the node naming it is flagged
            if parent is not None and parent.ref is not None:
                flagged.add(ids[parent.ref])
            continue
        first = ref not in ids  # a commit is first met in full, or not followed at all
        ident = ids.setdefault(ref, f"n{len(ids)}")
        if first:
            declarations.append(_mermaid_node(ident, occurrence, tree.depth))
            node = occurrence.node
            if node is not None and node.error:
                flagged.add(ident)
            if node is not None and node.argo_url:
                links.append(f'    click {ident} href "{_mermaid_url(node.argo_url)}" _blank')
        if parent is not None and parent.ref is not None:
            edge = f'    {ident} -->|"{_mermaid_text(occurrence.input or "")}"| {ids[parent.ref]}'
            if edge not in edges:
                edges.append(edge)
            if occurrence.mark == CYCLE:
                flagged.add(ids[parent.ref])
    lines = ["flowchart BT", *declarations, *edges, *links]
    if flagged:
        lines.append("    classDef problem stroke:#d33,stroke-width:3px")
        lines.append(f"    class {','.join(sorted(flagged, key=lambda i: int(i[1:])))} problem")
    return "\n".join(lines) + "\n"


def _mermaid_node(ident: str, occurrence: Occurrence, depth: int | None) -> str:
    assert occurrence.ref is not None
    node = occurrence.node
    if node is None:
        detail = f"{NOT_FOLLOWED} (--depth {depth})"
    elif node.error:
        detail = f"error: {node.error}"
    elif node.pipeline is None:
        detail = "source"
    else:
        detail = f"pipeline {node.pipeline}"
    label = f"{_mermaid_text(occurrence.ref.short)}<br/>{_mermaid_text(detail)}"
    # A source is data nobody computed here: drawn as a cylinder, as databases are.
    shape = ('[("', '")]') if node is not None and node.pipeline is None and not node.error \
        else ('["', '"]')
    return f"    {ident}{shape[0]}{label}{shape[1]}"


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted mermaid label: mermaid decodes `#<decimal>;` entity codes,
    and reads raw `<`/`>` as HTML and `"`, `|`, a backtick as syntax."""
    out = " ".join(text.split())
    for char in "#&\"<>|`":
        out = out.replace(char, f"#{ord(char)};")
    return out


def _mermaid_url(url: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in '"\\ \n\t<>`' else c for c in url)


# --- one output file -------------------------------------------------------------------------

class FileNotTraced(LookupError):
    """A path the commit's datum index does not list as a datum's output."""


def split_object_url(url: str) -> tuple[str, str]:
    """`lakefs://REPO/REF/PATH` -> (`lakefs://REPO/REF`, PATH); no path: (url, "")."""
    scheme = "lakefs://"
    if not url.startswith(scheme):
        return url, ""
    parts = url[len(scheme):].split("/", 2)
    if len(parts) < 3 or not parts[2]:
        return url, ""
    return f"{scheme}{parts[0]}/{parts[1]}", parts[2]


@dataclass(frozen=True, slots=True)
class InputFile:
    name: str  # the input's name
    repo: str  # lakeFS repository
    commit: str  # the commit the job that wrote the file read it at
    path: str  # the datum's match (a file, or a directory ending in `/`)


@dataclass(frozen=True, slots=True)
class FileProvenance:
    """Which datum wrote one output file, from what, with what code, in which run. When later
    jobs skipped that datum, the file was carried and its run is still the one that wrote it."""

    repo: str
    commit: str
    path: str
    datum: str
    state: str
    pipeline: str
    run: str
    run_uid: str
    started: float
    runner: str
    image: str
    spec_sha256: str
    code: str
    inputs: tuple[InputFile, ...]
    carried: bool  # written by an earlier job than the one that made `commit`
    # written by a job that failed, whose outputs a later job took (compiler.runtime.resume)
    failed_run: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"repo": self.repo, "commit": self.commit, "path": self.path,
                "datum": self.datum, "state": self.state, "pipeline": self.pipeline,
                "run": self.run, "run_uid": self.run_uid, "started": self.started,
                "runner": self.runner, "image": self.image, "spec_sha256": self.spec_sha256,
                "code": self.code, "carried": self.carried, "failed_run": self.failed_run,
                "inputs": [{"name": i.name, "repo": i.repo, "commit": i.commit,
                            "path": i.path} for i in self.inputs]}


def file_provenance(store: Any, repo: str, ref: str, path: str) -> FileProvenance:
    """Read the datum index of `repo@ref` for the datum that wrote `path`."""
    from compiler.runtime.incremental import read_index

    commit = store.commit_of(repo, ref)
    path = path.lstrip("/")
    _previous, found = read_index(store, repo, commit.id, keep=lambda e: path in e["files"])
    if not found:
        raise FileNotTraced(f"lakefs://{repo}/{ref}/{path}: no datum of {repo}@"
                            f"{commit.id[:12]} wrote it (not an output dsc recorded: the file "
                            "is missing, dsc's own, or the commit was not made by a job with "
                            "a datum index)")
    (entry,) = found.values()
    jobs = json.loads(store.read(repo, commit.id, ".dsc/index/jobs.json"))
    job = jobs.get(entry["job"], {})
    leaves = job.get("inputs", [])
    inputs = tuple(InputFile(leaves[leaf]["name"], leaves[leaf]["lakefs_repo"],
                             leaves[leaf]["commit"], m_path)
                   if leaf < len(leaves) else InputFile(str(leaf), "?", "?", m_path)
                   for leaf, m_path in entry["m"])
    return FileProvenance(repo, commit.id, path, entry["id"], entry["state"],
                          str(job.get("pipeline") or commit.metadata.get(PIPELINE_KEY, "")),
                          str(job.get("run", "?")), entry["job"],
                          float(job.get("started") or 0), str(job.get("runner", "")),
                          str(job.get("image", "")), str(job.get("spec_sha256", "")),
                          str(job.get("code", "")), inputs,
                          entry["job"] != commit.metadata.get("dsc.workflow.uid"),
                          bool(job.get("failed")))


def render_file(found: FileProvenance, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(found.as_json(), indent=1) + "\n"
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(found.started, timezone.utc).strftime("%Y-%m-%d %H:%M UTC") \
        if found.started else "?"
    lines = [f"lakefs://{found.repo}/{found.commit[:SHORT]}/{found.path}",
             f"  written by datum {found.datum[:SHORT]} of pipeline {found.pipeline}, run "
             f"{found.run} (job started {when})"
             + (", a run that failed: a later job took the outputs it finished"
                if found.failed_run else
                ", carried unchanged by the later jobs" if found.carried else ""),
             f"  image {found.image or '(none: the host runner ran the command)'}"
             f"  runner {found.runner or '?'}",
             f"  spec sha256 {found.spec_sha256[:SHORT]}  code {found.code[:SHORT]}",
             "  inputs:"]
    lines += [f"    {i.name}: {i.repo}@{i.commit[:SHORT]}:{i.path}" for i in found.inputs]
    return "".join(line + "\n" for line in lines)


# --------------------------------------------------------------------------------------------
# The commands


def provenance(url: str, *, fmt: str, depth: int | None, config_path: Path | None,
               data: Path | None, console: Console) -> int:
    """`dsc provenance`: the lineage (or a file's provenance) on stdout, metadata problems on
    stderr; the exit code."""
    url, path = split_object_url(url)
    reader, repo, ref, names = _commit_reader(url, data, config_path)
    if path:
        if fmt == "mermaid":
            raise UsageError("a file's provenance is `tree` (text) or `json`", "'-o'")
        try:
            with _reading(url, names, repo, ref):
                found = file_provenance(reader, repo, ref, path)
        except FileNotTraced as exc:
            raise CouldNotRun(str(exc)) from None
        console.out.write(render_file(found, "json" if fmt == "json" else "text"))
        return int(ExitCode.CLEAN)
    with _reading(url, names, repo, ref):
        tree = unfold(trace_lineage(reader, repo, ref, depth))
    console.out.write(render(tree, fmt))
    for problem in tree.problems:
        console.say(f"dsc: error: {problem}")
    return int(ExitCode.FINDINGS if tree.problems else ExitCode.CLEAN)


def log(url: str, *, limit: int | None, fmt: str, config_path: Path | None,
        data: Path | None, console: Console) -> int:
    """`dsc log`: the commits of lakefs://REPO/REF on stdout; the exit code."""
    reader, repo, ref, names = _commit_reader(url, data, config_path)
    with _reading(url, names, repo, ref):
        commits = history(reader, repo, ref, limit)
    console.out.write(render_log(commits, fmt))
    return int(ExitCode.CLEAN)


@contextmanager
def _reading(url: str, names: RepoNames, repo: str, ref: str) -> Iterator[None]:
    """The store's errors while reading `url`, as `dsc provenance` and `dsc log` say them."""
    from compiler.store import LakeFSError

    try:
        yield
    except NotFound as exc:
        raise CouldNotRun(f"{url}: no such repository or ref ({exc}){names.hint(repo, ref)}") \
            from None
    except LakeFSError as exc:
        raise CouldNotRun.store(f"{url}: ", exc) from None


def _commit_reader(url: str, data: Path | None, config_path: Path | None
                   ) -> tuple[Any, str, str, RepoNames]:
    """Where `dsc provenance` and `dsc log` read commits (the data directory, else lakeFS),
    the repository and ref `url` names, and how names map."""
    from compiler.commands.sources import configuration, lakefs_client

    reader: Any = None
    if data is not None:
        from compiler.store.directory import DirectoryStore

        reader = DirectoryStore(data)
        names = RepoNames.in_directory(reader)
    else:
        config = configuration(config_path)
        names = RepoNames(config.lakefs_repo)
    try:
        repo, ref = parse_lakefs_url(url, names)
    except LakeFSURLError as exc:
        raise UsageError(str(exc), "'lakefs://REPO/REF'") from None
    if reader is None:
        reader = lakefs_client(config)
    return reader, repo, ref, names
