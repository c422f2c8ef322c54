"""One graph of pipelines -> a WorkflowTemplate and a Workflow that runs it (DESIGN.md §4).

Each pipeline is a DAG template `<pipeline>`: `open` (pin inputs, create the job branch, plan
the datums) -> `datums` (one containerSet pod per datum: stage -> user -> publish, sharing an
emptyDir at /pfs) -> `commit` (one provenance-carrying commit, merged into the output branch).
The main DAG runs the pipelines in graph order; a downstream pipeline reads the commit its
upstream `commit` produced in the same run. An exit handler aborts what a failed run left.
The runtime contract (the `dsc runtime ...` command lines) is defined here and implemented
by `compiler.runtime`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from compiler.argo.emit import plain, to_yaml
from compiler.argo.graph import Graph, short_hash
from compiler.argo.names import OBJECT_MAX, fit, unique_names
from compiler.spec.model import CombinedInput, CronInput, Input, PfsInput, Pipeline, Resources

PFS = "/pfs"
# How a spec's `stdin` reaches its `cmd`: Kubernetes cannot feed a container's stdin, so the
# lines travel in an environment variable and /bin/sh pipes them in. `accept_return_code`
# turns the listed exit codes into success, as Pachyderm's worker does.
STDIN_WRAPPER = ('printf "%s" "$DSC_STDIN" | "$@"; code=$?; '
                 'for ok in $DSC_ACCEPT_RETURN_CODE; do [ "$code" = "$ok" ] && exit 0; done; '
                 "exit $code")
ARGS_WRAPPER = ('"$@"; code=$?; '
                'for ok in $DSC_ACCEPT_RETURN_CODE; do [ "$code" = "$ok" ] && exit 0; done; '
                "exit $code")


@dataclass(frozen=True, slots=True)
class CompileConfig:
    """What a cluster needs that specs do not say (DESIGN.md §6)."""

    runtime_image: str = "ghcr.io/dsc-project/dsc:0.1.0"
    lakefs_secret: str = "dsc-lakefs"  # keys: endpoint, access_key_id, secret_access_key
    default_branch: str = "main"
    service_account: str | None = None
    keep_failed_branches: bool = False
    labels: dict[str, str] = field(default_factory=dict)


class CompileError(ValueError):
    """A graph dsc cannot compile faithfully (an error naming the pipeline and field)."""


def job_spec(p: Pipeline, config: CompileConfig) -> dict[str, Any]:
    """What the runtime's `open` needs to plan a pipeline's datums (DESIGN.md §3, §5)."""
    return {"pipeline": p.name, "input": _input_json(p.input, config) if p.input else None,
            "output": {"repo": p.name, "branch": p.output_branch or config.default_branch},
            "salt": p.salt or "", "reprocess_spec": p.reprocess_spec}


def _input_json(node: Input, config: CompileConfig) -> dict[str, Any]:
    if isinstance(node, PfsInput):
        out: dict[str, Any] = {"name": node.name, "repo": node.repo, "glob": node.glob,
                               "branch": node.branch or config.default_branch}
        for key in ("commit", "join_on", "group_by"):
            if getattr(node, key):
                out[key] = getattr(node, key)
        for key in ("outer_join", "lazy", "empty_files"):
            if getattr(node, key):
                out[key] = True
        return {"pfs": out}
    if isinstance(node, CronInput):
        return {"cron": {"name": node.name, "repo": node.repo, "spec": node.spec,
                         "overwrite": node.overwrite}}
    assert isinstance(node, CombinedInput)
    return {node.kind: [_input_json(m, config) for m in node.members]}


def build(graph: Graph, config: CompileConfig, *,
          generate_name: bool = False) -> list[dict[str, Any]]:
    """The WorkflowTemplate of the graph and the Workflow that runs it, as plain data."""
    from hera.workflows import DAG, Parameter, WorkflowTemplate
    from hera.workflows import models as m

    template_name = fit(graph.name, OBJECT_MAX)
    tasks = unique_names([p.name for p in graph.pipelines], OBJECT_MAX - 7)
    labels = {"dsc.io/graph": template_name, **config.labels}
    pull_secrets = sorted({s for p in graph.pipelines for s in p.transform.image_pull_secrets})
    with WorkflowTemplate(
        name=template_name,
        entrypoint="main",
        on_exit="abort",
        labels=labels,
        annotations={"workflows.argoproj.io/title": f"dsc graph {graph.name}",
                     "workflows.argoproj.io/description": _describe(graph)},
        workflow_metadata=m.WorkflowMetadata(labels=labels),
        service_account_name=config.service_account,
        image_pull_secrets=[m.LocalObjectReference(name=s) for s in pull_secrets] or None,
    ) as wt:
        _abort_template(graph, config)
        pipeline_templates = {p.name: _pipeline_templates(p, tasks[p.name], graph, tasks, config)
                              for p in graph.pipelines}
        with DAG(name="main"):
            created: dict[str, Any] = {}
            for p in graph.pipelines:
                ups = graph.upstream[p.name]
                arguments = [Parameter(name=f"pin-{tasks[u]}",
                                       value=f"{{{{tasks.{tasks[u]}.outputs.parameters.commit}}}}")
                             for u in ups]
                task = pipeline_templates[p.name](name=tasks[p.name], **_arguments(arguments))
                for u in ups:
                    created[u] >> task
                created[p.name] = task
    template = plain(wt)
    return [template, plain(_run_workflow(template, template_name, labels, generate_name))]


def _arguments(parameters: list[Any]) -> dict[str, Any]:
    return {"arguments": parameters} if parameters else {}


def _describe(graph: Graph) -> str:
    return "Pipelines: " + ", ".join(f"`{p.name}`" for p in graph.pipelines)


def _runtime_env(config: CompileConfig) -> list[Any]:
    from hera.workflows import Env, SecretEnv

    return [SecretEnv(name="LAKEFS_ENDPOINT", secret_name=config.lakefs_secret,
                      secret_key="endpoint"),
            SecretEnv(name="LAKEFS_ACCESS_KEY_ID", secret_name=config.lakefs_secret,
                      secret_key="access_key_id"),
            SecretEnv(name="LAKEFS_SECRET_ACCESS_KEY", secret_name=config.lakefs_secret,
                      secret_key="secret_access_key"),
            Env(name="DSC_RUN", value="{{workflow.name}}")]


def _abort_template(graph: Graph, config: CompileConfig) -> None:
    from hera.workflows import Container

    Container(name="abort", image=config.runtime_image,
              args=["runtime", "abort", "--graph", graph.name, "--status", "{{workflow.status}}",
                    *(["--keep-branches"] if config.keep_failed_branches else [])],
              env=_runtime_env(config))


def _pipeline_templates(p: Pipeline, task: str, graph: Graph, tasks: dict[str, str],
                        config: CompileConfig) -> Any:
    from hera.workflows import DAG, Container, Parameter
    from hera.workflows import models as m

    spec_json = json.dumps(job_spec(p, config), sort_keys=True, separators=(",", ":"))
    ups = graph.upstream[p.name]
    pins = [f"--pin={u}@{{{{inputs.parameters.pin-{tasks[u]}}}}}" for u in ups]
    open_ = Container(
        name=f"{task}-open", image=config.runtime_image,
        args=["runtime", "open", "--job", spec_json, *pins],
        inputs=[Parameter(name=f"pin-{tasks[u]}") for u in ups] or None,
        outputs=[Parameter(name="datums", value_from=m.ValueFrom(path="/tmp/dsc/datums.json")),
                 Parameter(name="branch", value_from=m.ValueFrom(path="/tmp/dsc/branch"))],
        env=_runtime_env(config))
    datum = _datum_template(p, task, config)
    commit = Container(
        name=f"{task}-commit", image=config.runtime_image,
        args=["runtime", "commit", "--job", spec_json,
              "--branch", "{{inputs.parameters.branch}}"],
        inputs=[Parameter(name="branch")],
        outputs=[Parameter(name="commit", value_from=m.ValueFrom(path="/tmp/dsc/commit")),
                 Parameter(name="url", value_from=m.ValueFrom(path="/tmp/dsc/url"))],
        env=_runtime_env(config))
    branch = p.output_branch or config.default_branch
    with DAG(
        name=task,
        inputs=[Parameter(name=f"pin-{tasks[u]}") for u in ups] or None,
        outputs=[Parameter(name="commit", value_from=m.ValueFrom(
                     parameter="{{tasks.commit.outputs.parameters.commit}}")),
                 Parameter(name="url", value_from=m.ValueFrom(
                     parameter="{{tasks.commit.outputs.parameters.url}}"))],
        parallelism=p.parallelism.constant or None,
        synchronization=m.Synchronization(mutexes=[m.Mutex(
            name=f"dsc-{fit(p.name, 40)}-{short_hash(p.name, branch, length=6)}")]),
    ) as dag:
        o = open_(name="open", **_arguments([
            Parameter(name=f"pin-{tasks[u]}", value=f"{{{{inputs.parameters.pin-{tasks[u]}}}}}")
            for u in ups]))
        d = datum(name="datums",
                  with_param="{{tasks.open.outputs.parameters.datums}}",
                  arguments=[Parameter(name="datum", value="{{item}}"),
                             Parameter(name="branch",
                                       value="{{tasks.open.outputs.parameters.branch}}")])
        c = commit(name="commit", arguments=[
            Parameter(name="branch", value="{{tasks.open.outputs.parameters.branch}}")])
        o >> d >> c
    return dag


def _datum_template(p: Pipeline, task: str, config: CompileConfig) -> Any:
    from hera.workflows import ContainerNode, ContainerSet, Env, Parameter, RetryStrategy
    from hera.workflows import models as m

    t = p.transform
    mount = m.VolumeMount(name="pfs", mount_path=PFS)
    runtime_resources = _resources(None, p.sidecar_resource_limits)
    env: list[Any] = [Env(name=k, value=v) for k, v in t.env]
    secret_mounts: list[m.VolumeMount] = []
    volumes = [m.Volume(name="pfs", empty_dir=m.EmptyDirVolumeSource())]
    for i, s in enumerate(t.secrets):
        if s.env_var:
            env.append(m.EnvVar(name=s.env_var, value_from=m.EnvVarSource(
                secret_key_ref=m.SecretKeySelector(name=s.name, key=s.key or s.env_var))))
        if s.mount_path:
            volumes.append(m.Volume(name=f"secret-{i}", secret=m.SecretVolumeSource(
                secret_name=s.name)))
            secret_mounts.append(m.VolumeMount(name=f"secret-{i}", mount_path=s.mount_path,
                                               read_only=True))
    command: list[str] | None = list(t.cmd) or None
    accept = " ".join(str(c) for c in t.accept_return_code)
    if t.stdin or accept:
        if not t.cmd:
            raise CompileError(f"pipeline `{p.name}`: `stdin` and `accept_return_code` need "
                               "`transform.cmd` (dsc runs it under /bin/sh)")
        wrapper = STDIN_WRAPPER if t.stdin else ARGS_WRAPPER
        command = ["/bin/sh", "-c", wrapper, "dsc-user", *t.cmd]
        if t.stdin:
            env.append(Env(name="DSC_STDIN", value="\n".join(t.stdin) + "\n"))
        if accept:
            env.append(Env(name="DSC_ACCEPT_RETURN_CODE", value=accept))
    runtime_args = ["--job-branch", "{{inputs.parameters.branch}}",
                    "--datum", "{{inputs.parameters.datum}}", "--pipeline", p.name]
    tolerations = [m.Toleration(key=x.key, operator=x.operator, value=x.value, effect=x.effect,
                                toleration_seconds=x.toleration_seconds)
                   for x in p.tolerations] or None
    with ContainerSet(
        name=f"{task}-datum",
        inputs=[Parameter(name="datum"), Parameter(name="branch")],
        volumes=volumes,
        retry_strategy=RetryStrategy(limit=str(p.datum_tries - 1), retry_policy="OnFailure")
        if p.datum_tries > 1 else None,
        active_deadline_seconds=int(p.datum_timeout) if p.datum_timeout else None,
        node_selector=dict(p.node_selector) or None,
        tolerations=tolerations,
        priority_class_name=p.priority_class_name,
        pod_spec_patch=json.dumps(p.pod_spec, sort_keys=True) if p.pod_spec else None,
        labels={"dsc.io/pipeline": fit(p.name, 63)},
    ) as container_set:
        ContainerNode(name="stage", image=config.runtime_image,
                      args=["runtime", "stage", *runtime_args], env=_runtime_env(config),
                      volume_mounts=[mount], resources=runtime_resources)
        ContainerNode(name="user", image=t.image, command=command, dependencies=["stage"],
                      env=env or None, volume_mounts=[mount, *secret_mounts],
                      resources=_resources(p.resource_requests, p.resource_limits),
                      working_dir=t.working_dir, security_context=_security(t.user))
        ContainerNode(name="publish", image=config.runtime_image,
                      args=["runtime", "publish", *runtime_args], dependencies=["user"],
                      env=_runtime_env(config), volume_mounts=[mount],
                      resources=runtime_resources)
    return container_set


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


def _run_workflow(template: dict[str, Any], template_name: str, labels: dict[str, str],
                  generate_name: bool) -> Any:
    from hera.workflows import Workflow
    from hera.workflows import models as m

    digest = short_hash(to_yaml([template]))
    kwargs: dict[str, Any] = (
        {"generate_name": fit(template_name, OBJECT_MAX - 6) + "-"} if generate_name
        else {"name": fit(template_name, OBJECT_MAX - 9) + "-" + digest})
    return Workflow(
        **kwargs,
        labels={**labels, "dsc.io/template-hash": digest},
        annotations={"workflows.argoproj.io/title": f"dsc graph {template_name}"},
        workflow_template_ref=m.WorkflowTemplateRef(name=template_name))
