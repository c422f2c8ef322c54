"""A spec's `pod_patch` (RFC 6902 JSON patch) as part of Argo's `podSpecPatch`.

Pachyderm applies `pod_patch` to the worker pod it generates, whose container 0 is the user
container. Argo applies `podSpecPatch` as a Kubernetes strategic merge patch to the pod it
generates. So the JSON patch is applied here to the pod as dsc builds it (the `user`
container first, then the pod-level fields dsc sets), and what changed is written back as a
strategic merge patch: containers by name, maps key by key (a removed key becomes null), other
values whole. What a merge patch cannot say (removing an element of a merged list, touching
Pachyderm's storage sidecar `containers/1`) is refused by name, never dropped.
"""

from __future__ import annotations

import copy
from typing import Any

# Lists Kubernetes merges by a key in a strategic merge patch (core/v1 patchMergeKey): giving
# the whole new list adds and updates elements but cannot remove one.
_MERGED_LISTS = {"volumes": "name", "imagePullSecrets": "name", "env": "name",
                 "volumeMounts": "mountPath", "ports": "containerPort", "containers": "name",
                 "initContainers": "name"}


class PodPatchError(ValueError):
    """An operation dsc cannot express as podSpecPatch (the message says which and why)."""


def pod_spec_patch(patch: tuple[dict[str, Any], ...], base: dict[str, Any]) -> dict[str, Any]:
    """The strategic merge patch that turns `base` into `base` with `patch` applied."""
    patched = copy.deepcopy(base)
    for i, op in enumerate(patch):
        path = _pointer(op.get("path", ""))
        if path[:1] == ["containers"] and (len(path) < 2 or path[1] != "0"):
            raise PodPatchError(f"operation {i} ({op.get('op')} {op.get('path')}): dsc pods "
                                "have no Pachyderm storage sidecar or extra containers; "
                                "patch `/containers/0` (the user container)")
        patched = _apply(patched, op, i)
    merge: dict[str, Any] = _merge_patch(base, patched, "")
    return merge


def _pointer(text: str) -> list[str]:
    if text == "":
        return []
    if not text.startswith("/"):
        raise PodPatchError(f"path {text!r} is not a JSON pointer")
    return [p.replace("~1", "/").replace("~0", "~") for p in text[1:].split("/")]


def _apply(doc: Any, op: dict[str, Any], i: int) -> Any:
    kind = op.get("op")
    path = _pointer(op.get("path", ""))
    where = f"operation {i} ({kind} {op.get('path')})"
    if kind == "test":
        if _get(doc, path, where) != op.get("value"):
            raise PodPatchError(f"{where}: the test fails against the pod dsc builds")
        return doc
    if kind in ("move", "copy"):
        source = _pointer(op.get("from", ""))
        value = copy.deepcopy(_get(doc, source, where))
        if kind == "move":
            doc = _remove(doc, source, where)
        return _add(doc, path, value, where)
    if kind == "remove":
        return _remove(doc, path, where)
    if kind == "replace":
        _get(doc, path, where)
        return _add(_remove(doc, path, where), path, op.get("value"), where)
    if kind == "add":
        return _add(doc, path, op.get("value"), where)
    raise PodPatchError(f"{where}: unknown op")


def _get(doc: Any, path: list[str], where: str) -> Any:
    for part in path:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise PodPatchError(f"{where}: the pod dsc builds has nothing at that path")
    return doc


def _add(doc: Any, path: list[str], value: Any, where: str) -> Any:
    if not path:
        return copy.deepcopy(value)
    parent = _get(doc, path[:-1], where)
    key = path[-1]
    if isinstance(parent, dict):
        parent[key] = copy.deepcopy(value)
    elif isinstance(parent, list) and (key == "-" or (key.isdigit() and int(key) <= len(parent))):
        parent.insert(len(parent) if key == "-" else int(key), copy.deepcopy(value))
    else:
        raise PodPatchError(f"{where}: cannot add there")
    return doc


def _remove(doc: Any, path: list[str], where: str) -> Any:
    _get(doc, path, where)
    parent = _get(doc, path[:-1], where)
    if isinstance(parent, dict):
        del parent[path[-1]]
    else:
        del parent[int(path[-1])]
    return doc


def _merge_patch(before: Any, after: Any, where: str) -> Any:
    """What to write so a strategic merge of it onto `before` gives `after`."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: dict[str, Any] = {}
        for key in sorted(set(before) | set(after)):
            if key not in after:
                out[key] = None
            elif key not in before:
                out[key] = after[key]
            elif before[key] != after[key]:
                out[key] = _merge_list(key, before[key], after[key], f"{where}/{key}") \
                    if key in _MERGED_LISTS and isinstance(after[key], list) \
                    else _merge_patch(before[key], after[key], f"{where}/{key}")
        return out
    return after


def _merge_list(key: str, before: list[Any], after: list[Any], where: str) -> list[Any]:
    merge_key = _MERGED_LISTS[key]
    kept = {item.get(merge_key) for item in after if isinstance(item, dict)}
    gone = [item.get(merge_key) for item in before
            if isinstance(item, dict) and item.get(merge_key) not in kept]
    if gone:
        raise PodPatchError(f"`{where}`: removing {gone[0]!r} cannot be written as Argo's "
                            "podSpecPatch (a strategic merge patch); leave it, or set the "
                            "field it comes from in the spec instead")
    by_key = {item.get(merge_key): item for item in before if isinstance(item, dict)}
    out = []
    for item in after:
        old = by_key.get(item.get(merge_key)) if isinstance(item, dict) else None
        if old is None:
            out.append(item)
        elif old != item:
            out.append({merge_key: item[merge_key],
                        **_merge_patch(old, item, f"{where}/{item[merge_key]}")})
    return out
