"""compiler.lakefs.client against the lakeFS stand-in: typed errors, retries only where safe,
"already done" treated as success, and pagination."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.lakefs.client import LakeFS, RetryPolicy
from compiler.store import Conflict, LakeFSError, NotFound, Unauthorized, Unavailable

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


# Paths whose order a listing read in ranges could get wrong: a file sorting just before and
# just after a directory's files ("a.txt" < "a/..." < "a0"), nested levels, and a directory
# of 235 directories (where the ranges start) followed by more files ("z", "~").
TRICKY = ["a.txt", "a/1", "a/2", "a0", "b/c/d", "b/c/e", "b.txt", "z", "~",
          *(f"dir/{i // 10:03d}/{i}.png" for i in range(2_345))]


def joined(pages: Any) -> tuple[list[str], list[int], list[str]]:
    paths: list[str] = []
    sizes: list[int] = []
    checksums: list[str] = []
    for p, s, c in pages:
        paths += p
        sizes += s
        checksums += c
    return paths, sizes, checksums


@pytest.fixture
def small_pages(monkeypatch: Any) -> None:
    """Pages of 10: a listing of a few thousand keys is hundreds of pages."""
    monkeypatch.setattr("compiler.lakefs.client.PAGE", 10)
    monkeypatch.setattr("compiler.lakefs.client.SPLIT_PAGES", 100)


def test_a_listing_read_in_ranges_gives_what_one_listing_gives(lakefs_standin: Any,
                                                               small_pages: None) -> None:
    head = lakefs_standin.seed("raw", {path: path.encode() for path in TRICKY})
    lakefs = client(lakefs_standin)
    one = joined(lakefs.object_columns("raw", head, streams=1))
    assert one[0] == sorted(TRICKY)
    assert one[1] == [len(path) for path in sorted(TRICKY)]
    before = len(lakefs_standin.calls("listObjects"))
    assert joined(lakefs.object_columns("raw", head, streams=4)) == one
    split = lakefs_standin.calls("listObjects")[before:]
    # the top level has few entries left after the first page: split below `dir/`, in 16
    assert [r.query["prefix"] for r in split if "delimiter" in r.query][:1] == [""]
    assert "dir/" in {r.query["prefix"] for r in split if "delimiter" in r.query}
    assert len({r.query["after"] for r in split if "delimiter" not in r.query}) >= 16
    assert joined(lakefs.object_columns("raw", head, "dir/", streams=4))[0] == \
        [path for path in sorted(TRICKY) if path.startswith("dir/")]


def test_a_listing_is_read_in_ranges_only_where_it_pays(lakefs_standin: Any,
                                                        small_pages: None) -> None:
    lakefs = client(lakefs_standin)

    def requests(repo: str, files: list[str]) -> int:
        head = lakefs_standin.seed(repo, {path: b"x" for path in files})
        before = len(lakefs_standin.calls("listObjects"))
        assert joined(lakefs.object_columns(repo, head, streams=4))[0] == sorted(files)
        return len(lakefs_standin.calls("listObjects")) - before

    assert requests("one", ["a/1", "b/2"]) == 1  # one page, one request
    assert requests("flat", [f"{i:03d}" for i in range(30)]) == 3  # files only: as it is
    assert requests("two", [f"d{i // 5}/{i}" for i in range(20)]) == 1 + 1 + 1  # 2 pages
    # 300 directories of a file under one: 30 pages; split below `only/` into 16 ranges
    # that read at most one page more each
    head = lakefs_standin.seed("raw", {f"only/{i:03d}/x": b"x" for i in range(300)})
    before = len(lakefs_standin.calls("listObjects"))
    assert len(joined(lakefs.object_columns("raw", head, streams=4))[0]) == 300
    calls = lakefs_standin.calls("listObjects")[before:]
    assert [r.query["prefix"] for r in calls if "delimiter" in r.query][:2] == ["", "only/"]
    ranges = [r for r in calls if "delimiter" not in r.query][1:]
    assert len(ranges) <= 29 + 16
    assert len({r.query["after"] for r in ranges}) >= 16


def test_a_listing_in_ranges_retries_a_range_and_raises_what_cannot_succeed(
        lakefs_standin: Any, small_pages: None) -> None:
    head = lakefs_standin.seed("raw", {path: b"x" for path in TRICKY})
    lakefs = client(lakefs_standin)

    def ranges_after(start: str) -> Any:  # the range requests from somewhere after `start`
        return lambda info: "delimiter" not in info.query and \
            info.query.get("after", "").startswith(start)

    lakefs_standin.faults.add("listObjects", 503, times=1, where=ranges_after("dir/1"))
    assert joined(lakefs.object_columns("raw", head, streams=4))[0] == sorted(TRICKY)
    lakefs_standin.faults.add("listObjects", 401, times=None, where=ranges_after("dir/2"))
    with pytest.raises(Unauthorized, match="lakeFS list objects: 401"):
        list(lakefs.object_columns("raw", head, streams=4))


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
    made = lakefs.commit_once("out", "dsc-job-1", "job 1", {RUN: "uid-1"}, RUN, since=base)
    assert made.metadata[RUN] == "uid-1" and made.parents == (base,)
    assert lakefs_standin.head("out", "dsc-job-1") == made.id
    again = lakefs.commit_once("out", "dsc-job-1", "job 1", {RUN: "uid-1"}, RUN, since=base)
    assert again == made
    assert len([r for r in lakefs_standin.calls("commit") if r.applied]) == 1


@pytest.mark.parametrize("kind", [500, "reset", "timeout"])
def test_a_merge_lands_once_whatever_the_fault(lakefs_standin: Any, kind: Any) -> None:
    base = lakefs_standin.seed("out", {"old": b"1"})
    lakefs = client(lakefs_standin)
    lakefs.create_branch_once("out", "dsc-job-2", base)
    lakefs.upload("out", "dsc-job-2", "new", b"2")
    lakefs.commit_once("out", "dsc-job-2", "job", {RUN: "uid-2"}, RUN, since=base)
    lakefs_standin.faults.add("mergeIntoBranch", kind, apply=True, delay=1.0)
    merged = lakefs.merge_once("out", "dsc-job-2", "main", "merge job", {RUN: "uid-2"}, RUN,
                               since=base)
    assert lakefs_standin.head("out", "main") == merged.id
    assert lakefs_standin.objects("out", "main") == {"old": b"1", "new": b"2"}
    assert len([r for r in lakefs_standin.calls("mergeIntoBranch") if r.applied]) == 1


def test_a_fault_before_the_merge_applies_is_retried_once_more(lakefs_standin: Any) -> None:
    base = lakefs_standin.seed("out", {"old": b"1"})
    lakefs = client(lakefs_standin)
    lakefs.create_branch_once("out", "dsc-job-3", base)
    lakefs.commit_once("out", "dsc-job-3", "job", {RUN: "uid-3"}, RUN, since=base)
    lakefs_standin.faults.add("mergeIntoBranch", 503)
    merged = lakefs.merge_once("out", "dsc-job-3", "main", "merge", {RUN: "uid-3"}, RUN,
                               since=base)
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
    lakefs.commit_once("out", "dsc-job-6", "job", {RUN: "uid-6"}, RUN, since=base)
    lakefs_standin.seed("out", {"a": b"someone else"})
    before = lakefs_standin.head("out", "main")
    with pytest.raises(Conflict):
        lakefs.merge_once("out", "dsc-job-6", "main", "merge", {RUN: "uid-6"}, RUN, since=base)
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
    (opening,) = [t for tpl in run["spec"]["templates"] if tpl["name"] == "prep"
                  for t in tpl["dag"]["tasks"] if t["name"] == "open"]
    options = {a["name"]: a["value"] for a in opening["arguments"]["parameters"]}
    assert options["pins"] == f"raw_data@{head}" and options["expect-datums"] == "3"
    assert lakefs_standin.secret_access_key not in result.stdout + result.stderr

    missing = run_dsc("compile", "--pin", str(tmp_path),
                      env={"LAKEFS_ENDPOINT": "", "LAKEFS_ACCESS_KEY_ID": "",
                           "LAKEFS_SECRET_ACCESS_KEY": ""})
    assert missing.exit_code == 2 and "needs LAKEFS_ENDPOINT" in missing.stderr
    lakefs_standin.faults.add("getBranch", 404, times=None)
    gone = run_dsc("compile", "--pin", str(tmp_path), env=env)
    assert gone.exit_code == 3 and "--pin: lakeFS get branch: 404" in gone.stderr
    # the refusal names the repository and branch it could not find
    assert "input `raw_data`: raw-data@main" in gone.stderr
    assert lakefs_standin.secret_access_key not in gone.stderr


# --- issue 19: history, not the head, says whether a commit or merge landed ----------------

def another_writer(standin: Any, repo: str, branch: str, files: dict[str, bytes]
                   ) -> tuple[Any, list[str]]:
    """A `then` hook: another client commits to `branch` over HTTP, from its own thread,
    while the stand-in holds back the answer to dsc's request (so it lands in between)."""
    import threading

    made: list[str] = []

    def commit() -> None:
        other = client(standin)
        for path, data in files.items():
            other.upload(repo, branch, path, data)
        made.append(other._call("commit", other._api("CommitsApi").commit, repo, branch,
                                other._sdk.CommitCreation(message="by hand"),
                                idempotent=False).id)

    def then() -> None:
        thread = threading.Thread(target=commit)
        thread.start()
        thread.join()

    return then, made


