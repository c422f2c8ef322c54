"""Reading the corpus specs as plain values, for tests that mutate or cross-check them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compiler.spec.checks import legacy_markers
from compiler.spec.loader import LoadError, read_documents
from tests.conftest import CORPUS


def corpus_specs() -> list[tuple[str, dict[str, Any]]]:
    """(label, spec) for every parseable, non-legacy spec of the corpus."""
    specs: list[tuple[str, dict[str, Any]]] = []
    if not CORPUS.is_dir():
        return specs
    for path in sorted(CORPUS.iterdir()):
        if path.suffix not in (".json", ".yaml"):
            continue
        try:
            docs = read_documents(path, path.name, {})
        except LoadError:
            continue
        for doc in docs:
            items = doc.data if isinstance(doc.data, list) else [doc.data]
            for i, item in enumerate(items):
                if isinstance(item, dict) and not legacy_markers(item):
                    specs.append((f"{path.name}#{i}", item))
    return specs


def corpus_paths() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".json", ".yaml")) \
        if CORPUS.is_dir() else []
