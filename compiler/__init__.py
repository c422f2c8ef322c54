"""dsc: compile Pachyderm-style pipeline specs into Argo Workflows backed by lakeFS."""

__version__ = "0.1.0"
