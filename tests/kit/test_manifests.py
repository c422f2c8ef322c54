"""The cluster kit (`manifests/`): what `kubectl apply -k` installs, under the names that
`compiler.kit` gives compiled graphs, with no more privilege than each account needs.

The content tests read the kit's YAML files and run everywhere; the build tests run kubectl's own
kustomize and skip without kubectl.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from compiler import kit
from compiler.argo.triggers import event_source
from compiler.config import Config, LakeFS
from tests.conftest import ROOT, SHARED, needs_shared

MANIFESTS = ROOT / "manifests"
BASE = MANIFESTS / "base"
OVERLAY = MANIFESTS / "overlays" / "namespace"
OVERLAY_NAMESPACE = "dsc"
SECRETS = MANIFESTS / "secrets"
LAKEFS_CREDENTIALS = SECRETS / "lakefs-credentials.yaml"
WEBHOOK_TOKEN = SECRETS / "webhook-token.yaml"
LINKS_PATCH = MANIFESTS / "argo" / "workflow-controller-links.yaml"
EVENTS_VALIDATOR = SHARED / "tools" / "validate_events.py"
PART_OF = {"app.kubernetes.io/part-of": "dsc"}
LAKEFS_UI_PLACEHOLDER = "https://lakefs.example.com"

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl is not on PATH (the build tests use its built-in kustomize)")

ACCOUNTS = (kit.WORKFLOW_SERVICE_ACCOUNT, kit.SENSOR_SERVICE_ACCOUNT,
            kit.RECONCILER_SERVICE_ACCOUNT)
# (apiGroup, resource, verb): one Role rule is the product of its three lists.
Grant = tuple[str, str, str]
LEAST_PRIVILEGE: dict[str, set[Grant]] = {
    # the emissary executor reports task outputs (argo-workflows docs/workflow-rbac.md)
    kit.WORKFLOW_SERVICE_ACCOUNT: {
        ("argoproj.io", "workflowtaskresults", "create"),
        ("argoproj.io", "workflowtaskresults", "patch"),
    },
    # argo submit creates, the trigger lists by label, the CLI gets the template (events.md §5)
    kit.SENSOR_SERVICE_ACCOUNT: {
        ("argoproj.io", "workflows", "create"),
        ("argoproj.io", "workflows", "list"),
        ("argoproj.io", "workflowtemplates", "get"),
    },
    # a resource template creates the run, plus the executor's minimum (reconciler.md §3)
    kit.RECONCILER_SERVICE_ACCOUNT: {
        ("argoproj.io", "workflows", "create"),
        ("argoproj.io", "workflowtaskresults", "create"),
        ("argoproj.io", "workflowtaskresults", "patch"),
    },
}
KIT_OBJECTS = {("EventSource", kit.EVENT_SOURCE)} | {
    (kind, account) for account in ACCOUNTS for kind in ("ServiceAccount", "Role", "RoleBinding")}
ANNOTATIONS = {value for name, value in vars(kit).items() if name.endswith("_ANNOTATION")}
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _resource_paths(directory: Path) -> list[Path]:
    """The files and directories a kustomization.yaml lists under `resources`, resolved."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return [(directory / entry).resolve() for entry in kustomization.get("resources", [])]


def _base_sources() -> list[dict[str, Any]]:
    """The base's objects as written, read without kustomize."""
    return [doc for path in _resource_paths(BASE) for doc in _documents(path)]


@functools.cache
def _kustomize(directory: Path) -> tuple[dict[str, Any], ...]:
    assert KUBECTL is not None
    done = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc is not None)


def _only(objects: list[dict[str, Any]] | tuple[dict[str, Any], ...], kind: str,
          name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def _grants(role: dict[str, Any]) -> set[Grant]:
    grants: set[Grant] = set()
    for rule in role["rules"]:
        # resourceNames would only narrow a rule; anything else (nonResourceURLs) has no place in
        # a Role, and an unknown key would hide a grant from this count
        assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
        grants |= {(group, resource, verb) for group in rule["apiGroups"]
                   for resource in rule["resources"] for verb in rule["verbs"]}
    return grants


def _lakefs_links() -> list[dict[str, Any]]:
    links = yaml.safe_load(_documents(LINKS_PATCH)[0]["data"]["links"])
    assert isinstance(links, list)
    return links


# What the base holds, read from its files.

def test_base_lists_exactly_the_kit_objects() -> None:
    assert {(o["kind"], o["metadata"]["name"]) for o in _base_sources()} == KIT_OBJECTS


@pytest.mark.parametrize("account", ACCOUNTS)
def test_role_grants_exactly_least_privilege(account: str) -> None:
    role = _only(_base_sources(), "Role", account)
    assert _grants(role) == LEAST_PRIVILEGE[account]


@pytest.mark.parametrize("account", ACCOUNTS)
def test_rolebinding_binds_its_role_to_its_service_account_only(account: str) -> None:
    binding = _only(_base_sources(), "RoleBinding", account)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account}
    # no namespace: the binding's own, wherever the kit is applied (Kubernetes RBAC)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account}]


