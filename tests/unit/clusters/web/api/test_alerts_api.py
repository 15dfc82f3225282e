"""The alert channels' REST endpoints: the alerts page's actions through the API, with its
services, roles and audit entries, and never a webhook's full URL in an answer or audit row.
Every answer is also checked against the OpenAPI document (conftest.py)."""

import json

import pytest
from django.core import mail
from django.utils import timezone

from clusters.models import AlertChannel, AlertDelivery, AuditEntry, Cluster, ClusterEvent
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

SECRET = "T0SECRET/B0/xoxb-very-secret-token"
WEBHOOK = f"https://hooks.example.com/services/{SECRET}"
SHOWN = "https://hooks.example.com/…"


class As:
    """A test client sending one user's API token, with every method the API uses."""

    def __init__(self, client, user) -> None:
        from clusters.models import ApiToken

        self.client, self.header = client, f"Token {ApiToken.issue(user)}"

    def __getattr__(self, method: str):
        def send(url: str, body=None, **kw):
            if method == "get":
                return self.client.get(url, body or {}, HTTP_AUTHORIZATION=self.header)
            return getattr(self.client, method)(
                url,
                data=json.dumps(body or {}),
                content_type="application/json",
                HTTP_AUTHORIZATION=self.header,
                **kw,
            )

        return send


@pytest.fixture
def admin(client, user):
    return As(client, user)  # `user` is "ops", an admin


@pytest.fixture
def viewer(client, django_user_model):
    return As(client, make_user(django_user_model, "watcher", "viewer"))


@pytest.fixture
def pg1():
    return Cluster.objects.create(name="pg1")


@pytest.fixture
def hook():
    """A global webhook channel whose URL path holds a token."""
    return AlertChannel.objects.create(kind="webhook", target=WEBHOOK)


def no_secret_anywhere(*responses) -> None:
    """The webhook's token is in no answer and no audit row."""
    for response in responses:
        assert SECRET not in response.content.decode()
    for entry in AuditEntry.objects.all():
        assert SECRET not in f"{entry.target} {entry.params} {entry.result}"


def delivery(channel, status: str, **fields) -> AlertDelivery:
    return AlertDelivery.objects.create(channel=channel, status=status, **fields)


# --- reading ----------------------------------------------------------------------------------


def test_a_viewer_lists_the_channels_as_the_page_shows_them(viewer, pg1, hook):
    mail_channel = AlertChannel.objects.create(
        kind="email", target="ops@example.com", cluster=pg1, min_severity="critical"
    )
    delivery(hook, "sent")
    delivery(hook, "failed", error="refused: HTTP 500", detail="internal stack trace")
    response = viewer.get("/api/v1/alert-channels/")
    assert response.status_code == 200
    by_id = {c["id"]: c for c in response.json()}
    assert by_id[mail_channel.pk] | {"created": None} == {
        "id": mail_channel.pk,
        "kind": "email",
        "cluster": "pg1",
        "target": "ops@example.com",
        "min_severity": "critical",
        "enabled": True,
        "created": None,
        "last_delivery": None,
    }
    assert by_id[hook.pk]["cluster"] is None
    assert by_id[hook.pk]["target"] == SHOWN
    last = by_id[hook.pk]["last_delivery"]
    assert (last["status"], last["error"]) == ("failed", "refused: HTTP 500")
    assert "internal stack trace" not in response.content.decode()
    no_secret_anywhere(response, viewer.get(f"/api/v1/alert-channels/{hook.pk}/"))


def test_one_channel_is_read_by_id_and_an_unknown_one_is_a_404(viewer, hook):
    response = viewer.get(f"/api/v1/alert-channels/{hook.pk}/")
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["target"]) == (hook.pk, SHOWN)
    for path in ("/api/v1/alert-channels/999999/", "/api/v1/alert-channels/999999/deliveries/"):
        assert viewer.get(path).status_code == 404


