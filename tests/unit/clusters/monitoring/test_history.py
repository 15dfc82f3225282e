"""Status history: raw samples older than a day fold into minute rows; old minute rows go."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.models import Cluster, Credential, Node, StatusSample
from clusters.monitoring.history import samples_compact

pytestmark = pytest.mark.django_db


def test_old_raw_samples_fold_into_minutes_keeping_the_worst_lag():
    cred = Credential.objects.create(name="c", username="root", password="pw-123456")
    cluster = Cluster.objects.create(name="c1")
    node = Node.objects.create(
        cluster=cluster,
        name="node2",
        address="198.18.0.12",
        credential=cred,
        kind="database",
        host_key_type="ssh-ed25519",
        host_key_base64="AAAA",
        host_key_fingerprint="SHA256:x",
    )
    now = timezone.now().replace(second=30, microsecond=0)
    old_minute = now - timedelta(hours=25)
    for i, lag in enumerate([10, 500, 20]):  # three passes within one old minute
        StatusSample.objects.create(
            node=node,
            at=old_minute + timedelta(seconds=2 * i),
            up=True,
            role="replica",
            timeline=1,
            lag_bytes=lag,
            lag_seconds=0.1,
        )
    StatusSample.objects.create(
        node=node,
        at=now - timedelta(minutes=5),
        up=True,
        role="replica",
        timeline=1,
        lag_bytes=7,
        lag_seconds=0.0,
    )
    StatusSample.objects.create(
        node=node,
        at=now - timedelta(days=31),
        up=True,
        role="replica",
        resolution="1m",
        timeline=1,
        lag_bytes=1,
        lag_seconds=0.0,
    )
    folded, written = samples_compact(now=now)
    assert (folded, written) == (3, 1)
    minute = StatusSample.objects.get(resolution="1m")
    assert minute.lag_bytes == 500 and minute.role == "replica"
    assert minute.at == old_minute.replace(second=0)
    assert StatusSample.objects.filter(resolution="raw").count() == 1  # the recent one stays
