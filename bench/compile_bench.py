"""Measure the three performance targets of the `dsc compile` issue and print a Markdown report.

1. Cold seed graph: `dsc compile examples/hyperparameter/ --set image=registry.example/iris:1`
   (the 4-spec seed graph) from a fresh process, next to a fresh `python -c "import
   hera.workflows"` with the same interpreter (hera's import is the floor), interleaved; the
   target is median(compile) / median(import) <= 1.3. For information, a third command imports
   hera and calls gc.freeze() as dsc does on its way out, so the interpreter's exit skips its
   full collection: the floor without that cost.
2. A chain of N pipelines, generated in the temporary directory (pipeline i reads the repo of
   pipeline i-1 with a pfs input, glob "/*"; the first reads the source repo `raw`), compiled
   with `dsc compile DIR` for N = 100 and N = 1,000, run alternately. Targets: 1,000 in at most
   10 s, and time(1,000) / time(100) at most 12. Since workers (0f9982f) dsc refuses a graph
   whose templates a run would store past `limits.stored_budget` (about 320 of these
   pipelines): where the measured source has that limit, both sizes compile with a config
   raising it (CHAIN_STORED_BUDGET), so that the 1,000-pipeline graph is still compiled whole.
3. Pinned datums: one pipeline whose input repo lists 10,000 files under glob "/*" (10,000
   datums), compiled with `pin=True` against a fake resolver (`PinResolver`); the target is a
   run Workflow document under 256 KiB, as YAML and as JSON. A revision without `--pin`
   reports the case as "not available". The run must carry the 10,000 datums: before workers
   as the keys of a `withItems`, since as its `expect-datums` (the count `open` checks).

Every measured command is started by the tiny fork/exec/wait4 wrapper of `harness.py`, so the
wall time and peak RSS are the command's own. "Cold" means a fresh process; the page cache is
warm (untimed warm-up runs come first; dropping caches needs root). The pinned case runs this
same file in a child mode (`--child pinned ...`) that builds the fake listing, compiles
through the Python API and prints the sizes; it is measured once, in the first bytecode mode,
because a size does not depend on bytecode.

Like `lint_bench.py`, cases 1 and 2 run in two bytecode modes (`--bytecode`): `cached`, where
every interpreter reads .pyc from a cache in the temporary directory (PYTHONPYCACHEPREFIX), as
a pip-installed dsc would; and `as-is`, the environment unchanged. They differ when
PYTHONDONTWRITEBYTECODE is set: then the editable-installed dsc compiles its own modules from
source on every start, while hera, pydantic and the other site-packages have pip-compiled .pyc.

The script writes nothing in the repository; generated specs, the bytecode cache and command
output go to a temporary directory. It exits 0 whether or not a target is met (each target is
reported PASS or MISS) and 2 only when a measurement could not be made (a command failing, or
the pinned API differing from the one this script expects).

Standard library only (the pinned child imports dsc). Run it with
`.venv/bin/python bench/compile_bench.py` from the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    MeasurementError,
    Mode,
    Series,
    add_run_options,
    export,
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
    source_digest,
    table,
    verdict,
)

SEED_DIR = "examples/hyperparameter/"
SEED_VALUES = "image=registry.example/iris:1"

TARGET_SEED_RATIO = 1.3
TARGET_CHAIN_S = 10.0
TARGET_CHAIN_GROWTH = 12.0
TARGET_WORKFLOW_KIB = 256

CHAIN_SIZES = (100, 1000)
PINNED_FILES = 10_000
# The full Argo CRD (default since v4) caps `templates` and `dag.tasks` at 200 items per object
# (../shared/reference/argo/rules.md, the table of limits; workflow_types.go kubebuilder markers).
ARGO_MAX_ITEMS = 200

CASES = ("seed", "chain", "pinned")
# What `--rev` exports: the package, the schemas it reads, the seed graph.
EXPORTED = ("compiler", "schemas", "examples")

# --------------------------------------------------------------------------------------------
# Inputs


def chain_spec(i: int) -> dict[str, Any]:
    """Pipeline i of the chain: reads the previous pipeline's repo (the first reads `raw`)."""
    name, upstream = f"chain-{i:04d}", "raw" if i == 0 else f"chain-{i - 1:04d}"
    return {
        "pipeline": {"name": name},
        "description": f"Step {i} of a generated chain: copies {upstream} to {name}.",
        "transform": {"image": "alpine:3.18", "cmd": ["sh"],
                      "stdin": [f"cp -r /pfs/{upstream}/. /pfs/out/"]},
        "input": {"pfs": {"repo": upstream, "glob": "/*"}},
    }


