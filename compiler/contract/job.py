"""The job document: what `dsc compile` writes for each pipeline (the JOB argument of `open`
and `commit`, and the record `open` stores on the job branch) and every runtime step reads.

One model for both sides: the compiler builds a `Job` from the spec (compiler.argo.build.
job_spec) and writes it with `document()`; the steps read it back with `Job.parse`. The
defaults a document leaves out are said once, here, for the writer and the reader alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compiler.datums.glob import GlobError, compile_glob
from compiler.datums.plan import CRON_GLOB, Combination, DatumInput, Source

DEFAULT_REPROCESS = "until_success"  # Pachyderm's reprocess_spec
DEFAULT_DATUM_TRIES = 3  # Pachyderm's datum_tries: attempts per datum, in all
DEFAULT_WORKERS = 1  # no parallelism_spec: one worker (Pachyderm)


class JobError(Exception):
    """The job cannot go on: bad arguments, data that breaks a rule, a step out of order.
    The message names the pipeline, datum, file or input concerned (exit 1)."""


@dataclass(frozen=True, slots=True)
class Leaf:
    """One input that reads files: a pfs input, or a cron input's tick repo."""

    index: int
    name: str
    repo: str  # as the spec names it (pins and datum IDs use it)
    lakefs_repo: str
    branch: str | None  # as written; None: the job's default branch
    glob: str
    commit: str | None = None  # pinned in the spec
    join_on: str | None = None
    group_by: str | None = None
    outer_join: bool = False
    lazy: bool = False
    empty_files: bool = False
    cron: bool = False  # a cron input's tick repo
    overwrite: bool = False  # cron: keep only the latest tick
    start: str | None = None  # cron: no tick before this time (RFC 3339)


