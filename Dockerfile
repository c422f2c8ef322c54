# syntax=docker/dockerfile:1
# The dsc runtime image: the `dsc runtime <verb>` steps of compiled workflows run in it
# (README "The runtime image"). Compiled manifests give its containers `command: [dsc]` and
# `args: [runtime, <verb>, ...]`; the entrypoint is `dsc` too, for `docker run`.
#
#   docker build -t registry.example/dsc-runtime:0.1.0 --build-arg VERSION=0.1.0 .
#
# Pin the base by digest for a reproducible build:
#   --build-arg PYTHON_IMAGE=python:3.12-slim@sha256:<digest>
ARG PYTHON_IMAGE=python:3.12-slim

# --- builder: wheels of dsc and of every dependency ------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# What the build backend (hatchling, pyproject.toml) reads: the package, the schemas it ships
# as package data, and the readme the metadata names. Dependencies first, so changing the
# code does not rebuild them.
COPY pyproject.toml README.md ./
COPY schemas/ schemas/
COPY compiler/__init__.py compiler/
RUN pip wheel --wheel-dir /deps . \
    && rm /deps/dsc-*.whl
COPY compiler/ compiler/
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && mv /deps/*.whl /wheels/

# --- runtime: the wheels installed, nothing else -----------------------------------------------
FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="dsc-runtime" \
      org.opencontainers.image.description="dsc: Pachyderm-style pipelines on Argo Workflows and lakeFS; runs the dsc runtime steps" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
# The wheels are bind-mounted from the builder for this one step, so they never become a
# layer of the image; --no-index: nothing but them is installed.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels --root-user-action=ignore dsc \
    && groupadd --gid 65532 dsc \
    && useradd --uid 65532 --gid 65532 --create-home --home-dir /home/dsc \
       --shell /usr/sbin/nologin dsc \
    && install -d -o 65532 -g 65532 -m 0755 /pfs
# Pods mount an emptyDir (world-writable) over /pfs; the directory in the image only serves
# `docker run` without one. Verbs write their outputs to /tmp/dsc (/tmp is 1777).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/dsc
# Numeric, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 65532:65532
WORKDIR /home/dsc
ENTRYPOINT ["dsc"]
CMD ["--help"]
