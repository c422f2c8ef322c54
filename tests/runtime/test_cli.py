"""`dsc runtime` as pods run it: the argv and environment of the compiled manifests, one fresh
process per step, against the stand-in. Also: a process killed mid-merge, `dsc datums
--lakefs`, and credentials that never show."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.runtime.harness import SEED

ROOT = Path(__file__).resolve().parents[2]
# The user's code: word counts, by relative paths (the loop runs in the pod's /pfs here).
COUNT = 'for f in texts/*; do b=${f##*/}; wc -w < "$f" | tr -d " " > "out/${b%.txt}.n"; done'
SPEC = {"pipeline": {"name": "report"},
        "transform": {"image": "busybox:1", "cmd": ["sh", "-c", COUNT]},
        "input": {"pfs": {"repo": "texts", "glob": "/*"}}}


def dsc(*args: str, env: dict[str, str], check: bool = True, **kw: Any):
    proc = subprocess.run([sys.executable, "-m", "compiler", *args], capture_output=True,
                          text=True, env={"PATH": os.environ["PATH"], **env}, cwd=kw.get("cwd"))
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def manifests(tmp: Path, env: dict[str, str], spec: dict[str, Any] = SPEC
              ) -> list[dict[str, Any]]:
    (tmp / "specs").mkdir(exist_ok=True)
    (tmp / "specs" / "report.json").write_text(json.dumps(spec))
    out = dsc("compile", str(tmp / "specs"), env=env, cwd=tmp).stdout
    return list(yaml.safe_load_all(out))


class Template:
    """A compiled template: its containers and the defaults of its inputs."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.defaults = {p["name"]: p["value"] for p in body.get("inputs", {}).get(
            "parameters", []) if "value" in p}

    def container(self, name: str = "main") -> dict[str, Any]:
        if "container" in self.body:
            return dict(self.body["container"])
        for c in [*self.body["containerSet"]["containers"], *self.body.get("initContainers", [])]:
            if c["name"] == name:
                return dict(c)
        raise KeyError(name)


def templates(docs: list[dict[str, Any]]) -> dict[str, Template]:
    """The WorkflowTemplate's templates; the pipeline's DAG is under its name."""
    return {t["name"]: Template(t) for doc in docs if doc["kind"] == "WorkflowTemplate"
            for t in doc["spec"]["templates"]}


def task_arguments(dag: Template, task: str, **outputs: str) -> dict[str, str]:
    """What the pipeline's DAG passes to one of its tasks, with the DAG's own inputs and the
    earlier tasks' outputs (`outputs`) filled in."""
    (t,) = [t for t in dag.body["dag"]["tasks"] if t["name"] == task]
    values = {f"inputs.parameters.{k}": v for k, v in dag.defaults.items()}
    values.update({f"tasks.open.outputs.parameters.{k}": v for k, v in outputs.items()})
    return {a["name"]: re.sub(r"\{\{([^}]+)\}\}", lambda m: values.get(m.group(1), m.group(0)),
                              a["value"]) for a in t["arguments"]["parameters"]}


