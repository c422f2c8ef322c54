"""The dsc configuration (DESIGN.md §6): `dsc.yaml`, then DSC_* variables, then flags.

The file is found in the working directory or given with `--config`; it is checked against
`schemas/config.schema.json` and its errors are located like spec errors. Everything has a
default, so no file is needed to try dsc.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler import kit
from compiler.diagnostics import Diagnostic, Severity
from compiler.spec.names import lakefs_repo_name

if TYPE_CHECKING:
    from compiler.spec.schema import Validator

CONFIG_FILE = "dsc.yaml"
# kubectl's client-side apply keeps a copy of the object in a 256 KiB annotation; the budget
# leaves room for the metadata kubectl and the API server add around it.
DEFAULT_SIZE_BUDGET = 240 * 1024
# Argo's controller refuses a Workflow over 1 MiB (MAX_WORKFLOW_SIZE), and a run stores the
# templates it uses in its status; 900 KiB of them leaves room for the node status (which
# Argo compresses, and can offload). ../shared/reference/argo/rules.md §12.
DEFAULT_STORED_BUDGET = 900 * 1024
# Workers are pods and nodes of the Workflow's status (~0.75 KiB each, compressed past ~1,300
# nodes; Argo users hit a wall between 10k and 50k nodes): the most one pipeline may ask for.
DEFAULT_MAX_WORKERS = 1_000


@dataclass(frozen=True, slots=True)
class SecretKeys:
    endpoint: str = "endpoint"
    access_key_id: str = "access_key_id"
    secret_access_key: str = "secret_access_key"


@dataclass(frozen=True, slots=True)
class LakeFS:
    endpoint: str | None = None  # None: the Secret's `endpoint` key
    ui_url: str | None = None
    secret: str = "dsc-lakefs"
    secret_keys: SecretKeys = field(default_factory=SecretKeys)
    storage_namespace: str | None = None  # with {repo}; None: `open` never creates repos
    # Seconds one request may wait for lakeFS's answer (a call with retries: twice that);
    # None: 30 s (compiler.lakefs.client.DEFAULT_TIMEOUT).
    timeout: int | None = None


# The lakeFS events that put a new commit on a branch. post-revert needs lakeFS >= 1.52 and
# post-cherry-pick >= 1.63; an event a server does not know disables every action of the
# repository, so older servers list only the first two.
TRIGGER_EVENTS = ("post-commit", "post-merge", "post-revert", "post-cherry-pick")


@dataclass(frozen=True, slots=True)
class Triggers:
    """`dsc compile --trigger` and `dsc triggers` (issue 7)."""

    webhook_url: str | None = None  # None: the EventSource's Service in `namespace`
    token_env: str = kit.TOKEN_ENV
    events: tuple[str, ...] = TRIGGER_EVENTS
    timeout: str = "30s"  # the lakeFS webhook's timeout, a Go duration
    schedule: str = "*/15 * * * *"  # the reconciler's


@dataclass(frozen=True, slots=True)
class Config:
    """What a cluster needs that specs do not say."""

    runtime_image: str = "ghcr.io/dsc-project/dsc:0.1.0"
    namespace: str | None = None
    service_account: str | None = None
    default_branch: str = "main"
    nodes: int | None = None  # None: not configured (a coefficient then assumes 1, warned)
    keep_failed_branches: bool = False
    argo_ui_url: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    repos: dict[str, str] = field(default_factory=dict)
    lakefs: LakeFS = field(default_factory=LakeFS)
    triggers: Triggers = field(default_factory=Triggers)
    size_budget: int = DEFAULT_SIZE_BUDGET
    stored_budget: int = DEFAULT_STORED_BUDGET
    max_workers: int = DEFAULT_MAX_WORKERS
    max_datums: int | None = None  # an optional budget of datums per job; none: no ceiling
    source: str | None = None  # the file it came from, for messages

    def lakefs_repo(self, repo: str) -> str:
        """The lakeFS repository holding Pachyderm repo `repo`: the mapping, else sanitised."""
        return self.repos.get(repo) or lakefs_repo_name(repo)


# DSC_* variables, each overriding one key of the file (flags override both).
ENVIRONMENT = {
    "DSC_RUNTIME_IMAGE": ("runtime_image",),
    "DSC_NAMESPACE": ("namespace",),
    "DSC_SERVICE_ACCOUNT": ("service_account",),
    "DSC_DEFAULT_BRANCH": ("default_branch",),
    "DSC_NODES": ("nodes",),
    "DSC_ARGO_UI_URL": ("argo_ui_url",),
    "DSC_LAKEFS_ENDPOINT": ("lakefs", "endpoint"),
    "DSC_LAKEFS_UI_URL": ("lakefs", "ui_url"),
    "DSC_LAKEFS_SECRET": ("lakefs", "secret"),
    "DSC_LAKEFS_TIMEOUT": ("lakefs", "timeout"),
}


class ConfigError(Exception):
    """A configuration dsc cannot use: the located diagnostics say why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("; ".join(d.message for d in diagnostics))
        self.diagnostics = diagnostics


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None,
                overrides: Mapping[tuple[str, ...], Any] | None = None,
                cwd: Path | None = None) -> Config:
    """The file (`path`, else `dsc.yaml` in `cwd` if present), then `environ`, then
    `overrides` (flags; None values are ignored). Raises ConfigError, located."""
    data: dict[str, Any] = {}
    display: str | None = None
    if path is None:
        found = (cwd or Path.cwd()) / CONFIG_FILE
        path = found if found.is_file() else None
    if path is not None:
        display = str(path)
        data = _read(path, display)
    environ = os.environ if environ is None else environ
    layered: list[tuple[tuple[str, ...], Any, str]] = [
        (key, environ[var], var) for var, key in ENVIRONMENT.items() if environ.get(var)]
    layered += [(key, value, "--" + "-".join(key).replace("_", "-"))
                for key, value in (overrides or {}).items() if value is not None]
    for key, value, origin in layered:
        if key in (("nodes",), ("lakefs", "timeout")) and isinstance(value, str):
            if not value.isdigit() or int(value) < 1:
                raise ConfigError([Diagnostic(origin, 0, 0, Severity.ERROR, "config",
                                              f"{origin} must be a whole number >= 1, "
                                              f"not {value!r}")])
            value = int(value)
        target = data
        for part in key[:-1]:
            target = target.setdefault(part, {})
        target[key[-1]] = value
    _check(data, display or "<environment>")
    return _build(data, display)


