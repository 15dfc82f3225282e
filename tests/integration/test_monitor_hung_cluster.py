"""A cluster that never answers must not delay the monitor's other clusters: real reads against
fake Patroni, PostgreSQL and HAProxy endpoints on loopback (tests/fake_endpoints.py), in-process
and then through a real Celery worker and beat. No network-namespace lab is needed."""

import time

import pytest
from django.conf import settings
from django.utils import timezone

from clusters.models import Cluster
from clusters.monitoring.batch import monitor_batch_run, monitor_claim_due
from tests import fake_endpoints
from tests.conftest import wait_for
from tests.workers import start_beat

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
CLUSTERS, HUNG = 4, 0  # cluster index 0 accepts connections and never answers


def address(cluster: int, host: int) -> str:
    return f"127.3.{cluster}.{host}"  # the benchmark uses 127.1.x.y


@pytest.fixture(scope="module")
def endpoints():
    process = fake_endpoints.start(address, CLUSTERS, hung=[HUNG])
    yield
    process.kill()


@pytest.fixture
def clusters(endpoints) -> list[Cluster]:
    return fake_endpoints.make_clusters(address, CLUSTERS, "fake")


def test_a_hung_cluster_in_the_same_batch_is_written_after_the_others(clusters, settings):
    settings.MONITOR_BATCH_SIZE = 25  # all four in one batch: the hardest case
    started = timezone.now()
    lease, batches = monitor_claim_due()
    assert len(batches) == 1
    states = monitor_batch_run(cluster_ids=batches[0], lease=lease)
    checked = {c.name: c for c in Cluster.objects.all()}
    answering = [checked[f"fake{c:03}"] for c in range(CLUSTERS) if c != HUNG]
    hung = checked[f"fake{HUNG:03}"]
    for cluster in answering:
        assert cluster.state == "healthy", states
        # Written as soon as its own reads returned, not after the hung cluster's timeouts.
        assert (cluster.last_checked - started).total_seconds() < settings.MONITOR_TIMEOUT_S / 2
        assert cluster.monitor_lease is None
    assert hung.state == "unknown"
    assert (hung.last_checked - started).total_seconds() >= settings.MONITOR_TIMEOUT_S
    assert hung.monitor_lease is None


def test_statuses_of_answering_clusters_stay_fresh_beside_a_hung_one(clusters, worker):
    """Beat and a real worker for 10 s: the hung cluster, read every round for its full
    timeouts, never makes another cluster's status older than a period plus one pass."""
    beat = start_beat()
    try:
        answering = [c.pk for c in clusters[1:]]
        wait_for(
            lambda: not Cluster.objects.filter(pk__in=answering, last_checked=None).exists(),
            30,
            "the first passes",
        )
        oldest = 0.0
        end = time.monotonic() + 10
        while time.monotonic() < end:
            ages = [
                (timezone.now() - checked).total_seconds()
                for checked in Cluster.objects.filter(pk__in=answering).values_list(
                    "last_checked", flat=True
                )
            ]
            oldest = max(oldest, *ages)
            time.sleep(0.2)
        hung = Cluster.objects.get(pk=clusters[HUNG].pk)
    finally:
        beat.stop()
    print(f"oldest status age beside a hung cluster: {oldest:.2f} s")
    assert oldest <= settings.MONITOR_INTERVAL_S + 1.5
    assert hung.state == "unknown" and hung.last_checked is not None
