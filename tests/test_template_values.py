"""Template values the templates do not read, or render wrongly, are usage errors (exit 2) in
every command that takes --set / --values: a typo is never silently ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_dsc

TEMPLATE = """\
pipeline: {name: edges}
transform:
  image: "{{ image }}"
  cmd: [python3, /edges.py]
  env: {MODE: "{{ settings.mode | default('fast') }}"}
input: {pfs: {repo: images, glob: "{{ glob | default('/*') }}"}}
"""
PLAIN = """\
{"pipeline": {"name": "montage"},
 "transform": {"image": "v4tech/imagemagick:7", "cmd": ["sh"]},
 "input": {"pfs": {"repo": "edges", "glob": "/"}}}
"""


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "edges.yaml.j2").write_text(TEMPLATE)
    (folder / "montage.json").write_text(PLAIN)
    return folder


def _error_line(output: str) -> str:
    return [line for line in output.splitlines() if line.startswith("Error: ")][-1]


def test_a_key_no_template_reads_is_named_with_the_closest_one(specs: Path) -> None:
    result = run_dsc("lint", str(specs), "--set", "image=pachyderm/opencv:1.0",
                     "--set", "imag=pachyderm/opencv:1.1")
    assert result.exit_code == 2
    assert _error_line(result.output) == (
        "Error: Invalid value for --set: imag=pachyderm/opencv:1.1: no template reads "
        "`imag`; did you mean `image`?")


def test_a_nested_key_is_read_only_where_a_template_reads_it(specs: Path) -> None:
    image = ("--set", "image=pachyderm/opencv:1.0")
    assert run_dsc("lint", "-q", str(specs), *image, "--set", "settings.mode=slow").exit_code == 0
    typo = run_dsc("lint", str(specs), *image, "--set", "settings.mdoe=slow")
    assert typo.exit_code == 2
    assert _error_line(typo.output) == (
        "Error: Invalid value for --set: settings.mdoe=slow: no template reads "
        "`settings.mdoe`; did you mean `settings.mode`?")


def test_every_unread_key_is_listed_command_line_first(specs: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("image: pachyderm/opencv:1.0\nregion: eu\n")
    result = run_dsc("lint", str(specs), "--values", str(values), "--set", "glbo=/",
                     "--set", "zone=b")
    assert result.exit_code == 2
    assert _error_line(result.output) == (
        "Error: Invalid value for --set: glbo=/: no template reads `glbo`; did you mean "
        "`glob`? (also unread: `zone`, `region`)")


def test_a_values_file_key_is_located_in_the_file(specs: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("image: pachyderm/opencv:1.0\nsettings:\n  mode: slow\n  moed: fast\n")
    result = run_dsc("lint", str(specs), "--values", str(values))
    assert result.exit_code == 2
    assert _error_line(result.output) == (
        f"Error: Invalid value for --values: {values}:4:3: no template reads "
        "`settings.moed`; did you mean `settings.mode`?")
    # A --set that replaces the key leaves nothing of the file's value to be unread.
    assert run_dsc("lint", "-q", str(specs), "--values", str(values),
                   "--set", "settings=slow").exit_code == 0


def test_values_without_any_template_are_unread(tmp_path: Path) -> None:
    plain = tmp_path / "montage.json"
    plain.write_text(PLAIN)
    result = run_dsc("lint", str(plain), "--set", "image=x:1")
    assert result.exit_code == 2
    assert _error_line(result.output) == (
        "Error: Invalid value for --set: image=x:1: no file given is a template (.j2, .jinja), "
        "so no template reads `image`")


def test_a_mapping_rendered_as_text_is_located_at_the_template_line(specs: Path) -> None:
    result = run_dsc("lint", str(specs), "--set", "image.tag=1")
    assert result.exit_code == 2
    assert _error_line(result.output) == (
        f"Error: Invalid value for --set: {specs / 'edges.yaml.j2'}:3: the template renders "
        "`image` as text, but --set image.tag=1 makes it a mapping; give `image` a plain "
        "value, or render one of its keys (`{{ image.tag }}`) or all of it as JSON "
        "(`{{ image | tojson }}`)")


def test_a_mapping_the_template_renders_as_json_is_fine(tmp_path: Path) -> None:
    template = tmp_path / "edges.yaml.j2"
    template.write_text(TEMPLATE.replace('env: {MODE: "{{ settings.mode | default(\'fast\') }}"}',
                                         "env: {{ settings | tojson }}"))
    result = run_dsc("lint", "-q", str(template), "--set", "image=pachyderm/opencv:1.0",
                     "--set", "settings.MODE=slow")
    assert (result.exit_code, result.output) == (0, "")


def test_reads_of_every_template_count(tmp_path: Path) -> None:
    # Two templates, each reading one key: neither key is unread (-j, deprecated, is ignored).
    (tmp_path / "a.yaml.j2").write_text(TEMPLATE.replace("{{ image }}", "{{ image_a }}"))
    (tmp_path / "b.yaml.j2").write_text(
        TEMPLATE.replace("{{ image }}", "{{ image_b }}").replace("edges", "other"))
    common = ("lint", "-q", "-j", "2", str(tmp_path), "--set", "image_a=x:1",
              "--set", "image_b=y:1", "--set", "settings.mode=slow")
    assert run_dsc(*common).exit_code == 0
    typo = run_dsc(*common, "--set", "imgae_a=z:1")
    assert typo.exit_code == 2
    assert "no template reads `imgae_a`; did you mean `image_a`?" in typo.output


def test_a_template_that_cannot_be_parsed_says_so_instead(tmp_path: Path) -> None:
    # What it would read is unknown: its syntax error is the finding, not the values.
    template = tmp_path / "edges.yaml.j2"
    template.write_text(TEMPLATE.replace("{{ image }}", "{{ image "))
    result = run_dsc("lint", str(template), "--set", "image=x:1", env={"NO_COLOR": "1"})
    assert result.exit_code == 1
    assert "edges.yaml.j2:3:1: error: " in result.stdout


@pytest.mark.parametrize("command", [
    ["compile"],
    ["datums", "--listing", "{listing}"],
    ["run", "--data", "{data}"],
    ["triggers", "action"],
])
def test_every_command_that_takes_values_refuses_an_unread_one(
        specs: Path, tmp_path: Path, command: list[str]) -> None:
    listing = tmp_path / "listing.json"
    listing.write_text(json.dumps({"images": ["/a.png"]}))
    (tmp_path / "data").mkdir()
    args = [a.format(listing=listing, data=tmp_path / "data") for a in command]
    result = run_dsc(*args, str(specs / "edges.yaml.j2"), "--set", "image=x:1",
                     "--set", "imag=y:1")
    assert result.exit_code == 2, result.output
    assert _error_line(result.output) == (
        "Error: Invalid value for --set: imag=y:1: no template reads `imag`; did you mean "
        "`image`?")
    mapping = run_dsc(*args, str(specs / "edges.yaml.j2"), "--set", "image.tag=1")
    assert mapping.exit_code == 2, mapping.output
    assert "the template renders `image` as text" in _error_line(mapping.output)
