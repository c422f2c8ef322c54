"""Semantic checks beyond the schema, each with a stable code (README lists them)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from compiler.datums.glob import GlobError, compile_glob, template_references
from compiler.diagnostics import Finding, Severity
from compiler.spec.cron import cron_problem
from compiler.spec.model import CombinedInput, CronInput, Input, PfsInput, Pipeline, Resources
from compiler.spec.names import (
    PACHYDERM_NAME,
    PACHYDERM_NAME_MAX,
    is_lakefs_branch,
    k8s_name,
    lakefs_repo_name,
    padded_repo_name,
)
from compiler.spec.source import JsonPath

# Pachyderm features dsc does not compile: refused by name, never dropped (DESIGN.md §2).
UNSUPPORTED_TOP = {
    "spout": "spout pipelines (long-running code that makes its own commits)",
    "service": "service pipelines (long-running servers behind a Kubernetes Service)",
    "egress": "egress (copying the output commit to external storage)",
    "tf_job": "tf_job (Kubeflow TFJob pipelines)",
    "determined": "the Determined integration (`determined`)",
    "s3_out": "s3_out (writing output through Pachyderm's S3 gateway sidecar)",
    "incremental": "`incremental` (a 1.4-1.7 field, removed in Pachyderm 1.8)",
    "batch": "`batch` (a 1.5-1.9 field, removed in Pachyderm 1.10)",
    "scale_down_threshold": "`scale_down_threshold` (a 1.4-1.9 field, removed in Pachyderm 1.10)",
}
UNSUPPORTED_TRANSFORM = {
    "build": "build pipelines (`transform.build`: Pachyderm building the image from code)",
    "datum_batching": "datum batching (`transform.datum_batching`, `pachctl next datum`)",
}
UNSUPPORTED_PFS = {
    "s3": "S3 inputs (`s3: true`, read through Pachyderm's S3 gateway sidecar)",
    "trigger": "branch triggers (`trigger`, Pachyderm's deferred processing)",
    "propagation_spec": "`propagation_spec` (a Pachyderm 2.12 development feature)",
    "reference": "reference inputs (`reference`, a Pachyderm 2.12 development feature)",
}
# Worker tuning knobs of Pachyderm's long-lived workers; dsc runs a pod per datum, so they have
# no counterpart. Said out loud (a warning), never silently ignored.
NO_EFFECT_TOP = {
    "cache_size": "the 1.x storage sidecar cache",
    "max_queue_size": "the 1.x worker queue",
    "chunk_spec": "how 1.x workers claimed datums",
    "hashtree_spec": "1.x output hashtree sharding",
    "datum_set_spec": "how 2.x workers claim datums; dsc runs one pod per datum",
    "maximum_expected_uptime": "alerting on long-running (service/spout) pipelines",
    "dry_run": "a `pachctl` request flag, not part of a spec",
    "update": "a `pachctl` request flag, not part of a spec",
    "reprocess": "a `pachctl` request flag, not part of a spec",
}

_IMAGE_REF = re.compile(
    r"(?:(?P<domain>(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*"
    r"[a-zA-Z0-9])?)*(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:"
    r"[0-9a-fA-F]{32,}))?")
_QUANTITY = re.compile(
    r"[+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+|[numkMGTPE]|Ki|Mi|Gi|Ti|Pi|Ei)?")
_BYTES_UNIT = re.compile(r"([0-9.]+)\s*([KMGTPE]i?)B", re.IGNORECASE)
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")


def feature_findings(spec: dict[str, Any], at: JsonPath) -> list[Finding]:
    """`unsupported` errors and `no-effect` warnings, read from the canonicalised raw spec
    (the model has no place for what dsc cannot run)."""
    out: list[Finding] = []
    for path in _braces(spec, at):
        field = ".".join(str(part) for part in path[len(at):])
        out.append(Finding(path, "template-braces", (
            f"`{field}` contains `{{{{`, which Argo reads as a template expression and has "
            "no escape for; write it another way (e.g. `{ {` in shell)")))
    for path in _placeholders(spec, at):
        out.append(_unsupported(path, (
            "shell-variable placeholders such as `$PIPELINE_NAME` (pachctl never expanded "
            "them); render the file first, or make it a Jinja2 template")))
    if out:
        return out
    for key, feature in UNSUPPORTED_TOP.items():
        if key in spec and spec[key] not in (None, False):
            if key == "egress" and isinstance(spec[key], dict) and "sql_database" in spec[key]:
                feature = "egress to an SQL database (`egress.sql_database`)"
            out.append(_unsupported((*at, key), feature))
    for key, what in NO_EFFECT_TOP.items():
        if key in spec and spec[key] not in (None, False):
            out.append(Finding((*at, key), "no-effect", (
                f"`{key}` has no effect in dsc: it tunes {what}"), Severity.WARNING, at_key=True))
    pipeline = spec.get("pipeline")
    if isinstance(pipeline, dict):
        out.extend(_project((*at, "pipeline"), pipeline.get("project"), "name"))
    transform = spec.get("transform")
    if isinstance(transform, dict):
        for key, feature in UNSUPPORTED_TRANSFORM.items():
            if transform.get(key) not in (None, False, {}):
                out.append(_unsupported((*at, "transform", key), feature))
    if isinstance(spec.get("input"), dict):
        out.extend(_input_features(spec["input"], (*at, "input")))
    elif "input" not in spec and not out and not _misspelt(spec, "input"):
        # A misspelt `input` (`inptu`) is an unknown field with a did-you-mean, not a
        # pipeline that means to run without one.
        out.append(Finding(at, "unsupported", (
            "dsc does not support pipelines without an `input` (only spouts and services run "
            "without one); give it a pfs, cross, union, join, group or cron input")))
    return out


def _misspelt(spec: dict[str, Any], field: str) -> bool:
    from difflib import get_close_matches

    return any(isinstance(key, str) and key != field and get_close_matches(
        key.lower(), [field], n=1, cutoff=0.8) for key in spec)


_PLACEHOLDER = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


def _braces(value: Any, at: JsonPath) -> Iterator[JsonPath]:
    """Where a string of the spec holds `{{` (a compiled manifest would carry it)."""
    if isinstance(value, str):
        if "{{" in value:
            yield at
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _braces(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _braces(item, (*at, i))


def _placeholders(spec: dict[str, Any], at: JsonPath) -> Iterator[JsonPath]:
    """Names that are envsubst-style placeholders, not names (Pachyderm's run-config example)."""
    pipeline = spec.get("pipeline")
    if isinstance(pipeline, dict) and _PLACEHOLDER.search(str(pipeline.get("name", ""))):
        yield (*at, "pipeline", "name")
    stack: list[tuple[Any, JsonPath]] = [(spec.get("input"), (*at, "input"))]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(node)
                         if isinstance(v, (dict, list)))
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in ("name", "repo") and isinstance(value, str):
                    if _PLACEHOLDER.search(value):
                        yield (*path, key)
                elif isinstance(value, (dict, list)):
                    stack.append((value, (*path, key)))