def test_no_object_names_a_namespace_so_kubectl_n_places_the_kit() -> None:
    assert [o["metadata"]["name"] for o in _base_sources() if "namespace" in o["metadata"]] == []


def test_eventsource_serves_the_webhook_compiled_graphs_post_to() -> None:
    source = _only(_base_sources(), "EventSource", kit.EVENT_SOURCE)["spec"]
    assert source["webhook"] == {kit.EVENT_NAME: {
        "port": str(kit.WEBHOOK_PORT),  # the EventSource field is a string
        "endpoint": kit.WEBHOOK_ENDPOINT,
        "method": "POST",
        "authSecret": {"name": kit.WEBHOOK_SECRET, "key": kit.WEBHOOK_SECRET_KEY},
        "maxPayloadSize": kit.WEBHOOK_MAX_PAYLOAD,
    }}
    # spec.service makes the controller create kit.EVENT_SOURCE_SERVICE on the same port
    assert source["service"]["ports"] == [
        {"name": "http", "port": kit.WEBHOOK_PORT, "targetPort": kit.WEBHOOK_PORT}]
    assert source["replicas"] >= 2  # webhook sources are active-active; one pod is a gap


def test_eventsource_is_the_one_dsc_compile_trigger_emits() -> None:
    # both may be applied to one namespace; if they differ, each apply undoes the other
    compiled = event_source(Config())
    kit_source = _only(_base_sources(), "EventSource", kit.EVENT_SOURCE)
    assert compiled["spec"] == kit_source["spec"]
    assert compiled["metadata"] == {"name": kit.EVENT_SOURCE, "labels": PART_OF}


