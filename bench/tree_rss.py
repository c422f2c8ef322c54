"""Run a command and print the peak of its process tree's summed RSS (every process whose
parent chain leads to the command), sampled every 200 ms from /proc, on stderr:

    .venv/bin/python bench/tree_rss.py COMMAND [ARG ...]

A process's own peak (ru_maxrss, /usr/bin/time's "Maximum resident set size") misses what
its children hold at the same time; this sums them, at the cost of missing what lives less
than a sample. Linux only; exits with the command's exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from harness import processes

INTERVAL = 0.2
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root: int) -> int:
    """Bytes resident in `root` and its descendants now."""
    table = processes()
    total = 0
    for pid, (_, pages) in table.items():
        p = pid
        while p > 1 and p != root:
            p = table[p][0] if p in table else 0
        if p == root:
            total += pages * PAGE
    return total


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    process = subprocess.Popen(argv)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        time.sleep(INTERVAL)
    print(f"peak RSS of the process tree: {peak / 2**20:.1f} MiB", file=sys.stderr)
    return process.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