def write_chain(directory: Path, n: int) -> None:
    directory.mkdir()
    for i in range(n):
        (directory / f"chain-{i:04d}.json").write_text(json.dumps(chain_spec(i), indent=2) + "\n",
                                                       encoding="utf-8")


# Since workers (0f9982f) dsc refuses a graph whose templates a run would store past
# `limits.stored_budget` (900 KiB by default, within the 1 MiB Argo allows one object): about
# 320 pipelines of this chain. The chain case raises the budget so that the 1,000-pipeline
# graph is compiled whole, as it was before; what it prints is then too big for one Argo run.
CHAIN_STORED_BUDGET = 64 * 2**20


def chain_config(root: Path, work: Path) -> list[str]:
    """`--config FILE` raising `limits.stored_budget` for the chains, when the measured source
    (`root`) has that limit; no options at a revision without it."""
    schema = root / "schemas" / "config.schema.json"
    if not schema.is_file() or "stored_budget" not in schema.read_text(encoding="utf-8"):
        return []
    path = work / "chain-dsc.yaml"
    path.write_text(f"limits:\n  stored_budget: {CHAIN_STORED_BUDGET}\n", encoding="utf-8")
    return ["--config", str(path)]


PINNED_SPEC = {
    "pipeline": {"name": "pinned"},
    "description": "One pipeline over 10,000 files, its datums known at compile time.",
    "transform": {"image": "alpine:3.18", "cmd": ["sh"],
                  "stdin": ["cp -r /pfs/images/. /pfs/out/"]},
    "input": {"pfs": {"repo": "images", "glob": "/*"}},
}


def pinned_paths(n: int) -> list[str]:
    """What the fake lakeFS lists (no leading `/`, as lakeFS does): n files at the top level, so
    glob "/*" gives n datums."""
    return [f"image-{i:06d}.png" for i in range(n)]


# --------------------------------------------------------------------------------------------
# The pinned case (run in a fresh child process: `compile_bench.py --child pinned DIR FILES`)


