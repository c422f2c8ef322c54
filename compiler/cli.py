"""The dsc command line: click options in, core call, exit code out (nothing else here)."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from compiler import __version__
from compiler.diagnostics import ExitCode
from compiler.store import LakeFSError


class CouldNotRun(Exception):
    """A command that cannot do its job for a reason outside the specs (exit 3, or 75 when
    lakeFS is unavailable and a later attempt may succeed)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.COULD_NOT_RUN) -> None:
        super().__init__(message)
        self.code = code

    @classmethod
    def store(cls, context: str, exc: Any) -> CouldNotRun:
        """A lakeFS (or data directory) failure: the same exit code in every command."""
        return cls(f"{context}{exc}", ExitCode.of_store(exc.transient))


def _fail(exc: CouldNotRun, traceback: bool) -> NoReturn:
    if traceback:
        raise exc
    click.echo(f"dsc: error: {exc}", err=True)
    sys.exit(exc.code)


def _guard(func: Callable[..., int]) -> Callable[..., Any]:
    """The one place that turns exceptions into a one-line message and an exit code. It gives
    the command its own --traceback, so the flag works after the command's name too."""

    def wrapper(*args: Any, traceback: bool = False, **kwargs: Any) -> None:
        ctx = click.get_current_context()
        traceback = traceback or bool(ctx.find_root().params.get("traceback"))
        try:
            code = func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except CouldNotRun as exc:
            _fail(exc, traceback)
        except LakeFSError as exc:  # a store (lakeFS, a data directory) refused or failed
            _fail(CouldNotRun.store("", exc), traceback)
        except KeyboardInterrupt:
            click.echo("dsc: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            # The reader went away (`dsc datums ... | head`): stop quietly, as a process killed
            # by SIGPIPE would, and keep Python from complaining while it flushes stdout.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(141)
        except Exception as exc:  # a bug in dsc: never a raw traceback unless asked for
            if traceback:
                raise
            click.echo(f"dsc: internal error: {type(exc).__name__}: {exc} "
                       "(rerun with --traceback and report it)", err=True)
            sys.exit(ExitCode.COULD_NOT_RUN)
        sys.exit(code)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return _traceback_option(wrapper)


_traceback_option = click.option("--traceback", is_flag=True,
                                  help="Show the Python stack of an internal error.")


def _template_values(sets: tuple[str, ...],
                     values_files: tuple[Path, ...]) -> Mapping[str, Any]:
    """The values, which raise a usage error (exit 2) when they cannot be read now, or when
    the specs are loaded and a template renders one wrongly or none reads one (in whichever
    command loads them)."""
    from compiler.spec.values_input import TemplateValuesError, template_values

    def usage_error(exc: TemplateValuesError) -> click.BadParameter:
        return click.BadParameter(str(exc), param_hint=exc.option)

    try:
        return template_values(sets, values_files, refuse=usage_error)
    except TemplateValuesError as exc:
        raise usage_error(exc) from None


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


class _SpecPaths(click.Path):
    """Spec files and directories. A path that does not exist, or a directory holding no spec
    file, is a usage error (exit 2), said the same way by every command that takes specs."""

    def __init__(self) -> None:
        super().__init__(exists=True, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        if isinstance(path, Path) and path.is_dir():
            from compiler.spec.loader import discover

            if next(discover([path]), None) is None:
                self.fail(f"Directory {click.format_filename(value)!r} holds no spec files "
                          "(*.json, *.yaml, *.yml, or .j2/.jinja templates of them; hidden "
                          "directories are skipped).", param, ctx)
        return path


def spec_paths(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("paths", nargs=-1, required=True, metavar="SPECS...",
                          type=_SpecPaths())(func)


class _Aliased(click.Option):
    """An option with an older second name (`--data` / `--from-dir`): errors name it as every
    other command names it."""

    def get_error_hint(self, ctx: click.Context | None) -> str:
        return f"'{self.opts[0]}'"


def _data_root(data: Path | None) -> Path:
    """`--data DIR` (./data when not given): a directory that is not there is a usage error
    (exit 2), said as click says it of a path given."""
    root = data if data is not None else Path("data")
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise click.BadParameter(f"Directory {click.format_filename(str(root))!r} {what}."
                                 + (" (the default; give --data DIR)" if data is None else ""),
                                 param_hint="'--data'")
    return root


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dsc")
@_traceback_option
def cli(traceback: bool) -> None:
    """dsc compiles Pachyderm-style pipeline specs into Argo Workflows backed by lakeFS.

    Each command's --help lists its exit codes; the same condition has the same code in
    every command. Every command also exits 130 when interrupted (Ctrl-C) and 141 when the
    reader of its output goes away (`dsc datums ... | head`).
    """


@cli.command()
@spec_paths
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json", "github"]),
              default="text", show_default=True,
              help="text: path:line:col: severity: message [code]; json; github annotations.")
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@click.option("-q", "--quiet", is_flag=True, help="Hide info notes and the summary line.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), envvar="DSC_JOBS",
              help="Processes checking files in parallel [default: one per CPU from 100 files "
              "on; env DSC_JOBS]. The output never depends on it.")
@click.option("--config", "config_path", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The dsc configuration, for default_branch [default: ./dsc.yaml when "
              "present].")
@click.option("--default-branch", metavar="BRANCH",
              help="The lakeFS branch of inputs and outputs that name none, as `dsc compile` "
              "takes it [config default_branch, default main; env DSC_DEFAULT_BRANCH].")
@template_options
@_guard
def lint(paths: tuple[Path, ...], fmt: str, strict: bool, quiet: bool, jobs: int | None,
         config_path: Path | None, default_branch: str | None, sets: tuple[str, ...],
         values_files: tuple[Path, ...]) -> int:
    """Check pipeline specs (files or directories) against the schema and dsc's rules.

    The specs of each directory are one graph: the checks across specs (duplicate names,
    cycles, inputs on a branch the upstream pipeline does not write) stay within it.

    Exit codes: 0 clean, 1 findings (errors; warnings too with --strict), 2 usage,
    3 could not run (a file cannot be read).
    """
    from compiler.config import CONFIG_FILE, Config
    from compiler.report import render, summary_line
    from compiler.spec.lint import lint_paths

    values = _template_values(sets, values_files)
    if (config_path or default_branch or os.environ.get("DSC_DEFAULT_BRANCH")
            or Path(CONFIG_FILE).is_file()):
        config = _config(config_path, {("default_branch",): default_branch})
        if config is None:
            return int(ExitCode.USAGE)
    else:
        # Nothing configured: the defaults, without building the config schema's validator
        # (a tenth of a cold lint of one file).
        config = Config()
    result = lint_paths(paths, values, with_info=not quiet, jobs=jobs,
                        default_branch=config.default_branch)
    out = sys.stdout
    render(result, fmt, out, colour=_colour(out), show_info=not quiet)
    if fmt == "text" and not quiet and result.diagnostics:
        click.echo(summary_line(result), err=True)
    return int(result.exit_code(strict=strict))


@cli.command()
@spec_paths
@click.option("--pipeline", "pipeline", metavar="NAME",
              help="The pipeline to preview when the specs define several.")
@click.option("--data", "--from-dir", "from_dir", metavar="DIR", cls=_Aliased,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Read each repo's files from DIR/<repo>/, the data directory of `dsc run "
              "--data DIR` (--from-dir is the same option).")
@click.option("--listing", "listing_file", metavar="FILE",
              type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help='Read the paths from a JSON file {"repo": ["/path", ...]} (- for stdin).')
@click.option("--lakefs", "from_lakefs", is_flag=True,
              help="Read each repo from lakeFS, at the head of the input's branch (endpoint "
              "and keys as for `compile --pin`).")
@click.option("--config", "config_path", metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="dsc.yaml (with --lakefs: endpoint, default branch, repo mapping).")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json"]),
              help="table (the default on a terminal): number, short ID, name:path per input; "
              'json (the default otherwise): [{"id", "inputs": [{"name", "repo", "path"}]}].')
@click.option("--count", "count_only", is_flag=True, help="Print only the number of datums.")
@click.option("--dialect", type=click.Choice(["1.x", "2.x"]),
              help="Spell directory matches as Pachyderm 1.x (/dir) or 2.x (/dir/) does "
              "[default: the spec's dialect].")
@template_options
@_guard
def datums(paths: tuple[Path, ...], pipeline: str | None, from_dir: Path | None,
           listing_file: Path | None, from_lakefs: bool, config_path: Path | None,
           fmt: str | None, count_only: bool, dialect: str | None,
           sets: tuple[str, ...], values_files: tuple[Path, ...]) -> int:
    """Preview the datums of one pipeline: which paths each pod would see.

    The data comes from a directory (--data DIR: DIR/<repo>/... are the files), a
    listing file (--listing FILE) or a live lakeFS (--lakefs). A repo missing from any of
    them is read as empty, with a warning. The spec is checked as `dsc lint` checks it;
    features dsc compile refuses but whose datums Pachyderm defines (s3 inputs, triggers)
    are previewed with a warning.

    Exit codes: 0 datums shown, 1 the spec has errors, 2 usage, 3 could not run (a file or
    the data cannot be read, lakeFS refused), 75 lakeFS unavailable (try again later).
    """
    from compiler.preview import (
        DataDir,
        LakeFSData,
        ListingError,
        SelectionError,
        preview_datums,
        read_listing,
    )
    from compiler.report import render, render_datums, summary_line

    if sum((from_dir is not None, listing_file is not None, from_lakefs)) != 1:
        raise click.UsageError("give the data as exactly one of --data DIR, --listing FILE or "
                               "--lakefs")
    values = _template_values(sets, values_files)
    source: DataDir | LakeFSData | dict[str, list[str]]
    if from_lakefs:
        config = _config(config_path, {})
        client = None if config is None else _lakefs_client(config, "--lakefs: ")
        if client is None:
            return int(ExitCode.USAGE)
        source = LakeFSData(client, config.lakefs_repo, config.default_branch)
    elif listing_file is not None:
        try:
            source = read_listing(listing_file)
        except ListingError as exc:
            raise click.BadParameter(str(exc), param_hint="--listing") from None
        except OSError as exc:
            raise CouldNotRun(f"cannot read the listing: {exc}") from None
    else:
        assert from_dir is not None
        source = DataDir(from_dir)
    from compiler.store import LakeFSError

    try:
        preview = preview_datums(paths, source, pipeline=pipeline, dialect=dialect,
                                 values=values)
    except LakeFSError as exc:
        raise CouldNotRun.store("--lakefs: ", exc) from None
    except SelectionError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise CouldNotRun(f"cannot read the data directory: {exc}") from None
    result = preview.result
    if result.diagnostics:
        render(result, "text", sys.stderr, colour=_colour(sys.stderr), show_info=False)
    code = result.exit_code()
    if code or preview.pipeline is None:
        if result.diagnostics:
            click.echo(summary_line(result), err=True)
        return int(code)
    if isinstance(source, LakeFSData):
        for repo, name, branch, commit in source.read:
            click.echo(f"dsc: repo `{repo}`: lakeFS {name}@{branch} at {commit}", err=True)
    for repo in preview.empty_repos:
        where = (f"{from_dir}/{repo}/" if from_dir is not None else f"{listing_file}"
                 if listing_file is not None else "lakeFS (no such repository or branch)")
        click.echo(f"dsc: warning: repo `{repo}` is not in {where}; read as an empty repo",
                   err=True)
    if count_only:
        click.echo(sum(1 for _ in preview.datums))
        return int(ExitCode.CLEAN)
    fmt = fmt or ("table" if _isatty(sys.stdout) else "json")
    shown = render_datums(preview.datums, fmt, sys.stdout, dialect=preview.dialect)
    if fmt == "table":
        click.echo(f"{shown} datum{'' if shown == 1 else 's'} for pipeline "
                   f"`{preview.pipeline.name}`", err=True)
    return int(ExitCode.CLEAN)


@cli.command()
@spec_paths
@click.option("--name", "graph_name", metavar="NAME",
              help="The graph's name [default: the directory given, or the single pipeline].")
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True, help="yaml: documents separated by ---; json: a kind: List.")
@click.option("--output-dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Write one file per object into DIR instead of stdout, and remove the files "
              "an earlier compile wrote there that this one does not (listed in "
              "DIR/.dsc-compile; never a file dsc did not write).")
@click.option("--generate-name", is_flag=True,
              help="Give the run Workflow a generateName (for kubectl create) instead of a "
              "name derived from the compiled template.")
@click.option("--config", "config_path", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The dsc configuration [default: ./dsc.yaml when present].")
@click.option("--pin", is_flag=True,
              help="Resolve the source inputs against lakeFS now: pin their commits and the "
              "plans of the pipelines that read only them (count and digest, which `open` "
              "checks) in a self-contained run. Needs LAKEFS_ENDPOINT (or lakefs.endpoint), "
              "LAKEFS_ACCESS_KEY_ID and LAKEFS_SECRET_ACCESS_KEY.")
@click.option("--trigger", is_flag=True,
              help="Also re-run the graph on every new commit to its source inputs: the "
              "webhook EventSource, a Sensor and a reconciler CronWorkflow (Argo Events; "
              "install the lakeFS actions with `dsc triggers install`).")
@click.option("--runtime-image", metavar="IMAGE",
              help="The dsc image the runtime steps run in [config runtime_image; env "
              "DSC_RUNTIME_IMAGE].")
@click.option("--lakefs-secret", metavar="NAME",
              help="The Kubernetes Secret holding the lakeFS credentials [config "
              "lakefs.secret, default dsc-lakefs; env DSC_LAKEFS_SECRET].")
@click.option("--default-branch", metavar="BRANCH",
              help="The lakeFS branch of inputs and outputs that name none [config "
              "default_branch, default main; env DSC_DEFAULT_BRANCH].")
@click.option("--namespace", metavar="NS",
              help="metadata.namespace of every object [config namespace; env DSC_NAMESPACE].")
@click.option("--reprocess", default="", metavar="SPEC",
              help="Process again what incremental processing would skip: `*` (everything), "
              "a pipeline, or `PIPELINE:DATUM` (a datum ID or its start, as `dsc plan -v` "
              "shows it); comma-separated. The run's `reprocess` parameter.")
@template_options
@_guard
def compile(paths: tuple[Path, ...], graph_name: str | None, fmt: str,
            output_dir: Path | None, generate_name: bool, config_path: Path | None,
            pin: bool, trigger: bool, runtime_image: str | None, lakefs_secret: str | None,
            default_branch: str | None, namespace: str | None, reprocess: str,
            sets: tuple[str, ...], values_files: tuple[Path, ...]) -> int:
    """Compile pipeline specs into Argo Workflows manifests for `kubectl apply -f -`: a
    WorkflowTemplate for the graph (split into parts past Argo's 200-template limit) and a
    Workflow that runs it now, or a CronWorkflow per cron input.

    Only manifests go to stdout; diagnostics go to stderr. The specs are checked as
    `dsc lint` checks them, and an error stops the compilation (exit 1).

    Exit codes: 0 compiled, 1 the specs have errors, 2 usage, 3 could not run (a file cannot
    be read or written; with --pin, lakeFS refused), 75 lakeFS unavailable (--pin; try again
    later).
    """
    from compiler.compile import CompileRequest, compile_specs
    from compiler.report import render, summary_line

    if pin and trigger:
        raise click.UsageError("--pin fixes a run's inputs and --trigger runs the graph on "
                               "every new commit; use one of them")
    values = _template_values(sets, values_files)
    config = _config(config_path, {("runtime_image",): runtime_image,
                                   ("lakefs", "secret"): lakefs_secret,
                                   ("default_branch",): default_branch,
                                   ("namespace",): namespace})
    if config is None:
        return int(ExitCode.USAGE)
    request = CompileRequest(paths=paths, values=values, name=graph_name,
                             generate_name=generate_name, config=config, pin=pin,
                             trigger=trigger, reprocess=reprocess)
    resolver = None
    if pin:
        from compiler.store import LakeFSError

        resolver = _lakefs_client(config, "--pin: ")
        if resolver is None:
            return int(ExitCode.USAGE)
        try:
            compiled = compile_specs(request, resolver)
        except LakeFSError as exc:
            raise CouldNotRun.store("--pin: ", exc) from None
    else:
        compiled = compile_specs(request)
    result = compiled.result
    if result.diagnostics:
        render(result, "text", sys.stderr, colour=_colour(sys.stderr), show_info=False)
    if compiled.documents is None:
        click.echo(summary_line(result), err=True)
        return _compile_failed(result)
    if output_dir is None:
        sys.stdout.write(compiled.text(fmt))
        return int(ExitCode.CLEAN)
    from compiler.output_dir import write_files

    try:
        done = write_files(output_dir, compiled.files(fmt))
    except OSError as exc:
        raise CouldNotRun(f"cannot write the manifests: {exc}") from None
    click.echo(f"wrote {len(done.written)} files to {output_dir}", err=True)
    if done.removed:
        click.echo(f"removed {len(done.removed)} file{'' if len(done.removed) == 1 else 's'} "
                   f"an earlier compile wrote there: {', '.join(done.removed)}", err=True)
    for name in done.kept:
        click.echo(f"dsc: warning: {output_dir / name}: an earlier compile wrote it and it has "
                   "changed since, so it stays; remove it before `kubectl apply -f "
                   f"{output_dir}`", err=True)
    return int(ExitCode.CLEAN)


@cli.command("run")
@spec_paths
@click.option("--data", "data", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Read and write repos in DIR, one directory per repo: inputs are the "
              "files in DIR/<repo>/, each pipeline's output lands in DIR/<pipeline>/ with its "
              "provenance in DIR/<pipeline>/.dsc/ [the default: ./data].")
@click.option("--lakefs", "use_lakefs", is_flag=True,
              help="Read and write a real lakeFS instead (lakefs.endpoint or LAKEFS_ENDPOINT, "
              "LAKEFS_ACCESS_KEY_ID, LAKEFS_SECRET_ACCESS_KEY), as the cluster would.")
@click.option("--runner", type=click.Choice(["host", "docker"]), default="host",
              show_default=True,
              help="host: each datum's command runs here, in a private mount namespace with "
              "the datum at /pfs and its own /tmp, from the current directory; docker: in the "
              "spec's image.")
@click.option("-j", "--parallelism", type=click.IntRange(min=1), metavar="N",
              help="Pods running at once [default: one per CPU]; a spec's parallelism_spec "
              "still caps its own datums.")
@click.option("--secrets", metavar="DIR", type=click.Path(exists=True, file_okay=False,
                                                          path_type=Path),
              help="Kubernetes Secrets for user containers, as files DIR/<secret>/<key>.")
@click.option("--name", "graph_name", metavar="NAME",
              help="The graph's name [default: the directory given, or the single pipeline].")
@click.option("--config", "config_path", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The dsc configuration [default: ./dsc.yaml when present].")
@click.option("-v", "--verbose", is_flag=True,
              help="Each worker's progress as it goes, and the log of every retried step.")
@click.option("--keep-scratch", is_flag=True,
              help="Keep every pod's scratch directory (what it staged, wrote and logged), "
              "for debugging; by default a failed run keeps only the pods' logs.")
@click.option("--reprocess", default="", metavar="SPEC",
              help="Process again what incremental processing would skip: `*` (everything), "
              "a pipeline, or `PIPELINE:DATUM` (a datum ID or its start, as `dsc plan -v` "
              "shows it); comma-separated. The run's `reprocess` parameter.")
@template_options
@_guard
def run(paths: tuple[Path, ...], data: Path | None, use_lakefs: bool, runner: str,
        parallelism: int | None, secrets: Path | None, graph_name: str | None,
        config_path: Path | None, verbose: bool, keep_scratch: bool, reprocess: str,
        sets: tuple[str, ...], values_files: tuple[Path, ...]) -> int:
    """Compile the specs and run the Workflow here, as Argo would run it on the cluster:
    the same steps, the same datums, the same commits with provenance.

    Ctrl-C, SIGTERM and SIGHUP stop the running datums and leave no partial output.

    Exit codes: 0 every pipeline committed, 1 the specs have errors or a datum or step failed
    (the output branches stay as they were; the failure is named), 2 usage, 3 could not run
    (a runner or input directory this machine lacks, a construct dsc run does not support,
    lakeFS refused), 75 lakeFS unavailable (try again later), 128+N stopped by signal N (130
    Ctrl-C, 143 SIGTERM, 129 SIGHUP).
    """
    from compiler.compile import CompileRequest, compile_specs
    from compiler.local.progress import Progress, jobs_of
    from compiler.local.runners import DockerRunner, HostRunner, RunnerError
    from compiler.local.session import (
        branch_outcomes,
        default_parallelism,
        directory_store,
        execute,
        in_process_runtime,
        missing_sources,
        output_heads,
        preflight,
        runtime_environment,
        where_data,
        where_lakefs,
    )
    from compiler.local.workflow import Unsupported, load_program
    from compiler.report import render, summary_line

    if use_lakefs and data is not None:
        raise click.UsageError("--data and --lakefs exclude each other")
    values = _template_values(sets, values_files)
    config = _config(config_path, {})
    if config is None:
        return int(ExitCode.USAGE)
    compiled = compile_specs(CompileRequest(paths=paths, values=values, name=graph_name,
                                            config=config, reprocess=reprocess))
    if compiled.result.diagnostics:
        render(compiled.result, "text", sys.stderr, colour=_colour(sys.stderr),
               show_info=False)
    if compiled.documents is None:
        click.echo(summary_line(compiled.result), err=True)
        return _compile_failed(compiled.result)
    try:
        program = load_program(compiled.documents)
    except Unsupported as exc:
        raise CouldNotRun(f"the compiled Workflow: {exc}") from None

    def say(line: str) -> None:
        click.echo(line, err=True)

    where: Callable[[str, str, str], str]
    if use_lakefs:
        store = _lakefs_client(config, "--lakefs: ")
        if store is None:
            return int(ExitCode.USAGE)
        from compiler.store import LakeFSError

        try:
            preflight(store, program, config.lakefs.storage_namespace)
        except LakeFSError as exc:
            raise CouldNotRun.store(f"--lakefs {store.endpoint}: ", exc) from None
        where = where_lakefs(config.lakefs.ui_url)
        place = f"lakeFS at {store.endpoint}"
    else:
        root = _data_root(data)
        store = directory_store(root, program)
        missing = missing_sources(store, program)
        if missing:
            raise CouldNotRun(f"--data {root}: no directory for the input "
                              + "; ".join(missing) + " (one directory per input repo)")
        where = where_data(store)
        place = f"data in {root}"
    runtime_env = runtime_environment(runner, data_directory=not use_lakefs)
    try:
        user = HostRunner(Path.cwd(), log=say) if runner == "host" else \
            DockerRunner(secrets)
    except RunnerError as exc:
        raise CouldNotRun(str(exc)) from None
    progress = Progress(jobs_of(program), sys.stderr, tty=_isatty(sys.stderr),
                        verbose=verbose)
    jobs = parallelism or default_parallelism()
    count = len(progress.states)
    say(f"dsc run: {program.name}, {count} pipeline{'' if count == 1 else 's'}, {runner} "
        f"runner, {place}, {jobs} pods at once")
    before = output_heads(store, program)
    stop: list[Any] = []
    stopped: list[int] = []

    def wait(finished: Any) -> bool:
        while not finished.is_set():
            try:
                finished.wait(0.2)
            except KeyboardInterrupt as exc:
                if stopped:
                    raise
                signum = getattr(exc, "signum", signal.SIGINT)
                stopped.append(signum)
                say(f"dsc run: {signal.Signals(signum).name}: stopping the running datums and "
                    "removing the job branches ("
                    + ("Ctrl-C" if signum == signal.SIGINT else "the signal")
                    + " again to quit at once)")
                executor, pods = stop[0]
                executor.cancel.set()
                pods.stop_all()
        return bool(stopped)

    with _stop_signals():
        result = execute(program, in_process_runtime(store), user, progress=progress,
                         parallelism=jobs, runtime_env=runtime_env, secrets=secrets,
                         scratch=None, on_start=lambda e, p: stop.append((e, p)), wait=wait,
                         keep_scratch=keep_scratch)
    outcomes = branch_outcomes(store, program, before, result.uid, where)
    say("")
    say(progress.summary(lambda state: outcomes.get(state.name, "?")).rstrip("\n"))
    if result.interrupted:
        name = signal.Signals(stopped[0]).name if stopped else "interrupted"
        say(f"dsc run: {result.name} stopped by {name}; pod logs in {result.scratch}")
        return 128 + (stopped[0] if stopped else signal.SIGINT)
    if result.outcome.phase != "Succeeded":
        failures = progress.failures()
        say(f"dsc run: pod logs in {result.scratch}")
        say(f"dsc run: {result.name} failed: "
            + ("; ".join(failures[:5]) if failures else result.outcome.message))
        # A step that failed on lakeFS exits as every command does for that condition.
        lakefs = [c for c in progress.step_exit_codes
                  if c in (ExitCode.COULD_NOT_RUN, ExitCode.UNAVAILABLE)]
        return lakefs[-1] if lakefs else int(ExitCode.FINDINGS)
    say(f"dsc run: {result.name} succeeded")
    return int(ExitCode.CLEAN)


def _compile_failed(result: Any) -> int:
    """1 for findings in the specs; 2 when what was wrong is a --reprocess option."""
    from compiler.compile import REPROCESS_CODE

    if any(d.code == REPROCESS_CODE for d in result.diagnostics):
        return int(ExitCode.USAGE)
    return int(ExitCode.FINDINGS)


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (`timeout`, a cancelled CI job, a closed SSH session): stopped as
    Ctrl-C stops a run."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _stop_signals() -> Iterator[None]:
    def stop(signum: int, _frame: Any) -> None:
        raise _Stopped(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@cli.command("plan")
@spec_paths
@click.option("--data", "data", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="The data directory a `dsc run --data DIR` would use [the default: ./data].")
@click.option("--lakefs", "use_lakefs", is_flag=True,
              help="A real lakeFS instead (endpoint and keys as for `dsc run --lakefs`).")
@click.option("-v", "--verbose", is_flag=True,
              help="A line per datum: + processed (and why), = skipped, - its outputs deleted.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text, or JSON ({\"pipelines\": [...]}).")
@click.option("--reprocess", default="", metavar="SPEC",
              help="As for `dsc run --reprocess`: what the run would process again.")
@click.option("--name", "graph_name", metavar="NAME", help="The graph's name.")
@click.option("--config", "config_path", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The dsc configuration [default: ./dsc.yaml when present].")
@template_options
@_guard
def plan_command(paths: tuple[Path, ...], data: Path | None, use_lakefs: bool, verbose: bool,
                 fmt: str, reprocess: str, graph_name: str | None, config_path: Path | None,
                 sets: tuple[str, ...], values_files: tuple[Path, ...]) -> int:
    """Say what a run of the graph would do, before it runs: per pipeline, how many datums
    it would process (and why: new, input changed, code changed, failed before, forced),
    skip, and delete the outputs of, or that it has nothing to do. Writes nothing.

    A pipeline downstream of one that will commit reads outputs not written yet: its counts
    are estimates (marked), from the upstream job's plan.

    Exit codes: 0 planned, 1 the specs have errors, 2 usage, 3 could not run (lakeFS
    refused), 75 lakeFS unavailable.
    """
    from compiler.argo.build import CompileError, check_reprocess
    from compiler.commands.plan import job_documents, plan_graph, render
    from compiler.compile import CompileRequest, load_graph
    from compiler.report import render as render_diagnostics
    from compiler.report import summary_line

    if use_lakefs and data is not None:
        raise click.UsageError("--data and --lakefs exclude each other")
    values = _template_values(sets, values_files)
    config = _config(config_path, {})
    if config is None:
        return int(ExitCode.USAGE)
    result, graph = load_graph(CompileRequest(paths=paths, values=values, name=graph_name,
                                              config=config))
    if result.diagnostics:
        render_diagnostics(result, "text", sys.stderr, colour=_colour(sys.stderr),
                           show_info=False)
    if graph is None:
        click.echo(summary_line(result), err=True)
        return int(ExitCode.FINDINGS)
    try:
        check_reprocess(graph, reprocess)
    except CompileError as exc:
        raise click.BadParameter(str(exc), param_hint="--reprocess") from None
    jobs = job_documents(graph, config)
    store: Any
    if use_lakefs:
        store = _lakefs_client(config, "--lakefs: ")
        if store is None:
            return int(ExitCode.USAGE)
    else:
        from compiler.store.directory import DirectoryStore

        root = _data_root(data)
        names = {job.output_repo: job.pipeline for job in jobs}
        for job in jobs:
            for leaf in job.leaves:
                names.setdefault(leaf.lakefs_repo, leaf.repo)
        store = DirectoryStore(root, names)
    plans = plan_graph(jobs, store, reprocess)
    if fmt == "json":
        click.echo(json.dumps({"pipelines": [p.as_json(verbose) for p in plans]}, indent=1))
    else:
        sys.stdout.write(render(plans, verbose))
    return int(ExitCode.CLEAN)


@cli.command("gc")
@spec_paths
@click.option("--data", "data", metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The data directory of `dsc run --data DIR` [the default: ./data].")
@click.option("--lakefs", "use_lakefs", is_flag=True,
              help="A real lakeFS (endpoint and keys as for `dsc run --lakefs`).")
@click.option("--older-than", "older_than", metavar="DURATION",
              help="Also remove job branches opened longer ago than this (a Go duration: "
              "24h, 90m; 0 for all) whose run cannot be seen from here: a cluster run, or a "
              "`dsc run` on another machine.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("--name", "graph_name", metavar="NAME", help="The graph's name.")
@click.option("--config", "config_path", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The dsc configuration [default: ./dsc.yaml when present].")
@template_options
@_guard
def gc_command(paths: tuple[Path, ...], data: Path | None, use_lakefs: bool,
               older_than: str | None, dry_run: bool, graph_name: str | None,
               config_path: Path | None, sets: tuple[str, ...],
               values_files: tuple[Path, ...]) -> int:
    """Remove the job branches that runs of the graph left behind.

    A job branch (dsc-<pipeline>-<run>) normally goes when its job commits or its run's exit
    handler runs. One is left when a run was killed (kill -9 of `dsc run`, a deleted
    Workflow) or its exit handler failed. dsc removes one only when it knows the run no
    longer needs it: its commit landed, it is past its job_timeout, or the `dsc run` on this
    machine that opened it is gone; --older-than extends that to runs it cannot see.

    Exit codes: 0 done, 1 the specs have errors, 2 usage, 3 could not run (lakeFS or the
    data directory refused), 75 lakeFS unavailable (try again later).
    """
    from compiler.compile import CompileRequest, load_graph
    from compiler.report import render, summary_line
    from compiler.runtime.gc import collect
    from compiler.spec.values import parse_duration
    from compiler.store import LakeFSError

    if use_lakefs and data is not None:
        raise click.UsageError("--data and --lakefs exclude each other")
    age = None
    if older_than is not None:
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--older-than") from None
    values = _template_values(sets, values_files)
    config = _config(config_path, {})
    if config is None:
        return int(ExitCode.USAGE)
    result, graph = load_graph(CompileRequest(paths=paths, values=values, name=graph_name,
                                              config=config))
    if result.diagnostics:
        render(result, "text", sys.stderr, colour=_colour(sys.stderr), show_info=False)
    if graph is None:
        click.echo(summary_line(result), err=True)
        return int(ExitCode.FINDINGS)
    store: Any
    if use_lakefs:
        store = _lakefs_client(config, "--lakefs: ")
        if store is None:
            return int(ExitCode.USAGE)
    else:
        from compiler.store.directory import DirectoryStore

        root = _data_root(data)
        store = DirectoryStore(root)
    repos = sorted({config.lakefs_repo(p.name) for p in graph.pipelines})
    try:
        done = collect(store, repos, older_than=age, dry_run=dry_run,
                       log=lambda line: click.echo(line))
    except LakeFSError as exc:
        raise CouldNotRun.store("gc: ", exc) from None
    removable = sum(1 for b in done.found if b.removable)
    click.echo(f"dsc gc: {len(done.found)} job branches in {len(repos)} repositories: "
               f"{'would remove' if dry_run else 'removed'} {removable}, kept "
               f"{len(done.found) - removable}", err=True)
    return int(ExitCode.CLEAN)


@cli.command()
@click.option("--config", "config_schema", is_flag=True,
              help="Print the schema of dsc.yaml instead.")
@_guard
def schema(config_schema: bool) -> int:
    """Print the pipeline spec JSON Schema (draft 2020-12), e.g. for yaml-language-server.

    Exit codes: 0 printed, 2 usage, 3 the schema is missing from this installation.
    """
    from compiler.spec.schema import schema_path

    name = "config.schema.json" if config_schema else "pipeline.schema.json"
    try:
        text = schema_path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise CouldNotRun(f"the schema {name} is missing from this installation: {exc}") from None
    click.echo(text, nl=not text.endswith("\n"))
    return int(ExitCode.CLEAN)


@cli.group()
def triggers() -> None:
    """Re-run a graph on new commits: the lakeFS action files that post them to Argo Events.

    Compile the graph with `dsc compile --trigger` (its Sensor and reconciler), then install
    the action file in each source repository with `dsc triggers install`.
    """


def _trigger_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed((
            spec_paths,
            click.option("--name", "graph_name", metavar="NAME",
                         help="The graph's name, as given to `dsc compile`."),
            click.option("--config", "config_path", metavar="FILE",
                         type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help="The dsc configuration [default: ./dsc.yaml when present]."),
            click.option("--namespace", metavar="NS",
                         help="The namespace of the EventSource [config namespace; env "
                         "DSC_NAMESPACE]."),
            template_options)):
        func = option(func)
    return func


@dataclass(frozen=True, slots=True)
class _ActionFile:
    repo: str
    branches: tuple[str, ...]
    path: str
    text: str


def _action_files(paths: tuple[Path, ...], graph_name: str | None, config_path: Path | None,
                  namespace: str | None, sets: tuple[str, ...],
                  values_files: tuple[Path, ...]) -> tuple[Any, str, list[_ActionFile]] | int:
    """The config, the graph's name and its action file per source repository, or an exit
    code after saying why not."""
    from compiler.argo.names import OBJECT_MAX, fit
    from compiler.argo.triggers import action_file, action_path, sources
    from compiler.compile import CompileRequest, load_graph
    from compiler.report import render, summary_line

    values = _template_values(sets, values_files)
    config = _config(config_path, {("namespace",): namespace})
    if config is None:
        return int(ExitCode.USAGE)
    result, graph = load_graph(CompileRequest(paths=paths, values=values, name=graph_name,
                                              config=config))
    if result.diagnostics:
        render(result, "text", sys.stderr, colour=_colour(sys.stderr), show_info=False)
    if graph is None:
        click.echo(summary_line(result), err=True)
        return int(ExitCode.FINDINGS)
    template = fit(graph.name, OBJECT_MAX)
    by_repo: dict[str, list[str]] = {}
    for source in sources(graph, config):
        by_repo.setdefault(source.repo, []).append(source.branch)
    if not by_repo:
        raise CouldNotRun(f"graph `{graph.name}` reads no lakeFS branch it does not write: "
                          "there is nothing to trigger on")
    try:
        files = [_ActionFile(repo, tuple(branches), action_path(template),
                             action_file(template, branches, config))
                 for repo, branches in by_repo.items()]
    except ValueError as exc:  # no URL for the EventSource: a setting is missing
        click.echo(f"dsc: error: {exc}", err=True)
        return int(ExitCode.USAGE)
    return config, template, files


@triggers.command("action")
@_trigger_options
@click.option("--output-dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Write DIR/<repository>/_lakefs_actions/dsc-<graph>.yaml instead of "
              "printing them.")
@_guard
def triggers_action(paths: tuple[Path, ...], graph_name: str | None, config_path: Path | None,
                    namespace: str | None, sets: tuple[str, ...],
                    values_files: tuple[Path, ...], output_dir: Path | None) -> int:
    """Print the lakeFS action file of each source repository of the graph.

    Each posts post-commit, post-merge, post-revert and post-cherry-pick events of the
    branches the graph reads (config `triggers.events`) to the dsc-lakefs EventSource, with
    the bearer token from the lakeFS server's LAKEFSACTION_DSC_ARGO_EVENTS_TOKEN (config
    `triggers.token_env`).

    Exit codes: 0 printed or written, 1 the specs have errors, 2 usage (or a setting the
    EventSource's URL needs is missing), 3 could not run (the graph reads no source branch, a
    file cannot be written).
    """
    found = _action_files(paths, graph_name, config_path, namespace, sets, values_files)
    if isinstance(found, int):
        return found
    _, _, files = found
    if output_dir is None:
        for i, f in enumerate(files):
            where = ", ".join(f"lakefs://{f.repo}/{b}/{f.path}" for b in f.branches)
            sys.stdout.write(("---\n" if i else "") + f"# {where}\n" + f.text)
        return int(ExitCode.CLEAN)
    try:
        for f in files:
            target = output_dir / f.repo / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.text, encoding="utf-8")
    except OSError as exc:
        raise CouldNotRun(f"cannot write the action files: {exc}") from None
    click.echo(f"wrote {len(files)} action files to {output_dir}", err=True)
    return int(ExitCode.CLEAN)


@triggers.command("install")
@_trigger_options
@_guard
def triggers_install(paths: tuple[Path, ...], graph_name: str | None,
                     config_path: Path | None, namespace: str | None, sets: tuple[str, ...],
                     values_files: tuple[Path, ...]) -> int:
    """Commit the action file to every branch the graph reads, through the lakeFS API.

    A branch that already has the same file gets no commit, so running it again is safe.
    Needs LAKEFS_ENDPOINT (or lakefs.endpoint), LAKEFS_ACCESS_KEY_ID and
    LAKEFS_SECRET_ACCESS_KEY, with write access to those branches.

    Exit codes: 0 installed or unchanged, 1 the specs have errors, 2 usage (or a setting is
    missing), 3 could not run (the graph reads no source branch, lakeFS refused), 75 lakeFS
    unavailable (try again later).
    """
    from compiler.actions import install
    from compiler.store import LakeFSError

    found = _action_files(paths, graph_name, config_path, namespace, sets, values_files)
    if isinstance(found, int):
        return found
    config, graph, files = found
    client = _lakefs_client(config, "install: ")
    if client is None:
        return int(ExitCode.USAGE)
    for f in files:
        for branch in f.branches:
            try:
                done = install(client, f.repo, branch, f.path, f.text, graph)
            except LakeFSError as exc:
                raise CouldNotRun.store(f"install on lakefs://{f.repo}/{branch}: ", exc) \
                    from None
            state = (f"committed {done.commit[:12]}" if done.commit
                     else "unchanged, no commit")
            click.echo(f"lakefs://{f.repo}/{branch}/{f.path}: {state}")
    return int(ExitCode.CLEAN)


@cli.group()
def runtime() -> None:
    """The steps compiled Workflows run in their pods (dsc's runtime image).

    They read the lakeFS endpoint and keys from LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID and
    LAKEFS_SECRET_ACCESS_KEY (set from a Kubernetes Secret), and the run from DSC_RUN and
    DSC_RUN_UID. DSC_TRANSFERS sets the parallel object transfers (8), DSC_PRESIGN=1 reads
    objects through presigned URLs.

    Exit codes of every step: 0 done, 1 the job cannot go on (the message names why), 2 usage
    (a missing variable or option), 3 lakeFS refused for good, 75 lakeFS unavailable (the one
    code Argo retries, with lost pods).
    """


def _step(verb: str, options: dict[str, list[str]]) -> int:
    """One runtime step, in a pod: the lakeFS endpoint and keys from the environment."""
    from compiler.runtime.steps import Host, run_step

    return run_step(verb, options, Host(os.environ, lambda line: click.echo(line, err=True)))


@runtime.command("open")
@click.option("--job", "job", required=True, metavar="JSON", help="The job document.")
@click.option("--pin", "pins", multiple=True, metavar="REPO@COMMIT",
              help="Read input repo REPO at COMMIT (repeatable).")
@click.option("--pins", "pin_list", default="", metavar="REPO@COMMIT,...",
              help="The same, comma-separated.")
@click.option("--expect-datums", default="", metavar="N",
              help="Fail unless the plan has N datums (a pinned compile).")
@click.option("--plan-digest", default="", metavar="HEX", help="... and this digest.")
@click.option("--cron-tick", default="", metavar="REPO", help="A CronWorkflow's tick repo.")
@click.option("--trigger-repo", default="", metavar="REPO",
              help="A triggered run: the lakeFS repository of the new commit ...")
@click.option("--trigger-branch", default="", metavar="BRANCH", help="... its branch ...")
@click.option("--trigger-commit", default="", metavar="COMMIT", help="... and the commit.")
@click.option("--reprocess", default="", metavar="SPEC",
              help="Process again: `*`, or pipelines, each optionally `:<datum ID prefix>`, "
              "comma-separated (the run's `reprocess` parameter).")
@_guard
def runtime_open(job: str, pins: tuple[str, ...], pin_list: str, expect_datums: str,
                 plan_digest: str, cron_tick: str, trigger_repo: str, trigger_branch: str,
                 trigger_commit: str, reprocess: str) -> int:
    """Pin the inputs, open the job branch, plan the datums, sort them against the output
    head's index and store the plan. An empty value is the option left out."""
    return _step("open", {
        "job": [job], "pin": list(pins), "pins": [pin_list], "expect-datums": [expect_datums],
        "plan-digest": [plan_digest], "cron-tick": [cron_tick], "trigger-repo": [trigger_repo],
        "trigger-branch": [trigger_branch], "trigger-commit": [trigger_commit],
        "reprocess": [reprocess]})


@runtime.command("prepare")
@_guard
def runtime_prepare() -> int:
    """A worker pod's init container: the FIFOs and the loop the user container runs, on
    the pod's /pfs volume (DSC_PFS, else /pfs)."""
    return _step("prepare", {})


@runtime.command("work")
@click.option("--pipeline", required=True, metavar="NAME")
@click.option("--repo", required=True, metavar="REPO", help="The pipeline's output repository.")
@click.option("--job-branch", "branch", required=True, metavar="BRANCH")
@click.option("--worker", required=True, type=click.IntRange(min=0), metavar="I",
              help="This worker's index (0 to the job's workers - 1).")
@_guard
def runtime_work(pipeline: str, repo: str, branch: str, worker: int) -> int:
    """Process this worker's share of the job's datums with the user container: stage each
    datum into /pfs, run it, publish /pfs/out (exit 1 when a datum failed all its tries,
    75 when the user container is gone)."""
    return _step("work", {"pipeline": [pipeline], "repo": [repo], "job-branch": [branch],
                          "worker": [str(worker)]})


@runtime.command("commit")
@click.option("--job", "job", required=True, metavar="JSON", help="The job document.")
@click.option("--job-branch", "branch", required=True, metavar="BRANCH")
@_guard
def runtime_commit(job: str, branch: str) -> int:
    """Check the outputs, commit them with provenance and merge into the output branch."""
    return _step("commit", {"job": [job], "job-branch": [branch]})


@runtime.command("abort")
@click.option("--graph", required=True, metavar="NAME")
@click.option("--status", required=True, metavar="STATUS", help="{{workflow.status}}")
@click.option("--output", "outputs", multiple=True, metavar="PIPELINE=REPO")
@click.option("--keep-branches", is_flag=True, help="Keep the job branches for inspection.")
@_guard
def runtime_abort(graph: str, status: str, outputs: tuple[str, ...],
                  keep_branches: bool) -> int:
    """The exit handler: drop (or keep) a failed run's job branches."""
    return _step("abort", {"graph": [graph], "status": [status], "output": list(outputs),
                           **({"keep-branches": []} if keep_branches else {})})


@runtime.command("reconcile")
@click.option("--sources", "sources", required=True, metavar="JSON",
              help="The graph's source branches and their readers (dsc compile --trigger).")
@_guard
def runtime_reconcile(sources: str) -> int:
    """The reconciler: list the runs lakeFS webhooks missed (output parameter `runs`)."""
    return _step("reconcile", {"sources": [sources]})


@cli.command()
@click.argument("url", metavar="lakefs://REPO/REF[/PATH]")
@click.option("-o", "--output", "fmt", type=click.Choice(["tree", "json", "mermaid"]),
              default="tree", show_default=True,
              help="tree: one line per input, like tree(1); json: nested, full commit IDs; "
              "mermaid: a flowchart, one node per commit.")
@click.option("--depth", type=click.IntRange(min=0), metavar="N",
              help="Read inputs at most N steps up from the commit [default: all].")
@click.option("--config", "config_path", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The dsc configuration, for lakefs.endpoint [default: ./dsc.yaml when "
              "present].")
@click.option("--data", "data", metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Read the commits of a `dsc run --data DIR` instead of lakeFS.")
@_guard
def provenance(url: str, fmt: str, depth: int | None, config_path: Path | None,
               data: Path | None) -> int:
    """Show where a lakeFS commit came from: the commits the inputs of the pipeline that
    made it were read at, and theirs, down to the sources (commits dsc did not make). REF is
    a branch, tag or commit ID.

    With a PATH, where one output file came from: the datum that wrote it, that datum's
    input files with their repositories and commits, the image, spec and code, and the run,
    even when later jobs skipped the datum and carried the file forward.

    A commit reached twice is shown in full once: the tree marks it `(see above)`, json
    gives {"repo", "commit", "elided": "see above"}. Metadata that names no commit, or a
    commit lakeFS does not have, is shown where it occurs and listed on stderr (exit 1).

    Needs LAKEFS_ENDPOINT (or lakefs.endpoint), LAKEFS_ACCESS_KEY_ID and
    LAKEFS_SECRET_ACCESS_KEY, or lakectl's LAKECTL_* variables; with --data, only the
    directory (`dsc provenance --data ./data lakefs://select/main`).

    Exit codes: 0 shown, 1 shown with metadata problems, 2 usage, 3 could not run (no such
    repository or ref, lakeFS refused), 75 lakeFS unavailable (try again later).
    """
    from compiler.provenance import (
        FileNotTraced,
        file_provenance,
        render,
        render_file,
        split_object_url,
        trace_lineage,
        unfold,
    )
    from compiler.store import LakeFSError, NotFound

    url, path = split_object_url(url)
    found = _commit_reader(url, data, config_path)
    if isinstance(found, int):
        return found
    reader, repo, ref, names = found
    if path:
        if fmt == "mermaid":
            raise click.BadParameter("a file's provenance is `tree` (text) or `json`",
                                     param_hint="'-o'")
        try:
            sys.stdout.write(render_file(file_provenance(reader, repo, ref, path),
                                         "json" if fmt == "json" else "text"))
        except FileNotTraced as exc:
            raise CouldNotRun(str(exc)) from None
        except NotFound as exc:
            raise CouldNotRun(f"{url}: no such repository or ref ({exc})"
                              f"{names.hint(repo, ref)}") from None
        except LakeFSError as exc:
            raise CouldNotRun.store(f"{url}: ", exc) from None
        return int(ExitCode.CLEAN)
    try:
        tree = unfold(trace_lineage(reader, repo, ref, depth))
    except NotFound as exc:
        raise CouldNotRun(f"{url}: no such repository or ref ({exc}){names.hint(repo, ref)}") \
            from None
    except LakeFSError as exc:
        raise CouldNotRun.store(f"{url}: ", exc) from None
    sys.stdout.write(render(tree, fmt))
    for problem in tree.problems:
        click.echo(f"dsc: error: {problem}", err=True)
    return int(ExitCode.FINDINGS if tree.problems else ExitCode.CLEAN)


@cli.command("log")
@click.argument("url", metavar="lakefs://REPO/REF")
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=1), metavar="N",
              help="Show at most N commits [default: all].")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True,
              help="text: short ID, date (UTC), what made the commit, one line each; json: a "
              "list with full IDs, parents, message and provenance.")
@click.option("--config", "config_path", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The dsc configuration, for lakefs.endpoint [default: ./dsc.yaml when "
              "present].")
@click.option("--data", "data", metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Read the commits of a `dsc run --data DIR` instead of lakeFS.")
@_guard
def log_command(url: str, limit: int | None, fmt: str, config_path: Path | None,
                data: Path | None) -> int:
    """List the commits of lakefs://REPO/REF, newest first: its first-parent chain, so on an
    output branch the commit of each run. Each line is the short commit ID, the date (UTC)
    and the pipeline, run and datums that made it (else the commit message). Any ID shown
    is a REF for `dsc provenance` and `dsc log`.

    A plain directory of --data DIR (the user's data) has no history of its own: its log is
    its current files, then the earlier versions runs read, newest first.

    Exit codes: 0 listed, 2 usage, 3 could not run (no such repository or ref, lakeFS
    refused), 75 lakeFS unavailable (try again later).
    """
    from compiler.provenance import history, render_log
    from compiler.store import LakeFSError, NotFound

    found = _commit_reader(url, data, config_path)
    if isinstance(found, int):
        return found
    reader, repo, ref, names = found
    try:
        commits = history(reader, repo, ref, limit)
    except NotFound as exc:
        raise CouldNotRun(f"{url}: no such repository or ref ({exc}){names.hint(repo, ref)}") \
            from None
    except LakeFSError as exc:
        raise CouldNotRun.store(f"{url}: ", exc) from None
    sys.stdout.write(render_log(commits, fmt))
    return int(ExitCode.CLEAN)


def _commit_reader(url: str, data: Path | None, config_path: Path | None
                   ) -> tuple[Any, str, str, Any] | int:
    """Where `dsc provenance` and `dsc log` read commits (the data directory, else lakeFS),
    the repository and ref `url` names, and how names map; or an exit code after saying why
    not."""
    from compiler.provenance import LakeFSURLError, RepoNames, parse_lakefs_url

    reader: Any = None
    if data is not None:
        from compiler.store.directory import DirectoryStore

        reader = DirectoryStore(data)
        names = RepoNames.in_directory(reader)
    else:
        config = _config(config_path, {})
        if config is None:
            return int(ExitCode.USAGE)
        names = RepoNames(config.lakefs_repo)
    try:
        repo, ref = parse_lakefs_url(url, names)
    except LakeFSURLError as exc:
        raise click.BadParameter(str(exc), param_hint="'lakefs://REPO/REF'") from None
    if reader is None:
        reader = _lakefs_client(config)
        if reader is None:
            return int(ExitCode.USAGE)
    return reader, repo, ref, names


def _config(path: Path | None, flags: dict[tuple[str, ...], Any]) -> Any:
    """The configuration, or None after printing why it cannot be used (exit 2)."""
    from compiler.config import ConfigError, load_config
    from compiler.diagnostics import LintResult
    from compiler.report import render

    try:
        return load_config(path, overrides=flags)
    except ConfigError as exc:
        result = LintResult()
        for diagnostic in exc.diagnostics:
            result.add(diagnostic)
        render(result, "text", sys.stderr, colour=_colour(sys.stderr), show_info=False)
        return None


def _lakefs_client(config: Any, context: str = "") -> Any:
    """A lakeFS client from the config's endpoint and the environment's keys, or None after
    saying which variables are missing (exit 2)."""
    from compiler.lakefs.client import from_environment

    try:
        return from_environment(os.environ, config.lakefs.endpoint, config.lakefs.timeout)
    except LookupError as exc:
        click.echo(f"dsc: error: {context}{exc}", err=True)
        return None


def _colour(stream: Any) -> bool:
    return not os.environ.get("NO_COLOR") and _isatty(stream)


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def main() -> None:
    try:
        cli(prog_name="dsc")
    finally:
        # On its way out the interpreter runs a full garbage collection over every object
        # still alive (10-15 ms after a large lint): pointless for a process that is ending.
        gc.freeze()
