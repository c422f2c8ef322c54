"""What a spec's `transform` becomes in the worker pod's user container: the secrets it
reads (as variables or as files), by reference to the Kubernetes Secret only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.test_compile_graph import documents, spec, templates, write


def user_container(tmp_path: Path, **transform: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The user container of a one-pipeline graph, and its worker template."""
    s = spec("solo", "raw")
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
