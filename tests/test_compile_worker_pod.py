"""What a spec's `transform` becomes in the worker pod's user container: the secrets it
reads (as variables or as files), by reference to the Kubernetes Secret only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.test_compile_graph import documents, spec, templates, write


def user_container(tmp_path: Path, top: dict[str, Any] | None = None, **transform: Any
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The user container of a one-pipeline graph, and its worker template."""
    s = spec("solo", "raw", **(top or {}))
    s["transform"].update(transform)
    docs = documents(write(tmp_path, s))
    worker = templates(docs[0])["solo-worker"]
    (user,) = [c for c in worker["containerSet"]["containers"] if c["name"] == "user"]
    return user, worker


def test_a_secret_key_given_as_a_variable_is_read_from_the_secret(tmp_path: Path) -> None:
    user, _ = user_container(tmp_path, secrets=[
        {"name": "db", "key": "password", "env_var": "DB_PASSWORD"},
        {"name": "api", "key": "token", "env_var": "API_TOKEN"}])
    env = {e["name"]: e for e in user["env"]}
    assert env["DB_PASSWORD"] == {"name": "DB_PASSWORD", "valueFrom": {
        "secretKeyRef": {"name": "db", "key": "password"}}}
    assert env["API_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "api", "key": "token"}}


def test_a_secret_given_a_mount_path_is_mounted_read_only_there(tmp_path: Path) -> None:
    user, worker = user_container(tmp_path, secrets=[
        {"name": "tls", "mount_path": "/etc/tls"}])
    (mount,) = [m for m in user["volumeMounts"] if m["mountPath"] == "/etc/tls"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in worker["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"] == {"secretName": "tls"}
    assert not any(e.get("valueFrom") for e in user.get("env", []))


def test_pod_spec_compiles_to_the_same_patch_whatever_its_key_order(tmp_path: Path) -> None:
    """The manifests of a spec do not depend on how its `pod_spec` JSON was written: a
    reformatted spec gives the same WorkflowTemplate (and the same run name)."""
    patches = []
    for i, text in enumerate(['{"hostNetwork": true, "dnsPolicy": "Default"}',
                              '{"dnsPolicy": "Default", "hostNetwork": true}']):
        _, worker = user_container(tmp_path / str(i), {"pod_spec": text})
        patches.append(worker["podSpecPatch"])
    assert patches[0] == patches[1] == '{"dnsPolicy": "Default", "hostNetwork": true}'
