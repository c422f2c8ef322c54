"""The `--data DIR` store keeps lakeFS's model: commits, branches, three-way merges, and
runs that may be retried; the user's own directories are read, never written."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os

import pytest

from compiler.store import Conflict, LakeFSError, NotFound
from compiler.store.directory import DirectoryStore


@pytest.fixture
def store(tmp_path):
    (tmp_path / "raw_data" / "sub").mkdir(parents=True)
    (tmp_path / "raw_data" / "a.csv").write_text("1,2\n")
    (tmp_path / "raw_data" / "sub" / "b.csv").write_text("3,4\n")
    return DirectoryStore(tmp_path, {"raw-data": "raw_data"})


def test_a_plain_directory_is_a_repo_whose_commit_is_its_content(store, tmp_path):
    head = store.head("raw-data", "main")
    assert len(head) == 64
    assert store.head("raw-data", "master") == head  # every branch
    assert [(o.path, o.size) for o in store.objects("raw-data", head)] == [
        ("a.csv", 4), ("sub/b.csv", 4)]
    assert store.read("raw-data", head, "sub/b.csv") == b"3,4\n"
    sink = io.BytesIO()
    assert store.download("raw-data", head, "a.csv", sink)[0] == 4
    (tmp_path / "raw_data" / "a.csv").write_text("changed\n")
    assert store.head("raw-data", "main") != head
    with pytest.raises(NotFound, match=r"a\.csv changed after the run pinned it"):
        store.read("raw-data", head, "a.csv")


def test_a_missing_repo_is_not_found(store):
    with pytest.raises(NotFound, match="repository `nope`"):
        store.head("nope", "main")


def test_an_output_repo_commits_and_merges_like_lakefs(store, tmp_path):
    assert store.ensure_repository("out", "local://out", "main") is True
    assert store.ensure_repository("out", "local://out", "main") is False
    base = store.head("out", "main")
    store.create_branch_once("out", "job", base)
    store.create_branch_once("out", "job", base)  # a retry: already there
    store.upload("out", "job", "x/y.txt", b"hello")
    store.upload("out", "job", "gone.txt", b"soon")
    store.delete_objects("out", "job", ["gone.txt"])
    assert [o.path for o in store.objects("out", "job")] == ["x/y.txt"]
    assert list(store.objects("out", "main")) == []  # staged on the job branch only
    meta = {"dsc.workflow.uid": "run-1", "dsc.pipeline": "out"}
    made = store.commit_once("out", "job", "job", meta, "dsc.workflow.uid", since=base)
    assert store.commit_once("out", "job", "job", meta, "dsc.workflow.uid", since=base) == made
    merged = store.merge_once("out", "job", "main", "merge", meta, "dsc.workflow.uid",
                              since=base)
    assert store.merge_once("out", "job", "main", "merge", meta, "dsc.workflow.uid",
                            since=base) == merged
    assert merged.parents == (base, made.id)
    assert store.head("out", "main") == merged.id
    # What the user sees: DIR/out is the head's files, read-only, swapped by a rename
    assert (tmp_path / "out").is_symlink()
    assert (tmp_path / "out" / "x" / "y.txt").read_text() == "hello"
    assert not os.access(tmp_path / "out" / "x" / "y.txt", os.W_OK) or os.geteuid() == 0
    store.delete_branch("out", "job")
    store.delete_branch("out", "job")  # gone is fine
    with pytest.raises(NotFound):
        store.head("out", "job")


def test_a_branch_that_exists_elsewhere_is_a_conflict(store):
    store.ensure_repository("out", "local://out", "main")
    base = store.head("out", "main")
    store.create_branch_once("out", "job", base)
    store.upload("out", "job", "a", b"1")
    other = store.commit_once("out", "job", "c", {"k": "1"}, "k", since=base).id
    with pytest.raises(Conflict, match="does not point at"):
        store.create_branch_once("out", "job", base)
    assert store.head("out", "job") == other


def test_merges_are_three_way_and_conflicts_are_refused(store):
    store.ensure_repository("out", "local://out", "main")
    base = store.head("out", "main")
    for branch, path, data in (("a", "one.txt", b"a"), ("b", "two.txt", b"b")):
        store.create_branch_once("out", branch, base)
        store.upload("out", branch, path, data)
        store.upload("out", branch, "both.txt", data)
        store.commit_once("out", branch, branch, {"k": branch}, "k", since=base)
    store.merge_once("out", "a", "main", "m", {"k": "ma"}, "k", since=base)
    with pytest.raises(Conflict, match=r"both\.txt"):
        store.merge_once("out", "b", "main", "m", {"k": "mb"}, "k", since=base)
    store.create_branch_once("out", "c", base)
    store.upload("out", "c", "three.txt", b"c")
    store.commit_once("out", "c", "c", {"k": "c"}, "k", since=base)
    store.merge_once("out", "c", "main", "m", {"k": "mc"}, "k", since=base)
    assert [o.path for o in store.objects("out", "main")] == ["both.txt", "one.txt",
                                                             "three.txt"]


def test_the_users_files_are_never_replaced_by_an_output(store, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mine.pkl").write_text("keep")
    with pytest.raises(Conflict, match="files dsc did not write"):
        store.ensure_repository("model", "local://model", "main")
    assert (tmp_path / "model" / "mine.pkl").read_text() == "keep"
    (tmp_path / "empty").mkdir()
    assert store.ensure_repository("empty", "local://empty", "main") is True


def test_a_staging_line_cut_short_by_a_kill_is_ignored(store, tmp_path):
    store.ensure_repository("out", "local://out", "main")
    store.create_branch_once("out", "job", store.head("out", "main"))
    store.upload("out", "job", "a.txt", b"a")
    with open(tmp_path / ".dsc" / "repos" / "out" / "staging" / "job.jsonl", "a") as f:
        f.write('{"p":"b.txt","m":"')  # the write a kill interrupted never returned
    assert [o.path for o in store.objects("out", "job")] == ["a.txt"]
    store.upload("out", "job", "c.txt", b"c")  # the retry's write is not lost with it
    assert [o.path for o in store.objects("out", "job")] == ["a.txt", "c.txt"]
    assert [o.path for o in DirectoryStore(tmp_path).objects("out", "job")] == ["a.txt",
                                                                              "c.txt"]


def test_reads_see_every_change_staged_since_the_last_read(store):
    store.ensure_repository("out", "local://out", "main")
    base = store.head("out", "main")
    store.create_branch_once("out", "job", base)
    seen = []
    for i in range(5):
        store.upload("out", "job", f"{i}.txt", str(i).encode())
        seen.append([o.path for o in store.objects("out", "job")])
    store.delete_objects("out", "job", ["0.txt"])
    assert seen[-1] == ["0.txt", "1.txt", "2.txt", "3.txt", "4.txt"]
    assert seen[0] == ["0.txt"]  # a tree handed out earlier did not change under its reader
    assert [o.path for o in store.objects("out", "job")] == ["1.txt", "2.txt", "3.txt", "4.txt"]
    made = store.commit_once("out", "job", "c", {"k": "1"}, "k", since=base)
    store.delete_branch("out", "job")
    store.create_branch_once("out", "job", made.id)  # same name, new head: nothing stale
    store.upload("out", "job", "5.txt", b"5")
    assert [o.path for o in store.objects("out", "job")] == ["1.txt", "2.txt", "3.txt",
                                                            "4.txt", "5.txt"]


def test_bad_object_paths_are_refused(store):
    store.ensure_repository("out", "local://out", "main")
    store.create_branch_once("out", "job", store.head("out", "main"))
    for path in ("/abs", "a/../b", "a//b", ""):
        with pytest.raises(Exception, match="bad object path"):
            store.upload("out", "job", path, b"x")


def test_commit_records_are_plain_json(store, tmp_path):
    store.ensure_repository("out", "local://out", "main")
    head = store.head("out", "main")
    record = json.loads((tmp_path / ".dsc" / "repos" / "out" / "commits" /
                         f"{head}.json").read_text())
    assert record["id"] == head and record["tree"] == {} and record["parents"] == []


def test_a_commit_or_merge_is_found_under_later_commits(store):
    """As with lakeFS: an attempt that landed is found on the first-parent chain since the
    job began, not only at the head, so a retry after another writer's commit makes none."""
    store.ensure_repository("out", "local://out", "main")
    base = store.head("out", "main")
    store.create_branch_once("out", "job", base)
    store.upload("out", "job", "a.txt", b"a")
    meta = {"dsc.workflow.uid": "run-1"}
    made = store.commit_once("out", "job", "job", meta, "dsc.workflow.uid", since=base)
    merged = store.merge_once("out", "job", "main", "m", meta, "dsc.workflow.uid", since=base)
    store.upload("out", "main", "b.txt", b"someone else")  # another writer, on top
    theirs = store.commit_once("out", "main", "by hand", {"k": "x"}, "k", since=merged.id)
    assert store.merge_once("out", "job", "main", "m", meta, "dsc.workflow.uid",
                            since=base) == merged
    assert store.commit_once("out", "job", "job", meta, "dsc.workflow.uid", since=base) == made
    assert [c.id for c in store.log("out", "main")] == [theirs.id, merged.id, base]
    assert store.commit_of("out", merged.id).meta_range == made.meta_range
    assert store.commit_of("out", theirs.id).meta_range != merged.meta_range


