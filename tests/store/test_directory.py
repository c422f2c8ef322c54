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


def _commits(store, n):
    """`n` commits on out@main, oldest first."""
    store.ensure_repository("out", "local://out", "main")
    made = [store.head("out", "main")]
    for i in range(n):
        store.upload("out", "main", "a.txt", str(i).encode())
        made.append(store.commit_once("out", "main", f"c{i}", {"k": str(i)}, "k",
                                      since=made[-1]).id)
    return made


def test_a_commit_is_found_by_a_unique_prefix_of_its_id(store):
    """As lakeFS resolves refs: the 12 characters dsc prints name the commit."""
    made = _commits(store, 17)  # 18 IDs: two of them start with the same hex digit
    last = made[-1]
    assert store.commit_of("out", last[:12]) == store.commit_of("out", last)
    assert [c.id for c in store.log("out", made[-2][:12])][:2] == [made[-2], made[-3]]
    first_digit = next(d for d in "0123456789abcdef" if sum(c[0] == d for c in made) > 1)
    with pytest.raises(LakeFSError, match=rf"400: {first_digit} is the start of \d+ commit "
                       r"IDs of `out` \([0-9a-f]{12}, [0-9a-f]{12}"):
        store.commit_of("out", first_digit)
    unknown = next(p for p in (f"{i:04x}" for i in range(1 << 16))
                   if not any(c.startswith(p) for c in made))
    with pytest.raises(NotFound, match=f"no commit of `out` has an ID starting with {unknown}"):
        store.commit_of("out", unknown)
    with pytest.raises(NotFound, match="branch `no-such-branch`"):
        store.commit_of("out", "no-such-branch")


def test_a_branch_is_found_before_a_commit_id_prefix(store):
    made = _commits(store, 1)
    store.create_branch_once("out", made[-1][:6], made[0])
    assert store.commit_of("out", made[-1][:6]).id == made[0]


def test_a_pinned_plain_commit_is_found_after_its_files_change(store, tmp_path):
    """A run pins a plain directory's digest; after an edit, the older outputs' provenance
    still names it, so its tree is recorded (paths, MD5s, sizes; not the content)."""
    pinned = store.head("raw-data", "main")
    (tmp_path / "raw_data" / "a.csv").write_text("edited\n")
    now = store.head("raw-data", "main")
    assert now != pinned
    later = DirectoryStore(tmp_path, {"raw-data": "raw_data"})  # another process
    old = later.commit_of("raw-data", pinned)
    assert (old.id, old.parents, old.metadata) == (pinned, (), {})
    assert old.message == "the files of raw_data/ when a run read them"
    assert later.commit_of("raw-data", pinned[:12]) == old
    assert later.commit_of("raw-data", "main").id == now
    assert [c.id for c in later.log("raw-data", "main")] == [now, pinned]
    assert [c.id for c in later.log("raw-data", pinned[:12])] == [pinned]
    with pytest.raises(NotFound, match=r"raw_data changed after the run pinned it"):
        later.read("raw-data", pinned, "a.csv")  # the content is the user's, not kept
    record = json.loads((tmp_path / ".dsc" / "repos" / "raw-data" / "commits" /
                         f"{pinned}.json").read_text())
    assert record["tree"] == {"a.csv": ["3ecfad755fa825f7a17c5526ec44e651", 4],
                              "sub/b.csv": ["60d044caa59c7a6f32cddeed9d9b514e", 4]}
    assert not (tmp_path / ".dsc" / "repos" / "raw-data" / "repository.json").exists()


def test_a_plain_commit_no_run_pinned_is_not_found_once_changed(store, tmp_path):
    seen = store.commit_of("raw-data", "main").id  # read, not pinned: nothing recorded
    (tmp_path / "raw_data" / "a.csv").write_text("edited\n")
    with pytest.raises(NotFound, match=r"changed after the run pinned it at "
                       rf"{seen[:12]} \(its files now make"):
        store.commit_of("raw-data", seen)
    with pytest.raises(NotFound, match=f"no commit of `raw-data` has an ID starting with "
                       f"{seen[:12]}"):
        store.commit_of("raw-data", seen[:12])


def test_copy_stages_a_commits_object_on_a_branch(store):
    store.ensure_repository("out", "local://out", "main")
    base = store.head("out", "main")
    store.create_branch_once("out", "old", base)
    store.upload("out", "old", "m.pkl", b"model")
    kept = store.commit_once("out", "old", "kept", {"k": "1"}, "k", since=base).id
    store.create_branch_once("out", "new", base)
    copied = store.copy("out", kept, "m.pkl", "new")
    again = store.copy("out", kept, "m.pkl", "new")  # a retry: the same state
    assert copied == again and copied.size == 5
    assert copied.checksum == hashlib.md5(b"model").hexdigest()
    assert store.read("out", "new", "m.pkl") == b"model"
    with pytest.raises(NotFound):
        store.copy("out", kept, "missing", "new")
