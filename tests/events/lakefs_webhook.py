"""What lakeFS's webhook hook sends: recorded EventInfo bodies and the request headers.

The bodies in `payloads/` are `json.Marshal(EventInfo)` output (lakeFS pkg/actions/event.go;
see payloads/README.md). lakeFS POSTs those bytes as they are: compact, HTML-escaped, no
trailing newline (pkg/actions/webhook.go Run).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

PAYLOADS = Path(__file__).resolve().parent / "payloads"


def lakefs_payload(name: str) -> bytes:
    """The body lakeFS sends for `payloads/<name>.json` (the file's final newline removed)."""
    return (PAYLOADS / f"{name}.json").read_bytes().removesuffix(b"\n")


def payload_names() -> list[str]:
    return sorted(path.stem for path in PAYLOADS.glob("*.json"))


def lakefs_request_headers(body: bytes, action_headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The header lines of lakeFS's POST, in the order Go's client writes them.

    `action_headers` are the action file's `properties.headers` after `{{ ENV.X }}`
    substitution (e.g. `{"Authorization": "Bearer <token>"}`); lakeFS adds Content-Type, and
    Go's http.Client adds Host, User-Agent, Content-Length and (Transport) Accept-Encoding.
    """
    headers = [("Host", "dsc-lakefs-eventsource-svc.dsc.svc.cluster.local:12000"),
               ("User-Agent", "Go-http-client/1.1"),
               ("Content-Length", str(len(body)))]
    headers += list(action_headers.items())
    headers += [("Content-Type", "application/json"), ("Accept-Encoding", "gzip")]
    return headers
