"""examples/ci: the CI/CD recipe (README, "CI/CD") is a valid GitHub Actions workflow, and its
shell version runs here end to end, with the build and push replaced by a stub that prints a
digest and `kubectl apply` by ../shared/tools/validate_argo.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, SHARED, needs_shared

CI = ROOT / "examples" / "ci"
WORKFLOW = CI / "github-actions.yml"
SCRIPT = CI / "dsc-ci.sh"
SPECS = ROOT / "examples" / "hyperparameter"
VALIDATOR = SHARED / "tools" / "validate_argo.py"

REPO = "registry.example/team/iris"
TAG = "0123abc"
DIGEST = "sha256:" + "5e" * 32
# What dsc-ci.sh reads from the environment: none of the caller's reaches a test.
SETTINGS = ("IMAGE_REPO", "SPECS", "BUILD_CONTEXT", "TAG", "IMAGE_VALUE", "SPEC_ARGS",
            "LINT_ARGS", "COMPILE_ARGS", "MANIFESTS", "DSC", "BUILD_CMD", "APPLY_CMD")


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
    assert "push=true" in build["with"]["outputs"] and build["with"]["provenance"] is False
    assert build["env"]["SOURCE_DATE_EPOCH"] == 0, "an unchanged image must keep its digest"
    (compile_step,) = [s for s in deploy["steps"] if "dsc compile" in s.get("run", "")]
    digest = "steps." + build["id"] + ".outputs.digest"
    assert compile_step["env"]["DIGEST"] == "${{ " + digest + " }}"
    assert '--set "image=$IMAGE_REPO@$DIGEST"' in compile_step["run"]
    steps = deploy["steps"]
    assert steps.index(build) < steps.index(compile_step) < next(
        i for i, s in enumerate(steps) if "kubectl apply -f manifests.yaml" in s.get("run", ""))


def _stub(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def _ci(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run dsc-ci.sh in tmp_path, with no DSC_* setting of the caller's environment."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DSC_") and k not in SETTINGS}
    env |= {"SPECS": str(SPECS), "DSC": f"{sys.executable} -m compiler",
            "MANIFESTS": str(tmp_path / "manifests.yaml"), "TAG": TAG,
            "APPLY_CMD": _stub(tmp_path / "apply", f'echo "$@" >> {tmp_path}/applied\n')}
    env |= settings
    return subprocess.run([str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, check=False, timeout=120)


def _user_images(docs: list[Any]) -> dict[str, str]:
    """pipeline -> the image of its `user` container, from the compiled WorkflowTemplate."""
    (template,) = [d for d in docs if d["kind"] == "WorkflowTemplate"]
    return {t["metadata"]["labels"]["dsc.io/pipeline"]: c["image"]
            for t in template["spec"]["templates"] if "containerSet" in t
            for c in t["containerSet"]["containers"] if c["name"] == "user"}


@needs_shared
def test_the_shell_recipe_deploys_the_image_by_the_digest_the_build_printed(
        tmp_path: Path) -> None:
    build = _stub(tmp_path / "build", (
        f'echo "$1 $2" > {tmp_path}/built\n'
        'echo "pushing..." >&2\necho "a log line on stdout"\n'
        f"echo {DIGEST}\n"))
    # kubectl apply, offline: the repository's validator (--crd too would read Argo's full
    # CRDs, 6 s; tests/test_compile.py runs it on this example's manifests).
    apply = _stub(tmp_path / "apply-validate", (
        f'echo "$@" >> {tmp_path}/applied\n'
        f'exec "{sys.executable}" "{VALIDATOR}" --strict --rules "$@"\n'))
    done = _ci(tmp_path, "deploy", IMAGE_REPO=REPO, BUILD_CMD=build, APPLY_CMD=apply)
    assert done.returncode == 0, done.stdout + done.stderr

    manifests = tmp_path / "manifests.yaml"
    assert (tmp_path / "built").read_text() == f"{REPO}:{TAG} {SPECS}\n"
    assert (tmp_path / "applied").read_text() == f"{manifests}\n"
    assert f"dsc-ci: deployed {REPO}@{DIGEST}" in done.stderr
    report = done.stdout.splitlines()
    assert [line.split()[2] for line in report if line.startswith("ok ")] == [
        "WorkflowTemplate", "Workflow", "CronWorkflow"], done.stdout
    assert not [line for line in report if line.startswith("FAIL")], done.stdout

    text = manifests.read_text()
    assert f"{REPO}:{TAG}" not in text, "the tag reached the manifests"
    images = _user_images(list(yaml.safe_load_all(text)))
    # The seed demo's CI builds the image of `model` (examples/hyperparameter/Dockerfile); the
    # other pipelines keep the images their specs name.
    assert images["model"] == f"{REPO}@{DIGEST}"
    assert all(image == f"{REPO}@{DIGEST}" for image in images.values() if REPO in image)
    kinds = [d["kind"] for d in yaml.safe_load_all(text)]
    assert "Sensor" in kinds and "EventSource" in kinds, "COMPILE_ARGS defaults to --trigger"


def test_the_default_build_takes_the_pushed_digest_from_buildx_metadata(tmp_path: Path) -> None:
    # A `docker` that writes the metadata file as buildx does: the config digest (what
    # --iidfile names) first, then the digest of the pushed manifest.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir / "docker", (
        f'echo "$* SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH" > {tmp_path}/docker-args\n'
        'while [ "$1" != --metadata-file ]; do shift; done\n'
        "cat > \"$2\" <<EOF\n{\n"
        f'  "containerimage.config.digest": "sha256:{"c0" * 32}",\n'
        f'  "containerimage.digest": "{DIGEST}",\n'
        f'  "image.name": "{REPO}:{TAG}"\n}}\nEOF\n'))
    done = _ci(tmp_path, "deploy", IMAGE_REPO=REPO, COMPILE_ARGS="",
               PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert done.returncode == 0, done.stdout + done.stderr
    args = (tmp_path / "docker-args").read_text().split()
    assert args[:5] == ["buildx", "build", "--tag", f"{REPO}:{TAG}", "--provenance=false"]
    assert f"type=image,name={REPO}:{TAG},push=true,rewrite-timestamp=true" in args
    assert args[-2:] == [str(SPECS), "SOURCE_DATE_EPOCH=0"]
    images = _user_images(list(yaml.safe_load_all((tmp_path / "manifests.yaml").read_text())))
    assert images["model"] == f"{REPO}@{DIGEST}"


@pytest.mark.parametrize(("build", "says"), [
    ('echo "error: failed to solve" >&2\nexit 17\n', "build and push failed (exit 17)"),
    ("echo pushed\n", "the build's last line of output is 'pushed', not the pushed image's"),
    (f"echo {DIGEST[:-1]}\n", "not the pushed image's digest (sha256:<64 hex>)"),
], ids=["build-fails", "no-digest", "short-digest"])
def test_the_shell_recipe_stops_before_compiling_when_the_build_fails(
        tmp_path: Path, build: str, says: str) -> None:
    (tmp_path / "manifests.yaml").write_text("kind: Workflow  # left by an earlier run\n")
    done = _ci(tmp_path, "deploy", IMAGE_REPO=REPO, BUILD_CMD=_stub(tmp_path / "build", build))
    assert done.returncode == 1, done.stdout + done.stderr
    assert says in done.stderr
    assert "nothing was compiled or applied" in done.stderr
    assert not (tmp_path / "applied").exists()
    assert not (tmp_path / "manifests.yaml").exists()


def test_the_shell_recipe_applies_nothing_when_the_compile_fails(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "edges.json.j2").write_text(
        '{"pipeline": {"name": "edges"}, "transform": {"image": "{{ image }}", '
        '"cmd": ["sh"]}, "input": {"pfs": {"repo": "images", "glob": "/[a"}}}\n')
    build = _stub(tmp_path / "build", f"echo {DIGEST}\n")
    done = _ci(tmp_path, "deploy", IMAGE_REPO=REPO, BUILD_CMD=build, SPECS=str(specs))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "[glob-syntax]" in done.stderr
    assert "dsc compile failed (exit 1): nothing was applied" in done.stderr
    assert not (tmp_path / "applied").exists()
    assert not (tmp_path / "manifests.yaml").exists()


@pytest.mark.parametrize(("settings", "says"), [
    ({}, "set IMAGE_REPO to the repository"),
    ({"IMAGE_REPO": "registry.example:5000/iris:1"}, "without a tag or digest"),
], ids=["no-repo", "repo-with-tag"])
def test_the_shell_recipe_refuses_a_missing_or_tagged_repository(
        tmp_path: Path, settings: dict[str, str], says: str) -> None:
    done = _ci(tmp_path, "deploy", BUILD_CMD=_stub(tmp_path / "build", "touch built\n"),
               **settings)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert not (tmp_path / "built").exists()


def test_the_shell_recipe_lints(tmp_path: Path) -> None:
    done = _ci(tmp_path, "lint", LINT_ARGS="-o github")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "::notice file=" in done.stdout and "title=dsc mutable-image::" in done.stdout
    assert _ci(tmp_path, "publish").returncode == 2


def test_the_readme_shows_both_recipes_where_dsc_lint_points() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "\n## CI/CD\n" in readme  # `mutable-image` says: README "CI/CD"
    section = readme.split("\n## CI/CD\n", 1)[1].split("\n## ", 1)[0]
    assert "examples/ci/github-actions.yml" in section and "examples/ci/dsc-ci.sh" in section
