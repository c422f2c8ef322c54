"""What `dsc run` shows while it runs: per pipeline, datums done / total, failures and
retries; a bar redrawn in place on a terminal, plain lines otherwise; a summary at the end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from compiler.contract.job import Job
from compiler.local.executor import SUCCEEDED, Event
from compiler.local.workflow import Program

BAR = 24


@dataclass(slots=True)
class PipelineState:
    name: str
    repo: str
    total: int | None = None
    done: int = 0
    failed: int = 0
    retries: int = 0
    started: float | None = None
    finished: float | None = None
    commit: str = ""
    url: str = ""
    failures: list[str] = field(default_factory=list)
    noop: bool = False  # its job had nothing to do (the output head already holds it)
    workers: dict[str, tuple[int, int]] = field(default_factory=dict)  # node -> done, failed


def jobs_of(program: Program) -> dict[str, Job]:
    """Each pipeline's DAG template -> its job document (the DAG's `job` input)."""
    found: dict[str, Job] = {}
    for (_owner, name), template in program.templates.items():
        if "dag" not in template:
            continue
        text = next((p.get("value") for p in template.get("inputs", {}).get("parameters", [])
                     if p.get("name") == "job"), None)
        if text:
            found[name] = Job.parse(str(text))
    return found


class Progress:
    """Takes the executor's events (from many threads) and shows them."""

    def __init__(self, jobs: dict[str, Job], stream: TextIO, tty: bool,
                 clock: Callable[[], float] = time.monotonic, verbose: bool = False) -> None:
        self.states = {dag: PipelineState(j.pipeline, j.output_repo) for dag, j in jobs.items()}
        self.stream = stream
        self.tty = tty
        self.clock = clock
        self.verbose = verbose
        self._lock = threading.Lock()
        self._drawn = 0
        self._last = 0.0
        self.step_exit_codes: list[int] = []  # of dsc's own steps that failed for good

    def __call__(self, event: Event) -> None:
        with self._lock:
            state = self.states.get(event.node.dag or "")
            if state is None:
                if event.kind == "finish" and event.phase != SUCCEEDED and (
                        event.pod or not event.message.startswith("task `")):
                    self._say(f"{event.node.template}: {event.phase.lower()}: "
                              f"{event.message}", event.log_tail)
                    if event.exit_code is not None:  # the exit handler's, as any step's
                        self.step_exit_codes.append(event.exit_code)
                return
            task = event.node.task
            now = self.clock()
            if state.started is None:
                state.started = now
            if event.kind == "finish" and task == "open" and event.phase == SUCCEEDED:
                state.noop = event.outputs.get("branch", "").startswith("@")
                todo = event.outputs.get("datums", "")
                state.total = int(todo) if todo.isdigit() else None
                workers = event.outputs.get("workers", "[]").count(",") + 1 \
                    if event.outputs.get("workers", "[]") != "[]" else 0
                if not self.tty and not state.noop and state.total is not None:
                    self._say(f"{state.name}: {state.total} datum"
                              f"{'' if state.total == 1 else 's'} to process" + (
                                  f" by {workers} workers" if workers > 1 else ""))
            if event.kind == "progress":
                state.workers[event.node.id] = (event.count, event.failed)
                state.done = sum(done for done, _failed in state.workers.values())
                state.failed = sum(failed for _done, failed in state.workers.values())
                if self.verbose and not self.tty:
                    self._say(f"{state.name}: {_what(event)}: {event.count}/{event.total} "
                              "datums done")
            elif event.kind == "retry":
                state.retries += 1
                self._say(f"{state.name}: {_what(event)} failed (attempt {event.attempt}), "
                          f"retrying: {event.message}",
                          event.log_tail if self.verbose or event.attempt == 1 else "")
            elif event.kind == "finish" and task == "commit" and event.phase == SUCCEEDED:
                state.commit = event.outputs.get("commit", "")
                state.url = event.outputs.get("url", "")
                state.finished = now
                if not self.tty and state.noop:
                    self._say(f"{state.name}: nothing to do: its output head "
                              f"{state.commit[:12]} holds this code's outputs of these "
                              "inputs")
                elif not self.tty:
                    self._say(f"{state.name}: committed {state.commit[:12]} "
                              f"({state.done} datum{'' if state.done == 1 else 's'} "
                              f"processed, {now - state.started:.1f} s)")
            elif event.kind == "finish" and event.phase != SUCCEEDED and task:
                if event.message not in ("interrupted", "not started after a failure"):
                    state.failures.append(f"{_what(event)}: {event.message}")
                    if event.exit_code is not None:
                        self.step_exit_codes.append(event.exit_code)
                if event.message not in ("interrupted", "not started after a failure"):
                    self._say(f"{state.name}: {_what(event)} failed (attempt "
                              f"{event.attempt}): {event.message}", event.log_tail)
            self._draw(force=event.kind != "start")

    def _say(self, line: str, tail: str = "") -> None:
        self._erase()
        self.stream.write(line + "\n")
        for text in tail.splitlines():
            self.stream.write(f"    | {text}\n")
        self.stream.flush()

    def _erase(self) -> None:
        if self.tty and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = self.clock()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        self._erase()
        width = max(len(s.name) for s in self.states.values()) if self.states else 0
        lines = []
        for s in self.states.values():
            if s.started is None:
                lines.append(f"{s.name:<{width}}  waiting")
                continue
            total = s.total
            filled = int(BAR * s.done / total) if total else (BAR if s.commit else 0)
            count = f"{s.done}/{total}" if total is not None else "planning"
            extra = "".join([f"  {s.failed} failed" if s.failed else "",
                             f"  {s.retries} retries" if s.retries else "",
                             "  committed" if s.commit else ""])
            seconds = (s.finished or now) - s.started
            lines.append(f"{s.name:<{width}}  [{'#' * filled}{'-' * (BAR - filled)}] "
                         f"{count} datums{extra}  {seconds:.1f} s")
        self.stream.write("".join(line + "\n" for line in lines))
        self.stream.flush()
        self._drawn = len(lines)

    def close(self) -> None:
        with self._lock:
            self._draw(force=True)
            self._drawn = 0

    def summary(self, where: Callable[[PipelineState], str]) -> str:
        """One line per pipeline: datums, time, and what became of its output branch
        (`where` says it, from the store)."""
        rows = [("pipeline", "datums", "failed", "time", "output branch")]
        for s in self.states.values():
            if s.started is None:
                rows.append((s.name, "-", "-", "-", where(s)))
                continue
            seconds = (s.finished or self.clock()) - s.started
            rows.append((s.name, f"{s.done}/{s.total if s.total is not None else '?'}",
                         str(s.failed), f"{seconds:.1f} s", where(s)))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "".join("  ".join(f"{c:<{w}}" for c, w in zip(r[:4], widths, strict=True))
                       + "  " + r[4] + "\n" for r in rows)

    def failures(self) -> list[str]:
        return [f"{s.name}: {f}" for s in self.states.values() for f in s.failures]


def _what(event: Event) -> str:
    if event.node.task == "work" and event.node.item is not None:
        return f"worker {event.node.item}"
    return f"step `{event.node.task}`"

