"""Turn one raw spec (any dialect, any key spelling) into the typed model.

Defensive by design: the schema has already reported values of the wrong type, so a value that
is not what the model needs is skipped here (its default is used) rather than reported twice.
What only this stage can see (durations, 64-bit ranges, the JSON inside `pod_spec`, an input
that sets two kinds) becomes a Finding.
"""

from __future__ import annotations

import json
from typing import Any

from compiler.diagnostics import Finding, Severity
from compiler.spec.model import (
    DEFAULT_DATUM_TRIES,
    DEFAULT_IMAGE_1X,
    DEFAULT_IMAGE_2X,
    CombinedInput,
    CronInput,
    Gpu,
    Input,
    Parallelism,
    PfsInput,
    Pipeline,
    Resources,
    SecretMount,
    Toleration,
    Transform,
)
from compiler.spec.source import JsonPath, canonical_key
from compiler.spec.values import parse_duration, parse_int

# Objects whose keys are user data (environment variables, labels), never spec field names.
MAP_FIELDS = frozenset({"env", "labels", "annotations", "node_selector"})
INPUT_KINDS = ("pfs", "atom", "cross", "union", "join", "group", "cron", "git")
COMBINED_KINDS = ("cross", "union", "join", "group")
# Keys whose presence marks a 1.x spec (spec.md §2, §3.6); they decide the default image.
ONE_X_KEYS = frozenset({"standby", "enable_stats", "cache_size", "max_queue_size", "chunk_spec",
                        "hashtree_spec", "incremental", "scale_down_threshold", "batch"})
PATCH_OPS = {"add": ("path", "value"), "remove": ("path",), "replace": ("path", "value"),
             "move": ("from", "path"), "copy": ("from", "path"), "test": ("path", "value")}


def canonicalize(raw: Any, at: JsonPath, findings: list[Finding]) -> Any:
    """`raw` with snake_case keys; both spellings of one field is an error.

    Returns `raw` itself where nothing needed renaming (the common case), a copy otherwise.
    """
    if isinstance(raw, list):
        items = [canonicalize(v, (*at, i), findings) for i, v in enumerate(raw)]
        return raw if all(a is b for a, b in zip(items, raw, strict=True)) else items
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    changed = False
    for key, value in raw.items():
        canon = canonical_key(key)
        if canon in out:
            findings.append(Finding((*at, canon), "duplicate-field", (
                f"`{key}` and `{spelled[canon]}` are the same field; keep one spelling"),
                at_key=True))
            changed = True
            continue
        spelled[canon] = key
        new = value if canon in MAP_FIELDS else canonicalize(value, (*at, canon), findings)
        changed = changed or canon != key or new is not value
        out[canon] = new
    return out if changed else raw


def drop_null_fields(raw: Any) -> Any:
    """`raw` without the fields set to null, which Pachyderm reads as unset.

    2.x parses a spec with protojson, which skips a field whose JSON value is null unless it
    is a google.protobuf.Value (encoding/protojson/decode.go, unmarshalMessage: "No need to
    set values for JSON null"); 1.x and 2.0-2.6 used gogo jsonpb, which does the same. So
    `"secrets": null`, as Pachyderm's own Jsonnet examples render an absent list, is no
    secrets, and a YAML `env:` with nothing after it is no environment. A null inside a list
    or as the value of a map (`env`, `labels`...) is not a field: protojson refuses it, and
    it is left for the schema to report. Returns `raw` itself when nothing was dropped.
    """
    if isinstance(raw, list):
        items = [drop_null_fields(v) for v in raw]
        return raw if all(a is b for a, b in zip(items, raw, strict=True)) else items
    if not isinstance(raw, dict):
        return raw
    out: dict[str, Any] = {}
    changed = False
    for key, value in raw.items():
        if value is None:
            changed = True
            continue
        new = value if canonical_key(key) in MAP_FIELDS else drop_null_fields(value)
        changed = changed or new is not value
        out[key] = new
    return out if changed else raw