class ListingResolver:
    """A fake lakeFS for `--pin` (the `PinResolver` protocol): every branch's head
    is a fixed 64-hex commit ID, every repository lists the same paths."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths
        self.heads = 0
        self.listings = 0

    def head(self, repo: str, branch: str) -> str:
        self.heads += 1
        return hashlib.sha256(f"{repo}@{branch}".encode()).hexdigest()

    def listing(self, repo: str, commit: str) -> Iterator[str]:
        self.listings += 1
        yield from self.paths


def compile_api() -> tuple[Any, Any]:
    """CompileRequest and compile_specs of the revision measured (compiler.commands.compile;
    compiler.compile before the commands/ layout)."""
    try:
        from compiler.commands.compile import CompileRequest, compile_specs
    except ModuleNotFoundError:
        from compiler.compile import CompileRequest, compile_specs  # type: ignore[no-redef]
    return CompileRequest, compile_specs


def pinned_workflow_sizes(spec_dir: Path, files: int) -> dict[str, Any]:
    """Compile spec_dir with its datums pinned and measure the run Workflow document."""
    import importlib.util

    # the resolver interface: compiler.commands.pins, compiler.pins before the commands/
    # layout, absent before --pin
    def found(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # its package is missing: compiler.commands before it was
            return False

    if not any(found(m) for m in ("compiler.commands.pins", "compiler.pins")):
        return {"unavailable": "this revision has no `dsc compile --pin`"}
    from compiler.argo.emit import to_json, to_yaml

    CompileRequest, compile_specs = compile_api()

    resolver = ListingResolver(pinned_paths(files))
    t0 = time.perf_counter()
    try:
        request = CompileRequest(paths=(spec_dir,), pin=True)
        compiled = compile_specs(request, resolver=resolver)
    except TypeError as exc:
        raise SystemExit("compile_bench: the pinned API differs from the one this benchmark "
                         "expects (CompileRequest(paths=..., pin=True) and compile_specs(request, "
                         f"resolver=...)): {exc}") from None
    if compiled.documents is None:
        messages = "; ".join(d.message for d in compiled.result.diagnostics)
        raise SystemExit(f"compile_bench: the pinned spec did not compile: {messages}")
    workflows = [d for d in compiled.documents if d.get("kind") == "Workflow"]
    if not workflows:
        raise SystemExit("compile_bench: the pinned compilation emitted no Workflow")
    as_yaml = [to_yaml([w]).encode() for w in workflows]
    as_json = [to_json([w]).encode() for w in workflows]
    compact = [json.dumps(w, separators=(",", ":"), ensure_ascii=False).encode()
               for w in workflows]
    t1 = time.perf_counter()
    big = max(range(len(workflows)), key=lambda k: len(as_yaml[k]))
    return {"workflows": len(workflows), "documents": len(compiled.documents),
            "kinds": dict(Counter(d.get("kind", "?") for d in compiled.documents)),
            "yaml_bytes": len(as_yaml[big]), "json_bytes": len(as_json[big]),
            "compact_json_bytes": len(compact[big]),
            "yaml_sha256": hashlib.sha256(as_yaml[big]).hexdigest(),
            "with_items": max((len(x) for x in _with_items(workflows[big])), default=None),
            "expect_datums": max((int(v) for v in _expected_datums(workflows[big])),
                                 default=None),
            "resolver_heads": resolver.heads, "resolver_listings": resolver.listings,
            "work_s": t1 - t0}


def _with_items(value: Any) -> Iterator[list[Any]]:
    """Every `withItems` list in a document (wherever the template or task put it)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "withItems" and isinstance(item, list):
                yield item
            else:
                yield from _with_items(item)
    elif isinstance(value, list):
        for item in value:
            yield from _with_items(item)


def _expected_datums(value: Any) -> Iterator[str]:
    """The value of every `expect-datums` argument in a document: since workers (0f9982f) a
    pinned run carries its pipeline's datum count (and plan digest), which `open` checks,
    instead of listing the datum keys in a `withItems`."""
    if isinstance(value, dict):
        if value.get("name") == "expect-datums" and str(value.get("value", "")).isdigit():
            yield str(value["value"])
        for item in value.values():
            yield from _expected_datums(item)
    elif isinstance(value, list):
        for item in value:
            yield from _expected_datums(item)


def planned_datums(run: dict[str, Any]) -> int | None:
    """How many datums a pinned run carries: its largest `withItems` (before workers) or its
    `expect-datums` (since)."""
    return run.get("expect_datums") or run["with_items"]


def child_main(argv: list[str]) -> int:
    name, *args = argv
    if name != "pinned":
        raise SystemExit(f"compile_bench: unknown child workload {name!r}")
    print(json.dumps(pinned_workflow_sizes(Path(args[0]), int(args[1]))))
    return 0


# --------------------------------------------------------------------------------------------
# Measuring


@dataclass(frozen=True, slots=True)
class Output:
    """What a `dsc compile` run printed: YAML documents separated by `---`."""

    size: int
    documents: int
    kinds: str

    @classmethod
    def read(cls, path: Path) -> Output:
        data = path.read_bytes()
        # Top-level keys and separators start at column 0; block scalars are indented.
        lines = data.split(b"\n")
        kinds = Counter(line[6:].decode() for line in lines if line.startswith(b"kind: "))
        docs = 1 + sum(1 for line in lines if line == b"---") if data.strip() else 0
        return cls(len(data), docs, ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))


