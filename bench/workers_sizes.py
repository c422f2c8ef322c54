"""What workers did to the size of what `dsc compile` emits (issue 17), for the record.

1. A pinned run: one pipeline (`/*` over one repo) compiled with `--pin`, its datums counted at
   compile time, at 10 and at 1,000,000 datums. The Workflow no longer lists datums, so the two
   differ by the digits of the count. The pin resolution is replaced by its result (a commit
   and a count), as tests/test_compile_graph.py does, so no million objects are listed. Writes
   each Workflow as compact JSON to DIR/pinned-<N>.json and prints its bytes.
2. A chain of 300 pipelines (bench/compile_bench.py's `write_chain`, written to DIR/chain):
   the stored size of its WorkflowTemplates (`compiler.argo.build.stored_size`: what a run of
   them stores in its status, compact JSON) and their number, all documents written to
   DIR/chain.yaml; compile wall time is the whole process's, `dsc compile DIR/chain`, timed
   from outside.

    .venv/bin/python bench/workers_sizes.py DIR

Validate the files it writes with the Argo schema and rules as the tests do. Prints figures
only; exits 0.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from harness import REPO

sys.path.insert(0, str(REPO))

from compile_bench import write_chain

from compiler.argo.build import PipelinePins, stored_size
from compiler.argo.emit import to_json, to_yaml
from compiler.commands import pins
from compiler.commands.compile import CompileRequest, compile_specs
from compiler.config import Config
from compiler.contract import plan_digest

COMMIT = "c" * 64
SPEC = {"pipeline": {"name": "big"},
        "transform": {"image": "alpine:3.20", "cmd": ["sh", "-c", "cp -r /pfs/lake/. /pfs/out/"]},
        "input": {"pfs": {"repo": "lake", "glob": "/*"}}}


class NoListing:
    """A resolver that is never asked: the pins are given whole."""

    def head(self, repo: str, branch: str) -> str:
        return COMMIT

    def listing(self, repo: str, commit: str) -> list[str]:
        raise AssertionError("the pins are given; nothing is listed")


def compiled(specs: Path, **request: Any) -> list[dict[str, Any]]:
    result = compile_specs(CompileRequest(paths=(specs,), config=Config(), **request),
                           resolver=NoListing())
    if result.documents is None:
        raise SystemExit("; ".join(d.message for d in result.result.diagnostics))
    return result.documents


def pinned(out: Path) -> None:
    specs = out / "pinned-spec"
    specs.mkdir(exist_ok=True)
    (specs / "big.json").write_text(json.dumps(SPEC) + "\n")
    digest = plan_digest(f"datum-{i}" for i in range(3))  # any 64-hex digest
    for count in (10, 1_000_000):
        pins.resolve_pins = (
            lambda graph, resolver, config, n=count: {
                "big": PipelinePins((("lake", COMMIT),), n, digest)})
        docs = compiled(specs, pin=True)
        workflow = [d for d in docs if d["kind"] == "Workflow"]
        path = out / f"pinned-{count}.json"
        path.write_text(to_json(workflow, compact=True))
        print(f"pinned, {count:,} datums: Workflow {len(path.read_bytes()):,} bytes of compact "
              f"JSON ({path})")


def chain(out: Path, n: int = 300) -> None:
    where = out / "chain"
    if not where.exists():
        write_chain(where, n)
    started = time.perf_counter()
    docs = compiled(where)
    seconds = time.perf_counter() - started
    templates = [d for d in docs if d["kind"] == "WorkflowTemplate"]
    size = stored_size(templates)
    print(f"chain of {n}: {len(templates)} WorkflowTemplates, stored size {size:,} bytes "
          f"({size / 1024:.0f} KiB); compiled in {seconds:.2f} s in this process")
    path = out / "chain.yaml"
    path.write_text(to_yaml(docs))
    print(f"chain of {n}: its documents ({path})")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    pinned(out)
    chain(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
