"""Names across the three systems: Pachyderm names, lakeFS repos and branches, Kubernetes.

Lives in `spec` (not `argo`) because lint must know a name cannot map before anything is
compiled; the compiler imports the same sanitisers, so both agree by construction.
"""

from __future__ import annotations

import re

# Pachyderm (`ancestry.ValidateName` + api_server checks): alphanumerics, `_`, `-`, <= 63.
PACHYDERM_NAME = re.compile(r"[a-zA-Z0-9_-]+")
PACHYDERM_NAME_MAX = 63
# lakeFS swagger.yml: RepositoryCreation.name and Branch ids.
LAKEFS_REPO = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")
LAKEFS_BRANCH = re.compile(r"\w[-\w]*")
_NOT_REPO_CHAR = re.compile(r"[^a-z0-9-]+")
_NOT_K8S_CHAR = re.compile(r"[^a-z0-9-]+")


def lakefs_repo_name(name: str) -> str:
    """The lakeFS repository a Pachyderm repo maps to: lowercase, `_` and other characters
    lakeFS refuses become `-` (`raw_data` -> `raw-data`), and a name shorter than lakeFS's
    three characters gets `-repo` (`in` -> `in-repo`). Deterministic, so lint, compile and the
    runtime agree; collisions are reported by lint."""
    candidate = _NOT_REPO_CHAR.sub("-", name.lower()).lstrip("-")
    if len(candidate) < 3:
        candidate = (candidate + "-repo").lstrip("-")
    return candidate[:63]


def padded_repo_name(name: str) -> bool:
    """True when the mapping of `name` is more than a change of alphabet (worth a warning)."""
    return len(_NOT_REPO_CHAR.sub("-", name.lower()).lstrip("-")) < 3


def k8s_name(name: str) -> str:
    """A DNS-1123 label stem for `name`: lowercase `[a-z0-9-]`, starting with a letter.

    Truncation to a length budget, with a hash suffix, is the Argo naming layer's job; this
    only fixes the alphabet, deterministically, so collisions can be found early.
    """
    candidate = _NOT_K8S_CHAR.sub("-", name.lower())
    candidate = re.sub("-{2,}", "-", candidate).strip("-")
    if not candidate[:1].isalpha():
        candidate = "p-" + candidate if candidate else "p"
    return candidate


def is_lakefs_branch(name: str) -> bool:
    return bool(LAKEFS_BRANCH.fullmatch(name))
