"""Event subscriptions deliver: a recorded event reaches a real receiver on loopback as signed
JSON; only the subscriptions that want it get it; failures are recorded and retried; SSRF
checks hold at save time and at send time; secrets and URLs stay out of the record."""

import time
import uuid
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.db import connection, transaction
from django.utils import timezone

from clusters.alerts.events import event_record
from clusters.inventory.services import InvalidInput
from clusters.models import (
    Cluster,
    ClusterEvent,
    DeliveryStatus,
    EventDelivery,
    EventSubscription,
)
from clusters.subscriptions import tasks
from clusters.subscriptions.sending import delivery_attempt
from clusters.subscriptions.services import (
    KEEP_FINISHED,
    OVERDUE_GRACE,
    deliveries_overdue,
    deliveries_prune,
    subscription_create,
    subscription_enabled_set,
    subscription_secret_rotate,
    subscription_test_queue,
    subscriptions_dispatch,
    subscriptions_for,
)
from clusters.subscriptions.signing import signature, signature_valid

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.objects.create(name="pg1")


@pytest.fixture
def queued(monkeypatch) -> dict[str, list[int]]:
    """The Celery messages sent (by name), none to a broker; alerts' too."""
    sent: dict[str, list[int]] = {"dispatch": [], "deliver": [], "alerts": []}
    monkeypatch.setattr(tasks.dispatch_event, "delay", sent["dispatch"].append)
    monkeypatch.setattr(tasks.deliver, "delay", sent["deliver"].append)
    monkeypatch.setattr("clusters.alerts.tasks.send_alerts.delay", sent["alerts"].append)
    return sent


def subscribe(receiver, **data) -> EventSubscription:
    subscription = subscription_create(data={"name": "bot", "url": receiver.url, **data})
    receiver.secret = subscription.secret
    return subscription


def failover(cluster: Cluster, **fields) -> ClusterEvent:
    """An event row as the monitor records it, without queueing anything."""
    return ClusterEvent.objects.create(
        cluster=cluster,
        kind=fields.pop("kind", ClusterEvent.Kind.FAILOVER),
        severity=fields.pop("severity", ClusterEvent.Severity.CRITICAL),
        at=timezone.now(),
        summary="failover from node1 to node2",
        **fields,
    )


# --- From event_record to the receiver ---------------------------------------------------------


def test_a_recorded_event_reaches_the_receiver_as_signed_json(
    cluster, receiver, loopback_allowed, queued, django_capture_on_commit_callbacks
):
    subscription = subscribe(receiver)
    with django_capture_on_commit_callbacks(execute=True):
        event = event_record(
            cluster,
            ClusterEvent.Kind.FAILOVER,
            "failover from node1 to node2",
            severity=ClusterEvent.Severity.CRITICAL,
            old_primary="node1",
            new_primary="node2",
            downtime_s=12.5,
            lost_bytes=0,
        )
    assert queued["dispatch"] == [event.pk] and queued["alerts"] == [event.pk]
    with django_capture_on_commit_callbacks(execute=True):
        tasks.dispatch_event.apply(args=[event.pk])  # what the worker runs
    delivery = EventDelivery.objects.get(subscription=subscription, event=event)
    assert queued["deliver"] == [delivery.pk]
    tasks.deliver.apply(args=[delivery.pk])

    [post] = receiver.posts
    assert post.path == "/hooks/T0KEN-in-path"
    assert post.signature_ok
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["X-HACenter-Event"] == "failover"
    assert post.headers["X-HACenter-Delivery"] == str(delivery.delivery_id)
    uuid.UUID(post.headers["X-HACenter-Delivery"])
    assert abs(int(post.headers["X-HACenter-Timestamp"]) - time.time()) < 10
    assert post.headers["X-HACenter-Signature"] == signature(
        subscription.secret, int(post.headers["X-HACenter-Timestamp"]), post.body
    )
    body = post.json
    assert body["id"] == event.pk
    assert body["cluster"] == {"id": cluster.pk, "name": "pg1"}
    assert (body["kind"], body["severity"]) == ("failover", "critical")
    assert body["at"].endswith("Z") and body["at"].startswith(event.at.strftime("%Y-%m-%dT"))
    assert body["summary"] == "failover from node1 to node2"
    assert (body["old_primary"], body["new_primary"], body["downtime_s"]) == (
        "node1",
        "node2",
        12.5,
    )
    assert {"node", "lost_bytes", "details"} <= body.keys()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.http_status, delivery.attempts, delivery.error) == (
        DeliveryStatus.SENT,
        200,
        1,
        "",
    )
    assert delivery.last_attempt is not None


