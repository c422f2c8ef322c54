"""Run a compiled Workflow on this machine as Argo's controller would (`dsc run`).

The controller's rules, for the subset dsc emits (workflow.py checks it): a DAG starts a
task when its `depends` holds, omits it when it cannot, and stops starting tasks after a
failure (failFast); `withParam`/`withItems` fan a task out, one child per item, an empty list
skipping it; a template's `parallelism` caps its running children and the run's caps its
running pods; `retryStrategy` retries a failed node (OnFailure: the container failed; OnError:
dsc could not run it; Always: both) after its backoff, until `maxDuration` has passed since
the first attempt; `activeDeadlineSeconds` kills a pod that runs longer; a mutex serialises
the nodes naming it; the exit handler runs last with `{{workflow.status}}`.

A DAG's scheduler waits for its children's results, and a stop request wakes it; nothing
polls. Pods are run by a `PodRunner` (runners.py); time and sleeping come in as functions,
so tests need no waiting.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from compiler import contract
from compiler.local.workflow import (
    Depends,
    Program,
    Unsupported,
    duration,
    parse_depends,
    parse_retry_expression,
    substitute,
)

SUCCEEDED, FAILED, ERROR, SKIPPED, OMITTED = "Succeeded", "Failed", "Error", "Skipped", "Omitted"


@dataclass(frozen=True, slots=True)
class Mount:
    volume: str
    path: str  # in the container
    read_only: bool


@dataclass(frozen=True, slots=True)
class Container:
    """One container of a pod, with every `{{...}}` resolved."""

    name: str
    image: str
    command: list[str]
    args: list[str]
    env: dict[str, str]
    secret_env: dict[str, tuple[str, str]]  # variable -> (Secret, key)
    mounts: list[Mount]
    working_dir: str | None
    run_as_user: int | None
    dependencies: list[str]

    @property
    def is_runtime(self) -> bool:
        """dsc's own runtime step (`dsc runtime <verb>`), run in this process."""
        return self.command == contract.COMMAND


@dataclass(slots=True)
class Pod:
    node: Node
    containers: list[Container]
    volumes: dict[str, Path]  # emptyDir volumes, by name
    secret_volumes: dict[str, str]  # volume -> Secret
    directory: Path  # the pod's scratch space (volumes, outputs, logs)
    deadline: float | None  # seconds
    outputs: dict[str, str]  # parameter -> file the container writes
    init_containers: list[Container] = field(default_factory=list)  # run first, in order
    # what a runtime container reports of its work (a worker's datums done, of its total)
    progress: Callable[[int, int, int], None] = field(default=lambda _done, _total, _failed: None)

    @property
    def output_dir(self) -> Path:
        return self.directory / "outputs"


@dataclass(frozen=True, slots=True)
class PodResult:
    phase: str  # Succeeded, Failed (a container failed) or Error (could not run it)
    message: str = ""
    log_tail: str = ""
    exit_code: int | None = None  # of the container that failed; None: none exited


class PodRunner(Protocol):
    def __call__(self, pod: Pod, cancel: threading.Event) -> PodResult: ...


@dataclass(frozen=True, slots=True)
class Node:
    """Where a node sits: the DAG template it belongs to, its task, its item."""

    id: str
    template: str
    labels: Mapping[str, str]
    dag: str | None  # the template of the DAG it is a task of
    task: str | None
    item: str | None


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # expand | start | retry | finish | progress
    node: Node
    phase: str = ""
    count: int = 0  # expand: children; progress: datums done
    total: int = 0  # progress: of this many
    failed: int = 0  # progress: datums that failed all their tries
    attempt: int = 1
    seconds: float = 0.0
    message: str = ""
    log_tail: str = ""
    outputs: Mapping[str, str] = field(default_factory=dict)
    pod: bool = False  # the node ran a pod (a DAG's failure only repeats its task's)
    exit_code: int | None = None  # a failed pod's


