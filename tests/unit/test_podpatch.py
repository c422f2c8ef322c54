"""`pod_patch` (RFC 6902) -> Argo podSpecPatch (strategic merge) against the pod dsc builds."""

from __future__ import annotations

import pytest

from compiler.argo.podpatch import PodPatchError, pod_spec_patch

BASE = {"containers": [{"name": "user", "image": "python:3.12",
                        "env": [{"name": "A", "value": "1"}],
                        "volumeMounts": [{"name": "pfs", "mountPath": "/pfs"}]}],
        "nodeSelector": {"pool": "cpu", "zone": "a"},
        "volumes": [{"name": "pfs", "emptyDir": {}}]}


def test_changes_become_a_strategic_merge_patch_of_only_what_changed() -> None:
    patch = pod_spec_patch((
        {"op": "add", "path": "/containers/0/env/-", "value": {"name": "B", "value": "2"}},
        {"op": "replace", "path": "/containers/0/env/0/value", "value": "one"},
        {"op": "add", "path": "/containers/0/resources", "value": {"limits": {"cpu": "2"}}},
        {"op": "remove", "path": "/nodeSelector/zone"},
        {"op": "add", "path": "/tolerations", "value": [{"key": "gpu", "operator": "Exists"}]},
        {"op": "test", "path": "/containers/0/image", "value": "python:3.12"},
    ), BASE)
    assert patch == {
        "containers": [{"name": "user", "env": [{"name": "A", "value": "one"},
                                                  {"name": "B", "value": "2"}],
                        "resources": {"limits": {"cpu": "2"}}}],
        "nodeSelector": {"zone": None},
        "tolerations": [{"key": "gpu", "operator": "Exists"}]}


def test_copy_and_move_follow_rfc_6902() -> None:
    patch = pod_spec_patch((
        {"op": "copy", "from": "/nodeSelector/pool", "path": "/nodeSelector/copied"},
        {"op": "move", "from": "/nodeSelector/zone", "path": "/nodeSelector/moved"},
    ), BASE)
    assert patch == {"nodeSelector": {"copied": "cpu", "moved": "a", "zone": None}}


@pytest.mark.parametrize(("op", "words"), [
    ({"op": "remove", "path": "/volumes/0"}, "removing 'pfs' cannot be written"),
    ({"op": "add", "path": "/containers/1/env", "value": []}, "no Pachyderm storage sidecar"),
    ({"op": "add", "path": "/containers/-", "value": {"name": "x"}}, "extra containers"),
    ({"op": "test", "path": "/containers/0/image", "value": "other"}, "the test fails"),
    ({"op": "replace", "path": "/hostNetwork", "value": True}, "has nothing at that path"),
    ({"op": "frobnicate", "path": "/x"}, "unknown op"),
    ({"op": "add", "path": "nodeSelector", "value": {}}, "not a JSON pointer"),
])
def test_what_a_merge_patch_cannot_say_is_refused_by_name(op: dict[str, object],
                                                          words: str) -> None:
    with pytest.raises(PodPatchError, match=words.replace("(", r"\(")):
        pod_spec_patch((op,), BASE)


def test_the_base_pod_is_not_modified() -> None:
    before = repr(BASE)
    pod_spec_patch(({"op": "remove", "path": "/nodeSelector/zone"},), BASE)
    assert repr(BASE) == before
