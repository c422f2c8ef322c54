"""`dsc compile` edges the other compile tests leave out: the salt in the job document, and
`--pin` refused for a graph that runs on a cron schedule."""

from __future__ import annotations

import json
from pathlib import Path

from compiler.commands.compile import CompileRequest, compile_specs
from compiler.config import Config
from tests.test_compile_graph import FakeLakeFS, _job, documents, spec, templates, write


def test_the_salt_is_in_the_job_document_and_a_new_salt_is_new_code(tmp_path: Path) -> None:
    """contract.py: the job document carries the salt; the runtime reprocesses every datum of
    a new salt because the code identity it compares changes with it."""
    def job(salt: str | None) -> dict[str, str]:
        s = spec("salted", "raw", **({"salt": salt} if salt else {}))
        d = write(tmp_path / (salt or "none"), s)
        return json.loads(_job(templates(documents(d)[0])["salted"]))

    plain, one, two = job(None), job("one"), job("two")
    assert "salt" not in plain
    assert (one["salt"], two["salt"]) == ("one", "two")
    assert len({plain["code"], one["code"], two["code"]}) == 3


def test_pin_is_refused_for_a_graph_with_a_cron_input(tmp_path: Path) -> None:
    s = spec("nightly", None)
    s["input"] = {"cross": [{"cron": {"name": "tick", "spec": "@every 6h"}},
                            {"pfs": {"repo": "raw", "glob": "/"}}]}
    compiled = compile_specs(CompileRequest(paths=(write(tmp_path, s),), config=Config(),
                                            pin=True), FakeLakeFS({"raw": ["a.csv"]}))
    assert compiled.documents is None
    (error,) = compiled.result.diagnostics
    assert error.message == ("`--pin` pins a run, but a graph with cron inputs runs on its "
                             "schedule (CronWorkflow); compile it without --pin")
    assert compiled.result.exit_code() == 1