def test_no_message_is_queued_while_no_subscription_is_enabled(
    cluster, receiver, loopback_allowed, queued, django_capture_on_commit_callbacks
):
    subscription = subscribe(receiver)
    subscription_enabled_set(subscription=subscription, enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        event_record(cluster, ClusterEvent.Kind.NODE_DOWN, "node2 is down", node="node2")
    assert queued["dispatch"] == [] and len(queued["alerts"]) == 1


def test_nothing_is_queued_before_the_transaction_commits(
    cluster, receiver, loopback_allowed, queued
):
    subscribe(receiver)
    with transaction.atomic():
        event_record(cluster, ClusterEvent.Kind.NODE_DOWN, "node2 is down", node="node2")
        assert queued["dispatch"] == []


# --- Which subscriptions want an event ---------------------------------------------------------


def test_subscriptions_match_by_cluster_kind_and_severity(cluster, loopback_allowed):
    other = Cluster.objects.create(name="pg2")
    url = "http://127.0.0.1:9/hook"

    def make(name: str, **data) -> EventSubscription:
        return subscription_create(data={"name": name, "url": url, **data})

    everything = make("everything")
    this_cluster = make("pg1 only", cluster=cluster.pk)
    make("pg2 only", cluster=other.pk)
    node_events = make("node events", kinds=["node_down", "node_up"])
    make("failovers", kinds=["failover"])
    warnings_up = make("warnings", min_severity="warning")
    make("criticals", min_severity="critical")
    paused = make("paused")
    subscription_enabled_set(subscription=paused, enabled=False)

    node_down = failover(cluster, kind="node_down", severity="warning", node="node2")
    assert list(subscriptions_for(node_down)) == [
        everything,
        this_cluster,
        node_events,
        warnings_up,
    ]
    info_on_other = failover(other, kind="lag_ok", severity="info")
    assert [s.name for s in subscriptions_for(info_on_other)] == ["everything", "pg2 only"]


def test_a_disabled_subscription_is_skipped_by_the_dispatch(cluster, receiver, loopback_allowed):
    subscription = subscribe(receiver)
    subscription_enabled_set(subscription=subscription, enabled=False)
    assert subscriptions_dispatch(event_id=failover(cluster).pk) == []
    assert not EventDelivery.objects.exists() and receiver.posts == []


def test_a_redelivered_dispatch_makes_no_second_delivery(cluster, receiver, loopback_allowed):
    subscribe(receiver)
    event = failover(cluster)
    assert len(subscriptions_dispatch(event_id=event.pk)) == 1
    assert subscriptions_dispatch(event_id=event.pk) == []
    assert EventDelivery.objects.count() == 1


def test_a_redelivered_attempt_sends_nothing_twice(cluster, receiver, loopback_allowed):
    subscribe(receiver)
    [pk] = subscriptions_dispatch(event_id=failover(cluster).pk)
    assert delivery_attempt(pk=pk, attempt=1, last=False) == DeliveryStatus.SENT
    assert delivery_attempt(pk=pk, attempt=1, last=False) is None  # claimed already
    assert delivery_attempt(pk=pk, attempt=2, last=False) is None  # finished
    assert len(receiver.posts) == 1


# --- Failures and retries ----------------------------------------------------------------------


def test_a_failed_attempt_is_recorded_and_retried_with_the_same_delivery_id(
    cluster, receiver, loopback_allowed
):
    subscribe(receiver)
    receiver.statuses = [500, 503]
    [pk] = subscriptions_dispatch(event_id=failover(cluster).pk)
    # Eagerly, Celery runs each retry at once (the countdowns are checked below).
    tasks.deliver.apply(args=[pk])
    delivery = EventDelivery.objects.get(pk=pk)
    assert (delivery.status, delivery.attempts, delivery.http_status, delivery.error) == (
        DeliveryStatus.SENT,
        3,
        200,
        "",
    )
    ids = {p.headers["X-HACenter-Delivery"] for p in receiver.posts}
    assert len(receiver.posts) == 3 and ids == {str(delivery.delivery_id)}
    assert all(p.signature_ok for p in receiver.posts)


def test_retries_wait_10_s_60_s_and_5_min_then_the_delivery_fails(
    cluster, receiver, loopback_allowed, monkeypatch
):
    subscribe(receiver)
    receiver.statuses = [500] * 10
    [pk] = subscriptions_dispatch(event_id=failover(cluster).pk)
    countdowns: list[int] = []

    def retry(countdown: int, **_kw) -> Retry:
        countdowns.append(countdown)
        return Retry("again later")

    monkeypatch.setattr(tasks.deliver, "retry", retry)
    seen = []
    for tried in range(4):  # what the broker would run: the first attempt, then 3 retries
        tasks.deliver.apply(args=[pk], retries=tried)
        delivery = EventDelivery.objects.get(pk=pk)
        seen.append((delivery.status, delivery.attempts))
    assert countdowns == [10, 60, 300]
    assert seen == [("retrying", 1), ("retrying", 2), ("retrying", 3), ("failed", 4)]
    assert delivery.error == "HTTP 500 Internal Server Error" and delivery.http_status == 500
    assert len(receiver.posts) == 4


def test_a_lost_attempt_is_queued_again_once_overdue_and_finished_ones_are_pruned(
    cluster, receiver, loopback_allowed, queued
):
    subscribe(receiver)
    never, retrying, done = (
        subscriptions_dispatch(event_id=failover(cluster).pk)[0] for _ in "abc"
    )
    now = timezone.now()
    # A first attempt failed and its retry's message was lost with a worker; one was sent.
    EventDelivery.objects.filter(pk=retrying).update(
        status="retrying", attempts=1, last_attempt=now
    )
    tasks.deliver.apply(args=[done])
    assert deliveries_overdue(delays_s=tasks.RETRY_DELAYS_S, now=now) == []  # not due yet
    late = now + OVERDUE_GRACE + timedelta(seconds=11)  # past the grace and the 10 s retry
    overdue = deliveries_overdue(delays_s=tasks.RETRY_DELAYS_S, now=late)
    assert overdue == [(never, 0), (retrying, 1)]
    # Resumed, an attempt counts on from those already made: the retrying one's is its second
    # (a first would be refused by the claim, and nothing would ever send it).
    for delivery_id, attempts in overdue:
        tasks.deliver.apply(args=[delivery_id, attempts])
    assert EventDelivery.objects.get(pk=retrying).attempts == 2
    assert set(EventDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    assert deliveries_prune(now=now + KEEP_FINISHED - timedelta(seconds=5)) == 0  # kept a while
    assert deliveries_prune(now=now + KEEP_FINISHED + timedelta(seconds=5)) == 3
    assert not EventDelivery.objects.exists()


def test_a_redirect_is_not_followed(cluster, receiver, loopback_allowed):
    subscribe(receiver)
    receiver.statuses = [302]
    receiver.answer_headers = {"Location": "/elsewhere"}
    [pk] = subscriptions_dispatch(event_id=failover(cluster).pk)
    assert delivery_attempt(pk=pk, attempt=1, last=True) == DeliveryStatus.FAILED
    delivery = EventDelivery.objects.get(pk=pk)
    assert "redirects are not followed" in delivery.error and delivery.http_status == 302
    assert [p.path for p in receiver.posts] == ["/hooks/T0KEN-in-path"]  # no GET /elsewhere


def test_a_receiver_that_is_not_listening_is_a_one_line_error_without_the_url(
    cluster, receiver, loopback_allowed
):
    subscription = subscribe(receiver)
    # A port nothing listens on (the receiver's, once closed, could be reused).
    EventSubscription.objects.filter(pk=subscription.pk).update(url="http://127.0.0.1:9/T0KEN/x")
    [pk] = subscriptions_dispatch(event_id=failover(cluster).pk)
    assert delivery_attempt(pk=pk, attempt=1, last=False) == DeliveryStatus.RETRYING
    error = EventDelivery.objects.get(pk=pk).error
    assert error.startswith("cannot reach the webhook") and "T0KEN" not in error


def test_the_signature_of_a_rotated_secret_fails_at_a_receiver_holding_the_old_one(
    cluster, receiver, loopback_allowed
):
    subscription = subscribe(receiver)
    old = subscription.secret
    new = subscription_secret_rotate(subscription=subscription)
    assert new != old and EventSubscription.objects.get().secret == new
    [pk] = subscriptions_dispatch(event_id=failover(cluster).pk)
    assert delivery_attempt(pk=pk, attempt=1, last=True) == DeliveryStatus.FAILED
    assert not receiver.posts[0].signature_ok
    assert EventDelivery.objects.get(pk=pk).error == "HTTP 401 Unauthorized"


def test_a_subscription_paused_after_queueing_sends_nothing(cluster, receiver, loopback_allowed):
    subscription = subscribe(receiver)
    [pk] = subscriptions_dispatch(event_id=failover(cluster).pk)
    subscription_enabled_set(subscription=subscription, enabled=False)
    assert delivery_attempt(pk=pk, attempt=1, last=False) == DeliveryStatus.FAILED
    assert "paused" in EventDelivery.objects.get(pk=pk).error and receiver.posts == []


def test_a_test_delivery_is_sent_even_while_paused(cluster, receiver, loopback_allowed):
    subscription = subscribe(receiver, cluster=cluster.pk)
    subscription_enabled_set(subscription=subscription, enabled=False)
    delivery = subscription_test_queue(subscription=subscription)
    assert delivery_attempt(pk=delivery.pk, attempt=1, last=True) == DeliveryStatus.SENT
    [post] = receiver.posts
    assert post.signature_ok and post.headers["X-HACenter-Event"] == "test"
    assert post.json["kind"] == "test" and post.json["id"] is None
    assert post.json["cluster"] == {"id": cluster.pk, "name": "pg1"}


# --- SSRF: where a subscription may point ------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://localhost/hook", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("ftp://hooks.example.com/x", "http:// or https://"),
        ("https://user:pw@hooks.example.com/x", "no user name or password"),
    ],
)
def test_a_url_the_worker_may_not_reach_is_refused_when_saved(url, says):
    with pytest.raises(InvalidInput) as refused:
        subscription_create(data={"name": "bot", "url": url})
    [message] = refused.value.field_errors["url"]
    assert says in message
    assert not EventSubscription.objects.exists()


