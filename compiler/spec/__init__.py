"""Pipeline specs: loading with positions, normalising to the typed model, and checking."""
