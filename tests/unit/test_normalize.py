"""What the model makes of fields real specs write in an older or looser form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compiler.spec.lint import load_specs
from compiler.spec.model import Parallelism, Pipeline

SPEC: dict[str, Any] = {
    "pipeline": {"name": "train"},
    "transform": {"cmd": ["python3", "train.py"]},
    "input": {"atom": {"repo": "training", "glob": "/"}},
}


def _pipeline(tmp_path: Path, **fields: Any) -> Pipeline:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**SPEC, **fields}))
    loaded = load_specs([path])
    errors = [d.message for d in loaded.result.diagnostics if d.severity.value == "error"]
    assert errors == []
    [pipeline] = loaded.pipelines
    return pipeline


@pytest.mark.parametrize(("spec", "parallelism"), [
    ({"strategy": "CONSTANT", "constant": "2"}, Parallelism(constant=2)),
    ({"strategy": "CONSTANT", "constant": 2, "coefficient": 3}, Parallelism(constant=2)),
    ({"strategy": "COEFFICIENT", "constant": 2, "coefficient": 0.5},
     Parallelism(coefficient=0.5)),
    ({"strategy": 1, "coefficient": 2}, Parallelism(coefficient=2.0)),
    # Pachyderm 1.4: CONSTANT without a positive constant starts one worker per node.
    ({"strategy": "CONSTANT"}, Parallelism(coefficient=1.0)),
    ({"strategy": "CONSTANT", "constant": 0}, Parallelism(coefficient=1.0)),
])
def test_a_1_4_strategy_picks_the_field_that_counts(tmp_path: Path, spec: dict[str, Any],
                                                    parallelism: Parallelism) -> None:
    pipeline = _pipeline(tmp_path, parallelism_spec=spec)
    assert pipeline.parallelism == parallelism
    assert pipeline.dialect == "1.x"
    assert pipeline.transform.image == "ubuntu:16.04"


def test_a_field_set_to_null_is_unset(tmp_path: Path) -> None:
    # What Pachyderm's Jsonnet examples render for an absent list: protojson reads it as unset.
    pipeline = _pipeline(tmp_path, transform={
        "image": "pachyderm/pachtf:2.2.0", "cmd": ["/app/pachtf"], "secrets": None,
        "env": None, "user": None}, output_branch=None, parallelism_spec=None)
    assert pipeline.transform.secrets == ()
    assert pipeline.transform.env == ()
    assert pipeline.transform.user is None
    assert pipeline.output_branch is None
    assert pipeline.parallelism == Parallelism()


def test_null_input_is_no_input(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({**SPEC, "input": None}))
    codes = [d.code for d in load_specs([path]).result.diagnostics]
    assert codes == ["unsupported"]  # a pipeline without an input, named as such
