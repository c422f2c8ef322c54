"""The executor keeps Argo's rules for the subset dsc emits (pods are faked here)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from compiler import contract
from compiler.local.executor import (
    FAILED,
    SUCCEEDED,
    Executor,
    Pod,
    PodResult,
    Settings,
)
from compiler.local.workflow import load_program


def container(name, *args, outputs=()):
    t = {"name": name, "container": {"image": "x", "command": ["run"], "args": list(args)}}
    if outputs:
        t["outputs"] = {"parameters": [{"name": o, "valueFrom": {"path": f"/tmp/dsc/{o}"}}
                                       for o in outputs]}
    return t


def program(*templates, on_exit=None):
    spec = {"entrypoint": "main", "templates": list(templates)}
    if on_exit:
        spec["onExit"] = on_exit
    return load_program([{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                          "metadata": {"name": "wf"}, "spec": spec}])


class FakePods:
    """Records each pod's args; `behaviour(args, attempt)` -> (phase, outputs)."""

    def __init__(self, behaviour=None, delay=0.0):
        self.behaviour = behaviour or (lambda args, n: (SUCCEEDED, {}))
        self.delay = delay
        self.calls: list[list[str]] = []
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, pod: Pod, cancel) -> PodResult:
        args = [a for c in pod.containers for a in c.args]
        with self.lock:
            self.calls.append(args)
            attempt = sum(1 for c in self.calls if c == args)
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self.delay)
            phase, outputs, *code = self.behaviour(args, attempt)
            for name, value in outputs.items():
                (pod.output_dir / name).write_text(value)
            return PodResult(phase, "" if phase == SUCCEEDED else f"{args} failed",
                             exit_code=code[0] if code else None)
        finally:
            with self.lock:
                self.running -= 1


def run(prog, pods, tmp_path, parallelism=4, sleeps=None):
    settings = Settings(name="wf-1", uid="u-1", created="2026-11-25T00:00:00Z",
                        namespace="default", directory=Path(tmp_path), parallelism=parallelism,
                        sleep=(sleeps.append if sleeps is not None else time.sleep))
    return Executor(prog, pods, settings).run()


def dag(name, *tasks, **extra):
    return {"name": name, "dag": {"tasks": list(tasks)}, **extra}


def test_a_fan_out_reads_its_items_from_the_task_before_and_passes_them_on(tmp_path):
    prog = program(
        dag("main",
            {"name": "open", "template": "open"},
            {"name": "datums", "template": "datum", "depends": "open",
             "withParam": "{{tasks.open.outputs.parameters.items}}",
             "arguments": {"parameters": [
                 {"name": "d", "value": "{{item}}"},
                 {"name": "b", "value": "{{tasks.open.outputs.parameters.branch}}"}]}},
            {"name": "commit", "template": "commit", "depends": "datums"}),
        container("open", "open", "{{workflow.name}}", outputs=("items", "branch")),
        {**container("datum", "datum", "{{inputs.parameters.d}}", "{{inputs.parameters.b}}"),
         "inputs": {"parameters": [{"name": "d"}, {"name": "b"}]}},
        container("commit", "commit"))
    pods = FakePods(lambda args, n: (SUCCEEDED, {"items": '["0-a","1-b",2]', "branch": "jb"})
                    if args[0] == "open" else (SUCCEEDED, {}))
    outcome = run(prog, pods, tmp_path)
    assert outcome.phase == SUCCEEDED
    assert pods.calls[0] == ["open", "wf-1"]
    assert sorted(pods.calls[1:4]) == [["datum", "0-a", "jb"], ["datum", "1-b", "jb"],
                                       ["datum", "2", "jb"]]
    assert pods.calls[4] == ["commit"]


def test_template_parallelism_caps_running_children(tmp_path):
    prog = program(dag("main", {"name": "d", "template": "p", "withItems": list("abcdef")},
                       parallelism=2),
                   container("p", "{{workflow.uid}}"))
    pods = FakePods(delay=0.05)
    assert run(prog, pods, tmp_path, parallelism=8).phase == SUCCEEDED
    assert len(pods.calls) == 6
    assert pods.most == 2


