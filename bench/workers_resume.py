"""A worker killed in the middle of a `dsc run` resumes where it stopped (issue 17).

Sets up a pipeline that copies each of N tiny files (one datum per file, as
bench/workers_local.sh does) and whose command first appends its $PACH_DATUM_ID to a file
outside /pfs, so every run of user code is counted. Runs it twice on fresh stores with the
host runner: once untouched, once with the worker's user container killed (SIGKILL to its
process group, as a node losing the container would) once K datums' user code has started.
The runtime then finds the loop gone and exits 75, and the executor runs the worker pod
again, as Argo's retryStrategy would. Checks, and prints:

- the retried worker's log says how many datums an earlier attempt published, and the
  pipeline's one retry is the only one;
- the final commit holds every datum's output exactly once (each file, with its content,
  and the datum index lists each datum once);
- user code ran every datum at least once, and ran again only datums the killed attempt had
  started and not published (at most those in flight: the one running, the ones waiting to
  be published);
- the wall time of both runs.

    .venv/bin/python bench/workers_resume.py [--datums N] [--kill-after K] [--dir DIR]

DIR (default: a new directory under /var/tmp; not under /tmp, which the host runner covers)
is removed afterwards unless given. Exits 0 when every check holds, 1 when one does not, 2
when the run could not be made. Standard library only; runs `python -m compiler` from this
checkout.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import REPO, processes

LOOP = "/pfs/.dsc-worker/loop.sh"
# What a worker has started and not yet published, at most: the datum its user code runs and
# two handed to its publisher (compiler/runtime/worker.py waits for the older beyond two).
IN_FLIGHT = 3


def setup(root: Path, datums: int) -> None:
    files = root / "data" / "files"
    files.mkdir(parents=True)
    for i in range(datums):
        (files / f"f{i}").write_text(f"{i}\n")
    (root / "specs").mkdir()
    calls = root / "calls"
    spec = {"pipeline": {"name": "copy"},
            "transform": {"image": "alpine:3.20", "cmd": [
                "sh", "-c", f'echo "$PACH_DATUM_ID" >> {calls}; cp /pfs/files/* /pfs/out/']},
            "input": {"pfs": {"repo": "files", "glob": "/*"}}}
    (root / "specs" / "copy.json").write_text(json.dumps(spec, indent=1) + "\n")


def fresh(root: Path) -> None:
    """A new store and no calls counted: the run processes every datum."""
    for name in ("data/.dsc", "data/copy", "calls", "scratch"):
        path = root / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
    (root / "scratch").mkdir()


def lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))
    except FileNotFoundError:
        return 0


def descendants(root: int) -> list[int]:
    parents = {pid: parent for pid, (parent, _) in processes().items()}
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found += children
        todo += children
    return found


def loop_group(dsc: int) -> int | None:
    """The process group of the worker's user container: the one holding the loop."""
    for pid in descendants(dsc):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if LOOP.encode() in argv:
                return os.getpgid(pid)
        except OSError:
            continue
    return None


def run(root: Path, kill_after: int | None) -> dict[str, object]:
    """One `dsc run`; with `kill_after`, the user container is killed once that many
    datums' user code has started."""
    fresh(root)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(root / "scratch")}
    argv = [sys.executable, "-m", "compiler", "run", "specs", "--data", "data",
            "--keep-scratch"]
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    killed_at = None
    if kill_after is not None:
        while process.poll() is None and lines(root / "calls") < kill_after:
            time.sleep(0.005)
        group = loop_group(process.pid)
        if group is None:
            raise SystemExit(f"no user container found to kill: {process.communicate()[0]}")
        killed_at = lines(root / "calls")
        os.killpg(group, signal.SIGKILL)
    output = process.communicate()[0]
    return {"code": process.returncode, "seconds": time.monotonic() - started,
            "output": output, "killed_at": killed_at}


def worker_logs(root: Path) -> list[str]:
    """The worker pods' runtime logs, by attempt."""
    return [p.read_text() for p in sorted((root / "scratch").glob("*/pods/*-worker-*/main.log"),
                                          key=lambda p: int(p.parent.name.rsplit("-", 1)[1]))]


