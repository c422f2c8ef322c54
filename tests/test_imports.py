"""`dsc lint` is a pre-commit hook: it must start without the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import CORPUS, ROOT, needs_shared

HEAVY = ("hera", "lakefs_sdk", "pydantic", "jsonschema")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return {m.split(".")[0] for m in json.loads(out.stdout.splitlines()[-1])}


def test_import_cli_loads_no_heavy_library() -> None:
    loaded = _modules_after("import compiler.cli")
    assert not loaded & {*HEAVY, "jinja2", "yaml"}, loaded & {*HEAVY, "jinja2", "yaml"}


def test_linting_json_loads_no_heavy_library() -> None:
    loaded = _modules_after(
        "from compiler.spec.lint import lint_paths; from pathlib import Path\n"
        "lint_paths(sorted(Path('examples/hyperparameter/pipelines').glob('*.json')))")
    assert not loaded & {*HEAVY, "jinja2", "yaml"}


def test_linting_yaml_and_templates_load_only_what_they_need() -> None:
    loaded = _modules_after(
        "from compiler.spec.lint import lint_paths; from pathlib import Path\n"
        "lint_paths([Path('tests/cases/valid/anchors-and-template.yaml.j2')])")
    assert {"yaml", "jinja2"} <= loaded
    assert not loaded & set(HEAVY)


@needs_shared
def test_linting_many_files_starts_no_process_pool() -> None:
    # The corpus (253 files, YAML ones among them) is checked in this process.
    loaded = _modules_after(
        "from compiler.spec.lint import lint_paths; from pathlib import Path\n"
        f"lint_paths([Path({str(CORPUS)!r})])")
    assert not loaded & {*HEAVY, "multiprocessing", "concurrent"}
