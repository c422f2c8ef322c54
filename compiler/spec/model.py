"""The typed pipeline model every later stage reads: one dialect (2.x `pfs`), defaults applied.

Every node keeps `at`, the JSON path of the object it came from, so a check on the model can
point at the exact line and column in the user's file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from compiler.spec.source import JsonPath

DEFAULT_IMAGE_1X = "ubuntu:16.04"  # pps DefaultUserImage, v1.7.0 .. v1.13.4
DEFAULT_IMAGE_2X = "ubuntu:20.04"  # 2.x defaults.go
DEFAULT_DATUM_TRIES = 3  # DefaultDatumTries


@dataclass(frozen=True, slots=True)
class PfsInput:
    """One repo input (`pfs`, or 1.x `atom`, which is normalised to this)."""

    name: str
    repo: str
    glob: str
    branch: str | None  # None: the configured default branch
    commit: str | None = None
    join_on: str | None = None
    outer_join: bool = False
    group_by: str | None = None
    lazy: bool = False
    empty_files: bool = False
    s3: bool = False
    at: JsonPath = ()
    from_atom: bool = False


@dataclass(frozen=True, slots=True)
class CronInput:
    """A `cron` input: a tick repo that gets a commit on the schedule `spec`."""

    name: str
    spec: str
    repo: str
    start: str | None = None
    overwrite: bool = False
    at: JsonPath = ()


@dataclass(frozen=True, slots=True)
class CombinedInput:
    """`cross`, `union`, `join` or `group` over member inputs."""

    kind: str
    members: tuple[Input, ...]
    at: JsonPath = ()


Input = Union[PfsInput, CronInput, CombinedInput]  # noqa: UP007 (a runtime alias on 3.10)


@dataclass(frozen=True, slots=True)
class Gpu:
    """GPUs a datum pod asks for: the Kubernetes resource `type` and how many."""

    type: str
    number: int


@dataclass(frozen=True, slots=True)
class Resources:
    """CPU, memory, disk and GPUs (`resource_requests`, `resource_limits`, sidecar ones)."""

    cpu: float | None = None
    memory: str | None = None
    disk: str | None = None
    gpu: Gpu | None = None


@dataclass(frozen=True, slots=True)
class SecretMount:
    """A Kubernetes secret given to the datum: mounted as files, or one key as an env var."""

    name: str
    mount_path: str | None = None
    env_var: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Transform:
    """What a datum runs: the image, its command and stdin, env, secrets, accepted codes."""

    image: str
    image_defaulted: bool
    cmd: tuple[str, ...] = ()
    stdin: tuple[str, ...] = ()
    err_cmd: tuple[str, ...] = ()
    err_stdin: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[SecretMount, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    accept_return_code: tuple[int, ...] = ()
    user: str | None = None
    working_dir: str | None = None
    debug: bool = False
    memory_volume: bool = False


@dataclass(frozen=True, slots=True)
class Parallelism:
    """`parallelism_spec`: a constant number of workers, or a 1.x coefficient of nodes."""

    constant: int | None = None
    coefficient: float | None = None


@dataclass(frozen=True, slots=True)
class Toleration:
    """A Kubernetes toleration for the datum pods (`tolerations`)."""

    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Pipeline:
    """One pipeline spec, normalised. `dialect` is "1.x" or "2.x" (decides the default image)."""

    name: str
    dialect: str
    transform: Transform
    input: Input | None
    description: str = ""
    datum_tries: int = DEFAULT_DATUM_TRIES
    datum_timeout: float | None = None  # seconds
    job_timeout: float | None = None  # seconds
    parallelism: Parallelism = field(default_factory=Parallelism)
    resource_requests: Resources | None = None
    resource_limits: Resources | None = None
    sidecar_resource_limits: Resources | None = None
    sidecar_resource_requests: Resources | None = None
    output_branch: str | None = None  # None: the configured default branch
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    node_selector: tuple[tuple[str, str], ...] = ()
    priority_class_name: str | None = None
    tolerations: tuple[Toleration, ...] = ()
    pod_spec: dict[str, Any] | None = None  # JSON merge patch (RFC 7386)
    pod_patch: tuple[dict[str, Any], ...] | None = None  # JSON patch (RFC 6902)
    reprocess_spec: str = "until_success"
    salt: str | None = None
    path: str = ""  # the file it came from
    at: JsonPath = ()  # where the spec starts inside that file (an index for arrays)

    def inputs(self) -> list[Input]:
        """Every input node, depth first (combined inputs before their members)."""
        found: list[Input] = []
        stack: list[Input] = [self.input] if self.input is not None else []
        while stack:
            node = stack.pop()
            found.append(node)
            if isinstance(node, CombinedInput):
                stack.extend(reversed(node.members))
        return found

    def repos(self) -> list[str]:
        """The repos this pipeline reads, in spec order, without duplicates."""
        seen: dict[str, None] = {}
        for node in self.inputs():
            if isinstance(node, (PfsInput, CronInput)):
                seen.setdefault(node.repo)
        return list(seen)