def check(root: Path, datums: int, result: dict[str, object]) -> tuple[list[str], list[str]]:
    """(figures, failed checks) of a finished run."""
    figures: list[str] = []
    failed: list[str] = []
    output = str(result["output"])
    if result["code"] != 0:
        failed.append(f"dsc run exited {result['code']}:\n{output}")
        return figures, failed
    out = root / "data" / "copy"
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    wrong = [n for n in names if (out / n).read_text() != f"{n[1:]}\n"]
    if len(names) != datums or set(names) != {f"f{i}" for i in range(datums)} or wrong:
        failed.append(f"the output holds {len(names)} files ({len(wrong)} wrong) for "
                      f"{datums} datums")
    keys = [line.split()[0] for p in sorted((out / ".dsc" / "index").glob("*.keys"))
            for line in p.read_text().splitlines() if line.strip()]
    if len(keys) != datums or len(set(keys)) != datums:
        failed.append(f"the datum index lists {len(keys)} datums, {len(set(keys))} distinct")
    calls = collections.Counter((root / "calls").read_text().split())
    twice = sorted(k for k, n in calls.items() if n > 1)
    if len(calls) != datums:
        failed.append(f"user code ran {len(calls)} distinct datums of {datums}")
    figures.append(f"user code ran {sum(calls.values())} times for {datums} datums: "
                   f"{len(twice)} datums twice or more")
    logs = worker_logs(root)
    retries = output.count("retrying")
    if result["killed_at"] is None:
        if retries or len(logs) != 1:
            failed.append(f"an unkilled run retried ({retries} retries, {len(logs)} attempts)")
        return figures, failed
    if retries != 1 or len(logs) != 2:
        failed.append(f"expected one retry of the worker, saw {retries} retries and "
                      f"{len(logs)} attempts:\n{output}")
        return figures, failed
    resumed = re.search(r"([\d,]+) published by an earlier attempt; ([\d,]+) to process",
                        logs[1])
    if resumed is None:
        failed.append("the retried worker's log does not say what an earlier attempt "
                      "published:\n" + logs[1][:2000])
        return figures, failed
    published, left = (int(g.replace(",", "")) for g in resumed.groups())
    # What the killed attempt started is exact from the counts: every call the retry did not
    # make. Those it started and had not published were in flight when it died.
    started = sum(calls.values()) - left
    in_flight = started - published
    figures.append(f"killed when {result['killed_at']} datums' user code had started (the "
                   f"killed attempt started {started}); the retry found {published} "
                   f"published and processed the other {left}")
    retry_line = next((line for line in output.splitlines() if "retrying" in line), "")
    figures.append(f"dsc run said: {retry_line.strip()}")
    figures.append(f"in flight when it died (started, not published): {in_flight}; "
                   f"processed twice: {len(twice)}")
    if published + left != datums:
        failed.append(f"published {published} + left {left} != {datums}")
    if len(twice) > in_flight:
        failed.append(f"{len(twice)} datums ran twice, more than the {in_flight} in flight")
    if in_flight > IN_FLIGHT:
        failed.append(f"{in_flight} datums in flight, more than a worker holds ({IN_FLIGHT})")
    return figures, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datums", type=int, default=10_000)
    parser.add_argument("--kill-after", type=int, default=None,
                        help="datums started when the user container is killed "
                        "[default: half of --datums]")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    kill_after = args.kill_after if args.kill_after is not None else args.datums // 2
    if not 0 < kill_after < args.datums:
        parser.error("--kill-after must be between 1 and --datums - 1")
    root = args.dir or Path(tempfile.mkdtemp(prefix="dsc-resume-", dir="/var/tmp"))
    try:
        if not (root / "specs").exists():
            setup(root, args.datums)
        failed: list[str] = []
        for label, kill in (("unkilled", None), ("killed", kill_after)):
            result = run(root, kill)
            figures, bad = check(root, args.datums, result)
            print(f"{label}: dsc run exited {result['code']} in "
                  f"{float(str(result['seconds'])):.1f} s")
            for line in figures:
                print(f"  {line}")
            failed += [f"{label}: {b}" for b in bad]
        for line in failed:
            print(f"FAILED {line}")
        return 1 if failed else 0
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
