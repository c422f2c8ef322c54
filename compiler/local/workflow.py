"""The compiled Workflow, read back for `dsc run`: exactly the subset of Argo that dsc emits.

`load_program` takes the documents `dsc compile` printed (a Workflow and the
WorkflowTemplates it references) and checks every key against the subset below; anything
else is `Unsupported`, naming the construct and where it is, never skipped. The same goes
for `depends` expressions and `{{...}}` variables. Keys that only place a pod on a cluster
(resources, nodeSelector, tolerations, priorityClassName, service accounts, image pull
secrets, labels) are accepted and have no effect on this machine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ANY = object()  # a free-form value (a map of labels, a resource list)
SCALAR = object()

_ENV = [{"name": SCALAR, "value": SCALAR,
         "valueFrom": {"secretKeyRef": {"name": SCALAR, "key": SCALAR}}}]
_CONTAINER = {
    "name": SCALAR, "image": SCALAR, "command": [SCALAR], "args": [SCALAR], "env": _ENV,
    "envFrom": [{"prefix": SCALAR, "secretRef": {"name": SCALAR}}],
    "volumeMounts": [{"name": SCALAR, "mountPath": SCALAR, "readOnly": SCALAR}],
    "resources": ANY, "workingDir": SCALAR, "securityContext": {"runAsUser": SCALAR},
    "dependencies": [SCALAR], "imagePullPolicy": SCALAR,
}
_PARAMETERS = [{"name": SCALAR, "value": SCALAR}]
_TASK = {
    "name": SCALAR, "template": SCALAR, "templateRef": {"name": SCALAR, "template": SCALAR},
    "arguments": {"parameters": _PARAMETERS}, "depends": SCALAR, "withParam": SCALAR,
    "withItems": [SCALAR],
}
_TEMPLATE = {
    "name": SCALAR, "metadata": {"labels": ANY, "annotations": ANY},
    "container": _CONTAINER, "containerSet": {"containers": [_CONTAINER]},
    "initContainers": [_CONTAINER],
    "dag": {"tasks": [_TASK]},
    "inputs": {"parameters": _PARAMETERS},
    "outputs": {"parameters": [{"name": SCALAR,
                                "valueFrom": {"path": SCALAR, "parameter": SCALAR}}]},
    "parallelism": SCALAR, "activeDeadlineSeconds": SCALAR,
    "retryStrategy": {"limit": SCALAR, "retryPolicy": SCALAR, "expression": SCALAR,
                      "backoff": {"duration": SCALAR, "factor": SCALAR,
                                  "maxDuration": SCALAR}},
    "synchronization": {"mutexes": [{"name": SCALAR}]},
    "volumes": [{"name": SCALAR, "emptyDir": {}, "secret": {"secretName": SCALAR}}],
    "nodeSelector": ANY, "tolerations": ANY, "priorityClassName": SCALAR,
}
_SPEC = {
    "entrypoint": SCALAR, "onExit": SCALAR, "templates": [_TEMPLATE],
    "arguments": {"parameters": _PARAMETERS}, "workflowTemplateRef": {"name": SCALAR},
    "serviceAccountName": SCALAR, "imagePullSecrets": ANY, "workflowMetadata": ANY,
    "parallelism": SCALAR,
}
_METADATA = {"name": SCALAR, "generateName": SCALAR, "namespace": SCALAR, "labels": ANY,
             "annotations": ANY}
_DOCUMENT = {"apiVersion": SCALAR, "kind": SCALAR, "metadata": _METADATA, "spec": _SPEC}
_CRON = {"apiVersion": SCALAR, "kind": SCALAR, "metadata": _METADATA,
         "spec": {"schedules": [SCALAR], "timezone": SCALAR, "concurrencyPolicy": SCALAR,
                  "workflowSpec": _SPEC}}

RETRY_POLICIES = ("Always", "OnFailure", "OnError")
# What `{{tasks.X.<state>}}`-style results `depends` may test (Argo's task results).
RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted")


class Unsupported(Exception):
    """A construct outside what `dsc run` executes, named with where it is."""


@dataclass(frozen=True, slots=True)
class Program:
    """One run: the Workflow's name and every template it may call, by (object, name)."""

    name: str
    namespace: str
    entrypoint: str
    on_exit: str | None
    parameters: dict[str, str]
    parallelism: int | None
    owner: str  # the WorkflowTemplate (or Workflow) holding the entry templates
    templates: dict[tuple[str, str], dict[str, Any]]

    def template(self, owner: str, name: str) -> dict[str, Any]:
        try:
            return self.templates[(owner, name)]
        except KeyError:
            raise Unsupported(f"template `{name}` is not in {owner}") from None

    def called(self, owner: str, task: Mapping[str, Any]) -> tuple[str, str]:
        """(object, template) a DAG task of `owner` calls: its `templateRef` or `template`."""
        ref = task.get("templateRef")
        return (ref["name"], ref["template"]) if ref else (owner, task["template"])


