"""Measure the three performance targets of the datum engine and print a Markdown report.

1. Planning glob "/*/*" over a 1,000,000-file listing (1,000 dirs x 1,000 files, 1,000,000
   datums) in at most 3 s and 300 MiB peak, where planning means every datum produced and its
   ID computed (`d.id`), as the runtime's plan needs. Measured (a) with the listing held as a
   list of path strings, (b) with the listing streamed from a generator in pages of 1,000, as
   lakeFS would hand it over, and (c), for information, through the CLI end to end
   (`dsc datums SPEC --listing FILE --count` and `-o json > /dev/null`). Baseline: a plain loop
   applying the same compiled regex to every path, the floor of any glob planner in Python.
2. Counting the datums of a 1,000 x 1,000 cross in at most 5 s, with a peak RSS that does not
   grow with the count (crosses of 100 x 100, 1,000 x 1,000 and 2,000 x 2,000 side by side).
   Baseline: `sum(1 for _ in itertools.product(a, b))` over the same two path lists.
3. An inner join of two 100,000-file inputs on a capture group ("/(*).csv" against
   "/(*).txt", `join_on` "$1"), datums produced with their IDs, in at most 3 s. Baseline: a
   plain dict-based join in Python on the same keys.

Every measurement runs in a fresh process (`--runs` of each, interleaved, the order rotated
from run to run), started by a tiny wrapper that forks, execs the command and reads the
command's own rusage with os.wait4. The wrapper is needed because a child's ru_maxrss starts at
the RSS of the process it was forked (or vfork-spawned) from, so spawning straight from this
script would report this script's footprint as the child's peak. The Python workloads run this
same file in a child mode that builds the inputs, then times the work alone with
time.perf_counter (interpreter start, imports and building the listing are outside the timed
part; the wrapper's wall time covers the whole process). The CLI is timed whole. `--profile`
adds a cProfile summary of each dsc workload, from one extra run each; `--quick` runs smoke
sizes and judges no target.

Every interpreter reads .pyc from a cache in the temporary directory (PYTHONPYCACHEPREFIX),
as a pip-installed dsc would; untimed warm-up runs fill it first. The script writes nothing in
the repository: the listing file, the spec, the bytecode cache and command output go to a
temporary directory. It exits 0 whether or not a target is met (each target is reported PASS
or MISS) and 2 only when a measurement could not be made (a command failing, or a count that
is not the one expected).

Standard library and dsc only. Run it with `.venv/bin/python bench/datums_bench.py`.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import itertools
import json
import os
import pstats
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    MeasurementError,
    add_run_options,
    cached_env,
    machine_facts,
    mib,
    missing_executables,
    progress,
    report_head,
    run_measured,
    run_report,
    sec,
    source_digest,
    table,
    trim_profile,
)

from compiler.datums.glob import compile_glob
from compiler.datums.plan import Combination, DatumInput, Listing, Source, plan_datums

TARGET_PLAN_S = 3.0
TARGET_PLAN_RSS_MIB = 300.0
TARGET_CROSS_S = 5.0
TARGET_JOIN_S = 3.0
# "Flat" for the crosses: the largest one's peak RSS at most this much above the smallest
# one's, while the datum count grows 400x (the two path lists themselves grow by about 0.3 MiB).
FLAT_TOLERANCE_MIB = 2.0

PLAN_GLOB = "/*/*"
PAGE_SIZE = 1000  # lakeFS `listObjects` default page size
JOIN_GLOBS = ("/(*).csv", "/(*).txt")
JOIN_ON = "$1"


@dataclass(frozen=True, slots=True)
class Sizes:
    dirs: int
    files: int
    crosses: tuple[int, ...]
    cross_target: int  # the cross the 5 s target is judged on
    join: int


FULL = Sizes(dirs=1000, files=1000, crosses=(100, 1000, 2000), cross_target=1000, join=100_000)
QUICK = Sizes(dirs=20, files=50, crosses=(10, 30, 60), cross_target=30, join=1000)

# --------------------------------------------------------------------------------------------
# Workloads (run in a fresh child process: `datums_bench.py --child WORKLOAD ARGS...`)


def listed_paths(dirs: int, files: int) -> list[str]:
    """The big listing: /d0000/f0000.csv ... one file per (dir, file), in lakeFS (sorted) order."""
    return [f"/d{i:04d}/f{j:04d}.csv" for i in range(dirs) for j in range(files)]


def paged_paths(dirs: int, files: int) -> Iterator[str]:
    """The same paths as lakeFS hands them over: a page of PAGE_SIZE at a time, each page
    built only when the previous one is used up."""
    total = dirs * files
    for start in range(0, total, PAGE_SIZE):
        yield from [f"/d{k // files:04d}/f{k % files:04d}.csv"
                    for k in range(start, min(start + PAGE_SIZE, total))]


def flat_paths(n: int, suffix: str, stem: str = "f") -> list[str]:
    return [f"/{stem}{i:06d}{suffix}" for i in range(n)]


def plan_with_ids(root: DatumInput, listing: Listing | dict[str, list[str]]) -> int:
    """What the runtime's plan does: produce every datum and compute its ID."""
    n = 0
    for datum in plan_datums(root, listing):
        if datum.id:
            n += 1
    return n