def test_the_run_parallelism_caps_pods(tmp_path):
    prog = program(dag("main", {"name": "d", "template": "p", "withItems": list("abcdef")}),
                   container("p", "x"))
    pods = FakePods(delay=0.05)
    assert run(prog, pods, tmp_path, parallelism=3).phase == SUCCEEDED
    assert pods.most == 3


def test_retry_strategy_retries_failures_with_backoff(tmp_path):
    prog = program(dag("main", {"name": "d", "template": "p"}),
                   {**container("p", "x"), "retryStrategy": {
                       "limit": "3", "retryPolicy": "OnFailure",
                       "backoff": {"duration": "5s", "factor": 2, "maxDuration": "2m"}}})
    pods = FakePods(lambda args, n: (FAILED if n < 3 else SUCCEEDED, {}))
    sleeps: list[float] = []
    assert run(prog, pods, tmp_path, sleeps=sleeps).phase == SUCCEEDED
    assert len(pods.calls) == 3
    assert sleeps == [5.0, 10.0]


def test_retries_stop_at_the_limit_and_the_run_fails(tmp_path):
    prog = program(dag("main", {"name": "d", "template": "p"}),
                   {**container("p", "x"), "retryStrategy": {"limit": "2"}})
    pods = FakePods(lambda args, n: (FAILED, {}))
    outcome = run(prog, pods, tmp_path, sleeps=[])
    assert outcome.phase == FAILED
    assert len(pods.calls) == 3


def test_on_failure_does_not_retry_an_error(tmp_path):
    prog = program(dag("main", {"name": "d", "template": "p"}),
                   {**container("p", "x"), "retryStrategy": {"limit": "2",
                                                             "retryPolicy": "OnFailure"}})
    pods = FakePods(lambda args, n: ("Error", {}))
    assert run(prog, pods, tmp_path, sleeps=[]).phase == FAILED
    assert len(pods.calls) == 1


@pytest.mark.parametrize(("code", "attempts"), [
    (1, 1), (2, 1), (3, 1),  # dsc's own verdicts: final
    (75, 4), (137, 4), (None, 4)])  # lakeFS unavailable, a kill, a pod lost: retried
def test_the_runtime_retry_expression_decides_what_is_retried(tmp_path, code, attempts):
    prog = program(dag("main", {"name": "d", "template": "p"}),
                   {**container("p", "x"), "retryStrategy": {
                       "limit": "3", "retryPolicy": "Always",
                       "expression": contract.RETRY_EXPRESSION}})
    pods = FakePods(lambda args, n: (FAILED, {}, code))
    assert run(prog, pods, tmp_path, sleeps=[]).phase == FAILED
    assert len(pods.calls) == attempts


def test_an_expression_outside_the_subset_is_refused_by_name():
    from compiler.local.workflow import Unsupported

    with pytest.raises(Unsupported, match=r"retryStrategy: expression `lastRetry.exitCode "
                                          r"matches '1'`: `matches` is not supported"):
        program(dag("main", {"name": "d", "template": "p"}),
                {**container("p", "x"), "retryStrategy": {
                    "limit": "1", "expression": "lastRetry.exitCode matches '1'"}})


def test_a_failure_stops_new_tasks_and_the_exit_handler_sees_it(tmp_path):
    prog = program(
        dag("main", {"name": "a", "template": "p", "arguments": {"parameters": [
            {"name": "v", "value": "a"}]}},
            {"name": "b", "template": "p", "depends": "a", "arguments": {"parameters": [
                {"name": "v", "value": "b"}]}}),
        {**container("p", "{{inputs.parameters.v}}"), "inputs": {"parameters": [
            {"name": "v"}]}},
        container("exit", "exit", "{{workflow.status}}"), on_exit="exit")
    pods = FakePods(lambda args, n: (FAILED if args == ["a"] else SUCCEEDED, {}))
    outcome = run(prog, pods, tmp_path)
    assert outcome.phase == FAILED
    assert pods.calls == [["a"], ["exit", "Failed"]]


