"""Spec graph -> Argo Workflows manifests (built with hera, which is imported only here)."""
