"""Datum planning: globs and the datum algebra (pure, no I/O)."""
