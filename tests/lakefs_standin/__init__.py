"""A lakeFS stand-in for tests: lakeFS's API on 127.0.0.1, checked against its swagger.yml.

    # conftest.py of a test folder
    from tests.lakefs_standin.fixtures import lakefs_client, lakefs_standin

    # a test
    def test_publish(lakefs_standin, lakefs_client):
        lakefs_standin.seed("images", {"raw/a.png": b"..."})
        before = lakefs_standin.branch_state("images", "main")
        lakefs_standin.faults.add("mergeIntoBranch", "reset", apply=True)
        ...
        assert lakefs_standin.branch_state("images", "main") == before

The fixtures fail the test at teardown if any request or response broke the contract, if the
stand-in met a request it does not model, or if a declared fault never fired.
"""

from .faults import Fault, FaultPlan, RequestInfo
from .fixtures import SWAGGER, lakefs_client, lakefs_standin, make_client, serving
from .server import LakeFSStandIn, RequestRecord, Violation
from .state import BranchState, CommitInfo, RepositoryState, Snapshot

__all__ = [
    "SWAGGER",
    "BranchState",
    "CommitInfo",
    "Fault",
    "FaultPlan",
    "LakeFSStandIn",
    "RepositoryState",
    "RequestInfo",
    "RequestRecord",
    "Snapshot",
    "Violation",
    "lakefs_client",
    "lakefs_standin",
    "make_client",
    "serving",
]