@dataclass(frozen=True, slots=True)
class Census:
    """Counts from one untimed `-o json` run, held against Argo's per-object limits."""

    json_bytes: int
    kinds: str
    max_templates: int
    max_dag_tasks: int


def census(path: Path) -> Census:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))["items"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MeasurementError(f"`dsc compile -o json` printed no `kind: List`: {exc}") from None
    kinds = Counter(item.get("kind", "?") for item in items)
    templates = [item.get("spec", {}).get("templates", []) for item in items]
    tasks = [len(t.get("dag", {}).get("tasks", [])) for ts in templates for t in ts]
    return Census(path.stat().st_size, ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
                  max((len(t) for t in templates), default=0), max(tasks, default=0))


@dataclass(slots=True)
class SeedResult:
    compile: Series
    floor: Series
    frozen: Series  # info: the floor without the interpreter's exit collection
    output: Output

    @property
    def ratio(self) -> float:
        return self.compile.median / self.floor.median

    @property
    def pair_ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.compile.walls, self.floor.walls, strict=True)]


def run_seed(argvs: dict[str, list[str]], repeat: int, work: Path, mode: Mode) -> SeedResult:
    progress(f"[{mode.key}] seed graph: warm-up")
    for key, argv in argvs.items():  # page cache; bytecode cache in the cached mode
        measure(argv, work, f"seed-{key}", mode)
    series = {key: Series(key) for key in argvs}
    keys = list(argvs)
    for i in range(repeat):
        progress(f"[{mode.key}] seed graph: run {i + 1}/{repeat}")
        # Rotate the order so no command always runs right after the same neighbour.
        shift = i % len(keys)
        for key in keys[shift:] + keys[:shift]:
            series[key].samples.append(measure(argvs[key], work, f"seed-{key}", mode))
    return SeedResult(series["compile"], series["floor"], series["frozen"],
                      Output.read(work / "seed-compile.out"))


@dataclass(slots=True)
class ChainResult:
    series: dict[int, Series]
    outputs: dict[int, Output]

    @property
    def growth(self) -> float:
        small, big = CHAIN_SIZES
        return self.series[big].median / self.series[small].median

    @property
    def pair_growths(self) -> list[float]:
        small, big = CHAIN_SIZES
        return [b / a for a, b in zip(self.series[small].walls, self.series[big].walls,
                                      strict=True)]


def run_chain(argvs: dict[int, list[str]], repeat: int, work: Path, mode: Mode) -> ChainResult:
    small = CHAIN_SIZES[0]
    progress(f"[{mode.key}] chain: warm-up ({small} pipelines)")
    # The small chain loads every module the big one does: enough to fill the bytecode cache.
    measure(argvs[small], work, f"chain-{small}", mode)
    series = {n: Series(f"{n} pipelines") for n in argvs}
    outputs: dict[int, set[Output]] = {n: set() for n in argvs}
    sizes = list(argvs)
    for i in range(repeat):
        progress(f"[{mode.key}] chain: run {i + 1}/{repeat}")
        for n in sizes[i % 2:] + sizes[:i % 2]:
            series[n].samples.append(measure(argvs[n], work, f"chain-{n}", mode))
            outputs[n].add(Output.read(work / f"chain-{n}.out"))
    for n, seen in outputs.items():
        if len(seen) != 1:
            raise MeasurementError(f"the {n}-pipeline chain printed different output from run "
                                   f"to run: {sorted(seen, key=lambda o: o.size)}")
    return ChainResult(series, {n: seen.pop() for n, seen in outputs.items()})


@dataclass(slots=True)
class PinnedResult:
    unavailable: str | None = None
    series: Series | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first(self) -> dict[str, Any]:
        return self.runs[0]

    @property
    def deterministic(self) -> bool:
        return len({r["yaml_sha256"] for r in self.runs}) == 1


