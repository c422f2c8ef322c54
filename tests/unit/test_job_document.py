"""The job document: one model the compiler writes and every runtime step reads back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compiler.argo.build import job_spec
from compiler.config import Config
from compiler.contract.job import Job, JobError
from compiler.spec.lint import load_specs

BASE: dict[str, Any] = {
    "pipeline": {"name": "edges"},
    "transform": {"image": "busybox:1.36", "cmd": ["sh", "-c", "cp -r /pfs/images /pfs/out"]},
    "input": {"pfs": {"repo": "images", "glob": "/*"}}}


def _job(tmp_path: Path, config: Config | None = None, **fields: Any) -> Job:
    path = tmp_path / "edges.json"
    path.write_text(json.dumps({**BASE, **fields}))
    (pipeline,) = load_specs([path]).pipelines
    return job_spec(pipeline, config or Config())


def test_a_plain_job_leaves_every_default_out_and_reads_back_equal(tmp_path: Path) -> None:
    job = _job(tmp_path)
    doc = json.loads(job.document())
    assert set(doc) == {"pipeline", "input", "output", "image", "spec_sha256", "code"}
    assert Job.parse(job.document()) == job
    assert (job.workers, job.datum_tries, job.reprocess_spec, job.default_branch) == (
        1, 3, "until_success", "main")


def test_every_setting_a_spec_can_change_survives_the_round_trip(tmp_path: Path) -> None:
    job = _job(tmp_path, Config(default_branch="dev"),
               parallelism_spec={"constant": 4}, datum_tries=1, salt="v2",
               reprocess_spec="every_job", datum_timeout="90s", job_timeout="1h30m",
               output_branch="results",
               input={"cross": [{"pfs": {"repo": "images", "glob": "/*", "name": "img"}},
                                {"pfs": {"repo": "models", "glob": "/", "branch": "prod"}}]})
    doc = json.loads(job.document())
    assert {k: doc[k] for k in ("workers", "datum_tries", "salt", "reprocess_spec",
                                "datum_timeout", "job_timeout", "default_branch")} == {
        "workers": 4, "datum_tries": 1, "salt": "v2", "reprocess_spec": "every_job",
        "datum_timeout": 90.0, "job_timeout": 5400, "default_branch": "dev"}
    back = Job.parse(job.document())
    assert back == job
    assert [(leaf.name, leaf.repo, back.branch_of(leaf)) for leaf in back.leaves] == [
        ("img", "images", "dev"), ("models", "models", "prod")]
    assert back.output_branch == "results"


def test_equal_jobs_are_equal_bytes(tmp_path: Path) -> None:
    assert _job(tmp_path).document() == _job(tmp_path).document()


@pytest.mark.parametrize("text", ["", "[]", '{"pipeline": "x"}',
                                  '{"pipeline": "x", "input": {"bogus": {}}, '
                                  '"output": {"repo": "x", "branch": "main"}}'])
def test_what_is_not_a_job_document_is_a_job_error_that_says_so(text: str) -> None:
    with pytest.raises(JobError, match="is not a dsc job document"):
        Job.parse(text)
