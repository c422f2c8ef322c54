"""../shared/tools/validate_argo.py's checks (`--strict --crd --rules`), run in this process.

The tool takes about 6 s a run, nearly all of it reading Argo's full CRDs and building the
validators; a test process makes them once per kind here and keeps them. The checks are the
tool's own functions, called as its `main()` calls them, with the same report lines.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tests.conftest import SHARED

TOOL = SHARED / "tools" / "validate_argo.py"
SCHEMAS = SHARED / "reference" / "argo"


@functools.cache
def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validate_argo", TOOL)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.SCHEMA_DIR = SCHEMAS
    return tool


@functools.cache
def _validators(kind: str) -> tuple[Any, Any]:
    tool = _tool()
    return (tool.json_schema_validator(kind, True, False), tool.crd_validator(kind))


def report(path: Path) -> list[str]:
    """The tool's report for one file: `ok   ...` or `FAIL ...` (with its errors) per object,
    `skip ...` for what it does not check."""
    tool = _tool()
    lines = []
    for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
        if doc is None:
            continue
        kind = doc.get("kind") if isinstance(doc, dict) else None
        label = f"{path}[{i}] {kind} {(doc.get('metadata') or {}).get('name', '')}" \
            if isinstance(doc, dict) else f"{path}[{i}] None "
        if kind not in tool.KINDS:
            lines.append(f"skip {label}")
            continue
        schema, crd = _validators(kind)
        errors = []
        for name, validator in (("schema.json strict", schema), ("crd", crd)):
            errors += [f"[{name}] {tool.describe(e)}" for e in sorted(
                validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]
        errors += [f"[crd-cel] {e}" for e in tool.cel_errors(doc)]
        size = len(json.dumps(doc, separators=(",", ":")))
        errors += [f"[rules] {e}" for e in tool.rule_errors(doc, size)]
        lines.append(("FAIL " if errors else "ok   ") + label)
        lines += ["     " + e for e in errors]
    return lines


def validate(files: list[Path]) -> None:
    """Fail with the report unless every object of `files` passes."""
    lines = [line for f in files for line in report(f)]
    bad = [line for line in lines if not line.startswith("ok ")]
    assert not bad, "\n".join(lines)