def load_program(documents: list[dict[str, Any]]) -> Program:
    """The Workflow among `documents`, with the WorkflowTemplates it uses."""
    workflows = []
    crons = []
    owners: dict[str, dict[str, Any]] = {}
    for i, doc in enumerate(documents):
        kind = doc.get("kind") if isinstance(doc, dict) else None
        where = f"document {i + 1} ({kind or 'no kind'})"
        if kind not in ("Workflow", "WorkflowTemplate", "CronWorkflow"):
            raise Unsupported(f"{where}: `kind: {kind}` (dsc run executes a Workflow and its "
                              "WorkflowTemplates)")
        name = f"{kind} {doc.get('metadata', {}).get('name', '?')}"
        check(doc, _CRON if kind == "CronWorkflow" else _DOCUMENT, name)
        if kind == "Workflow":
            workflows.append(doc)
        elif kind == "CronWorkflow":
            crons.append(doc)
        else:
            owners[doc["metadata"]["name"]] = doc
    if not workflows and len(crons) == 1:
        # A graph on a cron input: run one tick now, as `argo cron trigger` would.
        workflows = [{"metadata": crons[0]["metadata"], "spec": crons[0]["spec"]["workflowSpec"]}]
    elif not workflows and crons:
        raise Unsupported("the graph has several cron inputs, one CronWorkflow each ("
                          + ", ".join(c["metadata"]["name"] for c in crons) + "); dsc run "
                          "runs one Workflow")
    if len(workflows) != 1:
        raise Unsupported(f"dsc run executes one Workflow; the documents hold {len(workflows)}")
    workflow = workflows[0]
    meta, spec = workflow["metadata"], workflow["spec"]
    name = meta.get("name") or meta.get("generateName", "dsc-").rstrip("-")
    owner = name
    base: dict[str, Any] = {}
    if "workflowTemplateRef" in spec:
        owner = spec["workflowTemplateRef"]["name"]
        if owner not in owners:
            raise Unsupported(f"Workflow {name}: workflowTemplateRef `{owner}` is not among "
                              "the documents")
        base = owners[owner]["spec"]
    else:
        owners[owner] = workflow
    merged = {**base, **spec}
    templates = {(o, t["name"]): t for o, doc in owners.items()
                 for t in doc["spec"].get("templates", [])}
    parameters = {p["name"]: str(p.get("value", "")) for p in
                  [*base.get("arguments", {}).get("parameters", []),
                   *spec.get("arguments", {}).get("parameters", [])]}
    program = Program(name=name, namespace=meta.get("namespace", "default"),
                      entrypoint=merged.get("entrypoint", ""), on_exit=merged.get("onExit"),
                      parameters=parameters,
                      parallelism=int(merged["parallelism"]) if "parallelism" in merged
                      else None, owner=owner, templates=templates)
    if not program.entrypoint:
        raise Unsupported(f"Workflow {name} has no entrypoint")
    for (o, t), template in templates.items():
        _check_template(template, f"{o} template `{t}`")
    return program


def check(value: Any, shape: Any, where: str) -> None:
    """`value` fits `shape` (the subset), else Unsupported naming the first key outside."""
    if shape is ANY:
        return
    if shape is SCALAR:
        if isinstance(value, (dict, list)):
            raise Unsupported(f"{where}: a structured value where dsc run expects a scalar")
        return
    if isinstance(shape, list):
        if not isinstance(value, list):
            raise Unsupported(f"{where}: expected a list")
        for i, item in enumerate(value):
            named = isinstance(item, dict) and isinstance(item.get("name"), str)
            check(item, shape[0], f"{where}[{item['name'] if named else i}]")
        return
    if not isinstance(value, dict):
        raise Unsupported(f"{where}: expected a map")
    for key, item in value.items():
        if key not in shape:
            raise Unsupported(f"{where}: `{key}` is not supported by dsc run (it runs the "
                              "subset of Argo that dsc compile emits)")
        check(item, shape[key], f"{where}.{key}")


