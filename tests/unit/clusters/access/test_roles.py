"""Authorisation: every endpoint (page, API, /metrics) against every role.

Real users in real groups: anonymous, a user in no group, a viewer, an operator, an admin and a
superuser. Each endpoint names the weakest role that may use it; below it a page says 403 (or
sends an anonymous visitor to the login page), the API says 401/403, and a refused change
leaves the database as it was and an audit entry saying "refused".
"""

import re
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from clusters.access.roles import ADMIN, OPERATOR, VIEWER, assign_role
from clusters.models import (
    AlertChannel,
    ApiToken,
    AuditEntry,
    Cluster,
    Credential,
    EventSubscription,
    Incident,
    Node,
)
from jobs.models import Job, JobStatus, Step
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db

ROLE_NAMES = ("anonymous", "none", VIEWER, OPERATOR, ADMIN, "superuser")
RANK = {"anonymous": -2, "none": -1, VIEWER: 0, OPERATOR: 1, ADMIN: 2, "superuser": 2}
PUBLIC = "public"
HOOK_URL = "https://hooks.example.com/T0KEN"  # a name: checked at send time, not when saved


@dataclass(frozen=True)
class Endpoint:
    name: str  # the URL name
    method: str
    path: str  # with {cluster}, {job}, {channel}, {incident}… filled in from the world fixture
    needs: str  # the weakest role allowed, or PUBLIC
    body: dict | None = None
    kind: str = "page"  # page, api or metrics

    def __str__(self) -> str:
        return f"{self.method} {self.name}"


