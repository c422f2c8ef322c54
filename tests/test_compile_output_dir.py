"""`dsc compile --output-dir DIR` leaves in DIR only what this compile wrote (and the user's own
files): `kubectl apply -f DIR/` must not start a stale Workflow an earlier compile wrote."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_dsc

SPEC = """{
  "pipeline": {"name": "edges"},
  "transform": {"image": "pachyderm/opencv:1.0", "cmd": ["python3", "/edges.py"]},
  "input": {"pfs": {"repo": "images", "glob": "/*"}}
}
"""


def _compile(tmp_path: Path, image: str, *args: str) -> tuple[list[str], str]:
    spec = tmp_path / "specs" / "edges.json"
    spec.parent.mkdir(exist_ok=True)
    spec.write_text(SPEC.replace("pachyderm/opencv:1.0", image))
    result = run_dsc("compile", str(spec.parent), "--output-dir", str(tmp_path / "out"), *args)
    assert result.exit_code == 0, result.stderr
    return sorted(p.name for p in (tmp_path / "out").iterdir()), result.stderr


def test_a_workflow_an_earlier_compile_wrote_is_removed(tmp_path: Path) -> None:
    first, _ = _compile(tmp_path, "pachyderm/opencv:1.0")
    [old_run] = [n for n in first if n.startswith("workflow-")]
    second, stderr = _compile(tmp_path, "pachyderm/opencv:1.1")  # a new run name
    [new_run] = [n for n in second if n.startswith("workflow-")]
    assert new_run != old_run
    assert second == [".dsc-compile", new_run, "workflowtemplate-specs.yaml"]
    assert stderr.splitlines() == [
        f"wrote 2 files to {tmp_path / 'out'}",
        f"removed 1 file an earlier compile wrote there: {old_run}"]
    # the same specs again: nothing to remove, nothing said about it
    again, stderr = _compile(tmp_path, "pachyderm/opencv:1.1")
    assert again == second and stderr == f"wrote 2 files to {tmp_path / 'out'}\n"


def test_another_format_replaces_the_files_of_the_first(tmp_path: Path) -> None:
    _compile(tmp_path, "pachyderm/opencv:1.0")
    names, stderr = _compile(tmp_path, "pachyderm/opencv:1.0", "-o", "json")
    assert [n for n in names if not n.endswith(".json")] == [".dsc-compile"]
    assert "removed 2 files an earlier compile wrote there: " in stderr


def test_files_dsc_did_not_write_or_that_were_changed_since_stay(tmp_path: Path) -> None:
    first, _ = _compile(tmp_path, "pachyderm/opencv:1.0")
    [old_run] = [n for n in first if n.startswith("workflow-")]
    out = tmp_path / "out"
    (out / "configmap.yaml").write_text("kind: ConfigMap\n")  # the user's own manifest
    (out / "notes").mkdir()
    edited = out / old_run
    edited.write_text(edited.read_text() + "# edited by hand\n")
    names, stderr = _compile(tmp_path, "pachyderm/opencv:1.1")
    assert {"configmap.yaml", "notes", old_run} <= set(names)
    assert stderr.splitlines()[1] == (
        f"dsc: warning: {edited}: an earlier compile wrote it and it has changed since, so it "
        f"stays; remove it before `kubectl apply -f {out}`")
    # still known as dsc's: put back as dsc wrote it, the next compile removes it
    edited.write_text(edited.read_text().replace("# edited by hand\n", ""))
    names, stderr = _compile(tmp_path, "pachyderm/opencv:1.1")
    assert old_run not in names and f"there: {old_run}" in stderr


def test_a_record_naming_other_places_removes_nothing_there(tmp_path: Path) -> None:
    _compile(tmp_path, "pachyderm/opencv:1.0")
    outside = tmp_path / "precious.yaml"
    outside.write_text("x")
    record = tmp_path / "out" / ".dsc-compile"
    data = json.loads(record.read_text())
    data["files"]["../precious.yaml"] = data["files"]["workflowtemplate-specs.yaml"]
    record.write_text(json.dumps(data))
    _compile(tmp_path, "pachyderm/opencv:1.1")
    assert outside.read_text() == "x"
    record.write_text("{not json")
    names, stderr = _compile(tmp_path, "pachyderm/opencv:1.0")  # an unreadable record
    assert "removed" not in stderr and len(names) == 4  # both runs' Workflows stay
