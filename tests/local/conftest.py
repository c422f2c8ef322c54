"""The lakeFS stand-in's fixtures, for the runtime verbs' tests."""

from tests.lakefs_standin.fixtures import lakefs_client, lakefs_standin

__all__ = ["lakefs_client", "lakefs_standin"]