class _Normalizer:
    def __init__(self, spec: dict[str, Any], at: JsonPath, findings: list[Finding]) -> None:
        self.spec = spec
        self.at = at
        self.findings = findings
        self.one_x = False

    def report(self, path: JsonPath, code: str, message: str,
               severity: Severity = Severity.ERROR) -> None:
        self.findings.append(Finding(path, code, message, severity))

    def pipeline(self, path: str) -> Pipeline | None:
        spec, at = self.spec, self.at
        name = _get(spec, "pipeline", dict, {}).get("name")
        if not isinstance(name, str):
            return None  # the schema reported it
        self.one_x = bool(ONE_X_KEYS & spec.keys())
        input_node = self.input(spec["input"], (*at, "input")) if isinstance(
            spec.get("input"), dict) else None
        transform_raw = _get(spec, "transform", dict, {})
        parallelism_raw = _get(spec, "parallelism_spec", dict, {})
        if "coefficient" in parallelism_raw or "strategy" in parallelism_raw:
            self.one_x = True
        resources = {k: self.resources(spec.get(k), (*at, k)) for k in (
            "resource_requests", "resource_limits", "sidecar_resource_limits",
            "sidecar_resource_requests")}
        transform = self.transform(transform_raw, (*at, "transform"))
        scheduling = _get(spec, "scheduling_spec", dict, {})
        metadata = _get(spec, "metadata", dict, {})
        tries = self.integer(spec, "datum_tries", at, unsigned=False)
        if tries is not None and tries < 1:
            self.report((*at, "datum_tries"), "invalid-value",
                        f"`datum_tries` is the total number of attempts; it must be at least 1, "
                        f"not {tries}")
            tries = None
        return Pipeline(
            name=name,
            dialect="1.x" if self.one_x else "2.x",
            transform=transform,
            input=input_node,
            description=_get(spec, "description", str, ""),
            datum_tries=tries if tries is not None else DEFAULT_DATUM_TRIES,
            datum_timeout=self.duration(spec, "datum_timeout", at),
            job_timeout=self.duration(spec, "job_timeout", at),
            parallelism=self.parallelism(parallelism_raw, (*at, "parallelism_spec")),
            resource_requests=resources["resource_requests"],
            resource_limits=resources["resource_limits"],
            sidecar_resource_limits=resources["sidecar_resource_limits"],
            sidecar_resource_requests=resources["sidecar_resource_requests"],
            output_branch=_get(spec, "output_branch", str, None) or None,
            labels=_pairs(metadata.get("labels")),
            annotations=_pairs(metadata.get("annotations")),
            node_selector=_pairs(scheduling.get("node_selector")),
            priority_class_name=_get(scheduling, "priority_class_name", str, None),
            tolerations=tuple(self.toleration(t, (*at, "tolerations", i)) for i, t in enumerate(
                _get(spec, "tolerations", list, [])) if isinstance(t, dict)),
            pod_spec=self.pod_spec(spec, at),
            pod_patch=self.pod_patch(spec, at),
            reprocess_spec=_get(spec, "reprocess_spec", str, "until_success"),
            salt=_get(spec, "salt", str, None),
            path=path,
            at=at,
        )

    def parallelism(self, raw: dict[str, Any], at: JsonPath) -> Parallelism:
        constant = self.integer(raw, "constant", at, unsigned=True)
        coefficient = _number(raw.get("coefficient"))
        strategy = raw.get("strategy")
        if strategy is None:
            return Parallelism(constant=constant, coefficient=coefficient)
        # Pachyderm 1.4.0-1.4.8 (`ParallelismSpec.strategy`, removed in 1.5.0): the strategy
        # picks the field that counts and the other is ignored; CONSTANT (the enum's zero
        # value) without a positive constant starts one worker per node, and COEFFICIENT
        # without a coefficient starts none, which is an error (GetExpectedNumWorkers in
        # src/server/pps/server/api_server.go, v1.4.8).
        if strategy in ("COEFFICIENT", 1):
            kept, ignored = "coefficient", "constant"
            if not coefficient:
                self.report((*at, "coefficient"), "invalid-value", (
                    "`strategy: COEFFICIENT` takes the worker count from `coefficient`, which "
                    "is not set: Pachyderm 1.4 starts no workers; set `coefficient`, or "
                    "`strategy: CONSTANT` with `constant`"))
            parallelism = Parallelism(coefficient=coefficient)
        elif strategy in ("CONSTANT", 0):
            kept, ignored = "constant", "coefficient"
            parallelism = Parallelism(constant=constant) if constant else Parallelism(
                coefficient=1.0)
        else:
            return Parallelism(constant=constant, coefficient=coefficient)  # schema reported
        if raw.get(ignored) is not None:
            self.findings.append(Finding((*at, ignored), "no-effect", (
                f"`{ignored}` has no effect: `strategy: {strategy}` takes the worker count "
                f"from `{kept}` (Pachyderm 1.4)"), Severity.WARNING, at_key=True))
        return parallelism

    # -- inputs ---------------------------------------------------------------------------
    def input(self, raw: dict[str, Any], at: JsonPath) -> Input | None:
        kinds = [k for k in INPUT_KINDS if k in raw]
        if len(kinds) > 1:
            self.report((*at, kinds[1]), "input-type", (
                f"an input is exactly one of pfs, cross, union, join, group or cron; this one "
                f"sets {' and '.join(f'`{k}`' for k in kinds)}"))
            return None
        if not kinds:
            if not raw:
                self.report(at, "input-type", "the input is empty; give it one of pfs, cross, "
                            "union, join, group or cron")
            return None
        kind = kinds[0]
        value = raw[kind]
        if kind in COMBINED_KINDS:
            if not isinstance(value, list):
                return None
            if not value:
                self.report((*at, kind), "invalid-value", f"`{kind}` needs at least one input")
            members = []
            for i, member in enumerate(value):
                node = self.input(member, (*at, kind, i)) if isinstance(member, dict) else None
                if node is not None:
                    members.append(node)
            return CombinedInput(kind, tuple(members), at)
        if not isinstance(value, dict):
            return None
        if kind == "cron":
            return self.cron(value, (*at, kind))
        if kind == "git":
            self.one_x = True
            return None  # reported as unsupported
        if kind == "atom":
            self.one_x = True
        return self.pfs(value, (*at, kind), from_atom=kind == "atom")

    def pfs(self, raw: dict[str, Any], at: JsonPath, *, from_atom: bool) -> PfsInput | None:
        repo = raw.get("repo")
        if not isinstance(repo, str):
            return None
        glob = raw.get("glob")
        if not isinstance(glob, str) and not raw.get("s3"):
            self.report(at, "missing-field", (
                f"the input on repo `{repo}` has no `glob`; Pachyderm refuses that, dsc uses "
                "`/` (the whole commit is one datum; `/*` would make one per top-level entry)"),
                Severity.WARNING)
        name = raw.get("name")
        return PfsInput(
            name=name if isinstance(name, str) and name else repo,
            repo=repo,
            glob=glob if isinstance(glob, str) else "/",
            branch=_get(raw, "branch", str, None) or None,
            commit=_get(raw, "commit", str, None) or None,
            join_on=_get(raw, "join_on", str, None) or None,
            outer_join=_get(raw, "outer_join", bool, False),
            group_by=_get(raw, "group_by", str, None) or None,
            lazy=_get(raw, "lazy", bool, False),
            empty_files=_get(raw, "empty_files", bool, False),
            s3=_get(raw, "s3", bool, False),
            at=at,
            from_atom=from_atom,
        )

    def cron(self, raw: dict[str, Any], at: JsonPath) -> CronInput | None:
        name, spec = raw.get("name"), raw.get("spec")
        if not isinstance(name, str) or not isinstance(spec, str):
            return None
        pipeline = _get(self.spec, "pipeline", dict, {}).get("name", "")
        repo = raw.get("repo")
        return CronInput(
            name=name,
            spec=spec,
            # Pachyderm names the tick repo `<pipeline>_<input name>` when none is given.
            repo=repo if isinstance(repo, str) and repo else f"{pipeline}_{name}",
            start=_get(raw, "start", str, None),
            overwrite=_get(raw, "overwrite", bool, False),
            at=at,
        )

    # -- transform and resources -----------------------------------------------------------
    def transform(self, raw: dict[str, Any], at: JsonPath) -> Transform:
        image = raw.get("image")
        defaulted = not (isinstance(image, str) and image.strip())
        if "build" in raw:
            self.one_x = True
        secrets = []
        for item in _get(raw, "secrets", list, []):
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                secrets.append(SecretMount(
                    name=item["name"], mount_path=_get(item, "mount_path", str, None),
                    env_var=_get(item, "env_var", str, None), key=_get(item, "key", str, None)))
        codes = []
        for i, code in enumerate(_get(raw, "accept_return_code", list, [])):
            try:
                codes.append(parse_int(code))
            except ValueError as exc:
                self.report((*at, "accept_return_code", i), "invalid-value",
                            f"`accept_return_code[{i}]` {exc}")
        return Transform(
            image=(DEFAULT_IMAGE_1X if self.one_x else DEFAULT_IMAGE_2X) if defaulted
            else str(image).strip(),
            image_defaulted=defaulted,
            cmd=_strings(raw.get("cmd")),
            stdin=_strings(raw.get("stdin")),
            err_cmd=_strings(raw.get("err_cmd")),
            err_stdin=_strings(raw.get("err_stdin")),
            env=_pairs(raw.get("env")),
            secrets=tuple(secrets),
            image_pull_secrets=_strings(raw.get("image_pull_secrets")),
            accept_return_code=tuple(codes),
            user=_get(raw, "user", str, None),
            working_dir=_get(raw, "working_dir", str, None),
            debug=_get(raw, "debug", bool, False),
            memory_volume=_get(raw, "memory_volume", bool, False),
        )

    def resources(self, raw: Any, at: JsonPath) -> Resources | None:
        if not isinstance(raw, dict):
            return None
        gpu = raw.get("gpu")
        gpu_value = None
        if isinstance(gpu, dict) and isinstance(gpu.get("type"), str):
            number = self.integer(gpu, "number", (*at, "gpu"), unsigned=False)
            gpu_value = Gpu(gpu["type"], number if number is not None else 0)
        elif isinstance(gpu, int) and not isinstance(gpu, bool):
            # Up to 1.8.1 `gpu` was a count of NVIDIA GPUs (spec.md §3.4).
            self.one_x = True
            gpu_value = Gpu("nvidia.com/gpu", gpu)
        cpu = _number(raw.get("cpu"))
        if cpu is not None and cpu < 0:
            self.report((*at, "cpu"), "quantity", f"`cpu` must not be negative, not {cpu}")
        return Resources(cpu=cpu, memory=_get(raw, "memory", str, None),
                         disk=_get(raw, "disk", str, None), gpu=gpu_value)

    def toleration(self, raw: dict[str, Any], at: JsonPath) -> Toleration:
        seconds = self.integer(raw, "toleration_seconds", at, unsigned=False)
        return Toleration(
            key=_get(raw, "key", str, None), operator=_get(raw, "operator", str, None),
            value=_get(raw, "value", str, None), effect=_get(raw, "effect", str, None),
            toleration_seconds=seconds)

    # -- scalars ---------------------------------------------------------------------------
    def integer(self, raw: dict[str, Any], key: str, at: JsonPath, *,
                unsigned: bool) -> int | None:
        if key not in raw or raw[key] is None:
            return None
        value = raw[key]
        try:
            number = parse_int(value, unsigned=False)
        except ValueError:
            return None  # not a whole number at all: the schema reported it
        try:
            return parse_int(number, unsigned=unsigned)
        except ValueError as exc:  # a whole number, out of the proto field's range
            self.report((*at, key), "invalid-value", f"`{key}` {exc}")
            return None

    def duration(self, raw: dict[str, Any], key: str, at: JsonPath) -> float | None:
        value = raw.get(key)
        if not isinstance(value, str):
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.report((*at, key), "duration", f"`{key}`: {exc}")
            return None
        if seconds <= 0:
            self.report((*at, key), "duration", f"`{key}` must be positive, not {value!r}")
            return None
        return seconds

    def pod_spec(self, raw: dict[str, Any], at: JsonPath) -> dict[str, Any] | None:
        value = self._embedded_json(raw, "pod_spec", at, "a JSON merge patch of the pod spec")
        if value is None:
            return None
        if not isinstance(value, dict):
            self.report((*at, "pod_spec"), "pod-spec",
                        "`pod_spec` must be a JSON object (a merge patch of the pod spec)")
            return None
        return value

    def pod_patch(self, raw: dict[str, Any], at: JsonPath) -> tuple[dict[str, Any], ...] | None:
        value = self._embedded_json(raw, "pod_patch", at, "a JSON patch (RFC 6902)")
        if value is None:
            return None
        problem = _patch_problem(value)
        if problem:
            self.report((*at, "pod_patch"), "pod-patch", f"`pod_patch` {problem}")
            return None
        return tuple(value)

    def _embedded_json(self, raw: dict[str, Any], key: str, at: JsonPath, what: str) -> Any:
        text = raw.get(key)
        if not isinstance(text, str) or not text.strip():
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            self.report((*at, key), key.replace("_", "-"), (
                f"`{key}` must be a string holding {what}; its JSON is invalid at "
                f"character {exc.pos + 1}: {exc.msg.lower()}"))
            return None


