"""The runtime image's Dockerfile, checked without a Docker engine: what the final stage may
hold and run as, and that the wheels it installs carry what `dsc runtime` needs."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|python3?-dev|libc6?-dev"
                         r"|musl-dev)\b")
PACKAGE_INSTALL = re.compile(r"\b(apt-get|apt|apk|dnf|yum|microdnf)\b[^&;|]*\b(install|add)\b")


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str  # the FROM image, global ARG defaults substituted
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions per stage: continuation lines joined, comments dropped, the global ARG
    defaults (those before the first FROM) substituted into FROM as BuildKit does."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    defaults: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            image, *rest = instruction.args.split()
            for name, value in defaults.items():
                image = image.replace("${" + name + "}", value).replace("$" + name, value)
            alias = rest[1] if len(rest) == 2 and rest[0].upper() == "AS" else None
            stages.append(Stage(image, alias))
        elif not stages:
            assert instruction.keyword == "ARG", f"line {instruction.line}: before FROM"
            name, _, value = instruction.args.partition("=")
            defaults[name] = value
        else:
            stages[-1].instructions.append(instruction)
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def test_multi_stage_on_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    slim = re.compile(r"python:3\.1[2-9]-slim(-\w+)?(@sha256:[0-9a-f]{64})?")
    for stage in stages:
        assert slim.fullmatch(stage.base), stage.base
    # one Python for building and running: the wheels of compiled dependencies
    # (pydantic-core, PyYAML) are built for the builder's interpreter
    assert len({stage.base for stage in stages}) == 1
    assert stages[-1].name is None and stages[0].name == "builder"


def test_final_stage_runs_dsc_as_a_numeric_non_root_user(stages: list[Stage]) -> None:
    final = stages[-1]
    users = final.all("USER")
    assert users, "the final stage sets no USER: the image would run as root"
    user = users[-1].args
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user}: Kubernetes' runAsNonRoot needs a UID"
    assert all(int(part) != 0 for part in user.split(":"))
    (entrypoint,) = final.all("ENTRYPOINT")
    # exec form: compiled manifests pass `args: [runtime, <verb>, ...]` and no command
    assert json.loads(entrypoint.args) == ["dsc"]
    for instruction in final.all("CMD"):
        assert instruction.args.startswith("["), "CMD in shell form would run under /bin/sh"
    # the user's UID/GID are created with the ids USER names
    runs = " ".join(i.args for i in final.all("RUN"))
    uid = user.split(":")[0]
    assert f"--uid {uid}" in runs


def test_final_stage_installs_only_the_builders_wheels(stages: list[Stage]) -> None:
    builder, final = stages[0], stages[-1]
    taken: list[str] = []
    for instruction in final.all("COPY") + final.all("ADD"):
        flags = dict(re.findall(r"--(\w+)=(\S+)", instruction.args))
        assert flags.get("from") == builder.name, (
            f"line {instruction.line}: the final stage copies from the build context "
            "(the source tree)")
        sources = [a for a in shlex.split(instruction.args) if not a.startswith("--")][:-1]
        taken += sources
    for instruction in final.all("RUN"):
        for mount in re.findall(r"--mount=(\S+)", instruction.args):
            options = dict(o.partition("=")[::2] for o in mount.split(","))
            if options.get("from"):
                assert options["from"] == builder.name
                taken.append(options.get("source", "/"))
    assert taken, "the final stage takes nothing from the builder"
    for source in taken:
        assert source == "/wheels" or re.fullmatch(r"/wheels/[^/]*\.whl", source), source
    install = " ".join(i.args for i in final.all("RUN"))
    assert "pip install" in install
    assert "--no-index" in install  # nothing but the builder's wheels
    assert "--no-cache-dir" in install or any(
        "PIP_NO_CACHE_DIR=1" in i.args for i in final.all("ENV"))


def test_final_stage_installs_no_build_tools(stages: list[Stage]) -> None:
    for instruction in stages[-1].all("RUN"):
        assert not BUILD_TOOLS.search(instruction.args), (
            f"line {instruction.line}: build tools in the final stage")
        assert not PACKAGE_INSTALL.search(instruction.args), (
            f"line {instruction.line}: a system package installed in the final stage")


def test_builder_makes_the_dsc_wheel_and_its_dependencies(stages: list[Stage]) -> None:
    runs = [i.args for i in stages[0].all("RUN")]
    assert any(re.search(r"pip wheel --no-deps --wheel-dir /wheels \.", r) for r in runs)
    assert any(re.search(r"pip wheel --wheel-dir /deps \.", r) for r in runs)


def test_oci_labels(stages: list[Stage]) -> None:
    labels = " ".join(i.args for i in stages[-1].all("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_dockerignore_sends_only_what_the_builder_copies(stages: list[Stage]) -> None:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"  # an allowlist: .git, .venv, tests never reach the daemon
    allowed = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
    copied = []
    for instruction in stages[0].all("COPY"):
        if "--from" not in instruction.args:
            copied += shlex.split(instruction.args)[:-1]
    assert copied
    for source in copied:
        path = source.rstrip("/")
        assert any(path == a or path.startswith(a + "/") for a in allowed), source
        assert (ROOT / path).exists(), source


# --- the wheels, built the way the builder builds them -----------------------------------------

def _wheel(source: Path, out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(out), str(source)], check=True, capture_output=True,
                   timeout=600)
    (wheel,) = out.glob("dsc-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_runs_installed_without_the_source_tree(tmp_path: Path) -> None:
    wheel = _wheel(ROOT, tmp_path / "wheels")
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(site)
    assert {"compiler/cli.py", "compiler/contract/__init__.py", "compiler/contract/job.py",
            "compiler/commands/run.py", "compiler/lakefs/client.py",
            "compiler/schemas/pipeline.schema.json",
            "compiler/schemas/config.schema.json"} <= names
    assert not any(n.startswith(("tests/", "schemas/", "examples/")) for n in names)
    # Installed: `compiler` from the unpacked wheel, nothing from this checkout (-I: no cwd,
    # no PYTHONPATH), run from a directory that has no schemas/.
    code = (f"import sys; sys.path.insert(0, {str(site)!r})\n"
            "import compiler\n"
            "from compiler.spec.schema import schema_path\n"
            "print(compiler.__file__)\n"
            "print(schema_path('pipeline.schema.json'))\n"
            "print(schema_path('config.schema.json'))\n"
            "from compiler.cli import main\n"
            "sys.argv = ['dsc', 'schema', '--config']\n"
            "main()\n")
    run = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    package, pipeline, config = run.stdout.splitlines()[:3]
    assert Path(package).is_relative_to(site)
    assert Path(pipeline) == site / "compiler" / "schemas" / "pipeline.schema.json"
    assert Path(config) == site / "compiler" / "schemas" / "config.schema.json"
    printed = json.loads("\n".join(run.stdout.splitlines()[3:]))
    assert printed == json.loads((ROOT / "schemas" / "config.schema.json").read_text())


@pytest.mark.slow
def test_the_dependency_layer_builds_from_its_few_files(tmp_path: Path) -> None:
    # The builder resolves dependencies before copying the code, from pyproject.toml,
    # README.md, schemas/ and compiler/__init__.py alone: hatchling must accept that tree.
    stub = tmp_path / "src"
    (stub / "compiler").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, stub / name)
    shutil.copytree(ROOT / "schemas", stub / "schemas")
    shutil.copy(ROOT / "compiler" / "__init__.py", stub / "compiler" / "__init__.py")
    wheel = _wheel(stub, tmp_path / "deps")
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith("METADATA"))
        requires = archive.read(metadata).decode()
    assert "Requires-Dist: lakefs-sdk" in requires and "Requires-Dist: click" in requires
