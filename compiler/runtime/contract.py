"""The runtime contract: how compiled manifests call `dsc runtime <verb>` inside pods.

This module is the one place that says it. The compiler (`compiler.argo.build`) builds every
runtime container's argv, environment and output-parameter files from it; `compiler.runtime`
implements the verbs against lakeFS. Pure data: no I/O, no hera, no lakefs-sdk.

Verbs (each argument is a separate argv entry; user values are never part of a shell string):

    dsc runtime open    --job JOB [--pin REPO@COMMIT]... [--expect-datums N --plan-digest HEX]
                        [--cron-tick REPO] [--reprocess SPEC]
        Pin every input branch to its head commit (unless `--pin` or the job pins it), create
        the output repository if missing (DSC_STORAGE_NAMESPACE), create the job branch from
        the output branch, plan the datums, sort them against the output head's datum index
        (compiler.runtime.incremental: skipped, or processed and why), store the plan under
        `.dsc/` on the job branch. With `--expect-datums` (a pinned compile), fail unless the
        plan has exactly that many datums and that digest, and process them all. Writes
        OUT/datums.json (a JSON list of the keys of the datums to process, the `withParam`
        of the datum fan-out) and OUT/branch (the job branch). A job with nothing to do (the
        output head holds this code's outputs of these very input commits) makes no branch:
        OUT/datums.json is `[]` and OUT/branch `@<that commit>` (noop_branch), which
        `commit` passes on. `--reprocess SPEC` (the run's `reprocess` parameter): `*`, or
        pipelines, each optionally `:<datum ID prefix>`, comma-separated, to process again.
        With `--cron-tick REPO` (a CronWorkflow run), first commit the tick file to that cron
        input's repo on the default branch: named by the run's creation time (RFC 3339, UTC),
        empty, `overwrite` deleting the earlier ticks; no tick before the input's `start`.
    dsc runtime stage   --pipeline P --repo REPO --job-branch B --datum KEY
        (REPO: the pipeline's output repository, where the job branch is.)
        Download datum KEY's files from the pinned commits to /pfs/<input>/<path>, and write
        ENV_FILE: the variables Pachyderm gives user code (`<input>` = the datum's path under
        /pfs/<input>, `<input>_COMMIT`, PACH_JOB_ID, PACH_OUTPUT_COMMIT_ID, PACH_DATUM_ID,
        PACH_DATUM_<input>_JOIN_ON, PACH_DATUM_<input>_GROUP_BY) as POSIX-sh assignments
        with every value single-quoted. The user container's wrapper exports them before
        running `cmd` (a spec without `cmd` runs the image's entrypoint and gets none).
    dsc runtime publish --pipeline P --repo REPO --job-branch B --datum KEY
        Upload /pfs/out to the job branch and the datum's manifest under `.dsc/`. When the
        user step recovered (RECOVERED_MARKER exists: `err_cmd` succeeded) publish records the
        datum as recovered and uploads no output, as Pachyderm does.
    dsc runtime commit  --job JOB --job-branch B
        Refuse two datums writing one path (those processed now and those carried); write
        the job's datum index; remove what no datum of it wrote; commit the job branch with
        provenance metadata; merge it into the output branch; delete the job branch. Writes
        OUT/commit (the commit ID) and OUT/url (its lakeFS UI URL, or "" when none is
        configured). With B = `@<commit>` (open had nothing to do), writes that commit.
    dsc runtime abort   --graph G --status STATUS [--output PIPELINE=REPO@BRANCH]...
                        [--keep-branches]
        The exit handler: when the run did not succeed, delete (or keep) the job branch of
        each pipeline in its output repository; the output branches are never touched. It
        logs what became of each output branch: advanced by this run (to which commit),
        unchanged by it, or unknown (and why).

JOB is the job document (`job_document`), a compact JSON string: the pipeline, its input
tree (globs as written; the runtime plans them with `compiler.datums`, as `dsc datums` does),
the output repository and branch, image, spec digest, salt, reprocess_spec, max_datums (the
fan-out ceiling `open` enforces) and job_timeout (seconds; `stage`, `publish` and `commit` fail
once the job has run longer, as Pachyderm kills the job). KEY is a datum key: the
datum's index in the stored plan as decimal text, optionally followed by `-` and a readable
hint (`7-iris-7.csv`, `compiler.pins.datum_key`), which the Argo UI shows as the loop label;
the runtime reads only the index. OUT is OUTPUT_DIR.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compiler.config import SecretKeys

VERBS = ("open", "stage", "publish", "commit", "abort", "reconcile")

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
# Written by the user container's wrapper when `err_cmd` recovered a failed datum; outside
# /pfs/out, so it is never uploaded as output.
RECOVERED_MARKER = "/pfs/.dsc-recovered"
ENV_FILE = "/pfs/.dsc-env"


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A file a verb writes, read by Argo as an output parameter (`valueFrom.path`)."""

    parameter: str
    path: str


OUTPUTS = {
    "open": (OutputFile("datums", f"{OUTPUT_DIR}/datums.json"),
             OutputFile("branch", f"{OUTPUT_DIR}/branch")),
    "commit": (OutputFile("commit", f"{OUTPUT_DIR}/commit"),
               OutputFile("url", f"{OUTPUT_DIR}/url")),
    "reconcile": (OutputFile("runs", f"{OUTPUT_DIR}/runs.json"),),
}