def legacy_markers(spec: dict[str, Any]) -> list[str]:
    """Keys of the pre-1.4.6 dialect (`inputs` with `method`, `parallelism`, `shards`...).

    `parallelism_spec.strategy` is not one of them: it lived on to 1.4.8, beside `input`
    (pps.proto v1.4.6-v1.4.8), and is read as the field it selects (normalize.py).
    """
    found: list[str] = [k for k in ("inputs", "parallelism", "shards", "gc_policy") if k in spec]
    transform = spec.get("transform")
    if isinstance(transform, dict) and "overwrite" in transform:
        found.append("transform.overwrite")
    return found


def _input_features(node: dict[str, Any], at: JsonPath) -> Iterator[Finding]:
    for kind, value in node.items():
        here = (*at, kind)
        if kind == "git":
            yield _unsupported(here, "git inputs (a 1.x feature driven by GitHub webhooks)")
        elif kind in ("cross", "union", "join", "group") and isinstance(value, list):
            for i, member in enumerate(value):
                if isinstance(member, dict):
                    yield from _input_features(member, (*here, i))
        elif kind in ("pfs", "atom", "cron") and isinstance(value, dict):
            for key, feature in UNSUPPORTED_PFS.items():
                if value.get(key) not in (None, False, {}):
                    yield _unsupported((*here, key), feature)
            yield from _project(here, value.get("project"))
            repo_type = value.get("repo_type")
            if repo_type not in (None, "", "user"):
                yield _unsupported((*here, "repo_type"),
                                   f"inputs on Pachyderm system repos (`repo_type: {repo_type}`)")


