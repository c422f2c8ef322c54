"""Measure the two performance targets of the `dsc lint` issue and print a Markdown report.

1. Throughput: `dsc lint -q -o json` over the reference corpus (every .json/.yaml spec; the
   .jsonnet templates and INDEX.md are left out because check-jsonschema cannot read them)
   plus N generated specs, against `check-jsonschema --schemafile schemas/pipeline.schema.json`
   over the same files. One process each, run alternately (A, B, A, B, ...); the target is
   median(B) / median(A) >= 3.
2. Cold single file: `dsc lint FILE` from a fresh process for one JSON and one YAML spec,
   next to `python -c pass` (the interpreter floor); the target is median wall <= 120 ms and
   peak RSS <= 40 MiB.

Every measured command is started by a fresh, tiny Python wrapper that forks, execs the
command and reads the command's own rusage with os.wait4. The wrapper is needed because a
child's ru_maxrss starts at the RSS of the process it was forked (or vfork-spawned) from, so
spawning straight from this script would report this script's footprint as the child's peak.
Wall time is taken inside the wrapper, around fork/exec/wait only. "Cold" means a fresh
process; the page cache is warm (untimed warm-up runs come first; dropping caches needs root).

Both benchmarks run in two bytecode modes (`--bytecode`): `cached`, where every interpreter
reads .pyc from a cache in the temporary directory (PYTHONPYCACHEPREFIX), as a pip-installed
dsc would; and `as-is`, the environment unchanged. They differ when PYTHONDONTWRITEBYTECODE is
set: then the editable-installed dsc compiles its own modules from source on every start,
while check-jsonschema's site-packages already hold pip-compiled .pyc.

The script writes nothing in the repository; generated specs, the bytecode cache and command
output go to a temporary directory. It exits 0 whether or not a target is met (each target
is reported PASS or MISS) and 2 only when a measurement could not be made (a command missing
or failing in an unexpected way, or a tool not processing every file).

Standard library only. Run it with `.venv/bin/python bench/lint_bench.py` from the repository.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    MeasurementError,
    Mode,
    Series,
    add_run_options,
    machine_facts,
    measure,
    mib,
    missing_executables,
    modes,
    ms,
    progress,
    rel,
    report_head,
    run_report,
    sec,
    table,
    tool_output,
    verdict,
)

DEFAULT_CORPUS = Path("/work/shared/reference/pachyderm/corpus")
DEFAULT_COLD_JSON = Path("examples/hyperparameter/pipelines/split.json")

TARGET_RATIO = 3.0
TARGET_COLD_MS = 120.0
TARGET_RSS_MIB = 40.0

# --------------------------------------------------------------------------------------------
# Generated specs


WORDS = ["edges", "montage", "train", "model", "split", "select", "features", "clean",
         "ingest", "report", "etl", "aggregate", "enrich", "score", "predict", "tokenize",
         "resize", "thumbnails", "dedupe", "reduce", "map", "stats", "export", "validate",
         "normalize", "shard", "merge", "archive", "detect", "label", "embed", "index"]
REPOS = ["images", "raw-data", "training", "parameters", "stores", "returns", "purchases",
         "logs", "events", "customers", "sensors", "labs", "patients", "documents", "videos"]
IMAGES = ["pachyderm/opencv:1.0", "python:3.11-slim", "ubuntu:20.04", "alpine:3.18",
          "pachyderm/example-joins-inner-outer:2.1.0", "tensorflow/tensorflow:2.12.0",
          "dwhitena/go-train:1.0", "pskreter/iris-train:1.0.0", "pachyderm/mnist_pipeline:v1.0.1",
          "registry.example.com/ml/scorer@sha256:" + "ab12" * 16, "pachyderm/opencv",
          "golang:1.21", "r-base:4.3.1", "continuumio/miniconda3:23.5.2-0"]
GLOBS = ["/", "/*", "/*/*", "/**", "/*.csv", "/train.csv", "/c_parameters.txt/*", "/*/*.json"]
JOIN_GLOBS = [("/STOREID(*).txt", "/*_STOREID(*).txt"), ("/(*).csv", "/(*)/*.json"),
              ("/*-PATID(*)-*.txt", "/PATID(*).txt")]
CRONS = ["@every 1h", "@every 30s", "*/10 * * * *", "@daily", "0 2 * * 1-5", "@every 1h30m"]
SHELL = ["cd /pfs/{repo}", "for f in /pfs/{repo}/*; do", "  python /code/run.py \"$f\" /pfs/out/",
         "done", "echo processed $(ls /pfs/{repo} | wc -l) files",
         "cp -r /pfs/{repo}/. /tmp/work/", "tar -czf /pfs/out/{name}.tgz -C /tmp/work .",
         "find /pfs/{repo} -type f -name '*.csv' | xargs -n1 /code/ingest --out /pfs/out"]
CAMEL = {"parallelism_spec": "parallelismSpec", "resource_requests": "resourceRequests",
         "resource_limits": "resourceLimits", "output_branch": "outputBranch",
         "datum_tries": "datumTries", "join_on": "joinOn", "outer_join": "outerJoin",
         "group_by": "groupBy", "empty_files": "emptyFiles",
         "image_pull_secrets": "imagePullSecrets", "env_var": "envVar",
         "datum_timeout": "datumTimeout", "job_timeout": "jobTimeout",
         "reprocess_spec": "reprocessSpec", "scheduling_spec": "schedulingSpec",
         "node_selector": "nodeSelector", "s3_out": "s3Out"}
ERROR_KINDS = ["unknown-key", "wrong-type", "missing-name", "cmd-string", "syntax",
               "two-inputs", "bad-cron", "duplicate-key", "bad-glob", "negative-parallelism"]


@dataclass(slots=True)
class GenStats:
    json_files: int = 0
    yaml_files: int = 0
    v1_atom: int = 0
    v2_pfs: int = 0
    camel: int = 0
    arrays: int = 0
    shapes: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=list)


class SpecGenerator:
    """Deterministic Pachyderm-like specs: 1.x (`atom`) and 2.x (`pfs`), JSON and YAML."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.names: list[str] = []
        self.stats = GenStats()

    def _name(self) -> str:
        while True:
            name = f"{self.rng.choice(WORDS)}-{self.rng.choice(WORDS)}"
            if self.rng.random() < 0.3:
                name += f"-{self.rng.randint(2, 9)}"
            if name not in self.names:
                self.names.append(name)
                return name

    def _repo(self, taken: set[str]) -> str:
        # Half the inputs read an earlier pipeline's output (a DAG: no cycles); the inputs of
        # one pipeline read distinct repos, so their /pfs/<name> mounts do not collide.
        while True:
            earlier = self.names[:-1]
            if earlier and self.rng.random() < 0.5:
                repo = self.rng.choice(earlier)
            else:
                repo = self.rng.choice(REPOS)
            if repo not in taken:
                taken.add(repo)
                return repo

    def _leaf(self, key: str, taken: set[str], glob: str | None = None) -> dict[str, Any]:
        repo = self._repo(taken)
        leaf: dict[str, Any] = {"repo": repo, "glob": glob or self.rng.choice(GLOBS)}
        if self.rng.random() < 0.3:
            leaf = {"name": f"{repo}-in", **leaf}
        if self.rng.random() < 0.25:
            leaf["branch"] = self.rng.choice(["master", "staging", "release"])
        if key == "pfs" and self.rng.random() < 0.1:
            leaf["lazy"] = True
        if self.rng.random() < 0.08:
            leaf["empty_files"] = True
        return {key: leaf}

    def _input(self, v1: bool) -> tuple[str, dict[str, Any]]:
        key = "atom" if v1 else "pfs"
        rng = self.rng
        shapes = (["single", "cross", "union"], [45, 35, 20]) if v1 else (
            ["single", "cross", "union", "join", "group", "cron", "nested"],
            [35, 15, 10, 15, 10, 10, 5])
        shape = rng.choices(*shapes)[0]
        taken: set[str] = set()
        if shape == "single":
            return shape, self._leaf(key, taken)
        if shape in ("cross", "union"):
            return shape, {shape: [self._leaf(key, taken) for _ in range(rng.randint(2, 3))]}
        if shape in ("join", "group"):
            globs = rng.choice(JOIN_GLOBS)
            leaves = [self._leaf(key, taken, g) for g in globs]
            for leaf in leaves:
                if shape == "join":
                    leaf[key]["join_on"] = "$1"
                    if rng.random() < 0.4:
                        leaf[key]["outer_join"] = True
                else:
                    leaf[key]["group_by"] = "$1"
            return shape, {shape: leaves}
        if shape == "cron":
            cron: dict[str, Any] = {"name": "tick", "spec": rng.choice(CRONS)}
            if rng.random() < 0.5:
                cron["overwrite"] = True
            if rng.random() < 0.5:
                return shape, {"cross": [{"cron": cron}, self._leaf(key, taken)]}
            return shape, {"cron": cron}
        union = {"union": [self._leaf(key, taken) for _ in range(2)]}
        return shape, {"cross": [union, self._leaf(key, taken)]}

    def _transform(self, name: str, repo: str) -> dict[str, Any]:
        rng = self.rng
        transform: dict[str, Any] = {}
        if rng.random() < 0.93:
            transform["image"] = rng.choice(IMAGES)
        if rng.random() < 0.55:
            transform["cmd"] = rng.choice([["sh"], ["bash"], ["/bin/ash"]])
            picked = sorted(rng.sample(range(len(SHELL)), rng.randint(1, 6)))
            transform["stdin"] = [SHELL[i].format(repo=repo, name=name) for i in picked]
        else:
            transform["cmd"] = ["python3", f"/code/{name.replace('-', '_')}.py",
                                f"/pfs/{repo}", "/pfs/out"]
        if rng.random() < 0.3:
            transform["env"] = {"LOG_LEVEL": rng.choice(["info", "debug"]),
                                "BATCH_SIZE": str(rng.choice([16, 32, 64]))}
        if rng.random() < 0.15:
            transform["secrets"] = [{"name": "s3-credentials", "env_var": "AWS_SECRET_KEY",
                                     "key": "secret_key"}]
        if rng.random() < 0.1:
            transform["image_pull_secrets"] = ["regcred"]
        return transform

    def spec(self, v1: bool) -> dict[str, Any]:
        rng = self.rng
        name = self._name()
        shape, inp = self._input(v1)
        self.stats.shapes[shape] = self.stats.shapes.get(shape, 0) + 1
        first_repo = re.search(r"'repo': '([^']+)'", repr(inp))
        spec: dict[str, Any] = {"pipeline": {"name": name}}
        if rng.random() < 0.6:
            spec["description"] = (f"A pipeline that runs {name.replace('-', ' ')} over "
                                   f"{first_repo.group(1) if first_repo else 'a schedule'}.")
        spec["transform"] = self._transform(name, first_repo.group(1) if first_repo else "tick")
        if rng.random() < 0.5:
            constant: int | str = rng.randint(1, 8)
            if v1 and rng.random() < 0.5:
                constant = str(constant)
            if v1 and rng.random() < 0.15:
                spec["parallelism_spec"] = {"coefficient": rng.choice([0.5, 1, 2])}
            else:
                spec["parallelism_spec"] = {"constant": constant}
        spec["input"] = inp
        if rng.random() < 0.25:
            spec["resource_requests"] = {"memory": rng.choice(["512M", "1G", "4Gi"]),
                                         "cpu": rng.choice([0.5, 1, 2])}
        if rng.random() < 0.1:
            spec["resource_limits"] = {"gpu": {"type": "nvidia.com/gpu", "number": 1},
                                       "memory": "8G"}
        if rng.random() < 0.1:
            spec["output_branch"] = "master"
        if rng.random() < 0.1:
            spec["datum_tries"] = rng.choice([1, 3, 5])
        if rng.random() < 0.08:
            spec["scheduling_spec"] = {"node_selector": {"pool": "highmem"}}
        if v1:
            if rng.random() < 0.2:
                spec["enable_stats"] = True
            if rng.random() < 0.15:
                spec["standby"] = True
        else:
            if rng.random() < 0.15:
                spec["autoscaling"] = True
            if rng.random() < 0.1:
                spec["reprocess_spec"] = "until_success"
            if rng.random() < 0.1:
                spec["datum_timeout"] = rng.choice(["300s", "10m"])
                spec["job_timeout"] = "2h"
        return spec

    def inject_error(self, spec: dict[str, Any], kind: str) -> None:
        if kind == "unknown-key":
            spec["paralelism_spec"] = {"constant": 2}
        elif kind == "wrong-type":
            spec["parallelism_spec"] = {"constant": "two"}
        elif kind == "missing-name":
            spec["pipeline"] = {}
        elif kind == "cmd-string":
            spec["transform"]["cmd"] = "python3 /code/main.py"
        elif kind == "two-inputs":  # two input operators in one object
            extra = "union" if "union" not in spec["input"] else "cross"
            spec["input"][extra] = [{"pfs": {"repo": "extra", "glob": "/*"}},
                                    {"pfs": {"repo": "more", "glob": "/"}}]
        elif kind == "bad-cron":
            spec["input"] = {"cron": {"name": "tick", "spec": "every hour"}}
        elif kind == "bad-glob":
            spec["input"] = {"pfs": {"repo": "images", "glob": "/[abc*"}}
        elif kind == "negative-parallelism":
            spec["parallelism_spec"] = {"constant": -1}
        # "syntax" and "duplicate-key" are applied to the serialized text.

    def file(self, index: int, error: str | None) -> tuple[str, str]:
        """(file name, text) of generated file number `index`."""
        rng = self.rng
        v1 = rng.random() < 0.3
        camel = not v1 and rng.random() < 0.35
        as_yaml = rng.random() < 0.4
        count = 1 if as_yaml or error or rng.random() > 0.05 else rng.randint(2, 3)
        specs = [self.spec(v1) for _ in range(count)]
        if error:
            self.inject_error(specs[0], error)
            self.stats.errors[error] = self.stats.errors.get(error, 0) + 1
        if camel:
            specs = [camelize(s) for s in specs]
        data: Any = specs[0] if count == 1 else specs
        if as_yaml:
            text = "".join(f"{line}\n" for line in to_yaml(data))
            if rng.random() < 0.3:
                text = f"# {specs[0]['pipeline'].get('name', 'pipeline')} pipeline\n{text}"
        else:
            text = json.dumps(data, indent=rng.choice([2, 2, 4])) + "\n"
        if error == "syntax":  # a tab indent in YAML, a trailing comma in JSON
            text = (text.replace("\n  ", "\n\t", 1) if as_yaml
                    else text.rstrip()[:-1].rstrip() + ",\n}\n")
        elif error == "duplicate-key":
            dup = ("\npipeline:\n  name: again\n" if as_yaml
                   else ',\n  "pipeline": {"name": "again"}\n}\n')
            text = text.rstrip() + "\n" if as_yaml else text.rstrip()[:-1].rstrip()
            text += dup
        era = "v1" if v1 else "v2"
        ext = "yaml" if as_yaml else "json"
        stats = self.stats
        stats.yaml_files += as_yaml
        stats.json_files += not as_yaml
        stats.v1_atom += v1
        stats.v2_pfs += not v1
        stats.camel += camel
        stats.arrays += count > 1
        stats.sizes.append(len(text.encode()))
        return f"gen-{index:03d}-{era}.{ext}", text


