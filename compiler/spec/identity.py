"""A pipeline's code identity: every spec field that can change what its user code writes.

A datum is skipped when its inputs hold the same content and its pipeline the same code
identity as when it was last processed (compiler.runtime.incremental). Fields that only place
or size the work (resources, parallelism, scheduling, tries, timeouts, labels) are not part
of it; `salt` is, so a user can force new outputs by changing it. Unlike Pachyderm, which
keeps a pipeline's salt across `update pipeline` (so new code silently leaves old outputs in
place), a changed command, image or input tree reprocesses every datum by itself.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from typing import Any

from compiler.spec.model import Pipeline

# The fields that count, as the README lists them.
CODE_FIELDS = (
    "transform.image", "transform.cmd", "transform.stdin", "transform.err_cmd",
    "transform.err_stdin", "transform.env", "transform.secrets", "transform.user",
    "transform.working_dir", "transform.accept_return_code", "input", "pod_spec",
    "pod_patch", "salt",
)
# An image reference pinned by its content (`name@sha256:<64 hex>`): the same reference
# always runs the same code. A tag can be pushed again with other code under it.
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def code_fields(p: Pipeline) -> dict[str, Any]:
    """The values of CODE_FIELDS, as plain data."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k != "at"}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    whole = plain(asdict(p))
    out: dict[str, Any] = {}
    for name in CODE_FIELDS:
        value: Any = whole
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[name] = value
    return out


def code_identity(p: Pipeline) -> str:
    """sha256 (hex) of CODE_FIELDS: equal for two specs whose user code writes the same."""
    text = json.dumps(code_fields(p), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def pinned_by_digest(image: str) -> bool:
    """Whether an image reference names its content (`@sha256:`) rather than a tag."""
    return bool(_DIGEST.search(image))
