"""Event subscriptions through the REST API: admins change, viewers read; the secret is in the
create and rotate answers only; URLs are answered shortened; every change and refusal is
audited without the URL or the secret. (conftest.py checks every answer against the OpenAPI
document.)"""

import json

import pytest

from clusters.access.roles import VIEWER
from clusters.models import (
    ApiToken,
    AuditEntry,
    Cluster,
    ClusterEvent,
    EventDelivery,
    EventSubscription,
)
from clusters.subscriptions import tasks
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:8080/hooks/T0KEN-in-path"
BASE = "/api/v1/subscriptions/"


@pytest.fixture(autouse=True)
def loopback(settings) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]


class Caller:
    """A test client sending one user's token with any method and a JSON body."""

    def __init__(self, client, user) -> None:
        self.client, self.token = client, ApiToken.issue(user) if user else None

    def __call__(self, method: str, path: str, body: dict | None = None, **kw):
        headers = {"HTTP_AUTHORIZATION": f"Token {self.token}"} if self.token else {}
        return self.client.generic(
            method,
            path,
            json.dumps(body) if body is not None else "",
            content_type="application/json",
            **headers,
            **kw,
        )


@pytest.fixture
def admin(client, user) -> Caller:
    return Caller(client, user)


@pytest.fixture
def viewer(client, django_user_model) -> Caller:
    return Caller(client, make_user(django_user_model, "watcher", VIEWER))


def create(admin: Caller, **data) -> dict:
    answer = admin("POST", BASE, {"name": "bot", "url": URL, **data})
    assert answer.status_code == 201, answer.content
    return answer.json()


def audit_text() -> str:
    return json.dumps(list(AuditEntry.objects.values("action", "target", "params", "result")))


def test_create_answers_the_secret_once_and_reads_never_do(admin, viewer):
    cluster = Cluster.objects.create(name="pg1")
    answer = admin(
        "POST",
        BASE,
        {"name": "bot", "url": URL, "cluster": cluster.pk, "kinds": ["failover"]},
    )
    assert answer.status_code == 201 and "no-store" in answer["Cache-Control"]
    made = answer.json()
    subscription = EventSubscription.objects.get()
    assert made["secret"] == subscription.secret and len(made["secret"]) >= 43
    assert made["url_display"] == "http://127.0.0.1:8080/…"
    assert made["cluster"] == {"id": cluster.pk, "name": "pg1"}
    assert (made["kinds"], made["min_severity"], made["enabled"]) == (["failover"], "info", True)
    for reader in (admin, viewer):
        listed = reader("GET", BASE)
        one = reader("GET", f"{BASE}{made['id']}/")
        assert listed.status_code == one.status_code == 200
        for text in (listed.content.decode(), one.content.decode()):
            assert subscription.secret not in text and "T0KEN" not in text
        assert one.json() == {k: v for k, v in made.items() if k != "secret"}
    entry = AuditEntry.objects.get(action="event_subscription.create")
    assert entry.params == {
        "name": "bot",
        "cluster": "pg1",
        "kinds": ["failover"],
        "min_severity": "info",
        "enabled": True,
    }
    assert "T0KEN" not in audit_text() and subscription.secret not in audit_text()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"url": URL}, ["name"]),
        ({"name": "bot"}, ["url"]),
        ({"name": "bot", "url": "http://10.0.0.5/hook"}, ["url"]),
        ({"name": "bot", "url": URL, "kinds": ["nonsense"]}, ["kinds"]),
        ({"name": "bot", "url": URL, "cluster": 999999}, ["cluster"]),
        ({"name": "bot", "url": URL, "min_severity": "loud"}, ["min_severity"]),
        ({"name": "bot", "url": URL, "secret": "mine"}, ["non_field_errors"]),
    ],
)
def test_a_bad_body_is_refused_naming_its_fields_and_audited(admin, body, fields):
    answer = admin("POST", BASE, body)
    assert answer.status_code == 400
    assert sorted(answer.json()["field_errors"]) == fields
    assert not EventSubscription.objects.exists()
    entry = AuditEntry.objects.get(action="event_subscription.create")
    assert entry.result.startswith("refused") and "T0KEN" not in audit_text()


