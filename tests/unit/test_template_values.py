"""Template values: where each was given, and what the templates read of them."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from compiler.spec.source import LoadError
from compiler.spec.template import render
from compiler.spec.values_input import (
    Origin,
    TemplateReads,
    TemplateValuesError,
    check_values_read,
    template_values,
)


def _reads(source: str, values: dict[str, Any] | None = None) -> set[tuple[str, ...]]:
    reads = TemplateReads()
    with contextlib.suppress(LoadError):  # what a template reads is known before it renders
        render(source, values or {}, "t.j2", reads)
    assert reads.templates == 1 and reads.complete
    return reads.paths


@pytest.mark.parametrize(("source", "paths"), [
    ("{{ image.tag }}", {("image", "tag")}),
    ("{{ image['tag'] }}:{{ cmd[0] }}", {("image", "tag"), ("cmd", "0")}),
    ("{{ image.get('tag') }}", {("image", "tag")}),
    ("{{ image.tag | default('1') }}", {("image", "tag")}),
    ("{% if image.tag is defined %}x{% endif %}", {("image", "tag")}),
    # Read whole: iterated, a method called, a dynamic key, given another name or to a macro.
    ("{% for k, v in env.items() %}{{ k }}{% endfor %}", {("env",)}),
    ("{% for v in env %}{{ v }}{% endfor %}", {("env",)}),
    ("{{ image[key] }}", {("image",), ("key",)}),
    ("{% set i = image %}{{ i.tag }}", {("image",)}),
    ("{% macro m(x) %}{{ x.tag }}{% endmacro %}{{ m(image) }}", {("image",)}),
    # Whichever branch renders: a key is used where a template uses it.
    ("{% if gpu %}{{ gpu_type }}{% endif %}", {("gpu",), ("gpu_type",)}),
    # Names the template sets itself, and Jinja's own globals, are not values.
    ("{% set tries = 3 %}{{ tries }}{{ range(2) | list }}{% for s in [1] %}{{ loop.index }}"
     "{% endfor %}", set()),
])
def test_what_a_template_reads(source: str, paths: set[tuple[str, ...]]) -> None:
    assert _reads(source) == paths


def test_a_value_named_like_a_global_is_a_value() -> None:
    assert _reads("{{ range }}", {"range": "1-5"}) == {("range",)}


def test_a_template_that_cannot_be_parsed_leaves_the_reads_unknown() -> None:
    reads = TemplateReads()
    with pytest.raises(LoadError):
        render("{{ image ", {}, "t.j2", reads)
    assert not reads.complete
    check_values_read({"anything": 1}, reads)  # nothing to compare with: no error


def test_each_leaf_remembers_where_it_was_given(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    first.write_text("image: {name: x, tag: '1'}\nregion: eu\nlimits: {cpu: 1}\n")
    second = tmp_path / "b.yaml"
    second.write_text("image:\n  tag: '2'\nlimits: small\n")
    values = template_values(["image.name=y", "extra=a=b"], [first, second])
    assert dict(values) == {"image": {"name": "y", "tag": "2"}, "region": "eu",
                            "limits": "small", "extra": "a=b"}
    assert values.origins == {
        ("image", "name"): Origin("--set", "image.name=y"),
        ("image", "tag"): Origin("--values", f"{second}:2:3"),
        ("region",): Origin("--values", f"{first}:2:1"),
        ("limits",): Origin("--values", f"{second}:3:1"),
        ("extra",): Origin("--set", "extra=a=b"),
    }


def test_values_given_in_code_are_checked_too() -> None:
    reads = TemplateReads({("image",)}, templates=1)
    check_values_read({"image": "x:1"}, reads)
    with pytest.raises(TemplateValuesError) as info:
        check_values_read({"image": "x:1", "imgae": "y"}, reads)
    assert str(info.value) == "no template reads `imgae`; did you mean `image`?"
