"""The event subscriptions page: viewers read, admins change; the secret is shown once, never
cached, and never again; the URL is shown shortened; every change and refusal is audited
without the URL or the secret."""

import json

import pytest

from clusters.access.roles import VIEWER
from clusters.models import AuditEntry, Cluster, EventDelivery, EventSubscription
from clusters.subscriptions import tasks
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:8080/hooks/T0KEN-in-path?sig=abc"


@pytest.fixture(autouse=True)
def loopback(settings) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def admin(client, user):
    client.force_login(user)
    return client


def add(client, **data):
    return client.post("/subscriptions/", {"name": "bot", "url": URL, **data})


def audit_text() -> str:
    rows = AuditEntry.objects.values("action", "target", "params", "result")
    return json.dumps(list(rows))


def test_an_admin_adds_one_and_sees_its_secret_once(admin):
    cluster = Cluster.objects.create(name="pg1")
    page = add(admin, cluster=str(cluster.pk), kinds=["failover", "node_down"])
    assert page.status_code == 200
    subscription = EventSubscription.objects.get()
    html = page.content.decode()
    assert subscription.secret in html and "not shown again" in html
    assert "no-store" in page["Cache-Control"]
    assert (subscription.cluster, subscription.kinds) == (cluster, ["failover", "node_down"])
    later = admin.get("/subscriptions/").content.decode()
    assert subscription.secret not in later and "T0KEN" not in later
    assert "http://127.0.0.1:8080/…" in later and "failover, node_down" in later
    entry = AuditEntry.objects.get(action="event_subscription.create")
    assert entry.params["name"] == "bot" and entry.params["cluster"] == "pg1"
    assert "T0KEN" not in audit_text() and subscription.secret not in audit_text()


def test_a_bad_form_is_refused_with_its_messages_and_audited(admin, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    page = add(admin, name="", kinds=["nonsense"])
    assert page.status_code == 400
    html = page.content.decode()
    assert "Give the subscription a name" in html and "loopback address" in html
    assert "Unknown event kind" in html
    assert not EventSubscription.objects.exists()
    entry = AuditEntry.objects.get(action="event_subscription.create")
    assert entry.result.startswith("refused") and "T0KEN" not in audit_text()


def test_a_viewer_reads_the_page_and_changes_nothing(client, django_user_model, admin):
    add(admin)
    subscription = EventSubscription.objects.get()
    client.logout()
    client.force_login(make_user(django_user_model, "watcher", VIEWER))
    html = client.get("/subscriptions/").content.decode()
    assert "bot" in html and "Add a subscription" not in html and "New secret" not in html
    assert subscription.secret not in html
    before = AuditEntry.objects.count()
    for path in (
        "/subscriptions/",
        f"/subscriptions/{subscription.pk}/toggle/",
        f"/subscriptions/{subscription.pk}/rotate/",
        f"/subscriptions/{subscription.pk}/test/",
        f"/subscriptions/{subscription.pk}/delete/",
    ):
        refused = client.post(path, {"name": "mine", "url": URL})
        assert refused.status_code == 403, path
        assert "needs the admin role" in refused.content.decode()
    fresh = EventSubscription.objects.get()
    assert (fresh.enabled, fresh.secret) == (True, subscription.secret)
    assert not EventDelivery.objects.exists()
    refusals = AuditEntry.objects.order_by("pk")[before:]
    assert len(refusals) == 5 and all(e.result.startswith("refused") for e in refusals)


def test_pause_resume_rotate_test_and_remove(
    admin, monkeypatch, django_capture_on_commit_callbacks
):
    add(admin)
    subscription = EventSubscription.objects.get()
    base = f"/subscriptions/{subscription.pk}"

    assert admin.post(f"{base}/toggle/").status_code == 302
    assert EventSubscription.objects.get().enabled is False
    assert "paused" in admin.get("/subscriptions/").content.decode()
    admin.post(f"{base}/toggle/")
    assert EventSubscription.objects.get().enabled is True

    rotated = admin.post(f"{base}/rotate/")
    new = EventSubscription.objects.get().secret
    assert new != subscription.secret and new in rotated.content.decode()
    assert "no-store" in rotated["Cache-Control"]

    queued: list[int] = []
    monkeypatch.setattr(tasks.deliver, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.post(f"{base}/test/").status_code == 302
    delivery = EventDelivery.objects.get()
    assert queued == [delivery.pk] and delivery.kind == "test" and delivery.status == "pending"
    assert "test event" in admin.get("/subscriptions/").content.decode()

    assert admin.post(f"{base}/delete/").status_code == 302
    assert not EventSubscription.objects.exists() and not EventDelivery.objects.exists()

    actions = list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))
    assert actions == [
        "event_subscription.create",
        "event_subscription.disable",
        "event_subscription.enable",
        "event_subscription.rotate_secret",
        "event_subscription.test",
        "event_subscription.delete",
    ]
    text = audit_text()
    assert "T0KEN" not in text and new not in text and subscription.secret not in text


def test_the_nav_links_the_page_beside_alerts(admin):
    html = admin.get("/").content.decode()
    assert (
        'href="/alerts/">Alerts</a>' in html and 'href="/subscriptions/">Subscriptions</a>' in html
    )
