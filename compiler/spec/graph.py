"""The pipelines given, as one graph: who reads whose output, in a deterministic order (what
`dsc compile` builds manifests from, and `plan`, `gc` and `triggers` read). Not Argo's: a
runner of any kind would order the pipelines so."""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass

from compiler.spec.model import Pipeline


@dataclass(frozen=True, slots=True)
class Graph:
    """Pipelines in topological order (name as the tie-break), and for each its upstream
    pipelines of the same graph (a pipeline's output repo is its name)."""

    name: str
    pipelines: tuple[Pipeline, ...]
    upstream: dict[str, tuple[str, ...]]


def build_graph(name: str, pipelines: list[Pipeline]) -> Graph:
    """Order the pipelines so every one comes after the pipelines it reads. Lint has already
    refused cycles and duplicate names; a cycle here is a bug and raises ValueError."""
    by_name = {p.name: p for p in pipelines}
    upstream = {p.name: tuple(sorted({r for r in p.repos() if r in by_name and r != p.name}))
                for p in pipelines}
    waiting = {n: len(ups) for n, ups in upstream.items()}
    downstream: dict[str, list[str]] = {n: [] for n in by_name}
    for n, ups in upstream.items():
        for u in ups:
            downstream[u].append(n)
    ready = [n for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for d in downstream[n]:
            waiting[d] -= 1
            if waiting[d] == 0:
                heapq.heappush(ready, d)
    if len(order) != len(by_name):
        raise ValueError("the pipelines read each other's output in a cycle")
    return Graph(name, tuple(by_name[n] for n in order), upstream)


def short_hash(*parts: str, length: int = 8) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:length]
