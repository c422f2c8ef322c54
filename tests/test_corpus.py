"""The whole reference corpus: every real spec lints clean or is refused as `unsupported`."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.diagnostics import Severity
from compiler.spec.lint import lint_paths, load_specs
from tests.conftest import CORPUS, SEED, needs_shared, run_dsc

# Files that are not valid JSON in Pachyderm's own history: any JSON parser, Pachyderm's
# included, refuses them, so dsc must report the syntax error where it is.
BROKEN = {
    "v1.13.4-spouts-SQS-S3__sqs-spout.json": "19:9: error: expecting ',' delimiter [syntax]",
    "v1.4.0-ml-tensorflow__pre-processing_and_generation.json":
        "18:11: error: expecting ',' delimiter [syntax]",
}
# Specs Pachyderm itself refuses: a transform without `cmd` (a worker runs it per datum).
REFUSED = {
    "head-root__test.json": "5:20: error: transform has no `cmd`: a worker runs it once per "
    "datum (Pachyderm refuses a pipeline without it too); give the command the image's "
    "entrypoint runs [no-command]",
}


def _corpus() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.name != "INDEX.md")


@needs_shared
def test_corpus_is_all_there() -> None:
    assert len(_corpus()) == 252


@needs_shared
@pytest.mark.parametrize("spec", _corpus(), ids=lambda p: p.name)
def test_corpus_spec_is_clean_or_unsupported(spec: Path) -> None:
    result = lint_paths([spec])
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    if spec.name in BROKEN or spec.name in REFUSED:
        assert [f"{d.line}:{d.col}: error: {d.message} [{d.code}]" for d in errors] == [
            BROKEN.get(spec.name) or REFUSED[spec.name]]
        return
    assert all(d.code == "unsupported" for d in errors), [
        f"{d.line}:{d.col} {d.message} [{d.code}]" for d in errors]
    for d in errors:
        assert d.message.startswith("dsc does not support "), d.message
        assert d.line >= 1 and d.col >= 1
    assert not result.could_not_run


@needs_shared
def test_corpus_unsupported_features_are_the_expected_ones() -> None:
    """The corpus exercises every refusal; a change that silently accepts one shows here."""
    seen: set[str] = set()
    for spec in _corpus():
        for d in lint_paths([spec]).diagnostics:
            if d.code == "unsupported":
                seen.add(d.message.split("(")[0].removeprefix("dsc does not support ").strip())
    for feature in ("spout pipelines", "service pipelines", "egress to an SQL database",
                    "S3 inputs", "s3_out", "build pipelines", "Pachyderm projects",
                    "Jsonnet pipeline templates", "the pre-1.4.6 spec dialect",
                    "shell-variable placeholders", "pipelines without an `input`"):
        assert any(s.startswith(feature) or feature in s for s in seen), (feature, sorted(seen))


@needs_shared
def test_seed_pipelines_lint_clean() -> None:
    result = run_dsc("lint", str(SEED))
    assert result.exit_code == 0, result.output
    assert ": error:" not in result.stdout


@needs_shared
def test_lint_output_does_not_depend_on_the_deprecated_jobs() -> None:
    # -j and DSC_JOBS are accepted for compatibility and change nothing. The corpus twice:
    # every pipeline is a duplicate whose message names the first file, so order shows.
    args = ["lint", *(str(p) for p in (*_corpus(), *_corpus()))]
    plain = run_dsc(*args)
    assert plain.exit_code == 1
    assert plain.stdout.count("[duplicate-pipeline]") > 200
    for other in (run_dsc(*args, "-j", "1"), run_dsc(*args, "-j", "2"),
                  run_dsc(*args, "--jobs", "3"), run_dsc(*args, env={"DSC_JOBS": "2"})):
        assert (other.exit_code, other.stdout, other.output) == (
            plain.exit_code, plain.stdout, plain.output)


@needs_shared
def test_load_without_models_keeps_only_what_the_checks_need() -> None:
    loaded = load_specs(_corpus(), models=False)
    assert loaded.pipelines == []
    assert len(loaded.graph) == len(loaded.documents) > 200
