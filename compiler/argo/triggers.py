"""Automation (issue 7): what re-runs a graph when its inputs get new commits.

A lakeFS action in each source repository (`action_file`) posts every new commit on a
tracked branch to the namespace's webhook EventSource (`event_source`); the graph's Sensor
(`sensor`) filters the event and submits a run of the graph's WorkflowTemplate named after
(repository, branch, commit), so a repeated event never starts a second run. lakeFS never
retries a post-commit webhook, so a reconciler CronWorkflow (`reconciler`) compares the input
heads with the provenance of the output heads and submits, under the same names, the runs
the webhooks missed. References: ../shared/reference/events/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from compiler import contract, kit
from compiler.argo.emit import to_yaml
from compiler.argo.object_names import CRON_MAX, OBJECT_MAX, fit
from compiler.config import Config
from compiler.spec.graph import Graph, short_hash
from compiler.spec.model import PfsInput

ACTION_DIR = "_lakefs_actions"


@dataclass(frozen=True, slots=True)
class Reader:
    """A pipeline input that reads a source branch, and where that pipeline commits."""

    pipeline: str
    input: str
    output_repo: str
    output_branch: str


@dataclass(frozen=True, slots=True)
class Source:
    """A lakeFS branch the graph reads but does not write: a new commit there is new work."""

    repo: str  # the lakeFS repository
    branch: str
    readers: tuple[Reader, ...]


def sources(graph: Graph, config: Config) -> list[Source]:
    """The graph's source inputs by (repository, branch), in a stable order. An input pinned
    to a commit in its spec never changes, and a cron input's repo is written by dsc on its
    schedule: neither is a source."""
    produced = {p.name for p in graph.pipelines}
    found: dict[tuple[str, str], list[Reader]] = {}
    for p in graph.pipelines:
        for node in p.inputs():
            if not isinstance(node, PfsInput) or node.repo in produced or node.commit:
                continue
            key = (config.lakefs_repo(node.repo), node.branch or config.default_branch)
            reader = Reader(p.name, node.name, config.lakefs_repo(p.name),
                            p.output_branch or config.default_branch)
            if reader not in found.setdefault(key, []):
                found[key].append(reader)
    return [Source(repo, branch, tuple(readers))
            for (repo, branch), readers in sorted(found.items())]


def name_prefix(template: str) -> str:
    """The start of every triggered run's name: room is left for `-` and the hash."""
    return fit(template, OBJECT_MAX - contract.RUN_HASH_LENGTH - 1)


def _name_template(prefix: str) -> str:
    """`run_name` as an Argo Events dataTemplate (Go text/template with sprig)."""
    return (f'{prefix}-{{{{ printf "%s/%s/%s" .Input.body.repository_id .Input.body.branch_id '
            f'.Input.body.commit_id | sha256sum | trunc {contract.RUN_HASH_LENGTH} }}}}')


def go_quote(text: str) -> str:
    """Go's regexp.QuoteMeta: `text` as a regexp matching exactly it."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


# A dsc commit that changes no data (the trigger install) carries metadata key
# contract.BOOKKEEPING_KEY; its events never start a run. lakeFS sends the body as compact JSON,
# where a `"` that opens a key follows `{` or `,` and one inside a string follows `\`, so this
# matches the key in commit_metadata and nothing a user wrote.
BOOKKEEPING_FILTER = r'^.*[{,]"' + go_quote(contract.BOOKKEEPING_KEY) + r'":.*$'


def _metadata(name: str, config: Config, labels: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if config.namespace:
        meta["namespace"] = config.namespace
    meta["labels"] = dict(sorted(labels.items()))
    return meta


def event_source(config: Config) -> dict[str, Any]:
    """The namespace's webhook EventSource (the kit in manifests/ installs the same one)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "EventSource",
        "metadata": _metadata(kit.EVENT_SOURCE, config, {"app.kubernetes.io/part-of": "dsc"}),
        "spec": {
            "replicas": 2,  # webhook sources are active-active: both replicas serve
            "service": {"ports": [{"name": "http", "port": kit.WEBHOOK_PORT,
                                   "targetPort": kit.WEBHOOK_PORT}]},
            "webhook": {kit.EVENT_NAME: {
                "port": str(kit.WEBHOOK_PORT), "endpoint": kit.WEBHOOK_ENDPOINT,
                "method": "POST",
                "authSecret": {"name": kit.WEBHOOK_SECRET, "key": kit.WEBHOOK_SECRET_KEY},
                "maxPayloadSize": kit.WEBHOOK_MAX_PAYLOAD}}}}


