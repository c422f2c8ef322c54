"""Run jobs as the compiled manifests do, in this process, against the lakeFS stand-in.

Job documents and argv come from compiling real specs (the manifests' own `args`), so the tests
exercise the contract the cluster runs. A datum gets a fresh /pfs of its own, as a pod does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.compile import CompileRequest, compile_specs
from compiler.config import Config
from compiler.lakefs.client import LakeFS, RetryPolicy
from compiler.runtime import verbs
from compiler.runtime.job import Run
from tests.lakefs_standin.server import LakeFSStandIn

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "hyperparameter"

User = Callable[[Path, dict[str, str]], None]  # (the datum's /pfs, its variables)


class Killed(BaseException):
    """The process died here: nothing after this point runs, nothing is cleaned up."""


@dataclass(frozen=True, slots=True)
class Steps:
    """One pipeline's runtime argv, as the compiled WorkflowTemplate has them."""

    pipeline: str
    repo: str
    job: str
    open_args: list[str]


def compiled_steps(specs: Path, config: Config | None = None,
                   values: dict[str, Any] | None = None) -> tuple[dict[str, Steps], list[str]]:
    """Each pipeline's steps and the exit handler's argv, from `dsc compile`'s output."""
    compiled = compile_specs(CompileRequest(paths=(specs,), config=config or Config(),
                                            values=values or {}))
    assert compiled.documents is not None, [d.message for d in compiled.result.diagnostics]
    steps: dict[str, Steps] = {}
    abort: list[str] = []
    for doc in compiled.documents:
        if doc["kind"] != "WorkflowTemplate":
            continue
        for template in doc["spec"]["templates"]:
            args = (template.get("container") or {}).get("args") or []
            if args[:2] == ["runtime", "open"]:
                job = args[args.index("--job") + 1]
                body = json.loads(job)
                steps[body["pipeline"]] = Steps(body["pipeline"], body["output"]["repo"], job,
                                                args[2:])
            elif args[:2] == ["runtime", "abort"]:
                abort = args
    return steps, abort


def option(args: list[str], name: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == name]


@dataclass
class Harness:
    standin: LakeFSStandIn
    tmp: Path
    run: str = "hyperparameter-0a1b2c3d4"
    uid: str = "8d7c6b5a-0000-4000-8000-000000000001"
    logs: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    transfers: int = 4
    kill_at: int | None = None  # raise Killed at this lakeFS call (1-based), counting all
    calls: int = 0
    read_timeout: float = 2.0

    def client(self) -> LakeFS:
        harness = self
        policy = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01,
                             timeout=(2.0, self.read_timeout), sleep=lambda _s: None)

        class Counting(LakeFS):
            def _call(self, operation: str, fn: Any, *args: Any, idempotent: bool,
                      **kwargs: Any) -> Any:
                harness.calls += 1
                if harness.kill_at is not None and harness.calls == harness.kill_at:
                    raise Killed(f"killed before call {harness.calls} ({operation})")
                return super()._call(operation, fn, *args, idempotent=idempotent, **kwargs)

        s = self.standin
        return Counting(s.endpoint, s.access_key_id, s.secret_access_key, policy)

    def context(self, pfs: Path | None = None) -> verbs.Context:
        environ = {"DSC_RUN": self.run, "DSC_RUN_UID": self.uid, "DSC_NAMESPACE": "argo",
                   "DSC_OUTPUT_DIR": str(self.tmp / "out-params"),
                   "DSC_PFS": str(pfs or self.tmp / "pfs"), **self.env}
        return verbs.Context(self.client(), Run.from_environment(environ), self.logs.append,
                             transfers=self.transfers)

    def outputs(self) -> dict[str, str]:
        d = self.tmp / "out-params"
        return {p.name: p.read_text() for p in d.iterdir()} if d.is_dir() else {}

    # -- the verbs, with the compiled argv ----------------------------------------------------

    def open(self, steps: Steps, pins: list[str] | None = None) -> verbs.Opened:
        args = steps.open_args
        expect_n = option(args, "--expect-datums")
        expect = (int(expect_n[0]), option(args, "--plan-digest")[0]) if expect_n else None
        return verbs.open_job(self.context(), steps.job, pins or [], expect)

    def datum(self, steps: Steps, branch: str, key: str, user: User,
              pod: str | None = None) -> None:
        pfs = self.tmp / "pods" / (pod or key)
        verbs.stage(self.context(pfs), steps.pipeline, steps.repo, branch, key)
        # The variables name paths as the user container sees them, under /pfs: here the
        # pod's volume is `pfs`.
        user(pfs, {name: str(pfs) + value[len("/pfs"):]
                   if value == "/pfs" or value.startswith("/pfs/") else value
                   for name, value in read_env(pfs / ".dsc-env").items()})
        verbs.publish(self.context(pfs), steps.pipeline, steps.repo, branch, key)

    def commit(self, steps: Steps, branch: str) -> verbs.Committed:
        return verbs.commit(self.context(), steps.job, branch)

    def job(self, steps: Steps, user: User, pins: list[str] | None = None) -> verbs.Committed:
        opened = self.open(steps, pins)
        for key in opened.keys:
            self.datum(steps, opened.branch, key, user)
        return self.commit(steps, opened.branch)


def read_env(path: Path) -> dict[str, str]:
    """The env file as /bin/sh would read it."""
    import subprocess

    script = f"set -a; . '{path}'; set +a; env -0"
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True,
                         env={}).stdout.decode()
    return dict(line.split("=", 1) for line in out.split("\0") if "=" in line)


def files_under(root: Path) -> Iterator[str]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            yield os.path.relpath(os.path.join(dirpath, name), root)
