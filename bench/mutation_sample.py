"""A reproducible mutation sample of one source file, and which mutants the tests kill.

    .venv/bin/python bench/mutation_sample.py compiler/argo/build.py --tests <paths...>

Mutants: every site of the file (docstrings, annotations, imports, asserts and f-string
insides left out) for these operators: arithmetic operator swap (`+`<->`-`, `*`<->`/`, `//`
-> `*`, `%` -> `//`, `|`<->`&`; not on string concatenation), comparison flip (`<`<->`<=`,
`>`<->`>=`, `==`<->`!=`, `in`<->`not in`, `is`<->`is not`), `and`<->`or`, dropping a `not`,
negating the test of an `if`/`while`/conditional expression/comprehension filter, an integer
constant +1 and -1, `True`<->`False`, `return <value>` -> `return None`, and deleting a
statement (a call, a `raise`, an assignment into an item or attribute, `continue`, `break`)
by replacing it with `pass`. A sample of `--sample` sites is drawn with `random.Random(seed)`
(the seed is the file's path and `--seed`), so the same file and arguments give the same
mutants, listed in the output with their line and change.

Tests: the `--tests` paths are run once, unmutated, under coverage with one context per test
(pytest-cov's `--cov-context=test`), in a copy of the repository's files (git ls-files, the
untracked ones included) beside a link to ../shared, so the working tree is never changed.
Each mutant is then written into the copy and only the tests that ran its line are run
(`pytest -x -n 0`, fastest first, `--timeout` seconds at most): killed (a test failed, or it
timed out), survived (they passed) or not covered (no test runs the line: survived, reported
apart). A mutant whose code does not even import is killed by any test, and counted so.

The JSON written with `-o` lists every mutant and its outcome; the summary goes to stdout.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

BINOPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv, ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr}
CMPOPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot,
    ast.IsNot: ast.Is}
SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
          ast.Mod: "%", ast.BitOr: "|", ast.BitAnd: "&", ast.Lt: "<", ast.LtE: "<=",
          ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.In: "in",
          ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}


@dataclass(frozen=True)
class Site:
    path: tuple[tuple[str, int | None], ...]  # fields from the module to the node
    kind: str
    line: int
    describe: str
    lines: tuple[int, ...]  # the lines of the node and of the statement holding it


@dataclass
class Outcome:
    id: int
    line: int
    kind: str
    describe: str
    source: str  # the mutated line(s)
    status: str  # killed | survived | uncovered | timeout | flaky (killed by a failing test)
    tests: int  # tests selected
    seconds: float
    killer: str = ""


def _children(node: ast.AST) -> list[tuple[tuple[str, int | None], ast.AST]]:
    out: list[tuple[tuple[str, int | None], ast.AST]] = []
    for name, value in ast.iter_fields(node):
        if isinstance(value, ast.AST):
            out.append(((name, None), value))
        elif isinstance(value, list):
            out.extend(((name, i), v) for i, v in enumerate(value) if isinstance(v, ast.AST))
    return out


def _is_docstring(node: ast.AST, parent: ast.AST | None, key: tuple[str, int | None]) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str) and key == ("body", 0)
            and isinstance(parent, (ast.Module, ast.FunctionDef, ast.ClassDef)))


SKIP_FIELDS = {"annotation", "returns", "type_comment"}


def sites(tree: ast.Module) -> list[Site]:
    found: list[Site] = []

    statement: list[ast.AST] = []  # the statement being visited

    def add(path: tuple[tuple[str, int | None], ...], node: ast.AST, kind: str,
            describe: str) -> None:
        first, last = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
        held = {statement[-1].lineno} if statement else set()  # type: ignore[attr-defined]
        found.append(Site(path, kind, first, describe,
                          tuple(sorted(held | set(range(first, last + 1))))))

    def visit(node: ast.AST, parent: ast.AST | None,
              path: tuple[tuple[str, int | None], ...]) -> None:
        if isinstance(node, ast.stmt):
            statement.append(node)
            try:
                visit_node(node, parent, path)
            finally:
                statement.pop()
        else:
            visit_node(node, parent, path)

    def visit_node(node: ast.AST, parent: ast.AST | None,
                   path: tuple[tuple[str, int | None], ...]) -> None:
        key = path[-1] if path else ("", None)
        if key[0] in SKIP_FIELDS or isinstance(node, (ast.JoinedStr, ast.Import,
                                                      ast.ImportFrom, ast.Assert)):
            return
        if _is_docstring(node, parent, key):
            return
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) \
                and node.test.id == "TYPE_CHECKING":
            return
        if isinstance(node, ast.BinOp) and type(node.op) in BINOPS and not any(
                isinstance(x, ast.JoinedStr)
                or (isinstance(x, ast.Constant) and isinstance(x.value, str))
                for x in (node.left, node.right)):
            add(path, node, "binop", f"{SYMBOL[type(node.op)]} -> "
                f"{SYMBOL[BINOPS[type(node.op)]]}")
        if isinstance(node, ast.AugAssign) and type(node.op) in BINOPS:
            add(path, node, "augassign", f"{SYMBOL[type(node.op)]}= -> "
                f"{SYMBOL[BINOPS[type(node.op)]]}=")
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in CMPOPS:
                    add((*path, ("ops", i)), node, "compare",
                        f"{SYMBOL[type(op)]} -> {SYMBOL[CMPOPS[type(op)]]}")
        if isinstance(node, ast.BoolOp):
            add(path, node, "boolop", "and -> or" if isinstance(node.op, ast.And)
                else "or -> and")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            add(path, node, "not", "drop `not`")
        if isinstance(node, (ast.If, ast.While, ast.IfExp)):
            add((*path, ("test", None)), node.test, "negate", "negate the condition")
        if isinstance(node, ast.comprehension):
            for i, cond in enumerate(node.ifs):
                add((*path, ("ifs", i)), cond, "negate", "negate the filter")
        if isinstance(node, ast.Constant) and type(node.value) is int:
            add(path, node, "int+1", f"{node.value} -> {node.value + 1}")
            add(path, node, "int-1", f"{node.value} -> {node.value - 1}")
        if isinstance(node, ast.Constant) and type(node.value) is bool:
            add(path, node, "bool", f"{node.value} -> {not node.value}")
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            add(path, node, "return", "return None")
        if isinstance(node, (ast.Raise, ast.Continue, ast.Break)) or (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)) or (
                isinstance(node, (ast.Assign, ast.AugAssign)) and all(
                    isinstance(t, (ast.Subscript, ast.Attribute))
                    for t in (node.targets if isinstance(node, ast.Assign)
                              else [node.target]))):
            add(path, node, "delete", f"delete `{ast.unparse(node).splitlines()[0][:60]}`")
        for child_key, child in _children(node):
            visit(child, node, (*path, child_key))

    visit(tree, None, ())
    return found


def _resolve(tree: ast.AST, path: tuple[tuple[str, int | None], ...]
             ) -> tuple[ast.AST, str, int | None, ast.AST]:
    """(parent, field, index, node) at `path`."""
    parent: ast.AST = tree
    node: Any = tree
    for name, index in path:
        parent = node
        node = getattr(node, name)
        if index is not None:
            node = node[index]
    field, index = path[-1]
    return parent, field, index, node


def _mutate(tree: ast.Module, site: Site) -> tuple[ast.Module, ast.AST, ast.AST]:
    """A copy of `tree` with `site` applied: (tree, the node replaced, its replacement)."""
    tree = copy.deepcopy(tree)
    path = site.path[:-1] if site.kind == "compare" else site.path
    parent, field, index, node = _resolve(tree, path)
    new: ast.AST
    if site.kind in ("binop", "augassign"):
        new = copy.copy(node)
        new.op = BINOPS[type(node.op)]()  # type: ignore[attr-defined]
    elif site.kind == "compare":
        new = copy.copy(node)
        i = site.path[-1][1]
        assert i is not None
        ops = list(node.ops)  # type: ignore[attr-defined]
        ops[i] = CMPOPS[type(ops[i])]()
        new.ops = ops  # type: ignore[attr-defined]
    elif site.kind == "boolop":
        new = copy.copy(node)
        new.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()  # type: ignore
    elif site.kind == "not":
        new = node.operand  # type: ignore[attr-defined]
    elif site.kind == "negate":
        new = ast.UnaryOp(op=ast.Not(), operand=node)
    elif site.kind in ("int+1", "int-1"):
        new = ast.Constant(node.value + (1 if site.kind == "int+1" else -1))  # type: ignore
    elif site.kind == "bool":
        new = ast.Constant(not node.value)  # type: ignore[attr-defined]
    elif site.kind == "return":
        new = ast.Return(value=ast.Constant(None))
    elif site.kind == "delete":
        new = ast.Pass()
    else:
        raise ValueError(site.kind)
    if index is None:
        setattr(parent, field, new)
    else:
        getattr(parent, field)[index] = new
    return tree, node, new


def _offset(lines: list[bytes], line: int, col: int) -> int:
    return sum(len(x) for x in lines[:line - 1]) + col


def mutated_source(source: str, tree: ast.Module, site: Site) -> str | None:
    """The file's text with `site` applied (only the node's text replaced), or None when the
    text would not parse to the mutated tree."""
    expected, node, new = _mutate(tree, site)
    data = source.encode()
    lines = data.splitlines(keepends=True)
    start = _offset(lines, node.lineno, node.col_offset)  # type: ignore[attr-defined]
    end = _offset(lines, node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
    text = ast.unparse(new)
    if isinstance(node, ast.expr):
        text = f"({text})"
    out = (data[:start] + text.encode() + data[end:]).decode()
    try:
        parsed = ast.parse(out)
    except SyntaxError:
        return None
    return out if ast.dump(parsed) == ast.dump(expected) else None


def sample(target: Path, count: int, seed: str) -> list[tuple[Site, str]]:
    source = target.read_text()
    tree = ast.parse(source)
    every = sites(tree)
    rng = random.Random(f"{target.as_posix()}:{seed}")
    rng.shuffle(every)
    chosen: list[tuple[Site, str]] = []
    for site in every:
        text = mutated_source(source, tree, site)
        if text is not None and text != source:
            chosen.append((site, text))
        if len(chosen) == count:
            break
    chosen.sort(key=lambda x: (x[0].line, x[0].kind, x[0].describe))
    return chosen


def _copy_repo(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    repo = dest / "dsc"
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (dest / "shared").symlink_to(shared)
    return repo


def _env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _pytest(repo: Path, args: list[str], timeout: float | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-p", "no:randomly", *args], cwd=repo, env=_env(repo), text=True,
                          capture_output=True, timeout=timeout)


Map = tuple[dict[int, set[str]], dict[str, float], set[int]]


def coverage_map(repo: Path, target: str, tests: list[str], workers: str) -> Map:
    """line -> the tests that ran it, each test's duration, and the lines run at import only
    (module level: every test that imports the file runs them)."""
    from coverage import CoverageData

    done = _pytest(repo, ["-q", "-n", workers, "--cov=compiler", "--cov-context=test",
                          "--cov-report=", "--durations=0", "--durations-min=0", *tests])
    if done.returncode not in (0, 1):
        sys.exit(f"the tests did not run:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    # A test failing unmutated (a time limit under coverage, a flaky one) kills nothing.
    failing = set(re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.MULTILINE))
    if failing:
        print("left out, failing unmutated:", ", ".join(sorted(failing)), flush=True)
    durations: dict[str, float] = defaultdict(float)
    for m in re.finditer(r"^([0-9.]+)s (?:setup|call|teardown)\s+(\S.*)$", done.stdout,
                         re.MULTILINE):
        durations[m.group(2).strip()] += float(m.group(1))
    data = CoverageData(basename=str(repo / ".coverage"))
    data.read()
    path = str((repo / target).resolve())
    by_line: dict[int, set[str]] = defaultdict(set)
    imported: set[int] = set()
    for line, contexts in data.contexts_by_lineno(path).items():
        for ctx in contexts:
            test = ctx.rsplit("|", 1)[0]
            if not ctx:
                imported.add(line)
            elif test not in failing:
                by_line[line].add(test)
    (repo / ".coverage").unlink()
    return by_line, durations, imported


def load_map(path: Path) -> Map:
    data = json.loads(path.read_text())
    return ({int(k): set(v) for k, v in data["lines"].items()}, data["durations"],
            set(data["imported"]))


def save_map(path: Path, found: Map) -> None:
    by_line, durations, imported = found
    path.write_text(json.dumps({"lines": {str(k): sorted(v) for k, v in by_line.items()},
                                "durations": durations, "imported": sorted(imported)}))


def merge_maps(a: Map, b: Map) -> Map:
    lines = {n: a[0].get(n, set()) | b[0].get(n, set()) for n in a[0].keys() | b[0].keys()}
    return lines, {**a[1], **b[1]}, a[2] | b[2]


def select(site: Site, found: Map) -> list[str]:
    """The tests that run the mutated lines, fastest first; for lines run only at import
    (a module constant, a default, a decorator), every test that runs the file."""
    by_line, durations, imported = found
    tests = {t for n in site.lines for t in by_line.get(n, ())}
    if not tests and imported & set(site.lines):
        tests = {t for ts in by_line.values() for t in ts}
    return sorted(tests, key=lambda t: (durations.get(t, 0.0), t))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="the source file, relative to the repository")
    parser.add_argument("--tests", nargs="*", default=[], help="test paths to run")
    parser.add_argument("--sample", type=int, default=60)
    parser.add_argument("--seed", default="1")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--workers", default="2", help="pytest -n for the coverage run")
    parser.add_argument("--list", action="store_true", help="list the sample and stop")
    parser.add_argument("-o", "--output", type=Path, help="write the outcomes as JSON")
    parser.add_argument("--map", type=Path, help="the coverage map: read it when it exists "
                        "(the --tests are then run under coverage and added), and write it")
    parser.add_argument("--previous", type=Path, help="the JSON of an earlier run (-o) of the "
                        "same sample: mutants it killed are counted killed, not run again")
    args = parser.parse_args()

    target = Path(args.target)
    chosen = sample(ROOT / target, args.sample, args.seed)
    total = len(sites(ast.parse((ROOT / target).read_text())))
    print(f"{target}: {total} mutation sites, {len(chosen)} sampled (seed {args.seed!r})")
    if args.list:
        for i, (site, _text) in enumerate(chosen, 1):
            print(f"{i:3} L{site.line:<4} {site.kind:9} {site.describe}")
        return
    with tempfile.TemporaryDirectory(prefix="dsc-mutation-") as tmp:
        repo = _copy_repo(Path(tmp))
        found: Map = ({}, {}, set())
        if args.map and args.map.exists():
            found = load_map(args.map)
        if args.tests:
            found = merge_maps(found, coverage_map(repo, target.as_posix(), args.tests,
                                                   args.workers))
        if args.map:
            save_map(args.map, found)
        before = {(o["id"], o["line"], o["kind"], o["describe"]): o for o in json.loads(
            args.previous.read_text())["mutants"]} if args.previous else {}
        original = (repo / target).read_text()
        outcomes: list[Outcome] = []
        for i, (site, text) in enumerate(chosen, 1):
            tests = select(site, found)
            changed = _changed_lines(original, text)
            status, killer, started = "uncovered", "", time.monotonic()
            earlier = before.get((i, site.line, site.kind, site.describe))
            if earlier and earlier["status"] in ("killed", "timeout"):
                status, killer = earlier["status"], earlier["killer"] + " (earlier run)"
            elif tests:
                (repo / target).write_text(text)
                try:
                    done = _pytest(repo, ["-x", "-q", "-n", "0", *tests], args.timeout)
                    status = "survived" if done.returncode == 0 else "killed"
                    if status == "killed":
                        failed = re.search(r"^FAILED (\S+)", done.stdout, re.MULTILINE)
                        errored = re.search(r"^ERROR (\S+)", done.stdout, re.MULTILINE)
                        killer = (failed or errored).group(1) if (failed or errored) else \
                            f"exit {done.returncode}"
                except subprocess.TimeoutExpired:
                    status, killer = "timeout", f">{args.timeout:.0f} s"
                finally:
                    (repo / target).write_text(original)
            outcome = Outcome(i, site.line, site.kind, site.describe, changed, status,
                              len(tests), round(time.monotonic() - started, 1), killer)
            outcomes.append(outcome)
            print(f"{i:3} L{site.line:<4} {status:9} {site.kind:9} {site.describe[:50]:50} "
                  f"[{len(tests)} tests, {outcome.seconds:.0f} s] {killer}", flush=True)
        # A test that killed a mutant must pass unmutated, or the kill was not the mutant's.
        killers = sorted({o.killer for o in outcomes if o.status == "killed"
                          and "::" in o.killer and "(earlier run)" not in o.killer})
        for test in killers:
            if _pytest(repo, ["-q", "-n", "0", test], args.timeout).returncode != 0:
                print(f"{test} fails unmutated: its kills are not counted", flush=True)
                for o in outcomes:
                    if o.killer == test:
                        o.status = "flaky"
    killed = sum(o.status in ("killed", "timeout") for o in outcomes)
    print(f"\n{target}: {killed} of {len(outcomes)} killed "
          f"({100 * killed / len(outcomes):.0f}%); survived: "
          + ", ".join(f"#{o.id} L{o.line} {o.describe}" + (" (uncovered)"
                      if o.status == "uncovered" else "")
                      for o in outcomes if o.status in ("survived", "uncovered", "flaky")))
    if args.output:
        args.output.write_text(json.dumps({
            "target": target.as_posix(), "seed": args.seed, "sites": total,
            "tests": args.tests,
            "previous": str(args.previous or ""),
            "mutants": [asdict(o) for o in outcomes]}, indent=1) + "\n")


def _changed_lines(before: str, after: str) -> str:
    a, b = before.splitlines(), after.splitlines()
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a, end_b = end_a - 1, end_b - 1
    return "\n".join(x.strip() for x in b[start:end_b])


if __name__ == "__main__":
    main()
