"""The runtime contract: how compiled manifests call `dsc runtime <verb>` inside pods.

This module is the one place that says it. The compiler (`compiler.argo.build`) builds every
runtime container's argv, environment and output-parameter files from it; `compiler.runtime`
implements the verbs against lakeFS. Pure data: no I/O, no hera, no lakefs-sdk.

Verbs (each argument is a separate argv entry; user values are never part of a shell string):

    dsc runtime open    --job JOB [--pins REPO@COMMIT,...] [--expect-datums N --plan-digest HEX]
                        [--cron-tick REPO] [--trigger-repo R --trigger-branch B
                        --trigger-commit C] [--reprocess SPEC]
        Pin every input branch to its head commit (unless `--pins` or the job pins it),
        create the output repository if missing (DSC_STORAGE_NAMESPACE), create the job
        branch from the output branch, plan the datums, sort them against the output head's
        datum index (compiler.runtime.incremental: skipped, or processed and why; a datum a
        failed job of the pipeline finished from the same content and code is resumed: its
        outputs are copied from that job's failed branch, RESUMED_FILE), and store the plan
        under `.dsc/` on the job branch: the plan in chunks (plan_path), TODO_FILE (which
        datums to process), the job record (JOB_FILE) last. With `--expect-datums` (a
        pinned compile), fail unless the plan has exactly that many datums and that digest,
        and process them all. Writes OUT/workers.json (a JSON list of worker indices,
        `["0", ..., "W-1"]`, the `withParam` of the worker fan-out: W is the job's `workers`,
        at most one per datum to process), OUT/datums (how many datums the job processes)
        and OUT/branch (the job branch). A job with nothing to do (the output head holds this
        code's outputs of these very input commits) makes no branch: OUT/workers.json is `[]`
        and OUT/branch `@<that commit>` (noop_branch), which `commit` passes on.
        `--reprocess SPEC` (the run's `reprocess` parameter): `*`, or pipelines, each
        optionally `:<datum ID prefix>`, comma-separated, to process again. With
        `--cron-tick REPO` (a CronWorkflow run), first commit the tick file to that cron
        input's repo on the default branch: named by the run's creation time (RFC 3339,
        UTC), empty, `overwrite` deleting the earlier ticks; no tick before the input's
        `start`. An empty option value is the option left out: the one `open` template of a
        graph passes every option of every pipeline.
    dsc runtime prepare
        The worker pod's init container: make WORKER_DIR on the pod's /pfs volume, its three
        FIFOs and LOOP_SCRIPT (the worker protocol below). Needs no lakeFS.
    dsc runtime work    --pipeline P --repo REPO --job-branch B --worker I
        (REPO: the pipeline's output repository, where the job branch is.) Worker I of the
        job's W (its record says W) takes its share of the datums to process (worker_share:
        a contiguous part of TODO_FILE), skips those already published in this run (a
        retried pod resumes where the lost one stopped), and loops over the rest with the
        user container (the worker protocol): stage the datum's files from the pinned
        commits to /pfs/<input>/<path> and write ENV_FILE (the variables Pachyderm gives
        user code: `<input>` = the datum's path under /pfs/<input>, `<input>_COMMIT`,
        PACH_JOB_ID, PACH_OUTPUT_COMMIT_ID, PACH_DATUM_ID, PACH_DATUM_<input>_JOIN_ON,
        PACH_DATUM_<input>_GROUP_BY; POSIX-sh assignments, every value single-quoted); run
        the user code; upload /pfs/out to the job branch, then the datum's manifest
        (manifest_path), gathered every MANIFEST_BATCH datums into one file (batch_path).
        The next datum is staged while the user code runs, and the one before is published
        meanwhile. A failed datum runs again, with fresh inputs and an empty /pfs/out, up to
        the job's `datum_tries` attempts in all; `datum_timeout` stops one attempt. When
        `err_cmd` recovered a datum (RECOVERED_MARKER exists) it is recorded as recovered
        with no output, as Pachyderm does. A worker goes on past a datum that exhausted its
        tries and exits 1 at the end, naming every failed datum (up to FAILED_NAMED) with
        the end of its output. It logs a line per datum and writes Argo's progress
        (`$ARGO_PROGRESS_FILE`: `done/total`).
    dsc runtime commit  --job JOB --job-branch B
        Refuse two datums writing one path (those processed now and those carried); write
        the job's datum index; remove what no datum of it wrote; commit the job branch with
        provenance metadata; merge it into the output branch; delete the job branch. Writes
        OUT/commit (the commit ID) and OUT/url (its lakeFS UI URL, or "" when none is
        configured). With B = `@<commit>` (open had nothing to do), writes that commit.
    dsc runtime abort   --graph G --status STATUS [--output PIPELINE=REPO@BRANCH]...
                        [--keep-branches]
        The exit handler: when the run did not succeed, delete (or keep) the job branch of
        each pipeline in its output repository; one holding datums this run finished is
        first committed and kept as its failed branch (FAILED_BRANCH_PREFIX), for the next
        run to resume (compiler.runtime.resume). The output branches are never touched. It
        logs what became of each output branch: advanced by this run (to which commit),
        unchanged by it, or unknown (and why).

JOB is the job document (compiler.contract.job, `Job.document()`), a compact JSON string: the
pipeline, its input tree (globs as written; the runtime plans them with `compiler.datums`),
the output repository and branch, image, spec digest, code identity, salt, reprocess_spec,
workers (from `parallelism_spec`), datum_tries, and when set datum_timeout and job_timeout
(seconds; `work` and `commit` fail once the job has run longer, as Pachyderm kills the job)
and max_datums (a budget `open` enforces, `limits.max_datums`). OUT is OUTPUT_DIR.

The worker protocol, inside one worker pod (the user image needs only `/bin/sh`):

    The init container (`dsc runtime prepare`) makes WORKER_DIR on the pod's /pfs emptyDir,
    with three FIFOs, `go`, `done` and `kill`, and LOOP_SCRIPT. Then the runtime container
    (`dsc runtime work`, named `main`, whose log the Argo UI shows first) and the user
    container (USER_COMMAND: `/bin/sh LOOP_SCRIPT N cmd... err_cmd...` in the spec's image)
    start together. Both open the FIFOs in the same order, so neither waits for the other
    forever: the runtime opens `go` to write, `done` to read, `kill` to write; the loop
    `go` to read, `done` to write, `kill` to read. Per datum, the runtime stages /pfs and
    writes `<n>\\n` to `go`; the loop runs the datum in a subshell (which exports ENV_FILE,
    runs `cmd` with `stdin`, applies `accept_return_code`, runs `err_cmd` after a failure),
    its output to WORKER_DIR/log, and answers `<n> <exit status>\\n` on `done`. `stop <n>\\n`
    on `kill` stops datum n's process and every process under it (`datum_timeout`). The
    runtime closing `go` ends the loop (exit 0). End of file on `done` means the user
    container is gone: the worker exits 75 and Argo runs the pod again (the datum in
    flight runs again). The loop uses shell builtins only: no `sleep`, `ps`, `pkill` or
    `timeout` in the image.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compiler.config import SecretKeys

VERBS = ("open", "prepare", "work", "commit", "abort", "reconcile")

# How a verb ends (the exit-code table of every dsc command, compiler.diagnostics.ExitCode):
# 0 done; 1 the job cannot go on (its data, spec or datums: a retry would repeat it); 2 usage
# or missing configuration; 3 lakeFS refused for good (401/403 credentials or permissions,
# 404 a missing repository, branch or commit, 409 a conflict, 400); 75 lakeFS unavailable (no
# connection, no answer within the timeout, 429, 5xx after the client's own retries): a later
# attempt may succeed. 75 is EX_TEMPFAIL of sysexits.h, "try again later".
EXIT_UNAVAILABLE = 75
# The runtime steps' retryStrategy.expression (Argo >= 3.2; `lastRetry.exitCode` is a string,
# "-1" when the pod left none): dsc's own verdicts 1-3 are final; 75, a kill (137 OOM, 143
# SIGTERM of a drained node) or a lost pod is retried.
RETRY_EXPRESSION = '!(lastRetry.exitCode in ["1", "2", "3"])'
# Every runtime container runs this, with the verb's argv as `args`: set explicitly, so Argo's
# emissary executor need not look the entrypoint up in a (perhaps private) registry.
COMMAND = ["dsc"]
OUTPUT_DIR = "/tmp/dsc"
PFS = "/pfs"
# Written by the worker loop when `err_cmd` recovered a failed datum; outside /pfs/out, so it
# is never uploaded as output.
ENV_NAME, RECOVERED_NAME = ".dsc-env", ".dsc-recovered"  # under /pfs
RECOVERED_MARKER = f"{PFS}/{RECOVERED_NAME}"
ENV_FILE = f"{PFS}/{ENV_NAME}"

# --- The worker protocol (the module docstring says how it goes) ---------------------------

WORKER_DIR = "/pfs/.dsc-worker"
FIFOS = ("go", "done", "kill")
LOOP_SCRIPT = f"{WORKER_DIR}/loop.sh"
# The user container's command; its args are `cmd`'s length, `cmd` and `err_cmd` (user values
# are only ever expanded as "${1}"... positional parameters, never read as shell text).
USER_COMMAND = ["/bin/sh", LOOP_SCRIPT]
MANIFEST_BATCH = 1000  # datum manifests a worker gathers into one batch file
FAILED_NAMED = 20  # failed datums a worker's report names, each with the end of its output
# The loop, written by `dsc runtime prepare`. It finds its FIFOs beside itself and the pod's
# /pfs above them. Each datum runs in a foreground subshell (an asynchronous one would start
# the user's code with SIGINT and SIGQUIT ignored, as POSIX shells without job control do),
# which writes its own PID for the watcher first and a line matching no datum when done (in
# place, `1<>`: truncating a file that holds data costs ext4 a flush). Before
# sourcing the datum's variables (one per input name: any name, `c` or `n` too) the subshell
# moves the loop's state into positional parameters, which an assignment cannot reach: $1
# /pfs, $2 the command's length, $3 the command as eval text of "${4}"..., then cmd and
# err_cmd. `umask 0` lets the runtime, perhaps another UID, delete what the datum wrote once
# it is published. `stop` walks /proc (the container's own PID namespace) for the datum's
# descendants: the subshell shares the loop's process group, so a group kill would take the
# loop with it (and so would the user's own `kill 0`).
LOOP = f"""\
# dsc worker loop (compiler/contract.py): runs each datum `dsc runtime work` sends.
d=${{0%/*}}
pfs=${{d%/*}}
n=$1
shift
c=""
i=1
while [ "$i" -le "$n" ]; do c="$c \\"\\${{$((i + 3))}}\\""; i=$((i + 1)); done
exec 4<"$d/go" 3>"$d/done" 5<"$d/kill"
stop() {{
    kill -STOP "$1" 2>/dev/null
    for s in /proc/[0-9]*/stat; do
        read -r l < "$s" 2>/dev/null || continue
        l=${{l##*) }}
        l=${{l#* }}
        if [ "${{l%% *}}" = "$1" ]; then p=${{s#/proc/}}; stop "${{p%/stat}}"; fi
    done
    kill -KILL "$1" 2>/dev/null
}}
(
    exec 3>&- 4<&-
    while read -r w k <&5; do
        if [ "$w" = stop ] && read -r m p < "$d/pid" && [ "$m" = "$k" ]; then stop "$p"; fi
    done
) &
exec 5<&-
while read -r k <&4; do
    (
        exec 3>&- 4<&-
        read -r me rest < /proc/self/stat
        echo "$k $me" 1<> "$d/pid"
        umask 0
        set -- "$pfs" "$n" "$c" "$@"
        if [ -f "$1/{ENV_NAME}" ]; then set -a; . "$1/{ENV_NAME}"; set +a; fi
        if [ -n "${{DSC_STDIN+x}}" ]; then printf "%s" "$DSC_STDIN" | eval "$3"; else eval "$3"; fi
        code=$?
        [ "$code" = 0 ] && exit 0
        for ok in $DSC_ACCEPT_RETURN_CODE; do [ "$code" = "$ok" ] && exit 0; done
        marker="$1/{RECOVERED_NAME}"
        shift "$(($2 + 3))"
        [ "$#" -gt 0 ] || exit "$code"
        echo "dsc: the datum failed with exit code $code; running err_cmd" >&2
        if [ -n "${{DSC_ERR_STDIN+x}}" ]; then printf "%s" "$DSC_ERR_STDIN" | "$@"; else "$@"; fi ||
            exit "$code"
        : > "$marker"
    ) > "$d/log" 2>&1
    code=$?
    echo "- -" 1<> "$d/pid"
    echo "$k $code" >&3
done
"""


# A triggered run's name: `<graph>-` and these hex digits of sha256("<repo>/<branch>/<commit>"),
# computed by the Sensor's name template (compiler.argo.triggers) and by the reconciler, so
# that one commit never starts two runs.
RUN_HASH_LENGTH = 12


def run_name(prefix: str, repo: str, branch: str, commit: str) -> str:
    """The run of a (repository, branch, commit): what the Sensor's template computes."""
    digest = hashlib.sha256(f"{repo}/{branch}/{commit}".encode()).hexdigest()
    return f"{prefix}-{digest[:RUN_HASH_LENGTH]}"


def user_args(cmd: Iterable[str], err_cmd: Iterable[str]) -> list[str]:
    cmd = list(cmd)
    return [str(len(cmd)), *cmd, *err_cmd]


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A file a verb writes, read by Argo as an output parameter (`valueFrom.path`)."""

    parameter: str
    path: str


OUTPUTS = {
    "open": (OutputFile("workers", f"{OUTPUT_DIR}/workers.json"),
             OutputFile("datums", f"{OUTPUT_DIR}/datums"),
             OutputFile("branch", f"{OUTPUT_DIR}/branch")),
    "commit": (OutputFile("commit", f"{OUTPUT_DIR}/commit"),
               OutputFile("url", f"{OUTPUT_DIR}/url")),
    "reconcile": (OutputFile("runs", f"{OUTPUT_DIR}/runs.json"),),
}


# The lakeFS credentials Secret reaches every runtime container whole, through `envFrom`:
# each key as DSC_SECRET_<key> (one entry, where three secretKeyRefs would be repeated in
# every worker template; no value is ever in a manifest). The keys holding the endpoint,
# access key ID and secret key are SECRET_KEYS_VARIABLE when not the defaults.
SECRET_PREFIX = "DSC_SECRET_"
SECRET_KEYS_VARIABLE = "DSC_SECRET_KEYS"
DEFAULT_SECRET_KEYS = ("endpoint", "access_key_id", "secret_access_key")
LAKEFS_VARIABLES = ("LAKEFS_ENDPOINT", "LAKEFS_ACCESS_KEY_ID", "LAKEFS_SECRET_ACCESS_KEY")


# The environment of every runtime container besides the Secret: name -> a literal value or
# an Argo variable. A worker (`worker`) gets what `work` reads only: one is compiled per
# pipeline, and a run stores every template in its status.
def environment(*, keys: SecretKeys, endpoint: str | None, lakefs_ui: str | None,
                argo_ui: str | None, storage_namespace: str | None,
                timeout: int | None = None, worker: bool = False) -> list[tuple[str, str]]:
    env: list[tuple[str, str]] = []
    if endpoint:
        env.append(("LAKEFS_ENDPOINT", endpoint))
    names = (keys.endpoint, keys.access_key_id, keys.secret_access_key)
    if names != DEFAULT_SECRET_KEYS:
        env.append((SECRET_KEYS_VARIABLE, ",".join(names)))
    env += [("DSC_RUN", "{{workflow.name}}"), ("DSC_RUN_UID", "{{workflow.uid}}")]
    if worker:
        return env + ([("DSC_LAKEFS_TIMEOUT", str(timeout))] if timeout else [])
    env += [("DSC_NAMESPACE", "{{workflow.namespace}}"),
            ("DSC_RUN_CREATED", "{{workflow.creationTimestamp}}")]
    for name, value in (("DSC_LAKEFS_UI_URL", lakefs_ui), ("DSC_ARGO_UI_URL", argo_ui),
                        ("DSC_STORAGE_NAMESPACE", storage_namespace),
                        ("DSC_LAKEFS_TIMEOUT", str(timeout) if timeout else None)):
        if value:
            env.append((name, value))
    return env


def lakefs_variables(environ: dict[str, str]) -> dict[str, str]:
    """`environ` with LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID and LAKEFS_SECRET_ACCESS_KEY
    taken from the Secret's keys (SECRET_PREFIX) where not set otherwise."""
    names = environ.get(SECRET_KEYS_VARIABLE, "").split(",")
    if len(names) != 3 or not all(names):
        names = list(DEFAULT_SECRET_KEYS)
    out = dict(environ)
    for variable, key in zip(LAKEFS_VARIABLES, names, strict=True):
        if not out.get(variable) and environ.get(SECRET_PREFIX + key):
            out[variable] = environ[SECRET_PREFIX + key]
    return out


def json_argument(document: Any) -> str:
    """A JSON argument (the reconciler's sources): compact, key-sorted, so equal documents are
    equal bytes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# `open`'s options, each given by the one `open` template of a graph ("" = not given).
OPEN_OPTIONS = ("job", "pins", "expect-datums", "plan-digest", "cron-tick", "trigger-repo",
                "trigger-branch", "trigger-commit", "reprocess")


def open_args(values: dict[str, str]) -> list[str]:
    """`dsc runtime open` with OPEN_OPTIONS from `values` (the missing ones empty)."""
    unknown = set(values) - set(OPEN_OPTIONS)
    assert not unknown, unknown
    args = ["runtime", "open"]
    for name in OPEN_OPTIONS:
        args += [f"--{name}", values.get(name, "")]
    return args


def pins_value(pins: Iterable[str]) -> str:
    """The `--pins` value: `REPO@COMMIT` entries, comma-separated."""
    return ",".join(pins)


def trigger_args(repo: str, branch: str, commit: str) -> list[str]:
    """`open` of a triggered run: read this commit of that source branch (empty: no trigger)."""
    return ["--trigger-repo", repo, "--trigger-branch", branch, "--trigger-commit", commit]


def reconcile_args(document: dict[str, Any]) -> list[str]:
    return ["runtime", "reconcile", "--sources", json_argument(document)]


PREPARE_ARGS = ["runtime", "prepare"]
FLAGS = frozenset({"keep-branches"})  # options of the verbs that take no value
# Each verb's options, as the *_args functions here write them (`open` also takes `--pin
# REPO@COMMIT`, repeated, as people type it): `dsc runtime` accepts these and no other.
STEP_OPTIONS: dict[str, tuple[str, ...]] = {
    "open": (*OPEN_OPTIONS, "pin"), "prepare": (),
    "work": ("pipeline", "repo", "job-branch", "worker"), "commit": ("job", "job-branch"),
    "abort": ("graph", "status", "output", "keep-branches"), "reconcile": ("sources",)}


class ArgvError(ValueError):
    """A runtime argv that is not `runtime <verb> --option value...` as this module builds."""


def parse_args(argv: Iterable[str]) -> tuple[str, dict[str, list[str]]]:
    """The verb and its options (each option's values, in order) of an argv this module
    builds: what runs a step without the command line (`dsc run` runs them in-process)."""
    args = list(argv)
    if len(args) < 2 or args[0] != "runtime" or args[1] not in VERBS:
        raise ArgvError(f"not a runtime step: {' '.join(args[:2])!r}")
    options: dict[str, list[str]] = {}
    rest = args[2:]
    while rest:
        name = rest.pop(0)
        if name.startswith("--") and "=" in name:  # --option=value, as click takes it
            name, value = name.split("=", 1)
            rest.insert(0, value)
        if not name.startswith("--"):
            raise ArgvError(f"runtime {args[1]}: {name!r} is not an option")
        key = name[2:]
        if key not in STEP_OPTIONS[args[1]]:
            raise ArgvError(f"runtime {args[1]}: no such option {name} (it takes "
                            + (", ".join(f"--{o}" for o in STEP_OPTIONS[args[1]]) or "none")
                            + ")")
        if key in FLAGS:
            options.setdefault(key, [])
            continue
        if not rest:
            raise ArgvError(f"runtime {args[1]}: {name} needs a value")
        options.setdefault(key, []).append(rest.pop(0))
    return args[1], options


def work_args(pipeline: str, repo: str, branch: str, worker: str) -> list[str]:
    return ["runtime", "work", "--pipeline", pipeline, "--repo", repo, "--job-branch", branch,
            "--worker", worker]


def commit_args(job: str, branch: str) -> list[str]:
    return ["runtime", "commit", "--job", job, "--job-branch", branch]


def abort_args(graph: str, status: str, outputs: list[tuple[str, str, str]],
               keep_branches: bool) -> list[str]:
    """`--output PIPELINE=REPO@BRANCH` for each pipeline: its output repository and branch."""
    args = ["runtime", "abort", "--graph", graph, "--status", status]
    for pipeline, repo, branch in outputs:
        args += ["--output", f"{pipeline}={repo}@{branch}"]
    return args + (["--keep-branches"] if keep_branches else [])


# --- What a job leaves in lakeFS (read back by `dsc provenance`, `dsc run`, people) ---------

# Bookkeeping on the job branch, committed with the outputs: the job and its pins, the datum
# plan in chunks, one manifest per datum. Datum planning never reads these paths
# (compiler.datums.plan.RESERVED_PREFIXES).
META_DIR = ".dsc/"
JOB_FILE = ".dsc/job.json"
PLAN_CHUNK = 10_000  # datums per plan file: a worker reads those of its share, in order
# The datums to process, in plan order, as `[start, stop)` ranges of plan indices (a JSON
# list of pairs): a million datums to process again is one pair; workers split it.
TODO_FILE = ".dsc/todo.json"


def plan_path(index: int) -> str:
    """The plan file holding datum `index`."""
    return f".dsc/plan/{index // PLAN_CHUNK:06d}.json"


MANIFEST_DIR = ".dsc/datums/"
BATCH_DIR = ".dsc/batches/"


def manifest_path(index: int) -> str:
    """A processed datum's manifest on the job branch (its outputs; gone once committed)."""
    return f"{MANIFEST_DIR}{index:07d}.json"


def batch_path(worker: int, first: int) -> str:
    """A batch of datum manifests, a JSON list, from `worker`; `first`: its first datum."""
    return f"{BATCH_DIR}{worker:05d}-{first:07d}.json"


def worker_share(todo: int, workers: int, worker: int) -> tuple[int, int]:
    """Worker `worker`'s datums: positions [start, stop) of the `todo` datums to process."""
    return todo * worker // workers, todo * (worker + 1) // workers


# The datum index an output commit holds (compiler.runtime.incremental), in plan order,
# INDEX_CHUNK datums a file: per datum its ID, hash, state, the run whose job processed it,
# its matches and its output files (NNNNNN.json); beside each, the same datums' keys alone,
# a line `<ID> <hash> <state> <run UID>` each (NNNNNN.keys: what `open` reads to sort a plan);
# jobs.json describes those runs (code identity, image, inputs).
INDEX_DIR = ".dsc/index/"
INDEX_JOBS = ".dsc/index/jobs.json"
INDEX_CHUNK = 10_000  # 100,000 datums: 10 requests to read an index


def index_path(index: int) -> str:
    return f"{INDEX_DIR}{index // INDEX_CHUNK:06d}.json"


def index_keys_path(index: int) -> str:
    return f"{INDEX_DIR}{index // INDEX_CHUNK:06d}.keys"


def noop_branch(commit: str) -> str:
    """What `open` outputs as the job branch of a job with nothing to do: the output commit
    that already holds its result (`@<commit>`; no branch name starts with `@`)."""
    return "@" + commit


JOB_BRANCH_PREFIX = "dsc-"


def job_branch(pipeline: str, run: str) -> str:
    """`dsc-<pipeline>-<run>`, spelled as lakeFS branch names must be (`^\\w[-\\w]*$`)."""
    return JOB_BRANCH_PREFIX + re.sub(r"[^\w-]", "-", f"{pipeline}-{run}", flags=re.ASCII)


# A failed job's work, kept for the next job of its pipeline to resume (compiler.runtime.resume).
# `abort` commits a failed job branch that holds published datums, with FAILED_KEY = the run's
# UID (never RUN_KEY: that commit is not the job's result and must never be merged as one),
# points `dsc_failed-<pipeline>-<run>` at that commit and deletes the job branch. No verb
# writes a failed branch afterwards, so what it holds is fixed: a run's retried steps find
# their job branch gone. Not under JOB_BRANCH_PREFIX: it is no job in progress.
FAILED_BRANCH_PREFIX = "dsc_failed-"
FAILED_KEY = "dsc.failed.workflow.uid"
# On a job branch that resumes: per plan index, the datum a failed job did and whose outputs
# `open` copied from that job's failed commit (its ID, hash, files and producing run), and
# those runs (as INDEX_JOBS describes them); `commit` reads it, and removes it.
RESUMED_FILE = ".dsc/resumed.json"


def failed_branch(pipeline: str, run: str) -> str:
    """`dsc_failed-<pipeline>-<run>` (lakeFS's `^\\w[-\\w]*$`)."""
    return FAILED_BRANCH_PREFIX + re.sub(r"[^\w-]", "-", f"{pipeline}-{run}", flags=re.ASCII)


# Provenance metadata of every output commit (DESIGN.md §5); string -> string.
PIPELINE_KEY = "dsc.pipeline"
INPUT_PREFIX = "dsc.input."  # + input name: "<lakeFS repository>@<64-hex commit ID>"
RUN_KEY = "dsc.workflow.uid"  # identifies the run: a commit or merge carrying it has landed
WORKFLOW_KEY = "dsc.workflow"  # the run's name
IMAGE_KEY = "dsc.image"  # the image the user code ran in (absent when no image ran it)
RUNNER_KEY = "dsc.runner"  # "argo" on a cluster; "host" or "docker" under `dsc run`
# "total=N processed=N skipped=N deleted=N recovered=N", and " resumed=N" when the job took
# N datums' outputs from a failed job of the pipeline (RESUMED_FILE) instead of processing them
DATUMS_KEY = "dsc.datums"
CODE_KEY = "dsc.code"  # the pipeline's code identity (compiler.spec.identity)
# A dsc commit that changes no data (installing the trigger's action file): its events start
# no run, and the reconciler looks through it to the data commit below.
BOOKKEEPING_KEY = "dsc.bookkeeping"
ARGO_LINK_KEY = "::lakefs::Argo::url[url:ui]"  # lakeFS shows it as an "Open Argo UI" button


def input_metadata(inputs: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """The `dsc.input.*` metadata of an output commit from (input name, lakeFS repository,
    commit) of each input: `dsc.input.<name>` = `<repository>@<commit>`; union members that
    share a name and read another repository or commit: `dsc.input.<name>.<repository>`."""
    out: dict[str, str] = {}
    for name, repo, commit in inputs:
        key, value = INPUT_PREFIX + name, f"{repo}@{commit}"
        if out.setdefault(key, value) != value:
            out[f"{key}.{repo}"] = value
    return out


def input_value(value: str) -> tuple[str, str]:
    """The (repository, commit) a `dsc.input.*` value says (either may be empty or not a
    name lakeFS would give: readers check what they need)."""
    repo, _, commit = value.rpartition("@")
    return repo, commit


def recorded_commit(metadata: Mapping[str, str], input_name: str, repo: str) -> str | None:
    """The commit of `repo` that an output commit records for input `input_name`."""
    key = INPUT_PREFIX + input_name
    for value in (metadata.get(f"{key}.{repo}"), metadata.get(key)):
        if value:
            at_repo, commit = input_value(value)
            if at_repo == repo:
                return commit
    return None


# A datum's key, as worker logs and failure reports name it: its plan index and a readable
# hint from its first file.
_LABEL_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def datum_key(index: int, label: str = "") -> str:
    """`<index>` or `<index>-<readable hint>`; the runtime reads only the index."""
    hint = _LABEL_CHARS.sub("_", label.rstrip("/").rsplit("/", 1)[-1])[:24].strip("_.-")
    return f"{index}-{hint}" if hint else str(index)


def planned_key(index: int, datum: dict[str, Any]) -> str:
    """The key of the plan's datum `index` (a plan entry: its first match names it)."""
    return datum_key(index, datum["m"][0][1] if datum["m"] else "")


def plan_digest(datum_ids: Iterable[str]) -> str:
    """What `open --plan-digest` checks: sha256 over the datum IDs in plan order."""
    h = hashlib.sha256()
    for datum_id in datum_ids:
        h.update(datum_id.encode())
        h.update(b"\n")
    return h.hexdigest()
