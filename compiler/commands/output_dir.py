"""`dsc compile --output-dir`: one file per object, and none left over from an earlier compile.

`kubectl apply -f DIR/` applies every `.yaml`, `.yml` and `.json` file in DIR, so a Workflow
file an earlier compile wrote (its name carries the template's hash) would start a second run.
dsc records the files it writes, with their SHA-256, in `DIR/.dsc-compile` (no such suffix,
so kubectl skips it) and removes on the next compile those it wrote that the new compile does
not: only while they still hold what dsc wrote. A file dsc did not write is never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RECORD = ".dsc-compile"


@dataclass(frozen=True, slots=True)
class WrittenFiles:
    written: tuple[str, ...]
    removed: tuple[str, ...]  # an earlier compile wrote them, this one did not
    kept: tuple[str, ...]  # an earlier compile wrote them, and they were changed since


def write_files(directory: Path, files: Mapping[str, str]) -> WrittenFiles:
    """Write `files` (name -> text) into `directory`, then remove what an earlier compile
    wrote there and this one did not. Raises OSError."""
    earlier = _recorded(directory)
    directory.mkdir(parents=True, exist_ok=True)
    record: dict[str, str] = {}
    for name, text in files.items():
        data = text.encode("utf-8")
        (directory / name).write_bytes(data)
        record[name] = _sha256(data)
    removed, kept = [], []
    for name, digest in sorted(earlier.items()):
        if name in files:
            continue
        path = directory / name
        try:
            current = _sha256(path.read_bytes())
        except FileNotFoundError:
            continue
        if current == digest:
            path.unlink()
            removed.append(name)
        else:
            kept.append(name)
            record[name] = digest  # still dsc's to remove, once it holds dsc's text again
    _write_record(directory, record)
    return WrittenFiles(tuple(files), tuple(removed), tuple(kept))


def _recorded(directory: Path) -> dict[str, str]:
    """The files an earlier compile wrote (name -> SHA-256); a record that cannot be read names
    none, so nothing is removed."""
    try:
        data = json.loads((directory / RECORD).read_text(encoding="utf-8"))
        files = data["files"]
    except (OSError, ValueError, TypeError, KeyError):
        return {}
    if not isinstance(files, dict):
        return {}
    # Only plain names of this directory: a record edited by hand cannot reach elsewhere.
    return {name: digest for name, digest in files.items()
            if isinstance(name, str) and isinstance(digest, str) and _plain_name(name)}


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..", RECORD) and "/" not in name \
        and os.sep not in name and "\0" not in name


def _write_record(directory: Path, files: dict[str, str]) -> None:
    tmp = directory / f"{RECORD}.{os.getpid()}"
    tmp.write_text(json.dumps({"written_by": "dsc compile --output-dir", "files": files},
                              indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, directory / RECORD)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