def _project(at: JsonPath, project: Any, key: str | None = None) -> Iterator[Finding]:
    name = project.get(key) if isinstance(project, dict) and key else project
    if isinstance(name, str) and name not in ("", "default"):
        yield _unsupported((*at, "project"), f"Pachyderm projects (project `{name}`); "
                           "dsc maps every repo to one lakeFS repository of the same name")


def _unsupported(path: JsonPath, feature: str) -> Finding:
    return Finding(path, "unsupported", f"dsc does not support {feature}", at_key=True)


def pipeline_findings(p: Pipeline, raw: dict[str, Any]) -> list[Finding]:
    """Checks of one normalised pipeline."""
    out: list[Finding] = []
    out.extend(_name_findings(p))
    out.extend(_transform_findings(p, raw))
    if p.input is not None:
        out.extend(_input_findings(p, p.input))
    elif not any(k in raw for k in ("spout", "service")) and "input" not in raw:
        out.append(Finding(p.at, "missing-field", (
            f"pipeline `{p.name}` has no `input`; give it a pfs, cross, union, join, group "
            "or cron input")))
    for key in ("resource_requests", "resource_limits", "sidecar_resource_limits",
                "sidecar_resource_requests"):
        resources = getattr(p, key)
        if isinstance(resources, Resources):
            out.extend(_quantity_findings(resources, (*p.at, key)))
    if p.output_branch is not None and not is_lakefs_branch(p.output_branch):
        out.append(_branch_finding((*p.at, "output_branch"), p.output_branch))
    if p.pod_spec and p.pod_patch:
        out.append(Finding((*p.at, "pod_patch"), "pod-patch", (
            "`pod_spec` and `pod_patch` together cannot be one podSpecPatch; write both as "
            "`pod_patch`")))
    if p.parallelism.constant is not None and p.parallelism.coefficient is not None:
        out.append(Finding((*p.at, "parallelism_spec"), "invalid-value", (
            "`parallelism_spec` sets both `constant` and `coefficient`; they are exclusive")))
    for i, secret in enumerate(p.transform.secrets):
        where = (*p.at, "transform", "secrets", i)
        if secret.mount_path is None and secret.env_var is None:
            out.append(Finding(where, "secret", (
                f"secret `{secret.name}` needs `mount_path` (mount it as files) or `env_var` "
                "with `key` (expose one key as an environment variable)")))
        elif secret.env_var is not None and secret.key is None:
            out.append(Finding(where, "secret", (
                f"secret `{secret.name}` sets `env_var` but not the `key` to read")))
    return out


def _name_findings(p: Pipeline) -> Iterator[Finding]:
    at = (*p.at, "pipeline", "name")
    if not PACHYDERM_NAME.fullmatch(p.name) or len(p.name) > PACHYDERM_NAME_MAX:
        yield Finding(at, "pipeline-name", (
            f"pipeline name {p.name!r} must be 1-63 letters, digits, `_` or `-`"))
    elif padded_repo_name(p.name):
        yield Finding(at, "repo-name", (
            f"pipeline `{p.name}` writes a repo of the same name, shorter than the 3 characters "
            f"lakeFS needs; dsc names it `{lakefs_repo_name(p.name)}` in lakeFS"),
            Severity.WARNING)


