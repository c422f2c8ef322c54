"""The pre-commit hook, run for real: `pre-commit try-repo` against this repository.

Slow (pre-commit builds a virtualenv and pip-installs dsc into it), so both tests share one
PRE_COMMIT_HOME per session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(),
    reason="needs git and a git checkout of dsc (pre-commit installs hooks from a repository)")

GOOD = ('{"pipeline": {"name": "edges"}, "transform": {"image": "pachyderm/opencv:1.0", '
        '"cmd": ["python3", "/edges.py"]}, "input": {"pfs": {"repo": "images", "glob": "/*"}}}\n')


@pytest.fixture(scope="session")
def pre_commit_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("pre-commit-home")
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    env.pop("PRE_COMMIT", None)
    return env


def _git(cwd: Path, *args: str, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _pre_commit(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_try_repo_lints_specs_and_leaves_other_yaml_alone(
        tmp_path: Path, pre_commit_env: dict[str, str]) -> None:
    project = tmp_path / "project"
    (project / "pipelines").mkdir(parents=True)
    (project / "pipelines" / "edges.json").write_text(GOOD)
    (project / "pipelines" / "broken.yaml").write_text(
        "pipeline: {name: broken}\ntransform: {image: 'a:1', cmd: [x]}\n"
        "input: {pfs: {repo: images, glob: '/[a'}}\n")
    (project / "ci.yaml").write_text("jobs: {build: {runs-on: ubuntu}}\n")  # not a spec
    (project / "model.pipeline.json").write_text(GOOD.replace("edges", "model"))
    _git(project, "init", "-q", env=pre_commit_env)
    _git(project, "add", ".", env=pre_commit_env)
    run = _pre_commit(project, pre_commit_env, "try-repo", str(ROOT), "dsc-lint", "--all-files",
                      "--verbose")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "pipelines/broken.yaml:3:35: error: glob '/[a': unclosed '['" in run.stdout
    assert "[glob-syntax]" in run.stdout
    assert "ci.yaml" not in run.stdout.replace("pre-commit-config", "")
    (project / "pipelines" / "broken.yaml").unlink()
    _git(project, "add", "-A", env=pre_commit_env)
    clean = _pre_commit(project, pre_commit_env, "try-repo", str(ROOT), "dsc-lint",
                        "--all-files")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "dsc lint" in clean.stdout and "Passed" in clean.stdout


def test_repository_dogfoods_its_hook_on_examples(tmp_path: Path,
                                                  pre_commit_env: dict[str, str]) -> None:
    clone = tmp_path / "clone"
    _git(ROOT, "clone", "-q", str(ROOT), str(clone), env=pre_commit_env)
    run = _pre_commit(clone, pre_commit_env, "run", "dsc-lint", "--all-files")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Passed" in run.stdout