class Pod:
    """A container's argv and environment as the kubelet gives them: Argo's variables filled
    in, and the Secret's keys for its envFrom."""

    def __init__(self, standin, tmp: Path, run: str = "report-5e1f0a2b3") -> None:
        self.secret = {"dsc-lakefs": {
            "endpoint": standin.endpoint,
            "access_key_id": standin.access_key_id,
            "secret_access_key": standin.secret_access_key}}
        self.values = {"workflow.name": run, "workflow.uid": "0f0e0d0c-uid",
                       "workflow.creationTimestamp": "2026-11-25T10:00:00Z",
                       "workflow.namespace": "argo", "workflow.status": "Failed",
                       "workflow.parameters.reprocess": ""}
        self.tmp = tmp

    def run(self, template: Template, container: str = "main", pfs: str = "pfs",
            argv: list[str] | None = None, extra: dict[str, str] | None = None, **params: str):
        c = template.container(container)
        values = {**self.values, **{f"inputs.parameters.{k}": v
                                    for k, v in {**template.defaults, **params}.items()}}

        def fill(text: str) -> str:
            return re.sub(r"\{\{([^}]+)\}\}", lambda m: fill(values[m.group(1)]), text)

        env = {"DSC_PFS": str(self.tmp / pfs), "DSC_OUTPUT_DIR": str(self.tmp / "params"),
               **(extra or {})}
        for source in c.get("envFrom", []):
            for key, value in self.secret[source["secretRef"]["name"]].items():
                env[source.get("prefix", "") + key] = value
        for e in c.get("env", []):
            assert "valueFrom" not in e or "secretKeyRef" in e["valueFrom"]
            env[e["name"]] = fill(e["value"])
        command = argv or [sys.executable, "-m", "compiler", *[fill(a) for a in c["args"]]]
        return subprocess.Popen(command, env={"PATH": os.environ["PATH"], **env},
                                cwd=self.tmp / pfs if argv else None,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def worker(self, template: Template, worker: str, branch: str, pfs: str) -> str:
        """A worker pod: the init container, then the runtime and the user container side by
        side (the user's loop from its compiled command, in /pfs)."""
        (self.tmp / pfs).mkdir(exist_ok=True)
        finish(self.run(template, "prepare", pfs=pfs))
        user = template.container("user")
        loop = str(self.tmp / pfs / user["command"][1].removeprefix("/pfs/"))
        side = self.run(template, "user", pfs=pfs, argv=[user["command"][0], loop,
                                                        *user["args"]])
        # Argo's executor names the file it reads the node's progress from
        progress = {"ARGO_PROGRESS_FILE": str(self.tmp / pfs / "progress")}
        log = finish(self.run(template, "main", pfs=pfs, extra=progress, worker=worker,
                              branch=branch))
        assert side.wait(timeout=600) == 0  # the loop ends when the runtime closes `go`
        return log

    def param(self, name: str) -> str:
        return (self.tmp / "params" / name).read_text()


def finish(proc: subprocess.Popen, code: int = 0) -> str:
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == code, err
    return err


def test_a_job_through_the_manifests_argv_in_fresh_processes(lakefs_standin, tmp_path):
    s = lakefs_standin
    s.seed("texts", {"a.txt": b"one two", "b.txt": b"three", "c.txt": b"four five six"})
    s.seed("report", {})
    spec = {**SPEC, "parallelism_spec": {"constant": 2}}
    docs = manifests(tmp_path, {"DSC_LAKEFS_UI_URL": "https://lakefs.example",
                                "DSC_ARGO_UI_URL": "https://argo.example"}, spec)
    t = templates(docs)
    pod = Pod(s, tmp_path)
    logs = [finish(pod.run(t["open"], **task_arguments(t["report"], "open")))]
    workers = json.loads(pod.param("workers.json"))
    branch = pod.param("branch")
    assert workers == ["0", "1"] and branch == "dsc-report-report-5e1f0a2b3"
    assert pod.param("datums") == "3"
    work = task_arguments(t["report"], "work", branch=branch)
    assert work == {"worker": "{{item}}", "branch": branch}  # withParam: one pod per worker
    for worker in workers:
        logs.append(pod.worker(t["report-worker"], worker, branch, pfs=f"worker-{worker}"))
    logs.append(finish(pod.run(t["commit"], **task_arguments(t["report"], "commit",
                                                            branch=branch))))
    commit = pod.param("commit")
    assert commit == s.head("report", "main")
    assert pod.param("url") == f"https://lakefs.example/repositories/report/commits/{commit}"
    assert {p: s.read("report", commit, p) for p in ("a.n", "b.n", "c.n")} == {
        "a.n": b"2\n", "b.n": b"1\n", "c.n": b"3\n"}
    meta = s.commit("report", commit).metadata
    assert meta["::lakefs::Argo::url[url:ui]"] == \
        "https://argo.example/workflows/argo/report-5e1f0a2b3"
    assert meta["dsc.datums"] == "total=3 processed=3 skipped=0 deleted=0 recovered=0"
    # what people read in the Argo UI: each worker's share, then one line per datum
    # what the Argo UI shows on each worker's node: its datums done / its share
    assert [(tmp_path / f"worker-{w}" / "progress").read_text() for w in workers] == [
        "1/1\n", "2/2\n"]
    assert "worker 0/2 of report: 1 datum; 1 to process" in logs[1]
    assert "worker 1/2 of report: 2 datums; 2 to process" in logs[2]
    assert re.search(r"worker 0: datum 0-a.txt \(\w{12}\) done in [\d.]+ s: 1 files, 2 B "
                     r"\[1/1\]", logs[1])
    assert re.search(r"worker 1: datum 2-c.txt \(\w{12}\) done in [\d.]+ s: 1 files, 2 B "
                     r"\[2/2\]", logs[2])
    # credentials: the Secret by name in the manifests; never a value in them or in a log
    text = yaml.safe_dump_all(docs)
    for secret in (s.secret_access_key, s.access_key_id):
        assert secret not in text and not any(secret in log for log in logs)
    # the exit handler after a failure of a later run leaves this commit alone
    finish(pod.run(t["abort"]))
    assert s.head("report", "main") == commit


def test_commit_killed_while_its_merge_lands_is_rerun_to_one_commit(lakefs_standin, tmp_path):
    s = lakefs_standin
    s.seed("texts", {"a.txt": b"x"})
    s.seed("report", {})
    t = templates(manifests(tmp_path, {}))
    pod = Pod(s, tmp_path)
    finish(pod.run(t["open"], **task_arguments(t["report"], "open")))
    branch = pod.param("branch")
    pod.worker(t["report-worker"], "0", branch, pfs="w")
    before = s.head("report", "main")
    s.faults.add("mergeIntoBranch", "timeout", apply=True, delay=3.0)
    commit = task_arguments(t["report"], "commit", branch=branch)
    proc = pod.run(t["commit"], **commit)
    deadline = time.monotonic() + 600  # waits for an event, not on work
    # The stand-in records a request once handled: the merge has applied, its answer is held
    while not s.calls("mergeIntoBranch") and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    merged = s.head("report", "main")
    assert merged != before  # landed, and nobody was told
    finish(pod.run(t["commit"], **commit))  # Argo's retryStrategy runs it again
    assert s.head("report", "main") == merged == pod.param("commit")
    assert s.commit("report", merged).parents[0] == before
    with s.store.lock:
        assert branch not in s.store.repository("report").branches


def test_a_worker_killed_mid_job_resumes_in_a_new_pod_and_each_output_lands_once(
        lakefs_standin, tmp_path):
    """The runtime of a worker pod is killed (a lost node, an OOM kill) while datum 15 of 30
    runs; Argo runs the pod again, with a fresh /pfs: it skips what was published, and no
    more datums run twice than were in flight."""
    s = lakefs_standin
    s.seed("texts", {f"{i:02d}.txt": str(i).encode() for i in range(30)})
    s.seed("report", {})
    ran, held, release = tmp_path / "ran", tmp_path / "held", tmp_path / "release"
    code = (f'echo "$PACH_DATUM_ID" >> {ran}; if [ -e texts/15.txt ] && [ ! -e {release} ]; '
            f'then : > {held}; while [ ! -e {release} ]; do sleep 0.01; done; fi; ' + COUNT)
    t = templates(manifests(tmp_path, {}, {**SPEC, "transform": {
        "image": "busybox:1", "cmd": ["sh", "-c", code]}}))
    pod = Pod(s, tmp_path)
    finish(pod.run(t["open"], **task_arguments(t["report"], "open")))
    branch = pod.param("branch")
    template = t["report-worker"]
    (tmp_path / "first").mkdir()
    finish(pod.run(template, "prepare", pfs="first"))
    user = template.container("user")
    loop = pod.run(template, "user", pfs="first", argv=[
        "/bin/sh", str(tmp_path / "first" / ".dsc-worker" / "loop.sh"), *user["args"]])
    runtime = pod.run(template, "main", pfs="first", worker="0", branch=branch)
    waited = time.monotonic() + 600  # waits for an event, not on work
    while not held.exists() and time.monotonic() < waited and runtime.poll() is None:
        time.sleep(0.02)
    assert held.exists(), runtime.communicate()[1]
    runtime.send_signal(signal.SIGKILL)
    runtime.wait()
    release.touch()
    loop.communicate(timeout=600)  # the loop ends with the runtime's end of its FIFOs
    first = ran.read_text().split()
    log = pod.worker(template, "0", branch, pfs="second")  # Argo's retry: a new pod
    match = re.search(r"(\d+) published by an earlier attempt; (\d+) to process", log)
    assert match, log
    published, left = int(match.group(1)), int(match.group(2))
    assert published + left == 30 and published >= 15 - 3
    finish(pod.run(t["commit"], **task_arguments(t["report"], "commit", branch=branch)))
    commit = s.head("report", "main")
    files = {p: v for p, v in s.objects("report", commit).items() if not p.startswith(".dsc/")}
    assert files == {f"{i:02d}.n": b"1\n" for i in range(30)}  # each datum's, once
    assert s.commit("report", commit).metadata["dsc.datums"] == \
        "total=30 processed=30 skipped=0 deleted=0 recovered=0"
    every = ran.read_text().split()
    twice = len(every) - len(set(every))
    # in flight when it died: datum 15 (running) and at most 2 handed to the publisher
    assert len(every) - len(first) == left  # the new pod ran only what was not published
    assert 1 <= twice <= 3


def test_credentials_never_show_in_errors(lakefs_standin, tmp_path):
    s = lakefs_standin
    s.seed("texts", {"a.txt": b"x"})
    t = templates(manifests(tmp_path, {}))
    opening = task_arguments(t["report"], "open")
    pod = Pod(s, tmp_path)
    pod.secret["dsc-lakefs"]["secret_access_key"] = "wrong-" + s.secret_access_key
    err = finish(pod.run(t["open"], **opening), code=3)
    assert "401" in err and s.secret_access_key not in err and "Traceback" not in err
    pod = Pod(s, tmp_path)
    pod.secret["dsc-lakefs"]["endpoint"] = "http://127.0.0.1:9"  # nothing listens
    # lakeFS unreachable: 75, the one code Argo retries (contract.RETRY_EXPRESSION)
    err = finish(pod.run(t["open"], **opening), code=75)
    assert "no response: cannot connect" in err and s.secret_access_key not in err
    assert s.access_key_id not in err


def test_dsc_datums_reads_a_live_lakefs(lakefs_standin, tmp_path):
    s = lakefs_standin
    data = SEED / "data" / "parameters"
    s.seed("parameters", {str(p.relative_to(data)): p.read_bytes()
                          for p in data.rglob("*") if p.is_file()}, branch="master")
    train = s.seed("split", {"train.csv": b"1\n", "test.csv": b"2\n"}, branch="master")
    env = {"LAKEFS_ENDPOINT": s.endpoint, "LAKEFS_ACCESS_KEY_ID": s.access_key_id,
           "LAKEFS_SECRET_ACCESS_KEY": s.secret_access_key, "DSC_DEFAULT_BRANCH": "master"}
    proc = dsc("datums", str(SEED / "pipelines"), "--pipeline", "model", "--lakefs", "--count",
               env=env)
    assert proc.stdout.strip() == "77"
    assert f"repo `split`: lakeFS split@master at {train}" in proc.stderr
    proc = dsc("datums", str(SEED / "pipelines"), "--pipeline", "split", "--lakefs",
               "--count", env=env)
    assert proc.stdout.strip() == "0"
    assert "repo `raw_data` is not in lakeFS" in proc.stderr
    proc = dsc("datums", str(SEED / "pipelines"), "--pipeline", "model", "--lakefs",
               env={}, check=False)
    assert proc.returncode == 2 and "LAKEFS_ENDPOINT" in proc.stderr


def test_a_step_without_its_run_variables_or_with_an_option_twice_is_a_usage_error(tmp_path):
    # Argo sets DSC_RUN from {{workflow.name}}: a pod without it was not made by dsc compile.
    missing = dsc("runtime", "open", "--job", "{}", env={}, check=False, cwd=tmp_path)
    assert missing.returncode == 2, missing.stderr
    assert "DSC_RUN" in missing.stderr and "internal error" not in missing.stderr
    twice = dsc("runtime", "commit", "--job", "{}", "--job", "{}", "--job-branch", "b",
                env={"DSC_RUN": "r", "DSC_RUN_UID": "u"}, check=False, cwd=tmp_path)
    assert twice.returncode == 2
    assert "--job is given 2 times; give it once" in twice.stderr