def _transform_findings(p: Pipeline, raw: dict[str, Any]) -> Iterator[Finding]:
    at = (*p.at, "transform")
    if "transform" not in raw:
        if "tf_job" not in raw:
            yield Finding(p.at, "missing-field", f"pipeline `{p.name}` has no `transform`")
        return
    t = p.transform
    if t.image_defaulted:
        return
    image = t.image
    m = _IMAGE_REF.fullmatch(image)
    if not m:
        yield Finding((*at, "image"), "image-reference", (
            f"image {image!r} is not a valid image reference (a placeholder? render it "
            "with a Jinja2 template and --set)"), Severity.WARNING)
    elif m.group("digest") is None and m.group("tag") in (None, "latest"):
        yield Finding((*at, "image"), "image-tag", (
            f"image {image!r} is {'untagged' if m.group('tag') is None else 'tagged :latest'}; "
            "pin a version tag or digest so every run uses the same code"), Severity.WARNING)
    elif m.group("digest") is None and p.reprocess_spec != "every_job":
        # A tag can be pushed again. The output commits' provenance records the reference
        # (`dsc.image`), so it would not say which code ran; and incremental processing skips
        # a datum whose inputs and code identity (which holds the reference, not what it
        # names) are unchanged, so code pushed again under the same tag would leave the old
        # outputs in place. The README's CI/CD section compiles with the digest the build
        # pushed.
        yield Finding((*at, "image"), "mutable-image", (
            f"image {image!r} is a tag, which can be pushed again: provenance would not say "
            "which code ran, and incremental processing (keyed on the image reference) would "
            "skip datums whose code changed under it; pin it by digest (name@sha256:..., "
            "README \"CI/CD\") or set `reprocess_spec: every_job`"), Severity.INFO)
    if t.err_stdin and not t.err_cmd:
        yield Finding((*at, "err_stdin"), "err-cmd", (
            "`err_stdin` is piped into `err_cmd`, which the transform does not have"))
    if t.user is not None and not t.user.isdigit():
        yield Finding((*at, "user"), "user", (
            f"`user` {t.user!r}: Kubernetes runs containers as a numeric user ID; give the "
            "UID"))
    if not t.cmd and "tf_job" not in raw:
        # A worker runs the command once per datum in its loop (contract.LOOP), which
        # replaces the image's entrypoint; dsc cannot know what that entrypoint was.
        yield Finding(at, "no-command", (
            "transform has no `cmd`: a worker runs it once per datum (Pachyderm refuses a "
            "pipeline without it too); give the command the image's entrypoint runs"),
            Severity.ERROR)


def _quantity_findings(r: Resources, at: JsonPath) -> Iterator[Finding]:
    for key in ("memory", "disk"):
        value = getattr(r, key)
        if value is None or _QUANTITY.fullmatch(value.strip()):
            continue
        bytes_unit = _BYTES_UNIT.fullmatch(value.strip())
        if bytes_unit:
            # "256MB" appears in Pachyderm's own examples; Kubernetes spells it 256M.
            yield Finding((*at, key), "quantity", (
                f"`{key}` {value!r} is not a Kubernetes quantity; dsc reads it as "
                f"{quantity_of(value)!r}"), Severity.WARNING)
        else:
            yield Finding((*at, key), "quantity", (
                f"`{key}` {value!r} is not a Kubernetes quantity (like 512Mi, 2Gi or 1.5G)"))
    if r.gpu is not None and r.gpu.number < 0:
        yield Finding((*at, "gpu", "number"), "quantity", "`gpu.number` must not be negative")


