"""The lakeFS stand-in's fixtures, for the adapter's tests."""

from tests.lakefs_standin.fixtures import lakefs_client, lakefs_standin

__all__ = ["lakefs_client", "lakefs_standin"]
