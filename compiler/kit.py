"""Names shared by the cluster kit (`manifests/`) and what `dsc compile --trigger` emits.

The kit is installed once per namespace (`kubectl apply -k manifests/`); compiled graphs refer
to its objects by these names, and tests hold the two to the same values.
"""

from __future__ import annotations

# Service accounts the kit creates, each with a least-privilege Role.
WORKFLOW_SERVICE_ACCOUNT = "dsc-workflow"  # run pods (emissary: workflowtaskresults)
SENSOR_SERVICE_ACCOUNT = "dsc-sensor"  # submits runs (argo submit in the Sensor pod)
RECONCILER_SERVICE_ACCOUNT = "dsc-reconciler"  # the reconciler CronWorkflow's pods

# The webhook EventSource every lakeFS action posts to (one per namespace).
EVENT_SOURCE = "dsc-lakefs"
EVENT_NAME = "lakefs"  # the key under spec.webhook; Sensors name it as eventName
WEBHOOK_PORT = 12000
WEBHOOK_ENDPOINT = "/lakefs"
WEBHOOK_MAX_PAYLOAD = 1024 * 1024
# Argo Events creates `<EventSource>-eventsource-svc` when spec.service has ports.
EVENT_SOURCE_SERVICE = f"{EVENT_SOURCE}-eventsource-svc"
WEBHOOK_SECRET = "dsc-lakefs-webhook"  # key `token`: the bearer token lakeFS sends
WEBHOOK_SECRET_KEY = "token"
# lakeFS substitutes `{{ ENV.X }}` only for variables starting with its actions.env.prefix,
# `LAKEFSACTION_` by default (not `LAKEFSACTIONS_`, as one docs page says).
TOKEN_ENV = "LAKEFSACTION_DSC_ARGO_EVENTS_TOKEN"
# Each graph's action file sends this header, so a graph's Sensor acts only on the events its
# own action posted, even when several graphs track one branch.
GRAPH_HEADER = "X-Dsc-Graph"

# Labels and annotations of runs (the Argo UI links in manifests/ read the annotations).
STARTED_BY_LABEL = "dsc.io/started-by"
TRIGGER_REPO_ANNOTATION = "dsc.io/trigger-repo"
TRIGGER_BRANCH_ANNOTATION = "dsc.io/trigger-branch"
TRIGGER_COMMIT_ANNOTATION = "dsc.io/trigger-commit"
OUTPUT_REPO_ANNOTATION = "dsc.io/output-repo"
OUTPUT_BRANCH_ANNOTATION = "dsc.io/output-branch"

# The WorkflowTemplate parameters of a triggered run, in this order (the Sensor writes them by
# index).
TRIGGER_PARAMETERS = ("trigger-repo", "trigger-branch", "trigger-commit", "trigger-event")
