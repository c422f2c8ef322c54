"""The stand-in's fixtures for this folder; another folder's conftest.py imports them alike."""

from tests.lakefs_standin.fixtures import lakefs_client, lakefs_standin

__all__ = ["lakefs_client", "lakefs_standin"]
