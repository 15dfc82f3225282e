"""The freeze hazard (DESIGN.md §2): the primary's PostgreSQL and Patroni are stopped with
SIGSTOP for 30 s, then resumed, while a writer goes through the proxy. On a sync cluster no
acknowledged write may be lost, and writes never go to two nodes. Debian's Patroni 3.0.2 failed
this; the Patroni the setup job installs must pass it."""

import time

import pytest

from jobs import patroni_api, services
from jobs.models import JobStatus
from tests.conftest import wait_for
from tests.integration.conftest import wait_for_job
from tests.integration.test_setup_lab import define_cluster
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def leader_name(*addresses: str) -> str | None:
    """The leader every answering member agrees on; None while they disagree. A member whose
    network just came back still shows its old view (itself as leader) until it reaches etcd."""
    seen = set()
    for address in addresses:
        try:
            found = patroni_api.leader(patroni_api.cluster(address, timeout=1)["members"])
        except patroni_api.PatroniUnavailable:
            continue
        seen.add(found["name"] if found else None)
    return seen.pop() if len(seen) == 1 else None


def test_frozen_primary_loses_no_acknowledged_write_on_a_sync_cluster(fresh_lab, worker):
    cluster = define_cluster(fresh_lab, "pgfreeze", replication="sync")
    job = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=600)
    assert job.status == JobStatus.SUCCEEDED, job.error
    password = cluster.secrets.get(name="superuser").value
    writer = ProxyWriter(f"postgresql://postgres:{password}@198.18.0.10:5432/postgres")
    writer.start()
    try:
        wait_for(lambda: len(writer.acks) >= 20, 30, "the writer to get going")
        fresh_lab.exec("node1", ["pkill", "-STOP", "-u", "postgres"])
        frozen_at = time.monotonic()
        try:
            wait_for(lambda: leader_name("198.18.0.12") == "node2", 60, "node2 to take over")
        finally:
            time.sleep(max(0.0, 30 - (time.monotonic() - frozen_at)))
            fresh_lab.exec("node1", ["pkill", "-CONT", "-u", "postgres"])
        resumed_at = time.monotonic()
        wait_for(
            lambda: any(a.at > resumed_at + 10 for a in writer.acks),
            60,
            "writes to go on for 10 s after the old primary resumed",
        )
    finally:
        writer.stop()
    assert leader_name("198.18.0.11", "198.18.0.12") == "node2"
    acked = {a.id for a in writer.acks}
    missing = acked - writer.stored_ids()
    assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:10]}"
    # One hand-over, never back: node1 then node2.
    assert writer.servers_in_order() == ["198.18.0.11", "198.18.0.12"], writer.servers_in_order()
    before = [a for a in writer.acks if a.at < frozen_at]
    after = [a for a in writer.acks if a.at > frozen_at]
    print(
        f"freeze: {len(before)} writes before, {len(after)} after; first write on node2 "
        f"{after[0].at - frozen_at:.1f} s after the freeze; {len(writer.errors)} failed attempts"
    )
