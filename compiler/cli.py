"""The dsc command line: click options in, a command core called (compiler/commands/), its exit
code out (compiler.cli_options.guard turns errors into a message and an exit code)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import click

from compiler import __version__
from compiler.cli_options import (
    Aliased,
    commits_from,
    config_option,
    guard,
    lakefs_option,
    name_option,
    reprocess_option,
    spec_paths,
    template_options,
    traceback_option,
    trigger_options,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dsc")
@traceback_option
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
              help="Deprecated, ignored: dsc lint checks every file in one process (a pool of "
              "processes did not pay for itself). Still accepted, as is env DSC_JOBS, so that "
              "existing hooks and scripts keep working.")
@config_option("The dsc configuration, for default_branch [default: ./dsc.yaml when "
                "present].")
@click.option("--default-branch", metavar="BRANCH",
              help="The lakeFS branch of inputs and outputs that name none, as `dsc compile` "
              "takes it [config default_branch, default main; env DSC_DEFAULT_BRANCH].")
@template_options
@guard
def lint(**options: Any) -> int:
    """Check pipeline specs (files or directories) against the schema and dsc's rules.

    The specs of each directory are one graph: the checks across specs (duplicate names,
    cycles, inputs on a branch the upstream pipeline does not write) stay within it.

    Exit codes: 0 clean, 1 findings (errors; warnings too with --strict), 2 usage,
    3 could not run (a file cannot be read).
    """
    from compiler.commands.lint import lint

    return lint(**options)


@cli.command()
@spec_paths
@click.option("--pipeline", "pipeline", metavar="NAME",
              help="The pipeline to preview when the specs define several.")
@click.option("--data", "--from-dir", "from_dir", metavar="DIR", cls=Aliased,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Read each repo's files from DIR/<repo>/, the data directory of `dsc run "
              "--data DIR` (--from-dir is the same option).")
@click.option("--listing", "listing_file", metavar="FILE",
              type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help='Read the paths from a JSON file {"repo": ["/path", ...]} (- for stdin).')
@click.option("--lakefs", "from_lakefs", is_flag=True,
              help="Read each repo from lakeFS, at the head of the input's branch (endpoint "
              "and keys as for `compile --pin`).")
@config_option("dsc.yaml (with --lakefs: endpoint, default branch, repo mapping).",
                exists=False)
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json"]),
              help="table (the default on a terminal): number, short ID, name:path per input; "
              'json (the default otherwise): [{"id", "inputs": [{"name", "repo", "path"}]}].')
@click.option("--count", "count_only", is_flag=True, help="Print only the number of datums.")
@click.option("--dialect", type=click.Choice(["1.x", "2.x"]),
              help="Spell directory matches as Pachyderm 1.x (/dir) or 2.x (/dir/) does "
              "[default: the spec's dialect].")
@template_options
@guard
def datums(**options: Any) -> int:
    """Preview the datums of one pipeline: which paths each pod would see.

    The data comes from a directory (--data DIR: DIR/<repo>/... are the files), a
    listing file (--listing FILE) or a live lakeFS (--lakefs). A repo missing from any of
    them is read as empty, with a warning. The spec is checked as `dsc lint` checks it;
    features dsc compile refuses but whose datums Pachyderm defines (s3 inputs, triggers)
    are previewed with a warning.

    Exit codes: 0 datums shown, 1 the spec has errors, 2 usage, 3 could not run (a file or
    the data cannot be read, lakeFS refused), 75 lakeFS unavailable (try again later).
    """
    from compiler.commands.datums import datums

    return datums(**options)


@cli.command()
@spec_paths
@name_option
@click.option("-o", "--output", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True, help="yaml: documents separated by ---; json: a kind: List.")
@click.option("--output-dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Write one file per object into DIR instead of stdout, and remove the files "
              "an earlier compile wrote there that this one does not (listed in "
              "DIR/.dsc-compile; never a file dsc did not write).")
@click.option("--generate-name", is_flag=True,
              help="Give the run Workflow a generateName (for kubectl create) instead of a "
              "name derived from the compiled template.")
@config_option()
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
@reprocess_option
@template_options
@guard
def compile(**options: Any) -> int:
    """Compile pipeline specs into Argo Workflows manifests for `kubectl apply -f -`: a
    WorkflowTemplate for the graph (split into parts past Argo's 200-template limit) and a
    Workflow that runs it now, or a CronWorkflow per cron input.

    Only manifests go to stdout; diagnostics go to stderr. The specs are checked as
    `dsc lint` checks them, and an error stops the compilation (exit 1).

    Exit codes: 0 compiled, 1 the specs have errors, 2 usage, 3 could not run (a file cannot
    be read or written; with --pin, lakeFS refused), 75 lakeFS unavailable (--pin; try again
    later).
    """
    from compiler.commands.compile import compile_command

    return compile_command(**options)


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
@name_option
@config_option()
@click.option("-v", "--verbose", is_flag=True,
              help="Each worker's progress as it goes, and the log of every retried step.")
@click.option("--keep-scratch", is_flag=True,
              help="Keep every pod's scratch directory (what it staged, wrote and logged), "
              "for debugging; by default a failed run keeps only the pods' logs.")
@reprocess_option
@template_options
@guard
def run(**options: Any) -> int:
    """Compile the specs and run the Workflow here, as Argo would run it on the cluster:
    the same steps, the same datums, the same commits with provenance.

    Ctrl-C, SIGTERM and SIGHUP stop the running datums and leave no partial output.

    Exit codes: 0 every pipeline committed, 1 the specs have errors or a datum or step failed
    (the output branches stay as they were; the failure is named), 2 usage, 3 could not run
    (a runner or input directory this machine lacks, a construct dsc run does not support,
    lakeFS refused), 75 lakeFS unavailable (try again later), 128+N stopped by signal N (130
    Ctrl-C, 143 SIGTERM, 129 SIGHUP).
    """
    from compiler.commands.run import run

    return run(**options)


@cli.command("plan")
@spec_paths
@click.option("--data", "data", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="The data directory a `dsc run --data DIR` would use [the default: ./data].")
@lakefs_option
@click.option("-v", "--verbose", is_flag=True,
              help="A line per datum: + processed (and why), = skipped, - its outputs deleted.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text, or JSON ({\"pipelines\": [...]}).")
@click.option("--reprocess", default="", metavar="SPEC",
              help="As for `dsc run --reprocess`: what the run would process again.")
@name_option
@config_option()
@template_options
@guard
def plan_command(**options: Any) -> int:
    """Say what a run of the graph would do, before it runs: per pipeline, how many datums
    it would process (and why: new, input changed, code changed, failed before, forced),
    skip, and delete the outputs of, or that it has nothing to do. Writes nothing.

    A pipeline downstream of one that will commit reads outputs not written yet: its counts
    are estimates (marked), from the upstream job's plan.

    Exit codes: 0 planned, 1 the specs have errors, 2 usage, 3 could not run (lakeFS
    refused), 75 lakeFS unavailable.
    """
    from compiler.commands.plan import plan_command

    return plan_command(**options)


@cli.command("gc")
@spec_paths
@click.option("--data", "data", metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The data directory of `dsc run --data DIR` [the default: ./data].")
@lakefs_option
@click.option("--older-than", "older_than", metavar="DURATION",
              help="Also remove job branches opened longer ago than this (a Go duration: "
              "24h, 90m; 0 for all) whose run cannot be seen from here: a cluster run, or a "
              "`dsc run` on another machine.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@name_option
@config_option()
@template_options
@guard
def gc_command(**options: Any) -> int:
    """Remove the job branches that runs of the graph left behind.

    A job branch (dsc-<pipeline>-<run>) normally goes when its job commits or its run's exit
    handler runs. One is left when a run was killed (kill -9 of `dsc run`, a deleted
    Workflow) or its exit handler failed. dsc removes one only when it knows the run no
    longer needs it: its commit landed, it is past its job_timeout, or the `dsc run` on this
    machine that opened it is gone; --older-than extends that to runs it cannot see.

    Exit codes: 0 done, 1 the specs have errors, 2 usage, 3 could not run (lakeFS or the
    data directory refused), 75 lakeFS unavailable (try again later).
    """
    from compiler.commands.gc import gc

    return gc(**options)


@cli.command()
@click.option("--config", "config_schema", is_flag=True,
              help="Print the schema of dsc.yaml instead.")
@guard
def schema(**options: Any) -> int:
    """Print the pipeline spec JSON Schema (draft 2020-12), e.g. for yaml-language-server.

    Exit codes: 0 printed, 2 usage, 3 the schema is missing from this installation.
    """
    from compiler.commands.schema import print_schema

    return print_schema(**options)


@cli.group()
def triggers() -> None:
    """Re-run a graph on new commits: the lakeFS action files that post them to Argo Events.

    Compile the graph with `dsc compile --trigger` (its Sensor and reconciler), then install
    the action file in each source repository with `dsc triggers install`.
    """


@triggers.command("action")
@trigger_options
@click.option("--output-dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
              help="Write DIR/<repository>/_lakefs_actions/dsc-<graph>.yaml instead of "
              "printing them.")
@guard
def triggers_action(**options: Any) -> int:
    """Print the lakeFS action file of each source repository of the graph.

    Each posts post-commit, post-merge, post-revert and post-cherry-pick events of the
    branches the graph reads (config `triggers.events`) to the dsc-lakefs EventSource, with
    the bearer token from the lakeFS server's LAKEFSACTION_DSC_ARGO_EVENTS_TOKEN (config
    `triggers.token_env`).

    Exit codes: 0 printed or written, 1 the specs have errors, 2 usage (or a setting the
    EventSource's URL needs is missing), 3 could not run (the graph reads no source branch, a
    file cannot be written).
    """
    from compiler.commands.triggers import print_actions

    return print_actions(**options)


@triggers.command("install")
@trigger_options
@guard
def triggers_install(**options: Any) -> int:
    """Commit the action file to every branch the graph reads, through the lakeFS API.

    A branch that already has the same file gets no commit, so running it again is safe.
    Needs LAKEFS_ENDPOINT (or lakefs.endpoint), LAKEFS_ACCESS_KEY_ID and
    LAKEFS_SECRET_ACCESS_KEY, with write access to those branches.

    Exit codes: 0 installed or unchanged, 1 the specs have errors, 2 usage (or a setting is
    missing), 3 could not run (the graph reads no source branch, lakeFS refused), 75 lakeFS
    unavailable (try again later).
    """
    from compiler.commands.triggers import install_actions

    return install_actions(**options)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("verb", metavar="VERB")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[--OPTION VALUE]...")
@guard
def runtime(**options: Any) -> int:
    """A step compiled Workflows run in their pods (dsc's runtime image), with its options as
    the manifests give them:

    \b
      open --job JSON [--pin R@C]... [--pins R@C,...] [--expect-datums N --plan-digest HEX]
        [--cron-tick R] [--trigger-repo R --trigger-branch B --trigger-commit C]
        [--reprocess SPEC]: pin the inputs, open the job branch, plan and sort the datums (an
        empty value is the option left out)
      prepare: a worker pod's init container (the FIFOs and loop on /pfs, or DSC_PFS)
      work --pipeline P --repo R --job-branch B --worker I: this worker's datums
      commit --job JSON --job-branch B: commit the outputs with provenance, merge
      abort --graph G --status S [--output P=REPO@BRANCH]... [--keep-branches]: exit handler
      reconcile --sources JSON: list the runs lakeFS webhooks missed

    They read the lakeFS endpoint and keys from LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID and
    LAKEFS_SECRET_ACCESS_KEY (set from a Kubernetes Secret), and the run from DSC_RUN and
    DSC_RUN_UID. DSC_TRANSFERS sets the parallel object transfers (8), DSC_PRESIGN=1 reads
    objects through presigned URLs.

    Exit codes of every step: 0 done, 1 the job cannot go on (the message names why), 2 usage
    (a missing variable or option), 3 lakeFS refused for good, 75 lakeFS unavailable or the
    user container gone (the one code Argo retries, with lost pods).
    """
    from compiler.commands.runtime import step

    return step(**options)


@cli.command()
@click.argument("url", metavar="lakefs://REPO/REF[/PATH]")
@click.option("-o", "--output", "fmt", type=click.Choice(["tree", "json", "mermaid"]),
              default="tree", show_default=True,
              help="tree: one line per input, like tree(1); json: nested, full commit IDs; "
              "mermaid: a flowchart, one node per commit.")
@click.option("--depth", type=click.IntRange(min=0), metavar="N",
              help="Read inputs at most N steps up from the commit [default: all].")
@commits_from
@guard
def provenance(**options: Any) -> int:
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
    from compiler.commands.provenance import provenance

    return provenance(**options)


@cli.command("log")
@click.argument("url", metavar="lakefs://REPO/REF")
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=1), metavar="N",
              help="Show at most N commits [default: all].")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True,
              help="text: short ID, date (UTC), what made the commit, one line each; json: a "
              "list with full IDs, parents, message and provenance.")
@commits_from
@guard
def log_command(**options: Any) -> int:
    """List the commits of lakefs://REPO/REF, newest first: its first-parent chain, so on an
    output branch the commit of each run. Each line is the short commit ID, the date (UTC)
    and the pipeline, run and datums that made it (else the commit message). Any ID shown
    is a REF for `dsc provenance` and `dsc log`.

    A plain directory of --data DIR (the user's data) has no history of its own: its log is
    its current files, then the earlier versions runs read, newest first.

    Exit codes: 0 listed, 2 usage, 3 could not run (no such repository or ref, lakeFS
    refused), 75 lakeFS unavailable (try again later).
    """
    from compiler.commands.provenance import log

    return log(**options)


def main() -> None:
    try:
        cli(prog_name="dsc")
    finally:
        # On its way out the interpreter runs a full garbage collection over every object
        # still alive (10-15 ms after a large lint): pointless for a process that is ending.
        gc.freeze()
