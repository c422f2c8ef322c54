"""Set up issue 16's benchmark and serve it: a 100,000-datum pipeline whose previous job's
datum index is on its output branch, with 1% of its input files changed since.

    .venv/bin/python bench/incremental_bench.py /tmp/inc   # prints when ready, then serves

It serves the lakeFS stand-in (responses not validated: a 1,000-row listing costs ~60 ms to
validate, which a real lakeFS does not spend) in this process, and writes into the directory:

- `env`: LAKEFS_ENDPOINT, LAKEFS_ACCESS_KEY_ID, LAKEFS_SECRET_ACCESS_KEY, DSC_RUN, DSC_RUN_UID,
  DSC_OUTPUT_DIR, DSC_PFS (source it with `set -a; . DIR/env; set +a`);
- `specs/counts.json`: the pipeline (`/*` over repo `texts`);
- `job.json`: its job document, as `dsc compile` writes it;
- `open.sh` and `plan.sh`: one `dsc runtime open` and one `dsc plan --lakefs`, each a whole
  process, to time with any tool that times commands.

The previous index is made by this script from the same plan `open` makes (the datum hashes
of the files before the change), so the measured `open` reads a real index and finds 99%
of the datums unchanged. Stop it with Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import REPO, changed_files, seed_previous_job, serving, tree_files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--datums", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01, help="fraction changed")
    args = parser.parse_args()
    with serving(args.directory) as (work, standin):
        from compiler.config import Config
        from compiler.contract.job import Job
        from compiler.lakefs.client import LakeFS
        from compiler.runtime.job import Context, Run
        from compiler.runtime.verbs import _plan
        from tests.runtime.harness import compiled_steps

        n = args.datums
        standin.seed("texts", tree_files(n))
        (work / "specs" / "counts.json").write_text(json.dumps({
            "pipeline": {"name": "counts"},
            "transform": {"image": "busybox@sha256:" + "0" * 64, "cmd": ["true"]},
            "input": {"pfs": {"repo": "texts", "glob": "/*/*"}}}))
        # Over dsc's fan-out ceiling (`limits.max_datums`, 10,000 until the workers issue)
        steps = compiled_steps(work / "specs", Config(max_datums=10 * n))[0]["counts"]
        job = Job.parse(steps.job)
        client = LakeFS(standin.endpoint, standin.access_key_id, standin.secret_access_key)
        run = Run.from_environment({"DSC_RUN": "previous", "DSC_RUN_UID": "uid-previous",
                                    "DSC_PFS": str(work / "pfs"),
                                    "DSC_OUTPUT_DIR": str(work / "out")})
        ctx = Context(client, run, lambda _line: None)
        head = client.head("texts", "main")
        seed_previous_job(standin, "counts", job.code,
                          _plan(ctx, job, {job.leaves[0].name: head}))
        changed = changed_files(n, args.changed)
        standin.seed("texts", changed)
        python = sys.executable
        (work / "dsc.yaml").write_text(f"limits: {{max_datums: {10 * n}}}\n")
        (work / "job.json").write_text(steps.job)
        (work / "env").write_text("".join(f"{k}={v}\n" for k, v in {
            "LAKEFS_ENDPOINT": standin.endpoint, "LAKEFS_ACCESS_KEY_ID": standin.access_key_id,
            "LAKEFS_SECRET_ACCESS_KEY": standin.secret_access_key, "DSC_RUN": "bench",
            "DSC_RUN_UID": "uid-bench", "DSC_OUTPUT_DIR": str(work / "out"),
            "DSC_PFS": str(work / "pfs"), "PYTHONPATH": str(REPO)}.items()))
        for name, command in (
                ("open", f'{python} -m compiler runtime open --job "$(cat {work}/job.json)"'),
                ("plan", f"{python} -m compiler plan --lakefs --config {work}/dsc.yaml "
                         f"{work}/specs")):
            script = work / f"{name}.sh"
            script.write_text(f"#!/bin/sh\nset -a\n. {work}/env\nset +a\n"
                              f"exec {command} >/dev/null 2>{work}/{name}.log\n")
            script.chmod(0o755)
        print(f"ready: {n:,} datums, {len(changed):,} changed; "
              f"{work}/open.sh, {work}/plan.sh", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
