"""Keeping the status history small: raw samples for a day, minute aggregates for 30 days."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.db.models.functions import TruncMinute
from django.utils import timezone

from clusters.models import StatusSample


def samples_compact(now=None) -> tuple[int, int]:
    """Fold raw samples older than SAMPLES_RAW_KEEP_H into one row per node and minute (worst
    lag, last role), and drop minute rows older than SAMPLES_MINUTE_KEEP_D. Returns
    (raw rows folded, minute rows written)."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.SAMPLES_RAW_KEEP_H)
    old = StatusSample.objects.filter(resolution=StatusSample.Resolution.RAW, at__lt=cutoff)
    groups = (
        old.annotate(minute=TruncMinute("at"))
        .values("node_id", "minute")
        .annotate(
            lag_bytes=Max("lag_bytes"),
            lag_seconds=Max("lag_seconds"),
            timeline=Max("timeline"),
            last=Max("at"),
        )
    )
    rows = []
    for group in groups:
        last = old.filter(node_id=group["node_id"], at=group["last"]).first()
        rows.append(
            StatusSample(
                node_id=group["node_id"],
                at=group["minute"],
                resolution=StatusSample.Resolution.MINUTE,
                up=last.up if last else False,
                role=last.role if last else "unknown",
                timeline=group["timeline"],
                lag_bytes=group["lag_bytes"],
                lag_seconds=group["lag_seconds"],
            )
        )
    with transaction.atomic():
        StatusSample.objects.bulk_create(rows, batch_size=1000)
        folded, _ = old.delete()
        StatusSample.objects.filter(
            resolution=StatusSample.Resolution.MINUTE,
            at__lt=now - timedelta(days=settings.SAMPLES_MINUTE_KEEP_D),
        ).delete()
    return folded, len(rows)