def test_an_empty_fan_out_is_skipped_and_what_depends_on_it_runs(tmp_path):
    prog = program(
        dag("main", {"name": "datums", "template": "p", "withParam": "[]"},
            {"name": "commit", "template": "c", "depends": "datums"}),
        container("p", "datum"), container("c", "commit"),
        container("exit", "exit", "{{workflow.status}}"), on_exit="exit")
    pods = FakePods()
    assert run(prog, pods, tmp_path).phase == SUCCEEDED
    assert pods.calls == [["commit"], ["exit", "Succeeded"]]


def test_a_mutex_serialises_the_nodes_naming_it(tmp_path):
    prog = program(
        dag("main", {"name": "a", "template": "locked"}, {"name": "b", "template": "locked"}),
        dag("locked", {"name": "x", "template": "p"},
            synchronization={"mutexes": [{"name": "out-{{workflow.name}}"}]}),
        container("p", "x"))
    pods = FakePods(delay=0.05)
    assert run(prog, pods, tmp_path).phase == SUCCEEDED
    assert len(pods.calls) == 2
    assert pods.most == 1


def test_dag_outputs_come_from_their_tasks(tmp_path):
    prog = program(
        dag("main", {"name": "inner", "template": "inner"},
            {"name": "use", "template": "use", "depends": "inner", "arguments": {
                "parameters": [{"name": "c", "value": "{{tasks.inner.outputs.parameters.c}}"}]}}),
        dag("inner", {"name": "commit", "template": "commit"}, outputs={"parameters": [
            {"name": "c", "valueFrom": {
                "parameter": "{{tasks.commit.outputs.parameters.commit}}"}}]}),
        container("commit", "commit", outputs=("commit",)),
        {**container("use", "use", "{{inputs.parameters.c}}"),
         "inputs": {"parameters": [{"name": "c"}]}})
    pods = FakePods(lambda args, n: (SUCCEEDED, {"commit": "abc\n"} if args == ["commit"]
                                     else {}))
    assert run(prog, pods, tmp_path).phase == SUCCEEDED
    assert pods.calls[-1] == ["use", "abc"]


def test_an_unresolvable_variable_fails_the_run_naming_it(tmp_path):
    prog = program(dag("main", {"name": "a", "template": "p"}),
                   container("p", "{{workflow.labels.team}}"))
    outcome = run(prog, FakePods(), tmp_path)
    assert outcome.phase == FAILED
    assert "{{workflow.labels.team}}" in outcome.message


@pytest.mark.parametrize("limit", [None, 1])
def test_cancel_stops_everything_and_the_exit_handler_still_runs(tmp_path, limit):
    prog = program(dag("main", {"name": "d", "template": "p", "withItems": list("abcdef"),
                                "arguments": {"parameters": [{"name": "v",
                                                              "value": "{{item}}"}]}},
                       **({"parallelism": limit} if limit else {})),
                   {**container("p", "{{inputs.parameters.v}}"),
                    "inputs": {"parameters": [{"name": "v"}]}},
                   container("exit", "exit", "{{workflow.status}}"), on_exit="exit")
    started = threading.Event()
    executor: list[Executor] = []

    def behaviour(args, n):
        started.set()
        time.sleep(0.1)
        return SUCCEEDED, {}

    pods = FakePods(behaviour)
    settings = Settings(name="wf", uid="u", created="t", namespace="default",
                        directory=tmp_path, parallelism=2)
    executor.append(Executor(prog, pods, settings))
    box = []
    worker = threading.Thread(target=lambda: box.append(executor[0].run()))
    worker.start()
    started.wait(600)
    executor[0].cancel.set()
    worker.join(600)
    assert box[0].phase == FAILED and box[0].message == "interrupted"
    assert pods.calls[-1] == ["exit", "Failed"]
    assert len(pods.calls) < 7


def test_a_bad_fan_out_fails_the_run_naming_it_after_what_runs_has_finished(tmp_path):
    prog = program(
        dag("main", {"name": "slow", "template": "p"},
            {"name": "open", "template": "open"},
            {"name": "datums", "template": "p", "depends": "open",
             "withParam": "{{tasks.open.outputs.parameters.items}}"}),
        container("p", "work"), container("open", "open", outputs=("items",)))
    pods = FakePods(lambda args, n: (SUCCEEDED, {"items": "not json"} if args == ["open"]
                                     else {}), delay=0.05)
    outcome = run(prog, pods, tmp_path)
    assert outcome.phase == "Error"
    assert "withParam is not a JSON list: 'not json'" in outcome.message
    assert pods.running == 0 and sorted(pods.calls) == [["open"], ["work"]]