def _branch_finding(at: JsonPath, branch: str) -> Finding:
    return Finding(at, "branch-name", (
        f"branch {branch!r} cannot be a lakeFS branch (letters, digits, `_` and `-`, not "
        "starting with `-`)"))


def _input_findings(p: Pipeline, root: Input) -> Iterator[Finding]:
    stack: list[tuple[Input, str | None]] = [(root, None)]
    while stack:
        node, parent = stack.pop()
        if isinstance(node, CombinedInput):
            if node.kind != "union":
                yield from _duplicate_names(node)
            stack.extend((m, node.kind) for m in node.members)
            continue
        if node.name == "out":
            yield Finding(_name_path(node), "input-name", (
                              "an input cannot be named `out`: /pfs/out is where the pipeline "
                              "writes; give it another `name`"))
        elif not PACHYDERM_NAME.fullmatch(node.name):
            yield Finding(_name_path(node), "input-name", (
                f"input name {node.name!r} must be letters, digits, `_` or `-` (it becomes "
                "the directory /pfs/<name> and an environment variable)"))
        if padded_repo_name(node.repo):
            yield Finding((*node.at, "repo"), "repo-name", (
                f"repo `{node.repo}` is shorter than the 3 characters lakeFS needs; dsc reads "
                f"the lakeFS repository `{lakefs_repo_name(node.repo)}`"), Severity.WARNING)
        if isinstance(node, CronInput):
            problem = cron_problem(node.spec)
            if problem:
                yield Finding((*node.at, "spec"), "cron", f"cron spec {node.spec!r}: {problem}")
            if node.start is not None and not _RFC3339.fullmatch(node.start):
                yield Finding((*node.at, "start"), "invalid-value", (
                    f"`start` {node.start!r} is not an RFC 3339 time like "
                    "2024-01-01T00:00:00Z"))
            continue
        yield from _pfs_findings(node, parent)


def _name_path(node: PfsInput | CronInput, unnamed: JsonPath | None = None) -> JsonPath:
    """Where an input's name is written: its `name`, or, for a pfs input named after its repo
    by default, `unnamed` (the input itself unless given)."""
    if isinstance(node, CronInput) or node.name != node.repo:
        return (*node.at, "name")
    return unnamed if unnamed is not None else node.at


def _pfs_findings(node: PfsInput, parent: str | None) -> Iterator[Finding]:
    if node.branch is not None and not is_lakefs_branch(node.branch):
        yield _branch_finding((*node.at, "branch"), node.branch)
    if node.commit is not None and not re.fullmatch(r"[0-9a-f]{6,64}", node.commit):
        yield Finding((*node.at, "commit"), "invalid-value", (
            f"`commit` {node.commit!r} is not a commit ID (hex)"))
    if not node.glob and not node.s3:
        yield Finding((*node.at, "glob"), "missing-field", (
            "the glob is empty; Pachyderm refuses that (\"input must specify a glob\"), dsc "
            "reads it as `/` (the whole commit is one datum)"), Severity.WARNING)
    try:
        glob = compile_glob(node.glob)
    except GlobError as exc:
        yield Finding((*node.at, "glob"), "glob-syntax", f"glob {node.glob!r}: {exc.message} "
                      f"(at character {exc.offset + 1})")
        return
    for key, kind in (("join_on", "join"), ("group_by", "group")):
        template = getattr(node, key)
        if template is None:
            continue
        where = (*node.at, key)
        if parent != kind:
            yield Finding(where, "no-effect", (
                f"`{key}` only has an effect on an input directly inside `{kind}`"),
                Severity.WARNING, at_key=True)
            continue
        try:
            refs = template_references(template)
        except GlobError as exc:
            yield Finding(where, "capture-group", f"`{key}` {template!r}: {exc.message}")
            continue
        missing = sorted({r for r in refs if r > glob.groups})
        if missing:
            # Pachyderm accepts it and fills a missing group with "" (ohmyglob Replace), so a
            # join on it is a cross (issue #5365): almost surely a mistake, but a defined one.
            have = (f"has {glob.groups} capture group{'s' if glob.groups != 1 else ''}"
                    if glob.groups else "has no capture groups (wrap a part in ( ))")
            if set(refs) - set(missing) - {0}:
                outcome = f"${missing[0]} is always empty"
            else:
                outcome = "every file gets the same key, so the " + (
                    "join is a plain cross" if kind == "join" else "group is one datum")
            yield Finding(where, "capture-group", (
                f"`{key}` {template!r} refers to ${missing[0]} but glob {node.glob!r} {have}; "
                f"{outcome}"), Severity.WARNING)
        elif not refs:
            yield Finding(where, "capture-group", (
                f"`{key}` {template!r} refers to no capture group, so every file gets the same "
                f"key and the {kind} {'is a plain cross' if kind == 'join' else 'is one datum'}"),
                Severity.WARNING)
    if node.outer_join and parent != "join":
        yield Finding((*node.at, "outer_join"), "no-effect",
                      "`outer_join` only has an effect on an input directly inside `join`",
                      Severity.WARNING, at_key=True)


