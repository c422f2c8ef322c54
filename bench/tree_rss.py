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

INTERVAL = 0.2
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root: int) -> int:
    """Bytes resident in `root` and its descendants now."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])  # ppid, after the state field
        rss[pid] = int(fields[21]) * PAGE  # rss in pages (field 24 of stat)
    total = 0
    for pid, size in rss.items():
        p = pid
        while p > 1 and p != root:
            p = parents.get(p, 0)
        if p == root:
            total += size
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