ENDPOINTS = [
    # Pages
    Endpoint("login", "GET", "/login/", PUBLIC),
    Endpoint("logout", "POST", "/logout/", PUBLIC),
    Endpoint("cluster-list", "GET", "/", VIEWER),
    Endpoint("cluster-detail", "GET", "/clusters/{cluster}/", VIEWER),
    Endpoint("cluster-incident", "GET", "/clusters/{cluster}/incident/", VIEWER),
    Endpoint("cluster-new", "GET", "/clusters/new/", ADMIN),
    Endpoint("cluster-new", "POST", "/clusters/new/", ADMIN, {"name": "pg9"}),
    Endpoint("cluster-connection", "POST", "/clusters/{cluster}/connection/", ADMIN),
    Endpoint("cluster-parameters", "GET", "/clusters/{cluster}/parameters/", VIEWER),
    Endpoint(
        "cluster-parameters",
        "POST",
        "/clusters/{cluster}/parameters/",
        OPERATOR,
        {"changes": "work_mem = 8MB", "action": "preview"},
    ),
    # The CA certificate is public: any role (404 here, where setup has made no CA yet).
    Endpoint("cluster-ca", "GET", "/clusters/{cluster}/ca.crt", VIEWER),
    Endpoint("credential-list", "GET", "/credentials/", VIEWER),
    Endpoint(
        "credential-list",
        "POST",
        "/credentials/",
        ADMIN,
        {"name": "new", "username": "root", "password": "pw-123456"},
    ),
    Endpoint("audit-log", "GET", "/audit/", ADMIN),
    Endpoint("user-list", "GET", "/users/", ADMIN),
    Endpoint(
        "user-list",
        "POST",
        "/users/",
        ADMIN,
        {"username": "newbie", "password": "a-long-password-1", "role": "viewer"},
    ),
    Endpoint("user-role", "POST", "/users/{target}/role/", ADMIN, {"role": "admin"}),
    Endpoint("alert-channels", "GET", "/alerts/", VIEWER),
    Endpoint(
        "alert-channels", "POST", "/alerts/", ADMIN, {"kind": "email", "target": "b@example.com"}
    ),
    Endpoint("alert-channel-edit", "GET", "/alerts/{channel}/edit/", ADMIN),
    Endpoint(
        "alert-channel-edit",
        "POST",
        "/alerts/{channel}/edit/",
        ADMIN,
        {"target": "c@example.com", "min_severity": "info"},
    ),
    Endpoint("alert-channel-test", "POST", "/alerts/{channel}/test/", ADMIN),
    Endpoint("alert-channel-toggle", "POST", "/alerts/{channel}/toggle/", ADMIN),
    Endpoint("alert-channel-delete", "GET", "/alerts/{channel}/delete/", ADMIN),  # asks first
    Endpoint("alert-channel-delete", "POST", "/alerts/{channel}/delete/", ADMIN),
    # Event subscriptions: viewers read, admins change
    Endpoint("subscriptions", "GET", "/subscriptions/", VIEWER),
    Endpoint("subscriptions", "POST", "/subscriptions/", ADMIN, {"name": "new", "url": HOOK_URL}),
    Endpoint("subscription-toggle", "POST", "/subscriptions/{subscription}/toggle/", ADMIN),
    Endpoint("subscription-rotate", "POST", "/subscriptions/{subscription}/rotate/", ADMIN),
    Endpoint("subscription-test", "POST", "/subscriptions/{subscription}/test/", ADMIN),
    Endpoint("subscription-delete", "POST", "/subscriptions/{subscription}/delete/", ADMIN),
    # API tokens: everyone with a role manages their own (another user's is a 404)
    Endpoint("token-list", "GET", "/users/tokens/", VIEWER),
    Endpoint("token-list", "POST", "/users/tokens/", VIEWER, {"name": "ci", "days": "30"}),
    Endpoint("token-revoke", "POST", "/users/tokens/{token}/revoke/", VIEWER),
    Endpoint("job-list", "GET", "/jobs/", VIEWER),
    Endpoint("job-detail", "GET", "/jobs/{job}/", VIEWER),
    Endpoint("job-steps", "GET", "/jobs/{job}/steps/", VIEWER),
    Endpoint("job-log", "GET", "/jobs/{job}/log/", VIEWER),
    Endpoint("job-log-text", "GET", "/jobs/{job}/log.txt", VIEWER),
    Endpoint("job-cancel", "POST", "/jobs/{job}/cancel/", OPERATOR),
    Endpoint("job-retry", "POST", "/jobs/{job}/retry/", OPERATOR),
    Endpoint("job-start", "POST", "/clusters/{cluster}/jobs/", OPERATOR, {"kind": "preflight"}),
    Endpoint(
        "job-start",
        "POST",
        "/clusters/{cluster}/jobs/",
        ADMIN,
        {"kind": "remove_cluster", "confirm": "pg1"},
    ),
    # Setup wizard, confirmations, lag history, node changes (web console)
    Endpoint("wizard", "GET", "/wizard/", ADMIN),
    Endpoint("wizard-step", "GET", "/wizard/1/", ADMIN),
    Endpoint("wizard-step", "POST", "/wizard/1/", ADMIN, {"name": "Bad Name!"}),
    Endpoint("wizard-preflight", "GET", "/wizard/preflight/", ADMIN),
    Endpoint("wizard-discard", "POST", "/wizard/discard/", ADMIN),
    Endpoint("cluster-action-confirm", "GET", "/clusters/{cluster}/confirm/switchover/", OPERATOR),
    Endpoint(
        "cluster-action-confirm",
        "GET",
        "/clusters/{cluster}/confirm/remove_node/?node=node2",
        ADMIN,
    ),
    Endpoint("cluster-lag", "GET", "/clusters/{cluster}/lag/?range=1d", VIEWER),
    Endpoint("node-add", "GET", "/clusters/{cluster}/nodes/new/", ADMIN),
    Endpoint("node-add", "POST", "/clusters/{cluster}/nodes/new/", ADMIN, {"address": "$(reboot)"}),
    Endpoint("cluster-restore", "GET", "/clusters/{cluster}/restore/", ADMIN),
    Endpoint(
        "cluster-restore", "POST", "/clusters/{cluster}/restore/", ADMIN, {"address": "$(reboot)"}
    ),
    Endpoint("node-replace", "GET", "/clusters/{cluster}/nodes/node2/replace/", ADMIN),
    Endpoint("node-fence", "GET", "/clusters/{cluster}/nodes/node2/fence/", VIEWER),
    Endpoint(
        "node-fence", "POST", "/clusters/{cluster}/nodes/node2/fence/", OPERATOR, {"action": "test"}
    ),
    Endpoint("cluster-fast-failover", "GET", "/clusters/{cluster}/fast-failover/", VIEWER),
    Endpoint(
        "cluster-fast-failover",
        "POST",
        "/clusters/{cluster}/fast-failover/",
        ADMIN,
        {"window_minutes": "0"},  # refused by validation
    ),
    # API
    Endpoint("api-credentials", "GET", "/api/v1/credentials/", VIEWER, kind="api"),
    Endpoint(
        "api-credentials",
        "POST",
        "/api/v1/credentials/",
        ADMIN,
        {"name": "new", "username": "root", "password": "pw-123456"},
        kind="api",
    ),
    Endpoint(
        "api-host-key-scan",
        "POST",
        "/api/v1/host-keys/scan/",
        ADMIN,
        {"address": "$(reboot)", "port": 22},  # refused by validation: no worker is asked
        kind="api",
    ),
    Endpoint("api-clusters", "GET", "/api/v1/clusters/", VIEWER, kind="api"),
    Endpoint("api-clusters", "POST", "/api/v1/clusters/", ADMIN, {"name": "pg9"}, kind="api"),
    Endpoint(
        "api-cluster-adopt", "POST", "/api/v1/clusters/adopt/", ADMIN, {"nodes": []}, kind="api"
    ),
    Endpoint("api-cluster", "GET", "/api/v1/clusters/{cluster}/", VIEWER, kind="api"),
    Endpoint(
        "api-cluster-jobs",
        "POST",
        "/api/v1/clusters/{cluster}/jobs/",
        OPERATOR,
        {"kind": "preflight"},
        kind="api",
    ),
    Endpoint(
        "api-cluster-jobs",
        "POST",
        "/api/v1/clusters/{cluster}/jobs/",
        ADMIN,
        {"kind": "remove_cluster", "confirm": "pg1"},
        kind="api",
    ),
    Endpoint("api-connection", "GET", "/api/v1/clusters/{cluster}/connection/", ADMIN, kind="api"),
    Endpoint(
        "api-cluster-parameters",
        "GET",
        "/api/v1/clusters/{cluster}/parameters/",
        VIEWER,
        kind="api",
    ),
    Endpoint(
        "api-cluster-parameters",
        "POST",
        "/api/v1/clusters/{cluster}/parameters/",
        OPERATOR,
        {"parameters": {"work_mem": "8MB"}},
        kind="api",
    ),
    Endpoint("api-cluster-ca", "GET", "/api/v1/clusters/{cluster}/ca/", VIEWER, kind="api"),
    Endpoint(
        "api-cluster-backups", "GET", "/api/v1/clusters/{cluster}/backups/", VIEWER, kind="api"
    ),
    Endpoint(
        "api-cluster-backups",
        "PUT",
        "/api/v1/clusters/{cluster}/backups/",
        ADMIN,
        {"retention_full": 3},
        kind="api",
    ),
    Endpoint(
        "api-node-fence", "GET", "/api/v1/clusters/{cluster}/nodes/node2/fence/", VIEWER, kind="api"
    ),
    Endpoint(
        "api-node-fence",
        "PUT",
        "/api/v1/clusters/{cluster}/nodes/node2/fence/",
        ADMIN,
        {"method": "redfish", "options": {"ip": "$(reboot)"}},  # refused by validation
        kind="api",
    ),
    Endpoint(
        "api-node-fence",
        "DELETE",
        "/api/v1/clusters/{cluster}/nodes/node2/fence/",
        ADMIN,
        kind="api",
    ),
    Endpoint(
        "api-fast-failover", "GET", "/api/v1/clusters/{cluster}/fast-failover/", VIEWER, kind="api"
    ),
    Endpoint(
        "api-fast-failover",
        "PUT",
        "/api/v1/clusters/{cluster}/fast-failover/",
        ADMIN,
        {"enabled": True, "window_minutes": 0},  # refused by validation
        kind="api",
    ),
    Endpoint(
        "api-node-fence-test",
        "POST",
        "/api/v1/clusters/{cluster}/nodes/node2/fence/test/",
        OPERATOR,
        kind="api",
    ),
    Endpoint(
        "api-cluster-failover-drills",
        "GET",
        "/api/v1/clusters/{cluster}/failover-drills/",
        VIEWER,
        kind="api",
    ),
    Endpoint(
        "api-cluster-failover-drills",
        "POST",
        "/api/v1/clusters/{cluster}/failover-drills/",
        ADMIN,
        {"confirm": "wrong name"},  # refused by the plan: nothing starts
        kind="api",
    ),
    Endpoint("api-cluster-events", "GET", "/api/v1/clusters/{cluster}/events/", VIEWER, kind="api"),
    Endpoint("api-events", "GET", "/api/v1/events/", VIEWER, kind="api"),
    Endpoint(
        "api-cluster-incidents", "GET", "/api/v1/clusters/{cluster}/incidents/", VIEWER, kind="api"
    ),
    Endpoint("api-incident", "GET", "/api/v1/incidents/{incident}/", VIEWER, kind="api"),
    Endpoint("api-cluster-jobs", "GET", "/api/v1/clusters/{cluster}/jobs/", VIEWER, kind="api"),
    Endpoint(
        "api-cluster-nodes",
        "POST",
        "/api/v1/clusters/{cluster}/nodes/",
        ADMIN,
        {"name": "node3", "address": "$(reboot)"},  # refused by validation for an admin
        kind="api",
    ),
    Endpoint(
        "api-node-replace",
        "POST",
        "/api/v1/clusters/{cluster}/nodes/node2/replace/",
        ADMIN,
        {"address": "$(reboot)"},
        kind="api",
    ),
    Endpoint(
        "api-cluster-jobs",
        "POST",
        "/api/v1/clusters/{cluster}/jobs/",
        ADMIN,
        {"kind": "remove_node", "node": "node2"},
        kind="api",
    ),
    Endpoint("api-jobs", "GET", "/api/v1/jobs/", VIEWER, kind="api"),
    Endpoint("api-job", "GET", "/api/v1/jobs/{job}/", VIEWER, kind="api"),
    Endpoint("api-job-log", "GET", "/api/v1/jobs/{job}/log/", VIEWER, kind="api"),
    Endpoint("api-job-cancel", "POST", "/api/v1/jobs/{job}/cancel/", OPERATOR, kind="api"),
    Endpoint("api-job-retry", "POST", "/api/v1/jobs/{job}/retry/", OPERATOR, kind="api"),
    Endpoint("api-tokens", "GET", "/api/v1/tokens/", VIEWER, kind="api"),
    Endpoint("api-tokens", "POST", "/api/v1/tokens/", VIEWER, {"days": 7}, kind="api"),
    Endpoint("api-token", "POST", "/api/v1/tokens/{token}/", VIEWER, kind="api"),
    Endpoint("api-token-revoke", "POST", "/api/v1/tokens/{token}/revoke/", VIEWER, kind="api"),
    # The API's OpenAPI document and its reference page: a viewer's, in a browser session
    # (a token works too: tests/unit/clusters/web/api/test_api_openapi.py)
    Endpoint("api-audit", "GET", "/api/v1/audit/", ADMIN, kind="api"),
    # Alert channels, users and roles (the alerts and users pages' twins)
    Endpoint("api-alert-channels", "GET", "/api/v1/alert-channels/", VIEWER, kind="api"),
    Endpoint(
        "api-alert-channels",
        "POST",
        "/api/v1/alert-channels/",
        ADMIN,
        {"kind": "email", "target": "b@example.com"},
        kind="api",
    ),
    Endpoint("api-alert-channel", "GET", "/api/v1/alert-channels/{channel}/", VIEWER, kind="api"),
    Endpoint(
        "api-alert-channel",
        "PATCH",
        "/api/v1/alert-channels/{channel}/",
        ADMIN,
        {"enabled": False},
        kind="api",
    ),
    Endpoint("api-alert-channel", "DELETE", "/api/v1/alert-channels/{channel}/", ADMIN, kind="api"),
    Endpoint(
        "api-alert-channel-test",
        "POST",
        "/api/v1/alert-channels/{channel}/test/",
        ADMIN,
        kind="api",
    ),
    Endpoint(
        "api-alert-channel-deliveries",
        "GET",
        "/api/v1/alert-channels/{channel}/deliveries/",
        VIEWER,
        kind="api",
    ),
    Endpoint("api-users", "GET", "/api/v1/users/", ADMIN, kind="api"),
    Endpoint(
        "api-users",
        "POST",
        "/api/v1/users/",
        ADMIN,
        {"username": "newbie", "password": "a-long-password-1", "role": "viewer"},
        kind="api",
    ),
    Endpoint(
        "api-user-role", "PUT", "/api/v1/users/{target}/role/", ADMIN, {"role": "admin"}, kind="api"
    ),
    Endpoint("api-roles", "GET", "/api/v1/roles/", VIEWER, kind="api"),
    Endpoint("api-subscriptions", "GET", "/api/v1/subscriptions/", VIEWER, kind="api"),
    Endpoint(
        "api-subscriptions",
        "POST",
        "/api/v1/subscriptions/",
        ADMIN,
        {"name": "new", "url": HOOK_URL},
        kind="api",
    ),
    Endpoint(
        "api-subscription", "GET", "/api/v1/subscriptions/{subscription}/", VIEWER, kind="api"
    ),
    Endpoint(
        "api-subscription-rotate-secret",
        "POST",
        "/api/v1/subscriptions/{subscription}/rotate-secret/",
        ADMIN,
        kind="api",
    ),
    Endpoint(
        "api-subscription-test",
        "POST",
        "/api/v1/subscriptions/{subscription}/test/",
        ADMIN,
        kind="api",
    ),
    Endpoint(
        "api-subscription-deliveries",
        "GET",
        "/api/v1/subscriptions/{subscription}/deliveries/",
        VIEWER,
        kind="api",
    ),
    Endpoint("api-cluster-lag", "GET", "/api/v1/clusters/{cluster}/lag/", VIEWER, kind="api"),
    Endpoint(
        "api-cluster-versions", "GET", "/api/v1/clusters/{cluster}/versions/", VIEWER, kind="api"
    ),
    Endpoint("openapi-json", "GET", "/api/v1/openapi.json", VIEWER),
    Endpoint("openapi-view", "GET", "/api/v1/docs/", VIEWER),
    Endpoint("metrics", "GET", "/metrics", VIEWER, kind="metrics"),
]