# --- adding -----------------------------------------------------------------------------------


def test_an_admin_adds_a_webhook_for_a_cluster_named_by_name(admin, pg1):
    body = {"kind": "webhook", "target": WEBHOOK, "cluster": "pg1", "min_severity": "info"}
    response = admin.post("/api/v1/alert-channels/", body)
    assert response.status_code == 201
    answer = response.json()
    channel = AlertChannel.objects.get()
    assert answer["id"] == channel.pk
    assert (answer["kind"], answer["cluster"], answer["target"]) == ("webhook", "pg1", SHOWN)
    assert (answer["min_severity"], answer["enabled"], answer["last_delivery"]) == (
        "info",
        True,
        None,
    )
    assert (channel.target, channel.cluster, channel.min_severity) == (WEBHOOK, pg1, "info")
    entry = AuditEntry.objects.get(action="alert_channel.create")
    assert (entry.username, entry.result) == ("ops", "ok")
    assert entry.target == f"alert channel {channel.pk}"
    assert entry.params == {"kind": "webhook", "cluster": "pg1"}
    no_secret_anywhere(response)


def test_a_channel_without_a_cluster_gets_every_clusters_events_at_warning(admin):
    response = admin.post("/api/v1/alert-channels/", {"kind": "email", "target": "a@example.com"})
    assert response.status_code == 201
    assert (response.json()["cluster"], response.json()["min_severity"]) == (None, "warning")
    channel = AlertChannel.objects.get()
    assert (channel.cluster, channel.min_severity) == (None, "warning")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"kind": "fax", "target": "a@example.com"}, {"kind"}),
        ({"kind": "webhook", "target": f"ftp://hooks.example.com/{SECRET}"}, {"target"}),
        ({"kind": "webhook", "target": f"https://127.0.0.1/{SECRET}"}, {"target"}),
        ({"kind": "email", "target": "not-an-address"}, {"target"}),
        ({"kind": "email", "target": "a@example.com", "min_severity": "loud"}, {"min_severity"}),
        ({"kind": "email", "target": "a@example.com", "cluster": "nope"}, {"cluster"}),
        ({"kind": "email", "target": "a@example.com", "cluster": 1}, {"cluster"}),
        ({"kind": "email", "target": ["a@example.com"]}, {"target"}),
        ({"target": WEBHOOK}, {"kind"}),
        ({}, {"kind", "target"}),
    ],
)
def test_bad_input_is_a_400_naming_each_field_and_adds_nothing(admin, pg1, body, fields):
    response = admin.post("/api/v1/alert-channels/", body)
    assert response.status_code == 400
    assert set(response.json()["field_errors"]) == fields
    assert not AlertChannel.objects.exists()
    entry = AuditEntry.objects.get(action="alert_channel.create")
    assert entry.result == "refused: invalid " + ", ".join(sorted(fields))
    no_secret_anywhere(response)


# --- changing ---------------------------------------------------------------------------------


def test_an_admin_changes_target_and_severity_as_the_edit_page_does(admin, hook):
    new = "https://hooks.example.com/services/NEW/xoxb-other-secret"
    response = admin.patch(
        f"/api/v1/alert-channels/{hook.pk}/", {"target": new, "min_severity": "critical"}
    )
    assert response.status_code == 200
    assert (response.json()["target"], response.json()["min_severity"]) == (SHOWN, "critical")
    hook.refresh_from_db()
    assert (hook.target, hook.min_severity, hook.enabled) == (new, "critical", True)
    entry = AuditEntry.objects.get(action="alert_channel.update")
    assert entry.target == f"alert channel {hook.pk}"
    assert entry.params == {"kind": "webhook", "min_severity": "critical"}
    assert "xoxb-other-secret" not in response.content.decode() + str(entry.params)
    # Only the severity: the stored target stays.
    again = admin.patch(f"/api/v1/alert-channels/{hook.pk}/", {"min_severity": "info"})
    assert again.status_code == 200
    hook.refresh_from_db()
    assert (hook.target, hook.min_severity) == (new, "info")