def _duplicate_names(node: CombinedInput) -> Iterator[Finding]:
    # Pachyderm validateNames: names must be unique across a cross/join/group (each branch of a
    # union may reuse them); nested members count too, except inside a nested union.
    seen: dict[str, JsonPath] = {}
    for leaf in _leaves(node):
        if leaf.name in seen:
            where = _name_path(leaf, unnamed=(*leaf.at, "repo"))
            yield Finding(where, "duplicate-input-name", (
                f"input name `{leaf.name}` is used twice in this {node.kind}; each input is "
                f"mounted at /pfs/<name>, so give one of them a different `name`"))
        else:
            seen[leaf.name] = leaf.at


def _leaves(node: CombinedInput) -> Iterator[PfsInput | CronInput]:
    for member in node.members:
        if isinstance(member, CombinedInput):
            if member.kind != "union":
                yield from _leaves(member)
        else:
            yield member


@dataclass(frozen=True, slots=True)
class GraphNode:
    """What the checks across specs read of one pipeline (all a forked worker sends back)."""

    name: str
    path: str  # the file it came from
    at: JsonPath
    repos: tuple[str, ...]  # Pipeline.repos(): every repo it reads, in spec order
    # Each pfs input's repo, its branch (None: the default branch) and where the input is.
    pfs_repos: tuple[tuple[str, str | None, JsonPath], ...]
    output_branch: str | None  # None: the default branch

    @staticmethod
    def of(p: Pipeline) -> GraphNode:
        inputs = p.inputs()
        # Pipeline.repos(), without walking the inputs twice.
        repos = dict.fromkeys(n.repo for n in inputs if isinstance(n, (PfsInput, CronInput)))
        return GraphNode(p.name, p.path, p.at, tuple(repos), tuple(
            (n.repo, n.branch, n.at) for n in inputs if isinstance(n, PfsInput)),
            p.output_branch)


