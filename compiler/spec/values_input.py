"""Template values from `--set KEY=VALUE` and `--values FILE`, merged in that precedence."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


class TemplateValuesError(Exception):
    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


def template_values(sets: Iterable[str], files: Iterable[Path]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for file in files:
        _merge(values, _read_values(file))
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TemplateValuesError(f"{item!r} is not KEY=VALUE", "--set")
        target = values
        parts = key.strip().split(".")
        for part in parts[:-1]:
            nested = target.get(part)
            if not isinstance(nested, dict):
                nested = target[part] = {}
            target = nested
        target[parts[-1]] = value
    return values


def _read_values(file: Path) -> dict[str, Any]:
    from compiler.spec.source import LoadError
    from compiler.spec.yamlsource import compose_documents

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateValuesError(f"cannot read {file}: {exc}", "--values") from None
    try:
        docs = [value for value, *_ in compose_documents(text)]
    except LoadError as exc:
        raise TemplateValuesError(f"{file}:{exc.line}:{exc.col}: {exc.message}",
                                  "--values") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise TemplateValuesError(f"{file} must hold one YAML mapping of values", "--values")
    result: dict[str, Any] = docs[0]
    return result


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
