"""Serialise manifests deterministically: same objects, same bytes; nothing YAML could misread.

PyYAML quotes what YAML 1.1 would read as another type (`on`, `yes`, `1.5`), but Kubernetes
reads manifests with a YAML 1.2 parser, which also takes `1e10`, `0o17` and `.inf` as numbers
(rules.md §13); those are quoted here too. Multi-line strings are written as literal blocks.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

_YAML12_NOT_STRING = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|0x[0-9a-fA-F]+|0o[0-7]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    r"|~|null|Null|NULL|true|True|TRUE|false|False|FALSE|")


# libyaml's emitter (PyYAML's manylinux wheels ship it) is ~10x faster than the pure-Python
# one on a big graph; without it PyYAML's own emitter writes the same text.
class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    if _YAML12_NOT_STRING.fullmatch(value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


class _FlowList(list):  # type: ignore[type-arg]
    """A long list of short scalars (embedded datum keys): one flow-style line, not a line
    per item, so a pinned Workflow stays about as small in YAML as in JSON."""


def _flow(dumper: yaml.SafeDumper, value: _FlowList) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


_Dumper.add_representer(_FlowList, _flow)
_FLOW_KEYS = frozenset({"withItems"})


_FIRST = ("apiVersion", "kind", "metadata", "name")


def plain(obj: Any) -> dict[str, Any]:
    """A hera object or a pydantic model as plain JSON data (no None values), each mapping with
    `apiVersion`, `kind`, `metadata` and `name` first, then its keys alphabetically."""
    if isinstance(obj, dict):
        return obj
    model = obj.build() if hasattr(obj, "build") else obj
    data: dict[str, Any] = _readable(
        model.model_dump(exclude_none=True, by_alias=True, mode="json"))
    return data


def _readable(value: Any) -> Any:
    if isinstance(value, dict):
        keys = [k for k in _FIRST if k in value] + sorted(k for k in value if k not in _FIRST)
        return {k: _FlowList(value[k]) if k in _FLOW_KEYS else _readable(value[k])
                for k in keys}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value


def to_yaml(objects: list[Any]) -> str:
    """YAML documents separated by `---`, keys in construction order."""
    return "".join(("---\n" if i else "") + _document(o) for i, o in enumerate(objects))


def _document(obj: Any) -> str:
    text: str = yaml.dump(plain(obj), Dumper=_Dumper, sort_keys=False,
                          default_flow_style=False, width=10_000, allow_unicode=True)
    # libyaml ends a document whose last scalar is a block literal with an explicit `...`;
    # the next `---` (or the end of the stream) ends it just as well.
    return text.removesuffix("...\n")


def digest_text(objects: list[Any]) -> str:
    """A canonical text of `objects` to hash: compact, key-sorted JSON (fast, and the same
    for the same objects whatever the YAML emitter)."""
    return json.dumps([plain(o) for o in objects], sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def to_json(objects: list[Any], *, compact: bool = False) -> str:
    """One `kind: List` object, which `kubectl apply -f -` reads like several documents.
    `compact`: one object as kubectl stores it in its last-applied annotation."""
    if compact:
        return json.dumps(plain(objects[0]) if len(objects) == 1 else
                          [plain(o) for o in objects], separators=(",", ":"),
                          ensure_ascii=False)
    flows: list[_FlowList] = []

    def mark(value: Any) -> Any:
        if isinstance(value, _FlowList):
            flows.append(value)
            return f"\0flow{len(flows) - 1}\0"
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark({"apiVersion": "v1", "kind": "List",
                            "items": [plain(o) for o in objects]}),
                      indent=2, ensure_ascii=False)
    # Embedded datum keys on one line, as in YAML: a line per key would triple a pinned run.
    return _FLOW_MARK.sub(lambda m: json.dumps(flows[int(m[1])], ensure_ascii=False),
                          text) + "\n"


_FLOW_MARK = re.compile(r'"\\u0000flow([0-9]+)\\u0000"')