def run_pinned(argv: list[str], repeat: int, work: Path, mode: Mode) -> PinnedResult:
    progress(f"[{mode.key}] pinned datums: warm-up")
    measure(argv, work, "pinned", mode)
    first = json.loads((work / "pinned.out").read_text())
    if "unavailable" in first:
        return PinnedResult(unavailable=first["unavailable"])
    # A size measured on a run that does not carry the datums would pass for the wrong reason.
    if planned_datums(first) != PINNED_FILES:
        raise MeasurementError(f"the pinned run Workflow carries {planned_datums(first)} datums "
                               "(its largest `withItems`, or since workers its `expect-datums`), "
                               f"expected {PINNED_FILES:,}: the fake listing's paths were not "
                               "planned as datums")
    result = PinnedResult(series=Series("pinned"))
    assert result.series is not None
    for i in range(repeat):
        progress(f"[{mode.key}] pinned datums: run {i + 1}/{repeat}")
        result.series.samples.append(measure(argv, work, "pinned", mode))
        result.runs.append(json.loads((work / "pinned.out").read_text()))
    return result


@dataclass(slots=True)
class ModeResult:
    mode: Mode
    seed: SeedResult | None = None
    chain: ChainResult | None = None


# --------------------------------------------------------------------------------------------
# Report


def kib(size: int) -> str:
    return f"{size / 1024:,.1f} KiB"


def _seed_section(seed: SeedResult, commands: dict[str, str]) -> list[str]:
    ratios = seed.pair_ratios
    gap = seed.compile.median - seed.floor.median
    out = [f"1\\. Cold seed graph: {len(seed.compile.samples)} fresh processes per command, "
           f"interleaved. The compile printed {seed.output.documents} documents "
           f"({seed.output.kinds}), {seed.output.size:,} bytes of YAML.", ""]
    rows = []
    for label, s in ((f"`{commands['seed-compile']}`", seed.compile),
                     (f"floor: `{commands['seed-floor']}`", seed.floor),
                     (f"info: `{commands['seed-frozen']}`", seed.frozen)):
        rows.append([label, ms(s.median), ms(min(s.walls)), ms(max(s.walls)),
                     ms(s.median_cpu), mib(s.median_rss_kib), mib(s.peak_rss_kib)])
    out += table(["command", "median wall", "min", "max", "median CPU", "median RSS",
                  "peak RSS"], rows)
    out += ["", f"Ratio of the medians, compile / floor: **{seed.ratio:.2f}x** (target <= "
            f"{TARGET_SEED_RATIO}x: {verdict(seed.ratio <= TARGET_SEED_RATIO)}), "
            f"{ms(abs(gap))} {'above' if gap >= 0 else 'below'} the floor; within each pair: "
            f"min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x, max "
            f"{max(ratios):.2f}x. Ratio of the median CPU times, for information (it moves less "
            f"when another process takes a core): "
            f"{seed.compile.median_cpu / seed.floor.median_cpu:.2f}x.",
            "",
            "The floor's process ends with the interpreter's full garbage collection over "
            "hera's objects, which dsc skips (`gc.freeze()` in `compiler/cli.py`). Against the "
            "import without that collection (the `info` row), compile / import is "
            f"{seed.compile.median / seed.frozen.median:.2f}x (CPU "
            f"{seed.compile.median_cpu / seed.frozen.median_cpu:.2f}x), for information.", ""]
    return out