@needs_shared
def test_eventsource_passes_the_argo_events_validator() -> None:
    (eventsource,) = [path for path in _resource_paths(BASE)
                      if any(doc["kind"] == "EventSource" for doc in _documents(path))]
    done = subprocess.run([sys.executable, str(EVENTS_VALIDATOR), "--strict", "--semantic",
                           "--crd", str(eventsource)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"ok   {eventsource}[0] EventSource {kit.EVENT_SOURCE}"], \
        done.stdout


# Secrets: templates only.

def test_kit_applies_no_secret() -> None:
    assert [o["metadata"]["name"] for o in _base_sources() if o["kind"] == "Secret"] == []
    listed = _resource_paths(MANIFESTS) + _resource_paths(BASE) + _resource_paths(OVERLAY)
    assert [p for p in listed if p.is_relative_to(SECRETS)] == []


def test_lakefs_credentials_template_has_the_secret_compiled_pods_read() -> None:
    (secret,) = _documents(LAKEFS_CREDENTIALS)
    lakefs = LakeFS()
    assert (secret["kind"], secret["metadata"]["name"]) == ("Secret", lakefs.secret)
    assert set(secret["stringData"]) == set(dataclasses.asdict(lakefs.secret_keys).values())


def test_webhook_token_template_has_the_secret_the_eventsource_reads() -> None:
    (secret,) = _documents(WEBHOOK_TOKEN)
    assert (secret["kind"], secret["metadata"]["name"]) == ("Secret", kit.WEBHOOK_SECRET)
    assert set(secret["stringData"]) == {kit.WEBHOOK_SECRET_KEY}


@pytest.mark.parametrize("template", [LAKEFS_CREDENTIALS, WEBHOOK_TOKEN], ids=lambda p: p.name)
def test_secret_template_says_how_to_create_the_real_secret(template: Path) -> None:
    (secret,) = _documents(template)
    text = template.read_text()
    assert f"kubectl -n dsc create secret generic {secret['metadata']['name']}" in text
    for key in secret["stringData"]:
        assert f"--from-literal={key}=" in text, key


def test_webhook_token_template_ties_the_token_to_the_lakefs_environment() -> None:
    text = WEBHOOK_TOKEN.read_text()
    assert "openssl rand" in text
    assert f"{kit.TOKEN_ENV}=" in text


@pytest.mark.parametrize("template", [LAKEFS_CREDENTIALS, WEBHOOK_TOKEN], ids=lambda p: p.name)
def test_secret_template_holds_only_placeholders(template: Path) -> None:
    (secret,) = _documents(template)
    assert "data" not in secret  # base64 would hide what the value is
    for key, value in secret["stringData"].items():
        if value.startswith("REPLACE-"):
            continue
        assert urlsplit(value).hostname == "lakefs.example.com", f"{key}: {value!r}"
    for value in secret["stringData"].values():
        # a run of key-like characters (an access key, base64, hex) is never a placeholder
        assert not re.search(r"[A-Za-z0-9+/=]{16,}", value), value


# The Argo UI links patch.

def test_links_patch_sets_only_the_controller_configmap_links() -> None:
    (patch,) = _documents(LINKS_PATCH)
    assert (patch["kind"], patch["metadata"]) == (
        "ConfigMap", {"name": "workflow-controller-configmap"})
    assert set(patch["data"]) == {"links"}


def test_links_are_workflow_buttons_to_the_lakefs_ui() -> None:
    links = _lakefs_links()
    assert links, "no links"
    for link in links:
        assert set(link) == {"name", "scope", "url"}, link
        assert link["scope"] == "workflow"
        assert link["url"].startswith(f"{LAKEFS_UI_PLACEHOLDER}/repositories/"), link["url"]
    assert len({link["name"] for link in links}) == len(links), "two links share a name"


def test_links_read_only_the_annotations_dsc_writes() -> None:
    used = {match for link in _lakefs_links() for match in PLACEHOLDER.findall(link["url"])}
    # without the `workflow.` prefix, keys with dots never resolve (argo-workflows links.tsx)
    assert used <= {f"workflow.metadata.annotations.{a}" for a in ANNOTATIONS}, used


def test_links_open_the_output_commits_and_the_triggering_commit() -> None:
    def annotation(key: str) -> str:
        return "${workflow.metadata.annotations." + key + "}"

    assert {link["url"].removeprefix(LAKEFS_UI_PLACEHOLDER) for link in _lakefs_links()} == {
        f"/repositories/{annotation(kit.OUTPUT_REPO_ANNOTATION)}/commits"
        f"?ref={annotation(kit.OUTPUT_BRANCH_ANNOTATION)}",
        f"/repositories/{annotation(kit.TRIGGER_REPO_ANNOTATION)}/commits/"
        f"{annotation(kit.TRIGGER_COMMIT_ANNOTATION)}",
    }


# What kustomize builds.

@needs_kubectl
def test_kubectl_apply_k_manifests_installs_the_base() -> None:
    built = _kustomize(MANIFESTS)
    assert built == _kustomize(BASE)
    assert {(o["kind"], o["metadata"]["name"]) for o in built} == KIT_OBJECTS
    for obj in built:
        assert obj["metadata"]["labels"] == PART_OF, obj["metadata"]
        assert "namespace" not in obj["metadata"], obj["metadata"]


@needs_kubectl
def test_overlay_puts_every_object_and_subject_in_its_namespace() -> None:
    built = _kustomize(OVERLAY)
    assert {(o["kind"], o["metadata"]["name"]) for o in built} == KIT_OBJECTS
    for obj in built:
        assert obj["metadata"].get("namespace") == OVERLAY_NAMESPACE, obj["metadata"]
        for subject in obj.get("subjects", []):
            assert subject.get("namespace") == OVERLAY_NAMESPACE, subject


@needs_kubectl
def test_overlay_changes_nothing_but_the_namespace() -> None:
    def without_namespace(obj: dict[str, Any]) -> dict[str, Any]:
        obj = {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "namespace"}}
        if "subjects" in obj:
            obj["subjects"] = [{k: v for k, v in s.items() if k != "namespace"}
                               for s in obj["subjects"]]
        return obj

    assert [without_namespace(o) for o in _kustomize(OVERLAY)] == list(_kustomize(BASE))
