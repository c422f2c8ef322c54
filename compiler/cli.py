"""The dsc command line: click options in, core call, exit code out (nothing else here)."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from compiler import __version__
from compiler.diagnostics import ExitCode


class CouldNotRun(Exception):
    """A command that cannot do its job for a reason outside the specs (exit 3)."""


def _fail(exc: BaseException, traceback: bool) -> NoReturn:
    if traceback:
        raise exc
    click.echo(f"dsc: error: {exc}", err=True)
    sys.exit(ExitCode.COULD_NOT_RUN)


def _guard(func: Callable[..., int]) -> Callable[..., None]:
    """The one place that turns exceptions into a one-line message and an exit code."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        ctx = click.get_current_context()
        traceback = bool(ctx.find_root().params.get("traceback"))
        try:
            code = func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except CouldNotRun as exc:
            _fail(exc, traceback)
        except KeyboardInterrupt:
            click.echo("dsc: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug in dsc: never a raw traceback unless asked for
            if traceback:
                raise
            click.echo(f"dsc: internal error: {type(exc).__name__}: {exc} "
                       "(rerun with --traceback and report it)", err=True)
            sys.exit(ExitCode.COULD_NOT_RUN)
        sys.exit(code)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def _template_values(sets: tuple[str, ...], values_files: tuple[Path, ...]) -> dict[str, Any]:
    from compiler.spec.values_input import TemplateValuesError, template_values

    try:
        return template_values(sets, values_files)
    except TemplateValuesError as exc:
        raise click.BadParameter(str(exc), param_hint=exc.option) from None


_template_options = [
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                 help="A value for Jinja2 templates (.j2, .jinja); dotted keys nest (a.b=c). "
                 "Repeatable; wins over --values."),
    click.option("--values", "values_files", multiple=True, metavar="FILE",
                 type=click.Path(path_type=Path, dir_okay=False),
                 help="A YAML file of template values. Repeatable; later files win."),
]


def template_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_template_options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dsc")
@click.option("--traceback", is_flag=True, help="Show the Python stack on internal errors.")
def cli(traceback: bool) -> None:
    """dsc compiles Pachyderm-style pipeline specs into Argo Workflows backed by lakeFS."""


@cli.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "github"]),
              default="text", show_default=True,
              help="text: path:line:col: severity: message [code]; json; github annotations.")
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@click.option("-q", "--quiet", is_flag=True, help="Hide info notes and the summary line.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), envvar="DSC_JOBS",
              help="Processes checking files in parallel [default: one per CPU from 100 files "
              "on; env DSC_JOBS]. The output never depends on it.")
@template_options
@_guard
def lint(paths: tuple[Path, ...], fmt: str, strict: bool, quiet: bool, jobs: int | None,
         sets: tuple[str, ...], values_files: tuple[Path, ...]) -> int:
    """Check pipeline specs (files or directories) against the schema and dsc's rules.

    Exit codes: 0 clean, 1 findings (errors; warnings too with --strict), 2 usage,
    3 could not run.
    """
    from compiler.report import render, summary_line
    from compiler.spec.lint import lint_paths

    values = _template_values(sets, values_files)
    result = lint_paths(paths, values, with_info=not quiet, jobs=jobs)
    out = sys.stdout
    render(result, fmt, out, colour=_colour(out), show_info=not quiet)
    if fmt == "text" and not quiet and result.diagnostics:
        click.echo(summary_line(result), err=True)
    return int(result.exit_code(strict=strict))


@cli.command()
@_guard
def schema() -> int:
    """Print the pipeline spec JSON Schema (draft 2020-12), e.g. for yaml-language-server."""
    from compiler.spec.schema import schema_path

    try:
        text = schema_path("pipeline.schema.json").read_text(encoding="utf-8")
    except OSError as exc:
        raise CouldNotRun(f"the pipeline schema is missing from this installation: {exc}") from None
    click.echo(text, nl=not text.endswith("\n"))
    return int(ExitCode.CLEAN)


def _colour(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def main() -> None:
    try:
        cli(prog_name="dsc")
    finally:
        # On its way out the interpreter runs a full garbage collection over every object
        # still alive (10-15 ms after a large lint): pointless for a process that is ending.
        gc.freeze()
