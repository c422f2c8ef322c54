"""A model of Argo Events (webhook EventSource, Sensor, argoWorkflow trigger), lakeFS payloads."""