def graph_findings(pipelines: list[GraphNode],
                   default_branch: str | None = None) -> list[tuple[int, Finding]]:
    """Checks across the specs of one graph: duplicates, name collisions, cycles, external
    inputs and, given the configured default branch, inputs on a branch their upstream
    pipeline does not write. Each finding comes with the index of the pipeline it is about."""
    out: list[tuple[int, Finding]] = []
    by_name: dict[str, int] = {}
    unique: list[int] = []
    for i, p in enumerate(pipelines):
        first = by_name.get(p.name)
        if first is not None:
            out.append((i, Finding((*p.at, "pipeline", "name"), "duplicate-pipeline", (
                f"pipeline `{p.name}` is defined twice (first in {pipelines[first].path})"))))
            continue
        by_name[p.name] = i
        unique.append(i)
    for label, mapper in (("lakeFS repository", lakefs_repo_name), ("Kubernetes name", k8s_name)):
        claimed: dict[str, int] = {}
        for i in unique:
            p = pipelines[i]
            mapped = mapper(p.name)
            other = claimed.setdefault(mapped, i)
            if other != i:
                out.append((i, Finding((*p.at, "pipeline", "name"), "name-collision", (
                    f"pipelines `{pipelines[other].name}` and `{p.name}` both become the "
                    f"{label} `{mapped}`; rename one"))))
    out.extend(_cycle_findings(pipelines, unique, by_name))
    for i in unique:
        reported: set[str] = set()
        for repo, branch, at in pipelines[i].pfs_repos:
            if repo not in by_name:
                if repo not in reported:
                    reported.add(repo)
                    out.append((i, Finding((*at, "repo"), "external-input", (
                        f"repo `{repo}` is not produced by any pipeline given; it must exist "
                        "in lakeFS before the pipeline runs"), Severity.INFO)))
            elif default_branch is not None:
                finding = _branch_mismatch(pipelines[by_name[repo]], branch, at,
                                           default_branch)
                if finding is not None:
                    out.append((i, finding))
    return out


def _branch_mismatch(upstream: GraphNode, branch: str | None, at: JsonPath,
                     default_branch: str) -> Finding | None:
    """An input on a branch of an upstream pipeline's repo that the pipeline does not write.

    Pachyderm's default branch is `master`, so real specs read their upstream at `branch:
    master`; dsc writes every output to its own default branch (`main` unless configured), so
    such an input would wait for a commit that never comes.
    """
    reads = branch or default_branch
    writes = upstream.output_branch or default_branch
    if reads == writes:
        return None
    name = upstream.name
    if upstream.output_branch is None:
        fix = (f"set `default_branch: {reads}` in dsc.yaml (or --default-branch {reads}), "
               f"or `output_branch: {reads}` in the spec of `{name}`")
        wrote = f"`{writes}` (the default branch)"
    elif branch is None:
        fix = f"give this input `branch: {writes}`"
        wrote = f"`{writes}` (its `output_branch`)"
    else:
        fix = (f"read `branch: {writes}` here, or set `output_branch: {reads}` in the spec "
               f"of `{name}`")
        wrote = f"`{writes}` (its `output_branch`)"
    read = f"branch `{reads}`" if branch else f"the default branch `{reads}`"
    return Finding((*at, "branch") if branch else (*at, "repo"), "upstream-branch", (
        f"this input reads {read} of `{name}`, but pipeline `{name}` writes {wrote}, so the "
        f"input never sees its output; {fix}"), Severity.WARNING)


def _cycle_findings(pipelines: list[GraphNode], unique: list[int],
                    by_name: dict[str, int]) -> Iterator[tuple[int, Finding]]:
    edges: dict[str, list[str]] = defaultdict(list)
    for i in unique:
        p = pipelines[i]
        for repo in p.repos:
            if repo in by_name:
                edges[p.name].append(repo)
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for start in (pipelines[i].name for i in unique):
        if state.get(start):
            continue
        path: list[str] = [start]
        iters = [iter(edges[start])]
        state[start] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], nxt]
                i = by_name[path[-1]]
                yield i, Finding((*pipelines[i].at, "input"), "cycle", (
                    "pipelines read each other's output in a cycle: "
                    + " -> ".join(reversed(cycle))))
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(edges[nxt]))


def quantity_of(value: str) -> str:
    """A resource quantity as Kubernetes spells it (`256MB` -> `256M`, `1GiB` -> `1Gi`)."""
    m = _BYTES_UNIT.fullmatch(value.strip())
    if not m:
        return value.strip()
    unit = m.group(2)
    return m.group(1) + unit[0].upper() + unit[1:].lower()
