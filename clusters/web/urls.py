"""The console's pages (the REST API's routes are in clusters.web.api.urls)."""

from django.urls import path

from clusters.web import (
    alert_views,
    audit_views,
    ca_views,
    credential_views,
    job_views,
    node_views,
    token_views,
    user_views,
    views,
    wizard_views,
)

urlpatterns = [
    path("", views.cluster_list, name="cluster-list"),
    path("clusters/new/", views.cluster_new, name="cluster-new"),
    path("wizard/", wizard_views.wizard_resume, name="wizard"),
    path("wizard/<int:step>/", wizard_views.wizard_step, name="wizard-step"),
    path("wizard/preflight/", wizard_views.wizard_preflight, name="wizard-preflight"),
    path("wizard/discard/", wizard_views.wizard_discard, name="wizard-discard"),
    path("clusters/<int:pk>/", views.cluster_detail, name="cluster-detail"),
    path(
        "clusters/<int:pk>/confirm/<str:kind>/",
        views.cluster_action_confirm,
        name="cluster-action-confirm",
    ),
    path("clusters/<int:pk>/lag/", views.cluster_lag, name="cluster-lag"),
    path("clusters/<int:pk>/nodes/new/", node_views.node_add_page, name="node-add"),
    path(
        "clusters/<int:pk>/nodes/<str:name>/replace/",
        node_views.node_replace_page,
        name="node-replace",
    ),
    path("clusters/<int:pk>/connection/", views.cluster_connection, name="cluster-connection"),
    path("clusters/<int:pk>/ca.crt", ca_views.cluster_ca, name="cluster-ca"),
    path("credentials/", credential_views.credential_list, name="credential-list"),
    path("audit/", audit_views.audit_log, name="audit-log"),
    path("users/", user_views.user_list, name="user-list"),
    path("users/<int:pk>/role/", user_views.user_role, name="user-role"),
    path("users/tokens/", token_views.token_list, name="token-list"),
    path("users/tokens/<int:pk>/revoke/", token_views.token_revoke_page, name="token-revoke"),
    path("alerts/", alert_views.alert_channels, name="alert-channels"),
    path("alerts/<int:pk>/edit/", alert_views.alert_channel_edit, name="alert-channel-edit"),
    path("alerts/<int:pk>/test/", alert_views.alert_channel_test, name="alert-channel-test"),
    path("alerts/<int:pk>/toggle/", alert_views.alert_channel_toggle, name="alert-channel-toggle"),
    path("alerts/<int:pk>/delete/", alert_views.alert_channel_delete, name="alert-channel-delete"),
    path("jobs/", job_views.job_list, name="job-list"),
    path("jobs/<int:pk>/", job_views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/steps/", job_views.job_steps, name="job-steps"),
    path("jobs/<int:pk>/log/", job_views.job_log, name="job-log"),
    path("jobs/<int:pk>/log.txt", job_views.job_log_text, name="job-log-text"),
    path("jobs/<int:pk>/cancel/", job_views.job_cancel, name="job-cancel"),
    path("jobs/<int:pk>/retry/", job_views.job_retry, name="job-retry"),
    path("clusters/<int:pk>/jobs/", job_views.job_start, name="job-start"),
]
