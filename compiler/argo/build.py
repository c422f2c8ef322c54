"""One graph of pipelines -> the Argo objects that run it (DESIGN.md §4).

Each pipeline is a DAG template `<pipeline>`: `open` (pin inputs, create the job branch, plan
the datums) -> `work` (W worker pods, one per worker index `open` outputs: each processes its
share of the datums with the user container, the worker protocol of
compiler.contract) -> `commit` (one provenance-carrying commit, merged into the
output branch). The main DAG runs the pipelines in graph order; a downstream pipeline reads
the commit its upstream `commit` produced in the same run. An exit handler aborts what a
failed run left.

Size: Argo copies every template a run uses into the Workflow's status (the WorkflowTemplate
into `storedWorkflowTemplateSpec`, the templates of other objects into `storedTemplates`),
and the whole object must stay under 1 MiB. So a pipeline costs two templates of its own,
its DAG (holding its job document, once) and its worker pod; `open` and `commit` are one
template each per object, parameterised by the job document. A graph too big for one object
(Argo's CRDs allow 200 templates and 200 DAG tasks; kubectl apply keeps a copy in a 256 KiB
annotation) is split into section WorkflowTemplates that the main DAG calls with
`templateRef`; a graph whose templates would not fit a run's status is refused
(`stored_size`). Runtime command lines come from `compiler.contract`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from compiler import contract, kit
from compiler.argo import triggers
from compiler.argo.emit import digest_text, plain, to_json
from compiler.argo.object_names import CRON_MAX, OBJECT_MAX, fit, unique_names
from compiler.config import Config
from compiler.contract.job import Job
from compiler.spec.graph import Graph, short_hash
from compiler.spec.identity import code_identity
from compiler.spec.model import CombinedInput, CronInput, Input, PfsInput, Pipeline, Resources

# Argo's full CRDs (v4): at most 200 templates per object and 200 tasks per DAG (rules.md §12).
MAX_TEMPLATES = 200
MAX_TASKS = 200
TEMPLATES_PER_PIPELINE = 2  # the pipeline's DAG and its worker pod
SHARED_TEMPLATES = ("open", "commit")  # per object, with `main`/`section` and `abort`
# Argo's controller refuses a Workflow object over 1 MiB (MAX_WORKFLOW_SIZE; rules.md §12).
# What a run stores of the graph's templates must leave room for its node status (which
# Argo compresses past the limit, and can offload): 900 KiB of the 1,024.
STORED_LIMIT = 900 * 1024


class CompileError(ValueError):
    """A graph dsc cannot compile faithfully (an error naming the pipeline and field); with
    `pipeline`, compile reports it at that pipeline's `field` in its spec file."""

    def __init__(self, message: str, pipeline: str | None = None,
                 field: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.pipeline = pipeline
        self.field = field


@dataclass(frozen=True, slots=True)
class PipelinePins:
    """What `--pin` resolved for one pipeline: the commit of each source repo it reads and,
    when every input is pinned, how many datums it has and their plan digest (`open` checks
    both: the run reads exactly what was compiled)."""

    commits: tuple[tuple[str, str], ...]  # (repo, 64-hex commit ID), sorted
    datums: int | None = None
    digest: str | None = None


Pins = dict[str, PipelinePins]  # by pipeline name


def _spec_fields(p: Pipeline) -> Any:
    """The normalised spec as plain data, without where it came from (`at`, `path`)."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("at", "path")}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        return value

    return strip(asdict(p))


def spec_digest(p: Pipeline) -> str:
    """sha256 of the normalised spec (what dsc compiles), for `dsc.spec.sha256`."""
    text = json.dumps(_spec_fields(p), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _template_braces(p: Pipeline) -> str | None:
    """The first spec field holding `{{`, which Argo would substitute (it has no escape)."""
    def walk(value: Any, path: str) -> str | None:
        if isinstance(value, str):
            return path if "{{" in value else None
        items = (value.items() if isinstance(value, dict)
                 else enumerate(value) if isinstance(value, list) else ())
        for key, item in items:
            if found := walk(item, f"{path}.{key}".lstrip(".")):
                return found
        return None

    return walk(_spec_fields(p), "")


REPROCESS = "reprocess"  # the run parameter naming what to process again
WORKER_RETRIES = 6  # times Argo runs a lost worker pod again (each resumes)


def job_spec(p: Pipeline, config: Config) -> Job:
    """The job the runtime steps get (compiler.contract.job)."""
    return Job.of(
        pipeline=p.name, input=_input_json(p.input, config) if p.input else None,
        output_repo=config.lakefs_repo(p.name),
        output_branch=p.output_branch or config.default_branch, image=p.transform.image,
        spec_sha256=spec_digest(p), code=code_identity(p), default_branch=config.default_branch,
        workers=workers(p, config), datum_tries=p.datum_tries, salt=p.salt,
        reprocess_spec=p.reprocess_spec, max_datums=config.max_datums or 0,
        datum_timeout=p.datum_timeout,
        job_timeout=math.ceil(p.job_timeout) if p.job_timeout else None)


def workers(p: Pipeline, config: Config) -> int:
    """The workers `parallelism_spec` asks for: `constant`, or floor(`coefficient` x the
    nodes of the configuration), at least one; none given is one worker (Pachyderm)."""
    if p.parallelism.constant:
        return p.parallelism.constant
    if p.parallelism.coefficient:
        return max(1, math.floor(p.parallelism.coefficient * (config.nodes or 1)))
    return 1


def _input_json(node: Input, config: Config) -> dict[str, Any]:
    if isinstance(node, PfsInput):
        # `name` and `lakefs_repo` when not the repo's own name (Job.parse fills them in)
        out: dict[str, Any] = {"repo": node.repo, "glob": node.glob}
        if node.name != node.repo:
            out["name"] = node.name
        if config.lakefs_repo(node.repo) != node.repo:
            out["lakefs_repo"] = config.lakefs_repo(node.repo)
        # The branch as written (datum IDs hash it so); none: the job's default branch.
        for key in ("branch", "commit", "join_on", "group_by"):
            if getattr(node, key):
                out[key] = getattr(node, key)
        for key in ("outer_join", "lazy", "empty_files"):
            if getattr(node, key):
                out[key] = True
        return {"pfs": out}
    if isinstance(node, CronInput):
        cron = {"name": node.name, "repo": node.repo,
                "lakefs_repo": config.lakefs_repo(node.repo), "spec": node.spec,
                "overwrite": node.overwrite}
        return {"cron": {**cron, "start": node.start} if node.start else cron}
    assert isinstance(node, CombinedInput)
    return {node.kind: [_input_json(m, config) for m in node.members]}


def cron_inputs(graph: Graph) -> list[CronInput]:
    """The graph's cron inputs, one per cron repo, in graph order."""
    found: dict[str, CronInput] = {}
    for p in graph.pipelines:
        for node in p.inputs():
            if isinstance(node, CronInput):
                found.setdefault(node.repo, node)
    return list(found.values())


@dataclass(frozen=True, slots=True)
class _Names:
    template: str
    tasks: dict[str, str]
    # with --trigger: the pipelines reading a source branch (their `open` takes the trigger)
    triggered: frozenset[str] = frozenset()


def build(graph: Graph, config: Config, *, generate_name: bool = False,
          pins: Pins | None = None, trigger: bool = False,
          reprocess: str = "") -> list[dict[str, Any]]:
    """The graph's WorkflowTemplate(s) and what runs them: a Workflow (pinned: self-contained,
    with the datums embedded) or, for cron inputs, one CronWorkflow per cron input. With
    `trigger`, also the EventSource, the Sensor and the reconciler CronWorkflow that re-run
    the graph on new commits to its source inputs. `reprocess` is the run's `reprocess`
    parameter (pipelines or datums to process again, compiler.runtime.incremental.Forced)."""
    check_reprocess(graph, reprocess)
    for p in graph.pipelines:
        if (where := _template_braces(p)) is not None:
            raise CompileError(f"pipeline `{p.name}`: `{where}` contains `{{{{`, which Argo "
                               "reads as a template expression and has no escape for; "
                               "write it another way (e.g. `{ {` in shell)")
        if workers(p, config) > config.max_workers:
            raise CompileError(
                f"pipeline `{p.name}`: `parallelism_spec` asks for {workers(p, config):,} "
                f"workers, over the {config.max_workers:,} one pipeline may run "
                "(`limits.max_workers`): each is a pod and a node of the run's Workflow, "
                "whose status Argo keeps in one object", p.name, ("parallelism_spec",))
    found = triggers.sources(graph, config) if trigger else []
    if trigger and pins:
        raise CompileError("`--pin` fixes a run's inputs and `--trigger` runs the graph on "
                           "every new commit; use one of them")
    if trigger and not found:
        raise CompileError(f"graph `{graph.name}` reads no lakeFS branch it does not write "
                           "(its inputs are cron inputs, pinned to commits, or its own "
                           "outputs): there is nothing for --trigger to watch")
    names = _Names(fit(graph.name, OBJECT_MAX),
                   unique_names([p.name for p in graph.pipelines], OBJECT_MAX - 7),
                   frozenset(r.pipeline for s in found for r in s.readers))
    per_template = (MAX_TEMPLATES - 2 - len(SHARED_TEMPLATES)) // TEMPLATES_PER_PIPELINE
    size = min(len(graph.pipelines), per_template)
    if len(graph.pipelines) > size:
        # Size the sections from one probe section, so a big graph is built only once.
        probe = plain(_section_template(graph, names, "probe", graph.pipelines[:size], config))
        measured = len(to_json([probe], compact=True))
        if measured > config.size_budget:
            size = max(1, int(size * config.size_budget / measured * 0.9))
    while True:
        sections = [graph.pipelines[i:i + size] for i in range(0, len(graph.pipelines), size)]
        if len(sections) > MAX_TASKS:
            raise CompileError(f"graph `{graph.name}` has {len(graph.pipelines)} pipelines; one "
                               f"graph holds at most {MAX_TASKS * per_template}")
        templates = _templates(graph, names, sections, config, None)
        over = _over_budget(templates, config)
        if over is None:
            break
        if size == 1:
            raise CompileError(f"{over}; raise `limits.size_budget` in dsc.yaml, or make the "
                               "spec smaller")
        size = max(1, size // 2)
    stored = stored_size(templates)
    if stored > config.stored_budget:
        per = stored / len(graph.pipelines)
        raise CompileError(
            f"graph `{graph.name}` is too big for one run: Argo would copy {stored:,} bytes "
            f"of its templates into the run's Workflow (about {per:,.0f} a pipeline), over "
            f"the budget of {config.stored_budget:,} (`limits.stored_budget`) within the "
            "1 MiB its controller allows one object; split it into graphs of at most "
            f"{int(config.stored_budget // per):,} pipelines (compile them apart: a graph "
            "reads another's output repos, and `--trigger` starts it on their commits)")
    crons = [plain(c) for c in _cron_workflows(graph, names, config, reprocess)]
    automation = _automation(graph, names, config, found,
                             {c["metadata"]["name"] for c in crons}) if trigger else []
    if crons:
        if pins:
            raise CompileError("`--pin` pins a run, but a graph with cron inputs runs on its "
                               "schedule (CronWorkflow); compile it without --pin")
        return templates + crons + automation
    if pins:
        if len(sections) > 1:
            raise CompileError(f"`--pin` embeds the run in one Workflow, and graph "
                               f"`{graph.name}` needs {len(sections)} objects; compile it "
                               "without --pin")
        if reprocess:
            raise ReprocessError("a pinned run (--pin) processes every datum it embeds: "
                                 "--reprocess has nothing to add")
        run = _pinned_run(graph, names, config, pins, generate_name)
    else:
        run = _run_workflow(templates, names.template, _labels(names, config), generate_name,
                            reprocess)
    return [*templates, run, *automation]


def stored_size(templates: list[dict[str, Any]]) -> int:
    """Bytes of compact JSON a run of these WorkflowTemplates stores in its status: the main
    one's spec (`status.storedWorkflowTemplateSpec`) and every template of the sections it
    calls (`status.storedTemplates`, keyed `namespaced/<object>/<template>`); Argo copies
    each template a node of the run uses, and every template here is used."""
    main, *sections = templates
    stored = {"storedWorkflowTemplateSpec": main["spec"], "storedTemplates": {
        f"namespaced/{doc['metadata']['name']}/{template['name']}": template
        for doc in sections for template in doc["spec"]["templates"]}}
    return len(json.dumps(stored, separators=(",", ":"), ensure_ascii=False).encode())


class ReprocessError(CompileError):
    """A `--reprocess` naming a pipeline the graph lacks, or no datum ID (a usage error)."""


def check_reprocess(graph: Graph, reprocess: str) -> None:
    """`--reprocess`: `*`, or pipelines of the graph, each optionally `:<datum ID prefix>`."""
    names = [p.name for p in graph.pipelines]
    for item in filter(None, (part.strip() for part in reprocess.split(","))):
        name, _, datum = item.partition(":")
        if name != "*" and name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            raise ReprocessError(f"--reprocess {item!r}: graph `{graph.name}` has no pipeline "
                               f"`{name}`" + (f"; did you mean `{close[0]}`?" if close else
                                              f" (its pipelines: {', '.join(names)})"))
        if datum and not re.fullmatch(r"[0-9a-f]{1,64}", datum.lower()):
            raise ReprocessError(f"--reprocess {item!r}: `{datum}` is not the start of a datum "
                               "ID (hex digits, as `dsc plan -v` shows them)")


def _over_budget(documents: list[dict[str, Any]], config: Config) -> str | None:
    for doc in documents:
        size = len(to_json([doc], compact=True))
        if size > config.size_budget:
            return (f"{doc['kind']} `{doc['metadata'].get('name')}` would be {size:,} bytes, "
                    f"over the size budget of {config.size_budget:,}")
    return None


def _labels(names: _Names, config: Config) -> dict[str, str]:
    return {"dsc.io/graph": names.template, **config.labels}


def _metadata(config: Config) -> dict[str, Any]:
    return {"namespace": config.namespace} if config.namespace else {}


def _templates(graph: Graph, names: _Names, sections: list[tuple[Pipeline, ...]],
               config: Config, pins: Pins | None) -> list[dict[str, Any]]:
    """The main WorkflowTemplate and, for a split graph, its section WorkflowTemplates."""
    if len(sections) == 1:
        return [_with_pod_patches(plain(_workflow_object(graph, names, config, pins, None)),
                                  graph, names)]
    section_names = [fit(f"{names.template}-{i + 1}", OBJECT_MAX) for i in range(len(sections))]
    docs = [plain(_workflow_object(graph, names, config, None, (section_names, sections)))]
    for name, section in zip(section_names, sections, strict=True):
        docs.append(_with_pod_patches(
            plain(_section_template(graph, names, name, section, config)), graph, names))
    return docs


def _workflow_object(graph: Graph, names: _Names, config: Config, pins: Pins | None,
                     split: tuple[list[str], list[tuple[Pipeline, ...]]] | None,
                     run_name: dict[str, Any] | None = None) -> Any:
    """The graph's WorkflowTemplate, or (with `run_name`) a self-contained pinned Workflow."""
    from hera.workflows import DAG, Workflow, WorkflowTemplate
    from hera.workflows import models as m

    labels = _labels(names, config)
    pull_secrets = sorted({s for p in graph.pipelines for s in p.transform.image_pull_secrets})
    crons = cron_inputs(graph)
    kind = Workflow if run_name is not None else WorkflowTemplate
    with kind(
        **(run_name or {"name": names.template}),
        **_metadata(config),
        entrypoint="main",
        on_exit="abort",
        labels=labels,
        annotations={"workflows.argoproj.io/title": f"dsc graph {graph.name}",
                     "workflows.argoproj.io/description": _describe(graph)},
        workflow_metadata=m.WorkflowMetadata(labels=labels, annotations=_output_annotations(
            graph, config)) if run_name is None else None,
        service_account_name=config.service_account,
        image_pull_secrets=[m.LocalObjectReference(name=s) for s in pull_secrets] or None,
        arguments=_template_arguments(bool(crons), bool(names.triggered)) if run_name is None
        else None,
    ) as wt:
        _abort_template(graph, config)
        if split is None:
            _shared_templates(config, pinned=run_name is not None)
            made = {p.name: _pipeline_templates(p, names, graph, config,
                                                (pins or {}).get(p.name))
                    for p in graph.pipelines}
            with DAG(name="main"):
                _pipeline_tasks(graph, graph.pipelines, names, made)
        else:
            _sections_dag(graph, names, *split)
    return wt


def _output_annotations(graph: Graph, config: Config) -> dict[str, str]:
    """Where a run's result lands: the last pipeline's output (the Argo UI links of
    manifests/ open it in lakeFS)."""
    last = graph.pipelines[-1]
    return {kit.OUTPUT_BRANCH_ANNOTATION: last.output_branch or config.default_branch,
            kit.OUTPUT_REPO_ANNOTATION: config.lakefs_repo(last.name)}


def _template_arguments(cron: bool, triggered: bool) -> list[Any] | None:
    """The run's parameters: a CronWorkflow passes its tick repo, a trigger its repository,
    branch and commit; a plain run passes none and `open` reads the branch heads. Any run
    may name pipelines or datums to process again (`reprocess`; `argo submit -p`)."""
    from hera.workflows import Parameter

    names = (["cron-tick"] if cron else []) + (list(kit.TRIGGER_PARAMETERS) if triggered else [])
    return [Parameter(name=n, value="") for n in [*names, REPROCESS]]


def _pipeline_tasks(graph: Graph, pipelines: tuple[Pipeline, ...], names: _Names,
                    made: dict[str, Any]) -> None:
    """One task per pipeline, after its upstream pipelines, passing their commits. Upstream
    pipelines outside `pipelines` (another section) come in as `pin-<task>` inputs."""
    from hera.workflows import Parameter

    inside = {p.name for p in pipelines}
    created: dict[str, Any] = {}
    for p in pipelines:
        ups = graph.upstream[p.name]
        arguments = [Parameter(
            name=f"pin-{names.tasks[u]}",
            value=(f"{{{{tasks.{names.tasks[u]}.outputs.parameters.commit}}}}" if u in inside
                   else f"{{{{inputs.parameters.pin-{names.tasks[u]}}}}}"))
            for u in ups]
        task = made[p.name](name=names.tasks[p.name], **_arguments(arguments))
        for u in ups:
            if u in inside:
                created[u] >> task
        created[p.name] = task


def _crossing(graph: Graph, section: tuple[Pipeline, ...]) -> tuple[list[str], list[str]]:
    """The upstream pipelines a section reads from other sections, and its pipelines that
    other sections read."""
    inside = {p.name for p in section}
    needs = sorted({u for p in section for u in graph.upstream[p.name] if u not in inside})
    gives = sorted({u for p in graph.pipelines if p.name not in inside
                    for u in graph.upstream[p.name] if u in inside})
    return needs, gives


def _section_template(graph: Graph, names: _Names, name: str, section: tuple[Pipeline, ...],
                      config: Config) -> Any:
    from hera.workflows import DAG, Parameter, WorkflowTemplate
    from hera.workflows import models as m

    needs, gives = _crossing(graph, section)
    labels = _labels(names, config)
    with WorkflowTemplate(
        name=name, **_metadata(config), labels={**labels, "dsc.io/section-of": names.template},
        annotations={"workflows.argoproj.io/title": f"dsc graph {graph.name}, pipelines "
                     f"{section[0].name} .. {section[-1].name}",
                     "workflows.argoproj.io/description": (
                         f"Part of `{names.template}`: run it through that template.")},
    ) as wt:
        _shared_templates(config, pinned=False)
        made = {p.name: _pipeline_templates(p, names, graph, config, None) for p in section}
        with DAG(name="section",
                 inputs=[Parameter(name=f"pin-{names.tasks[u]}") for u in needs] or None,
                 outputs=[Parameter(name=f"commit-{names.tasks[g]}", value_from=m.ValueFrom(
                     parameter=f"{{{{tasks.{names.tasks[g]}.outputs.parameters.commit}}}}"))
                     for g in gives] or None):
            _pipeline_tasks(graph, section, names, made)
    return wt


def _sections_dag(graph: Graph, names: _Names, section_names: list[str],
                  sections: list[tuple[Pipeline, ...]]) -> None:
    from hera.workflows import DAG, Parameter, Task
    from hera.workflows import models as m

    owner = {p.name: i for i, section in enumerate(sections) for p in section}
    with DAG(name="main"):
        tasks: list[Any] = []
        for i, (name, section) in enumerate(zip(section_names, sections, strict=True)):
            needs, _ = _crossing(graph, section)
            arguments = [Parameter(
                name=f"pin-{names.tasks[u]}",
                value=f"{{{{tasks.part-{owner[u] + 1}.outputs.parameters."
                      f"commit-{names.tasks[u]}}}}}") for u in needs]
            task = Task(name=f"part-{i + 1}",
                        template_ref=m.TemplateRef(name=name, template="section"),
                        **_arguments(arguments))
            for j in sorted({owner[u] for u in needs}):
                tasks[j] >> task
            tasks.append(task)


def _arguments(parameters: list[Any]) -> dict[str, Any]:
    return {"arguments": parameters} if parameters else {}


def _describe(graph: Graph) -> str:
    lines = [f"Pipelines of `{graph.name}`, in order:"]
    for p in graph.pipelines:
        about = " ".join(p.description.split())
        lines.append(f"- `{p.name}`" + (f": {about}" if about else ""))
    return "\n".join(lines)


def _runtime_env(config: Config, worker: bool = False) -> dict[str, Any]:
    """`env` and `envFrom` of a runtime container (contract.environment)."""
    from hera.workflows import Env, SecretEnvFrom

    env = [Env(name=name, value=value) for name, value in contract.environment(
        keys=config.lakefs.secret_keys, endpoint=config.lakefs.endpoint,
        lakefs_ui=config.lakefs.ui_url, argo_ui=config.argo_ui_url,
        storage_namespace=config.lakefs.storage_namespace, timeout=config.lakefs.timeout,
        worker=worker)]
    return {"env": env, "env_from": [SecretEnvFrom(name=config.lakefs.secret,
                                                   prefix=contract.SECRET_PREFIX)]}


def _abort_template(graph: Graph, config: Config) -> None:
    from hera.workflows import Container

    Container(name="abort", image=config.runtime_image, command=contract.COMMAND,
              args=contract.abort_args(graph.name, "{{workflow.status}}",
                                       [(p.name, config.lakefs_repo(p.name),
                                         p.output_branch or config.default_branch)
                                        for p in graph.pipelines],
                                       config.keep_failed_branches),
              **_runtime_env(config), retry_strategy=_runtime_retry())


def _runtime_retry() -> Any:
    """open, commit and abort are idempotent (DESIGN.md §5): a pod lost or killed midway is
    run again, so a commit whose merge landed just before its pod died still succeeds. What
    cannot succeed on a retry (dsc's exit codes 1-3: the job's data, usage, a refusal by
    lakeFS) is not retried (contract.RETRY_EXPRESSION)."""
    from hera.workflows import RetryStrategy
    from hera.workflows import models as m

    return RetryStrategy(limit="3", retry_policy="Always", expression=contract.RETRY_EXPRESSION,
                         backoff=m.Backoff(duration="5s", factor=m.IntOrString(root=2),
                                           max_duration="2m"))


def _outputs(verb: str) -> list[Any]:
    from hera.workflows import Parameter
    from hera.workflows import models as m

    return [Parameter(name=o.parameter, value_from=m.ValueFrom(path=o.path))
            for o in contract.OUTPUTS[verb]]


def _shared_templates(config: Config, pinned: bool) -> None:
    """`open` and `commit`, one of each per object, given each pipeline's job document and
    options as parameters (contract.OPEN_OPTIONS; "" is an option left out). `reprocess` is
    the run's parameter of that name; a pinned run has none."""
    from hera.workflows import Container, Parameter

    defaults = {n: "" for n in contract.OPEN_OPTIONS if n != "job"}
    if not pinned:
        defaults[REPROCESS] = f"{{{{workflow.parameters.{REPROCESS}}}}}"
    Container(
        name="open", image=config.runtime_image, command=contract.COMMAND,
        args=contract.open_args({n: f"{{{{inputs.parameters.{n}}}}}"
                                 for n in contract.OPEN_OPTIONS}),
        inputs=[Parameter(name="job"), *(Parameter(name=n, value=v)
                                         for n, v in defaults.items())],
        outputs=_outputs("open"), **_runtime_env(config), retry_strategy=_runtime_retry())
    Container(
        name="commit", image=config.runtime_image, command=contract.COMMAND,
        args=contract.commit_args("{{inputs.parameters.job}}", "{{inputs.parameters.branch}}"),
        inputs=[Parameter(name="job"), Parameter(name="branch")], outputs=_outputs("commit"),
        **_runtime_env(config), retry_strategy=_runtime_retry())


def _worker_name(names: _Names, task: str) -> str:
    """`<task>-worker`, or with a hash when a pipeline's own name is that."""
    name = f"{task}-worker"
    return name if name not in names.tasks.values() else f"{name}-{short_hash(task)}"


def _pipeline_templates(p: Pipeline, names: _Names, graph: Graph, config: Config,
                        pins: PipelinePins | None) -> Any:
    from hera.workflows import DAG, Parameter, Task
    from hera.workflows import models as m

    task = names.tasks[p.name]
    ups = graph.upstream[p.name]
    pin_args = [f"{u}@{{{{inputs.parameters.pin-{names.tasks[u]}}}}}" for u in ups]
    pin_args += [f"{repo}@{commit}" for repo, commit in (pins.commits if pins else ())]
    options = {"job": "{{inputs.parameters.job}}", "pins": contract.pins_value(pin_args)}
    if pins and pins.datums is not None and pins.digest:
        options |= {"expect-datums": str(pins.datums), "plan-digest": pins.digest}
    if any(isinstance(n, CronInput) for n in p.inputs()):
        options["cron-tick"] = "{{workflow.parameters.cron-tick}}"
    if p.name in names.triggered:
        options |= {name: f"{{{{workflow.parameters.{name}}}}}"
                    for name in kit.TRIGGER_PARAMETERS[:3]}
    worker = _worker_template(p, task, _worker_name(names, task), config)
    branch = p.output_branch or config.default_branch
    opened = "{{tasks.open.outputs.parameters.branch}}"
    with DAG(
        name=task,
        inputs=[Parameter(name="job", value=job_spec(p, config).document()),
                *(Parameter(name=f"pin-{names.tasks[u]}") for u in ups)],
        # The commit, which downstream pipelines read (its URL is the commit step's).
        outputs=[Parameter(name="commit", value_from=m.ValueFrom(
            parameter="{{tasks.commit.outputs.parameters.commit}}"))],
        synchronization=m.Synchronization(mutexes=[m.Mutex(
            name=f"dsc-{fit(p.name, 40)}-{short_hash(p.name, branch, length=6)}")]),
    ) as dag:
        o = Task(name="open", template="open", arguments=[
            Parameter(name=k, value=v) for k, v in options.items() if v])
        w = worker(name="work", with_param="{{tasks.open.outputs.parameters.workers}}",
                   arguments=[Parameter(name="worker", value="{{item}}"),
                              Parameter(name="branch", value=opened)])
        c = Task(name="commit", template="commit", arguments=[
            Parameter(name="job", value="{{inputs.parameters.job}}"),
            Parameter(name="branch", value=opened)])
        o >> w >> c
    return dag


def _user_env(p: Pipeline, env: list[Any]) -> None:
    """`stdin`, `err_stdin` and `accept_return_code`, for the worker loop (contract.LOOP);
    `cmd` and `err_cmd` are the user container's args."""
    from hera.workflows import Env

    t = p.transform
    if not t.cmd:
        raise CompileError(f"pipeline `{p.name}`: `transform.cmd` is missing; dsc's workers "
                           "run it once per datum (Pachyderm refuses a pipeline without it)")
    if t.err_stdin and not t.err_cmd:
        raise CompileError(f"pipeline `{p.name}`: `transform.err_stdin` needs "
                           "`transform.err_cmd`")
    if t.stdin:
        env.append(Env(name="DSC_STDIN", value="\n".join(t.stdin) + "\n"))
    if t.err_stdin:
        env.append(Env(name="DSC_ERR_STDIN", value="\n".join(t.err_stdin) + "\n"))
    if t.accept_return_code:
        env.append(Env(name="DSC_ACCEPT_RETURN_CODE",
                       value=" ".join(str(c) for c in t.accept_return_code)))


def _worker_template(p: Pipeline, task: str, name: str, config: Config) -> Any:
    """A worker pod: `prepare` (an init container) lays out the worker protocol on /pfs,
    then `main` (the runtime) and `user` (the spec's image) process the worker's datums."""
    from hera.workflows import ContainerNode, ContainerSet, Env, Parameter, RetryStrategy
    from hera.workflows import models as m

    t = p.transform
    mount = m.VolumeMount(name="pfs", mount_path=contract.PFS)
    env: list[Any] = [Env(name=k, value=v) for k, v in t.env]
    secret_mounts: list[m.VolumeMount] = []
    volumes = [m.Volume(name="pfs", empty_dir=m.EmptyDirVolumeSource(
        medium="Memory" if t.memory_volume else None))]
    for i, s in enumerate(t.secrets):
        if s.env_var:
            env.append(m.EnvVar(name=s.env_var, value_from=m.EnvVarSource(
                secret_key_ref=m.SecretKeySelector(name=s.name, key=s.key or s.env_var))))
        if s.mount_path:
            volumes.append(m.Volume(name=f"secret-{i}", secret=m.SecretVolumeSource(
                secret_name=s.name)))
            secret_mounts.append(m.VolumeMount(name=f"secret-{i}", mount_path=s.mount_path,
                                               read_only=True))
    _user_env(p, env)
    runtime_resources = _resources(p.sidecar_resource_requests, p.sidecar_resource_limits)
    tolerations = [m.Toleration(key=x.key, operator=x.operator, value=x.value, effect=x.effect,
                                toleration_seconds=x.toleration_seconds)
                   for x in p.tolerations] or None
    with ContainerSet(
        name=name,
        inputs=[Parameter(name="worker"), Parameter(name="branch")],
        volumes=volumes,
        init_containers=[m.UserContainer(
            name="prepare", image=config.runtime_image, command=contract.COMMAND,
            args=contract.PREPARE_ARGS, volume_mounts=[mount], resources=runtime_resources)],
        # A worker lost with its node, or killed (OOM), runs again and resumes; one whose
        # datums failed all their tries (exit 1) does not. A worker may run for hours over a
        # large share, through node drains and spot reclaims: 6 tries, 10 s to 5 min apart
        # (no maxDuration: it would also cut the running pod's deadline).
        retry_strategy=RetryStrategy(limit=str(WORKER_RETRIES), retry_policy="Always",
                                     expression=contract.RETRY_EXPRESSION,
                                     backoff=m.Backoff(duration="10s",
                                                       factor=m.IntOrString(root=2))),
        # Pachyderm's job_timeout: the job's open and commit count too (the runtime checks).
        active_deadline_seconds=math.ceil(p.job_timeout) if p.job_timeout else None,
        node_selector=dict(p.node_selector) or None,
        tolerations=tolerations,
        priority_class_name=p.priority_class_name,
        pod_spec_patch=json.dumps(p.pod_spec, sort_keys=True) if p.pod_spec else None,
        labels={**dict(p.labels), "dsc.io/pipeline": fit(p.name, 63)},
        annotations=dict(p.annotations) or None,
    ) as container_set:
        ContainerNode(name="main", image=config.runtime_image, command=contract.COMMAND,
                      args=contract.work_args(p.name, config.lakefs_repo(p.name),
                                              "{{inputs.parameters.branch}}",
                                              "{{inputs.parameters.worker}}"),
                      **_runtime_env(config, worker=True), volume_mounts=[mount],
                      resources=runtime_resources)
        ContainerNode(name="user", image=t.image, command=contract.USER_COMMAND,
                      args=contract.user_args(t.cmd, t.err_cmd),
                      env=env or None, volume_mounts=[mount, *secret_mounts],
                      resources=_resources(p.resource_requests, p.resource_limits),
                      working_dir=t.working_dir, security_context=_security(t.user))
    return container_set


def _with_pod_patches(doc: dict[str, Any], graph: Graph, names: _Names) -> dict[str, Any]:
    """Set the podSpecPatch of each worker template whose spec has a `pod_patch`: it is
    computed from the template as built, so it runs after hera."""
    patched = {_worker_name(names, names.tasks[p.name]): p for p in graph.pipelines
               if p.pod_patch}
    if not patched:
        return doc
    for template in doc["spec"]["templates"]:
        if template["name"] in patched:
            template["podSpecPatch"] = _pod_patch(patched[template["name"]], template)
    return doc


def _pod_patch(p: Pipeline, template: dict[str, Any]) -> str:
    """`pod_patch` applied to the worker pod as dsc builds it, as a podSpecPatch."""
    from compiler.argo.podpatch import PodPatchError, pod_spec_patch

    if p.pod_spec:
        raise CompileError(f"pipeline `{p.name}`: `pod_spec` and `pod_patch` together cannot "
                           "be one podSpecPatch; write both as `pod_patch`")
    user = next(c for c in template["containerSet"]["containers"] if c["name"] == "user")
    base: dict[str, Any] = {"containers": [user], **{k: template[k] for k in (
        "volumes", "nodeSelector", "tolerations", "priorityClassName") if k in template}}
    try:
        patch = pod_spec_patch(p.pod_patch or (), base)
    except PodPatchError as exc:
        raise CompileError(f"pipeline `{p.name}`: `pod_patch` {exc}", p.name,
                           ("pod_patch",)) from None
    return json.dumps(patch, sort_keys=True, separators=(",", ":"))


def _resources(requests: Resources | None, limits: Resources | None) -> Any:
    from hera.workflows import models as m

    def quantities(r: Resources | None) -> dict[str, Any] | None:
        if r is None:
            return None
        out: dict[str, Any] = {}
        if r.cpu is not None:
            out["cpu"] = m.Quantity(root=_number(r.cpu))
        if r.memory:
            out["memory"] = m.Quantity(root=r.memory)
        if r.disk:
            out["ephemeral-storage"] = m.Quantity(root=r.disk)
        if r.gpu is not None and r.gpu.number:
            out[r.gpu.type] = m.Quantity(root=str(r.gpu.number))
        return out or None

    req, lim = quantities(requests), quantities(limits)
    if req is None and lim is None:
        return None
    return m.ResourceRequirements(requests=req, limits=lim)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _security(user: str | None) -> Any:
    from hera.workflows import models as m

    if user is None:
        return None
    if user.isdigit():
        return m.SecurityContext(run_as_user=int(user))
    raise CompileError(f"`transform.user` {user!r}: Kubernetes runs containers as a numeric "
                       "user ID; give the UID")


def _run_name(digest: str, template_name: str, generate_name: bool) -> tuple[str, str]:
    """The run's metadata key and value: a name ending in `digest`, or a generateName."""
    if generate_name:
        return "generateName", fit(template_name, OBJECT_MAX - 6) + "-"
    return "name", fit(template_name, OBJECT_MAX - 9) + "-" + digest


def _run_workflow(templates: list[dict[str, Any]], template_name: str,
                  labels: dict[str, str], generate_name: bool,
                  reprocess: str = "") -> dict[str, Any]:
    from hera.workflows import Parameter, Workflow
    from hera.workflows import models as m

    digest = short_hash(digest_text(templates) + (f"\nreprocess={reprocess}"
                                                  if reprocess else ""))
    key, value = _run_name(digest, template_name, generate_name)
    naming: dict[str, Any] = {"generate_name" if key == "generateName" else "name": value}
    namespace = templates[0]["metadata"].get("namespace")
    return plain(Workflow(
        **naming,
        **({"namespace": namespace} if namespace else {}),
        labels={**labels, "dsc.io/template-hash": digest},
        # No title: the Argo UI's list would show it instead of the name, and every run of
        # the graph would look the same (../shared/reference/argo/ui.md §1).
        annotations={"workflows.argoproj.io/description": (
            f"A run of dsc graph `{template_name}` (template hash `{digest}`)"
            + (f", processing again: `{reprocess}`." if reprocess else "."))},
        arguments=[Parameter(name=REPROCESS, value=reprocess)] if reprocess else None,
        workflow_template_ref=m.WorkflowTemplateRef(name=template_name)))


def _pinned_run(graph: Graph, names: _Names, config: Config, pins: Pins,
                generate_name: bool) -> dict[str, Any]:
    """A Workflow carrying the whole graph and its pins: rerunning it reads exactly the same
    data (`open` checks each pipeline's datums against the count and digest compiled in).
    Its size does not depend on the number of datums."""
    for name, pin in pins.items():
        if config.max_datums and pin.datums is not None and pin.datums > config.max_datums:
            raise CompileError(f"pipeline `{name}` has {pin.datums:,} datums, over the budget "
                               f"of {config.max_datums:,} (`limits.max_datums`)")
    commits = sorted({f"{repo}@{commit}" for pin in pins.values()
                      for repo, commit in pin.commits})
    description = "\n".join([f"A pinned run of dsc graph `{names.template}`, reading:",
                             *(f"- `{c}`" for c in commits)])
    run = _with_pod_patches(plain(_workflow_object(graph, names, config, pins, None,
                                                   run_name={"name": "run"})), graph, names)
    built = run["metadata"]
    run["metadata"] = {}  # the run's identity is its spec: the name is made from it
    digest = short_hash(digest_text([run]))
    key, value = _run_name(digest, names.template, generate_name)
    metadata = {key: value, "annotations": {"workflows.argoproj.io/description": description,
                                            **_output_annotations(graph, config)},
                "labels": dict(sorted({**built["labels"], "dsc.io/pinned": "true",
                                       "dsc.io/template-hash": digest}.items()))}
    if "namespace" in built:
        metadata["namespace"] = built["namespace"]
    run["metadata"] = {k: metadata[k] for k in sorted(metadata, key=lambda k: (k != "name", k))}
    over = _over_budget([run], config)
    if over is not None:
        raise CompileError(over)
    return run


def _cron_workflows(graph: Graph, names: _Names, config: Config,
                    reprocess: str = "") -> list[Any]:
    """One CronWorkflow per cron input, running the graph on its schedule with that input's
    tick (Pachyderm's cron: each tick is a commit to the cron repo, in UTC)."""
    from hera.workflows import CronWorkflow, Parameter
    from hera.workflows import models as m

    out = []
    for node in cron_inputs(graph):
        out.append(CronWorkflow(
            name=fit(f"{names.template}-{node.repo}", CRON_MAX), **_metadata(config),
            schedules=[node.spec], timezone="UTC", concurrency_policy="Allow",
            labels={**_labels(names, config), "dsc.io/cron-repo": fit(node.repo, 63)},
            annotations={"workflows.argoproj.io/title":
                         f"dsc graph {graph.name} on cron `{node.name}` ({node.spec})"},
            workflow_template_ref=m.WorkflowTemplateRef(name=names.template),
            arguments=[Parameter(name="cron-tick", value=node.repo),
                       *([Parameter(name=REPROCESS, value=reprocess)] if reprocess else [])]))
    return out


def _automation(graph: Graph, names: _Names, config: Config, found: list[triggers.Source],
                taken: set[str]) -> list[dict[str, Any]]:
    """`--trigger`: the namespace's EventSource, the graph's Sensor and its reconciler (named
    apart from the CronWorkflows in `taken`)."""
    labels = _labels(names, config)
    return [triggers.event_source(config),
            triggers.sensor(names.template, config, labels, found),
            plain(_reconciler(graph, names, config, found,
                              triggers.reconciler_name(names.template, taken)))]


def _reconciler(graph: Graph, names: _Names, config: Config, found: list[triggers.Source],
                name: str) -> Any:
    """A CronWorkflow that submits the runs lakeFS's webhooks missed: `detect` compares the
    source heads with the provenance of the output heads (`dsc runtime reconcile`), and
    `submit` creates each missed run under the name its Sensor would have given it. An
    existing name (the run is there, or running) fails that item only (continueOn)."""
    from hera.workflows import DAG, Container, CronWorkflow, Parameter, Resource, Task
    from hera.workflows import models as m

    labels = {**_labels(names, config), "dsc.io/role": "reconciler"}
    with CronWorkflow(
        name=name, **_metadata(config), labels=labels,
        annotations={"workflows.argoproj.io/title": f"dsc graph {graph.name}: reconciler",
                     "workflows.argoproj.io/description": (
                         f"Every `{config.triggers.schedule}` (UTC): start the runs of "
                         f"`{names.template}` that lakeFS webhooks missed, for "
                         + ", ".join(f"`{s.repo}/{s.branch}`" for s in found) + ".")},
        schedules=[config.triggers.schedule], timezone="UTC", concurrency_policy="Forbid",
        starting_deadline_seconds=300, successful_jobs_history_limit=1,
        failed_jobs_history_limit=3,
        workflow_metadata=m.WorkflowMetadata(labels=labels),
        service_account_name=kit.RECONCILER_SERVICE_ACCOUNT,
        entrypoint="main", active_deadline_seconds=600,
    ) as cron:
        detect = Container(
            name="detect", image=config.runtime_image, command=contract.COMMAND,
            args=contract.reconcile_args(triggers.reconcile_document(names.template, found)),
            outputs=_outputs("reconcile"), **_runtime_env(config),
            retry_strategy=_runtime_retry())
        submit = Resource(
            name="submit", action="create",
            manifest=triggers.submit_manifest(names.template, config, _labels(names, config)),
            inputs=[Parameter(name=n) for n in ("name", "repo", "branch", "commit")])
        with DAG(name="main"):
            Task(name="detect", template=detect)
            # `dependencies`, not `depends`: Argo refuses `depends` with `continueOn`.
            Task(name="submit", template=submit, dependencies=["detect"],
                 with_param="{{tasks.detect.outputs.parameters.runs}}",
                 continue_on=m.ContinueOn(failed=True),
                 arguments=[Parameter(name=n, value=f"{{{{item.{n}}}}}")
                            for n in ("name", "repo", "branch", "commit")])
    return cron
