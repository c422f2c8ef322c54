#!/bin/sh
# dsc's CI/CD loop for any CI, in POSIX sh (README, "CI/CD"); github-actions.yml beside it is
# the same flow on GitHub Actions.
#
#   dsc-ci.sh lint     on a change request: check the specs; exit 1 on errors
#   dsc-ci.sh deploy   on the main branch: build and push the image, compile the graph with the
#                      image pinned by the digest the registry returned, apply the manifests
#
# Settings, from the environment (defaults in brackets):
#   IMAGE_REPO     deploy: the repository the image is pushed to, without tag or digest
#                  (registry.example/iris); required
#   SPECS          the graph: one directory of specs             [examples/hyperparameter]
#   BUILD_CONTEXT  the image's build context (its Dockerfile)    [$SPECS]
#   TAG            the tag pushed, for people; the manifests name the digest
#                  [git rev-parse HEAD]
#   IMAGE_VALUE    the template value set to REPO@sha256:...     [image]
#   SPEC_ARGS      options for both dsc lint and dsc compile, e.g. "--values deploy/values.yaml"
#   LINT_ARGS      more options for dsc lint, e.g. "-o json" or "--strict"
#   COMPILE_ARGS   more options for dsc compile; set it empty to leave out the triggers
#                  [--trigger]
#   MANIFESTS      where the compiled manifests are written      [dsc-manifests.yaml]
#   DSC            the dsc command                               [dsc]
#   BUILD_CMD      builds and pushes the image: run as `$BUILD_CMD REPO:TAG CONTEXT`, its last
#                  line of output is the pushed image's digest, sha256:<64 hex>
#                  [docker buildx build --push, the digest read from its --metadata-file]
#   APPLY_CMD      applies the manifests: run as `$APPLY_CMD FILE` [kubectl apply -f]
# Commands are split at spaces (DSC="python3 -m compiler" works); paths in them cannot hold any.
#
# Exit status: 0 applied (or linted clean), 1 a step failed (named on stderr; nothing after it
# ran: a failed build compiles and applies nothing), 2 a setting is missing or malformed.
set -eu
set -f  # the *_ARGS and commands are split at spaces, never expanded as globs

SPECS=${SPECS:-examples/hyperparameter}
BUILD_CONTEXT=${BUILD_CONTEXT:-$SPECS}
IMAGE_VALUE=${IMAGE_VALUE:-image}
SPEC_ARGS=${SPEC_ARGS:-}
LINT_ARGS=${LINT_ARGS:-}
COMPILE_ARGS=${COMPILE_ARGS---trigger}
MANIFESTS=${MANIFESTS:-dsc-manifests.yaml}
DSC=${DSC:-dsc}
BUILD_CMD=${BUILD_CMD:-docker_buildx_push}
APPLY_CMD=${APPLY_CMD:-kubectl apply -f}

say() { printf 'dsc-ci: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
usage() { say "$*"; exit 2; }

# The default BUILD_CMD. The digest is the one the registry stores the pushed manifest under
# (buildx's `containerimage.digest`, which docker/build-push-action outputs as `digest`), not
# the image ID `--iidfile` writes: that names the image's config, which no registry serves as
# REPO@sha256:... . SOURCE_DATE_EPOCH fixes the image's timestamps and rewrite-timestamp the
# files' (a fresh checkout gives every file a new mtime), and no provenance attestation is
# attached (it would differ per build): the same code and base image give the same digest,
# so rebuilding unchanged code does not reprocess every datum it runs on (BuildKit's
# docs/build-repro.md).
# Called in a command substitution, where `set -e` does not apply, so every step checks its
# own status.
docker_buildx_push() {
    meta=$(mktemp) || return 1
    SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0} \
        docker buildx build --tag "$1" --provenance=false \
        --output "type=image,name=$1,push=true,rewrite-timestamp=true" \
        --metadata-file "$meta" "$2" >&2 || {
        rm -f "$meta"; return 1; }
    sed -n 's/.*"containerimage\.digest": *"\(sha256:[0-9a-f]*\)".*/\1/p' "$meta"
    rm -f "$meta"
}

lint() {
    # shellcheck disable=SC2086  # the *_ARGS and commands are split at spaces on purpose
    $DSC lint $SPEC_ARGS $LINT_ARGS "$SPECS" || {
        status=$?; say "dsc lint $SPECS: exit $status"; exit "$status"; }
}

deploy() {
    [ -n "${IMAGE_REPO:-}" ] || usage "set IMAGE_REPO to the repository the image is pushed" \
        "to, without tag or digest (registry.example/iris)"
    case ${IMAGE_REPO##*/} in
        *:* | *@*) usage "IMAGE_REPO=$IMAGE_REPO: give the repository without a tag or digest;" \
            "the tag is TAG, the digest comes from the build" ;;
    esac
    if [ -z "${TAG:-}" ]; then
        TAG=$(git rev-parse HEAD 2>/dev/null) || usage "not in a git checkout: set TAG to the" \
            "tag to push"
    fi
    # A manifests file left by an earlier run must never be applied by this one.
    rm -f "$MANIFESTS"

    say "building $BUILD_CONTEXT and pushing $IMAGE_REPO:$TAG"
    # shellcheck disable=SC2086
    out=$($BUILD_CMD "$IMAGE_REPO:$TAG" "$BUILD_CONTEXT") ||
        fail "build and push failed (exit $?): nothing was compiled or applied"
    digest=$(printf '%s\n' "$out" | tail -n 1)
    hex=${digest#sha256:}
    case $hex in
        "$digest" | *[!0-9a-f]*) hex= ;;
    esac
    [ ${#hex} -eq 64 ] || fail "the build's last line of output is '$digest', not the pushed" \
        "image's digest (sha256:<64 hex>): nothing was compiled or applied"
    image=$IMAGE_REPO@$digest

    say "compiling $SPECS with $IMAGE_VALUE=$image"
    # Into a file, not a pipe into the apply: POSIX sh has no pipefail, and a compile that
    # fails half-way must apply nothing.
    # shellcheck disable=SC2086
    $DSC compile $SPEC_ARGS $COMPILE_ARGS --set "$IMAGE_VALUE=$image" "$SPECS" >"$MANIFESTS" || {
        status=$?; rm -f "$MANIFESTS"
        fail "dsc compile failed (exit $status): nothing was applied"; }

    say "applying $MANIFESTS"
    # shellcheck disable=SC2086
    $APPLY_CMD "$MANIFESTS" || fail "apply failed (exit $?); the manifests are in $MANIFESTS"
    say "deployed $image"
}

case ${1:-} in
    lint) lint ;;
    deploy) deploy ;;
    *) usage "usage: dsc-ci.sh lint|deploy (settings from the environment: see the top of" \
        "this script)" ;;
esac