@dataclass(frozen=True, slots=True)
class SecretRef:
    secret: str
    key: str


# The environment of every runtime container: name -> a literal value, an Argo variable, or
# a key of the lakeFS credentials Secret (secretKeyRef: never a value in the manifest).
def environment(*, secret: str, keys: SecretKeys, endpoint: str | None, lakefs_ui: str | None,
                argo_ui: str | None, storage_namespace: str | None,
                timeout: int | None = None) -> list[tuple[str, str | SecretRef]]:
    env: list[tuple[str, str | SecretRef]] = [
        ("LAKEFS_ENDPOINT", endpoint if endpoint else SecretRef(secret, keys.endpoint)),
        ("LAKEFS_ACCESS_KEY_ID", SecretRef(secret, keys.access_key_id)),
        ("LAKEFS_SECRET_ACCESS_KEY", SecretRef(secret, keys.secret_access_key)),
        ("DSC_RUN", "{{workflow.name}}"),
        ("DSC_RUN_UID", "{{workflow.uid}}"),
        ("DSC_NAMESPACE", "{{workflow.namespace}}"),
        ("DSC_RUN_CREATED", "{{workflow.creationTimestamp}}"),
    ]
    for name, value in (("DSC_LAKEFS_UI_URL", lakefs_ui), ("DSC_ARGO_UI_URL", argo_ui),
                        ("DSC_STORAGE_NAMESPACE", storage_namespace),
                        ("DSC_LAKEFS_TIMEOUT", str(timeout) if timeout else None)):
        if value:
            env.append((name, value))
    return env


def job_document(job: dict[str, Any]) -> str:
    """The JOB argument: compact, key-sorted JSON, so equal jobs are equal bytes."""
    return json.dumps(job, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def open_args(job: str, pins: list[str], expect: tuple[int, str] | None = None) -> list[str]:
    args = ["runtime", "open", "--job", job]
    for pin in pins:
        args += ["--pin", pin]
    if expect is not None:
        args += ["--expect-datums", str(expect[0]), "--plan-digest", expect[1]]
    return args


def trigger_args(repo: str, branch: str, commit: str) -> list[str]:
    """`open` of a triggered run: read this commit of that source branch (empty: no trigger)."""
    return ["--trigger-repo", repo, "--trigger-branch", branch, "--trigger-commit", commit]


def reconcile_args(document: dict[str, Any]) -> list[str]:
    return ["runtime", "reconcile", "--sources", job_document(document)]


def datum_args(verb: str, pipeline: str, repo: str, branch: str, datum: str) -> list[str]:
    assert verb in ("stage", "publish")
    return ["runtime", verb, "--pipeline", pipeline, "--repo", repo, "--job-branch", branch,
            "--datum", datum]


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
PLAN_CHUNK = 1000  # datums per plan file: a datum pod reads one of them, never the whole plan


def plan_path(index: int) -> str:
    """The plan file holding datum `index`."""
    return f".dsc/plan/{index // PLAN_CHUNK:06d}.json"


def manifest_path(index: int) -> str:
    """A processed datum's manifest on the job branch (its outputs; gone once committed)."""
    return f".dsc/datums/{index:06d}.json"


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


# Provenance metadata of every output commit (DESIGN.md §5); string -> string.
PIPELINE_KEY = "dsc.pipeline"
INPUT_PREFIX = "dsc.input."  # + input name: "<lakeFS repository>@<64-hex commit ID>"
RUN_KEY = "dsc.workflow.uid"  # identifies the run: a commit or merge carrying it has landed
WORKFLOW_KEY = "dsc.workflow"  # the run's name
IMAGE_KEY = "dsc.image"  # the image the user code ran in (absent when no image ran it)
RUNNER_KEY = "dsc.runner"  # "argo" on a cluster; "host" or "docker" under `dsc run`
DATUMS_KEY = "dsc.datums"  # "total=N processed=N skipped=N deleted=N recovered=N"
CODE_KEY = "dsc.code"  # the pipeline's code identity (compiler.spec.identity)
# A dsc commit that changes no data (installing the trigger's action file): its events start
# no run, and the reconciler looks through it to the data commit below.
BOOKKEEPING_KEY = "dsc.bookkeeping"
ARGO_LINK_KEY = "::lakefs::Argo::url[url:ui]"  # lakeFS shows it as an "Open Argo UI" button


# A datum key's readable part: Argo shows loop children as `datums(<index>:<item>)`.
_LABEL_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def datum_key(index: int, label: str = "") -> str:
    """`<index>` or `<index>-<readable hint>`; the runtime reads only the index."""
    hint = _LABEL_CHARS.sub("_", label.rstrip("/").rsplit("/", 1)[-1])[:24].strip("_.-")
    return f"{index}-{hint}" if hint else str(index)


def plan_digest(datum_ids: Iterable[str]) -> str:
    """What `open --plan-digest` checks: sha256 over the datum IDs in plan order."""
    h = hashlib.sha256()
    for datum_id in datum_ids:
        h.update(datum_id.encode())
        h.update(b"\n")
    return h.hexdigest()
