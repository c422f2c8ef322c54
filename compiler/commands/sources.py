"""What a command reads besides its specs: the template values, the configuration, and the
store (a lakeFS, or a data directory) the options name. Each raises the command errors
(compiler.commands.errors) the command line turns into a message and an exit code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.commands.errors import CouldNotRun, UsageError
from compiler.diagnostics import ExitCode

if TYPE_CHECKING:
    from compiler.config import Config
    from compiler.lakefs.client import LakeFS


def template_values(sets: tuple[str, ...], values_files: tuple[Path, ...]) -> Mapping[str, Any]:
    """The values of --set and --values: a usage error (exit 2) when they cannot be read now,
    or, when the specs are loaded, when a template renders one wrongly or none reads one."""
    from compiler.spec.values_input import TemplateValuesError
    from compiler.spec.values_input import template_values as read

    def usage_error(exc: TemplateValuesError) -> UsageError:
        return UsageError(str(exc), exc.option)

    try:
        return read(sets, values_files, refuse=usage_error)
    except TemplateValuesError as exc:
        raise usage_error(exc) from None


def configuration(path: Path | None, flags: Mapping[tuple[str, ...], Any] | None = None
                  ) -> Config:
    """dsc.yaml (or `path`), the DSC_* variables, then the flags given (None: not given).
    A configuration dsc cannot use raises compiler.config.ConfigError, located (exit 2)."""
    from compiler.config import load_config

    return load_config(path, overrides=flags or {})


def lakefs_client(config: Config, context: str = "") -> LakeFS:
    """A lakeFS client from the config's endpoint and the environment's keys; a usage error
    (exit 2) naming the variables that are missing."""
    from compiler.lakefs.client import from_environment

    try:
        return from_environment(os.environ, config.lakefs.endpoint, config.lakefs.timeout)
    except LookupError as exc:
        raise CouldNotRun(f"{context}{exc}", ExitCode.USAGE) from None


def data_root(data: Path | None) -> Path:
    """`--data DIR` (./data when not given): a directory that is not there is a usage error
    (exit 2), said as click says it of a path given."""
    root = data if data is not None else Path("data")
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise UsageError(f"Directory {str(root)!r} {what}."
                         + (" (the default; give --data DIR)" if data is None else ""),
                         "'--data'")
    return root


def exclusive_stores(data: Path | None, use_lakefs: bool) -> None:
    if use_lakefs and data is not None:
        raise UsageError("--data and --lakefs exclude each other")


def empty_spec_directory(path: Path, given: str) -> str | None:
    """Why a directory given as specs (spelt `given`) cannot be one: it holds no spec file."""
    from compiler.spec.loader import discover

    if path.is_dir() and next(discover([path]), None) is None:
        return (f"Directory {given!r} holds no spec files (*.json, *.yaml, *.yml, or "
                ".j2/.jinja templates of them; hidden directories are skipped).")
    return None