def _chain_section(chain: ChainResult, commands: dict[str, str]) -> list[str]:
    small, big = CHAIN_SIZES
    out = [f"2\\. Chains, `{commands['chain']}` with stdout to a file: "
           f"{len(chain.series[small].samples)} fresh processes per size, alternating.", ""]
    if "--config" in commands["chain"]:
        out += [f"`chain-dsc.yaml` sets `limits.stored_budget: {CHAIN_STORED_BUDGET}`: with the "
                "default budget (900 KiB of templates a run stores) dsc refuses a graph of "
                f"{big:,} such pipelines and asks to split it; raised, it compiles the whole "
                "graph, and what it prints is more than one Argo run accepts.", ""]
    rows = []
    for n, s in chain.series.items():
        o = chain.outputs[n]
        rows.append([f"{n:,}", sec(s.median), sec(min(s.walls)), sec(max(s.walls)),
                     sec(s.median_cpu), mib(s.peak_rss_kib), f"{o.size / 2**20:.2f} MiB",
                     f"{o.documents} ({o.kinds})"])
    out += table(["pipelines", "median wall", "min", "max", "median CPU", "peak RSS",
                  "output (YAML)", "documents"], rows)
    growths = chain.pair_growths
    a, b = chain.series[small].median, chain.series[big].median
    out += ["", f"time({big:,}) / time({small:,}): **{chain.growth:.2f}x** (target <= "
            f"{TARGET_CHAIN_GROWTH:.0f}x: {verdict(chain.growth <= TARGET_CHAIN_GROWTH)}); "
            f"within each pair: min {min(growths):.2f}x, median "
            f"{statistics.median(growths):.2f}x, max {max(growths):.2f}x. Each pipeline past "
            f"the first {small:,} costs {ms((b - a) / (big - small))}.", ""]
    return out


def _pinned_section(pinned: PinnedResult, mode: Mode, command: str) -> list[str]:
    out = [f"## 3. Pinned datums: {PINNED_FILES:,} files under glob `/*`", ""]
    if pinned.unavailable is not None:
        return [*out, f"Not available: {pinned.unavailable}.", ""]
    assert pinned.series is not None
    r, s = pinned.first, pinned.series
    work = statistics.median(run["work_s"] for run in pinned.runs)
    items, expected = r["with_items"], r.get("expect_datums")
    out += [f"`{command}`: one pipeline (input repo `images`, {PINNED_FILES:,} files "
            f"`image-000000.png` ..., so {PINNED_FILES:,} datums) compiled with "
            "`CompileRequest(..., pin=True)` against a fake resolver; measured once, in the "
            f"`{mode.key}` mode ({len(s.samples)} fresh process"
            f"{'es' if len(s.samples) > 1 else ''}), because a size does not depend on bytecode.",
            ""]
    limit = TARGET_WORKFLOW_KIB * 1024
    rows = [["YAML, as `dsc compile` prints it", f"{r['yaml_bytes']:,}", kib(r["yaml_bytes"]),
             verdict(r["yaml_bytes"] < limit)],
            ["JSON, as `dsc compile -o json --output-dir` writes it", f"{r['json_bytes']:,}",
             kib(r["json_bytes"]), verdict(r["json_bytes"] < limit)],
            ["info: compact JSON (what kubectl's last-applied annotation holds)",
             f"{r['compact_json_bytes']:,}", kib(r["compact_json_bytes"]), "-"]]
    out += table(["run Workflow document", "bytes", "size", f"< {TARGET_WORKFLOW_KIB} KiB"],
                 rows)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(r["kinds"].items()))
    out += ["", f"Documents: {r['documents']} ({kinds}); "
            f"largest `withItems` list: {f'{items:,}' if items is not None else 'none found'}; "
            f"`expect-datums`: {f'{expected:,}' if expected is not None else 'none found'}; "
            f"resolver calls: {r['resolver_heads']} `head`, {r['resolver_listings']} `listing`; "
            f"same bytes in every run: {'yes' if pinned.deterministic else '**no**'}. "
            f"Compile and render in the child: median {sec(work)}; whole process: median "
            f"{sec(s.median)}, peak RSS {mib(s.peak_rss_kib)}.", ""]
    return out


