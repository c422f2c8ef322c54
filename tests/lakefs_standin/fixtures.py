"""Pytest fixtures: a lakeFS stand-in per test, and a lakefs-sdk client pointed at it.

Import them into a test module or a conftest: `from tests.lakefs_standin import lakefs_standin`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .server import LakeFSStandIn

if TYPE_CHECKING:
    from lakefs_sdk.client import LakeFSClient

ROOT = Path(__file__).resolve().parents[2]
SWAGGER = ROOT.parent / "shared" / "reference" / "lakefs" / "swagger.yml"


@contextmanager
def serving(swagger: Path = SWAGGER, **options: Any) -> Iterator[LakeFSStandIn]:
    """Run a stand-in for the block; afterwards, any contract violation, request the stand-in
    does not model, crash, or fault that never fired fails the test (`pytest.fail`)."""
    if not swagger.is_file():
        pytest.skip(f"{swagger} is absent (the reference material lives beside the "
                    "repository; CI always has it)")
    standin = LakeFSStandIn(swagger, **options).start()
    try:
        yield standin
    finally:
        standin.stop()
    problems = standin.problems()
    if problems:
        pytest.fail("lakeFS stand-in:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def lakefs_standin() -> Iterator[LakeFSStandIn]:
    """A started stand-in, checked at teardown (see `serving`)."""
    with serving() as standin:
        yield standin


def make_client(standin: LakeFSStandIn, **configuration: Any) -> LakeFSClient:
    """A lakefs-sdk client for the stand-in, configured as dsc configures it (basic auth)."""
    import lakefs_sdk
    from lakefs_sdk.client import LakeFSClient

    config = lakefs_sdk.Configuration(host=standin.endpoint, username=standin.access_key_id,
                                      password=standin.secret_access_key)
    for name, value in configuration.items():
        setattr(config, name, value)
    return LakeFSClient(config)


@pytest.fixture
def lakefs_client(lakefs_standin: LakeFSStandIn) -> LakeFSClient:
    return make_client(lakefs_standin)