def _dependency_names(found: list[Source]) -> list[str]:
    names: list[str] = []
    for s in found:
        name = fit(f"{s.repo}-{s.branch}", 50)
        if name in names:
            name = fit(f"{name}-{short_hash(s.repo, s.branch, length=6)}", 57)
        names.append(name)
    return names


def triggered_workflow(template: str, config: Config, labels: dict[str, str],
                       started_by: str, values: dict[str, str] | None = None
                       ) -> dict[str, Any]:
    """The run a trigger submits: the graph's WorkflowTemplate with the trigger's repository,
    branch and commit. `values` fills it in; without them it holds the placeholders the
    Sensor's parameters overwrite (every index a parameter writes must exist)."""
    v = values or {}
    metadata: dict[str, Any] = {"name": v.get("name", f"{name_prefix(template)}-pending")}
    if config.namespace:
        metadata["namespace"] = config.namespace
    metadata["labels"] = dict(sorted({**labels, kit.STARTED_BY_LABEL: started_by}.items()))
    metadata["annotations"] = {
        kit.TRIGGER_BRANCH_ANNOTATION: v.get("branch", ""),
        kit.TRIGGER_COMMIT_ANNOTATION: v.get("commit", ""),
        kit.TRIGGER_REPO_ANNOTATION: v.get("repo", ""),
        "workflows.argoproj.io/description": v.get("description", "")}
    keys = ("repo", "branch", "commit", "event")
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": metadata,
        "spec": {"arguments": {"parameters": [
                     {"name": name, "value": v.get(key, "")}
                     for name, key in zip(kit.TRIGGER_PARAMETERS, keys, strict=True)]},
                 "workflowTemplateRef": {"name": template}}}


def _description(template: str, repo: str, branch: str, commit: str, which: str) -> str:
    """The run's Argo UI description; its values are template expressions (the Sensor's Go
    templates, the reconciler's Argo parameters)."""
    return (f"A run of dsc graph `{template}` for {which} commit `{commit}` on lakeFS "
            f"`{repo}/{branch}`.")


def sensor(template: str, config: Config, labels: dict[str, str],
           found: list[Source]) -> dict[str, Any]:
    """One dependency per source branch (anchored filters: the repository, the branch, a
    commit-making event, this graph's action; never a bookkeeping commit) and one trigger
    each, submitting a run named after (repository, branch, commit)."""
    prefix = name_prefix(template)
    events = "|".join(go_quote(e.removeprefix("post-")) for e in config.triggers.events)
    dependencies, triggers = [], []
    for name, s in zip(_dependency_names(found), found, strict=True):
        dependencies.append({
            "name": name, "eventSourceName": kit.EVENT_SOURCE, "eventName": kit.EVENT_NAME,
            "filters": {"data": [
                {"path": "body.event_type", "type": "string", "value": [f"^post-({events})$"]},
                {"path": "body.repository_id", "type": "string",
                 "value": [f"^{go_quote(s.repo)}$"]},
                {"path": "body.branch_id", "type": "string",
                 "value": [f"^{go_quote(s.branch)}$"]},
                {"path": f"header.{kit.GRAPH_HEADER}.0", "type": "string",
                 "value": [f"^{go_quote(template)}$"]},
                {"path": "body", "type": "string", "comparator": "!=",
                 "value": [BOOKKEEPING_FILTER]}]}})

        def param(dest: str, key: str | None = None, text: str | None = None,
                  dependency: str = name) -> dict[str, Any]:
            src: dict[str, Any] = {"dependencyName": dependency}
            if key is not None:
                src["dataKey"] = key
            else:
                src["dataTemplate"] = text
            return {"src": src, "dest": dest}

        def annotation(key: str) -> str:
            return "metadata.annotations." + key.replace(".", "\\.")

        triggers.append({
            "template": {
                "name": name, "conditions": name,
                "argoWorkflow": {
                    "operation": "submit",
                    "source": {"resource": triggered_workflow(template, config, labels,
                                                              "lakefs-event")},
                    "parameters": [
                        param("metadata.name", text=_name_template(prefix)),
                        param(annotation(kit.TRIGGER_REPO_ANNOTATION), "body.repository_id"),
                        param(annotation(kit.TRIGGER_BRANCH_ANNOTATION), "body.branch_id"),
                        param(annotation(kit.TRIGGER_COMMIT_ANNOTATION), "body.commit_id"),
                        param(annotation("workflows.argoproj.io/description"),
                              text=_description(template, "{{ .Input.body.repository_id }}",
                                                "{{ .Input.body.branch_id }}",
                                                "{{ .Input.body.commit_id }}", "new")),
                        param("spec.arguments.parameters.0.value", "body.repository_id"),
                        param("spec.arguments.parameters.1.value", "body.branch_id"),
                        param("spec.arguments.parameters.2.value", "body.commit_id"),
                        param("spec.arguments.parameters.3.value", "body.event_type")]}},
            # Acknowledge the event only once the submit ran, and retry a failed submit. An
            # AlreadyExists (a duplicate event) fails every attempt: keep the attempts few.
            "atLeastOnce": True,
            "retryStrategy": {"steps": 3, "duration": "2s", "factor": 2, "jitter": 0.2},
            "rateLimit": {"unit": "Second", "requestsPerUnit": 5}})
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Sensor",
        "metadata": _metadata(template, config, labels),
        "spec": {"template": {"serviceAccountName": kit.SENSOR_SERVICE_ACCOUNT},
                 "dependencies": dependencies, "triggers": triggers}}


