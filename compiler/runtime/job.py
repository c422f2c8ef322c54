"""A job as the runtime verbs see it: the JOB document, the run it belongs to, its inputs.

Pure: parsing and naming only; the verbs (`compiler.runtime.verbs`) do the I/O.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from compiler import contract
from compiler.datums.glob import GlobError, compile_glob
from compiler.datums.plan import CRON_GLOB, Combination, DatumInput, Source
from compiler.store import Store


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
    input: Any  # the input tree as the compiler wrote it (compiler.argo.build._input_json)
    output_repo: str
    output_branch: str
    image: str
    spec_sha256: str
    default_branch: str
    max_datums: int
    job_timeout: int | None
    leaves: tuple[Leaf, ...]
    code: str = ""  # the code identity (compiler.spec.identity); "" from an older compiler
    reprocess_spec: str = "until_success"
    workers: int = 1  # parallelism_spec: at most this many workers process the datums
    datum_tries: int = 3  # attempts per datum, in all (Pachyderm's default)
    datum_timeout: float | None = None  # seconds one attempt may run

    @classmethod
    def parse(cls, text: str) -> Job:
        try:
            doc = json.loads(text)
            output = doc["output"]
            leaves: list[Leaf] = []
            if doc["input"] is not None:
                _leaves(doc["input"], leaves)
            return cls(pipeline=str(doc["pipeline"]), input=doc["input"],
                       output_repo=str(output["repo"]), output_branch=str(output["branch"]),
                       image=str(doc.get("image", "")),
                       spec_sha256=str(doc.get("spec_sha256", "")),
                       default_branch=str(doc.get("default_branch") or output["branch"]),
                       max_datums=int(doc.get("max_datums") or 0),
                       job_timeout=int(doc["job_timeout"]) if doc.get("job_timeout") else None,
                       leaves=tuple(leaves), code=str(doc.get("code") or ""),
                       reprocess_spec=str(doc.get("reprocess_spec") or "until_success"),
                       workers=max(1, int(doc.get("workers") or 1)),
                       datum_tries=max(1, int(doc.get("datum_tries") or 3)),
                       datum_timeout=float(doc["datum_timeout"]) if doc.get("datum_timeout")
                       else None)
        except (ValueError, KeyError, TypeError) as exc:
            raise JobError(f"--job is not a dsc job document ({type(exc).__name__}: {exc}); "
                           "compile the specs with this version of dsc") from None

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


@dataclass(frozen=True, slots=True)
class Run:
    """The Argo run a verb belongs to, from the environment the manifests set."""

    name: str
    uid: str
    namespace: str
    lakefs_ui: str | None
    argo_ui: str | None
    storage_namespace: str | None
    pfs: str
    out_dir: str
    created: str  # the run's creation time, RFC 3339 (names a cron tick)
    # Who runs it: "argo" in a pod; "host" or "docker" under `dsc run`, whose process is
    # `owner` (`<host>:<boot id>:<pid>:<start>`, contract.local_owner), so that another run
    # or `dsc gc` can tell a live local run from one that was killed.
    runner: str = "argo"
    owner: str = ""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Run:
        name = environ.get("DSC_RUN", "")
        if not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,252}", name):
            raise JobError("DSC_RUN (the run's name; Argo sets it from {{workflow.name}}) is "
                           "missing or not a name")
        return cls(name=name, uid=environ.get("DSC_RUN_UID") or name,
                   namespace=environ.get("DSC_NAMESPACE", ""),
                   lakefs_ui=environ.get("DSC_LAKEFS_UI_URL") or None,
                   argo_ui=environ.get("DSC_ARGO_UI_URL") or None,
                   storage_namespace=environ.get("DSC_STORAGE_NAMESPACE") or None,
                   # Overridable for `dsc run` and tests; in a pod they are the contract's.
                   pfs=environ.get("DSC_PFS") or contract.PFS,
                   out_dir=environ.get("DSC_OUTPUT_DIR") or contract.OUTPUT_DIR,
                   created=environ.get("DSC_RUN_CREATED", ""),
                   runner=environ.get("DSC_RUNNER") or "argo",
                   owner=environ.get("DSC_RUN_OWNER", ""))

    def job_branch(self, pipeline: str) -> str:
        return contract.job_branch(pipeline, self.name)

    @property
    def local(self) -> bool:
        """Run by `dsc run` on one machine, not by Argo on a cluster."""
        return self.runner != "argo"

    def argo_url(self) -> str | None:
        if not self.argo_ui or self.local:  # a local run has no page in the Argo UI
            return None
        return f"{self.argo_ui.rstrip('/')}/workflows/{self.namespace or 'default'}/{self.name}"

    def lakefs_commit_url(self, repo: str, commit: str) -> str:
        if not self.lakefs_ui:
            return ""
        return f"{self.lakefs_ui.rstrip('/')}/repositories/{repo}/commits/{commit}"


Log = Callable[[str], None]


@dataclass(slots=True)
class Context:
    store: Store  # lakeFS in pods; lakeFS or a local directory under `dsc run`
    run: Run
    log: Log
    transfers: int = 8  # parallel object transfers of stage and publish
    presign: bool = False  # workers read objects through presigned URLs
    clock: Callable[[], float] = field(default=time.time)
    # A worker's datums done, of its share, and failed (Argo's progress; `dsc run`'s bar)
    progress: Callable[[int, int, int], None] = field(default=lambda _done, _total, _failed: None)


def write_outputs(run: Run, verb: str, values: dict[str, str]) -> None:
    """The verb's output parameters, each file written whole under a temporary name first."""
    os.makedirs(run.out_dir, exist_ok=True)
    for output in contract.OUTPUTS[verb]:
        path = os.path.join(run.out_dir, os.path.basename(output.path))
        fd, tmp = tempfile.mkstemp(dir=run.out_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(values[output.parameter])
        os.replace(tmp, path)