def camelize(value: Any) -> Any:
    if isinstance(value, dict):
        return {CAMEL.get(k, k): camelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camelize(v) for v in value]
    return value


_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(value: Any, indent: int = 0) -> list[str]:
    """Block-style YAML for JSON-like data (enough for pipeline specs; no PyYAML needed)."""
    pad = " " * indent
    if isinstance(value, dict):
        lines: list[str] = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines += to_yaml(item, indent + 2)
            else:
                flow = "{}" if isinstance(item, dict) else "[]" if isinstance(item, list) else None
                lines.append(f"{pad}{key}: {flow or _scalar(item)}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                sub = to_yaml(item, indent + 2)
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines += sub[1:]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return lines
    return [f"{pad}{_scalar(value)}"]


COLD_YAML = """\
# A small, valid 2.x spec for the cold-start measurement.
pipeline:
  name: edges
description: A pipeline that performs image edge detection with OpenCV.
transform:
  image: pachyderm/opencv:1.0
  cmd: [python3, /edges.py]
input:
  pfs:
    repo: images
    glob: "/*"
"""


def generate(directory: Path, count: int, seed: int) -> tuple[list[Path], GenStats]:
    gen = SpecGenerator(seed)
    n_errors = round(count * 0.1)
    error_at = dict(zip(sorted(gen.rng.sample(range(count), n_errors)),
                        (ERROR_KINDS[i % len(ERROR_KINDS)] for i in range(n_errors)),
                        strict=True))
    paths = []
    for i in range(count):
        name, text = gen.file(i, error_at.get(i))
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths, gen.stats


# --------------------------------------------------------------------------------------------
# Benchmarks


def dsc_files_processed(output: Path) -> int:
    try:
        return int(json.loads(output.read_text())["summary"]["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MeasurementError(f"dsc -o json output is not a lint report: {exc}") from None


def checkjs_files_processed(output: Path) -> tuple[int, int, int, int]:
    """(files, valid, invalid, unparsable) from check-jsonschema's `-o json -v` report."""
    try:
        report = json.loads(output.read_text())
        valid = set(report.get("successes", []))
        invalid = {e["filename"] for e in report.get("errors", [])}
        broken = {e["filename"] for e in report.get("parse_errors", [])}
    except (ValueError, KeyError, TypeError) as exc:
        raise MeasurementError(f"check-jsonschema -o json output is unreadable: {exc}") from None
    return len(valid | invalid | broken), len(valid), len(invalid), len(broken)


@dataclass(slots=True)
class Throughput:
    files: int
    dsc: Series
    checkjs: Series
    checkjs_census: tuple[int, int, int, int]
    dsc_census: dict[str, int]

    @property
    def ratio(self) -> float:
        return self.checkjs.median / self.dsc.median

    @property
    def pair_ratios(self) -> list[float]:
        return [b / a for a, b in zip(self.dsc.walls, self.checkjs.walls, strict=True)]


def run_throughput(dsc_argv: list[str], cj_argv: list[str], files: list[str], runs: int,
                   work: Path, mode: Mode) -> Throughput:
    n = len(files)
    # Untimed census runs count what each tool read (check-jsonschema's text output does not
    # list the files it found valid); with the untimed runs of the exact commands they also
    # warm the page cache and, in the cached mode, fill the bytecode cache.
    progress(f"[{mode.key}] throughput: census and warm-up runs over {n} files")
    measure(dsc_argv + files, work, "census-dsc", mode, (0, 1))
    census_report = json.loads((work / "census-dsc.out").read_text())
    dsc_census = {k: int(v) for k, v in census_report["summary"].items()}
    cj_census_argv = [cj_argv[0], "-o", "json", "-v", *cj_argv[1:], *files]
    measure(cj_census_argv, work, "census-cj", mode, (0, 1))
    cj_census = checkjs_files_processed(work / "census-cj.out")
    measure(dsc_argv + files, work, "dsc", mode, (0, 1))
    measure(cj_argv + files, work, "cj", mode, (0, 1))
    dsc_series, cj_series = Series("dsc"), Series("check-jsonschema")
    dsc_files: set[int] = set()
    for i in range(runs):
        progress(f"[{mode.key}] throughput: run {i + 1}/{runs}")
        dsc_series.samples.append(measure(dsc_argv + files, work, "dsc", mode, (0, 1)))
        dsc_files.add(dsc_files_processed(work / "dsc.out"))
        cj_series.samples.append(measure(cj_argv + files, work, "cj", mode, (0, 1)))
    if dsc_files != {n}:
        raise MeasurementError(f"dsc reported {sorted(dsc_files)} files processed, expected {n}")
    if cj_census[0] != n:
        raise MeasurementError(f"check-jsonschema accounted for {cj_census[0]} files, "
                               f"expected {n}")
    return Throughput(n, dsc_series, cj_series, cj_census, dsc_census)


def run_cold(commands: dict[str, list[str]], runs: int, work: Path,
             mode: Mode) -> dict[str, Series]:
    series = {label: Series(label) for label in commands}
    labels = list(commands)
    for label in labels:  # one untimed warm-up each (page cache; bytecode cache if cached)
        measure(commands[label], work, "cold-warmup", mode, (0, 1))
    for i in range(runs):
        if i % 10 == 0:
            progress(f"[{mode.key}] cold: run {i + 1}/{runs}")
        # Rotate the order so no command always runs right after the same neighbour.
        order = labels[i % len(labels):] + labels[:i % len(labels)]
        for label in order:
            series[label].samples.append(measure(commands[label], work, "cold", mode,
                                                 (0, 1)))
    return series


@dataclass(slots=True)
class ModeResult:
    mode: Mode
    thr: Throughput | None = None
    cold: dict[str, Series] | None = None


# --------------------------------------------------------------------------------------------
# Report


def _throughput_section(thr: Throughput, corpus_n: int, commands: dict[str, str]) -> list[str]:
    a, b = thr.dsc, thr.checkjs
    ratios = thr.pair_ratios
    out = [f"Throughput: {thr.files} files ({corpus_n} corpus .json/.yaml + "
           f"{thr.files - corpus_n} generated), {len(a.samples)} alternating runs each. "
           f"A = `{commands['A']}`, B = `{commands['B']}`.", ""]
    rows = []
    for label, s, files in (("A: dsc lint", a, str(thr.dsc_census["files"])),
                            ("B: check-jsonschema", b, str(thr.checkjs_census[0]))):
        rows.append([label, files, sec(s.median), sec(min(s.walls)), sec(max(s.walls)),
                     sec(s.median_cpu), mib(s.peak_rss_kib), s.exit_codes])
    out += table(["command", "files", "median wall", "min", "max", "median CPU", "peak RSS",
                  "exit"], rows)
    out += ["", f"Ratio B/A of the medians: **{thr.ratio:.2f}x** (target >= "
            f"{TARGET_RATIO:.0f}x: {verdict(thr.ratio >= TARGET_RATIO)}); ratio within each "
            f"A/B pair: min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x, "
            f"max {max(ratios):.2f}x.", ""]
    return out


def _cold_section(cold: dict[str, Series], commands: dict[str, str]) -> list[str]:
    floor = cold["floor"]
    out = [f"Cold single file: {len(floor.samples)} fresh processes per command, "
           "interleaved.", ""]
    rows = []
    for label, s in cold.items():
        over = "-" if label == "floor" else f"+{ms(s.median - floor.median)}"
        rows.append([f"`{commands[label]}`", ms(s.median), ms(s.p90), ms(min(s.walls)),
                     ms(max(s.walls)), over, mib(s.median_rss_kib), mib(s.peak_rss_kib),
                     s.exit_codes])
    out += table(["command", "median wall", "p90", "min", "max", "median over floor",
                  "median RSS", "peak RSS", "exit"], rows)
    return [*out, ""]


def _targets(result: ModeResult) -> list[tuple[str, str, str, bool]]:
    """(target, measured, limit, met) rows of one mode."""
    rows = []
    if result.thr is not None:
        rows.append(("throughput: check-jsonschema / dsc, ratio of median walls",
                     f"{result.thr.ratio:.2f}x", f">= {TARGET_RATIO:.0f}x",
                     result.thr.ratio >= TARGET_RATIO))
    if result.cold is not None:
        for label in ("json", "yaml"):
            s = result.cold[label]
            rows.append((f"cold {label.upper()} file: median wall (p90)",
                         f"{ms(s.median)} ({ms(s.p90)})", f"<= {TARGET_COLD_MS:.0f} ms",
                         s.median <= TARGET_COLD_MS / 1000))
            rows.append((f"cold {label.upper()} file: peak RSS, max of all runs",
                         mib(s.peak_rss_kib), f"<= {TARGET_RSS_MIB:.0f} MiB",
                         s.peak_rss_kib <= TARGET_RSS_MIB * 1024))
    return rows


def report(args: argparse.Namespace, facts: list[list[str]], results: list[ModeResult],
           gen: GenStats | None, corpus_n: int, commands: dict[str, str]) -> str:
    out = report_head("dsc lint benchmark", facts)
    if gen is not None:
        shapes = ", ".join(f"{k} {v}" for k, v in sorted(gen.shapes.items()))
        errors = ", ".join(f"{k} {v}" for k, v in sorted(gen.errors.items()))
        sizes = sorted(gen.sizes)
        out += [f"Generated specs (seed {args.seed}): {gen.json_files} JSON + {gen.yaml_files} "
                f"YAML; {gen.v1_atom} 1.x (`atom`) + {gen.v2_pfs} 2.x (`pfs`); {gen.camel} "
                f"camelCase; {gen.arrays} arrays of 2-3 specs; input shapes: {shapes}; "
                f"deliberate errors ({sum(gen.errors.values())}): {errors}; size median "
                f"{statistics.median(sizes):.0f} B (min {sizes[0]}, max {sizes[-1]}).", ""]
    first_thr = next((r.thr for r in results if r.thr is not None), None)
    if first_thr is not None:
        dc = first_thr.dsc_census
        valid, invalid, broken = first_thr.checkjs_census[1:]
        out += [f"What the tools found: dsc {dc['specs']} specs, {dc['errors']} errors, "
                f"{dc['warnings']} warnings (info notes hidden by -q); check-jsonschema "
                f"{valid} valid, {invalid} invalid, {broken} unparsable files.", ""]
    for result in results:
        out += [f"## Mode `{result.mode.key}`: {result.mode.title}", ""]
        if result.thr is not None:
            out += _throughput_section(result.thr, corpus_n, commands)
        if result.cold is not None:
            out += _cold_section(result.cold, commands)
    out += ["## Targets", ""]
    per_mode = [_targets(r) for r in results]
    header = ["target", "limit"]
    for r in results:
        header += [f"`{r.mode.key}`", "verdict"]
    rows = []
    for i, (name, _, limit, _) in enumerate(per_mode[0]):
        row = [name, limit]
        for mode_rows in per_mode:
            row += [mode_rows[i][1], verdict(mode_rows[i][3])]
        rows.append(row)
    out += table(header, rows)
    return "\n".join(out) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure dsc lint against its performance targets (throughput vs "
        "check-jsonschema; cold single-file wall time and peak RSS) and print a Markdown "
        "report. Exit status is 0 even when a target is missed; 2 on a measurement error.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", type=int, default=7,
                        help="alternating throughput runs of each command")
    parser.add_argument("--cold-runs", type=int, default=30,
                        help="fresh-process runs of each cold single-file command")
    parser.add_argument("--generated", type=int, default=200, help="specs to generate")
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the spec generator")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                        help="reference corpus directory (its .json and .yaml files are used)")
    parser.add_argument("--schema", type=Path, default=Path("schemas/pipeline.schema.json"),
                        help="schema given to check-jsonschema (relative to the repository)")
    parser.add_argument("--cold-json", type=Path, default=DEFAULT_COLD_JSON,
                        help="JSON spec for the cold single-file measurement")
    parser.add_argument("--only", choices=["throughput", "cold"],
                        help="run one of the two benchmarks")
    add_run_options(parser, holds="dsc and check-jsonschema", keeps="generated specs, last outputs",
                    bytecode=True)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.cold_runs < 1 or args.generated < 0:
        parser.error("--runs and --cold-runs must be >= 1, --generated >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bin_dir = args.venv / "bin"
    venv_python, dsc, cj = (str(bin_dir / n) for n in ("python", "dsc", "check-jsonschema"))
    if missing_executables(venv_python, dsc, cj):
        return 2
    return run_report(args, "dsc-bench-", lambda work: _run(args, work, venv_python, dsc, cj))


def _run(args: argparse.Namespace, work: Path, venv_python: str, dsc: str, cj: str) -> str:
    facts = machine_facts(venv_python, dsc=dsc, paths=("compiler", "schemas"), bytecode=True,
                          extra=[["check-jsonschema", tool_output([cj, "--version"])]])
    commands: dict[str, str] = {}
    results = [ModeResult(mode) for mode in modes(args.bytecode, work, "check-jsonschema")]
    gen_stats = None
    corpus_n = 0
    if args.only in (None, "throughput"):
        corpus = sorted(p for p in args.corpus.iterdir() if p.suffix in (".json", ".yaml"))
        if not corpus:
            raise MeasurementError(f"no .json/.yaml specs in {args.corpus}")
        corpus_n = len(corpus)
        gen_dir = work / "generated"
        gen_dir.mkdir()
        generated, gen_stats = generate(gen_dir, args.generated, args.seed)
        files = [str(p) for p in corpus + generated]
        dsc_argv = [dsc, "lint", "-q", "-o", "json"]
        cj_argv = [cj, "--schemafile", str(args.schema)]
        commands["A"] = shlex.join([rel(dsc_argv[0]), *dsc_argv[1:]]) + f" <{len(files)} files>"
        commands["B"] = shlex.join([rel(cj_argv[0]), *cj_argv[1:]]) + f" <{len(files)} files>"
        for result in results:
            result.thr = run_throughput(dsc_argv, cj_argv, files, args.runs, work, result.mode)
    if args.only in (None, "cold"):
        cold_yaml = work / "cold.yaml"
        cold_yaml.write_text(COLD_YAML, encoding="utf-8")
        argvs: dict[str, list[str]] = {
            "floor": [venv_python, "-c", "pass"],
            "json": [dsc, "lint", str(args.cold_json)],
            "yaml": [dsc, "lint", str(cold_yaml)],
        }
        commands.update({k: shlex.join([rel(v[0]), *v[1:]]) for k, v in argvs.items()})
        commands["yaml"] = commands["yaml"].replace(str(work), "$TMP")
        for result in results:
            result.cold = run_cold(argvs, args.cold_runs, work, result.mode)
    return report(args, facts, results, gen_stats, corpus_n, commands)


if __name__ == "__main__":
    sys.exit(main())
