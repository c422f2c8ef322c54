"""`dsc runtime VERB --option value...`: one runtime step in a pod (compiler.runtime.steps),
its argv read as compiler.contract writes it into the manifests."""

from __future__ import annotations

import os

from compiler import contract
from compiler.commands.console import Console
from compiler.commands.errors import UsageError


def step(verb: str, args: tuple[str, ...], *, console: Console) -> int:
    """Run the step with the lakeFS endpoint and keys of the pod's environment; its exit
    code. Its log goes to stderr (the pod's log, the Argo UI)."""
    from compiler.runtime.steps import Host, run_step

    if verb not in contract.VERBS:
        raise UsageError(f"{verb!r} is not a step: one of {', '.join(contract.VERBS)}",
                         "'VERB'")
    try:
        _, options = contract.parse_args(["runtime", verb, *args])
    except contract.ArgvError as exc:
        raise UsageError(str(exc)) from None
    return run_step(verb, options, Host(os.environ, console.say))