def test_a_merge_whose_answer_is_lost_under_a_concurrent_commit_lands_once(
        lakefs_standin: Any) -> None:
    base = lakefs_standin.seed("out", {"old": b"1"})
    lakefs = client(lakefs_standin)
    lakefs.create_branch_once("out", "dsc-job-7", base)
    lakefs.upload("out", "dsc-job-7", "new", b"2")
    lakefs.commit_once("out", "dsc-job-7", "job", {RUN: "uid-7"}, RUN, since=base)
    then, made = another_writer(lakefs_standin, "out", "main", {"theirs": b"3"})
    lakefs_standin.faults.add("mergeIntoBranch", "reset", apply=True, then=then)
    merged = lakefs.merge_once("out", "dsc-job-7", "main", "merge", {RUN: "uid-7"}, RUN,
                               since=base)
    # The merge found is the one that landed, under the other writer's commit; no second,
    # empty merge claims this run's provenance over the other writer's content.
    log = lakefs_standin.log("out", "main", first_parent=True)
    assert [c.id for c in log[:3]] == [made[0], merged.id, base]
    assert merged.metadata[RUN] == "uid-7"
    assert [c.metadata.get(RUN) for c in log].count("uid-7") == 1
    assert len([r for r in lakefs_standin.calls("mergeIntoBranch") if r.applied]) == 1


