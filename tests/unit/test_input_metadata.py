"""The `dsc.input.*` provenance metadata: written once (contract.input_metadata) and read the
same way by the runtime (what an output head was made from) and by `dsc provenance`."""

from __future__ import annotations

from compiler import contract
from compiler.commands.provenance import CommitRef, read_node
from compiler.store import Commit

A, B, C = ("a" * 64, "b" * 64, "c" * 64)


def test_union_members_sharing_a_name_each_keep_their_commit() -> None:
    meta = contract.input_metadata([("images", "images", A), ("images", "archive", B),
                                    ("labels", "labels", C)])
    assert meta == {"dsc.input.images": f"images@{A}", "dsc.input.images.archive": f"archive@{B}",
                    "dsc.input.labels": f"labels@{C}"}
    assert contract.recorded_commit(meta, "images", "images") == A
    assert contract.recorded_commit(meta, "images", "archive") == B
    assert contract.recorded_commit(meta, "labels", "labels") == C
    assert contract.recorded_commit(meta, "labels", "images") is None  # another repository
    assert contract.recorded_commit(meta, "models", "models") is None


def test_the_same_input_read_twice_at_one_commit_is_one_key() -> None:
    assert contract.input_metadata([("x", "x", A), ("x", "x", A)]) == {"dsc.input.x": f"x@{A}"}


def test_provenance_follows_every_input_the_runtime_recorded() -> None:
    meta = {contract.PIPELINE_KEY: "model",
            **contract.input_metadata([("images", "images", A), ("images", "archive", B)])}
    node = read_node(CommitRef("model", C), Commit(C, (), "", meta))
    assert [(link.name, link.source) for link in node.inputs] == [
        ("images", CommitRef("images", A)), ("images.archive", CommitRef("archive", B))]


def test_a_value_that_names_no_commit_is_shown_but_not_followed() -> None:
    node = read_node(CommitRef("model", C), Commit(C, (), "", {"dsc.input.x": "x@main"}))
    assert [(link.name, link.value, link.source) for link in node.inputs] == [
        ("x", "x@main", None)]
