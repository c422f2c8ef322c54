"""examples/ci: the CI/CD recipe is a valid GitHub Actions workflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

CI = ROOT / "examples" / "ci"
WORKFLOW = CI / "github-actions.yml"


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    # check-jsonschema's copy of SchemaStore's github-workflow schema, vendored in the package:
    # no network.
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         str(path)], capture_output=True, text=True, check=False)


def test_the_workflow_is_valid_against_the_github_workflow_schema(tmp_path: Path) -> None:
    done = _check_jsonschema(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr
    # ... and the schema is really applied: a misspelt key fails.
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:", 1))
    done = _check_jsonschema(broken)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "runs-on" in done.stdout + done.stderr


def _run_lines(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_the_workflow_lints_every_change_and_deploys_the_digest_its_build_pushed() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    # PyYAML reads YAML 1.1, where the key `on` is True.
    triggers = workflow.get("on", workflow.get(True))
    assert set(triggers) == {"pull_request", "push"}
    assert triggers["push"]["branches"] == ["main"]
    lint, deploy = workflow["jobs"]["lint"], workflow["jobs"]["deploy"]
    assert "if" not in lint
    assert 'dsc lint -o github "$SPECS"' in _run_lines(lint)
    assert deploy["needs"] == "lint"
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    (build,) = [s for s in deploy["steps"]
                if s.get("uses", "").startswith("docker/build-push-action@")]
    assert build["with"]["push"] is True
    (compile_step,) = [s for s in deploy["steps"] if "dsc compile" in s.get("run", "")]
    digest = "steps." + build["id"] + ".outputs.digest"
    assert compile_step["env"]["DIGEST"] == "${{ " + digest + " }}"
    assert '--set "image=$IMAGE_REPO@$DIGEST"' in compile_step["run"]
    steps = deploy["steps"]
    assert steps.index(build) < steps.index(compile_step) < next(
        i for i, s in enumerate(steps) if "kubectl apply -f manifests.yaml" in s.get("run", ""))
