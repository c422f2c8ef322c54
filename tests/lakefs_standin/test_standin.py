"""The lakeFS stand-in, driven through lakefs-sdk (and raw HTTP where the SDK cannot go).

Each test runs its own stand-in (`lakefs_standin`); its teardown fails the test on any request
or response outside swagger.yml, any request the stand-in does not model, and any declared fault
that never fired.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import lakefs_sdk
import pytest
import urllib3
from lakefs_sdk.client import LakeFSClient
from lakefs_sdk.exceptions import (
    ApiException,
    BadRequestException,
    ForbiddenException,
    NotFoundException,
    ServiceException,
    UnauthorizedException,
)
from pydantic.v1 import ValidationError

from tests.lakefs_standin import LakeFSStandIn, make_client, serving
from tests.lakefs_standin import operations as standin_operations

T = (2, 5)  # (connect, read) seconds; lakefs-sdk has no default timeout
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def new_repo(client: LakeFSClient, name: str = "images") -> str:
    client.repositories_api.create_repository(lakefs_sdk.RepositoryCreation(
        name=name, storage_namespace=f"local://bucket/{name}"), _request_timeout=T)
    return name


def upload(client: LakeFSClient, repo: str, branch: str, path: str, data: bytes) -> Any:
    return client.objects_api.upload_object(repo, branch, path, content=data,
                                            _request_timeout=T)


def commit(client: LakeFSClient, repo: str, branch: str, message: str = "c",
           **kwargs: Any) -> Any:
    return client.commits_api.commit(repo, branch, lakefs_sdk.CommitCreation(
        message=message, **kwargs), _request_timeout=T)


def raw(standin: LakeFSStandIn, method: str, path: str, *, auth: bool = True,
        **kwargs: Any) -> urllib3.BaseHTTPResponse:
    """A request lakefs-sdk would refuse to send, or one whose raw answer matters."""
    headers = dict(kwargs.pop("headers", {}))
    if auth:
        headers.update(urllib3.make_headers(
            basic_auth=f"{standin.access_key_id}:{standin.secret_access_key}"))
    return urllib3.request(method, standin.api_url + path, headers=headers, retries=False,
                           timeout=5, **kwargs)


def messages(violations: list[Any]) -> str:
    return "\n".join(str(v) for v in violations)


# -- repositories and branches --------------------------------------------------------------------

def test_repository_create_get_list_and_conflicts(lakefs_standin: LakeFSStandIn,
                                                 lakefs_client: LakeFSClient) -> None:
    repos = lakefs_client.repositories_api
    created = repos.create_repository(lakefs_sdk.RepositoryCreation(
        name="images", storage_namespace="local://bucket/images"), _request_timeout=T)
    assert (created.id, created.default_branch, created.storage_namespace) == (
        "images", "main", "local://bucket/images")
    assert repos.get_repository("images", _request_timeout=T) == created
    assert [r.id for r in repos.list_repositories(_request_timeout=T).results] == ["images"]
    # the initial commit of a new repository is on its default branch
    head = lakefs_client.branches_api.get_branch("images", "main", _request_timeout=T).commit_id
    assert HEX64.match(head)
    assert lakefs_standin.commit("images", head).message == "Repository created"

    with pytest.raises(ApiException) as exists:
        repos.create_repository(lakefs_sdk.RepositoryCreation(
            name="images", storage_namespace="local://bucket/other"), _request_timeout=T)
    assert exists.value.status == 409
    with pytest.raises(BadRequestException, match="storage namespace already in use"):
        repos.create_repository(lakefs_sdk.RepositoryCreation(
            name="images2", storage_namespace="local://bucket/images/"), _request_timeout=T)
    repos.delete_repository("images", _request_timeout=T)
    with pytest.raises(NotFoundException):
        repos.get_repository("images", _request_timeout=T)


def test_branch_create_get_list_delete(lakefs_standin: LakeFSStandIn,
                                       lakefs_client: LakeFSClient) -> None:
    branches = lakefs_client.branches_api
    repo = new_repo(lakefs_client)
    upload(lakefs_client, repo, "main", "a", b"1")
    head = commit(lakefs_client, repo, "main").id
    upload(lakefs_client, repo, "main", "uncommitted", b"2")

    created = branches.create_branch(repo, lakefs_sdk.BranchCreation(
        name="dsc-job-1", source="main"), _request_timeout=T)
    assert created == head  # the source's commit; its uncommitted write is not carried over
    assert lakefs_standin.objects(repo, "dsc-job-1") == {"a": b"1"}
    assert branches.get_branch(repo, "dsc-job-1", _request_timeout=T).commit_id == head
    listed = branches.list_branches(repo, _request_timeout=T)
    assert [(r.id, r.commit_id) for r in listed.results] == [("dsc-job-1", head), ("main", head)]

    with pytest.raises(ApiException) as exists:
        branches.create_branch(repo, lakefs_sdk.BranchCreation(
            name="dsc-job-1", source="main"), _request_timeout=T)
    assert exists.value.status == 409
    assert json.loads(exists.value.body) == {"message": "branch already exists: not unique"}
    with pytest.raises(BadRequestException, match="letters, digits, underscores and dashes"):
        branches.create_branch(repo, lakefs_sdk.BranchCreation(
            name="dsc/job/1", source="main"), _request_timeout=T)
    with pytest.raises(NotFoundException):
        branches.create_branch(repo, lakefs_sdk.BranchCreation(
            name="other", source="no-such-ref"), _request_timeout=T)

    branches.delete_branch(repo, "dsc-job-1", _request_timeout=T)
    with pytest.raises(NotFoundException):
        branches.get_branch(repo, "dsc-job-1", _request_timeout=T)
    with pytest.raises(NotFoundException):  # a retried delete: lakeFS says 404
        branches.delete_branch(repo, "dsc-job-1", _request_timeout=T)
    with pytest.raises(ForbiddenException):
        branches.delete_branch(repo, "main", _request_timeout=T)


def test_refs_resolve_like_lakefs(lakefs_standin: LakeFSStandIn,
                                  lakefs_client: LakeFSClient) -> None:
    repo = new_repo(lakefs_client)
    first = commit(lakefs_client, repo, "main", allow_empty=True).id
    upload(lakefs_client, repo, "main", "x", b"x")
    second = commit(lakefs_client, repo, "main").id
    upload(lakefs_client, repo, "main", "staged", b"s")
    commits = lakefs_client.commits_api
    for ref, expected in [(second, second), ("main", second), ("main~1", first),
                          ("main^1", first), (second[:12], second), ("main@", second)]:
        assert commits.get_commit(repo, ref, _request_timeout=T).id == expected, ref
    stat = lakefs_client.objects_api.stat_object
    assert stat(repo, "main", "staged", _request_timeout=T).size_bytes == 1
    for committed_only in (second, "main@"):  # a commit ID or branch@ hides staged writes
        with pytest.raises(NotFoundException):
            stat(repo, committed_only, "staged", _request_timeout=T)


# -- objects --------------------------------------------------------------------------------------

def test_upload_stat_get_delete(lakefs_standin: LakeFSStandIn,
                                lakefs_client: LakeFSClient) -> None:
    objects = lakefs_client.objects_api
    repo = new_repo(lakefs_client)
    stats = upload(lakefs_client, repo, "main", "raw/a.txt", b"hello world")
    assert (stats.path, stats.path_type, stats.size_bytes, stats.checksum) == (
        "raw/a.txt", "object", 11, hashlib.md5(b"hello world").hexdigest())
    assert stats.physical_address.startswith("local://bucket/images/data/")
    assert objects.stat_object(repo, "main", "raw/a.txt", _request_timeout=T) == stats
    assert objects.get_object(repo, "main", "raw/a.txt", _request_timeout=T) == b"hello world"
    assert objects.get_object(repo, "main", "raw/a.txt", range="bytes=6-",
                              _request_timeout=T) == b"world"
    assert upload(lakefs_client, repo, "main", "empty", b"").size_bytes == 0

    head = raw(lakefs_standin, "HEAD", f"/repositories/{repo}/refs/main/objects?path=raw/a.txt")
    assert (head.status, head.headers["Content-Length"]) == (200, "11")
    assert head.headers["ETag"] == f'"{stats.checksum}"'

    with pytest.raises(ApiException) as exists:  # If-None-Match: * is create-only
        objects.upload_object(repo, "main", "raw/a.txt", content=b"x", if_none_match="*",
                              _request_timeout=T)
    assert exists.value.status == 412

    objects.delete_object(repo, "main", "raw/a.txt", _request_timeout=T)
    objects.delete_object(repo, "main", "never-there", _request_timeout=T)  # not an error
    with pytest.raises(NotFoundException):
        objects.stat_object(repo, "main", "raw/a.txt", _request_timeout=T)
    with pytest.raises(NotFoundException):
        objects.get_object(repo, "main", "raw/a.txt", _request_timeout=T)


def test_listing_pages_1000_at_a_time(lakefs_standin: LakeFSStandIn,
                                      lakefs_client: LakeFSClient) -> None:
    # 2,475 committed objects seeded directly (25 ms), 25 more uploaded through the SDK and left
    # uncommitted: a branch listing merges both
    committed = {f"data/{i:05d}.json": b"{}" for i in range(2500) if i % 100}
    lakefs_standin.seed("images", committed)
    for i in range(0, 2500, 100):
        upload(lakefs_client, "images", "main", f"data/{i:05d}.json", b"[]")
    upload(lakefs_client, "images", "main", "other/x", b"x")

    pages, after = [], ""
    while True:
        page = lakefs_client.objects_api.list_objects(
            "images", "main", prefix="data/", after=after, amount=1000, user_metadata=False,
            _request_timeout=T)
        pages.append([o.path for o in page.results])
        if not page.pagination.has_more:
            assert page.pagination.next_offset == ""
            break
        assert page.pagination.next_offset == page.results[-1].path
        after = page.pagination.next_offset
    assert [len(p) for p in pages] == [1000, 1000, 500]
    assert [path for page in pages for path in page] == [f"data/{i:05d}.json"
                                                         for i in range(2500)]

    listing = lakefs_client.objects_api.list_objects
    assert len(listing("images", "main", _request_timeout=T).results) == 100  # the default
    after_exact = listing("images", "main", after="data/00998.json", amount=2, _request_timeout=T)
    assert [o.path for o in after_exact.results] == ["data/00999.json", "data/01000.json"]
    top = listing("images", "main", delimiter="/", _request_timeout=T)
    assert [(o.path, o.path_type) for o in top.results] == [
        ("data/", "common_prefix"), ("other/", "common_prefix")]
    # a commit ID sees only what was committed
    head = lakefs_standin.head("images", "main")
    assert len(listing("images", head, prefix="data/", amount=1000, after="data/01999.json",
                       _request_timeout=T).results) == 495
    with pytest.raises(ValidationError):  # lakefs-sdk refuses amount > 1000 itself
        listing("images", "main", amount=1001, _request_timeout=T)


def test_copy_object(lakefs_standin: LakeFSStandIn, lakefs_client: LakeFSClient) -> None:
    objects = lakefs_client.objects_api
    repo = new_repo(lakefs_client)
    original = upload(lakefs_client, repo, "main", "in/a", b"payload")
    pinned = commit(lakefs_client, repo, "main").id
    lakefs_client.branches_api.create_branch(repo, lakefs_sdk.BranchCreation(
        name="job", source=pinned), _request_timeout=T)
    upload(lakefs_client, repo, "main", "in/a", b"changed later")

    copied = objects.copy_object(repo, "job", "out/a", lakefs_sdk.ObjectCopyCreation(
        src_path="in/a", src_ref=pinned), _request_timeout=T)
    assert (copied.path, copied.checksum, copied.size_bytes) == ("out/a", original.checksum, 7)
    assert copied.physical_address != original.physical_address  # a real copy, new address
    shallow = objects.copy_object(repo, "job", "out/b", lakefs_sdk.ObjectCopyCreation(
        src_path="in/a", shallow=True), _request_timeout=T)
    assert shallow.physical_address == original.physical_address
    assert objects.get_object(repo, "job", "out/a", _request_timeout=T) == b"payload"
    assert lakefs_standin.branch_state(repo, "job").staged == {
        "out/a": original.checksum, "out/b": original.checksum}
    with pytest.raises(NotFoundException):
        objects.copy_object(repo, "job", "out/c", lakefs_sdk.ObjectCopyCreation(
            src_path="missing"), _request_timeout=T)


def test_presigned_urls_serve_the_object(lakefs_standin: LakeFSStandIn,
                                         lakefs_client: LakeFSClient) -> None:
    repo = new_repo(lakefs_client)
    upload(lakefs_client, repo, "main", "a", b"presigned bytes")
    stats = lakefs_client.objects_api.stat_object(repo, "main", "a", presign=True,
                                                  _request_timeout=T)
    assert stats.physical_address_expiry
    assert urllib3.request("GET", stats.physical_address).data == b"presigned bytes"
    redirect = raw(lakefs_standin, "GET", f"/repositories/{repo}/refs/main/objects?path=a"
                   "&presign=true", redirect=False)
    assert redirect.status == 302
    assert urllib3.request("GET", redirect.headers["Location"]).data == b"presigned bytes"


def test_streamed_and_concurrent_uploads(lakefs_standin: LakeFSStandIn,
                                         lakefs_client: LakeFSClient) -> None:
    repo = new_repo(lakefs_client)
    big = bytes(range(256)) * (9 * 4096)  # 9 MiB: spills to disk in the stand-in

    def chunks() -> Any:  # no length: urllib3 sends chunked transfer coding
        for i in range(0, len(big), 1 << 20):
            yield big[i:i + (1 << 20)]

    answer = raw(lakefs_standin, "POST", f"/repositories/{repo}/branches/main/objects?path=big",
                 body=chunks(), headers={"Content-Type": "application/octet-stream"})
    assert answer.status == 201, answer.data
    assert answer.json()["checksum"] == hashlib.md5(big).hexdigest()
    assert lakefs_standin.read(repo, "main", "big") == big

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: upload(lakefs_client, repo, "main", f"p/{i}", b"%d" % i),
                      range(40)))
    assert len(lakefs_standin.branch_state(repo, "main").staged) == 41


# -- commits --------------------------------------------------------------------------------------

def test_commit_with_metadata_log_and_empty_commit(lakefs_standin: LakeFSStandIn,
                                                   lakefs_client: LakeFSClient) -> None:
    repo = new_repo(lakefs_client)
    before = lakefs_standin.head(repo, "main")
    upload(lakefs_client, repo, "main", "out/a", b"a")
    metadata = {"dsc.pipeline": "edges", "dsc.input.images": f"images@{before}",
                "::lakefs::Argo::url[url:ui]": "https://argo.example/workflows/ns/edges-x"}
    made = commit(lakefs_client, repo, "main", "dsc: edges", metadata=metadata)
    assert HEX64.match(made.id)
    assert (made.parents, made.message, made.metadata, made.committer) == (
        [before], "dsc: edges", metadata, "admin")
    assert lakefs_client.commits_api.get_commit(repo, "main", _request_timeout=T) == made
    assert lakefs_standin.branch_state(repo, "main").staged == {}

    with pytest.raises(BadRequestException, match="no changes"):
        commit(lakefs_client, repo, "main")
    upload(lakefs_client, repo, "main", "out/a", b"a")  # the same bytes again: no change
    with pytest.raises(BadRequestException, match="no changes"):
        commit(lakefs_client, repo, "main")
    empty = commit(lakefs_client, repo, "main", "empty", allow_empty=True, date=1700000000)
    assert empty.parents == [made.id]
    assert (empty.creation_date, empty.meta_range_id) == (1700000000, made.meta_range_id)

    log = lakefs_client.refs_api.log_commits(repo, "main", _request_timeout=T)
    assert [c.id for c in log.results] == [empty.id, made.id, before]
    page = lakefs_client.refs_api.log_commits(repo, "main", amount=1, after=empty.id,
                                              _request_timeout=T)
    assert ([c.id for c in page.results], page.pagination.has_more) == ([made.id], True)
    touching = lakefs_client.refs_api.log_commits(repo, "main", objects=["out/a"],
                                                  _request_timeout=T)
    assert [c.id for c in touching.results] == [made.id]


# -- merges ---------------------------------------------------------------------------------------

def job_branch(client: LakeFSClient, repo: str, name: str = "job") -> str:
    return client.branches_api.create_branch(repo, lakefs_sdk.BranchCreation(
        name=name, source="main"), _request_timeout=T)


def merge(client: LakeFSClient, repo: str, source: str, dest: str = "main",
          **kwargs: Any) -> str:
    return client.refs_api.merge_into_branch(repo, source, dest, merge=lakefs_sdk.Merge(
        **kwargs), _request_timeout=T).reference


def test_merge_when_destination_has_not_moved(lakefs_standin: LakeFSStandIn,
                                              lakefs_client: LakeFSClient) -> None:
    repo = new_repo(lakefs_client)
    base = job_branch(lakefs_client, repo)
    upload(lakefs_client, repo, "job", "out/a", b"a")
    job_head = commit(lakefs_client, repo, "job", metadata={"dsc.run": "1"}).id

    merged = merge(lakefs_client, repo, "job", message="dsc: publish",
                   metadata={"dsc.run": "1"})
    # lakeFS never fast-forwards: a new commit whose parents are [destination, source]
    info = lakefs_standin.commit(repo, merged)
    assert merged not in (base, job_head)
    assert (info.parents, info.message) == ((base, job_head), "dsc: publish")
    assert info.metadata == {"dsc.run": "1", ".lakefs.merge.strategy": "default"}
    assert info.meta_range_id == lakefs_standin.commit(repo, job_head).meta_range_id
    assert lakefs_standin.objects(repo, "main") == {"out/a": b"a"}

    with pytest.raises(BadRequestException, match="no changes"):  # a retried merge
        merge(lakefs_client, repo, "job")
    found = lakefs_client.refs_api.find_merge_base(repo, "job", "main", _request_timeout=T)
    # lakeFS 1.84 swaps source and destination in this answer (api.md §12)
    assert (found.source_commit_id, found.destination_commit_id, found.base_commit_id) == (
        merged, job_head, job_head)


def test_three_way_merge_keeps_both_sides(lakefs_standin: LakeFSStandIn,
                                          lakefs_client: LakeFSClient) -> None:
    lakefs_standin.seed("images", {"keep": b"k", "both": b"0", "gone": b"g"})
    job_branch(lakefs_client, "images")
    upload(lakefs_client, "images", "job", "from-job", b"j")
    lakefs_client.objects_api.delete_object("images", "job", "gone", _request_timeout=T)
    upload(lakefs_client, "images", "job", "both", b"1")
    commit(lakefs_client, "images", "job")
    upload(lakefs_client, "images", "main", "from-main", b"m")
    upload(lakefs_client, "images", "main", "both", b"1")  # the same change on both sides
    main_head = commit(lakefs_client, "images", "main").id

    merged = merge(lakefs_client, "images", "job")
    assert lakefs_standin.commit("images", merged).parents[0] == main_head
    assert lakefs_standin.objects("images", "main") == {
        "keep": b"k", "both": b"1", "from-job": b"j", "from-main": b"m"}


def test_merge_conflict_is_409_and_changes_nothing(lakefs_standin: LakeFSStandIn,
                                                   lakefs_client: LakeFSClient) -> None:
    lakefs_standin.seed("images", {"a": b"base", "b": b"base"})
    job_branch(lakefs_client, "images")
    upload(lakefs_client, "images", "job", "a", b"job")
    lakefs_client.objects_api.delete_object("images", "job", "b", _request_timeout=T)
    commit(lakefs_client, "images", "job")
    upload(lakefs_client, "images", "main", "a", b"main")
    upload(lakefs_client, "images", "main", "b", b"main")
    commit(lakefs_client, "images", "main")
    before = lakefs_standin.branch_state("images", "main")

    with pytest.raises(ApiException) as conflict:
        merge(lakefs_client, "images", "job")
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body) == {"reference": ""}  # a MergeResult, not an Error
    assert lakefs_standin.branch_state("images", "main") == before

    with pytest.raises(BadRequestException, match="invalid merge strategy"):
        merge(lakefs_client, "images", "job", strategy="theirs")
    merge(lakefs_client, "images", "job", strategy="dest-wins")
    assert lakefs_standin.objects("images", "main") == {"a": b"main", "b": b"main"}
    lakefs_client.branches_api.create_branch("images", lakefs_sdk.BranchCreation(
        name="main2", source=before.head), _request_timeout=T)
    source_wins = merge(lakefs_client, "images", "job", "main2", strategy="source-wins")
    assert lakefs_standin.objects("images", "main2") == {"a": b"job"}
    assert lakefs_standin.commit("images", source_wins).metadata == {
        ".lakefs.merge.strategy": "source-wins"}


def test_merge_into_dirty_branch_is_400(lakefs_standin: LakeFSStandIn,
                                        lakefs_client: LakeFSClient) -> None:
    repo = new_repo(lakefs_client)
    job_branch(lakefs_client, repo)
    upload(lakefs_client, repo, "job", "a", b"a")
    commit(lakefs_client, repo, "job")
    upload(lakefs_client, repo, "main", "stray", b"s")
    with pytest.raises(BadRequestException, match="dirty branch"):
        merge(lakefs_client, repo, "job")


def test_diff_two_and_three_dot(lakefs_standin: LakeFSStandIn,
                                lakefs_client: LakeFSClient) -> None:
    lakefs_standin.seed("images", {"a": b"1", "d/x": b"1", "d/y": b"1"})
    base = job_branch(lakefs_client, "images")
    upload(lakefs_client, "images", "job", "a", b"2")
    upload(lakefs_client, "images", "job", "d/z", b"new")
    lakefs_client.objects_api.delete_object("images", "job", "d/x", _request_timeout=T)
    uncommitted = lakefs_client.branches_api.diff_branch("images", "job", _request_timeout=T)
    assert [(d.type, d.path) for d in uncommitted.results] == [
        ("changed", "a"), ("removed", "d/x"), ("added", "d/z")]
    job = commit(lakefs_client, "images", "job").id
    upload(lakefs_client, "images", "main", "main-only", b"m")
    main = commit(lakefs_client, "images", "main").id

    refs = lakefs_client.refs_api
    two_dot = refs.diff_refs("images", base, job, type="two_dot", _request_timeout=T)
    assert [(d.type, d.path, d.size_bytes) for d in two_dot.results] == [
        ("changed", "a", 1), ("removed", "d/x", 1), ("added", "d/z", 3)]
    # three_dot (the default): the right side's changes since the merge base
    three_dot = refs.diff_refs("images", main, job, _request_timeout=T)
    assert [(d.type, d.path) for d in three_dot.results] == [
        ("changed", "a"), ("removed", "d/x"), ("added", "d/z")]
    folded = refs.diff_refs("images", base, job, delimiter="/", _request_timeout=T)
    assert [(d.type, d.path, d.path_type) for d in folded.results] == [
        ("changed", "a", "object"), ("prefix_changed", "d/", "common_prefix")]


def test_tags(lakefs_standin: LakeFSStandIn, lakefs_client: LakeFSClient) -> None:
    repo = new_repo(lakefs_client)
    head = lakefs_standin.head(repo, "main")
    tags = lakefs_client.tags_api
    tag = tags.create_tag(repo, lakefs_sdk.TagCreation(id="dsc-edges-run-1", ref="main"),
                          _request_timeout=T)
    assert (tag.id, tag.commit_id) == ("dsc-edges-run-1", head)
    with pytest.raises(ApiException) as exists:  # even when it points at the same commit
        tags.create_tag(repo, lakefs_sdk.TagCreation(id="dsc-edges-run-1", ref="main"),
                        _request_timeout=T)
    assert exists.value.status == 409
    assert lakefs_client.commits_api.get_commit(repo, "dsc-edges-run-1",
                                                _request_timeout=T).id == head
    assert [t.id for t in tags.list_tags(repo, _request_timeout=T).results] == [
        "dsc-edges-run-1"]


# -- authentication -------------------------------------------------------------------------------

def test_wrong_or_missing_keys_are_401(lakefs_standin: LakeFSStandIn) -> None:
    wrong = make_client(lakefs_standin, password="not-the-secret")
    with pytest.raises(UnauthorizedException) as denied:
        wrong.repositories_api.list_repositories(_request_timeout=T)
    assert json.loads(denied.value.body) == {"message": "error authenticating request"}
    assert lakefs_standin.violations == []  # a wrong key breaks no schema

    missing = raw(lakefs_standin, "GET", "/repositories", auth=False)
    assert missing.status == 401
    assert "security" in messages(lakefs_standin.take_violations()).lower()
    assert raw(lakefs_standin, "GET", "/healthcheck", auth=False).status == 204


# -- the contract cannot pass vacuously -----------------------------------------------------------

def test_invalid_requests_are_answered_400_and_recorded(lakefs_standin: LakeFSStandIn,
                                                        lakefs_client: LakeFSClient) -> None:
    repo = new_repo(lakefs_client)
    too_many = raw(lakefs_standin, "GET", f"/repositories/{repo}/refs/main/objects/ls"
                   "?amount=5000")
    assert too_many.status == 400
    bad_metadata = raw(lakefs_standin, "POST", f"/repositories/{repo}/branches/main/commits",
                       json={"message": "m", "metadata": {"n": 1}})
    assert bad_metadata.status == 400
    bad_name = raw(lakefs_standin, "POST", "/repositories",
                   json={"name": "My_Repo", "storage_namespace": "local://x"})
    assert bad_name.status == 400
    unknown = raw(lakefs_standin, "GET", "/no/such/operation")
    assert unknown.status == 404
    found = messages(lakefs_standin.take_violations())
    for expected in ("5000 is greater than the maximum of 1000", "1 is not of type 'string'",
                     "does not match", "no operation of swagger.yml"):
        assert expected in found
    assert lakefs_standin.head(repo, "main") == lakefs_standin.log(repo, "main")[-1].id


def test_invalid_responses_are_recorded(lakefs_standin: LakeFSStandIn,
                                        lakefs_client: LakeFSClient,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    repo = new_repo(lakefs_client)

    def broken_get_branch(ops: Any, call: Any) -> Any:
        return standin_operations.Reply.json(200, {"id": call.path["branch"]})

    monkeypatch.setitem(standin_operations.HANDLERS, "getBranch", (broken_get_branch, True))
    raw(lakefs_standin, "GET", f"/repositories/{repo}/branches/main")
    found = lakefs_standin.take_violations()
    assert [(v.kind, v.operation_id) for v in found] == [("response", "getBranch")]
    assert "'commit_id' is a required property" in str(found[0])


def test_violations_and_unfired_faults_fail_the_fixture() -> None:
    with pytest.raises(pytest.fail.Exception, match="amount"), serving() as standin:
        raw(standin, "GET", "/repositories?amount=-5")
    with pytest.raises(pytest.fail.Exception, match="fault never fired: 'commit'"), \
            serving() as standin:
        standin.faults.add("commit", 500)
    with pytest.raises(pytest.fail.Exception, match=r"not modelled.*createPullRequest"), \
            serving() as standin:
        raw(standin, "POST", "/repositories/r/pulls",
            json={"title": "t", "source_branch": "a", "destination_branch": "b"})


# -- faults ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [500, 503, 409, 412, 429])
def test_status_faults_reach_the_client_and_change_nothing(
        lakefs_standin: LakeFSStandIn, lakefs_client: LakeFSClient, status: int) -> None:
    repo = new_repo(lakefs_client)
    upload(lakefs_client, repo, "main", "a", b"a")
    before = lakefs_standin.snapshot()
    fault = lakefs_standin.faults.add("commit", status, retry_after=7 if status == 429 else None)
    with pytest.raises(ApiException) as failed:
        commit(lakefs_client, repo, "main")
    assert failed.value.status == status
    assert "message" in json.loads(failed.value.body)
    assert failed.value.headers.get("Retry-After") == ("7" if status == 429 else None)
    assert isinstance(failed.value, ServiceException) == (status >= 500)
    assert lakefs_standin.snapshot() == before
    assert fault.fired == 1
    commit(lakefs_client, repo, "main")  # times=1: the next attempt goes through
    assert [r.status for r in lakefs_standin.calls("commit")] == [status, 201]


def test_merge_conflict_fault_answers_a_merge_result(lakefs_standin: LakeFSStandIn,
                                                     lakefs_client: LakeFSClient) -> None:
    repo = new_repo(lakefs_client)
    job_branch(lakefs_client, repo)
    lakefs_standin.faults.add("mergeIntoBranch", 409)
    with pytest.raises(ApiException) as conflict:
        merge(lakefs_client, repo, "job", allow_empty=True)
    assert json.loads(conflict.value.body) == {"reference": ""}


def test_timeout_and_reset_faults(lakefs_standin: LakeFSStandIn,
                                  lakefs_client: LakeFSClient) -> None:
    repo = new_repo(lakefs_client)
    upload(lakefs_client, repo, "main", "a", b"a")
    before = lakefs_standin.snapshot()
    lakefs_standin.faults.add("commit", "timeout", delay=5)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        lakefs_client.commits_api.commit(repo, "main", lakefs_sdk.CommitCreation(message="m"),
                                         _request_timeout=(2, 0.3))
    lakefs_standin.faults.add("commit", "reset")
    with pytest.raises(urllib3.exceptions.ProtocolError):
        commit(lakefs_client, repo, "main")
    assert lakefs_standin.snapshot() == before

    # urllib3 re-sends a GET after a dropped connection on its own; never a POST (api.md)
    lakefs_standin.faults.add("getBranch", "reset")
    assert lakefs_client.branches_api.get_branch(repo, "main", _request_timeout=T)
    assert [r.status for r in lakefs_standin.calls("getBranch")] == ["reset", 200]


@pytest.mark.parametrize("kind", [500, "reset", "timeout"])
def test_apply_then_fail_leaves_the_effect(lakefs_standin: LakeFSStandIn,
                                           lakefs_client: LakeFSClient, kind: int | str) -> None:
    repo = new_repo(lakefs_client)
    job_branch(lakefs_client, repo)
    upload(lakefs_client, repo, "job", "a", b"a")
    lakefs_standin.faults.add("commit", kind, apply=True, delay=5)
    with pytest.raises((ApiException, urllib3.exceptions.HTTPError)):
        lakefs_client.commits_api.commit(repo, "job", lakefs_sdk.CommitCreation(
            message="m", metadata={"dsc.run": "r1"}), _request_timeout=(2, 0.3))
    # the commit happened; only its answer was lost
    assert lakefs_standin.commit(repo, "job").metadata == {"dsc.run": "r1"}
    with pytest.raises(BadRequestException, match="no changes"):  # so a blind retry fails
        commit(lakefs_client, repo, "job")

    lakefs_standin.faults.add("mergeIntoBranch", kind, apply=True, delay=5)
    with pytest.raises((ApiException, urllib3.exceptions.HTTPError)):
        lakefs_client.refs_api.merge_into_branch(repo, "job", "main", _request_timeout=(2, 0.3))
    assert lakefs_standin.objects(repo, "main") == {"a": b"a"}


def test_fault_selection(lakefs_standin: LakeFSStandIn, lakefs_client: LakeFSClient) -> None:
    repo = new_repo(lakefs_client)
    faults = lakefs_standin.faults
    by_path = faults.add(f"POST /repositories/{repo}/branches/main/objects", 500, after=2,
                         times=2)
    only_b = faults.add("uploadObject", 412, where=lambda r: r.query.get("path") == "b")
    outcomes = []
    for path in ["1", "2", "3", "4", "5", "b"]:
        try:
            upload(lakefs_client, repo, "main", path, b"x")
            outcomes.append(201)
        except ApiException as e:
            outcomes.append(e.status)
    assert outcomes == [201, 201, 500, 500, 201, 412]
    assert (by_path.seen, by_path.fired, only_b.fired) == (6, 2, 1)
    assert [f.request.query["path"] for f in faults.fired] == ["3", "4", "b"]
    always = faults.add("getRepository", 503, times=None)
    for _ in range(3):
        with pytest.raises(ServiceException):
            lakefs_client.repositories_api.get_repository(repo, _request_timeout=T)
    assert always.fired == 3
    # with Retry-After, urllib3 itself retries a GET on 429/503 before the SDK sees one
    faults.add("listBranches", 429, times=None, retry_after=0)
    with pytest.raises(ApiException) as throttled:
        lakefs_client.branches_api.list_branches(repo, _request_timeout=T)
    assert throttled.value.status == 429
    assert [r.status for r in lakefs_standin.calls("listBranches")] == [429] * 4
    with pytest.raises(ValueError, match="not an operationId"):
        faults.add("comit", 500)
    with pytest.raises(ValueError, match="fault kind"):
        faults.add("commit", "explode")


def test_snapshot_and_restore(lakefs_standin: LakeFSStandIn,
                              lakefs_client: LakeFSClient) -> None:
    lakefs_standin.seed("images", {"a": b"1"})
    snapshot = lakefs_standin.snapshot()
    job_branch(lakefs_client, "images")
    upload(lakefs_client, "images", "main", "b", b"2")
    assert lakefs_standin.snapshot() != snapshot
    lakefs_standin.restore(snapshot)
    assert lakefs_standin.snapshot() == snapshot
    assert lakefs_standin.state()["images"].branches.keys() == {"main"}
    assert lakefs_client.objects_api.list_objects("images", "main", _request_timeout=T) \
        .pagination.results == 1


def test_stop_ends_held_requests_promptly() -> None:
    with serving() as standin:
        client = make_client(standin)
        standin.faults.add("listRepositories", "timeout", delay=60)
        failed = threading.Event()

        def call() -> None:
            try:
                client.repositories_api.list_repositories(_request_timeout=(2, 30))
            except urllib3.exceptions.HTTPError:
                failed.set()

        caller = threading.Thread(target=call)
        caller.start()
        while not standin.faults.fired:
            time.sleep(0.01)
    caller.join(timeout=600)
    assert failed.is_set()


def test_latency_and_unvalidated_responses_are_options(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_get_branch(ops: Any, call: Any) -> Any:
        return standin_operations.Reply.json(200, {"id": call.path["branch"]})

    monkeypatch.setitem(standin_operations.HANDLERS, "getBranch", (broken_get_branch, True))
    with serving(latency=0.05, validate_responses=False) as standin:
        standin.seed("images", {})
        started = time.perf_counter()
        assert raw(standin, "GET", "/repositories/images/branches/main").status == 200
        assert time.perf_counter() - started >= 0.05
    assert standin.violations == []  # a benchmark's choice; tests keep responses validated


def test_every_handler_is_an_operation_of_swagger(lakefs_standin: LakeFSStandIn) -> None:
    assert set(standin_operations.HANDLERS) <= lakefs_standin.contract.operation_ids


@pytest.mark.parametrize("operation, path, query", [
    ("listObjects", "/repositories/r/refs/main/objects/ls",
     "prefix=a%2F&after=a%2Fb&amount=1000&user_metadata=false&delimiter=%2F"),
    ("listObjects", "/repositories/r/refs/main/objects/ls", ""),
    ("logCommits", "/repositories/r/refs/main/commits",
     "after=&amount=50&first_parent=true&stop_at=abc&objects=x&objects=y"),
    ("listBranches", "/repositories/r/branches", "prefix=dsc-&amount=1000"),
    ("getObject", "/repositories/r/refs/main/objects", "path=a%20b&presign=true"),
])
def test_unchecked_requests_read_their_parameters_as_the_checks_do(
        operation: str, path: str, query: str) -> None:
    # A benchmark's stand-in (validate_requests=False) hands its handlers the same typed,
    # defaulted parameters openapi-core's checks would.
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from tests.lakefs_standin.contract import load_contract
    from tests.lakefs_standin.fixtures import SWAGGER

    contract = load_contract(SWAGGER)
    request = Request(EnvironBuilder(
        method="GET", path="/api/v1" + path, query_string=query, base_url="http://localhost",
        headers={"Authorization": "Basic YTpi"}).get_environ())
    assert contract.route("GET", "/api/v1" + path).operation_id == operation
    checked = contract.check_request(request, operation)
    assert checked.errors == ()
    assert contract.read_request(request, operation).query == checked.query