def regex_count(paths: Iterator[str] | list[str]) -> int:
    """The floor of a glob planner in Python: the same compiled regex applied to every path."""
    test = compile_glob(PLAN_GLOB).pattern.match
    n = 0
    for path in paths:
        if test(path) is not None:
            n += 1
    return n


def regex_hash_count(paths: list[str]) -> int:
    """The regex floor plus one BLAKE2b-256 hex digest per match: the cheapest possible ID."""
    test = compile_glob(PLAN_GLOB).pattern.match
    n = 0
    for path in paths:
        if test(path) is not None and hashlib.blake2b(path.encode(), digest_size=32).hexdigest():
            n += 1
    return n


def dict_join(left: list[str], right: list[str]) -> int:
    """A plain inner join on the first capture group, keys in sorted order like the planner's."""
    tables: list[dict[str, list[str]]] = []
    for glob, paths in zip(JOIN_GLOBS, (left, right), strict=True):
        test = compile_glob(glob).pattern.match
        table: dict[str, list[str]] = {}
        for path in paths:
            found = test(path)
            if found is not None:
                table.setdefault(found.group(1), []).append(path)
        tables.append(table)
    n = 0
    for key in sorted(tables[0].keys() & tables[1].keys()):
        for _ in itertools.product(tables[0][key], tables[1][key]):
            n += 1
    return n


def plan_source() -> Source:
    return Source("files", "files", None, compile_glob(PLAN_GLOB))


def cross_input() -> Combination:
    return Combination("cross", (Source("a", "left", None, compile_glob("/*")),
                                 Source("b", "right", None, compile_glob("/*"))))


def join_input() -> Combination:
    return Combination("join", tuple(
        Source(name, name, None, compile_glob(glob), join_on=JOIN_ON)
        for name, glob in zip(("left", "right"), JOIN_GLOBS, strict=True)))