def test_enabled_pauses_and_resumes_a_channel_as_the_pause_button_does(admin, hook):
    url = f"/api/v1/alert-channels/{hook.pk}/"
    response = admin.patch(url, {"enabled": False})
    assert response.status_code == 200 and response.json()["enabled"] is False
    hook.refresh_from_db()
    assert hook.enabled is False
    # Sent again (a retried script), it stays paused: no flip back.
    assert admin.patch(url, {"enabled": False}).json()["enabled"] is False
    hook.refresh_from_db()
    assert hook.enabled is False
    assert admin.patch(url, {"enabled": True}).json()["enabled"] is True
    hook.refresh_from_db()
    assert hook.enabled is True
    results = list(
        AuditEntry.objects.filter(action__startswith="alert_channel.")
        .order_by("pk")
        .values_list("action", "result")
    )
    assert results == [
        ("alert_channel.disable", "ok"),
        ("alert_channel.disable", "ok: already paused"),
        ("alert_channel.enable", "ok"),
    ]
    assert not AuditEntry.objects.filter(action="alert_channel.update").exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"target": f"ftp://hooks.example.com/{SECRET}", "enabled": False}, {"target"}),
        ({"target": ""}, {"target"}),
        ({"min_severity": "loud", "enabled": False}, {"min_severity"}),
        ({"enabled": "no"}, {"enabled"}),
        ({"target": 5}, {"target"}),
        ({"kind": "email"}, {"kind"}),
        ({"cluster": "pg1", "enabled": False}, {"cluster"}),
        ({"colour": "red"}, {"colour"}),
        ({}, {"non_field_errors"}),
    ],
)
def test_a_refused_change_is_a_400_and_changes_nothing(admin, hook, body, fields):
    response = admin.patch(f"/api/v1/alert-channels/{hook.pk}/", body)
    assert response.status_code == 400
    assert set(response.json()["field_errors"]) == fields
    hook.refresh_from_db()
    assert (hook.target, hook.min_severity, hook.enabled, hook.kind, hook.cluster) == (
        WEBHOOK,
        "warning",
        True,
        "webhook",
        None,
    )
    entry = AuditEntry.objects.get(action="alert_channel.update")
    assert entry.result.startswith("refused: invalid ")
    no_secret_anywhere(response)


def test_an_admin_removes_a_channel_with_its_deliveries(admin, hook):
    delivery(hook, "sent")
    response = admin.delete(f"/api/v1/alert-channels/{hook.pk}/")
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["target"]) == (hook.pk, SHOWN)
    assert not AlertChannel.objects.exists() and not AlertDelivery.objects.exists()
    entry = AuditEntry.objects.get(action="alert_channel.delete")
    assert (entry.target, entry.params) == (f"alert channel {hook.pk}", {"kind": "webhook"})
    assert admin.delete(f"/api/v1/alert-channels/{hook.pk}/").status_code == 404
    no_secret_anywhere(response)


def test_changes_to_a_missing_channel_are_404s(admin):
    assert admin.patch("/api/v1/alert-channels/999999/", {"enabled": False}).status_code == 404
    assert admin.delete("/api/v1/alert-channels/999999/").status_code == 404
    assert admin.post("/api/v1/alert-channels/999999/test/").status_code == 404


# --- test alert -------------------------------------------------------------------------------


