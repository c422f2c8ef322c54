"""`dsc provenance`: lineage traced through output-commit metadata, against the lakeFS
stand-in (the seed demo's graph, published as the runtime publishes: a job branch merged into
main with provenance metadata), plus the core on a fake for what lakeFS cannot hold (cycles)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from compiler.cli import cli
from compiler.commands.provenance import (
    LakeFSURLError,
    parse_lakefs_url,
    render_json,
    render_mermaid,
    render_tree,
    trace_lineage,
    unfold,
)
from compiler.lakefs.client import KEY_VARIABLES, SECRET_VARIABLES, LakeFS, RetryPolicy
from compiler.store import Commit, NotFound
from tests.conftest import ROOT

RUN = "hyperparameter-5b4dbfc4"
ARGO = f"https://argo.example/workflows/data-team/{RUN}"
IMAGE = "registry.example/iris:1"


@dataclass(frozen=True)
class Demo:
    raw: str
    parameters: str
    split: str
    model: str
    test: str


def publish(standin: Any, lakefs: LakeFS, pipeline: str, files: dict[str, bytes],
            inputs: dict[str, str], datums: int, uid: str = "") -> str:
    """What `dsc runtime commit` leaves: the job branch merged into main, with metadata."""
    if pipeline not in standin.state():
        standin.seed(pipeline, {}, message="Repository created")
    branch = f"dsc-{pipeline}-{RUN}"
    standin.seed(pipeline, files, branch=branch, message=f"dsc: {pipeline} job")
    metadata = {"dsc.pipeline": pipeline, "dsc.spec.sha256": "ab" * 32, "dsc.image": IMAGE,
                "dsc.workflow": RUN, "dsc.workflow.uid": uid or f"uid-{pipeline}",
                "dsc.datums": f"total={datums} processed={datums} skipped=0 recovered=0",
                "dsc.version": "0.1.0", "::lakefs::Argo::url[url:ui]": ARGO,
                **{f"dsc.input.{name}": value for name, value in inputs.items()}}
    merged = lakefs.merge_once(pipeline, branch, "main", f"dsc: {pipeline}", metadata,
                               "dsc.workflow.uid", since=standin.head(pipeline, "main"))
    lakefs.delete_branch(pipeline, branch)
    assert len(merged.parents) == 2  # an output commit is a merge commit
    return merged.id


def adapter(standin: Any) -> LakeFS:
    return LakeFS(standin.endpoint, standin.access_key_id, standin.secret_access_key,
                  RetryPolicy(sleep=lambda _: None, timeout=(2.0, 5.0)))


@pytest.fixture
def demo(lakefs_standin: Any) -> Demo:
    """The seed demo's lineage: sources raw-data and parameters; split reads raw_data; model
    reads split and parameters twice (c- and gamma-); test reads split and model."""
    s, lakefs = lakefs_standin, adapter(lakefs_standin)
    raw = s.seed("raw-data", {"iris.csv": b"5.1,3.5,1.4,0.2,setosa\n"})
    parameters = s.seed("parameters", {"c_parameters.txt": b"0.1\n", "gamma_parameters.txt":
                                       b"0.5\n"})
    split = publish(s, lakefs, "split", {"train.csv": b"t", "test.csv": b"e"},
                    {"raw_data": f"raw-data@{raw}"}, 1)
    model = publish(s, lakefs, "model", {"model_1.pkl": b"m"},
                    {"split": f"split@{split}", "c-parameters": f"parameters@{parameters}",
                     "gamma-parameters": f"parameters@{parameters}"}, 77)
    test = publish(s, lakefs, "test", {"model_1_metric.txt": b"0.9"},
                   {"split": f"split@{split}", "model": f"model@{model}"}, 77)
    return Demo(raw, parameters, split, model, test)


def cli_env(standin: Any, **overrides: str | None) -> dict[str, str | None]:
    env: dict[str, str | None] = {name: None for name in (
        "LAKECTL_SERVER_ENDPOINT_URL", *KEY_VARIABLES, *SECRET_VARIABLES, "DSC_LAKEFS_ENDPOINT")}
    env.update(LAKEFS_ENDPOINT=standin.endpoint, LAKEFS_ACCESS_KEY_ID=standin.access_key_id,
               LAKEFS_SECRET_ACCESS_KEY=standin.secret_access_key, NO_COLOR="1")
    env.update(overrides)
    return env


@pytest.fixture
def provenance(lakefs_standin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `dsc provenance` in a directory without dsc.yaml; every output is checked for the
    secret key."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str, **env: str | None) -> Result:
        result = CliRunner().invoke(cli, ["provenance", *args],
                                    env=cli_env(lakefs_standin, **env), catch_exceptions=False)
        for stream in (result.stdout, result.stderr):
            assert lakefs_standin.secret_access_key not in stream
        return result

    return run


def short(commit: str) -> str:
    return commit[:12]


# --- tree ------------------------------------------------------------------------------------

def test_tree_of_the_demo_shows_each_commit_once(lakefs_standin: Any, demo: Demo,
                                                 provenance: Any) -> None:
    before = len(lakefs_standin.calls("getCommit"))
    result = provenance("lakefs://test/main")
    assert (result.exit_code, result.stderr) == (0, "")
    p, s, m = short(demo.parameters), short(demo.split), short(demo.model)
    assert result.stdout == (
        f"test@{short(demo.test)}  pipeline test · run {RUN} · 77 datums\n"
        f"├── model: model@{m}  pipeline model · run {RUN} · 77 datums\n"
        f"│   ├── c-parameters: parameters@{p}  (source)\n"
        f"│   ├── gamma-parameters: parameters@{p}  (see above)\n"
        f"│   └── split: split@{s}  pipeline split · run {RUN} · 1 datum\n"
        f"│       └── raw_data: raw-data@{short(demo.raw)}  (source)\n"
        f"└── split: split@{s}  (see above)\n")
    # each distinct commit read once: test, model, split, parameters, raw-data
    assert len(lakefs_standin.calls("getCommit")) - before == 5


def test_a_commit_id_or_a_branch_name_the_same_commit(demo: Demo, provenance: Any) -> None:
    by_branch = provenance("lakefs://split/main")
    by_commit = provenance(f"lakefs://split/{demo.split}/")
    assert by_branch.exit_code == by_commit.exit_code == 0
    assert by_branch.stdout == by_commit.stdout == (
        f"split@{short(demo.split)}  pipeline split · run {RUN} · 1 datum\n"
        f"└── raw_data: raw-data@{short(demo.raw)}  (source)\n")
    source = provenance("lakefs://raw-data/main")
    assert source.stdout == f"raw-data@{short(demo.raw)}  (source)\n"


def test_depth_limits_the_reads_by_shortest_distance(lakefs_standin: Any, demo: Demo,
                                                     provenance: Any) -> None:
    before = len(lakefs_standin.calls("getCommit"))
    result = provenance("lakefs://test/main", "--depth", "1")
    assert result.exit_code == 0
    p, s = short(demo.parameters), short(demo.split)
    # split is one step from test, so it is read (and shown in full under model, met first);
    # what lies two steps away is named but not read
    assert result.stdout == (
        f"test@{short(demo.test)}  pipeline test · run {RUN} · 77 datums\n"
        f"├── model: model@{short(demo.model)}  pipeline model · run {RUN} · 77 datums\n"
        f"│   ├── c-parameters: parameters@{p}  (not followed: --depth 1)\n"
        f"│   ├── gamma-parameters: parameters@{p}  (not followed: --depth 1)\n"
        f"│   └── split: split@{s}  pipeline split · run {RUN} · 1 datum\n"
        f"│       └── raw_data: raw-data@{short(demo.raw)}  (not followed: --depth 1)\n"
        f"└── split: split@{s}  (see above)\n")
    assert len(lakefs_standin.calls("getCommit")) - before == 3
    root_only = provenance("lakefs://model/main", "--depth", "0")
    assert root_only.stdout.splitlines()[1:] == [
        f"├── c-parameters: parameters@{p}  (not followed: --depth 0)",
        f"├── gamma-parameters: parameters@{p}  (not followed: --depth 0)",
        f"└── split: split@{s}  (not followed: --depth 0)"]
    assert provenance("lakefs://model/main", "--depth", "-1").exit_code == 2


# --- json and mermaid --------------------------------------------------------------------------

def test_json_is_nested_with_full_ids_and_each_commit_in_full_once(demo: Demo,
                                                                  provenance: Any) -> None:
    result = provenance("lakefs://model/main", "-o", "json")
    assert result.exit_code == 0

    def made(pipeline: str, commit: str, datums: int, inputs: list[Any]) -> dict[str, Any]:
        return {"repo": pipeline, "commit": commit, "pipeline": pipeline, "workflow": RUN,
                "image": IMAGE, "argo_url": ARGO, "inputs": inputs,
                "datums": f"total={datums} processed={datums} skipped=0 recovered=0"}

    def source(name: str, repo: str, commit: str) -> dict[str, Any]:
        return {"input": name, "repo": repo, "commit": commit, "pipeline": None,
                "workflow": None, "image": None, "datums": None, "argo_url": None,
                "inputs": []}

    expected = made("model", demo.model, 77, [
        source("c-parameters", "parameters", demo.parameters),
        {"input": "gamma-parameters", "repo": "parameters", "commit": demo.parameters,
         "elided": "see above"},
        {"input": "split", **made("split", demo.split, 1, [
            source("raw_data", "raw-data", demo.raw)])}])
    assert json.loads(result.stdout) == expected
    # deterministic: sorted keys, two-space indent, a final newline
    assert result.stdout == json.dumps(expected, indent=2, sort_keys=True) + "\n"


def test_mermaid_has_one_node_per_commit_and_labelled_edges(demo: Demo,
                                                            provenance: Any) -> None:
    result = provenance("lakefs://model/main", "-o", "mermaid")
    assert result.exit_code == 0
    p, s, m, r = short(demo.parameters), short(demo.split), short(demo.model), short(demo.raw)
    assert result.stdout == (
        "flowchart BT\n"
        f'    n0["model@{m}<br/>pipeline model"]\n'
        f'    n1[("parameters@{p}<br/>source")]\n'
        f'    n2["split@{s}<br/>pipeline split"]\n'
        f'    n3[("raw-data@{r}<br/>source")]\n'
        '    n1 -->|"c-parameters"| n0\n'
        '    n1 -->|"gamma-parameters"| n0\n'
        '    n2 -->|"split"| n0\n'
        '    n3 -->|"raw_data"| n2\n'
        f'    click n0 href "{ARGO}" _blank\n'
        f'    click n2 href "{ARGO}" _blank\n')


# --- problems in the metadata ------------------------------------------------------------------

def test_a_malformed_input_value_is_located_and_exits_1(lakefs_standin: Any, demo: Demo,
                                                        provenance: Any) -> None:
    bad = publish(lakefs_standin, adapter(lakefs_standin), "report", {"r": b"1"},
                  {"model": "model@main", "test": f"test@{demo.test}"}, 1)
    result = provenance("lakefs://report/main", "--depth", "1")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:2] == [
        f"report@{short(bad)}  pipeline report · run {RUN} · 1 datum",
        "├── model: error: dsc.input.model = 'model@main' is not <repo>@<64-hex commit id>"]
    assert result.stderr == (f"dsc: error: lakefs://report/{bad}: dsc.input.model: "
                             "'model@main' is not <repo>@<64-hex commit id>\n")
    as_json = json.loads(provenance("lakefs://report/main", "--depth", "0", "-o", "json").stdout)
    assert as_json["inputs"][0] == {"input": "model", "value": "model@main",
                                    "error": "not <repo>@<64-hex commit id>"}
    mermaid = provenance("lakefs://report/main", "--depth", "0", "-o", "mermaid").stdout
    assert mermaid.endswith("    class n0 problem\n")


def test_an_input_commit_lakefs_does_not_have_is_a_node_error(lakefs_standin: Any,
                                                              demo: Demo,
                                                              provenance: Any) -> None:
    gone = "0" * 64
    made = publish(lakefs_standin, adapter(lakefs_standin), "report", {"r": b"1"},
                   {"raw": f"raw-data@{gone}", "deleted": f"old-repo@{gone}"}, 1)
    result = provenance("lakefs://report/main")
    assert result.exit_code == 1
    assert result.stdout == (
        f"report@{short(made)}  pipeline report · run {RUN} · 1 datum\n"
        f"├── deleted: old-repo@{gone[:12]}  error: not found in lakeFS\n"
        f"└── raw: raw-data@{gone[:12]}  error: not found in lakeFS\n")
    assert result.stderr.splitlines() == [
        f"dsc: error: lakefs://old-repo/{gone}: not found in lakeFS",
        f"dsc: error: lakefs://raw-data/{gone}: not found in lakeFS"]


# --- usage and lakeFS failures -----------------------------------------------------------------

@pytest.mark.parametrize(("url", "message"), [
    ("s3://model/main", "expected lakefs://<repo>/<ref>, got 's3://model/main'"),
    ("lakefs://Raw_Data/main", "'Raw_Data' is not a lakeFS repository name"),
    ("lakefs://ab/main", "'ab' is not a lakeFS repository name"),
    ("lakefs://model", "names no ref: give a branch, tag or commit ID, e.g. lakefs://model/main"),
    ("lakefs://model/", "names no ref"),
])
def test_a_malformed_url_is_a_usage_error(provenance: Any, url: str, message: str) -> None:
    result = provenance(url)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_parse_lakefs_url() -> None:
    assert parse_lakefs_url("lakefs://raw-data/main") == ("raw-data", "main")
    assert parse_lakefs_url("lakefs://raw-data/main~1/") == ("raw-data", "main~1")
    with pytest.raises(LakeFSURLError):
        parse_lakefs_url("lakefs:///main")


def test_a_file_no_datum_index_lists_is_named(demo: Demo, provenance: Any) -> None:
    """These commits were made by hand, without a datum index: a file in them cannot be
    traced to a datum, and the message says why (the seed run tests trace real ones)."""
    result = provenance("lakefs://model/main/model_C1.0_G0.1.pkl")
    assert result.exit_code == 3 and result.stdout == ""
    assert "model_C1.0_G0.1.pkl: no datum of model@" in result.stderr
    assert provenance("lakefs://model/main/x", "-o", "mermaid").exit_code == 2


@pytest.mark.parametrize("url", ["lakefs://nowhere/main", "lakefs://model/no-such-branch"])
def test_an_unknown_repo_or_ref_could_not_run(demo: Demo, provenance: Any, url: str) -> None:
    result = provenance(url)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"dsc: error: {url}: no such repository or ref (lakeFS "
                                    "get commit: 404")
    assert result.stderr.count("\n") == 1


def test_missing_credentials_are_a_usage_error(provenance: Any) -> None:
    result = provenance("lakefs://model/main", LAKEFS_ACCESS_KEY_ID=None)
    assert result.exit_code == 2
    assert result.stderr.startswith("dsc: error: reaching lakeFS needs LAKEFS_ACCESS_KEY_ID")
    no_endpoint = provenance("lakefs://model/main", LAKEFS_ENDPOINT=None)
    assert no_endpoint.exit_code == 2 and "LAKEFS_ENDPOINT" in no_endpoint.stderr


def test_a_wrong_secret_could_not_run_and_is_never_shown(demo: Demo, provenance: Any) -> None:
    wrong = "wrong-secret-Zq81x"
    result = provenance("lakefs://model/main", LAKEFS_SECRET_ACCESS_KEY=wrong)
    assert result.exit_code == 3
    assert result.stderr.startswith("dsc: error: lakefs://model/main: lakeFS get commit: 401")
    assert wrong not in result.stdout + result.stderr


def test_the_endpoint_can_come_from_dsc_yaml(lakefs_standin: Any, demo: Demo,
                                             provenance: Any, tmp_path: Path) -> None:
    (tmp_path / "dsc.yaml").write_text(f"lakefs:\n  endpoint: {lakefs_standin.endpoint}\n")
    result = provenance("lakefs://split/main", LAKEFS_ENDPOINT=None)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.startswith(f"split@{short(demo.split)}  pipeline split")
    (tmp_path / "dsc.yaml").write_text("lakefs:\n  endpoint: not-a-url\n")
    assert provenance("lakefs://split/main").exit_code == 2


# --- the core on a fake: what a real lakeFS cannot hold -----------------------------------------

class FakeLakeFS:
    """commit_of over a dict of commits, by ID or by a branch name."""

    def __init__(self) -> None:
        self.commits: dict[tuple[str, str], Commit] = {}
        self.branches: dict[tuple[str, str], str] = {}
        self.reads: list[tuple[str, str]] = []

    def add(self, repo: str, n: int, metadata: dict[str, str], branch: str = "main") -> str:
        commit = f"{n:x}".rjust(64, "c")
        self.commits[repo, commit] = Commit(commit, (), "m", metadata)
        self.branches[repo, branch] = commit
        return commit

    def commit_of(self, repo: str, ref: str) -> Commit:
        self.reads.append((repo, ref))
        commit = self.branches.get((repo, ref), ref)
        if (repo, commit) not in self.commits:
            raise NotFound("get commit", 404, "not found")
        return self.commits[repo, commit]


def test_a_cycle_ends_and_is_reported() -> None:
    fake = FakeLakeFS()
    a, b = "a" * 64, "b" * 64
    fake.commits["one", a] = Commit(a, (), "", {"dsc.pipeline": "one",
                                                "dsc.input.two": f"two@{b}"})
    fake.commits["two", b] = Commit(b, (), "", {"dsc.pipeline": "two",
                                                "dsc.input.one": f"one@{a}",
                                                "dsc.input.self": f"two@{b}"})
    tree = unfold(trace_lineage(fake, "one", a))
    assert render_tree(tree) == (
        f"one@{a[:12]}  pipeline one\n"
        f"└── two: two@{b[:12]}  pipeline two\n"
        f"    ├── one: one@{a[:12]}  (cycle)\n"
        f"    └── self: two@{b[:12]}  (cycle)\n")
    assert [str(p) for p in tree.problems] == [
        f"lakefs://two/{b}: dsc.input.one: 'one@{a}' leads back to a commit on this path "
        "(a cycle)",
        f"lakefs://two/{b}: dsc.input.self: 'two@{b}' leads back to a commit on this path "
        "(a cycle)"]
    assert fake.reads == [("one", a), ("two", b)]
    assert render_mermaid(tree).splitlines()[3:] == [
        '    n1 -->|"two"| n0', '    n0 -->|"one"| n1', '    n1 -->|"self"| n1',
        "    classDef problem stroke:#d33,stroke-width:3px", "    class n1 problem"]


def test_mermaid_escapes_labels_and_links() -> None:
    fake = FakeLakeFS()
    src = fake.add("raw-data", 1, {})
    fake.add("odd", 2, {"dsc.pipeline": 'say "hi" <b>#1</b> | `x`',
                        "dsc.input.in|put": f"raw-data@{src}",
                        "::lakefs::Argo::url[url:ui]": 'https://argo.example/a b"c'})
    text = render_mermaid(unfold(trace_lineage(fake, "odd", "main")))
    lines = text.splitlines()
    assert lines[1] == ('    n0["odd@cccccccccccc<br/>pipeline say #34;hi#34; #60;b#62;#35;1'
                        '#60;/b#62; #124; #96;x#96;"]')
    assert lines[3] == '    n1 -->|"in#124;put"| n0'
    assert lines[4] == '    click n0 href "https://argo.example/a%20b%22c" _blank'


def test_datum_counts_and_missing_metadata_read_plainly() -> None:
    fake = FakeLakeFS()
    fake.add("bare", 1, {"dsc.pipeline": "bare"})
    fake.add("some", 2, {"dsc.pipeline": "some", "dsc.workflow": "w",
                         "dsc.datums": "total=10 processed=3 skipped=7 recovered=1"})
    fake.add("odd", 3, {"dsc.pipeline": "odd", "dsc.datums": "lots"})
    lines = [render_tree(unfold(trace_lineage(fake, repo, "main"))).rstrip()
             for repo in ("bare", "some", "odd")]
    assert lines == ["bare@cccccccccccc  pipeline bare",
                     "some@cccccccccccc  pipeline some · run w · 10 datums, 7 skipped, "
                     "1 recovered",
                     "odd@cccccccccccc  pipeline odd · datums lots"]
    assert json.loads(render_json(unfold(trace_lineage(fake, "odd", "main")))) == {
        "repo": "odd", "commit": "c" * 63 + "3", "pipeline": "odd", "workflow": None,
        "image": None, "datums": "lots", "argo_url": None, "inputs": []}


# --- names and short IDs, as dsc prints them ---------------------------------------------------

@pytest.mark.parametrize(("url", "meant"), [
    ("lakefs://wc/main", "lakefs://wc-repo/main? (dsc maps the Pachyderm repo `wc` to the "
     "lakeFS repository `wc-repo`)"),
    ("lakefs://raw_data/0123456789ab", "lakefs://raw-data/0123456789ab? (dsc maps the "
     "Pachyderm repo `raw_data` to the lakeFS repository `raw-data`)"),
])
def test_a_refused_name_is_met_with_the_repository_dsc_maps_it_to(provenance: Any, url: str,
                                                                  meant: str) -> None:
    result = provenance(url, LAKEFS_ENDPOINT=None)  # said before lakeFS is needed
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].endswith(f"; did you mean {meant}")


def test_the_mapping_of_dsc_yaml_is_the_one_suggested(provenance: Any, tmp_path: Path) -> None:
    (tmp_path / "dsc.yaml").write_text("repos: {raw_data: iris-raw}\n")
    result = provenance("lakefs://raw_data/main")
    assert result.exit_code == 2
    assert "did you mean lakefs://iris-raw/main? (dsc maps the Pachyderm repo `raw_data` to " \
        "the lakeFS repository `iris-raw`)" in result.stderr


def test_the_short_ids_dsc_prints_are_refs(demo: Demo, provenance: Any) -> None:
    by_short = provenance(f"lakefs://model/{short(demo.model)}")
    assert by_short.exit_code == 0
    assert by_short.stdout == provenance("lakefs://model/main").stdout


def test_log_lists_the_first_parent_chain(lakefs_standin: Any, demo: Demo,
                                          monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    again = publish(lakefs_standin, adapter(lakefs_standin), "split", {"train.csv": b"u"},
                    {"raw_data": f"raw-data@{demo.raw}"}, 1, uid="uid-split-again")

    def log(*args: str) -> Result:
        return CliRunner().invoke(cli, ["log", *args], env=cli_env(lakefs_standin),
                                  catch_exceptions=False)

    result = log("lakefs://split/main")
    assert (result.exit_code, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert [line[:12] for line in lines[:2]] == [short(again), short(demo.split)]
    assert lines[0].endswith(f"  pipeline split · run {RUN} · 1 datum")
    assert re.fullmatch(r"[0-9a-f]{12}  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  Repository created",
                        lines[-1])
    assert log("lakefs://split/main", "-n", "1").stdout == lines[0] + "\n"
    older = log(f"lakefs://split/{short(demo.split)}", "-o", "json", "-n", "1")
    assert json.loads(older.stdout)[0]["commit"] == demo.split
    gone = log("lakefs://nowhere/main")
    assert gone.exit_code == 3 and gone.stderr.startswith(
        "dsc: error: lakefs://nowhere/main: no such repository or ref (lakeFS log commits: 404")


@pytest.mark.parametrize("command", ["provenance", "log"])
def test_help_imports_no_lakefs_sdk(command: str) -> None:
    code = ("import sys, json\nfrom compiler.cli import cli\n"
            f"try:\n    cli([{command!r}, '--help'], prog_name='dsc')\n"
            "except SystemExit:\n    pass\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert "lakefs://REPO/REF" in out.stdout
    loaded = {m.split(".")[0] for m in json.loads(out.stdout.splitlines()[-1])}
    assert not loaded & {"lakefs_sdk", "hera", "pydantic", "urllib3"}