def test_a_commit_whose_answer_is_lost_under_a_concurrent_commit_lands_once(
        lakefs_standin: Any) -> None:
    base = lakefs_standin.seed("out", {"old": b"1"})
    lakefs = client(lakefs_standin)
    lakefs.create_branch_once("out", "dsc-job-8", base)
    lakefs.upload("out", "dsc-job-8", "new", b"2")
    then, made = another_writer(lakefs_standin, "out", "dsc-job-8", {"theirs": b"3"})
    lakefs_standin.faults.add("commit", "timeout", apply=True, then=then, delay=1.0)
    done = lakefs.commit_once("out", "dsc-job-8", "job", {RUN: "uid-8"}, RUN, since=base)
    log = lakefs_standin.log("out", "dsc-job-8", first_parent=True)
    assert [c.id for c in log[:3]] == [made[0], done.id, base]
    assert [c.metadata.get(RUN) for c in log].count("uid-8") == 1
    assert len([r for r in lakefs_standin.calls("commit") if r.applied]) == 2  # ours, theirs


def test_delete_objects_checks_each_paths_answer(lakefs_standin: Any) -> None:
    lakefs_standin.seed("out", {"a": b"1", "b": b"2", "c": b"3"})
    lakefs = client(lakefs_standin)
    # lakeFS's KV store failed on one path (500 inside a 200 answer): deleted again
    lakefs_standin.faults.add_path("deleteObjects", 500, where=lambda p: p == "b")
    lakefs.delete_objects("out", "main", ["a", "b"])
    assert set(lakefs_standin.objects("out", "main")) == {"c"}
    assert len(lakefs_standin.calls("deleteObjects")) == 2  # the second for "b" alone
    # a protected path (403) cannot be deleted by trying again: the call fails, naming it
    lakefs_standin.faults.add_path("deleteObjects", 403, where=lambda p: p == "c", times=None)
    with pytest.raises(Unauthorized, match=r"could not delete 1 of 1 paths on out@main: c "
                                           r"\(403: cannot write to protected branch"):
        lakefs.delete_objects("out", "main", ["c"])
    assert set(lakefs_standin.objects("out", "main")) == {"c"}
    assert len(lakefs_standin.calls("deleteObjects")) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412])
