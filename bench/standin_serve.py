"""Serve the lakeFS stand-in (tests/lakefs_standin) until killed, for benchmarks that time
whole `dsc` commands against it.

    .venv/bin/python bench/standin_serve.py ENV_FILE [--seed REPO=N]... [--silent]

writes `LAKEFS_ENDPOINT=...`, `LAKEFS_ACCESS_KEY_ID=...` and `LAKEFS_SECRET_ACCESS_KEY=...`
lines to ENV_FILE once it answers (source it with `set -a; . ENV_FILE; set +a`), seeding each
REPO with N small files. `--silent` serves an endpoint that accepts connections and never
answers instead (ENV_FILE then names it, with made-up keys).
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from harness import stop_event, use_checkout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env_file", type=Path)
    parser.add_argument("--seed", action="append", default=[], metavar="REPO=N")
    parser.add_argument("--silent", action="store_true")
    args = parser.parse_args()
    stop = stop_event()
    if args.silent:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        server.settimeout(0.2)
        args.env_file.write_text(f"LAKEFS_ENDPOINT=http://127.0.0.1:{server.getsockname()[1]}\n"
                                 "LAKEFS_ACCESS_KEY_ID=AKIABENCH\n"
                                 "LAKEFS_SECRET_ACCESS_KEY=bench-secret\n")
        held = []
        while not stop.is_set():
            try:
                held.append(server.accept()[0])  # accepted, never answered
            except OSError:
                continue
        return 0
    use_checkout()
    from tests.lakefs_standin.fixtures import SWAGGER
    from tests.lakefs_standin.server import LakeFSStandIn

    with LakeFSStandIn(SWAGGER) as standin:
        for item in args.seed:
            repo, _, count = item.partition("=")
            standin.seed(repo, {f"{i:06d}.txt": b"%d\n" % i for i in range(int(count or 1))})
        args.env_file.write_text(f"LAKEFS_ENDPOINT={standin.endpoint}\n"
                                 f"LAKEFS_ACCESS_KEY_ID={standin.access_key_id}\n"
                                 f"LAKEFS_SECRET_ACCESS_KEY={standin.secret_access_key}\n")
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
