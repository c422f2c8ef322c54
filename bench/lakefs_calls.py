"""Count the lakeFS requests one job makes, by step and operation (issue 19's bench line).

A job of N one-file datums (`/*` over N small files, one output file each) runs in this
process through the runtime verbs against the lakeFS stand-in, as the pods run them. Every
request the stand-in serves is counted, then split into `open`, the datums and `commit`.
Requests are counted, not timed: the figure is the same on any machine.

Since workers (0f9982f) the datums are processed by `work`, one worker pod here (the spec has
no `parallelism_spec`), whose requests are partly its own (the job record, its share, its
batch of manifests) and partly each datum's. To tell them apart, the same job runs twice, on
a fresh stand-in each time, with N and 2N datums: per datum = (work(2N) - work(N)) / N, and
the worker's own = work(N) - N x per datum. Before workers, each datum ran `stage` and
`publish` (the harness's `datum`), which this script still drives at such a checkout.

    .venv/bin/python bench/lakefs_calls.py              # a Markdown table on stdout
    .venv/bin/python bench/lakefs_calls.py --datums 100

Run it from a checkout of another commit (e.g. a `git worktree`, or a `git archive` of it with
this bench/ directory copied in) to compare: it drives whichever of the two the checkout has.
N must stay under the worker's manifest batch (1,000), or the split is not linear.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from harness import use_checkout


def run_job(datums: int) -> tuple[list[tuple[str, int]], list[Any], list[str], bool]:
    """One job of `datums` one-file datums on a fresh stand-in: the marks (step, requests
    served so far), the requests, the stand-in's problems, and whether workers ran it."""
    from tests.lakefs_standin.fixtures import SWAGGER
    from tests.lakefs_standin.server import LakeFSStandIn
    from tests.runtime.harness import Harness, compiled_steps

    def one_output(pfs: Path, env: dict[str, str]) -> None:
        (pfs / "out" / (Path(env["texts"]).name + ".out")).write_text("1\n")

    with tempfile.TemporaryDirectory() as tmp, LakeFSStandIn(SWAGGER) as standin:
        standin.seed("texts", {f"{i:05d}.txt": b"%d\n" % i for i in range(datums)})
        standin.seed("counts", {"old.out": b"stale\n"})
        specs = Path(tmp) / "specs"
        specs.mkdir()
        (specs / "counts.json").write_text(json.dumps({
            "pipeline": {"name": "counts"},
            "transform": {"image": "busybox:1", "cmd": ["true"]},
            "input": {"pfs": {"repo": "texts", "glob": "/*"}}}))
        steps = compiled_steps(specs)[0]["counts"]
        h = Harness(standin, Path(tmp), transfers=1)
        marks: list[tuple[str, int]] = []

        def mark(step: str) -> None:
            marks.append((step, len(standin.requests)))

        mark("start")
        opened = h.open(steps)
        mark("open")
        workers = not hasattr(opened, "keys")
        if workers:  # the worker pods (`dsc runtime work`), one here
            for worker in range(opened.workers):
                h.work(steps, opened.branch, one_output, worker)
        else:  # before workers: `stage` and `publish` of each datum
            for key in opened.keys:
                h.datum(steps, opened.branch, key, one_output)
        mark("datums")
        h.commit(steps, opened.branch)
        mark("commit")
        return marks, list(standin.requests), standin.problems(), workers


def counts(marks: list[tuple[str, int]], requests: list[Any]) -> dict[str, Counter[str]]:
    """Step -> requests by operation."""
    return {step: Counter(r.operation_id or f"{r.method} {r.path}"
                          for r in requests[begin:end])
            for (_, begin), (step, end) in itertools.pairwise(marks)}


def shown(ops: Counter[str] | dict[str, float], per: int = 1) -> str:
    return ", ".join(f"{op} {n / per:g}" for op, n in sorted(ops.items()) if n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datums", type=int, default=10)
    args = parser.parse_args()
    if not 0 < args.datums < 500:
        parser.error("--datums must be from 1 to 499 (2N datums stay within one batch)")
    use_checkout()
    n = args.datums
    marks, requests, problems, workers = run_job(n)
    steps = counts(marks, requests)
    rows = []
    if workers:
        marks2, requests2, problems2, _ = run_job(2 * n)
        problems += problems2
        work, work2 = steps["datums"], counts(marks2, requests2)["datums"]
        ops = set(work) | set(work2)
        per = {op: (work2[op] - work[op]) / n for op in ops}
        own = {op: work[op] - n * per[op] for op in ops}
        rows.append(f"| open | {sum(steps['open'].values())} | {shown(steps['open'])} |")
        rows.append(f"| work, the worker's own (one worker) | {sum(own.values()):g} | "
                    f"{shown(own)} |")
        rows.append(f"| work, per datum (from {n} and {2 * n} datums) | "
                    f"{sum(per.values()):g} | {shown(per)} |")
        rows.append(f"| work, all {n} datums (one worker) | {sum(work.values())} | "
                    f"{shown(work)} |")
        rows.append(f"| commit | {sum(steps['commit'].values())} | {shown(steps['commit'])} |")
    else:
        for step, ops in steps.items():
            per_step = n if step == "datums" else 1
            label = "per datum (stage + publish)" if step == "datums" else step
            rows.append(f"| {label} | {sum(ops.values()) / per_step:g} | "
                        f"{shown(ops, per_step)} |")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    print(f"lakeFS requests of one job of {n} one-file datums "
          f"(bench/lakefs_calls.py --datums {n}):\n")
    print("| step | requests | by operation |\n|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
