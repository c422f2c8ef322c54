"""Run jobs as the compiled manifests do, in this process, against the lakeFS stand-in.

Job documents and `open` options come from compiling real specs, so the tests exercise the
contract the cluster runs. A worker gets a fresh /pfs of its own, as a pod does; the user
container's side of the worker protocol is a Python function (PythonUser) here, and the
real loop in tests/runtime/test_worker.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler import contract
from compiler.commands.compile import CompileRequest, compile_specs
from compiler.config import Config
from compiler.lakefs.client import LakeFS, RetryPolicy
from compiler.runtime import verbs
from compiler.runtime.job import Context, Run
from compiler.runtime.worker import Attempt, work
from tests.lakefs_standin.server import LakeFSStandIn

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "hyperparameter"

User = Callable[[Path, dict[str, str]], None]  # (the datum's /pfs, its variables)


class Killed(BaseException):
    """The process died here: nothing after this point runs, nothing is cleaned up."""


@dataclass(frozen=True, slots=True)
class Steps:
    """One pipeline's job document and `open` options, as the compiled WorkflowTemplate
    passes them to the shared `open` template."""

    pipeline: str
    repo: str
    job: str
    options: dict[str, str]

    @property
    def pins(self) -> list[str]:
        return [p for p in self.options.get("pins", "").split(",") if p and "{{" not in p]


def compiled_steps(specs: Path, config: Config | None = None,
                   values: dict[str, Any] | None = None) -> tuple[dict[str, Steps], list[str]]:
    """Each pipeline's steps and the exit handler's argv, from `dsc compile`'s output."""
    compiled = compile_specs(CompileRequest(paths=(specs,), config=config or Config(),
                                            values=values or {}))
    assert compiled.documents is not None, [d.message for d in compiled.result.diagnostics]
    steps, abort, _ = steps_of(compiled.documents)
    return steps, abort


def steps_of(documents: list[dict[str, Any]]) -> tuple[dict[str, Steps], list[str], list[str]]:
    """Each pipeline's steps, the exit handler's argv and the reconciler's, from compiled
    documents (CronWorkflows included)."""
    steps: dict[str, Steps] = {}
    abort: list[str] = []
    reconcile: list[str] = []
    for doc in documents:
        spec = doc["spec"].get("workflowSpec", doc["spec"])
        for template in spec.get("templates", []):
            args = (template.get("container") or {}).get("args") or []
            if args[:2] == ["runtime", "abort"]:
                abort = args
            elif args[:2] == ["runtime", "reconcile"]:
                reconcile = args
            job = next((p["value"] for p in template.get("inputs", {}).get("parameters", [])
                        if p["name"] == "job" and "value" in p), None)
            if job is None:
                continue
            body = json.loads(job)
            task = next(t for t in template["dag"]["tasks"] if t["name"] == "open")
            options = {a["name"]: a["value"] for a in task["arguments"]["parameters"]
                       if a["name"] != "job"}
            steps[body["pipeline"]] = Steps(body["pipeline"], body["output"]["repo"], job,
                                            options)
    return steps, abort, reconcile


class UserFailed(Exception):
    """Raised by a test's user function: the datum exits with `code`."""

    def __init__(self, code: int = 1, output: str = "") -> None:
        super().__init__(output)
        self.code = code
        self.output = output


class PythonUser:
    """The user container's side of the worker protocol, in this process: the test's user
    function runs each datum (with the variables the loop would export)."""

    def __init__(self, pfs: Path, user: User) -> None:
        self.pfs = pfs
        self.user = user
        self.datums: list[int] = []

    def open(self, alive: Callable[[], bool]) -> None:
        pass

    def run(self, n: int, timeout: float | None, relay: Callable[[str], None]) -> Attempt:
        self.datums.append(n)
        pfs = self.pfs
        # The variables name paths as the user container sees them, under /pfs: here the
        # pod's volume is `pfs`.
        env = {name: str(pfs) + value[len("/pfs"):]
               if value == "/pfs" or value.startswith("/pfs/") else value
               for name, value in read_env(pfs / ".dsc-env").items()}
        try:
            self.user(pfs, env)
        except UserFailed as exc:
            for line in exc.output.splitlines():
                relay(line)
            return Attempt(exc.code, tail=tuple(exc.output.splitlines()))
        return Attempt(0)

    def close(self) -> None:
        pass


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
    presign: bool = False
    clock: Callable[[], float] | None = None

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

    def context(self, pfs: Path | None = None) -> Context:
        environ = {"DSC_RUN": self.run, "DSC_RUN_UID": self.uid, "DSC_NAMESPACE": "argo",
                   "DSC_OUTPUT_DIR": str(self.tmp / "out-params"),
                   "DSC_PFS": str(pfs or self.tmp / "pfs"), **self.env}
        ctx = Context(self.client(), Run.from_environment(environ), self.logs.append,
                            transfers=self.transfers, presign=self.presign)
        if self.clock is not None:
            ctx.clock = self.clock
        return ctx

    def outputs(self) -> dict[str, str]:
        d = self.tmp / "out-params"
        return {p.name: p.read_text() for p in d.iterdir()} if d.is_dir() else {}

    # -- the verbs, with the compiled argv ----------------------------------------------------

    def open(self, steps: Steps, pins: list[str] | None = None) -> verbs.Opened:
        o = steps.options
        expect = (int(o["expect-datums"]), o["plan-digest"]) if o.get("expect-datums") \
            else None
        return verbs.open_job(self.context(), steps.job, [*steps.pins, *(pins or [])], expect)

    def work(self, steps: Steps, branch: str, user: User, worker: int = 0,
             pod: str | None = None) -> PythonUser:
        """One worker pod: its /pfs is fresh unless `pod` names an earlier one."""
        pfs = self.tmp / "pods" / (pod or f"{self.run}.worker-{worker}")
        pfs.mkdir(parents=True, exist_ok=True)
        side = PythonUser(pfs, user)
        work(self.context(pfs), steps.pipeline, steps.repo, branch, worker, user=side)
        return side

    def planned(self, steps: Steps, branch: str) -> list[str]:
        """The keys of the datums the job's workers process, in plan order, as they read
        them from the job branch."""
        ctx = self.context()
        record = verbs._job_record(ctx, steps.pipeline, steps.repo, branch)
        assert record is not None, "the job opened"
        ranges = json.loads(ctx.store.read(steps.repo, branch, contract.TODO_FILE))
        keys = []
        for start, stop in ranges:
            for i in range(start, stop):
                d = verbs._plan_chunk(ctx, steps.repo, branch, record, i)[i % contract.PLAN_CHUNK]
                keys.append(contract.planned_key(i, d))
        return keys

    def commit(self, steps: Steps, branch: str) -> verbs.Committed:
        return verbs.commit(self.context(), steps.job, branch)

    def job(self, steps: Steps, user: User, pins: list[str] | None = None) -> verbs.Committed:
        opened = self.open(steps, pins)
        for worker in range(opened.workers):
            self.work(steps, opened.branch, user, worker)
        return self.commit(steps, opened.branch)


def short_downloads(monkeypatch: Any) -> None:
    """Every download says it read one byte fewer than lakeFS lists: a short read."""
    real = LakeFS.download

    def short(self: LakeFS, repo: str, ref: str, path: str, sink: Any,
              presign: bool = False) -> tuple[int, str]:
        size, md5 = real(self, repo, ref, path, sink, presign)
        return size - 1, md5

    monkeypatch.setattr(LakeFS, "download", short)


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