def record(events):
    """(kind, task, item, phase) of each event, in the order the executor reported them."""
    return [(e.kind, e.node.task, e.node.item, e.phase) for e in events]


def test_a_task_starts_when_its_dependency_finishes_while_a_sibling_still_runs(tmp_path):
    prog = program(
        dag("main", {"name": "slow", "template": "p", "arguments": {"parameters": [
            {"name": "v", "value": "slow"}]}},
            {"name": "a", "template": "p", "arguments": {"parameters": [
                {"name": "v", "value": "a"}]}},
            {"name": "b", "template": "p", "depends": "a", "arguments": {"parameters": [
                {"name": "v", "value": "b"}]}}),
        {**container("p", "{{inputs.parameters.v}}"), "inputs": {"parameters": [
            {"name": "v"}]}})
    b_done = threading.Event()
    seen: list[bool] = []
    events: list = []

    def behaviour(args, n):
        if args == ["slow"]:
            seen.append(b_done.wait(600))  # `slow` ends only once `b` has finished
        return SUCCEEDED, {}

    def event(e):
        events.append(e)
        if (e.kind, e.node.task) == ("finish", "b"):
            b_done.set()

    settings = Settings(name="wf", uid="u", created="t", namespace="default",
                        directory=tmp_path, parallelism=4)
    assert Executor(prog, FakePods(behaviour), settings, event).run().phase == SUCCEEDED
    assert seen == [True]
    finished = [task for kind, task, _item, _phase in record(events) if kind == "finish"]
    assert finished == ["a", "b", "slow", None]


def test_events_come_in_the_order_the_nodes_ran(tmp_path):
    prog = program(
        dag("main", {"name": "a", "template": "p"},
            {"name": "b", "template": "p", "depends": "a", "withItems": ["x", "y"]},
            {"name": "c", "template": "p", "depends": "b"}, parallelism=1),
        container("p", "work"))
    events: list = []
    settings = Settings(name="wf", uid="u", created="t", namespace="default",
                        directory=tmp_path, parallelism=4)
    assert Executor(prog, FakePods(), settings, events.append).run().phase == SUCCEEDED
    assert record(events) == [
        ("start", None, None, ""),
        ("start", "a", None, ""), ("finish", "a", None, SUCCEEDED),
        ("expand", "b", None, ""),
        ("start", "b", "x", ""), ("finish", "b", "x", SUCCEEDED),
        ("start", "b", "y", ""), ("finish", "b", "y", SUCCEEDED),
        ("start", "c", None, ""), ("finish", "c", None, SUCCEEDED),
        ("finish", None, None, SUCCEEDED)]


def test_depends_reads_skipped_and_omitted_tasks_as_argo_does(tmp_path):
    prog = program(
        dag("main", {"name": "empty", "template": "p", "withItems": []},
            {"name": "after-skip", "template": "p", "depends": "empty.Skipped"},
            {"name": "bare", "template": "p", "depends": "empty"},
            {"name": "on-success", "template": "p", "depends": "empty.Succeeded"},
            {"name": "after-omit", "template": "p", "depends": "on-success.Omitted"},
            {"name": "needs-omitted", "template": "p", "depends": "on-success"},
            {"name": "either", "template": "p",
             "depends": "needs-omitted.Succeeded || after-omit.Succeeded"}),
        container("p", "work"))
    events: list = []
    settings = Settings(name="wf", uid="u", created="t", namespace="default",
                        directory=tmp_path, parallelism=4)
    assert Executor(prog, FakePods(), settings, events.append).run().phase == SUCCEEDED
    ran = {task for kind, task, _item, _phase in record(events) if kind == "start"}
    assert ran == {None, "after-skip", "bare", "after-omit", "either"}