@dataclass(frozen=True, slots=True)
class Outcome:
    phase: str
    message: str
    outputs: dict[str, str]


@dataclass(slots=True)
class Settings:
    name: str  # {{workflow.name}}
    uid: str
    created: str  # RFC 3339
    namespace: str
    directory: Path  # scratch space for pods
    parallelism: int  # pods at once
    # waits out a retry's backoff; None: waits on the run's stop request, which ends it
    sleep: Callable[[float], object] | None = None
    clock: Callable[[], float] = time.monotonic
    keep_scratch: bool = False  # keep every pod's volumes (what it staged and wrote)


class Reaper:
    """Deletes finished pods' directories on a thread of its own, off the datums' path (a
    pod's directories cost as much to delete as its in-process steps take to run)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def remove(self, *paths: Path) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="dsc-reaper",
                                                daemon=True)
                self._thread.start()
        for path in paths:
            self._queue.put(path)

    def _work(self) -> None:
        while (path := self._queue.get()) is not None:
            shutil.rmtree(path, ignore_errors=True)

    def drain(self) -> None:
        """Wait until everything given so far is deleted."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()


class Cancel(threading.Event):
    """The run's stop request (Ctrl-C, SIGTERM): an Event that also wakes those waiting
    for something else meanwhile (a DAG waits for its children's results, not on this)."""

    def __init__(self) -> None:
        super().__init__()
        self._wakes: list[Callable[[], None]] = []
        self._guard = threading.Lock()

    def set(self) -> None:
        super().set()
        with self._guard:
            wakes = list(self._wakes)
        for wake in wakes:
            wake()

    @contextlib.contextmanager
    def waking(self, wake: Callable[[], None]) -> Iterator[None]:
        """Call `wake` on each stop request made meanwhile."""
        with self._guard:
            self._wakes.append(wake)
        try:
            yield
        finally:
            with self._guard:
                self._wakes.remove(wake)