def _url_names(patterns, namespace: str = "") -> set[str]:
    names = set()
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":  # Django's admin: staff users and its own permissions
                continue
            names |= _url_names(p.url_patterns)
        elif isinstance(p, URLPattern) and p.name:
            names.add(p.name)
    return names


def test_the_matrix_covers_every_url_of_the_console():
    """A new page or API endpoint fails here until it has a row above."""
    assert _url_names(get_resolver().url_patterns) == {e.name for e in ENDPOINTS}


@pytest.fixture
def world(django_user_model):
    cluster, _ = three_node_cluster(state="healthy", database_name="app", database_user="app")
    job = Job.objects.create(kind="preflight", cluster=cluster, status=JobStatus.FAILED)
    Step.objects.create(job=job, position=1, name="ssh", title="SSH login", status="failed")
    channel = AlertChannel.objects.create(kind="email", target="a@example.com")
    subscription = EventSubscription.objects.create(name="bot", url=HOOK_URL, secret="s" * 43)
    target = django_user_model.objects.create_user("target", password="pw-target-12345")
    assign_role(target, VIEWER)
    ApiToken.issue(target, name="target's")
    token = ApiToken.objects.get(user=target).pk
    incident = Incident.objects.create(
        cluster=cluster,
        kind="failover",
        opened=timezone.now(),
        title="failover",
        old_primary="node1",
    )
    return {
        "incident": incident.pk,
        "cluster": cluster.pk,
        "job": job.pk,
        "channel": channel.pk,
        "target": target.pk,
        "token": token,
        "subscription": subscription.pk,
    }