def test_a_loopback_url_is_refused_unless_allow_listed(admin, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    answer = admin("POST", BASE, {"name": "bot", "url": URL})
    assert answer.status_code == 400
    [message] = answer.json()["field_errors"]["url"]
    assert "loopback" in message and "HACENTER_WEBHOOK_ALLOWED_NETWORKS" in message


def test_patch_changes_only_the_fields_sent(admin):
    made = create(admin)
    answer = admin("PATCH", f"{BASE}{made['id']}/", {"enabled": False, "min_severity": "warning"})
    assert answer.status_code == 200
    assert (answer.json()["enabled"], answer.json()["min_severity"]) == (False, "warning")
    assert answer.json()["name"] == "bot"
    subscription = EventSubscription.objects.get()
    assert subscription.secret == made["secret"] and subscription.url == URL
    entry = AuditEntry.objects.get(action="event_subscription.update")
    assert entry.params["changed"] == ["enabled", "min_severity"]


def test_a_bad_patch_changes_nothing(admin):
    made = create(admin)
    answer = admin(
        "PATCH",
        f"{BASE}{made['id']}/",
        {"name": "renamed", "url": "http://169.254.169.254/latest/"},
    )
    assert answer.status_code == 400 and list(answer.json()["field_errors"]) == ["url"]
    subscription = EventSubscription.objects.get()
    assert (subscription.name, subscription.url) == ("bot", URL)
    entry = AuditEntry.objects.get(action="event_subscription.update")
    assert entry.result.startswith("refused") and "169.254" not in audit_text()


def test_rotate_answers_a_new_secret_once(admin):
    made = create(admin)
    answer = admin("POST", f"{BASE}{made['id']}/rotate-secret/")
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    secret = answer.json()["secret"]
    assert secret != made["secret"] and EventSubscription.objects.get().secret == secret
    assert secret not in admin("GET", f"{BASE}{made['id']}/").content.decode()
    assert AuditEntry.objects.filter(action="event_subscription.rotate_secret").exists()
    assert secret not in audit_text()


def test_test_queues_a_delivery_after_commit(
    admin, monkeypatch, django_capture_on_commit_callbacks
):
    made = create(admin)
    queued: list[int] = []
    monkeypatch.setattr(tasks.deliver, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        answer = admin("POST", f"{BASE}{made['id']}/test/")
    assert answer.status_code == 202
    delivery = EventDelivery.objects.get()
    assert queued == [delivery.pk]
    assert answer.json()["id"] == delivery.pk and answer.json()["status"] == "pending"
    assert answer.json()["kind"] == "test" and answer.json()["attempts"] == 0


def test_deliveries_are_listed_newest_first(admin, viewer):
    made = create(admin)
    subscription = EventSubscription.objects.get()
    cluster = Cluster.objects.create(name="pg1")
    event = ClusterEvent.objects.create(
        cluster=cluster, kind="node_down", severity="warning", at="2026-01-01T00:00Z", summary="x"
    )
    first = EventDelivery.objects.create(subscription=subscription, event=event, kind="node_down")
    second = EventDelivery.objects.create(
        subscription=subscription, kind="test", status="failed", attempts=4, error="HTTP 500"
    )
    answer = viewer("GET", f"{BASE}{made['id']}/deliveries/")
    assert answer.status_code == 200
    assert [d["id"] for d in answer.json()] == [second.pk, first.pk]
    assert answer.json()[1]["event"] == event.pk
    limited = viewer("GET", f"{BASE}{made['id']}/deliveries/?limit=1")
    assert [d["id"] for d in limited.json()] == [second.pk]
    bad = viewer("GET", f"{BASE}{made['id']}/deliveries/?limit=0")
    assert bad.status_code == 400 and list(bad.json()["field_errors"]) == ["limit"]


def test_delete_removes_it_and_its_deliveries(admin):
    made = create(admin)
    EventDelivery.objects.create(subscription=EventSubscription.objects.get(), kind="test")
    answer = admin("DELETE", f"{BASE}{made['id']}/")
    assert answer.status_code == 200 and answer.json()["id"] == made["id"]
    assert not EventSubscription.objects.exists() and not EventDelivery.objects.exists()
    assert admin("GET", f"{BASE}{made['id']}/").status_code == 404
    assert AuditEntry.objects.get(action="event_subscription.delete").params["name"] == "bot"


def test_viewers_read_but_change_nothing_and_strangers_are_refused(admin, viewer, client):
    made = create(admin)
    one = f"{BASE}{made['id']}/"
    before = AuditEntry.objects.count()
    for method, path, body in (
        ("POST", BASE, {"name": "mine", "url": URL}),
        ("PATCH", one, {"enabled": False}),
        ("DELETE", one, None),
        ("POST", f"{one}rotate-secret/", None),
        ("POST", f"{one}test/", None),
    ):
        refused = viewer(method, path, body)
        assert refused.status_code == 403, (method, path)
        assert "needs the admin role" in refused.json()["error"]
    subscription = EventSubscription.objects.get()
    assert (subscription.enabled, subscription.secret) == (True, made["secret"])
    assert EventSubscription.objects.count() == 1 and not EventDelivery.objects.exists()
    refusals = AuditEntry.objects.order_by("pk")[before:]
    assert len(refusals) == 5 and all(e.result.startswith("refused") for e in refusals)
    anonymous = Caller(client, None)
    assert anonymous("GET", BASE).status_code == 401
    assert anonymous("POST", BASE, {"name": "x", "url": URL}).status_code == 401


def test_an_unknown_subscription_is_404(admin):
    assert admin("GET", f"{BASE}999999/").status_code == 404
    assert admin("PATCH", f"{BASE}999999/", {"enabled": True}).status_code == 404
    assert admin("POST", f"{BASE}999999/test/").status_code == 404