def test_loopback_is_accepted_only_when_its_network_is_allow_listed(settings):
    with pytest.raises(InvalidInput):
        subscription_create(data={"name": "bot", "url": "http://127.0.0.1:8080/hook"})
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    subscription_create(data={"name": "bot", "url": "http://127.0.0.1:8080/hook"})


def test_a_row_saved_while_allowed_is_refused_at_send_time_and_not_retried(
    cluster, receiver, loopback_allowed, settings
):
    subscribe(receiver)
    [pk] = subscriptions_dispatch(event_id=failover(cluster).pk)
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    assert delivery_attempt(pk=pk, attempt=1, last=False) == DeliveryStatus.FAILED
    delivery = EventDelivery.objects.get(pk=pk)
    assert delivery.error.startswith("refused:") and "loopback" in delivery.error
    assert receiver.posts == []


# --- Secrets ------------------------------------------------------------------------------------


def test_the_url_and_the_secret_are_stored_encrypted(receiver, loopback_allowed):
    subscription = subscribe(receiver)
    assert len(subscription.secret) >= 43  # token_urlsafe(32)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT url, secret FROM clusters_eventsubscription WHERE id = %s", [subscription.pk]
        )
        raw_url, raw_secret = cursor.fetchone()
    assert "T0KEN" not in raw_url and subscription.secret not in raw_secret
    assert "T0KEN" not in str(subscription)


def test_a_receiver_refuses_a_replayed_or_altered_request():
    secret, body, now = "s3cret", b'{"kind":"failover"}', time.time()
    sent = int(now)
    good = signature(secret, sent, body)
    assert signature_valid(secret, timestamp=str(sent), body=body, signature_header=good, now=now)
    assert not signature_valid(
        secret, timestamp=str(sent), body=body + b" ", signature_header=good, now=now
    )
    assert not signature_valid(
        "other", timestamp=str(sent), body=body, signature_header=good, now=now
    )
    # The same request replayed six minutes later, or its timestamp moved forward.
    assert not signature_valid(
        secret, timestamp=str(sent), body=body, signature_header=good, now=now + 360
    )
    assert not signature_valid(
        secret, timestamp=str(sent + 360), body=body, signature_header=good, now=now + 360
    )
    assert not signature_valid(secret, timestamp="soon", body=body, signature_header=good)
