"""The alerts' Celery tasks (thin: load by id, call a service in `rules`) and `alerts_enqueue`.

Task names are the ones these tasks had before the alerts moved into their own package: a
message queued by an older console must still find its task."""

from celery import shared_task
from django.db import transaction

from clusters.alerts.rules import alert_test_send, alerts_dispatch
from clusters.models import AlertChannel, ClusterEvent


def alerts_enqueue(*, event: ClusterEvent) -> None:
    """Queue the event's alerts once the transaction that created it commits (the worker must
    find the row); call this right after creating a ClusterEvent."""
    event_id = event.pk
    transaction.on_commit(lambda: send_alerts.delay(event_id))


@shared_task(name="clusters.alerts.send_alerts", ignore_result=True)
def send_alerts(event_id: int) -> None:
    """Deliver one event's alerts."""
    alerts_dispatch(event_id=event_id)


@shared_task(name="clusters.alerts.send_test_alert", ignore_result=True)
def send_test_alert(channel_id: int) -> None:
    """Send a test alert on a channel, if it still exists."""
    channel = AlertChannel.objects.select_related("cluster").filter(pk=channel_id).first()
    if channel is not None:
        alert_test_send(channel=channel)
