"""The REST API's routes under /api/v1/ (DESIGN.md §3)."""

from django.urls import path

from clusters.web.api import ca as ca_api
from clusters.web.api import clusters as cluster_api
from clusters.web.api import events as event_api
from clusters.web.api import jobs as job_api
from clusters.web.api import tokens as token_api

urlpatterns = [
    path("credentials/", cluster_api.credentials, name="api-credentials"),
    path("host-keys/scan/", job_api.host_key_scan, name="api-host-key-scan"),
    path("clusters/", cluster_api.clusters, name="api-clusters"),
    path("clusters/adopt/", cluster_api.cluster_adopt, name="api-cluster-adopt"),
    path("clusters/<int:pk>/", cluster_api.cluster, name="api-cluster"),
    path("clusters/<int:pk>/jobs/", job_api.cluster_jobs, name="api-cluster-jobs"),
    path("clusters/<int:pk>/nodes/", job_api.cluster_nodes, name="api-cluster-nodes"),
    path(
        "clusters/<int:pk>/nodes/<str:name>/replace/",
        job_api.node_replace_view,
        name="api-node-replace",
    ),
    path("clusters/<int:pk>/connection/", cluster_api.cluster_connection, name="api-connection"),
    path("clusters/<int:pk>/ca/", ca_api.cluster_ca, name="api-cluster-ca"),
    path("clusters/<int:pk>/events/", event_api.cluster_events, name="api-cluster-events"),
    path("jobs/<int:pk>/", job_api.job, name="api-job"),
    path("jobs/<int:pk>/log/", job_api.job_log, name="api-job-log"),
    path("jobs/<int:pk>/cancel/", job_api.job_cancel, name="api-job-cancel"),
    path("jobs/<int:pk>/retry/", job_api.job_retry, name="api-job-retry"),
    path("tokens/", token_api.tokens, name="api-tokens"),
    path("tokens/<int:pk>/", token_api.token_revoke, name="api-token"),
    path("tokens/<int:pk>/revoke/", token_api.token_revoke, name="api-token-revoke"),
]