def _patch_problem(value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a JSON array of patch operations (RFC 6902)"
    for i, op in enumerate(value):
        if not isinstance(op, dict):
            return f"operation {i} must be an object like {{\"op\": \"add\", ...}}"
        name = op.get("op")
        if name not in PATCH_OPS:
            return (f"operation {i} has op {json.dumps(name)}; expected one of "
                    f"{', '.join(PATCH_OPS)}")
        for member in PATCH_OPS[name]:
            if member not in op:
                return f"operation {i} ({name}) is missing `{member}`"
        for member in ("path", "from"):
            pointer = op.get(member)
            if member in op and (not isinstance(pointer, str)
                                 or (pointer and not pointer.startswith("/"))):
                return f"operation {i} has `{member}` {json.dumps(pointer)}, not a JSON pointer"
    return None


def _get(raw: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = raw.get(key, _ABSENT)
    if value is _ABSENT or (kind is not bool and isinstance(value, bool)):
        return default
    return value if isinstance(value, kind) else default


_ABSENT = object()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        return ()
    return tuple((k, v) for k, v in value.items() if isinstance(v, str))


def normalize(spec: dict[str, Any], *, path: str, at: JsonPath,
              findings: list[Finding]) -> Pipeline | None:
    """The model of one canonicalised spec; what cannot be modelled is added to `findings`."""
    return _Normalizer(spec, at, findings).pipeline(path)