def setup_workload(name: str, args: list[str]) -> Callable[[], int]:
    """Build the inputs of one workload (untimed) and return the work to time."""
    if name == "noop":
        return lambda: 0
    if name in ("list-plan", "list-regex", "list-regex-hash"):
        paths = listed_paths(int(args[0]), int(args[1]))
        if name == "list-plan":
            return lambda: plan_with_ids(plan_source(), {"files": paths})
        if name == "list-regex":
            return lambda: regex_count(paths)
        return lambda: regex_hash_count(paths)
    if name in ("stream-plan", "stream-regex", "stream-drain"):
        dirs, files = int(args[0]), int(args[1])
        if name == "stream-plan":
            return lambda: plan_with_ids(plan_source(), lambda repo: paged_paths(dirs, files))
        if name == "stream-regex":
            return lambda: regex_count(paged_paths(dirs, files))
        return lambda: sum(1 for _ in paged_paths(dirs, files))
    if name in ("cross-plan", "cross-plan-id", "cross-product"):
        left, right = flat_paths(int(args[0]), ".csv"), flat_paths(int(args[0]), ".csv")
        if name == "cross-plan":
            return lambda: sum(1 for _ in plan_datums(cross_input(),
                                                      {"left": left, "right": right}))
        if name == "cross-plan-id":
            return lambda: plan_with_ids(cross_input(), {"left": left, "right": right})
        return lambda: sum(1 for _ in itertools.product(left, right))
    if name in ("join-plan", "join-dict"):
        left, right = flat_paths(int(args[0]), ".csv", "k"), flat_paths(int(args[0]), ".txt", "k")
        if name == "join-plan":
            return lambda: plan_with_ids(join_input(), {"left": left, "right": right})
        return lambda: dict_join(left, right)
    if name == "read-listing":
        try:  # what `dsc datums --listing` runs first
            from compiler.commands.datums import read_listing
        except ModuleNotFoundError:  # a revision before the commands/ layout
            from compiler.preview import read_listing  # type: ignore[no-redef]

        path = Path(args[0])
        return lambda: sum(len(paths) for paths in read_listing(path).values())
    raise SystemExit(f"datums_bench: unknown workload {name!r}")


def child_main(argv: list[str]) -> int:
    """Run one workload and print its count, setup and work times, work CPU time and RSS."""
    profile = argv[0] == "--profile"
    name, *args = argv[1:] if profile else argv
    t0 = time.perf_counter()
    work = setup_workload(name, args)
    t1 = time.perf_counter()
    rss_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result: dict[str, Any] = {}
    c1 = time.process_time()
    if profile:
        profiler = cProfile.Profile()
        count = profiler.runcall(work)
        t2 = time.perf_counter()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(14)
        result["profile"] = trim_profile(text.getvalue())
    else:
        count = work()
        t2 = time.perf_counter()
    result.update(count=count, setup_s=t1 - t0, work_s=t2 - t1,
                  work_cpu_s=time.process_time() - c1, rss_setup_kib=rss_setup)
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------
# Measuring


@dataclass(frozen=True, slots=True)
class Sample:
    wall_s: float  # the whole process, from the wrapper
    maxrss_kib: int  # the process's own peak RSS
    cpu_s: float
    work_s: float  # the timed part alone (the whole process for the CLI)
    work_cpu_s: float  # CPU time of the timed part (of the whole process for the CLI)
    rss_setup_kib: int | None  # peak RSS once the inputs were built, before the work


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    label: str
    argv: tuple[str, ...]
    expected: int  # datums (paths, for read-listing) the run must report
    child: bool = True  # prints the child JSON; otherwise a CLI command, timed whole
    stdout: str | None = None  # where the command's stdout goes (default: a file in work)


@dataclass(slots=True)
class Series:
    case: Case
    samples: list[Sample] = field(default_factory=list)

    @property
    def works(self) -> list[float]:
        return [s.work_s for s in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.works)

    @property
    def cpu_median(self) -> float:
        return statistics.median(s.work_cpu_s for s in self.samples)

    @property
    def wall_median(self) -> float:
        return statistics.median(s.wall_s for s in self.samples)

    @property
    def peak_rss_kib(self) -> int:
        return max(s.maxrss_kib for s in self.samples)

    @property
    def setup_rss_kib(self) -> int | None:
        values = [s.rss_setup_kib for s in self.samples if s.rss_setup_kib is not None]
        return max(values) if values else None


