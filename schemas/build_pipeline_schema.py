#!/usr/bin/env python3
"""Build ``schemas/pipeline.schema.json``, the JSON Schema of a Pachyderm pipeline spec.

The schema is defined below as Python data, with every key in its canonical snake_case
(protobuf) spelling. Pachyderm also accepts the lowerCamel JSON name of every key
(``parallelism_spec`` / ``parallelismSpec``), so the lowerCamel twins are generated
mechanically when the file is written.

Usage::

    python schemas/build_pipeline_schema.py          # (re)write schemas/pipeline.schema.json
    python schemas/build_pipeline_schema.py --check  # exit 1 if the file is stale or invalid

Both modes first lint the generated schema: only the keywords understood by dsc's own
evaluator may appear, ``$ref`` must point at an existing ``#/$defs/NAME``, every property
needs a description, every fixed-key object sets ``additionalProperties: false`` and every
multi-word key has its lowerCamel twin. The script uses the standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

OUTPUT = Path(__file__).resolve().parent / "pipeline.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# The keywords dsc's in-house evaluator implements; anything else is a bug in this file.
ALLOWED_KEYWORDS = frozenset(
    {
        "$schema",
        "$defs",
        "$ref",
        "title",
        "description",
        "markdownDescription",
        "default",
        "examples",
        "deprecated",
        "type",
        "enum",
        "const",
        "properties",
        "patternProperties",
        "additionalProperties",
        "required",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "pattern",
        "anyOf",
        "minProperties",
    }
)
JSON_TYPES = frozenset({"null", "boolean", "object", "array", "number", "string", "integer"})
REF_PATTERN = re.compile(r"^#/\$defs/([a-z][a-z0-9_]*)$")

# protobuf-JSON encodes 64-bit integers as strings and accepts both forms when parsing.
INT64_PATTERN = "^-?[0-9]+$"
UINT64_PATTERN = "^[0-9]+$"
# protobuf-JSON also accepts a float written as a JSON string ("0.5", "1e3").
FLOAT_PATTERN = r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$"


# --------------------------------------------------------------------------------------
# Small constructors. Each returns a fresh dict, so no subschema object is shared.
# --------------------------------------------------------------------------------------


def _annotate(schema: Schema, description: str, extra: dict[str, Any]) -> Schema:
    schema["description"] = description
    schema.update(extra)
    return schema


def string(description: str, **extra: Any) -> Schema:
    return _annotate({"type": "string"}, description, extra)


def boolean(description: str, **extra: Any) -> Schema:
    return _annotate({"type": "boolean"}, description, {"default": False, **extra})


def int32(description: str, **extra: Any) -> Schema:
    return _annotate({"type": "integer"}, description, extra)


def int64(description: str, **extra: Any) -> Schema:
    return _annotate({"type": ["integer", "string"], "pattern": INT64_PATTERN}, description, extra)


def uint64(description: str, **extra: Any) -> Schema:
    return _annotate(
        {"type": ["integer", "string"], "pattern": UINT64_PATTERN, "minimum": 0}, description, extra
    )


def double(description: str, **extra: Any) -> Schema:
    return _annotate({"type": ["number", "string"], "pattern": FLOAT_PATTERN}, description, extra)


def duration(description: str, **extra: Any) -> Schema:
    # No pattern on purpose: dsc checks durations itself and gives better messages.
    return string(description, **extra)


def string_list(description: str, **extra: Any) -> Schema:
    return _annotate({"type": "array", "items": {"type": "string"}}, description, extra)


def string_map(description: str, **extra: Any) -> Schema:
    return _annotate(
        {"type": "object", "additionalProperties": {"type": "string"}}, description, extra
    )


def ref(name: str, description: str, **extra: Any) -> Schema:
    return _annotate({"$ref": f"#/$defs/{name}"}, description, extra)


def array_of(name: str, description: str, **extra: Any) -> Schema:
    return _annotate({"type": "array", "items": {"$ref": f"#/$defs/{name}"}}, description, extra)


def record(
    title: str,
    description: str,
    properties: dict[str, Schema],
    required: list[str] | None = None,
) -> Schema:
    """An object with a fixed set of keys (Pachyderm rejects unknown fields)."""
    schema: Schema = {"title": title, "description": description, "type": "object"}
    schema["properties"] = properties
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


# --------------------------------------------------------------------------------------
# The definitions, in canonical snake_case.
# --------------------------------------------------------------------------------------


def pipeline_def() -> Schema:
    return record(
        "Pipeline spec",
        "One Pachyderm pipeline specification (a CreatePipelineRequest), in the 1.x or the "
        "2.x dialect. Only `pipeline.name` is strictly required by the schema; Pachyderm "
        "also needs a `transform`, and an `input` unless the pipeline is a spout.",
        {
            "pipeline": ref(
                "pipeline_id",
                "Identifies the pipeline: its `name`, which is also the name of its output "
                "repo, and in 2.5+ its `project`. Required.",
            ),
            "tf_job": ref(
                "tf_job",
                "Kubeflow TFJob to run instead of a `transform` (1.9.8+, rarely used); exactly "
                "one of `tf_job` and `transform` should be set.",
            ),
            "transform": ref(
                "transform",
                "What runs for each datum: the container image, the command and its stdin, "
                "environment variables and secrets. Required by Pachyderm.",
            ),
            "parallelism_spec": ref(
                "parallelism_spec",
                "How many workers (pods) process datums in parallel. Unset means 1 worker.",
            ),
            "hashtree_spec": ref(
                "hashtree_spec",
                "1.x only (1.7.11-1.13): how many shards the output hashtree is split into. "
                "Rejected by 2.x.",
            ),
            "egress": ref(
                "egress",
                "Copy each finished output commit to an external store (an object-storage URL, "
                "or in 2.2+ an SQL database) before the job is marked successful.",
            ),
            "update": boolean(
                "Request flag set by `pachctl update pipeline`: update the existing pipeline "
                "of this name instead of creating a new one. Not normally written in specs. "
                "Default false."
            ),
            "output_branch": string(
                "Branch of the output repo that receives each job's output commit. "
                "Default `master`.",
                default="master",
            ),
            "s3_out": boolean(
                "If true, the code writes its output through an S3 gateway "
                "(`s3://<output repo>`, endpoint in `S3_ENDPOINT`) instead of `/pfs/out`; "
                "datums are then never skipped. 1.10+; default false."
            ),
            "resource_requests": ref(
                "resource_spec",
                "CPU, memory, GPU and disk reserved for each worker's user container. Docs "
                "default: 0 CPU, 0 disk, 64MB memory.",
            ),
            "resource_limits": ref(
                "resource_spec",
                "Upper bounds on CPU, memory, GPU and disk for each worker's user container; "
                "GPUs are usually requested here.",
            ),
            "sidecar_resource_limits": ref(
                "resource_spec",
                "Resource limits of the storage sidecar container that runs next to the user "
                "code in every worker pod (1.10.5+).",
            ),
            "sidecar_resource_requests": ref(
                "resource_spec",
                "Resource requests of the storage sidecar container. 2.x only (2.6+).",
            ),
            "input": ref(
                "input",
                "Where the data comes from and how it is split into datums: one of `pfs`, "
                "`cron`, `cross`, `union`, `join`, `group` (1.x also `atom`, `git`). Required "
                "except for spouts.",
            ),
            "description": string(
                "Free-text description shown by `pachctl list pipeline` and "
                "`pachctl inspect pipeline`. Default empty.",
                default="",
            ),
            "cache_size": string(
                "1.x only: size of the storage sidecar's in-memory cache, as a Kubernetes "
                "quantity; files bigger than a quarter of it are not cached. Default `64M`.",
                default="64M",
                examples=["64M", "1G"],
            ),
            "enable_stats": boolean(
                "1.x only: keep per-datum logs, timings and input/output snapshots on a `stats` "
                "branch of the output repo; cannot be turned off without recreating the "
                "pipeline. Default false (2.x always keeps this in the `<pipeline>.meta` repo)."
            ),
            "reprocess": boolean(
                "Request flag set by `pachctl update pipeline --reprocess`: give the updated "
                "pipeline a new salt so that every datum is processed again. Default false."
            ),
            "max_queue_size": int64(
                "1.x only: how many datums a worker queues so that downloading, processing and "
                "uploading overlap. Default 1 (values below 1 become 1).",
                default=1,
            ),
            "service": ref(
                "service",
                "Run the code as a long-lived service exposed through a Kubernetes Service "
                "(e.g. a notebook or a model server); the command is restarted if it exits. "
                "Experimental.",
            ),
            "spout": ref(
                "spout",
                "Make this a spout: a pipeline without input whose long-running code writes "
                "commits to its output repo, e.g. from a message queue. May be `{}` (1.8.6+).",
            ),
            "chunk_spec": ref(
                "chunk_spec",
                "1.x only: how many datums (or bytes of data) a worker claims at a time.",
            ),
            "datum_set_spec": ref(
                "datum_set_spec",
                "2.x only: how datums are grouped into datum sets, the unit of work a worker "
                "claims. Unset: about 4 datum sets per worker.",
            ),
            "datum_timeout": duration(
                "Longest time one datum may take, as a duration such as `30s`, `5m` or "
                "`1h30m` (2.x writes seconds, e.g. `300s`); a timeout counts as a failed "
                "attempt. Default: no limit.",
                examples=["300s", "10m"],
            ),
            "job_timeout": duration(
                "Longest time a whole job may take across all workers, as a duration such as "
                "`1h` or `3600s`. Default: no limit.",
                examples=["3600s", "2h"],
            ),
            "salt": string(
                "Value mixed into every datum's hash; changing it makes Pachyderm reprocess "
                "every datum. Normally generated by the server (a random UUID) and kept across "
                "updates unless `--reprocess` is used."
            ),
            "standby": boolean(
                "1.x only (1.7.1-1.13): scale the workers down to zero while there is nothing "
                "to process. Replaced by `autoscaling`. Default false."
            ),
            "datum_tries": int64(
                "How many times in total a failing datum is attempted before it, and its job, "
                "is marked failed; 1 means no retry. Default 3 (1.7.5+).",
                default=3,
            ),
            "scheduling_spec": ref(
                "scheduling_spec",
                "Kubernetes scheduling hints copied into the worker pods: a node selector and "
                "a priority class (1.7.10+).",
            ),
            "pod_spec": string(
                "Deprecated: a JSON document written as a string (not an object): a JSON merge "
                "patch (RFC 7386) applied to the generated worker pod spec. Prefer "
                "`pod_patch`. Default empty.",
                default="",
                deprecated=True,
                examples=['{"nodeName": "gpu-node-1"}'],
            ),
            "pod_patch": string(
                "A JSON document written as a string (not an object): a JSON Patch (RFC 6902, "
                "a list of operations) applied to the generated worker pod spec. 1.8.3+; "
                "default empty.",
                default="",
                examples=['[{"op": "add", "path": "/hostNetwork", "value": true}]'],
            ),
            "metadata": ref(
                "metadata",
                "Kubernetes labels and annotations added to the pipeline's worker pods (1.10+).",
            ),
            "reprocess_spec": {
                "type": "string",
                "enum": ["until_success", "every_job"],
                "description": (
                    "Whether datums that were already processed successfully are skipped: "
                    "`until_success` skips unchanged ones, `every_job` processes every datum "
                    "in every job. Default `until_success` (1.13+)."
                ),
                "default": "until_success",
            },
            "autoscaling": boolean(
                "Scale the workers down to zero when idle and back up (in 2.x up to "
                "`parallelism_spec.constant`) when there is work. Default false (1.13+)."
            ),
            "tolerations": array_of(
                "toleration",
                "Kubernetes tolerations added to the worker pods so that they can run on "
                "tainted nodes. 2.x only (2.5+).",
            ),
            "dry_run": boolean(
                "Request flag (2.x, `pachctl create pipeline --dry-run`): validate the request "
                "without creating or updating the pipeline. Default false."
            ),
            "determined": ref(
                "determined",
                "HPE Determined integration: the Determined workspaces the pipeline can use. "
                "2.x only (2.7+).",
            ),
            "maximum_expected_uptime": duration(
                "How long a job is expected to run at most, as a duration such as `3600s`; "
                "longer-running jobs are flagged for alerting. 2.x only (2.9+).",
                examples=["3600s"],
            ),
            "scale_down_threshold": duration(
                "Legacy (1.4.4-1.9.8): idle time, as a duration, after which the pipeline's "
                "workers were scaled down. Removed; use `standby` or `autoscaling`.",
                deprecated=True,
            ),
            "incremental": boolean(
                "Legacy (1.4.8-1.7.14): if true, `/pfs/out` starts with the datum's previous "
                "output and only new or changed input files are shown. Removed. Default false.",
                deprecated=True,
            ),
            "batch": boolean(
                "Legacy, undocumented (1.5.1-1.9.5): experimental batch mode flag. Removed. "
                "Default false.",
                deprecated=True,
            ),
        },
        required=["pipeline"],
    )


def pipeline_id_def() -> Schema:
    return record(
        "Pipeline",
        "The pipeline's identity: name and (2.5+) project.",
        {
            "name": string(
                "Name of the pipeline and of its output repo. Letters, digits, `_` and `-` "
                "only, starting with a letter or digit, at most 63 characters. Required.",
                examples=["edges"],
            ),
            "project": ref(
                "project",
                'Project the pipeline belongs to, as `{"name": ...}`. Default: the `default` '
                "project. 2.x only (2.5+).",
                default={"name": "default"},
            ),
        },
        required=["name"],
    )


def project_def() -> Schema:
    return record(
        "Project",
        "A Pachyderm project (2.5+), which namespaces repos and pipelines.",
        {"name": string("Name of the project.", examples=["default"])},
    )


def transform_def() -> Schema:
    return record(
        "Transform",
        "The user code: image, command, stdin, environment and secrets.",
        {
            "image": string(
                "Docker image the code runs in. Default `ubuntu:16.04` in 1.x and "
                "`ubuntu:20.04` in 2.x; pin a tag rather than `latest`.",
                examples=["python:3.11-slim"],
            ),
            "cmd": string_list(
                "Command run for each datum, as a list of arguments. It is executed directly, "
                "without a shell, and the image's ENTRYPOINT is not used.",
                examples=[["python3", "/code/main.py"], ["bash"]],
            ),
            "err_cmd": string_list(
                "Command run after a datum fails; if it exits with 0 the datum counts as "
                "recovered rather than failed (1.9+)."
            ),
            "env": string_map(
                "Extra environment variables for the code, as a map from name to string value."
            ),
            "secrets": array_of(
                "secret",
                "Kubernetes secrets made available to the code, either mounted as files "
                "(`mount_path`) or as one environment variable (`env_var` and `key`).",
            ),
            "image_pull_secrets": string_list(
                "Names of Kubernetes secrets used to pull the image from a private registry."
            ),
            "stdin": string_list(
                "Lines written to the command's standard input, joined with newlines; the "
                'usual idiom is `cmd: ["bash"]` with the script lines here. Must be a list.'
            ),
            "err_stdin": string_list("Lines written to the standard input of `err_cmd` (1.9+)."),
            "accept_return_code": _annotate(
                {"type": "array", "items": int64("An exit code treated as success.")},
                "Exit codes, besides 0, that count as success.",
                {"examples": [[1]]},
            ),
            "debug": boolean("Log more detail from the worker. Default false."),
            "user": string(
                "User (name or UID) the code runs as. Default: the image's user (1.7.1+)."
            ),
            "working_dir": string(
                "Directory the code starts in. Default: the image's WORKDIR (1.7.1+)."
            ),
            "dockerfile": string(
                "Dockerfile used when `pachctl` builds and pushes the image for you "
                "(`--build` in 1.x, `--push-images` in 2.x). Default `./Dockerfile` (1.8.3+).",
                default="./Dockerfile",
            ),
            "build": ref(
                "build_spec",
                "1.x only (1.11-1.13): build pipeline; `pachctl` builds your source code on a "
                "language base image instead of you providing `image`.",
            ),
            "memory_volume": boolean(
                "Keep `/pfs` in memory (tmpfs) instead of on disk: faster, but it counts "
                "against the memory limit. 2.x only (2.4+); default false."
            ),
            "datum_batching": boolean(
                "One long-lived process handles many datums, asking for the next one with "
                "`pachctl next datum`, which avoids a start-up cost per datum. 2.x only "
                "(2.5+); default false."
            ),
        },
    )


def secret_def() -> Schema:
    return record(
        "Secret",
        "A Kubernetes secret given to the code: mounted as files at `mount_path`, or one of "
        "its keys exposed as the environment variable `env_var`.",
        {
            "name": string("Name of the Kubernetes secret."),
            "key": string(
                "Key in the secret whose value goes into `env_var`; only used with `env_var`."
            ),
            "mount_path": string(
                "Directory where the secret's keys are mounted as files.",
                examples=["/secrets"],
            ),
            "env_var": string("Environment variable that receives the value of `key`."),
        },
    )


def build_spec_def() -> Schema:
    return record(
        "Build spec",
        "1.x build pipelines (1.11-1.13): `pachctl` builds the code at `path` on a base image "
        "chosen by `language` or `image`.",
        {
            "path": string(
                "Directory holding the source code, relative to the spec file. Default `.`.",
                default=".",
            ),
            "language": string(
                "Language of the build base image (`pachyderm/<language>-build`), e.g. `go` "
                "or `python`. Set either `language` or `image`.",
                examples=["python", "go"],
            ),
            "image": string("Custom build base image, used instead of `language`."),
        },
    )


def parallelism_spec_def() -> Schema:
    return record(
        "Parallelism spec",
        "How many workers a pipeline runs. Unset or all zero means 1 worker.",
        {
            "constant": uint64(
                "Number of workers. Default 1 (0 also means 1). May be written as a string, "
                'e.g. `"1"`.',
                default=1,
            ),
            "coefficient": double(
                "1.x only: workers per Kubernetes node (workers = coefficient x nodes, at least "
                "1); cannot be combined with `constant`. Default 0 (unused).",
                default=0,
            ),
            "strategy": {
                "type": ["string", "integer"],
                "enum": ["CONSTANT", "COEFFICIENT", 0, 1],
                "description": (
                    "1.4.0-1.4.8 only (removed in 1.5.0): which of `constant` (`CONSTANT`, the "
                    "default) and `coefficient` (`COEFFICIENT`) applies; the other is ignored. "
                    "`CONSTANT` without a positive `constant` means one worker per node."
                ),
            },
        },
    )


def hashtree_spec_def() -> Schema:
    return record(
        "Hashtree spec",
        "1.x only (1.7.11-1.13): sharding of the output hashtree.",
        {"constant": uint64("Number of output hashtree shards; must be positive if set.")},
    )


def chunk_spec_def() -> Schema:
    return record(
        "Chunk spec",
        "1.x only: size of the unit of work a worker claims.",
        {
            "number": int64(
                "Number of datums in each chunk a worker claims at a time. Default 2 (docs).",
                default=2,
            ),
            "size_bytes": int64(
                "Target size, in bytes of input data, of each chunk (instead of a datum count)."
            ),
        },
    )


def datum_set_spec_def() -> Schema:
    return record(
        "Datum set spec",
        "2.x only: how datums are grouped into datum sets, the unit of work a worker claims. "
        "Unset: (datums - skipped) / (workers x 4), at least 1 datum per set.",
        {
            "number": int64("Number of datums in each datum set."),
            "size_bytes": int64("Target size, in bytes of input data, of each datum set."),
            "per_worker": int64(
                "Number of datum sets per worker; cannot be combined with `number` or `size_bytes`."
            ),
        },
    )


def resource_spec_def() -> Schema:
    return record(
        "Resource spec",
        "Kubernetes resources of a container: CPU, memory, GPU and disk.",
        {
            "cpu": double(
                "Number of CPU cores; fractions are allowed (`0.5` = 500m).",
                examples=[0.5, 2],
            ),
            "memory": string(
                "Memory, as a Kubernetes quantity.",
                examples=["512Mi", "2G"],
            ),
            "gpu": {
                "anyOf": [
                    int64("Number of NVIDIA GPUs (1.x up to 1.8.1)."),
                    {"$ref": "#/$defs/gpu_spec"},
                ],
                "description": (
                    'GPUs, as an object such as `{"type": "nvidia.com/gpu", "number": 1}` '
                    "(1.8.2+), or a plain number in 1.x up to 1.8.1."
                ),
            },
            "disk": string(
                "Ephemeral disk space, as a Kubernetes quantity (1.7.10+).",
                examples=["10Gi"],
            ),
        },
    )


def gpu_spec_def() -> Schema:
    return record(
        "GPU spec",
        "GPUs requested for a container (1.8.2+).",
        {
            "type": string(
                "Kubernetes GPU resource name.",
                examples=["nvidia.com/gpu", "amd.com/gpu"],
            ),
            "number": int64("Number of GPUs.", examples=[1]),
        },
    )


def input_def() -> Schema:
    return record(
        "Input",
        'A pipeline input. Exactly one member must be set (Pachyderm rejects "multiple input '
        'types"); `cross`, `union`, `join` and `group` combine further inputs.',
        {
            "pfs": ref(
                "pfs_input",
                "Files of a branch of a Pachyderm repo, split into datums by a glob pattern "
                "(1.8.1+; replaces `atom`).",
            ),
            "atom": ref(
                "pfs_input",
                "Deprecated 1.x name of `pfs` (1.4.6-1.8.8), rejected from 1.9.0 on. Same "
                "fields as `pfs`.",
                deprecated=True,
            ),
            "cross": array_of(
                "input",
                "Cartesian product: every combination of one datum from each member forms "
                "one datum. Member names must be unique.",
            ),
            "union": array_of(
                "input",
                "Concatenation: the datums of each member, one member at a time. Names may "
                "repeat between members.",
            ),
            "join": array_of(
                "input",
                "Combines the files of the members whose `join_on` keys are equal into one "
                "datum, like a SQL join (1.9.5+). S3 inputs are not allowed.",
            ),
            "group": array_of(
                "input",
                "Pools the files of all members that share the same `group_by` key into one "
                "datum (1.11.5+). S3 inputs are not allowed.",
            ),
            "cron": ref(
                "cron_input",
                "Runs the pipeline on a schedule: at every tick Pachyderm commits a time file to "
                "a cron repo, which starts a job.",
            ),
            "git": ref(
                "git_input",
                "Deprecated, 1.x only (1.6.4-1.13): processes pushes to a GitHub repository, "
                "received through a webhook. Removed in 2.0.",
                deprecated=True,
            ),
        },
    )


def pfs_input_def() -> Schema:
    return record(
        "PFS input",
        "A `pfs` (or 1.x `atom`) input: the files of a branch of a Pachyderm repo, split into "
        "datums by `glob`.",
        {
            "name": string(
                "Name of the input: files appear under `/pfs/<name>` and the environment "
                "variable `<name>` holds the datum's path. Default: the repo name. Must be "
                "unique within a cross, join or group, and must not be `out`."
            ),
            "project": string(
                "Project of the input repo, for cross-project inputs. Default: the pipeline's "
                "project. 2.x only (2.5+)."
            ),
            "repo": string("Name of the Pachyderm repo to read. Required.", examples=["images"]),
            "repo_type": string(
                "Internal: type of the input repo (`user`, `meta` or `spec`). Default `user`; "
                "normally left unset. 2.x only.",
                default="user",
            ),
            "branch": string(
                "Branch to watch; each new commit on it starts a job. Default `master` (with a "
                "`trigger` and no branch: an automatically managed branch).",
                default="master",
            ),
            "commit": string(
                "Internal: the input commit, filled in for each job. 2.x rejects a commit "
                "given here (point a branch at it instead)."
            ),
            "glob": string(
                "Glob pattern that splits the repo into datums, one per match: `/` makes the "
                "whole repo one datum, `/*` one datum per top-level file or directory. "
                "Required, except for S3 inputs.",
                examples=["/", "/*", "/data/*.csv"],
            ),
            "join_on": string(
                "Join key, made from the glob's capture groups (`$1`, `${1}`, `$1$2`): in a "
                "`join`, files with equal keys are processed together. Default empty (1.9.5+).",
                default="",
                examples=["$1"],
            ),
            "outer_join": boolean(
                "In a `join`, also produce datums for this input's files that match nothing "
                "in the other inputs (outer join). Default false (1.11.8+)."
            ),
            "group_by": string(
                "Group key, made from the glob's capture groups (`$1`, ...): in a `group`, "
                "files with equal keys form one datum. Default empty (1.11.5+).",
                default="",
                examples=["$1"],
            ),
            "lazy": boolean(
                "If true, input files are named pipes that are only downloaded when read, "
                "which saves time when the code reads few of them (no seeking). Default false."
            ),
            "empty_files": boolean(
                "If true, input files appear as empty files, for 'shuffle' pipelines that only "
                "symlink them into `/pfs/out`. Default false; not with `s3`."
            ),
            "s3": boolean(
                "If true, the input is not copied into `/pfs` but served by an S3 gateway "
                "(one bucket per input); the glob must then be `/`. Default false (1.10+)."
            ),
            "trigger": ref(
                "trigger",
                "Deferred processing: the watched branch only moves forward, and a job only "
                "starts, when the trigger's conditions hold, e.g. after N commits or M bytes "
                "(1.11.4+).",
            ),
            "propagation_spec": ref(
                "propagation_spec",
                "Whether commits on this input propagate to new jobs. Undocumented; 2.12-dev only.",
            ),
            "reference": boolean(
                "If true, this input is left out of the datum hash, so a change to it alone "
                "does not reprocess datums that were already processed. 2.12-dev only; "
                "default false."
            ),
            "from_commit": string(
                "Legacy `atom` field (up to 1.6.10): only process data committed after this "
                "commit. Removed in 1.7.",
                deprecated=True,
            ),
        },
        required=["repo"],
    )


def trigger_def() -> Schema:
    return record(
        "Trigger",
        "Conditions on `branch` that must hold before the input's branch is moved to its "
        "head, starting a job (1.11.4+). The meaning of `cron_spec` changed in 2.8.",
        {
            "branch": string(
                "Branch whose new commits are counted; when the conditions hold, the input's "
                "branch is moved to this branch's head. Default `master`.",
                default="master",
            ),
            "all": boolean(
                "If true, all the conditions must hold (AND); otherwise any one of them is "
                "enough (OR). Default false."
            ),
            "rate_limit_spec": string(
                "Cron expression: fire once the schedule has passed since the last trigger and "
                "there is a new commit (what `cron_spec` meant before 2.8). 2.x only (2.8+).",
                examples=["@every 1h"],
            ),
            "size": string(
                "Fire once this much new data has been committed since the last trigger, as a "
                "size such as `1M` or `500K`.",
                examples=["1M", "1G"],
            ),
            "commits": int64(
                "Fire once this many new commits have arrived since the last trigger.",
                examples=[10],
            ),
            "cron_spec": string(
                "Cron expression. In 1.x and up to 2.7: fire once the schedule has passed since "
                "the last trigger and there is a new commit. From 2.8: fire on the schedule "
                "itself, ignoring the other conditions.",
                examples=["@daily", "0 * * * *"],
            ),
        },
    )


def propagation_spec_def() -> Schema:
    return record(
        "Propagation spec",
        "2.12-dev conditional propagation of an input's commits (undocumented; semantics "
        "unconfirmed).",
        {
            "never": boolean(
                "If true, commits on this input are not propagated to new jobs. Default false."
            )
        },
    )


def cron_input_def() -> Schema:
    return record(
        "Cron input",
        "A schedule: at each tick Pachyderm writes a time file into a cron repo, which starts "
        "a job.",
        {
            "name": string(
                "Name of the input; the tick file appears under `/pfs/<name>`. Required.",
                examples=["tick"],
            ),
            "project": string(
                "Project of the cron repo. Default: the pipeline's project. 2.x only (2.5+)."
            ),
            "repo": string(
                "Repo Pachyderm creates and writes the ticks into. Default `<pipeline>_<name>`."
            ),
            "commit": string("Internal: filled in by Pachyderm; leave unset."),
            "spec": string(
                "Schedule, in cron syntax or as a shortcut such as `@daily` or "
                "`@every 1h30m`. Required.",
                examples=["@every 1h", "*/10 * * * *", "@daily"],
            ),
            "overwrite": boolean(
                "If true, each tick replaces the previous tick file, so there is only one "
                "datum; if false, each tick adds a file named after its time. Default false "
                "(1.8.6+)."
            ),
            "start": string(
                "Time from which ticks are counted, as an RFC 3339 timestamp; a past time "
                "back-fills the missed ticks. Default: when the pipeline is created.",
                examples=["2024-01-01T00:00:00Z"],
            ),
        },
        required=["name", "spec"],
    )


def git_input_def() -> Schema:
    return record(
        "Git input",
        "Deprecated, 1.x only (1.6.4-1.13): pushes to a GitHub repository, received through "
        "a webhook; each datum is a checkout of the pushed commit.",
        {
            "name": string(
                "Name of the input (`/pfs/<name>`). Default: the repository name without `.git`."
            ),
            "url": string(
                "HTTPS clone URL of the GitHub repository. This is the key Pachyderm's parser "
                "accepts.",
                examples=["https://github.com/org/repo.git"],
            ),
            "URL": string(
                "Spelling of `url` shown in the 1.x reference docs; Pachyderm's parser itself "
                "only accepts `url`.",
                deprecated=True,
            ),
            "branch": string("Branch whose pushes start jobs. Default `master`.", default="master"),
            "commit": string("Internal: filled in by Pachyderm; leave unset."),
        },
    )


def egress_def() -> Schema:
    return record(
        "Egress",
        "Where each finished output commit is copied before the job succeeds. Set one of "
        "`URL`, `object_storage` or `sql_database`.",
        {
            "URL": string(
                "Object-storage URL the output is copied to (S3, GCS or Azure).",
                examples=["s3://bucket/dir"],
            ),
            "object_storage": ref(
                "object_storage_egress",
                "Copy the output to object storage; the object form of `URL`. 2.x only (2.2+).",
            ),
            "sql_database": ref(
                "sql_database_egress",
                "Load the output files (CSV, JSON or Parquet) into an SQL database such as "
                "Snowflake or PostgreSQL. 2.x only (2.2+).",
            ),
        },
    )


def object_storage_egress_def() -> Schema:
    return record(
        "Object storage egress",
        "Egress to object storage (2.2+).",
        {
            "url": string(
                "Destination URL.",
                examples=["s3://bucket/dir", "gs://bucket/dir"],
            )
        },
    )


def sql_database_egress_def() -> Schema:
    return record(
        "SQL database egress",
        "Egress into an SQL database (2.2+).",
        {
            "url": string(
                "Database URL, without the password (that comes from `secret`).",
                examples=["snowflake://user@account/db/schema?warehouse=wh"],
            ),
            "file_format": ref(
                "sql_file_format", "Format and column order of the output files to load."
            ),
            "secret": ref("sql_secret", "Kubernetes secret holding the database password."),
        },
    )


def sql_file_format_def() -> Schema:
    return record(
        "SQL egress file format",
        "Format of the files loaded by SQL egress.",
        {
            "type": {
                "type": "string",
                "enum": ["CSV", "JSON", "PARQUET"],
                "description": "File format: `CSV`, `JSON` or `PARQUET`.",
            },
            "columns": string_list(
                "Column names, in the order in which the values appear in the files."
            ),
        },
    )


def sql_secret_def() -> Schema:
    return record(
        "SQL egress secret",
        "A key of a Kubernetes secret holding a database password.",
        {
            "name": string("Name of the Kubernetes secret."),
            "key": string("Key in the secret whose value is the database password."),
        },
    )


def service_def() -> Schema:
    return record(
        "Service",
        "A Kubernetes Service exposing a long-running pipeline (or a spout).",
        {
            "internal_port": int32(
                "Port the code listens on inside the worker pod.", examples=[8888]
            ),
            "external_port": int32(
                "Port exposed by the Kubernetes Service; with the default `NodePort` type it "
                "must be in 30000-32767.",
                examples=[30888],
            ),
            "ip": string(
                "Output only: the address Pachyderm reports for the service when the pipeline "
                "is inspected. Leave unset (1.7+)."
            ),
            "type": string(
                "Kubernetes Service type: `NodePort`, `ClusterIP` or `LoadBalancer`. Default "
                "`NodePort` (1.9+).",
                default="NodePort",
                examples=["NodePort", "ClusterIP", "LoadBalancer"],
            ),
            "annotations": string_map(
                "Kubernetes annotations added to the service's pods. 1.9.x only."
            ),
        },
    )


def spout_def() -> Schema:
    return record(
        "Spout",
        "Spout settings; `{}` is a valid spout. 1.x spouts (up to 1.11) write tar streams to "
        "the named pipe `/pfs/out`; 1.12+ and 2.x spouts commit with `pachctl` or an SDK.",
        {
            "overwrite": boolean(
                "1.x only: if true, each commit replaces the output repo's content instead of "
                "adding to it. Default false."
            ),
            "marker": string(
                "1.x only (1.9.12+): name of a marker (file or directory) the spout saves with "
                "its output and can read back under `/pfs` after a restart, to resume where it "
                "stopped."
            ),
            "service": ref(
                "service", "Also expose the spout through a Kubernetes Service (1.9.1+)."
            ),
        },
    )


def scheduling_spec_def() -> Schema:
    return record(
        "Scheduling spec",
        "Kubernetes scheduling settings of the worker pods (1.7.10+).",
        {
            "node_selector": string_map(
                "Node labels the worker pods must run on.", examples=[{"disktype": "ssd"}]
            ),
            "priority_class_name": string("Kubernetes PriorityClass of the worker pods."),
        },
    )


def metadata_def() -> Schema:
    return record(
        "Metadata",
        "Kubernetes metadata added to the worker pods (1.10+).",
        {
            "labels": string_map("Kubernetes labels added to the worker pods."),
            "annotations": string_map("Kubernetes annotations added to the worker pods."),
        },
    )


def toleration_def() -> Schema:
    return record(
        "Toleration",
        "A Kubernetes toleration of the worker pods (2.5+).",
        {
            "key": string(
                "Taint key the toleration applies to; empty matches every key (with operator "
                "`EXISTS`)."
            ),
            "operator": {
                "type": "string",
                "enum": ["EXISTS", "EQUAL", "EMPTY"],
                "description": (
                    "`EXISTS`: any value of the key matches; `EQUAL`: the value must equal "
                    "`value`; `EMPTY`: not set."
                ),
            },
            "value": string("Taint value to match when the operator is `EQUAL`."),
            "effect": {
                "type": "string",
                "enum": ["NO_SCHEDULE", "PREFER_NO_SCHEDULE", "NO_EXECUTE", "ALL_EFFECTS"],
                "description": (
                    "Taint effect tolerated: `NO_SCHEDULE`, `PREFER_NO_SCHEDULE`, "
                    "`NO_EXECUTE`, or `ALL_EFFECTS` for any."
                ),
            },
            "toleration_seconds": int64(
                "For `NO_EXECUTE` taints: how many seconds the pod may keep running once the "
                "taint appears. Unset: forever."
            ),
        },
    )


def tf_job_def() -> Schema:
    return record(
        "TFJob",
        "A Kubeflow TFJob run in place of a transform (1.9.8+).",
        {
            "tf_job": string(
                "The Kubeflow TFJob manifest, as a string; Pachyderm submits it to Kubeflow "
                "instead of creating its own workers."
            )
        },
    )


def determined_def() -> Schema:
    return record(
        "Determined",
        "HPE Determined integration (2.7+).",
        {"workspaces": string_list("Names of the Determined workspaces the pipeline can use.")},
    )


DEFINITIONS: dict[str, Callable[[], Schema]] = {
    "pipeline": pipeline_def,
    "pipeline_id": pipeline_id_def,
    "project": project_def,
    "transform": transform_def,
    "secret": secret_def,
    "build_spec": build_spec_def,
    "parallelism_spec": parallelism_spec_def,
    "hashtree_spec": hashtree_spec_def,
    "chunk_spec": chunk_spec_def,
    "datum_set_spec": datum_set_spec_def,
    "resource_spec": resource_spec_def,
    "gpu_spec": gpu_spec_def,
    "input": input_def,
    "pfs_input": pfs_input_def,
    "trigger": trigger_def,
    "propagation_spec": propagation_spec_def,
    "cron_input": cron_input_def,
    "git_input": git_input_def,
    "egress": egress_def,
    "object_storage_egress": object_storage_egress_def,
    "sql_database_egress": sql_database_egress_def,
    "sql_file_format": sql_file_format_def,
    "sql_secret": sql_secret_def,
    "service": service_def,
    "spout": spout_def,
    "scheduling_spec": scheduling_spec_def,
    "metadata": metadata_def,
    "toleration": toleration_def,
    "tf_job": tf_job_def,
    "determined": determined_def,
}


# --------------------------------------------------------------------------------------
# lowerCamel twins
# --------------------------------------------------------------------------------------


def lower_camel(name: str) -> str:
    """protoc's JSON name: drop each `_` and upper-case the next character (`URL` stays)."""
    return re.sub(r"_(.)", lambda m: m.group(1).upper(), name)