def _targets(result: ModeResult, pinned: PinnedResult | None) -> list[tuple[str, str, str, str]]:
    """(target, limit, measured, verdict) rows of one mode."""
    rows = []
    if result.seed is not None:
        seed = result.seed
        rows.append(("1 seed graph, cold: compile / `import hera.workflows`, ratio of medians",
                     f"<= {TARGET_SEED_RATIO}x",
                     f"{seed.ratio:.2f}x ({ms(seed.compile.median)} / {ms(seed.floor.median)})",
                     verdict(seed.ratio <= TARGET_SEED_RATIO)))
    if result.chain is not None:
        small, big = CHAIN_SIZES
        s = result.chain.series[big]
        rows.append((f"2 chain of {big:,}: median wall", f"<= {TARGET_CHAIN_S:.0f} s",
                     sec(s.median), verdict(s.median <= TARGET_CHAIN_S)))
        rows.append((f"2 chain: time({big:,}) / time({small:,})",
                     f"<= {TARGET_CHAIN_GROWTH:.0f}x", f"{result.chain.growth:.2f}x",
                     verdict(result.chain.growth <= TARGET_CHAIN_GROWTH)))
    if pinned is not None:
        limit = f"< {TARGET_WORKFLOW_KIB} KiB"
        for fmt in ("yaml", "json"):
            name = f"3 pinned {PINNED_FILES:,} datums: run Workflow, {fmt.upper()}"
            if pinned.unavailable is not None:
                rows.append((name, limit, "not available", "n/a"))
            else:
                size = pinned.first[f"{fmt}_bytes"]
                rows.append((name, limit, kib(size),
                             verdict(size < TARGET_WORKFLOW_KIB * 1024)))
    return rows


def report(facts: list[list[str]], results: list[ModeResult], pinned: PinnedResult | None,
           censuses: dict[str, Census], commands: dict[str, str], source_changed: bool) -> str:
    out = report_head("dsc compile benchmark", facts, changed=source_changed)
    out += ["Wall times are whole processes (interpreter start included); peak RSS is the "
            "process's own `ru_maxrss`; ratios compare medians of commands run alternately in "
            "the same run.", ""]
    for result in results:
        if result.seed is None and result.chain is None:
            continue
        out += [f"## Mode `{result.mode.key}`: {result.mode.title}", ""]
        if result.seed is not None:
            out += _seed_section(result.seed, commands)
        if result.chain is not None:
            out += _chain_section(result.chain, commands)
    if censuses:
        out += ["## What the compiler emitted", "",
                "From one untimed `dsc compile -o json` run of each input, for information. "
                f"Argo's full CRD (v4) takes at most {ARGO_MAX_ITEMS} `templates` per object and "
                f"{ARGO_MAX_ITEMS} `dag.tasks` per template; more is refused by the API server "
                "(`../shared/reference/argo/rules.md`). Not a target of this benchmark.", ""]
        rows = [[label, c.kinds, f"{c.json_bytes:,}", str(c.max_templates),
                 str(c.max_dag_tasks),
                 "yes" if max(c.max_templates, c.max_dag_tasks) <= ARGO_MAX_ITEMS else "**no**"]
                for label, c in censuses.items()]
        out += table(["input", "documents", "JSON bytes", "most templates in one object",
                      "most tasks in one DAG", f"within {ARGO_MAX_ITEMS}"], rows)
        out += [""]
    if pinned is not None:
        out += _pinned_section(pinned, results[0].mode, commands["pinned"])
    out += ["## Targets", ""]
    per_mode = [(r, _targets(r, pinned)) for r in results]
    per_mode = [(r, rows) for r, rows in per_mode if rows]
    header = ["target", "limit"]
    for r, _ in per_mode:
        header += [f"`{r.mode.key}`", "verdict"]
    rows = []
    for i, (name, limit, _, _) in enumerate(per_mode[0][1]):
        row = [name, limit]
        for _, mode_rows in per_mode:
            row += [mode_rows[i][2], mode_rows[i][3]]
        rows.append(row)
    out += table(header, rows)
    if pinned is not None and pinned.unavailable is None and len(per_mode) > 1:
        out += ["", f"The pinned sizes were measured once (in `{results[0].mode.key}`); every "
                "mode column repeats them."]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure dsc compile against its performance targets (the seed graph "
        "from a cold process against hera's import; chains of 100 and 1,000 pipelines; the "
        "size of a Workflow with 10,000 pinned datums) and print a Markdown report. Exit "
        "status is 0 even when a target is missed; 2 on a measurement error.")
    parser.add_argument("--repeat", type=int, default=5,
                        help="fresh-process runs of each command, of which medians are reported "
                        "(default: 5)")
    parser.add_argument("--only", choices=CASES, action="append",
                        help="run only this case; repeatable (default: all three)")
    add_run_options(parser, keeps="generated specs, last outputs", rev=EXPORTED, bytecode=True)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    args.only = args.only or list(CASES)
    return args