def _read(path: Path, display: str) -> dict[str, Any]:
    from compiler.spec.loader import read_documents
    from compiler.spec.source import LoadError

    try:
        documents = read_documents(path, display, {})
    except LoadError as exc:
        raise ConfigError([Diagnostic(display, exc.line, exc.col, Severity.ERROR, exc.code,
                                      exc.message)]) from None
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise ConfigError([Diagnostic(display, 1, 1, Severity.ERROR, "config",
                                      "a dsc config is one mapping (see `dsc schema --config`)")])
    doc = documents[0]
    problems = []
    for v in _validator().violations(doc.data):
        line, col = doc.source.locate(v.path, key=v.at_key)
        problems.append(Diagnostic(display, line, col, Severity.ERROR, v.code,
                                   f"config: {v.message}", _pointer(v.path)))
    if problems:
        raise ConfigError(problems)
    data: dict[str, Any] = doc.data
    return data


def _check(data: dict[str, Any], display: str) -> None:
    """The environment and flags meet the same schema as the file (unlocated: no file)."""
    problems = [Diagnostic(display, 0, 0, Severity.ERROR, v.code, f"config: {v.message}",
                           _pointer(v.path)) for v in _validator().violations(data)]
    if problems:
        raise ConfigError(problems)


@cache
def _validator() -> Validator:
    from compiler.spec.schema import Validator, load_schema

    return Validator(load_schema("config.schema.json"), ref="#/$defs/config")


def _pointer(path: tuple[Any, ...]) -> str:
    return "".join(f"/{part}" for part in path)


def _build(data: dict[str, Any], source: str | None) -> Config:
    lakefs = dict(data.get("lakefs") or {})
    keys = SecretKeys(**(lakefs.pop("secret_keys", None) or {}))
    limits = data.get("limits") or {}
    triggers = dict(data.get("triggers") or {})
    if "events" in triggers:
        triggers["events"] = tuple(triggers["events"])
    plain = {k: v for k, v in data.items() if k not in ("lakefs", "limits", "triggers")}
    config = Config(**plain, lakefs=LakeFS(**lakefs, secret_keys=keys),
                    triggers=Triggers(**triggers), source=source)
    return replace(config, **{k: v for k, v in limits.items()})
