"""URL wiring: pages, the REST API under /api/v1/, the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from clusters import api as cluster_api
from clusters.login import RateLimitedLoginView
from clusters.metrics import metrics
from jobs import api as job_api

api = [
    path("credentials/", cluster_api.credentials, name="api-credentials"),
    path("host-keys/scan/", job_api.host_key_scan, name="api-host-key-scan"),
    path("clusters/", cluster_api.clusters, name="api-clusters"),
    path("clusters/<int:pk>/", cluster_api.cluster, name="api-cluster"),
    path("clusters/<int:pk>/jobs/", job_api.cluster_jobs, name="api-cluster-jobs"),
    path("clusters/<int:pk>/nodes/", job_api.cluster_nodes, name="api-cluster-nodes"),
    path(
        "clusters/<int:pk>/nodes/<str:name>/replace/",
        job_api.node_replace_view,
        name="api-node-replace",
    ),
    path("clusters/<int:pk>/connection/", cluster_api.cluster_connection, name="api-connection"),
    path("jobs/<int:pk>/", job_api.job, name="api-job"),
    path("jobs/<int:pk>/log/", job_api.job_log, name="api-job-log"),
    path("jobs/<int:pk>/cancel/", job_api.job_cancel, name="api-job-cancel"),
    path("jobs/<int:pk>/retry/", job_api.job_retry, name="api-job-retry"),
]

urlpatterns = [
    path("login/", RateLimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The admin site's own login would bypass the rate limit and the audit: send it to ours.
    path("admin/login/", RedirectView.as_view(url="/login/", query_string=True)),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api)),
    path("metrics", metrics, name="metrics"),
    path("", include("clusters.urls")),
    path("", include("jobs.urls")),
]