def _run(args: argparse.Namespace, work: Path, python: str, dsc: str) -> str:
    facts = machine_facts(python, dsc=dsc, paths=EXPORTED, rev=args.rev, bytecode=True,
                          packages=("hera", "pydantic", "PyYAML"))
    source = export(args.rev, work, EXPORTED) if args.rev is not None else None
    root = source or REPO
    digest = source_digest(root)
    results = [ModeResult(mode) for mode in modes(args.bytecode, work, "hera, pydantic",
                                                   source)]
    commands: dict[str, str] = {}
    censuses: dict[str, Census] = {}
    pinned = None
    if "pinned" in args.only:  # first: it is quick, and fails fast if the pinned API changed
        spec_dir = work / "pinned"
        spec_dir.mkdir()
        (spec_dir / "pinned.json").write_text(json.dumps(PINNED_SPEC, indent=2) + "\n",
                                              encoding="utf-8")
        argv = [python, str(Path(__file__).resolve()), "--child", "pinned", str(spec_dir),
                str(PINNED_FILES)]
        commands["pinned"] = shlex.join([rel(python), rel(argv[1]), *argv[2:4], "$TMP/pinned",
                                         *argv[5:]])
        pinned = run_pinned(argv, args.repeat, work, results[0].mode)
    if "seed" in args.only:
        argvs = {"compile": [dsc, "compile", SEED_DIR, "--set", SEED_VALUES],
                 "floor": [python, "-c", "import hera.workflows"],
                 "frozen": [python, "-c", "import gc, hera.workflows; gc.freeze()"]}
        commands.update({f"seed-{k}": shlex.join([rel(v[0]), *v[1:]]) for k, v in argvs.items()})
        measure([*argvs["compile"], "-o", "json"], work, "census", results[0].mode)
        censuses["seed graph (4 specs)"] = census(work / "census.out")
        for result in results:
            result.seed = run_seed(argvs, args.repeat, work, result.mode)
    if "chain" in args.only:
        chain_argvs = {}
        budget = chain_config(root, work)
        for n in CHAIN_SIZES:
            write_chain(work / f"chain{n}", n)
            chain_argvs[n] = [dsc, "compile", str(work / f"chain{n}"), *budget]
            progress(f"chain: census of {n} pipelines (-o json, untimed)")
            measure([*chain_argvs[n], "-o", "json"], work, "census", results[0].mode)
            censuses[f"chain of {n:,}"] = census(work / "census.out")
        commands["chain"] = shlex.join([rel(dsc), "compile", "$TMP/chainN",
                                        *(["--config", "$TMP/chain-dsc.yaml"] if budget else [])])
        for result in results:
            result.chain = run_chain(chain_argvs, args.repeat, work, result.mode)
    return report(facts, results, pinned, censuses, commands, source_digest(root) != digest)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    python, dsc = (str(args.venv / "bin" / n) for n in ("python", "dsc"))
    if missing_executables(python, dsc):
        return 2
    return run_report(args, "dsc-compile-bench-", lambda work: _run(args, work, python, dsc))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(child_main(sys.argv[2:]))
    sys.exit(main())
