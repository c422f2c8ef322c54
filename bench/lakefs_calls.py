"""Count the lakeFS requests one job makes, by step and operation (issue 19's bench line).

A job of N one-file datums (`/*` over N small files, one output file each) runs in this
process through the runtime verbs against the lakeFS stand-in, as the pods run them. Every
request the stand-in serves is counted, then split into `open`, the datum steps (`stage` and
`publish`, reported per datum) and `commit`. Requests are counted, not timed: the figure is the
same on any machine.

    .venv/bin/python bench/lakefs_calls.py              # a Markdown table on stdout
    .venv/bin/python bench/lakefs_calls.py --datums 100

Run it from a checkout of another commit (e.g. a `git worktree`) to compare: it only uses the
verbs' call signatures, which have not changed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

from harness import use_checkout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datums", type=int, default=10)
    args = parser.parse_args()
    use_checkout()
    from tests.lakefs_standin.fixtures import SWAGGER
    from tests.lakefs_standin.server import LakeFSStandIn
    from tests.runtime.harness import Harness, compiled_steps

    def one_output(pfs: Path, env: dict[str, str]) -> None:
        (pfs / "out" / (Path(env["texts"]).name + ".out")).write_text("1\n")

    with tempfile.TemporaryDirectory() as tmp, LakeFSStandIn(SWAGGER) as standin:
        standin.seed("texts", {f"{i:05d}.txt": b"%d\n" % i for i in range(args.datums)})
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
        for key in opened.keys:
            h.datum(steps, opened.branch, key, one_output)
        mark("datums")
        h.commit(steps, opened.branch)
        mark("commit")
        requests = standin.requests
        problems = standin.problems()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    rows = []
    for (_, begin), (step, end) in itertools.pairwise(marks):
        ops = Counter(r.operation_id or f"{r.method} {r.path}" for r in requests[begin:end])
        per = args.datums if step == "datums" else 1
        label = "per datum (stage + publish)" if step == "datums" else step
        shown = ", ".join(f"{op} {n / per:g}" for op, n in sorted(ops.items()))
        rows.append(f"| {label} | {(end - begin) / per:g} | {shown} |")
    print(f"lakeFS requests of one job of {args.datums} one-file datums "
          f"(bench/lakefs_calls.py --datums {args.datums}):\n")
    print("| step | requests | by operation |\n|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
