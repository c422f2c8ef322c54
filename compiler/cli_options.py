"""The click pieces the commands of compiler/cli.py share: `guard`, the one place that turns
errors into a message and an exit code, and the options and argument types several commands
take, said the same way by each."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import reduce
from pathlib import Path
from typing import Any, cast

import click

from compiler.commands.console import Console
from compiler.commands.errors import UsageError, failure_of
from compiler.diagnostics import ExitCode


def guard(func: Callable[..., int]) -> Callable[..., Any]:
    """Run a command core with the process's console and exit with its code, turning what it
    raises into a one-line message and the documented exit code. It gives the command its
    own --traceback, so the flag works after the command's name too."""

    def wrapper(*args: Any, traceback: bool = False, **kwargs: Any) -> None:
        ctx = click.get_current_context()
        traceback = traceback or bool(ctx.find_root().params.get("traceback"))
        try:
            code = func(*args, console=Console.of_process(), **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except UsageError as exc:
            if exc.option is None:
                raise click.UsageError(str(exc)) from None
            raise click.BadParameter(str(exc), param_hint=exc.option) from None
        except KeyboardInterrupt:
            click.echo("dsc: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # The reader went away (`dsc datums ... | head`): stop quietly, as a process killed
            # by SIGPIPE would, and keep Python from complaining while it flushes stdout.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(141)
        except Exception as exc:
            failure = failure_of(exc)
            if traceback:
                raise
            if failure is None:  # a bug in dsc: never a raw traceback unless asked for
                click.echo(f"dsc: internal error: {type(exc).__name__}: {exc} "
                           "(rerun with --traceback and report it)", err=True)
                sys.exit(ExitCode.COULD_NOT_RUN)
            sys.stderr.write(failure.text)
            sys.exit(failure.code)
        sys.exit(code)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return traceback_option(wrapper)


traceback_option = click.option("--traceback", is_flag=True,
                                  help="Show the Python stack of an internal error.")


def options(*decorators: Callable[..., Any]) -> Callable[..., Any]:
    """Several options as one decorator, in the order given."""
    return lambda func: reduce(lambda f, d: d(f), reversed(decorators), func)


template_options = options(
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                 help="A value for Jinja2 templates (.j2, .jinja); dotted keys nest (a.b=c). "
                 "Repeatable; wins over --values."),
    click.option("--values", "values_files", multiple=True, metavar="FILE",
                 type=click.Path(path_type=Path, dir_okay=False),
                 help="A YAML file of template values. Repeatable; later files win."))


class _SpecPaths(click.Path):
    """Spec files and directories. A path that does not exist, or a directory holding no spec
    file, is a usage error (exit 2), said the same way by every command that takes specs."""

    def __init__(self) -> None:
        super().__init__(exists=True, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from compiler.commands.sources import empty_spec_directory

        path = cast(Path, super().convert(value, param, ctx))  # path_type=Path
        problem = empty_spec_directory(path, click.format_filename(value))
        if problem:
            self.fail(problem, param, ctx)
        return path


spec_paths = click.argument("paths", nargs=-1, required=True, metavar="SPECS...",
                            type=_SpecPaths())


class Aliased(click.Option):
    """An option with an older second name (`--data` / `--from-dir`): errors name it as every
    other command names it."""

    def get_error_hint(self, ctx: click.Context | None) -> str:
        return f"'{self.opts[0]}'"


def config_option(help: str = "The dsc configuration [default: ./dsc.yaml when present].",
                   exists: bool = True) -> Callable[..., Any]:
    return click.option("--config", "config_path", metavar="FILE", help=help,
                        type=click.Path(exists=exists, dir_okay=False, path_type=Path))


name_option = click.option(
    "--name", "graph_name", metavar="NAME",
    help="The graph's name [default: the directory given, or the single pipeline].")
lakefs_option = click.option(
    "--lakefs", "use_lakefs", is_flag=True,
    help="A real lakeFS instead (endpoint and keys as for `dsc run --lakefs`).")
reprocess_option = click.option(
    "--reprocess", default="", metavar="SPEC",
    help="Process again what incremental processing would skip: `*` (everything), a pipeline, "
    "or `PIPELINE:DATUM` (a datum ID or its start, as `dsc plan -v` shows it); "
    "comma-separated. The run's `reprocess` parameter.")


trigger_options = options(  # dsc triggers action, dsc triggers install
    spec_paths,
    click.option("--name", "graph_name", metavar="NAME",
                 help="The graph's name, as given to `dsc compile`."),
    config_option(),
    click.option("--namespace", metavar="NS",
                 help="The namespace of the EventSource [config namespace; env DSC_NAMESPACE]."),
    template_options)


commits_from = options(  # dsc provenance, dsc log
    config_option("The dsc configuration, for lakefs.endpoint [default: ./dsc.yaml when "
                  "present]."),
    click.option("--data", "data", metavar="DIR",
                 type=click.Path(exists=True, file_okay=False, path_type=Path),
                 help="Read the commits of a `dsc run --data DIR` instead of lakeFS."))