class Executor:
    def __init__(self, program: Program, runner: PodRunner, settings: Settings,
                 events: Callable[[Event], None] = lambda _e: None) -> None:
        self.program = program
        self.runner = runner
        self.settings = settings
        self.events = events
        self.cancel = Cancel()
        limit = settings.parallelism
        if program.parallelism:
            limit = min(limit, program.parallelism)
        self._pods = threading.BoundedSemaphore(max(limit, 1))
        self._pod_limit = max(limit, 1)
        self._mutexes: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._ids = 0
        self.reaper = Reaper()

    # --- the run --------------------------------------------------------------------------

    def run(self) -> Outcome:
        """The entrypoint, then the exit handler; the run's phase and the entry outputs."""
        scope = self._workflow_scope()
        main = self._node(self.program.entrypoint, {}, None, None, None)
        result = self._execute(self.program.owner, self.program.entrypoint, {}, scope, main)
        phase, message = result.phase, result.message
        if self.cancel.is_set():
            phase, message = FAILED, "interrupted"
        if self.program.on_exit:
            self.cancel.clear()  # the exit handler runs even after Ctrl-C, as Argo's does
            scope = {**scope, "workflow.status": phase if phase != ERROR else "Error"}
            handler = self._node(self.program.on_exit, {}, None, None, None)
            done = self._execute(self.program.owner, self.program.on_exit, {}, scope, handler)
            if done.phase != SUCCEEDED and phase == SUCCEEDED:
                phase, message = FAILED, f"the exit handler failed: {done.message}"
        self.reaper.drain()
        return Outcome(phase, message, result.outputs)

    def _workflow_scope(self) -> dict[str, str]:
        s = self.settings
        scope = {"workflow.name": s.name, "workflow.uid": s.uid,
                 "workflow.namespace": s.namespace, "workflow.creationTimestamp": s.created}
        scope.update({f"workflow.parameters.{k}": v
                      for k, v in self.program.parameters.items()})
        return scope

    def _node(self, template: str, labels: Mapping[str, str], dag: str | None,
              task: str | None, item: str | None) -> Node:
        with self._lock:
            self._ids += 1
            ident = self._ids
        return Node(f"{ident:06d}", template, labels, dag, task, item)

    # --- one node: mutex, retries ---------------------------------------------------------

    def _execute(self, owner: str, name: str, arguments: Mapping[str, str],
                 workflow: Mapping[str, str], node: Node) -> _Result:
        template = self.program.template(owner, name)
        where = f"template `{name}`"
        inputs = {}
        for p in template.get("inputs", {}).get("parameters", []):
            if p["name"] in arguments:
                inputs[p["name"]] = arguments[p["name"]]
            elif "value" in p:
                inputs[p["name"]] = substitute(str(p["value"]), workflow, where)
            else:
                return _Result(ERROR, f"{where}: input parameter `{p['name']}` was not given")
        scope = {**workflow, **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        locks = [self._mutex(substitute(m["name"], scope, where))
                 for m in template.get("synchronization", {}).get("mutexes", [])]
        for lock in locks:
            lock.acquire()
        try:
            return self._with_retries(owner, template, scope, node)
        finally:
            for lock in reversed(locks):
                lock.release()

    def _mutex(self, name: str) -> threading.Lock:
        with self._lock:
            return self._mutexes.setdefault(name, threading.Lock())

    def _with_retries(self, owner: str, template: dict[str, Any], scope: dict[str, str],
                      node: Node) -> _Result:
        where = f"template `{template['name']}`"
        retry = template.get("retryStrategy") or {}
        limit = int(substitute(str(retry.get("limit", "0")), scope, where)) if retry else 0
        # Argo >= 3.5: with an expression and no policy, the expression alone decides.
        policy = retry.get("retryPolicy", "Always" if "expression" in retry else "OnFailure")
        expression = parse_retry_expression(str(retry["expression"]), where) \
            if "expression" in retry else None
        backoff = retry.get("backoff") or {}
        delay = duration(backoff["duration"], where) if "duration" in backoff else 0.0
        factor = float(backoff.get("factor", 2)) if backoff else 1.0
        cap = duration(backoff["maxDuration"], where) if "maxDuration" in backoff else None
        first = self.settings.clock()
        attempt = 1
        while True:
            started = self.settings.clock()
            self.events(Event("start", node, attempt=attempt))
            result = self._attempt(owner, template, scope, node)
            wait = delay * factor ** (attempt - 1)
            retry = not (result.phase == SUCCEEDED or result.fatal or self.cancel.is_set()
                         or attempt > limit) and (
                policy == "Always" or (policy == "OnFailure" and result.phase == FAILED)
                or (policy == "OnError" and result.phase == ERROR)) and (
                cap is None or self.settings.clock() - first + wait <= cap) and (
                expression is None or expression({
                    "lastRetry.exitCode": str(-1 if result.exit_code is None
                                              else result.exit_code),
                    "lastRetry.status": result.phase,
                    "lastRetry.duration": str(int(self.settings.clock() - started)),
                    "lastRetry.message": result.message}))
            # One `finish` per node, for its last attempt; a `retry` for each one before.
            self.events(Event("retry" if retry else "finish", node, phase=result.phase,
                              attempt=attempt, seconds=self.settings.clock() - started,
                              message=result.message, log_tail=result.log_tail,
                              outputs=result.outputs, pod="dag" not in template,
                              exit_code=result.exit_code))
            if not retry:
                return result
            if wait:  # a worker's backoff grows to minutes: a stop must not wait it out
                (self.settings.sleep or self.cancel.wait)(wait)
            attempt += 1

    def _attempt(self, owner: str, template: dict[str, Any], scope: dict[str, str],
                 node: Node) -> _Result:
        try:
            if "dag" in template:
                return self._dag(owner, template, scope, node)
            return self._pod(template, scope, node)
        except Unsupported as exc:  # a manifest dsc cannot run: no retry can help
            return _Result(ERROR, str(exc), fatal=True)

    # --- pods -----------------------------------------------------------------------------

    def _pod(self, template: dict[str, Any], scope: dict[str, str], node: Node) -> _Result:
        where = f"template `{template['name']}`"
        specs = ([template["container"] | {"name": "main"}] if "container" in template
                 else template["containerSet"]["containers"])
        containers = [_container(c, scope, f"{where} container `{c.get('name')}`")
                      for c in specs]
        init = [_container(c, scope, f"{where} init container `{c.get('name')}`")
                for c in template.get("initContainers", [])]
        # A retry is a new pod: fresh volumes, as Argo's are.
        directory = self.settings.directory / "pods" / f"{node.id}-{template['name']}"
        attempt = 1
        while directory.with_name(f"{directory.name}-{attempt}").exists():
            attempt += 1
        directory = directory.with_name(f"{directory.name}-{attempt}")
        volumes, secrets = {}, {}
        for v in template.get("volumes", []):
            if "secret" in v:
                secrets[v["name"]] = v["secret"]["secretName"]
            else:
                volumes[v["name"]] = directory / "volumes" / v["name"]
        outputs = {}
        for p in template.get("outputs", {}).get("parameters", []):
            path = p.get("valueFrom", {}).get("path")
            if not path:
                raise Unsupported(f"{where}: output `{p['name']}` of a pod must come from a "
                                  "file (valueFrom.path)")
            outputs[p["name"]] = path
        deadline = template.get("activeDeadlineSeconds")
        pod = Pod(node, _ordered(containers, where), volumes, secrets, directory,
                  float(substitute(str(deadline), scope, where)) if deadline else None,
                  outputs, init, lambda done, total, failed: self.events(
                      Event("progress", node, count=done, total=total, failed=failed)))
        for path in [*volumes.values(), pod.output_dir]:
            path.mkdir(parents=True, exist_ok=True)
        if self.cancel.is_set():
            self.reaper.remove(directory)
            return _Result(FAILED, "interrupted")
        with self._pods:
            if self.cancel.is_set():
                self.reaper.remove(directory)
                return _Result(FAILED, "interrupted")
            result = self.runner(pod, self.cancel)
        if result.phase != SUCCEEDED:
            # Its logs stay for the user to read; what it staged and wrote goes (a failed
            # run must not leave a copy of its inputs behind), unless asked to keep it.
            if not self.settings.keep_scratch:
                self.reaper.remove(directory / "volumes", *directory.glob("tmp-*"))
            return _Result(result.phase, result.message, log_tail=result.log_tail,
                           exit_code=result.exit_code)
        values = {}
        for name, path in outputs.items():
            local = _output_file(pod, path, where)
            try:
                values[name] = local.read_text().strip()
            except OSError:
                return _Result(ERROR, f"{where}: output parameter `{name}`: {path} was not "
                               "written")
        if not self.settings.keep_scratch:
            self.reaper.remove(directory)
        return _Result(SUCCEEDED, outputs=values)

    # --- DAGs -----------------------------------------------------------------------------

    def _dag(self, owner: str, template: dict[str, Any], scope: dict[str, str],
             node: Node) -> _Result:
        return _DagRun(self, owner, template, scope).run()

    def _target(self, owner: str, task: dict[str, Any]) -> dict[str, Any]:
        return self.program.template(*self.program.called(owner, task))


@dataclass(slots=True)
class _Started:
    """A task of a DAG that started: how many children it runs, their results so far."""

    name: str
    children: int
    results: list[_Result] = field(default_factory=list)


@dataclass(slots=True)
class _Child:
    """One node a started task runs (one per item of a fan-out)."""

    task: dict[str, Any]
    started: _Started
    arguments: dict[str, str]
    node: Node
    is_pod: bool
    thread: threading.Thread | None = None


class _DagRun:
    """One attempt at a DAG template, scheduled as Argo's controller does it.

    A task starts when its `depends` holds (at once without one) and is omitted when it
    cannot; it runs one child, or one per item of a fan-out. Children run on threads of their
    own, within the template's `parallelism` and, for pods, the run's; each puts its result
    in the scheduler's inbox, which is all the scheduler waits on (a stop request puts a
    wake-up there too). After a failure (failFast) or a stop nothing new starts: the children
    that waited for a slot end unstarted, and those running are waited for.
    """

    def __init__(self, executor: Executor, owner: str, template: dict[str, Any],
                 scope: dict[str, str]) -> None:
        self.executor = executor
        self.owner = owner
        self.template = template
        self.scope = scope
        self.where = f"template `{template['name']}`"
        self.depends = _depends(template["dag"]["tasks"], self.where)
        self.limit = int(template.get("parallelism") or 0) or None
        self.workflow = {k: v for k, v in scope.items() if k.startswith("workflow.")}
        self.pending: list[dict[str, Any]] = list(template["dag"]["tasks"])  # not yet started
        self.done: dict[str, str] = {}  # task -> its result, as `depends` reads it
        self.outputs: dict[str, dict[str, str]] = {}  # task -> its outputs (one child only)
        self.waiting: deque[_Child] = deque()  # for a slot, in the order tasks started
        self.running = self.pods = 0
        self.messages: list[str] = []
        self.failed = self.fatal = False
        self.inbox: queue.SimpleQueue[tuple[_Child, _Result] | None] = queue.SimpleQueue()

    def run(self) -> _Result:
        with self.executor.cancel.waking(lambda: self.inbox.put(None)):
            self._schedule()
            while self.running or self.waiting:
                self._receive()
                self._schedule()
        return self._result()

    @property
    def _stopping(self) -> bool:
        return self.failed or self.executor.cancel.is_set()

    # --- readiness: which tasks start ---------------------------------------------------

    def _schedule(self) -> None:
        self._start_ready()
        self._launch()
        if self._stopping:
            self._end_waiting()

    def _start_ready(self) -> None:
        """Start, omit or skip each pending task whose `depends` can be decided now. A task
        decided at once (omitted, or an empty fan-out skipped) may decide one listed before
        it, so the pass repeats until it decides nothing more: Argo orders by the graph, not
        by the list."""
        decided = True
        while decided:
            decided = False
            for task in list(self.pending):
                if self._stopping:
                    return
                verdict = self._verdict(task["name"])
                if verdict is None:
                    continue  # a task it names has not finished
                self.pending.remove(task)
                decided = True
                if verdict is False:
                    self.done[task["name"]] = OMITTED
                elif not self._start(task):
                    return

    def _verdict(self, name: str) -> bool | None:
        """Whether the task runs (None: not known until more tasks finish)."""
        return self.depends[name](self.done) if name in self.depends else True

    def _start(self, task: dict[str, Any]) -> bool:
        """Queue the task's children; False when the task cannot run (the DAG then fails
        with an Error once what runs has finished)."""
        name = task["name"]
        task_scope = {**self.scope, **_task_outputs(self.outputs)}
        where = f"{self.where} task `{name}`"
        try:
            items = _items(task, task_scope, where)
            target = self.executor._target(self.owner, task)
            children = [(_arguments(task, task_scope, item, where), item)
                        for item in (items if items is not None else [None])]
        except Unsupported as exc:
            self.failed = self.fatal = True
            self.done[name] = "Errored"
            self.messages.append(str(exc))
            return False
        labels = target.get("metadata", {}).get("labels", {})
        if items is not None:
            self.executor.events(Event("expand", self.executor._node(
                target["name"], labels, self.template["name"], name, None), count=len(items)))
            if not items:
                self.done[name] = SKIPPED
                return True
        started = _Started(name, len(children))
        for arguments, item in children:
            self.waiting.append(_Child(task, started, arguments, self.executor._node(
                target["name"], labels, self.template["name"], name, item), "dag" not in target))
        return True

    # --- launching ----------------------------------------------------------------------

    def _launch(self) -> None:
        """Start waiting children, in order, within the template's limit and, for pods, the
        run's (more threads than that would only wait for a pod slot)."""
        while self.waiting and not self._stopping:
            child = self.waiting[0]
            if (self.limit and self.running >= self.limit) or \
                    (child.is_pod and self.pods >= self.executor._pod_limit):
                return
            self.waiting.popleft()
            self.running += 1
            self.pods += child.is_pod
            child.thread = threading.Thread(target=self._child, args=(child,),
                                            name=f"dsc-{child.node.id}", daemon=True)
            child.thread.start()

    def _end_waiting(self) -> None:
        """failFast, or a stop: the children waiting for a slot never start."""
        why = "interrupted" if self.executor.cancel.is_set() else "not started after a failure"
        while self.waiting:
            self._settle(self.waiting.popleft().started, _Result(FAILED, why))

    def _child(self, child: _Child) -> None:
        """A child's thread: its node, then its result to the scheduler."""
        try:
            result = self.executor._execute(*self.executor.program.called(self.owner, child.task),
                                            child.arguments, self.workflow, child.node)
        except Unsupported as exc:
            result = _Result(ERROR, str(exc), fatal=True)
        except Exception as exc:  # a bug: fail the node, never hang the DAG
            result = _Result(ERROR, f"internal error: {type(exc).__name__}: {exc}")
        self.inbox.put((child, result))

    # --- results ------------------------------------------------------------------------

    def _receive(self) -> None:
        """Wait for a child's result or a stop request, then take every result in."""
        message = self.inbox.get()
        while True:
            if message is not None:
                self._record(*message)
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                return

    def _record(self, child: _Child, result: _Result) -> None:
        assert child.thread is not None
        child.thread.join()  # it has only to return: a DAG leaves no thread behind it
        self.running -= 1
        self.pods -= child.is_pod
        if result.phase != SUCCEEDED:
            self.failed = True  # failFast: no new node after any failure
            self.messages.append(f"task `{child.task['name']}`: {result.message}")
        self._settle(child.started, result)

    def _settle(self, started: _Started, result: _Result) -> None:
        """Count a child's result; with the last of its task's, the task is done."""
        started.results.append(result)
        if len(started.results) < started.children:
            return
        self.done[started.name] = _task_result(started.results)
        if started.children == 1 and result.phase == SUCCEEDED:
            self.outputs[started.name] = result.outputs

    def _result(self) -> _Result:
        if self._stopping:
            return _Result(ERROR if self.fatal else FAILED,
                           "; ".join(self.messages) or "interrupted", fatal=self.fatal)
        scope = {**self.scope, **_task_outputs(self.outputs)}
        values = {}
        for p in self.template.get("outputs", {}).get("parameters", []):
            source = p.get("valueFrom", {}).get("parameter")
            if source is None:
                raise Unsupported(f"{self.where}: output `{p['name']}` of a dag must come "
                                  "from a task's parameter (valueFrom.parameter)")
            values[p["name"]] = substitute(source, scope, self.where)
        return _Result(SUCCEEDED, outputs=values)


@dataclass(slots=True)
class _Result:
    phase: str
    message: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    log_tail: str = ""
    fatal: bool = False  # not worth a retry (a construct dsc run does not support)
    exit_code: int | None = None


def _task_outputs(outputs: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """`{{tasks.<task>.outputs.parameters.<name>}}` for the finished tasks of a DAG."""
    return {f"tasks.{t}.outputs.parameters.{p}": v
            for t, params in outputs.items() for p, v in params.items()}


def _depends(tasks: list[dict[str, Any]], where: str) -> dict[str, Depends]:
    """Each task's `depends`, by task, checked against the DAG's task names."""
    names = [t["name"] for t in tasks]
    if len(set(names)) != len(names):
        raise Unsupported(f"{where}: two tasks of one name")
    depends = {}
    for t in tasks:
        if "depends" in t:
            expr, used = parse_depends(str(t["depends"]), f"{where} task `{t['name']}`")
            unknown = used - set(names)
            if unknown:
                raise Unsupported(f"{where} task `{t['name']}`: depends on unknown task "
                                  f"`{sorted(unknown)[0]}`")
            depends[t["name"]] = expr
    return depends


def _task_result(results: list[_Result]) -> str:
    """A finished task's result as `depends` reads it: Succeeded, Failed or Errored (where a
    node's phase is Error)."""
    bad = [r for r in results if r.phase != SUCCEEDED]
    if not bad:
        return SUCCEEDED
    return "Errored" if all(r.phase == ERROR for r in bad) else FAILED


def _arguments(task: dict[str, Any], scope: Mapping[str, str], item: str | None,
               where: str) -> dict[str, str]:
    """The parameters a task passes to one child (`{{item}}` its item in a fan-out)."""
    if item is not None:
        scope = {**scope, "item": item}
    return {p["name"]: substitute(str(p.get("value", "")), scope, where)
            for p in task.get("arguments", {}).get("parameters", [])}


def _items(task: dict[str, Any], scope: Mapping[str, str], where: str) -> list[str] | None:
    if "withItems" in task:
        return [_item_text(v) for v in task["withItems"]]
    if "withParam" not in task:
        return None
    text = substitute(str(task["withParam"]), scope, where)
    try:
        values = json.loads(text)
    except ValueError:
        raise Unsupported(f"{where}: withParam is not a JSON list: {text[:80]!r}") from None
    if not isinstance(values, list):
        raise Unsupported(f"{where}: withParam is not a JSON list: {text[:80]!r}")
    return [_item_text(v) for v in values]


def _item_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _container(spec: dict[str, Any], scope: Mapping[str, str], where: str) -> Container:
    env: dict[str, str] = {}
    secret_env: dict[str, tuple[str, str]] = {}
    for e in spec.get("env", []):
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            secret_env[e["name"]] = (ref["name"], ref["key"])
        else:
            env[e["name"]] = substitute(str(e.get("value", "")), scope, where)
    user = spec.get("securityContext", {}).get("runAsUser")
    return Container(
        name=spec.get("name", "main"), image=str(spec.get("image", "")),
        command=[substitute(str(c), scope, where) for c in spec.get("command", [])],
        args=[substitute(str(a), scope, where) for a in spec.get("args", [])],
        env=env, secret_env=secret_env,
        mounts=[Mount(m["name"], m["mountPath"], bool(m.get("readOnly")))
                for m in spec.get("volumeMounts", [])],
        working_dir=spec.get("workingDir"), run_as_user=int(user) if user is not None else None,
        dependencies=list(spec.get("dependencies", [])))


def _ordered(containers: list[Container], where: str) -> list[Container]:
    """The containerSet in an order its `dependencies` allow (the runner starts together
    those that depend on nothing, as Argo does)."""
    names = {c.name for c in containers}
    out: list[Container] = []
    left = list(containers)
    while left:
        ready = [c for c in left if all(d in {o.name for o in out} for d in c.dependencies)]
        if not ready:
            unknown = [d for c in left for d in c.dependencies if d not in names]
            raise Unsupported(f"{where}: containerSet dependencies "
                              + (f"name unknown container `{unknown[0]}`" if unknown
                                 else "form a cycle"))
        out.append(ready[0])
        left.remove(ready[0])
    return out


def _output_file(pod: Pod, path: str, where: str) -> Path:
    """Where a container's `valueFrom.path` is on this machine."""
    if path.startswith(contract.OUTPUT_DIR + "/"):
        return pod.output_dir / path[len(contract.OUTPUT_DIR) + 1:]
    for container in pod.containers:
        for m in container.mounts:
            if path.startswith(m.path.rstrip("/") + "/") and m.volume in pod.volumes:
                return pod.volumes[m.volume] / os.path.relpath(path, m.path)
    raise Unsupported(f"{where}: output file {path} is neither under {contract.OUTPUT_DIR} "
                      "nor on a volume")
