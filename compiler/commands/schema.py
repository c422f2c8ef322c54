"""`dsc schema`: the JSON Schema of pipeline specs (or of dsc.yaml), as shipped."""

from __future__ import annotations

from compiler.commands.console import Console
from compiler.commands.errors import CouldNotRun
from compiler.diagnostics import ExitCode


def print_schema(*, config_schema: bool, console: Console) -> int:
    from compiler.spec.schema import schema_path

    name = "config.schema.json" if config_schema else "pipeline.schema.json"
    try:
        text = schema_path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise CouldNotRun(f"the schema {name} is missing from this installation: {exc}") from None
    console.out.write(text if text.endswith("\n") else text + "\n")
    return int(ExitCode.CLEAN)
