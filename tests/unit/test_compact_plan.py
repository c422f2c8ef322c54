"""The compact forms `open` plans a million datums with read as the plain ones they replace:
the listing (a dict of the objects), the previous index (a dict of Known), a plan entry's
JSON (json.dumps of the dict)."""

from __future__ import annotations

import hashlib

from compiler.runtime.incremental import (
    CODE,
    EVERY_JOB,
    FAILED,
    FORCED,
    INPUT,
    NEW,
    Forced,
    Known,
    KnownDatums,
    Listing,
    Previous,
    Sorter,
)
from compiler.runtime.verbs import _entry_json, _json
from compiler.store import ObjectInfo


def _hex(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=32).hexdigest()


def _listing(pages: list[list[ObjectInfo]]) -> Listing:
    listing = Listing()
    for page in pages:
        listing.add(["/" + o.path for o in page], [o.size for o in page],
                    [o.checksum for o in page])
    listing.finish()
    return listing


def _reference(objects: list[ObjectInfo]) -> dict[str, ObjectInfo]:
    return {"/" + o.path: o for o in objects}


def _under(objects: dict[str, ObjectInfo], path: str) -> list[ObjectInfo]:
    path = path if path.endswith("/") else path + "/"
    return [objects[k] for k in sorted(objects)
            if k.startswith(path) and not k.startswith(("/.dsc/", "/_lakefs_actions/"))]


def test_a_listing_in_order_reads_as_the_dict_of_its_objects() -> None:
    objects = [ObjectInfo(p, c, n) for n, (p, c) in enumerate([
        (".dsc/plan/000000.json", "0" * 32), ("a/1.txt", "1" * 32), ("a/2.txt", "etag-2"),
        ("a/b/3.txt", "3" * 32), ("b.txt", "4" * 32), ("b/4.txt", "f" * 32)])]
    listing = _listing([objects[:2], objects[2:5], objects[5:]])
    reference = _reference(objects)
    assert list(listing) == list(reference)
    for path, info in reference.items():
        assert listing.info(listing.find(path)) == info
    assert listing.find("/a") == -1 and listing.find("/zz") == -1
    for directory in ("/", "/a/", "/a", "/a/b/", "/b/", "/c/"):
        assert listing.under(directory, True) == _under(reference, directory)


def test_a_listing_out_of_order_or_listing_a_path_twice_reads_as_the_dict() -> None:
    objects = [ObjectInfo("b.txt", "1" * 32, 1), ObjectInfo("a.txt", "2" * 32, 2),
               ObjectInfo("c/x", "3" * 32, 3), ObjectInfo("a.txt", "4" * 32, 4),
               ObjectInfo("c/y", "5" * 32, 5)]
    listing = _listing([objects[:1], objects[1:3], objects[3:]])
    reference = _reference(objects)
    assert list(listing) == list(reference)
    assert listing.info(listing.find("/a.txt")) == reference["/a.txt"]  # the later one
    assert listing.under("/c/", True) == _under(reference, "/c/")


def test_known_datums_read_as_a_dict_of_known() -> None:
    ids = [_hex(str(i)) for i in range(5)] + ["not-hex", _hex("1")]
    hashes = [_hex(f"h{i}") for i in range(5)] + ["", "ABC"]
    states = ["processed", "failed", "processed", "processed", "processed", "processed",
              "processed"]
    jobs = ["u1", "u1", "u2", "u1", "u1", "u3", "u4"]
    known = KnownDatums()
    known.add(ids[:3], hashes[:3], states[:3], jobs[:3])
    known.add(ids[3:], hashes[3:], states[3:], jobs[3:])
    reference: dict[str, Known] = {}
    for row in zip(ids, hashes, states, jobs, strict=True):
        reference[row[0]] = Known(*row[1:])
    assert list(known) == list(reference) and len(known) == len(reference)
    for datum_id, expected in reference.items():
        assert known.get(datum_id) == expected
    assert known.get(_hex("missing")) is None and "x" not in known
    # 64 characters that are not 64 lowercase hex digits are other IDs and other hashes
    for near in (_hex("1").upper(), " " + _hex("1")[:62] + " "):
        assert known.get(near) is None
    row = known.row(_hex("0"))
    assert known.same_hash(row, _hex("h0"))
    assert not known.same_hash(row, _hex("h0").upper())
    assert not known.same_hash(row, " " + _hex("h0")[:62] + " ")


def test_the_sorter_decides_as_reason_does() -> None:
    ids = [_hex(str(i)) for i in range(6)]
    known = KnownDatums()
    known.add(ids[:5], [_hex("same"), _hex("old"), _hex("same"), _hex("same"), _hex("x")],
              ["processed", "processed", "failed", "processed", "processed"],
              ["u1", "u1", "u1", "u2", "u1"])
    previous = Previous(known, {"u1": {"code": "c1"}, "u2": {"code": "c0"}})
    sorter = Sorter(previous, "c1", False, Forced(prefixes=(ids[4][:6],)))
    plan = [(ids[0], _hex("same")), (ids[1], _hex("new")), (ids[2], _hex("same")),
            (ids[3], _hex("changed")), (ids[4], _hex("x")), (ids[5], _hex("y"))]
    assert [sorter.sort(*d) for d in plan[1:]] == [INPUT, FAILED, CODE, FORCED, NEW]
    sorting = Sorter(previous, "c1", True, Forced())
    assert [sorting.sort(*d) for d in plan[:2]] == [EVERY_JOB, EVERY_JOB]
    result = sorter.result()
    assert result.todo == [[0, 5]] and result.processed == 5 and result.skipped == 0
    assert result.removed == [ids[0]]
    assert sorting.result().removed == ids[2:5]


def test_a_plan_entry_is_written_as_json_dumps_writes_it() -> None:
    for datum_id, hash_, matches, why in [
            (_hex("a"), _hex("b"), [[0, '/x"y\\z\n\u00e9\u2028/f', "k\x01", "", 12, "c" * 32]],
             None),
            (_hex("c"), _hex("d"), [[1, "/d/", "", "g", None, None], [2, "/f", "", "", 0, "e"]],
             INPUT)]:
        entry = {"id": datum_id, "h": hash_, "m": matches,
                 **({"s": 1} if why is None else {"r": why})}
        assert _entry_json(datum_id, hash_, matches, why).encode() == _json(entry)