def test_a_test_alert_is_queued_after_commit_and_sent_by_the_worker(
    admin, hook, monkeypatch, django_capture_on_commit_callbacks
):
    from clusters.web.api import alerts

    queued = []
    monkeypatch.setattr(alerts.send_test_alert, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin.post(f"/api/v1/alert-channels/{hook.pk}/test/")
    assert response.status_code == 202
    assert response.json() == {
        "channel": hook.pk,
        "deliveries": f"/api/v1/alert-channels/{hook.pk}/deliveries/",
    }
    assert queued == [] and mail.outbox == []  # nothing sent inside the request
    assert len(callbacks) == 1
    callbacks[0]()
    assert queued == [hook.pk]
    entry = AuditEntry.objects.get(action="alert_channel.test")
    assert (entry.target, entry.result) == (f"alert channel {hook.pk}", "ok")


# --- deliveries -------------------------------------------------------------------------------


def test_deliveries_newest_first_with_the_targets_answer_for_admins_only(admin, viewer, pg1, hook):
    event = ClusterEvent.objects.create(
        cluster=pg1, kind="failover", at=timezone.now(), summary="node2 took over"
    )
    delivery(hook, "sent", event=event)
    delivery(hook, "suppressed", event=event)
    delivery(hook, "failed", error="refused: HTTP 500", detail="internal stack trace")
    shown = viewer.get(f"/api/v1/alert-channels/{hook.pk}/deliveries/")
    assert shown.status_code == 200
    rows = shown.json()
    assert [r["status"] for r in rows] == ["failed", "suppressed", "sent"]
    assert rows[0]["event"] is None and rows[0]["error"] == "refused: HTTP 500"
    assert rows[1]["event"] == {"id": event.pk, "kind": "failover", "summary": "node2 took over"}
    assert all(r["detail"] is None for r in rows)
    assert "internal stack trace" not in shown.content.decode()
    as_admin = admin.get(f"/api/v1/alert-channels/{hook.pk}/deliveries/", {"limit": "2"})
    assert [r["detail"] for r in as_admin.json()] == ["internal stack trace", ""]
    no_secret_anywhere(shown, as_admin)


@pytest.mark.parametrize("limit", ["0", "201", "ten", "-1", ""])
def test_a_bad_deliveries_limit_is_a_400(viewer, hook, limit):
    response = viewer.get(f"/api/v1/alert-channels/{hook.pk}/deliveries/", {"limit": limit})
    assert response.status_code == 400
    assert set(response.json()["field_errors"]) == {"limit"}


def test_the_limit_goes_up_to_200(viewer, hook):
    for _ in range(201):
        delivery(hook, "sent")
    url = f"/api/v1/alert-channels/{hook.pk}/deliveries/"
    assert len(viewer.get(url).json()) == 50
    assert len(viewer.get(url, {"limit": "200"}).json()) == 200


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/alert-channels/", {"kind": "email", "target": "b@example.com"}),
        ("patch", "/api/v1/alert-channels/{id}/", {"enabled": False}),
        ("delete", "/api/v1/alert-channels/{id}/", None),
        ("post", "/api/v1/alert-channels/{id}/test/", None),
    ],
)
def test_a_viewer_token_is_refused_every_change_naming_the_admin_role(
    viewer, hook, method, path, body, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = getattr(viewer, method)(path.format(id=hook.pk), body)
    assert response.status_code == 403
    assert "This needs the admin role; you are a viewer" in response.json()["error"]
    assert callbacks == []
    assert list(AlertChannel.objects.values_list("pk", "enabled", "target")) == [
        (hook.pk, True, WEBHOOK)
    ]
    entry = AuditEntry.objects.get()
    assert entry.username == "watcher" and entry.result.startswith("refused")


def test_the_document_spells_out_kinds_severities_and_delivery_statuses():
    from tests.unit.clusters.web.api import openapi_check

    schemas = openapi_check.document()["components"]["schemas"]
    assert schemas["AlertChannelKind"]["enum"] == ["email", "webhook"]
    assert schemas["EventSeverity"]["enum"] == ["info", "warning", "critical"]
    assert schemas["AlertDeliveryStatus"]["enum"] == ["sent", "failed", "suppressed", "test"]
    assert "AlertChannelIn" in schemas and "AlertChannelPatchIn" in schemas