def test_editing_a_checked_out_output_cannot_reach_the_stored_commit(store, tmp_path):
    """DIR/<repo> holds copies (or reflinks) of the objects, never hard links: a user who
    edits an output in place changes their copy only, and the commit reads as it was."""
    store.ensure_repository("out", "local://out", "main")
    base = store.head("out", "main")
    store.create_branch_once("out", "job", base)
    store.upload("out", "job", "model.txt", b"trained\n")
    meta = {"dsc.workflow.uid": "run-1"}
    store.commit_once("out", "job", "job", meta, "dsc.workflow.uid", since=base)
    merged = store.merge_once("out", "job", "main", "m", meta, "dsc.workflow.uid", since=base)
    seen = tmp_path / "out" / "model.txt"
    assert seen.read_bytes() == b"trained\n" and seen.stat().st_mode & 0o222 == 0
    seen.chmod(0o644)
    seen.write_bytes(b"edited by hand, and longer than before\n")
    assert store.read("out", merged.id, "model.txt") == b"trained\n"
    sink = io.BytesIO()
    assert store.download("out", merged.id, "model.txt", sink) == \
        (8, hashlib.md5(b"trained\n").hexdigest())
    assert os.stat(seen).st_ino != os.stat(store._object(hashlib.md5(
        b"trained\n").hexdigest())).st_ino


def test_file_system_errors_are_the_stores_own_and_name_the_path(store, tmp_path, monkeypatch):
    store.ensure_repository("out", "local://out", "main")

    def refuse(*_args, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".dsc" / "tmp"))

    monkeypatch.setattr("compiler.store.directory.os.replace", refuse)
    with pytest.raises(LakeFSError, match=rf"data directory upload object: 403: "
                                          rf"{tmp_path}/.dsc/tmp: read-only file system"):
        store.upload("out", "main", "a.txt", b"1")


def test_a_file_name_that_is_not_utf8_is_named(store, tmp_path):
    (tmp_path / "raw").mkdir()
    os.close(os.open(os.path.join(os.fsencode(tmp_path / "raw"), b"caf\xe9.csv"),
                     os.O_CREAT | os.O_WRONLY))
    with pytest.raises(LakeFSError, match=r"get branch: 400: b'.*/raw/caf\\xe9.csv': the "
                                          r"file name is not UTF-8"):
        store.head("raw", "main")