def test_answers_that_cannot_change_are_not_retried(lakefs_standin: Any, status: int) -> None:
    lakefs_standin.seed("raw", {"a": b"1"})
    lakefs_standin.faults.add("getBranch", status, times=None)
    lakefs = client(lakefs_standin)
    with pytest.raises(LakeFSError) as raised:
        lakefs.head("raw", "main")
    assert raised.value.status == status and not raised.value.transient
    assert len(lakefs_standin.calls("getBranch")) == 1 and lakefs.slept == []  # type: ignore[attr-defined]


def test_an_endpoint_that_never_answers_is_given_up_on_by_its_deadline(
        lakefs_standin: Any) -> None:
    """Attempts stop once the next would start past the call's deadline, whatever the attempt
    count allows (the clock is the test's, so nothing here waits on time)."""
    lakefs_standin.seed("raw", {"a": b"1"})
    lakefs_standin.faults.add("getBranch", "timeout", times=None, delay=1.0)
    now = [0.0]
    lakefs = LakeFS(lakefs_standin.endpoint, lakefs_standin.access_key_id,
                    lakefs_standin.secret_access_key,
                    RetryPolicy(attempts=50, timeout=(2.0, 0.2), deadline=10.0,
                                sleep=lambda s: now.__setitem__(0, now[0] + s),
                                clock=lambda: now.__setitem__(0, now[0] + 3.0) or now[0]))
    with pytest.raises(Unavailable, match=r"no answer within the read timeout.*gave up after"):
        lakefs.head("raw", "main")
    assert 2 <= len(lakefs_standin.calls("getBranch")) <= 4


def test_a_refused_endpoint_is_named_in_one_line(tmp_path: Any) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lakefs = LakeFS(f"http://127.0.0.1:{port}", "AKIA", "secret-value",
                    RetryPolicy(attempts=2, sleep=lambda _s: None))
    with pytest.raises(Unavailable) as raised:
        lakefs.head("raw", "main")
    text = str(raised.value)
    assert "cannot connect" in text and "refused" in text.lower()
    assert "\n" not in text and "secret-value" not in text


def test_copy_copies_inside_lakefs_and_may_be_retried(lakefs_standin: Any) -> None:
    kept = lakefs_standin.seed("out", {"m.pkl": b"model"})
    lakefs = client(lakefs_standin)
    lakefs.create_branch_once("out", "dsc-job-9", kept)
    lakefs.delete_objects("out", "dsc-job-9", ["m.pkl"])
    lakefs_standin.faults.add("copyObject", "timeout", apply=True)  # landed, answer lost
    copied = lakefs.copy("out", kept, "m.pkl", "dsc-job-9")
    assert copied.path == "m.pkl" and copied.size == 5
    assert copied.checksum == next(lakefs.objects("out", kept)).checksum
    assert lakefs.read("out", "dsc-job-9", "m.pkl") == b"model"
    assert len(lakefs_standin.calls("copyObject")) == 2