def _check_template(t: dict[str, Any], where: str) -> None:
    kinds = [k for k in ("container", "containerSet", "dag") if k in t]
    if len(kinds) != 1:
        raise Unsupported(f"{where}: a template must be one of container, containerSet or "
                          f"dag (found {', '.join(kinds) or 'none'})")
    retry = t.get("retryStrategy")
    if retry and retry.get("retryPolicy", "OnFailure") not in RETRY_POLICIES:
        raise Unsupported(f"{where}: retryPolicy `{retry['retryPolicy']}`")
    if retry and "expression" in retry:
        parse_retry_expression(str(retry["expression"]), f"{where} retryStrategy")
    for task in t.get("dag", {}).get("tasks", []):
        if "depends" in task:
            parse_depends(str(task["depends"]), f"{where} task `{task['name']}`")
        if "withParam" in task and "withItems" in task:
            raise Unsupported(f"{where} task `{task['name']}`: withParam and withItems "
                              "together")


# --- retryStrategy.expression ---------------------------------------------------------------

RetryTest = Callable[[Mapping[str, str]], bool]
_EXPR_TOKEN = re.compile(r'\s*(?:(&&|\|\||==|!=|<=|>=|[<>!(),\[\]])|"((?:[^"\\]|\\.)*)"'
                         r"|(-?\d+)|([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*))")
RETRY_VARIABLES = ("lastRetry.exitCode", "lastRetry.status", "lastRetry.duration",
                   "lastRetry.message")


def parse_retry_expression(text: str, where: str) -> RetryTest:
    """An Argo `retryStrategy.expression` (expr-lang) as a test of the last attempt's
    `lastRetry.*` values (all strings, as Argo gives them). The subset: those variables,
    string and integer literals, lists, `asInt(...)`, `== != < > <= >=`, `in`, `not in`,
    `!`, `&&`, `||` and parentheses; anything else is Unsupported."""
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _EXPR_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise Unsupported(f"{where}: expression `{text}`: cannot read it at "
                              f"`{text[pos:]}`")
        op, string, number, name = m.groups()
        if op is not None:
            tokens.append(("op", op))
        elif string is not None:
            tokens.append(("value", re.sub(r"\\(.)", r"\1", string)))
        elif number is not None:
            tokens.append(("value", int(number)))
        elif name in ("in", "not"):
            tokens.append(("op", name))
        elif name in RETRY_VARIABLES or name == "asInt":
            tokens.append(("name", name))
        else:
            raise Unsupported(f"{where}: expression `{text}`: `{name}` is not supported")
        pos = m.end()
    index = 0
    Node = Callable[[Mapping[str, str]], Any]

    def fail(why: str) -> Unsupported:
        return Unsupported(f"{where}: expression `{text}`: {why}")

    def peek() -> str | None:
        return tokens[index][1] if index < len(tokens) and tokens[index][0] == "op" else None

    def take(op: str) -> None:
        nonlocal index
        if peek() != op:
            raise fail(f"expected `{op}`")
        index += 1

    def primary() -> Node:
        nonlocal index
        if index >= len(tokens):
            raise fail("it ends early")
        kind, value = tokens[index]
        index += 1
        if kind == "value":
            constant: Any = value
            return lambda _scope: constant
        if kind == "name" and value == "asInt":
            take("(")
            inner = disjunction()
            take(")")

            def as_int(scope: Mapping[str, str]) -> int:
                got = inner(scope)
                try:
                    return int(got)
                except (TypeError, ValueError):
                    raise Unsupported(f"{where}: expression `{text}`: asInt({got!r}) is not "
                                      "a number") from None
            return as_int
        if kind == "name":
            variable = str(value)
            return lambda scope: scope[variable]
        if value == "!":
            inner = primary()
            return lambda scope: not inner(scope)
        if value == "(":
            inner = disjunction()
            take(")")
            return inner
        if value == "[":
            items: list[Node] = []
            while peek() != "]":
                items.append(disjunction())
                if peek() != ",":
                    break
                take(",")
            take("]")
            return lambda scope: [item(scope) for item in items]
        raise fail(f"unexpected `{value}`")

    def comparison() -> Node:
        nonlocal index
        left = primary()
        op = peek()
        if op == "not":
            index += 1
            take("in")
            right = primary()
            return lambda scope: left(scope) not in right(scope)
        if op not in ("==", "!=", "<", ">", "<=", ">=", "in"):
            return left
        index += 1
        right = primary()
        compare: dict[str, Callable[[Any, Any], bool]] = {
            "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
            ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
            "in": lambda a, b: a in b}
        test = compare[op]
        return lambda scope: test(left(scope), right(scope))

    def conjunction() -> Node:
        nonlocal index
        parts = [comparison()]
        while peek() == "&&":
            index += 1
            parts.append(comparison())
        if len(parts) == 1:
            return parts[0]
        return lambda scope: all(bool(p(scope)) for p in parts)

    def disjunction() -> Node:
        nonlocal index
        parts = [conjunction()]
        while peek() == "||":
            index += 1
            parts.append(conjunction())
        if len(parts) == 1:
            return parts[0]
        return lambda scope: any(bool(p(scope)) for p in parts)

    expression = disjunction()
    if index != len(tokens):
        raise fail(f"unexpected `{tokens[index][1]}`")
    return lambda scope: bool(expression(scope))


