"""Kubernetes and Argo names for dsc objects: `[a-z0-9-]`, bounded, deterministic."""

from __future__ import annotations

from compiler.spec.graph import short_hash
from compiler.spec.names import k8s_name

OBJECT_MAX = 63  # Workflow, WorkflowTemplate (copied into a pod label)
CRON_MAX = 52  # CronWorkflow: Argo appends "-<unix time>"
# expr builtins and keywords that broke `depends` in Argo 3.5 (argoproj/argo-workflows#12037)
RESERVED_TASKS = frozenset({"split", "filter", "join", "in", "not", "and", "or", "map", "all",
                            "any", "none", "one", "count", "len", "matches", "contains"})
# Templates every compiled object has (compiler.argo.build): no pipeline may take their name.
SHARED_TEMPLATES = frozenset({"main", "section", "abort", "open", "commit"})


def fit(name: str, limit: int) -> str:
    """`name` as a DNS-1123 label of at most `limit` characters; a truncated name ends in a
    hash of the whole name, so two long names never meet."""
    stem = k8s_name(name)
    if len(stem) <= limit:
        return stem
    return stem[: limit - 7].rstrip("-") + "-" + short_hash(name, length=6)


def unique_names(names: list[str], limit: int) -> dict[str, str]:
    """Map each (Pachyderm) name to a distinct Argo name; on a collision after sanitising, the
    later names (in sorted order) get a hash of the original name."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in sorted(names):
        candidate = fit(name, limit)
        if candidate in RESERVED_TASKS or candidate in SHARED_TEMPLATES:
            candidate += "-pipeline"  # readable in the Argo UI, and never an expr builtin
        if candidate in taken:
            candidate = fit(candidate[: limit - 7] + "-" + short_hash(name, length=6), limit)
        taken.add(candidate)
        out[name] = candidate
    return out
