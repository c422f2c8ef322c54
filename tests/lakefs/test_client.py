"""compiler.lakefs.client against the lakeFS stand-in: typed errors, retries only where safe,
"already done" treated as success, and pagination."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.lakefs.client import (
    Conflict,
    LakeFS,
    NotFound,
    RetryPolicy,
    Unauthorized,
    Unavailable,
)

RUN = "dsc.workflow.uid"


def client(standin: Any, **policy: Any) -> LakeFS:
    slept: list[float] = []
    lakefs = LakeFS(standin.endpoint, standin.access_key_id, standin.secret_access_key,
                    RetryPolicy(sleep=slept.append, timeout=(2.0, 0.5), **policy))
    lakefs.slept = slept  # type: ignore[attr-defined]
    return lakefs


def test_reads_pins_and_lists_a_commit_a_thousand_at_a_time(lakefs_standin: Any) -> None:
    files = {f"images/{i:04d}.png": b"x" * (i % 7) for i in range(2_345)}
    head = lakefs_standin.seed("raw", files)
    lakefs = client(lakefs_standin)
    assert lakefs.head("raw", "main") == head
    listed = list(lakefs.objects("raw", head))
    assert [o.path for o in listed] == sorted(files)
    assert {o.size for o in listed} == {len(v) for v in files.values()}
    assert [r.query.get("amount") for r in lakefs_standin.calls("listObjects")] == ["1000"] * 3
    assert list(lakefs.listing("raw", head))[:2] == ["images/0000.png", "images/0001.png"]
    assert lakefs.read("raw", head, "images/0003.png") == b"xxx"


def test_errors_are_typed_and_name_the_call(lakefs_standin: Any) -> None:
    lakefs = client(lakefs_standin)
    with pytest.raises(NotFound, match="lakeFS get branch: 404"):
        lakefs.head("nowhere", "main")
    wrong = LakeFS(lakefs_standin.endpoint, lakefs_standin.access_key_id, "not-the-secret",
                   RetryPolicy(sleep=lambda _: None))
    with pytest.raises(Unauthorized) as raised:
        wrong.head("nowhere", "main")
    assert "not-the-secret" not in str(raised.value)


@pytest.mark.parametrize("kind", [500, 503, 429, "reset", "timeout"])
def test_idempotent_reads_are_retried_with_backoff(lakefs_standin: Any, kind: Any) -> None:
    head = lakefs_standin.seed("raw", {"a": b"1"})
    lakefs_standin.faults.add("getBranch", kind, times=2, delay=1.0)
    lakefs = client(lakefs_standin)
    assert lakefs.head("raw", "main") == head
    assert len(lakefs.slept) == 2 and lakefs.slept[0] < lakefs.slept[1] * 2  # type: ignore[attr-defined]


def test_retries_are_bounded(lakefs_standin: Any) -> None:
    lakefs_standin.seed("raw", {"a": b"1"})
    lakefs_standin.faults.add("getBranch", 500, times=None)
    with pytest.raises(Unavailable, match="500"):
        client(lakefs_standin, attempts=3).head("raw", "main")
    assert len(lakefs_standin.calls("getBranch")) == 3


def test_a_lost_commit_response_never_makes_a_second_commit(lakefs_standin: Any) -> None:
    base = lakefs_standin.seed("out", {"old": b"1"})
    lakefs = client(lakefs_standin)
    lakefs.create_branch_once("out", "dsc-job-1", base)
    lakefs.upload("out", "dsc-job-1", "new", b"2")
    lakefs_standin.faults.add("commit", "reset", apply=True)
    made = lakefs.commit_once("out", "dsc-job-1", "job 1", {RUN: "uid-1"}, RUN)
    assert made.metadata[RUN] == "uid-1" and made.parents == (base,)
    assert lakefs_standin.head("out", "dsc-job-1") == made.id
    again = lakefs.commit_once("out", "dsc-job-1", "job 1", {RUN: "uid-1"}, RUN)
    assert again == made
    assert len([r for r in lakefs_standin.calls("commit") if r.applied]) == 1


@pytest.mark.parametrize("kind", [500, "reset", "timeout"])
def test_a_merge_lands_once_whatever_the_fault(lakefs_standin: Any, kind: Any) -> None:
    base = lakefs_standin.seed("out", {"old": b"1"})
    lakefs = client(lakefs_standin)
    lakefs.create_branch_once("out", "dsc-job-2", base)
    lakefs.upload("out", "dsc-job-2", "new", b"2")
    lakefs.commit_once("out", "dsc-job-2", "job", {RUN: "uid-2"}, RUN)
    lakefs_standin.faults.add("mergeIntoBranch", kind, apply=True, delay=1.0)
    merged = lakefs.merge_once("out", "dsc-job-2", "main", "merge job", {RUN: "uid-2"}, RUN)
    assert lakefs_standin.head("out", "main") == merged.id
    assert lakefs_standin.objects("out", "main") == {"old": b"1", "new": b"2"}
    assert len([r for r in lakefs_standin.calls("mergeIntoBranch") if r.applied]) == 1


def test_a_fault_before_the_merge_applies_is_retried_once_more(lakefs_standin: Any) -> None:
    base = lakefs_standin.seed("out", {"old": b"1"})
    lakefs = client(lakefs_standin)
    lakefs.create_branch_once("out", "dsc-job-3", base)
    lakefs.commit_once("out", "dsc-job-3", "job", {RUN: "uid-3"}, RUN)
    lakefs_standin.faults.add("mergeIntoBranch", 503)
    merged = lakefs.merge_once("out", "dsc-job-3", "main", "merge", {RUN: "uid-3"}, RUN)
    assert merged.metadata[RUN] == "uid-3"
    assert len(lakefs_standin.calls("mergeIntoBranch")) == 2


def test_branch_creation_is_idempotent_only_where_it_points(lakefs_standin: Any) -> None:
    base = lakefs_standin.seed("out", {"a": b"1"})
    other = lakefs_standin.seed("out", {"b": b"2"})
    lakefs = client(lakefs_standin)
    lakefs_standin.faults.add("createBranch", "reset", apply=True)
    lakefs.create_branch_once("out", "dsc-job-4", base)  # lost response: read back, fine
    lakefs.create_branch_once("out", "dsc-job-4", base)  # a retry: 409 at the same commit
    assert lakefs_standin.head("out", "dsc-job-4") == base
    with pytest.raises(Conflict, match="does not point at"):
        lakefs.create_branch_once("out", "dsc-job-4", other)


def test_deleting_a_missing_branch_is_success(lakefs_standin: Any) -> None:
    lakefs_standin.seed("out", {"a": b"1"})
    lakefs = client(lakefs_standin)
    lakefs.delete_branch("out", "dsc-never-made")
    lakefs.create_branch_once("out", "dsc-job-5", lakefs.head("out", "main"))
    lakefs_standin.faults.add("deleteBranch", "reset", apply=True)
    lakefs.delete_branch("out", "dsc-job-5")
    with pytest.raises(NotFound):
        lakefs.head("out", "dsc-job-5")


def test_merge_conflicts_are_reported_not_retried(lakefs_standin: Any) -> None:
    base = lakefs_standin.seed("out", {"a": b"1"})
    lakefs = client(lakefs_standin)
    lakefs.create_branch_once("out", "dsc-job-6", base)
    lakefs.upload("out", "dsc-job-6", "a", b"job")
    lakefs.commit_once("out", "dsc-job-6", "job", {RUN: "uid-6"}, RUN)
    lakefs_standin.seed("out", {"a": b"someone else"})
    before = lakefs_standin.head("out", "main")
    with pytest.raises(Conflict):
        lakefs.merge_once("out", "dsc-job-6", "main", "merge", {RUN: "uid-6"}, RUN)
    assert lakefs_standin.head("out", "main") == before
    assert len(lakefs_standin.calls("mergeIntoBranch")) == 1


def test_uploads_stream_a_file_and_retry_from_its_start(lakefs_standin: Any, tmp_path: Any
                                                        ) -> None:
    lakefs_standin.seed("out", {"a": b"1"})
    big = tmp_path / "model.bin"
    data = bytes(range(256)) * 20_000  # 5 MB
    big.write_bytes(data)
    lakefs = client(lakefs_standin)
    lakefs_standin.faults.add("uploadObject", "reset")
    with big.open("rb") as stream:
        stream.read(100)  # the caller's position is where the upload starts
        info = lakefs.upload("out", "main", "models/model.bin", stream)
    assert info.size == len(data) - 100
    assert lakefs_standin.read("out", "main", "models/model.bin") == data[100:]
    assert len(lakefs_standin.calls("uploadObject")) == 2


def test_429_waits_as_long_as_retry_after_says(lakefs_standin: Any) -> None:
    lakefs_standin.seed("out", {"a": b"1"})
    lakefs_standin.faults.add("uploadObject", 429, retry_after=3)
    lakefs = client(lakefs_standin, max_delay=10.0)
    lakefs.upload("out", "main", "x", b"y")
    (waited,) = lakefs.slept  # type: ignore[attr-defined]
    assert 1.5 <= waited <= 3.0


def test_dsc_compile_pin_reads_a_live_lakefs(lakefs_standin: Any, tmp_path: Any) -> None:
    import json

    from tests.conftest import run_dsc

    head = lakefs_standin.seed("raw-data", {f"{n}.csv": b"1" for n in ("b", "a", "c")})
    (tmp_path / "prep.json").write_text(json.dumps({
        "pipeline": {"name": "prep"}, "transform": {"image": "python:3.12-slim",
                                                    "cmd": ["python3", "prep.py"]},
        "input": {"pfs": {"repo": "raw_data", "glob": "/*"}}}))
    env = {"LAKEFS_ENDPOINT": lakefs_standin.endpoint,
           "LAKEFS_ACCESS_KEY_ID": lakefs_standin.access_key_id,
           "LAKEFS_SECRET_ACCESS_KEY": lakefs_standin.secret_access_key}
    result = run_dsc("compile", "--pin", "-o", "json", str(tmp_path), env=env)
    assert result.exit_code == 0, result.stderr
    run = json.loads(result.stdout)["items"][1]
    assert f"raw_data@{head}" in json.dumps(run)
    (datums,) = [t for tpl in run["spec"]["templates"] if tpl["name"] == "prep"
                 for t in tpl["dag"]["tasks"] if t["name"] == "datums"]
    assert datums["withItems"] == ["0-a.csv", "1-b.csv", "2-c.csv"]
    assert lakefs_standin.secret_access_key not in result.stdout + result.stderr

    missing = run_dsc("compile", "--pin", str(tmp_path),
                      env={"LAKEFS_ENDPOINT": "", "LAKEFS_ACCESS_KEY_ID": "",
                           "LAKEFS_SECRET_ACCESS_KEY": ""})
    assert missing.exit_code == 2 and "needs LAKEFS_ENDPOINT" in missing.stderr
    lakefs_standin.faults.add("getBranch", 404, times=None)
    gone = run_dsc("compile", "--pin", str(tmp_path), env=env)
    assert gone.exit_code == 3 and "--pin: lakeFS get branch: 404" in gone.stderr
    assert lakefs_standin.secret_access_key not in gone.stderr