def with_camel_twins(properties: dict[str, Schema]) -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for name, sub in properties.items():
        out[name] = sub
        camel = lower_camel(name)
        if camel != name:
            twin = dict(sub)
            twin["description"] = f"lowerCamel spelling of `{name}`. {sub['description']}"
            out[camel] = twin
    return out


def add_camel_twins(schema: Schema) -> Schema:
    out: Schema = {}
    for key, value in schema.items():
        if key == "properties":
            value = with_camel_twins({k: add_camel_twins(v) for k, v in value.items()})
        elif key in ("patternProperties", "$defs"):
            value = {k: add_camel_twins(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            value = add_camel_twins(value)
        elif key == "anyOf":
            value = [add_camel_twins(v) for v in value]
        out[key] = value
    return out


def build_schema() -> Schema:
    defs = {name: make() for name, make in DEFINITIONS.items()}
    root: Schema = {
        "$schema": DIALECT,
        "title": "Pachyderm pipeline spec",
        "description": (
            "A Pachyderm pipeline specification, 1.x or 2.x dialect, as accepted by dsc. A file "
            "holds one spec or an array of specs. Every key may be written in snake_case "
            "(`parallelism_spec`) or lowerCamel (`parallelismSpec`); unknown keys are errors."
        ),
        "anyOf": [
            {"$ref": "#/$defs/pipeline"},
            {"type": "array", "items": {"$ref": "#/$defs/pipeline"}},
        ],
        "$defs": defs,
    }
    return add_camel_twins(root)


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


# --------------------------------------------------------------------------------------
# Lint
# --------------------------------------------------------------------------------------


def subschemas(schema: Schema, path: str) -> Iterator[tuple[str, Schema]]:
    """Every schema object under `schema` (itself included), with its JSON pointer."""
    yield path, schema
    for key in ("properties", "patternProperties", "$defs"):
        for name, sub in schema.get(key, {}).items():
            yield from subschemas(sub, f"{path}/{key}/{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from subschemas(schema[key], f"{path}/{key}")
    for i, sub in enumerate(schema.get("anyOf", [])):
        yield from subschemas(sub, f"{path}/anyOf/{i}")


def lint(schema: Schema) -> list[str]:
    problems: list[str] = []
    defs: dict[str, Schema] = schema.get("$defs", {})
    referenced: set[str] = set()
    if schema.get("$schema") != DIALECT:
        problems.append(f"/$schema: must be {DIALECT}")
    for path, sub in subschemas(schema, "#"):
        if not isinstance(sub, dict):
            problems.append(f"{path}: a schema must be an object")
            continue
        for key in sub:
            if key not in ALLOWED_KEYWORDS:
                problems.append(f"{path}: keyword {key!r} is not supported by dsc's evaluator")
        if "$schema" in sub and path != "#":
            problems.append(f"{path}: $schema is only allowed at the root")
        if "$ref" in sub:
            match = REF_PATTERN.match(sub["$ref"])
            if not match or match.group(1) not in defs:
                problems.append(f"{path}: bad $ref {sub['$ref']!r}")
            else:
                referenced.add(match.group(1))
        types = sub.get("type", [])
        for type_name in types if isinstance(types, list) else [types]:
            if type_name not in JSON_TYPES:
                problems.append(f"{path}: unknown type {type_name!r}")
        if "pattern" in sub:
            try:
                re.compile(sub["pattern"])
            except re.error as exc:
                problems.append(f"{path}: bad pattern: {exc}")
        properties: dict[str, Schema] = sub.get("properties", {})
        if properties and sub.get("additionalProperties") is not False:
            problems.append(f"{path}: fixed-key object without additionalProperties: false")
        for name in sub.get("required", []):
            if name not in properties:
                problems.append(f"{path}: required key {name!r} is not a property")
        for name, prop in properties.items():
            description = prop.get("description")
            if not isinstance(description, str) or not description.strip():
                problems.append(f"{path}/properties/{name}: missing description")
            camel = lower_camel(name)
            if camel != name:
                twin = properties.get(camel)
                strip = {k: v for k, v in prop.items() if k != "description"}
                if twin is None or {k: v for k, v in twin.items() if k != "description"} != strip:
                    problems.append(f"{path}/properties/{name}: no matching lowerCamel {camel!r}")
    for name in defs:
        if name not in referenced:
            problems.append(f"#/$defs/{name}: never referenced")
    return problems


def count_properties(schema: Schema) -> int:
    return sum(len(sub.get("properties", {})) for _, sub in subschemas(schema, "#"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the schema is invalid or the file on disk is stale",
    )
    args = parser.parse_args(argv)

    schema = build_schema()
    problems = lint(schema)
    for problem in problems:
        print(f"schema lint: {problem}", file=sys.stderr)
    if problems:
        return 1
    text = render(schema)
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else None
        if current != text:
            print(
                f"{OUTPUT} is out of date; run: python schemas/build_pipeline_schema.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(
        f"wrote {OUTPUT} ({len(schema['$defs'])} definitions, "
        f"{count_properties(schema)} properties)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