def reconcile_document(template: str, found: list[Source]) -> dict[str, Any]:
    """What `dsc runtime reconcile` compares (compiler.runtime.reconcile)."""
    return {"prefix": name_prefix(template),
            "sources": [{"repo": s.repo, "branch": s.branch,
                         "readers": [{"pipeline": r.pipeline, "input": r.input,
                                      "output_repo": r.output_repo,
                                      "output_branch": r.output_branch}
                                     for r in s.readers]} for s in found]}


def reconciler_name(template: str, taken: set[str]) -> str:
    name = fit(f"{template}-reconcile", CRON_MAX)
    return name if name not in taken else fit(f"{template}-reconcile-{short_hash(template)}",
                                              CRON_MAX)


def action_file(template: str, branches: list[str], config: Config) -> str:
    """`_lakefs_actions/dsc-<graph>.yaml` for one source repository: post the commit-making
    events of its tracked branches (never `*`: dsc's job branches must not trigger) to the
    EventSource, with the bearer token from lakeFS's environment."""
    action = {
        "name": f"dsc-{template}",
        "description": f"Tell dsc (Argo Events) that a branch graph `{template}` reads has "
                       "a new commit.",
        "on": {event: {"branches": list(branches)} for event in config.triggers.events},
        "hooks": [{
            "id": f"dsc_{template}".replace("-", "_"),
            "type": "webhook",
            "description": f"POST the event to the {kit.EVENT_SOURCE} EventSource",
            "properties": {
                "url": webhook_url(config),
                "timeout": config.triggers.timeout,
                "headers": {"Authorization": f"Bearer {{{{ ENV.{config.triggers.token_env} }}}}",
                            kit.GRAPH_HEADER: template}}}]}
    # safe_dump quotes the key `on` ('on':), which lakeFS's YAML 1.2 reader takes as a string.
    text: str = yaml.safe_dump(action, sort_keys=False, default_flow_style=False, width=10_000)
    return text


def action_path(template: str) -> str:
    return f"{ACTION_DIR}/dsc-{template}.yaml"


def webhook_url(config: Config) -> str:
    if config.triggers.webhook_url:
        return config.triggers.webhook_url
    if not config.namespace:
        raise ValueError("the lakeFS action needs the EventSource's URL: set `namespace` "
                         "(dsc then uses the Service Argo Events creates in it) or "
                         "`triggers.webhook_url` in dsc.yaml")
    return (f"http://{kit.EVENT_SOURCE_SERVICE}.{config.namespace}.svc.cluster.local:"
            f"{kit.WEBHOOK_PORT}{kit.WEBHOOK_ENDPOINT}")


def submit_manifest(template: str, config: Config, labels: dict[str, str]) -> str:
    """The reconciler's `resource` manifest: the same run a Sensor submits, its values from
    the submit template's inputs (Argo substitutes them before kubectl reads it)."""
    values = {key: f"{{{{inputs.parameters.{key}}}}}" for key in ("name", "repo", "branch",
                                                                  "commit")}
    values["event"] = "reconcile"
    values["description"] = _description(template, values["repo"], values["branch"],
                                          values["commit"], "missed")
    return to_yaml([triggered_workflow(template, config, labels, "reconciler", values)])