def _user(django_user_model, role: str):
    if role == "anonymous":
        return None
    if role == "superuser":
        return django_user_model.objects.create_superuser("root-user", password="pw-root-12345")
    user = django_user_model.objects.create_user(f"u-{role}", password="pw-user-12345")
    assign_role(user, None if role == "none" else role)
    return user


def _snapshot() -> dict:
    from django.contrib.auth.models import User

    users = list(User.objects.order_by("username").values_list("username", "groups__name"))
    return (
        {"users": users}
        | {m.__name__: m.objects.count() for m in (Cluster, Node, Credential, AlertChannel, Job)}
        | {"enabled": list(AlertChannel.objects.values_list("enabled", flat=True))}
        | {"subscriptions": list(EventSubscription.objects.values_list("enabled", "secret"))}
    )


def _call(client, endpoint: Endpoint, user, world: dict):
    from clusters.models import ApiToken

    path = endpoint.path.format(**world)
    headers = {}
    if endpoint.kind in ("api", "metrics") and user is not None:
        scheme = "Bearer" if endpoint.kind == "metrics" else "Token"
        headers["HTTP_AUTHORIZATION"] = f"{scheme} {ApiToken.issue(user)}"
    elif user is not None:
        client.force_login(user)
    if endpoint.method == "GET":
        return client.get(path, **headers)
    if endpoint.kind == "api":
        send = getattr(client, endpoint.method.lower())  # POST, PUT, PATCH or DELETE
        return send(path, endpoint.body or {}, content_type="application/json", **headers)
    return client.post(path, endpoint.body or {}, **headers)


