#!/bin/sh
# Issue 17's local overhead: `dsc run` of a pipeline that copies each of N tiny files (one
# datum per file, glob `/*`, `cp /pfs/files/* /pfs/out/`) with the directory store and the
# host runner, against the same copies by a shell loop (the floor: a `sh -c` and a `cp` per
# file, as the worker's loop forks for each datum). Needs what the host runner needs.
#
#     bench/workers_local.sh setup DIR N    # DIR/data/files/f0..f<N-1>, DIR/specs/cp.json
#     bench/workers_local.sh dsc DIR        # one `dsc run` on a fresh store (DIR/data/.dsc
#                                           # and DIR/data/copy removed first)
#     bench/workers_local.sh floor DIR      # the shell loop (DIR/out removed first)
#
# DIR must not be under /tmp (the host runner covers /tmp with a private directory before it
# enters the working directory); /var/tmp will do. DSC names the dsc command (default
# `dsc`; an absolute path, the script changes directory).
set -eu
mode=$1 dir=$2
case $mode in
setup)
    n=$3
    mkdir -p "$dir/data/files" "$dir/specs"
    cd "$dir/data/files"
    awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) { f = "f" i; print i > f; close(f) } }'
    cat > "$dir/specs/cp.json" <<'SPEC'
{"pipeline": {"name": "copy"},
 "transform": {"image": "alpine:3.20", "cmd": ["sh", "-c", "cp /pfs/files/* /pfs/out/"]},
 "input": {"pfs": {"repo": "files", "glob": "/*"}}}
SPEC
    ;;
dsc)
    cd "$dir"
    rm -rf data/.dsc data/copy
    exec ${DSC:-dsc} run specs --data data
    ;;
floor)
    cd "$dir"
    rm -rf out
    mkdir out
    for f in data/files/*; do
        sh -c 'cp "$1" out/' _ "$f"
    done
    ;;
*)
    echo "usage: $0 setup DIR N | dsc DIR | floor DIR" >&2
    exit 2
    ;;
esac