def measure(case: Case, work: Path, env: dict[str, str]) -> Sample:
    """Run one case once from a fresh wrapper and check what it reports."""
    out = case.stdout or str(work / f"{case.key}.out")
    err = work / f"{case.key}.err"
    stats = run_measured(case.argv, out, err, cwd=REPO, env=env, what=case.key)
    wall, code, maxrss, cpu = stats.wall_s, stats.exit_code, stats.maxrss_kib, stats.cpu_s
    if code != 0:
        detail = err.read_text(errors="replace").strip()[-600:]
        raise MeasurementError(f"{case.key}: `{shlex.join(case.argv[:4])} ...` exited {code}: "
                               f"{detail}")
    if not case.child:
        if case.stdout is None:
            reported = Path(out).read_text().strip()
            if reported != str(case.expected):
                raise MeasurementError(f"{case.key}: printed {reported[:60]!r}, expected "
                                       f"{case.expected}")
        return Sample(wall, maxrss, cpu, wall, cpu, None)
    try:
        result = json.loads(Path(out).read_text())
    except ValueError as exc:
        raise MeasurementError(f"{case.key}: unreadable child output ({exc})") from None
    if result["count"] != case.expected:
        raise MeasurementError(f"{case.key}: counted {result['count']}, expected "
                               f"{case.expected}")
    return Sample(wall, maxrss, cpu, result["work_s"], result["work_cpu_s"],
                  result["rss_setup_kib"])


def profile(case: Case, python: str, work: Path, env: dict[str, str]) -> str:
    """One extra run of a case under cProfile; its top functions by own time."""
    if not case.child:  # the CLI: the whole process, through `python -m compiler`
        stats_file = work / f"{case.key}.prof"
        argv = [python, "-m", "cProfile", "-o", str(stats_file), "-m", "compiler",
                *case.argv[1:]]
        with open(case.stdout or os.devnull, "w") as sink:
            proc = subprocess.run(argv, stdout=sink, stderr=subprocess.PIPE, text=True,
                                  cwd=REPO, check=False, env=env)
        if proc.returncode != 0:
            raise MeasurementError(f"profiling {case.key} failed: {proc.stderr.strip()[-600:]}")
        text = io.StringIO()
        stats = pstats.Stats(str(stats_file), stream=text)
        stats.sort_stats("tottime").print_stats(14)
        total = stats.get_stats_profile().total_tt
        return f"{total:.3f} s under cProfile\n{trim_profile(text.getvalue())}"
    argv = [*case.argv[:2], "--child", "--profile", *case.argv[3:]]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False,
                          env=env)
    if proc.returncode != 0:
        raise MeasurementError(f"profiling {case.key} failed: {proc.stderr.strip()[-600:]}")
    result = json.loads(proc.stdout)
    return f"{result['work_s']:.3f} s under cProfile\n{result['profile']}"


def build_cases(python: str, dsc: str, sizes: Sizes, work: Path) -> dict[str, Case]:
    me = str(Path(__file__).resolve())

    def child(key: str, label: str, expected: int, *args: object) -> Case:
        workload, args_text = key.split(":")[0], [str(a) for a in args]
        return Case(key, label, (python, me, "--child", workload, *args_text), expected)

    d, f = sizes.dirs, sizes.files
    n = d * f
    spec, listing = work / "plan.json", work / "big.json"
    cases = [
        child("noop", "process floor: interpreter + this script's imports, no work", 0),
        child("list-plan", "(a) list: `plan_datums` + `d.id`", n, d, f),
        child("list-regex", "(a) list: baseline, regex loop", n, d, f),
        child("list-regex-hash", "(a) list: info, regex loop + one blake2b per match", n, d, f),
        child("stream-plan", "(b) stream: `plan_datums` + `d.id`", n, d, f),
        child("stream-regex", "(b) stream: baseline, regex loop", n, d, f),
        child("stream-drain", "(b) stream: info, the generator alone", n, d, f),
        child("read-listing", "(c) info: `read_listing` of the listing file (count: paths)", n,
              listing),
        Case("cli-count", "(c) `dsc datums plan.json --listing big.json --count`",
             (dsc, "datums", str(spec), "--listing", str(listing), "--count"), n, child=False),
        Case("cli-json", "(c) `dsc datums plan.json --listing big.json -o json > /dev/null`",
             (dsc, "datums", str(spec), "--listing", str(listing), "-o", "json"), n,
             child=False, stdout=os.devnull),
    ]
    for size in sizes.crosses:
        cases.append(child(f"cross-plan:{size}", f"{size:,} x {size:,}: `plan_datums`",
                           size * size, size))
        cases.append(child(f"cross-product:{size}", f"{size:,} x {size:,}: baseline, "
                           "`itertools.product`", size * size, size))
    size = sizes.cross_target
    cases.append(child(f"cross-plan-id:{size}", f"{size:,} x {size:,}: info, `plan_datums` + "
                       "`d.id`", size * size, size))
    cases.append(child("join-plan", "`plan_datums` + `d.id`", sizes.join, sizes.join))
    cases.append(child("join-dict", "baseline, dict join", sizes.join, sizes.join))
    return {c.key: c for c in cases}