@dataclass(frozen=True, slots=True)
class Job:
    pipeline: str
    # The input tree as JSON: {"pfs": {repo, glob, [name], [lakefs_repo], [branch], [commit],
    # [join_on], [group_by], [outer_join], [lazy], [empty_files]}} (name and lakefs_repo left
    # out when they are the repo's own name), {"cron": {name, repo, lakefs_repo, spec,
    # overwrite, [start]}}, or {"cross"|"union"|"join"|"group": [members]}; None: no input.
    input: Any
    output_repo: str
    output_branch: str
    image: str
    spec_sha256: str
    default_branch: str  # of inputs that name no branch (left out: the output branch)
    max_datums: int  # 0: no budget
    job_timeout: int | None
    leaves: tuple[Leaf, ...]
    code: str = ""  # the code identity (compiler.spec.identity); "" from an older compiler
    reprocess_spec: str = DEFAULT_REPROCESS
    workers: int = DEFAULT_WORKERS  # parallelism_spec: at most this many workers
    datum_tries: int = DEFAULT_DATUM_TRIES
    datum_timeout: float | None = None  # seconds one attempt may run
    salt: str | None = None  # part of the code identity; carried for the record

    @classmethod
    def of(cls, *, pipeline: str, input: Any, output_repo: str, output_branch: str,
           image: str, spec_sha256: str, code: str, default_branch: str | None = None,
           max_datums: int = 0, job_timeout: int | None = None,
           reprocess_spec: str = DEFAULT_REPROCESS, workers: int = DEFAULT_WORKERS,
           datum_tries: int = DEFAULT_DATUM_TRIES, datum_timeout: float | None = None,
           salt: str | None = None) -> Job:
        """A job from its parts (the input tree as JSON); its leaves are derived."""
        leaves: list[Leaf] = []
        if input is not None:
            _leaves(input, leaves)
        return cls(pipeline=pipeline, input=input, output_repo=output_repo,
                   output_branch=output_branch, image=image, spec_sha256=spec_sha256,
                   default_branch=default_branch or output_branch, max_datums=max_datums,
                   job_timeout=job_timeout, leaves=tuple(leaves), code=code,
                   reprocess_spec=reprocess_spec, workers=workers, datum_tries=datum_tries,
                   datum_timeout=datum_timeout, salt=salt)

    @classmethod
    def parse(cls, text: str) -> Job:
        """The job a document says; JobError when it is not one."""
        try:
            doc = json.loads(text)
            output = doc["output"]
            return cls.of(
                pipeline=str(doc["pipeline"]), input=doc["input"],
                output_repo=str(output["repo"]), output_branch=str(output["branch"]),
                image=str(doc.get("image", "")), spec_sha256=str(doc.get("spec_sha256", "")),
                code=str(doc.get("code") or ""), default_branch=doc.get("default_branch"),
                max_datums=int(doc.get("max_datums") or 0),
                job_timeout=int(doc["job_timeout"]) if doc.get("job_timeout") else None,
                reprocess_spec=str(doc.get("reprocess_spec") or DEFAULT_REPROCESS),
                workers=max(1, int(doc.get("workers") or DEFAULT_WORKERS)),
                datum_tries=max(1, int(doc.get("datum_tries") or DEFAULT_DATUM_TRIES)),
                datum_timeout=float(doc["datum_timeout"]) if doc.get("datum_timeout")
                else None,
                salt=doc.get("salt") or None)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise JobError(f"--job is not a dsc job document ({type(exc).__name__}: {exc}); "
                           "compile the specs with this version of dsc") from None

    def document(self) -> str:
        """The JOB argument: compact, key-sorted JSON (equal jobs are equal bytes), the
        defaults left out (a run stores the document once per pipeline in its status)."""
        doc: dict[str, Any] = {
            "pipeline": self.pipeline, "input": self.input,
            "output": {"repo": self.output_repo, "branch": self.output_branch},
            "image": self.image, "spec_sha256": self.spec_sha256, "code": self.code}
        optional: dict[str, Any] = {
            "default_branch": self.default_branch if self.default_branch != self.output_branch
            else None,
            "workers": self.workers if self.workers != DEFAULT_WORKERS else None,
            "datum_tries": self.datum_tries if self.datum_tries != DEFAULT_DATUM_TRIES
            else None,
            "salt": self.salt,
            "reprocess_spec": self.reprocess_spec
            if self.reprocess_spec != DEFAULT_REPROCESS else None,
            "max_datums": self.max_datums, "datum_timeout": self.datum_timeout,
            "job_timeout": self.job_timeout}
        doc.update((key, value) for key, value in optional.items() if value)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def branch_of(self, leaf: Leaf) -> str:
        return leaf.branch or self.default_branch

    def tree(self) -> tuple[DatumInput, dict[int, Leaf]]:
        """The input tree for `compiler.datums.plan_datums`, and the leaf of each Source
        (keyed by `id(source)`)."""
        by_source: dict[int, Leaf] = {}
        leaves = iter(self.leaves)

        def build(node: Mapping[str, Any]) -> DatumInput:
            (kind, body), = node.items()
            if kind in ("pfs", "cron"):
                leaf = next(leaves)
                try:
                    glob = compile_glob(leaf.glob)
                except GlobError as exc:
                    raise JobError(f"input `{leaf.name}`: glob {leaf.glob!r}: {exc}") from None
                source = Source(leaf.name, leaf.repo, leaf.branch, glob, join_on=leaf.join_on,
                                group_by=leaf.group_by, outer_join=leaf.outer_join,
                                lazy=leaf.lazy, empty_files=leaf.empty_files)
                by_source[id(source)] = leaf
                return source
            return Combination(kind, tuple(build(m) for m in body))

        if self.input is None:
            raise JobError(f"pipeline `{self.pipeline}` has no input")
        return build(self.input), by_source


def _leaves(node: Mapping[str, Any], out: list[Leaf]) -> None:
    (kind, body), = node.items()
    if kind == "pfs":
        out.append(Leaf(len(out), body.get("name") or body["repo"], body["repo"],
                        body.get("lakefs_repo") or body["repo"],
                        body.get("branch"), body["glob"], commit=body.get("commit"),
                        join_on=body.get("join_on"), group_by=body.get("group_by"),
                        outer_join=bool(body.get("outer_join")), lazy=bool(body.get("lazy")),
                        empty_files=bool(body.get("empty_files"))))
    elif kind == "cron":
        out.append(Leaf(len(out), body["name"], body["repo"], body["lakefs_repo"], None,
                        CRON_GLOB, cron=True, overwrite=bool(body.get("overwrite")),
                        start=body.get("start")))
    elif kind in ("cross", "union", "join", "group"):
        for member in body:
            _leaves(member, out)
    else:
        raise ValueError(f"unknown input kind {kind!r}")
