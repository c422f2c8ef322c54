"""Loading is safe by construction: bounded, strict about duplicates, precise about lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.spec import yamlsource
from compiler.spec.loader import MAX_FILE_BYTES, LoadError, read_documents
from compiler.spec.source import LineIndex
from compiler.spec.template import render
from compiler.spec.values_input import TemplateValuesError, template_values


def _read(tmp_path: Path, name: str, text: str | bytes) -> list[object]:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return [d.data for d in read_documents(path, name, {})]


def _error(tmp_path: Path, name: str, text: str | bytes) -> LoadError:
    with pytest.raises(LoadError) as info:
        _read(tmp_path, name, text)
    return info.value


def test_libyaml_parser_is_in_use() -> None:
    assert yamlsource._Parser.__module__ == "yaml._yaml"


def test_billion_laughs_fails_fast(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for k in "bcdefghi":
        lines.append(f"{k}: &{k} [" + ",".join([f"*{chr(ord(k) - 1)}"] * 9) + "]")
    # Refused by counting the aliases' expansion (9^9 nodes if built), not by building it:
    # were the limit gone, this test would exhaust memory rather than pass.
    error = _error(tmp_path, "bomb.yaml", "\n".join(lines))
    assert error.code == "yaml-expansion"


def test_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    error = _error(tmp_path, "big.json", b"{" + b" " * MAX_FILE_BYTES + b"}")
    assert error.code == "file-too-large"


def test_not_utf8_is_located(tmp_path: Path) -> None:
    error = _error(tmp_path, "latin1.json", '{\n  "description": "caf\xe9"\n}'.encode("latin-1"))
    assert (error.code, error.line, error.col) == ("encoding", 2, 22)


@pytest.mark.parametrize(("text", "code", "line", "col"), [
    ("a: 1\nb:\n  c: 2\n  c: 3\n", "duplicate-key", 4, 3),
    ("a: !!python/object:os.system x\n", "yaml-tag", 1, 4),
    ("a: !custom x\n", "yaml-tag", 1, 4),
    ("? [a, b]\n: c\n", "wrong-type", 1, 3),
    ("a: *nowhere\n", "syntax", 1, 4),
])
def test_yaml_refusals(tmp_path: Path, text: str, code: str, line: int, col: int) -> None:
    error = _error(tmp_path, "x.yaml", text)
    assert (error.code, error.line, error.col) == (code, line, col)


def test_yaml_1_2_scalars_and_merge_keys(tmp_path: Path) -> None:
    (data,) = _read(tmp_path, "x.yaml", (
        "base: &b {image: 'img:1', n: 0x1f}\n"
        "spec:\n  <<: *b\n  n: 7\n  branch: on\n  flag: true\n  start: 2024-01-01T00:00:00Z\n"
        "  big: 123456789012345678901234567890\n  none: ~\n"))
    assert data == {"base": {"image": "img:1", "n": 31},
                    "spec": {"image": "img:1", "n": 7, "branch": "on", "flag": True,
                             "start": "2024-01-01T00:00:00Z",
                             "big": 123456789012345678901234567890, "none": None}}


def test_json_forms(tmp_path: Path) -> None:
    assert _read(tmp_path, "a.json", '{"a": 1}\n{"b": 2}') == [{"a": 1}, {"b": 2}]
    assert _read(tmp_path, "b.json", '[{"a": 1}, {"b": 2}]') == [[{"a": 1}, {"b": 2}]]
    assert _read(tmp_path, "c.json", '{"a": 1}\n---\n{"b": 2}\n') == [{"a": 1}, {"b": 2}]
    # A .yaml file whose first character is "{" is read as JSON, as pachctl does, so a tab
    # between tokens (fine in JSON, refused by YAML) is accepted.
    assert _read(tmp_path, "d.yaml", '{\t"a": 1}') == [{"a": 1}]


@pytest.mark.parametrize(("text", "code", "line", "col"), [
    ('{"a": 1, "a": 2}', "duplicate-key", 1, 10),
    ('{\n "a": NaN}', "syntax", 2, 7),
    ('{"a": 1}\n5', "syntax", 2, 1),
    ('{"a": ' + "[" * 80 + "]" * 80 + "}", "too-deep", 1, 1),
])
def test_json_refusals(tmp_path: Path, text: str, code: str, line: int, col: int) -> None:
    error = _error(tmp_path, "x.json", text)
    assert (error.code, error.line, error.col) == (code, line, col)


def test_template_lines_map_back_through_loops_and_blocks() -> None:
    source = "{% set n = 2 %}\nfirst\n{% for i in range(n) %}\nloop {{ i }}\n{% endfor %}\nlast\n"
    rendered = render(source, {}, "t.j2")
    lines = rendered.text.splitlines()
    assert [(line, rendered.template_line(i)) for i, line in enumerate(lines, 1)
            if line.strip()] == [("first", 2), ("loop 0", 4), ("loop 1", 4), ("last", 6)]


@pytest.mark.parametrize(("source", "line", "message"), [
    ("a\n{{ missing }}\n", 2, "'missing' is undefined"),
    ("a\nb\n{% if %}\n", 3, "Expected an expression"),
    ("{{ ''.__class__.__mro__ }}", 1, "unsafe"),
])
def test_template_errors_point_at_the_template(source: str, line: int, message: str) -> None:
    with pytest.raises(LoadError) as info:
        render(source, {}, "t.j2")
    assert info.value.line == line
    assert message in info.value.message


def test_values_merge_and_set_wins(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    first.write_text("image: {name: x, tag: '1'}\nregion: eu\n")
    second = tmp_path / "b.yaml"
    second.write_text("image: {tag: '2'}\n")
    values = template_values(["image.name=y", "extra=a=b"], [first, second])
    assert values == {"image": {"name": "y", "tag": "2"}, "region": "eu", "extra": "a=b"}
    with pytest.raises(TemplateValuesError):
        template_values(["=x"], [])
    bad = tmp_path / "c.yaml"
    bad.write_text("- a\n")
    with pytest.raises(TemplateValuesError):
        template_values([], [bad])


@given(st.text(alphabet="ab\n\r\u2028\t", max_size=40))
def test_line_index_agrees_with_direct_counting(text: str) -> None:
    index = LineIndex.of(text)
    for offset in range(len(text) + 1):
        assert index.position(offset) == LineIndex.position_in(text, offset)
        line, col = index.position(offset)
        assert line == text[:offset].count("\n") + 1
        assert col == len(text[:offset].split("\n")[-1]) + 1
