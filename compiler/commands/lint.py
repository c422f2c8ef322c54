"""`dsc lint`: check specs and report the findings, as text, JSON or GitHub annotations."""

from __future__ import annotations

import os
from pathlib import Path

from compiler.commands.console import Console, colour
from compiler.commands.sources import configuration, template_values


def lint(paths: tuple[Path, ...], *, fmt: str, strict: bool, quiet: bool, jobs: int | None,
         config_path: Path | None, default_branch: str | None, sets: tuple[str, ...],
         values_files: tuple[Path, ...], console: Console) -> int:
    """The findings on stdout (and the summary on stderr); the exit code. `jobs` (the
    deprecated -j) is ignored: files are checked in this process."""
    from compiler.config import CONFIG_FILE, Config
    from compiler.report import render, summary_line
    from compiler.spec.lint import lint_paths

    values = template_values(sets, values_files)
    if (config_path or default_branch or os.environ.get("DSC_DEFAULT_BRANCH")
            or Path(CONFIG_FILE).is_file()):
        config = configuration(config_path, {("default_branch",): default_branch})
    else:
        # Nothing configured: the defaults, without building the config schema's validator
        # (a tenth of a cold lint of one file).
        config = Config()
    del jobs
    result = lint_paths(paths, values, with_info=not quiet, default_branch=config.default_branch)
    render(result, fmt, console.out, colour=colour(console.out), show_info=not quiet)
    if fmt == "text" and not quiet and result.diagnostics:
        console.say(summary_line(result))
    return int(result.exit_code(strict=strict))