def write_inputs(sizes: Sizes, work: Path) -> None:
    spec = {"pipeline": {"name": "plan-bench"},
            "transform": {"image": "alpine:3.18", "cmd": ["sh", "-c", "true"]},
            "input": {"pfs": {"name": "files", "repo": "files", "glob": PLAN_GLOB}}}
    (work / "plan.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    with (work / "big.json").open("w", encoding="utf-8") as out:
        json.dump({"files": listed_paths(sizes.dirs, sizes.files)}, out)


def run_all(cases: dict[str, Case], sizes: Sizes, runs: int, work: Path, env: dict[str, str],
            profile_with: str | None) -> tuple[dict[str, Series], dict[str, str]]:
    # Untimed warm-ups: fill the bytecode cache (dsc's modules, click) and the page cache.
    for key in ("noop", "read-listing", "cli-count"):
        measure(cases[key], work, env)
    series = {key: Series(case) for key, case in cases.items()}
    keys = list(cases)
    for i in range(runs):
        progress(f"run {i + 1}/{runs}")
        # Rotate the order so no case always runs right after the same neighbour.
        shift = (i * len(keys)) // runs
        for key in keys[shift:] + keys[:shift]:
            series[key].samples.append(measure(cases[key], work, env))
    profiles: dict[str, str] = {}
    if profile_with is not None:
        for key in ("list-plan", "stream-plan", "cli-json", f"cross-plan:{sizes.crosses[-1]}",
                    "join-plan"):
            progress(f"profiling {key}")
            profiles[key] = profile(cases[key], profile_with, work, env)
    return series, profiles


# --------------------------------------------------------------------------------------------
# Report


def verdict(ok: bool, judged: bool) -> str:
    if not judged:
        return "n/a (not the target's sizes)"
    return "**PASS**" if ok else "**MISS**"


def case_rows(series: dict[str, Series], keys: list[str], base: dict[str, str]) -> list[list[str]]:
    """One row per case: work median/min/max, ratio to its baseline, process wall, RSS."""
    rows = []
    for key in keys:
        s = series[key]
        ratio = (f"{s.median / series[base[key]].median:.1f}x" if key in base
                 else "1.0x (baseline)" if key in base.values() else "-")
        setup = s.setup_rss_kib
        rows.append([s.case.label, f"{s.case.expected:,}", sec(s.median), sec(min(s.works)),
                     sec(max(s.works)), sec(s.cpu_median), ratio, sec(s.wall_median),
                     mib(setup) if setup is not None else "-", mib(s.peak_rss_kib)])
    return rows


HEADER = ["case", "datums", "median", "min", "max", "CPU (median)", "ratio to baseline",
          "process wall (median)", "RSS with inputs built", "peak RSS (max)"]


def report(sizes: Sizes, facts: list[list[str]], series: dict[str, Series],
           profiles: dict[str, str], listing_bytes: int, source_changed: bool) -> str:
    judged = sizes == FULL
    runs = len(series["noop"].samples)
    out = report_head("dsc datums benchmark", facts, changed=source_changed)
    out += [f"Each case ran {runs} time(s), each in a fresh process, interleaved. `median`, "
            "`min` and `max` are the wall time of the timed work alone (the CLI: the whole "
            "process), `CPU` its CPU time (above the wall time's floor when other processes "
            "compete for the 2 cores); the ratio compares median walls. `process wall` adds "
            "interpreter start, imports and building the inputs. Peak RSS is the process's own "
            "`ru_maxrss`, the largest of all runs.", ""]
    if not judged:
        out += ["**Smoke sizes (`--quick`): no target is judged.**", ""]

    n = sizes.dirs * sizes.files
    out += [f"## 1. Planning glob `{PLAN_GLOB}` over {n:,} listed files", "",
            f"{sizes.dirs:,} dirs x {sizes.files:,} files (`/d0000/f0000.csv` ...); "
            f"`{PLAN_GLOB}` matches every file and none of the {sizes.dirs:,} implied "
            f"directories: {n:,} datums. (b) streams the same paths from a generator in pages "
            f"of {PAGE_SIZE:,}, so its timed part includes making the paths.", ""]
    base = {"list-plan": "list-regex", "list-regex-hash": "list-regex",
            "stream-plan": "stream-regex", "stream-drain": "stream-regex"}
    out += table(HEADER, case_rows(series, ["noop", "list-plan", "list-regex",
                                            "list-regex-hash", "stream-plan", "stream-regex",
                                            "stream-drain"], base))
    cli_keys = ["cli-count", "cli-json", "read-listing"]
    out += ["", f"CLI end to end, for information (listing file {listing_bytes / 2**20:.1f} MiB of "
            "JSON in the temporary directory; the CLI rows are whole processes):", ""]
    out += table(HEADER, case_rows(series, cli_keys, {}))
    parse = series["read-listing"].median
    out += ["", f"Reading and parsing the listing file (`read_listing`) takes {sec(parse)}: "
            f"{parse / series['cli-count'].median:.0%} of `--count` and "
            f"{parse / series['cli-json'].median:.0%} of `-o json`.", ""]

    crosses = sizes.crosses
    out += ["## 2. Counting the datums of a cross", ""]
    keys = [k for size in crosses for k in (f"cross-plan:{size}", f"cross-product:{size}")]
    keys.insert(keys.index(f"cross-product:{sizes.cross_target}") + 1,
                f"cross-plan-id:{sizes.cross_target}")
    base = {f"cross-plan:{s}": f"cross-product:{s}" for s in crosses}
    base[f"cross-plan-id:{sizes.cross_target}"] = f"cross-product:{sizes.cross_target}"
    out += table(HEADER, case_rows(series, keys, base))
    growth = rss_growth(series, "cross-plan", crosses)
    out += ["", f"Peak RSS from {crosses[0]:,} x {crosses[0]:,} to {crosses[-1]:,} x "
            f"{crosses[-1]:,} ({crosses[-1] ** 2 // crosses[0] ** 2:,}x the datums): "
            f"{growth:+.1f} MiB (`itertools.product`: "
            f"{rss_growth(series, 'cross-product', crosses):+.1f} MiB).", ""]

    out += [f"## 3. Inner join of two {sizes.join:,}-file inputs", "",
            f"`{JOIN_GLOBS[0]}` joined on `{JOIN_ON}` with `{JOIN_GLOBS[1]}`, every key on "
            f"both sides: {sizes.join:,} datums.", ""]
    out += table(HEADER, case_rows(series, ["join-plan", "join-dict"],
                                   {"join-plan": "join-dict"}))
    out += [""]

    a, b = series["list-plan"], series["stream-plan"]
    cross, join = series[f"cross-plan:{sizes.cross_target}"], series["join-plan"]
    checks = [
        ("1a planning, list: median", sec(a.median), f"<= {TARGET_PLAN_S:.0f} s",
         a.median <= TARGET_PLAN_S),
        ("1a planning, list: peak RSS", mib(a.peak_rss_kib), f"<= {TARGET_PLAN_RSS_MIB:.0f} MiB",
         a.peak_rss_kib <= TARGET_PLAN_RSS_MIB * 1024),
        ("1b planning, stream: median", sec(b.median), f"<= {TARGET_PLAN_S:.0f} s",
         b.median <= TARGET_PLAN_S),
        ("1b planning, stream: peak RSS", mib(b.peak_rss_kib),
         f"<= {TARGET_PLAN_RSS_MIB:.0f} MiB", b.peak_rss_kib <= TARGET_PLAN_RSS_MIB * 1024),
        (f"2 cross {sizes.cross_target:,} x {sizes.cross_target:,}: median", sec(cross.median),
         f"<= {TARGET_CROSS_S:.0f} s", cross.median <= TARGET_CROSS_S),
        (f"2 cross: peak RSS growth {crosses[0]:,}² -> {crosses[-1]:,}²", f"{growth:+.1f} MiB",
         f"<= {FLAT_TOLERANCE_MIB:.0f} MiB (flat)", growth <= FLAT_TOLERANCE_MIB),
        ("3 join: median", sec(join.median), f"<= {TARGET_JOIN_S:.0f} s",
         join.median <= TARGET_JOIN_S),
    ]
    out += ["## Targets", ""]
    out += table(["target", "measured", "limit", "verdict"],
                 [[name, got, limit, verdict(ok, judged)] for name, got, limit, ok in checks])
    if profiles:
        out += ["", "## Where the time goes (cProfile, one extra run each, top functions by own "
                "time)", ""]
        for key, text in profiles.items():
            out += [f"`{key}` ({series[key].case.label}): {text.splitlines()[0]}", "", "```",
                    *text.splitlines()[1:], "```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def rss_growth(series: dict[str, Series], workload: str, sizes: Sequence[int]) -> float:
    """MiB the peak RSS grew from the smallest size to the largest."""
    first, last = series[f"{workload}:{sizes[0]}"], series[f"{workload}:{sizes[-1]}"]
    return (last.peak_rss_kib - first.peak_rss_kib) / 1024


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure the datum engine against its performance targets (planning a "
        "1M-file listing, counting a 1M-datum cross, a 100k x 100k join), each in fresh "
        "processes next to a plain-Python baseline, and print a Markdown report. Exit status "
        "is 0 even when a target is missed; 2 on a measurement error.")
    parser.add_argument("--runs", type=int,
                        help="fresh-process runs of each case (default: 5; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke sizes (1,000 files, crosses up to 60 x 60, a 1,000-file "
                        "join): checks the script runs; judges no target")
    parser.add_argument("--profile", action="store_true",
                        help="add a cProfile summary of each dsc workload (one extra run each)")
    add_run_options(parser, keeps="listing, spec, last outputs")
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 5
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    python, dsc = (str(args.venv / "bin" / n) for n in ("python", "dsc"))
    if missing_executables(python, dsc):
        return 2
    sizes = QUICK if args.quick else FULL

    def run(work: Path) -> str:
        env = cached_env(work)
        facts = machine_facts(python, dsc=dsc, paths=("compiler",))
        digest = source_digest(REPO)
        progress(f"writing the inputs to {work}")
        write_inputs(sizes, work)
        cases = build_cases(python, dsc, sizes, work)
        series, profiles = run_all(cases, sizes, args.runs, work, env,
                                   python if args.profile else None)
        return report(sizes, facts, series, profiles, (work / "big.json").stat().st_size,
                      source_digest(REPO) != digest)

    return run_report(args, "dsc-datums-bench-", run)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(child_main(sys.argv[2:]))
    sys.exit(main())
