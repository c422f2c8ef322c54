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
SPEC = {"pipeline": {"name": "report"}, "transform": {"image": "busybox:1", "cmd": ["true"]},
        "input": {"pfs": {"repo": "texts", "glob": "/*"}}}


def dsc(*args: str, env: dict[str, str], check: bool = True, **kw: Any):
    proc = subprocess.run([sys.executable, "-m", "compiler", *args], capture_output=True,
                          text=True, env={"PATH": os.environ["PATH"], **env}, cwd=kw.get("cwd"))
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def manifests(tmp: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    (tmp / "specs").mkdir(exist_ok=True)
    (tmp / "specs" / "report.json").write_text(json.dumps(SPEC))
    out = dsc("compile", str(tmp / "specs"), env=env, cwd=tmp).stdout
    return list(yaml.safe_load_all(out))


def containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The runtime containers by verb, from the WorkflowTemplate."""
    found = {}
    for doc in docs:
        for t in doc["spec"].get("templates", []):
            for c in [t.get("container"), *(t.get("containerSet") or {}).get("containers", [])]:
                if c and c.get("command") == ["dsc"]:
                    found[c["args"][1]] = c
    return found


class Pod:
    """A container's argv and environment with Argo's variables filled in."""

    def __init__(self, standin, tmp: Path, run: str = "report-5e1f0a2b3") -> None:
        self.secret = {"dsc-lakefs": {
            "access_key_id": standin.access_key_id,
            "secret_access_key": standin.secret_access_key}}
        self.values = {"workflow.name": run, "workflow.uid": "0f0e0d0c-uid",
                       "workflow.creationTimestamp": "2026-11-25T10:00:00Z",
                       "workflow.namespace": "argo", "workflow.status": "Failed",
                       "workflow.parameters.reprocess": ""}
        self.endpoint = standin.endpoint
        self.tmp = tmp

    def run(self, container: dict[str, Any], pfs: str = "pfs", check: bool = True,
            **params: str):
        values = {**self.values, **{f"inputs.parameters.{k}": v for k, v in params.items()}}

        def fill(text: str) -> str:
            return re.sub(r"\{\{([^}]+)\}\}", lambda m: values[m.group(1)], text)

        env = {"DSC_PFS": str(self.tmp / pfs), "DSC_OUTPUT_DIR": str(self.tmp / "params")}
        for e in container.get("env", []):
            if "valueFrom" in e:
                ref = e["valueFrom"]["secretKeyRef"]
                env[e["name"]] = self.secret[ref["name"]][ref["key"]]
            else:
                env[e["name"]] = fill(e["value"])
        env.setdefault("LAKEFS_ENDPOINT", self.endpoint)
        return subprocess.Popen([sys.executable, "-m", "compiler",
                                 *[fill(a) for a in container["args"]]],
                                env={"PATH": os.environ["PATH"], **env},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def param(self, name: str) -> str:
        return (self.tmp / "params" / name).read_text()


def finish(proc: subprocess.Popen, code: int = 0) -> str:
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == code, err
    return err


def test_a_job_through_the_manifests_argv_in_fresh_processes(lakefs_standin, tmp_path):
    s = lakefs_standin
    s.seed("texts", {"a.txt": b"one two", "b.txt": b"three"})
    s.seed("report", {})
    docs = manifests(tmp_path, {"DSC_LAKEFS_ENDPOINT": s.endpoint,
                                "DSC_LAKEFS_UI_URL": "https://lakefs.example",
                                "DSC_ARGO_UI_URL": "https://argo.example"})
    c = containers(docs)
    assert set(c) == {"open", "stage", "publish", "commit", "abort"}
    pod = Pod(s, tmp_path)
    logs = [finish(pod.run(c["open"]))]
    keys = json.loads(pod.param("datums.json"))
    branch = pod.param("branch")
    assert keys == ["0-a.txt", "1-b.txt"] and branch == "dsc-report-report-5e1f0a2b3"
    for key in keys:
        logs.append(finish(pod.run(c["stage"], pfs=key, datum=key, branch=branch)))
        staged = next((tmp_path / key / "texts").iterdir())
        (tmp_path / key / "out" / (staged.stem + ".n")).write_text(
            str(len(staged.read_text().split())))
        logs.append(finish(pod.run(c["publish"], pfs=key, datum=key, branch=branch)))
    logs.append(finish(pod.run(c["commit"], branch=branch)))
    commit = pod.param("commit")
    assert commit == s.head("report", "main")
    assert pod.param("url") == f"https://lakefs.example/repositories/report/commits/{commit}"
    assert s.read("report", commit, "a.n") == b"2" and s.read("report", commit, "b.n") == b"1"
    meta = s.commit("report", commit).metadata
    assert meta["::lakefs::Argo::url[url:ui]"] == \
        "https://argo.example/workflows/argo/report-5e1f0a2b3"
    # what people read in the Argo UI: which datum, which files, how many bytes, how long
    assert re.search(r"stage report datum 0-a.txt \(\w{12}\): 1 files, 7 B in [\d.]+ s", logs[1])
    assert re.search(r"publish report datum 1-b.txt: 1 files, 1 B in [\d.]+ s", logs[4])
    # credentials: only secretKeyRefs in the manifests; never in a log line
    text = yaml.safe_dump_all(docs)
    for secret in (s.secret_access_key, s.access_key_id):
        assert secret not in text and not any(secret in log for log in logs)
    assert all(e.get("valueFrom") for e in c["open"]["env"]
               if e["name"] in ("LAKEFS_ACCESS_KEY_ID", "LAKEFS_SECRET_ACCESS_KEY"))
    # the exit handler after a failure of a later run leaves this commit alone
    finish(pod.run(c["abort"]))
    assert s.head("report", "main") == commit


def test_commit_killed_while_its_merge_lands_is_rerun_to_one_commit(lakefs_standin, tmp_path):
    s = lakefs_standin
    s.seed("texts", {"a.txt": b"x"})
    s.seed("report", {})
    c = containers(manifests(tmp_path, {"DSC_LAKEFS_ENDPOINT": s.endpoint}))
    pod = Pod(s, tmp_path)
    finish(pod.run(c["open"]))
    branch = pod.param("branch")
    finish(pod.run(c["stage"], pfs="d", datum="0", branch=branch))
    (tmp_path / "d" / "out" / "x.out").write_text("done")
    finish(pod.run(c["publish"], pfs="d", datum="0", branch=branch))
    before = s.head("report", "main")
    s.faults.add("mergeIntoBranch", "timeout", apply=True, delay=3.0)
    proc = pod.run(c["commit"], branch=branch)
    deadline = time.monotonic() + 600  # waits for an event, not on work
    # The stand-in records a request once handled: the merge has applied, its answer is held
    while not s.calls("mergeIntoBranch") and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    merged = s.head("report", "main")
    assert merged != before  # landed, and nobody was told
    finish(pod.run(c["commit"], branch=branch))  # Argo's retryStrategy runs it again
    assert s.head("report", "main") == merged == pod.param("commit")
    assert s.commit("report", merged).parents[0] == before
    with s.store.lock:
        assert branch not in s.store.repository("report").branches


def test_credentials_never_show_in_errors(lakefs_standin, tmp_path):
    s = lakefs_standin
    s.seed("texts", {"a.txt": b"x"})
    c = containers(manifests(tmp_path, {"DSC_LAKEFS_ENDPOINT": s.endpoint}))
    pod = Pod(s, tmp_path)
    pod.secret["dsc-lakefs"]["secret_access_key"] = "wrong-" + s.secret_access_key
    err = finish(pod.run(c["open"]), code=3)
    assert "401" in err and s.secret_access_key not in err and "Traceback" not in err
    pod = Pod(s, tmp_path)
    pod.endpoint = "http://127.0.0.1:9"  # nothing listens
    c["open"]["env"] = [e for e in c["open"]["env"] if e["name"] != "LAKEFS_ENDPOINT"]
    # lakeFS unreachable: 75, the one code Argo retries (contract.RETRY_EXPRESSION)
    err = finish(pod.run(c["open"]), code=75)
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
