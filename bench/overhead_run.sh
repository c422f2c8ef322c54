#!/bin/sh
# One `dsc run -j 1` of a one-pipeline graph whose command is `true`, over N one-line files
# (one datum each), on a fresh data directory, from /var/tmp. Time it as a whole process:
#
#     bench/overhead_run.sh SRC [N]     # SRC: a checkout whose compiler/ is imported
#
# (used for issue 15's per-datum overhead, against a worktree of an older commit as SRC).
set -eu
src=$(cd "$1" && pwd)
n=${2:-1000}
work=$(mktemp -d /var/tmp/dsc-overhead.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data/files" "$work/specs"
i=0
while [ "$i" -lt "$n" ]; do
    echo "$i" > "$work/data/files/f$i"
    i=$((i + 1))
done
cat > "$work/specs/empty.json" <<'SPEC'
{"pipeline": {"name": "empty"}, "transform": {"image": "alpine:3.20", "cmd": ["true"]},
 "input": {"pfs": {"repo": "files", "glob": "/*"}}}
SPEC
cd "$work"
PYTHONPATH="$src" "${PYTHON:-$src/.venv/bin/python}" -m compiler run specs --data data -j 1 \
    >/dev/null 2>&1
