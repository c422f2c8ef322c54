"""lakeFS access for dsc: the adapter in `client.py` (imports lakefs-sdk lazily)."""