# --- depends ---------------------------------------------------------------------------------

Depends = Callable[[Mapping[str, str]], bool | None]
_TOKEN = re.compile(r"\s*(?:(&&|\|\||!|\(|\))|([A-Za-z0-9][-A-Za-z0-9_]*)(?:\.([A-Za-z]+))?)")


def parse_depends(text: str, where: str) -> tuple[Depends, set[str]]:
    """A `depends` expression as a function of the finished tasks' results (None while a
    task it names has not finished), and the names it uses. Argo's grammar: task names,
    `.Succeeded` etc., `&&`, `||`, `!` and parentheses; a bare name means it succeeded (or
    was skipped)."""
    tokens: list[tuple[str, str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise Unsupported(f"{where}: depends `{text}`: cannot read it at `{text[pos:]}`")
        op, name, result = m.groups()
        if name and result and result not in RESULTS:
            raise Unsupported(f"{where}: depends `{text}`: `.{result}` is not supported")
        tokens.append(("op", op, "") if op else ("name", name, result or ""))
        pos = m.end()
    names = {t[1] for t in tokens if t[0] == "name"}
    index = 0

    def peek() -> str | None:
        return tokens[index][1] if index < len(tokens) and tokens[index][0] == "op" else None

    def primary() -> Depends:
        nonlocal index
        if index >= len(tokens):
            raise Unsupported(f"{where}: depends `{text}` ends early")
        kind, value, result = tokens[index]
        index += 1
        if kind == "name":
            def test(done: Mapping[str, str]) -> bool | None:
                if value not in done:
                    return None
                if result:
                    return done[value] == result
                return done[value] in ("Succeeded", "Skipped")
            return test
        if value == "!":
            inner = primary()
            return lambda done: None if (r := inner(done)) is None else not r
        if value == "(":
            inner = disjunction()
            if peek() != ")":
                raise Unsupported(f"{where}: depends `{text}`: unbalanced parentheses")
            index += 1
            return inner
        raise Unsupported(f"{where}: depends `{text}`: unexpected `{value}`")

    def conjunction() -> Depends:
        nonlocal index
        parts = [primary()]
        while peek() == "&&":
            index += 1
            parts.append(primary())
        return lambda done: _all([p(done) for p in parts])

    def disjunction() -> Depends:
        nonlocal index
        parts = [conjunction()]
        while peek() == "||":
            index += 1
            parts.append(conjunction())
        return lambda done: _any([p(done) for p in parts])

    expression = disjunction()
    if index != len(tokens):
        raise Unsupported(f"{where}: depends `{text}`: unexpected `{tokens[index][1]}`")
    return expression, names


def _all(values: list[bool | None]) -> bool | None:
    return False if False in values else None if None in values else True


def _any(values: list[bool | None]) -> bool | None:
    return True if True in values else None if None in values else False


# --- {{...}} ---------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def substitute(text: str, scope: Mapping[str, str], where: str) -> str:
    """Replace every `{{name}}` from `scope`; a name it does not hold is Unsupported (Argo
    would fail the node the same way)."""
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in scope:
            raise Unsupported(f"{where}: cannot resolve `{{{{{name}}}}}`")
        return scope[name]

    return _VARIABLE.sub(one, text)


def duration(text: str, where: str) -> float:
    """A Go duration (`5s`, `2m`, `1h30m`) or plain seconds, in seconds."""
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise Unsupported(f"{where}: duration `{text}`")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)