def test_after_a_failure_the_children_waiting_for_a_slot_never_start(tmp_path):
    prog = program(dag("main", {"name": "d", "template": "p", "withItems": list("abcd"),
                                "arguments": {"parameters": [{"name": "v",
                                                              "value": "{{item}}"}]}},
                       {"name": "next", "template": "p", "depends": "d.Failed",
                        "arguments": {"parameters": [{"name": "v", "value": "next"}]}},
                       parallelism=1),
                   {**container("p", "{{inputs.parameters.v}}"),
                    "inputs": {"parameters": [{"name": "v"}]}})
    pods = FakePods(lambda args, n: (FAILED, {}))
    outcome = run(prog, pods, tmp_path)
    assert outcome.phase == FAILED
    assert outcome.message == "task `d`: ['a'] failed"
    assert pods.calls == [["a"]]  # failFast: not the other items, nor what handles it


def test_a_stop_ends_a_running_dag_and_leaves_no_thread_behind(tmp_path):
    prog = program(
        dag("main", {"name": "inner", "template": "inner"},
            {"name": "d", "template": "p", "withItems": list("abcdef")}),
        dag("inner", {"name": "d", "template": "p", "withItems": list("ghijkl")},
            parallelism=2),
        container("p", "work"))
    before = set(threading.enumerate())
    started = threading.Semaphore(0)

    def pods(pod, cancel):  # as a real pod does: it runs until stopped
        started.release()
        cancel.wait(600)
        return PodResult(FAILED, "stopped")

    settings = Settings(name="wf", uid="u", created="t", namespace="default",
                        directory=tmp_path, parallelism=3)
    executor = Executor(prog, pods, settings)
    box = []
    worker = threading.Thread(target=lambda: box.append(executor.run()))
    worker.start()
    for _ in range(3):  # the run's pod slots are full
        assert started.acquire(timeout=600)
    executor.cancel.set()
    worker.join(600)
    assert not worker.is_alive()
    assert box[0].phase == FAILED and box[0].message == "interrupted"
    assert [t.name for t in threading.enumerate()
            if t not in before and t.name.startswith("dsc-")] == []


def test_a_stop_request_wakes_whoever_waits_on_it_meanwhile():
    from compiler.local.executor import Cancel

    cancel, woken = Cancel(), []
    with cancel.waking(lambda: woken.append("dag")):
        cancel.set()
    cancel.clear()
    cancel.set()  # no one waits any more
    assert woken == ["dag"] and cancel.is_set()


def test_a_stop_ends_a_retry_backoff_at_once(tmp_path):
    prog = program(dag("main", {"name": "d", "template": "p"}),
                   {**container("p", "x"), "retryStrategy": {
                       "limit": "3", "backoff": {"duration": "1h"}}})
    retried = threading.Event()
    events: list = []

    def event(e):
        events.append(e)
        if e.kind == "retry":
            retried.set()

    settings = Settings(name="wf", uid="u", created="t", namespace="default",
                        directory=tmp_path, parallelism=2)  # the backoff waits for real
    executor = Executor(prog, FakePods(lambda args, n: (FAILED, {})), settings, event)
    box = []
    worker = threading.Thread(target=lambda: box.append(executor.run()), daemon=True)
    worker.start()
    assert retried.wait(600)
    executor.cancel.set()
    worker.join(600)
    assert not worker.is_alive()
    assert box[0].phase == FAILED and box[0].message == "interrupted"
    # the attempt after the backoff starts and ends at once, as it always has
    assert record(events)[1:5] == [("start", "d", None, ""), ("retry", "d", None, FAILED),
                                   ("start", "d", None, ""),
                                   ("finish", "d", None, FAILED)]
    assert events[4].message == "interrupted"


def test_a_task_listed_before_the_task_it_depends_on_runs_once_that_one_is_decided(tmp_path):
    # Argo orders a DAG by its dependencies, not by the order of the list: `after` waits for
    # `empty`, which is skipped (an empty fan-out) without running anything.
    prog = program(
        dag("main", {"name": "after", "template": "p", "depends": "empty.Skipped"},
            {"name": "omitted", "template": "p", "depends": "after.Failed"},
            {"name": "last", "template": "p", "depends": "omitted.Omitted"},
            {"name": "empty", "template": "p", "withItems": []}),
        container("p", "work"))
    pods = FakePods()
    assert run(prog, pods, tmp_path).phase == SUCCEEDED
    assert pods.calls == [["work"], ["work"]]  # after, then last
