"""The subscriptions' Celery tasks (thin: load by id, call a service) and
`subscriptions_enqueue`, which clusters.alerts.events.event_record calls beside alerts_enqueue.

A failed attempt is retried with Celery's retry after RETRY_DELAYS_S (10 s, 60 s, 5 min): four
attempts in all, each recorded on the delivery (attempts, last error, HTTP status). Messages are
acknowledged early, so a worker lost mid-attempt (or a broker that lost the retry) would leave a
delivery waiting forever: beat's `resume_deliveries` queues the next attempt of any delivery
whose attempt is overdue, and drops finished deliveries past their keeping time.
"""

from celery import shared_task
from django.db import transaction

from clusters.models import ClusterEvent, DeliveryStatus, EventSubscription
from clusters.subscriptions.sending import delivery_attempt
from clusters.subscriptions.services import (
    deliveries_overdue,
    deliveries_prune,
    subscriptions_dispatch,
)

RETRY_DELAYS_S = (10, 60, 300)


def subscriptions_enqueue(*, event: ClusterEvent) -> None:
    """Queue the event's deliveries once the transaction that created it commits (the worker
    must find the row); call this right after creating a ClusterEvent."""
    event_id = event.pk

    def queue() -> None:
        # Most consoles have no subscription: no message for the worker then.
        if EventSubscription.objects.filter(enabled=True).exists():
            dispatch_event.delay(event_id)

    transaction.on_commit(queue)


def delivery_enqueue(*, delivery_id: int) -> None:
    """Queue the first attempt at a delivery once its row is committed."""
    transaction.on_commit(lambda: deliver.delay(delivery_id))


@shared_task(name="clusters.subscriptions.dispatch_event", ignore_result=True)
def dispatch_event(event_id: int) -> None:
    """Make the event's deliveries and queue an attempt at each."""
    for delivery_id in subscriptions_dispatch(event_id=event_id):
        delivery_enqueue(delivery_id=delivery_id)


@shared_task(
    bind=True,
    name="clusters.subscriptions.deliver",
    ignore_result=True,
    max_retries=len(RETRY_DELAYS_S),
)
def deliver(self, delivery_id: int, attempts_before: int = 0) -> None:
    """One attempt at a delivery; a failure that may pass is retried after the next delay.
    `attempts_before`: the attempts already made when this task was queued (a resumed one)."""
    tried = attempts_before + self.request.retries  # attempts made before this one
    status = delivery_attempt(pk=delivery_id, attempt=tried + 1, last=tried >= len(RETRY_DELAYS_S))
    if status == DeliveryStatus.RETRYING:
        raise self.retry(countdown=RETRY_DELAYS_S[tried])


@shared_task(name="clusters.subscriptions.resume_deliveries", ignore_result=True)
def resume_deliveries() -> None:
    """Queue the overdue attempts (see the module's docstring); prune old finished ones."""
    for delivery_id, attempts in deliveries_overdue(delays_s=RETRY_DELAYS_S):
        deliver.delay(delivery_id, attempts)
    deliveries_prune()
