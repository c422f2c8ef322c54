#!/bin/sh
# The host runner's process alone, started N times by a shell loop: `new` is today's
# (setpriv --pdeathsig, unshare with a PID namespace and its own /proc, two mounts, `true`),
# `old` the one before issue 19 (a mount namespace only). Needs root (or user namespaces).
#
#     bench/runner_floor.sh new|old [N]
set -eu
work=$(mktemp -d /var/tmp/dsc-floor.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/pfs" "$work/tmp"
i=0
while [ "$i" -lt "${2:-1000}" ]; do
    if [ "$1" = new ]; then
        setpriv --pdeathsig KILL unshare --mount --propagation private --pid --fork \
            --mount-proc --kill-child /bin/sh -c \
            'mount --bind "$1" /pfs && mount --rbind "$2" /tmp && cd "$3" && exec true' \
            x "$work/pfs" "$work/tmp" "$work"
    else
        unshare --mount --propagation private /bin/sh -c \
            'cd "$3" && mount --bind "$1" /pfs && mount --bind "$2" /tmp && exec true' \
            x "$work/pfs" "$work/tmp" "$work"
    fi
    i=$((i + 1))
done