@pytest.mark.parametrize("role", ROLE_NAMES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_each_endpoint_admits_exactly_the_roles_it_names(
    client, django_user_model, world, endpoint: Endpoint, role: str
):
    user = _user(django_user_model, role)
    before = _snapshot()
    response = _call(client, endpoint, user, world)
    status = response.status_code
    allowed = endpoint.needs == PUBLIC or RANK[role] >= RANK[endpoint.needs]
    if allowed:
        assert status not in (401, 403), (status, response.content[:300])
        if endpoint.kind == "page" and endpoint.needs != PUBLIC:
            assert "/login/" not in response.get("Location", ""), response["Location"]
        return
    if endpoint.kind == "page" and role == "anonymous":
        assert status == 302 and response["Location"].startswith("/login/")
    elif endpoint.kind == "metrics" or (endpoint.kind == "api" and role == "anonymous"):
        assert status == 401
    else:
        assert status == 403, (status, response.content[:300])
        text = response.content.decode()
        if endpoint.name not in ("api-connection", "cluster-connection"):
            # Names the role the first gate needs (operator for any job, admin for a removal).
            assert re.search(r"needs the (viewer|operator|admin) role", text), text[-400:]
    assert _snapshot() == before
    if endpoint.method != "GET":
        assert AuditEntry.objects.filter(result__startswith="refused").exists()


def test_a_refused_viewer_is_told_which_role_is_needed(client, django_user_model, world):
    viewer = _user(django_user_model, VIEWER)
    client.force_login(viewer)
    response = client.post(f"/clusters/{world['cluster']}/jobs/", {"kind": "switchover"})
    assert response.status_code == 403
    assert "This needs the operator role; you are a viewer" in response.content.decode()
    entry = AuditEntry.objects.get(action="post job-start")
    assert entry.username == "u-viewer" and entry.result.startswith("refused: This needs")
    assert entry.target == f"/clusters/{world['cluster']}/jobs/"
    assert not Job.objects.filter(kind="switchover").exists()


def test_a_user_without_a_role_sees_no_page(client, django_user_model, world):
    client.force_login(_user(django_user_model, "none"))
    response = client.get("/")
    assert response.status_code == 403
    assert "no role in HA Center" in response.content.decode()


def test_template_flags_follow_the_role(client, django_user_model, world):
    for role, operate, admin in (
        (VIEWER, False, False),
        (OPERATOR, True, False),
        (ADMIN, True, True),
    ):
        client.force_login(_user(django_user_model, role))
        context = client.get("/").context
        assert (context["role"], context["can_operate"], context["can_admin"]) == (
            role,
            operate,
            admin,
        )
        client.logout()
