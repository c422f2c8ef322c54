"""The command line as users drive it: formats, exit codes, colour, templates, schema."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.commands.console import colour as _colour
from tests.conftest import ROOT, run_dsc

GOOD = """{
  "pipeline": {"name": "edges"},
  "transform": {"image": "pachyderm/opencv:1.0", "cmd": ["python3", "/edges.py"]},
  "input": {"pfs": {"repo": "images", "glob": "/*"}}
}
"""
BAD = GOOD.replace('"glob": "/*"', '"glob": "/[*"')
LATEST = GOOD.replace("pachyderm/opencv:1.0", "pachyderm/opencv:latest")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_clean_file_exits_0(tmp_path: Path) -> None:
    result = run_dsc("lint", "-q", str(_write(tmp_path, "a.json", GOOD)))
    assert result.exit_code == 0
    assert result.stdout == ""


def test_error_exits_1_with_located_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.json", BAD)
    result = run_dsc("lint", str(path), env={"NO_COLOR": "1"})
    assert result.exit_code == 1
    assert f"{path}:4:47: error: glob '/[*': unclosed '['" in result.stdout
    assert result.stdout.rstrip().endswith("[glob-syntax]")
    assert "1 error, 0 warnings in 1 file (1 spec)" in result.stderr


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.json", LATEST)
    assert run_dsc("lint", str(path)).exit_code == 0
    strict = run_dsc("lint", "--strict", str(path))
    assert strict.exit_code == 1
    assert "warning: image 'pachyderm/opencv:latest' is tagged :latest" in strict.stdout


def test_json_output(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.json", BAD)
    result = run_dsc("lint", "-o", "json", str(path))
    data = json.loads(result.stdout)
    assert result.exit_code == 1
    errors = [d for d in data["diagnostics"] if d["severity"] == "error"]
    assert errors == [{"path": str(path), "line": 4, "col": 47, "severity": "error",
                       "code": "glob-syntax", "message": errors[0]["message"],
                       "json_path": "/input/pfs/glob"}]
    assert data["summary"]["errors"] == 1 and data["summary"]["specs"] == 1


def test_github_output_escapes(tmp_path: Path) -> None:
    path = _write(tmp_path, "a,b.json", BAD)
    result = run_dsc("lint", "-o", "github", str(path))
    line = next(x for x in result.stdout.splitlines() if x.startswith("::error "))
    assert line.startswith(f"::error file={str(path).replace(',', '%2C')},line=4,col=47,"
                           "title=dsc glob-syntax::glob '/[*'")


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_dsc("lint", str(tmp_path / "missing.json")).exit_code == 2
    assert run_dsc("lint").exit_code == 2
    assert run_dsc("lint", "-o", "xml", str(_write(tmp_path, "a.json", GOOD))).exit_code == 2
    bad_set = run_dsc("lint", "--set", "novalue", str(_write(tmp_path, "b.json", GOOD)))
    assert bad_set.exit_code == 2
    assert "'novalue' is not KEY=VALUE" in bad_set.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_exits_3(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.json", GOOD)
    path.chmod(0)
    result = run_dsc("lint", str(path))
    assert result.exit_code == 3
    assert "[io-error]" in result.stdout


def test_unreadable_directory_entry_exits_3(tmp_path: Path) -> None:
    # A dangling symlink named like a spec cannot be read, whoever runs the test.
    (tmp_path / "gone.json").symlink_to(tmp_path / "nowhere.json")
    result = run_dsc("lint", str(tmp_path))
    assert result.exit_code == 3
    assert "gone.json:1:1: error: cannot read" in result.stdout


def test_internal_error_is_one_line_and_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    import compiler.spec.lint as lint

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(lint, "lint_paths", explode)
    result = run_dsc("lint", str(_write(tmp_path, "a.json", GOOD)))
    assert result.exit_code == 3
    assert result.stderr.strip() == ("dsc: internal error: RuntimeError: boom (rerun with "
                                     "--traceback and report it)")
    with pytest.raises(RuntimeError):
        run_dsc("--traceback", "lint", str(tmp_path / "a.json"))


def test_templates_take_set_and_values(tmp_path: Path) -> None:
    template = _write(tmp_path, "edges.json.j2", GOOD.replace(
        "pachyderm/opencv:1.0", "{{ image.name }}:{{ image.tag }}"))
    values = _write(tmp_path, "values.yaml", "image: {name: pachyderm/opencv, tag: '0.9'}\n")
    assert run_dsc("lint", "--values", str(values), str(template)).exit_code == 0
    latest = run_dsc("lint", "--strict", "--values", str(values), "--set", "image.tag=latest",
                     str(template))
    assert latest.exit_code == 1 and "tagged :latest" in latest.stdout
    missing = run_dsc("lint", str(template), env={"NO_COLOR": "1"})
    assert missing.exit_code == 1
    assert f"{template}:3:1: error: 'image' is undefined" in missing.stdout


def test_kubernetes_objects_are_skipped_with_a_note(tmp_path: Path) -> None:
    path = _write(tmp_path, "all.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    result = run_dsc("lint", str(path))
    assert result.exit_code == 0
    assert "info: skipped: a Kubernetes Secret object, not a pipeline spec [not-a-spec]" in (
        result.stdout)
    assert run_dsc("lint", "-q", str(path)).stdout == ""


def test_directory_walk_picks_spec_files_only(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", GOOD)
    _write(tmp_path, "notes.txt", "{not json")
    (tmp_path / ".hidden").mkdir()
    _write(tmp_path / ".hidden", "b.json", "{broken")
    result = run_dsc("lint", "-o", "json", str(tmp_path))
    assert json.loads(result.stdout)["summary"]["files"] == 1
    assert result.exit_code == 0


def test_directory_walk_leaves_jsonnet_alone_but_a_named_one_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "a.json", GOOD)
    jsonnet = _write(tmp_path, "edges.jsonnet", "function(src) {pipeline: {name: src}}\n")
    walked = run_dsc("lint", "-o", "json", str(tmp_path))
    assert walked.exit_code == 0
    assert json.loads(walked.stdout)["summary"]["files"] == 1
    named = run_dsc("lint", str(jsonnet), env={"NO_COLOR": "1"})
    assert named.exit_code == 1
    assert f"{jsonnet}:1:1: error: dsc does not support Jsonnet pipeline templates" in (
        named.stdout)


def test_files_named_one_by_one_are_graphs_by_directory(tmp_path: Path) -> None:
    # What the pre-commit hook passes: changed files, from any number of directories.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _write(tmp_path / "a", "edges.json", GOOD)
    other_example = _write(tmp_path / "b", "edges.json", GOOD)
    alternative = _write(tmp_path / "a", "edges-gpu.json", GOOD)
    apart = run_dsc("lint", "-q", str(first), str(other_example))
    assert (apart.exit_code, apart.stdout) == (0, "")
    together = run_dsc("lint", "-q", str(first), str(other_example), str(alternative),
                       env={"NO_COLOR": "1"})
    assert together.exit_code == 1
    assert together.stdout == (f"{alternative}:2:24: error: pipeline `edges` is defined twice "
                               f"(first in {first}) [duplicate-pipeline]\n")


UPSTREAM_ON_MASTER = GOOD.replace('"edges"', '"montage"').replace(
    '{"repo": "images", "glob": "/*"}', '{"repo": "edges", "branch": "master", "glob": "/"}')


def test_the_default_branch_comes_from_the_config_as_for_compile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    _write(specs, "edges.json", GOOD)
    _write(specs, "montage.json", UPSTREAM_ON_MASTER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DSC_DEFAULT_BRANCH", raising=False)
    warned = run_dsc("lint", "-q", "specs", env={"NO_COLOR": "1"})
    assert warned.exit_code == 0
    assert warned.stdout == (
        "specs/montage.json:4:48: warning: this input reads branch `master` of `edges`, but "
        "pipeline `edges` writes `main` (the default branch), so the input never sees its "
        "output; set `default_branch: master` in dsc.yaml (or --default-branch master), or "
        "`output_branch: master` in the spec of `edges` [upstream-branch]\n")
    assert run_dsc("lint", "-q", "--strict", "specs").exit_code == 1
    assert run_dsc("lint", "-q", "--strict", "--default-branch", "master", "specs").stdout == ""
    assert run_dsc("lint", "-q", "--strict", "specs",
                   env={"DSC_DEFAULT_BRANCH": "master"}).exit_code == 0
    _write(tmp_path, "dsc.yaml", "default_branch: master\n")
    assert run_dsc("lint", "-q", "--strict", "specs").exit_code == 0
    _write(tmp_path, "other.yaml", "default_branch: 5\n")
    bad = run_dsc("lint", "--config", "other.yaml", "specs", env={"NO_COLOR": "1"})
    assert bad.exit_code == 2
    assert "other.yaml:1:17: error: config: `default_branch` must be a string" in bad.output


def test_colour_only_on_a_tty_and_no_color_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert _colour(Tty()) is True
    assert _colour(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert _colour(Tty()) is False


def test_schema_command_prints_the_shipped_schema() -> None:
    result = run_dsc("schema")
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed == json.loads((ROOT / "schemas" / "pipeline.schema.json").read_text())
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_version_and_module_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "compiler", "--version"], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    assert out.stdout.startswith("dsc, version ")


# --- paths: the same usage error, in every command that takes them ----------------------------

SPEC_COMMANDS = [("lint",), ("datums",), ("compile",), ("run",), ("gc",), ("triggers", "action")]


@pytest.mark.parametrize("command", SPEC_COMMANDS, ids=" ".join)
def test_a_missing_spec_path_is_a_usage_error_in_every_command(tmp_path: Path,
                                                               command: tuple[str, ...]
                                                               ) -> None:
    result = run_dsc(*command, str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for 'SPECS...': Path '{tmp_path / 'missing'}' does not exist.")


@pytest.mark.parametrize("command", SPEC_COMMANDS, ids=" ".join)
def test_a_directory_without_spec_files_is_a_usage_error_in_every_command(
        tmp_path: Path, command: tuple[str, ...]) -> None:
    empty = tmp_path / "specs"
    (empty / ".git").mkdir(parents=True)
    _write(empty / ".git", "config.json", GOOD)  # hidden directories are not walked
    _write(empty, "notes.txt", GOOD)
    result = run_dsc(*command, str(_write(tmp_path, "a.json", GOOD)), str(empty))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for 'SPECS...': Directory '{empty}' holds no spec files (*.json, "
        "*.yaml, *.yml, or .j2/.jinja templates of them; hidden directories are skipped).")
    assert result.stdout == ""


@pytest.mark.parametrize(("command", "option"), [
    ("run", "--data"), ("gc", "--data"), ("datums", "--data"), ("datums", "--from-dir"),
    ("provenance", "--data")])
def test_a_missing_data_directory_is_a_usage_error_in_every_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, option: str) -> None:
    args = (["lakefs://split/main"] if command == "provenance"
            else [str(_write(tmp_path, "a.json", GOOD))])
    given = run_dsc(command, *args, option, str(tmp_path / "nowhere"))
    assert given.exit_code == 2
    assert given.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--data': Directory '{tmp_path / 'nowhere'}' does not "
        "exist.")
    if command in ("run", "gc"):  # the others have no default data directory
        monkeypatch.chdir(tmp_path)
        default = run_dsc(command, *args)
        assert default.exit_code == 2
        assert default.stderr.splitlines()[-1] == (
            "Error: Invalid value for '--data': Directory 'data' does not exist. (the "
            "default; give --data DIR)")


def test_datums_takes_the_data_directory_of_run_as_data(tmp_path: Path) -> None:
    spec = _write(tmp_path, "edges.json", GOOD)
    (tmp_path / "data" / "images").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        _write(tmp_path / "data" / "images", name, "x")
    data = run_dsc("datums", str(spec), "--data", str(tmp_path / "data"), "-o", "json")
    assert data.exit_code == 0
    assert [d["inputs"][0]["path"] for d in json.loads(data.stdout)] == ["/a.png", "/b.png"]
    old_name = run_dsc("datums", str(spec), "--from-dir", str(tmp_path / "data"), "-o", "json")
    assert (old_name.exit_code, old_name.stdout) == (0, data.stdout)


@pytest.mark.parametrize("args", [["--traceback", "lint", "A"], ["lint", "--traceback", "A"],
                                  ["lint", "A", "--traceback"]])
def test_traceback_shows_the_stack_before_or_after_the_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    import compiler.spec.lint as lint

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(lint, "lint_paths", explode)
    spec = str(_write(tmp_path, "a.json", GOOD))
    with pytest.raises(RuntimeError, match="boom"):
        run_dsc(*[spec if a == "A" else a for a in args])


def test_every_command_takes_traceback() -> None:
    from click import Group

    from compiler.cli import cli

    def commands(group: Group, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        out = []
        for name, command in sorted(group.commands.items()):
            if isinstance(command, Group):
                out += commands(command, (*prefix, name))
            else:
                out.append((*prefix, name))
        return out

    for command in commands(cli, ()):
        assert "--traceback" in run_dsc(*command, "--help").stdout, command
