"""What every runtime step works with: the run it belongs to (from the pod's environment), the
step's context (store, log, transfers), and its output parameters. The job document itself is
compiler.contract.job.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from compiler import contract
from compiler.contract.job import JobError
from compiler.store import Store


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
