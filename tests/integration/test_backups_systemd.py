"""Backups with pgBackRest on fresh systemd servers (issue 22 parts 1 and 2).

A customer's cluster set up through the API with backups on (the repository on the proxy):
pgBackRest installed and configured by setup itself, since the policy came first (TLS servers
with the cluster's CA, no SSH keys between servers), WAL archived; pgbench writes; a full
backup that `pgbackrest info` lists; a power-off of the primary; writes on the new primary; a
differential backup taken from the new primary; and the WAL archive with no missing segment
from the full backup's first WAL to the newest, across the timeline switch. Then point-in-time
recovery onto a new server, and the old primary, powered on again, rebuilt by a full copy that
Patroni restores from the repository (issue 22 part 4) before it streams from the primary.
"""

import re
import shlex
import time

import pytest

from clusters.models import Cluster
from jobs.models import JobStatus
from tests.conftest import wait_for
from tests.integration.systemd_clusters import define_cluster
from tests.integration.test_fresh_servers_systemd import primary_name, run, sh, whole
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NAME = "bk"
WAL_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})-[0-9a-f]{40}")


AS_POSTGRES = "cd / && runuser -u postgres --"
PGBENCH = f"{AS_POSTGRES} pgbench -h /run/postgresql"


def psql(lab, host: str, sql: str) -> str:
    return sh(lab, host, f"{AS_POSTGRES} psql -XAtq -h /run/postgresql -c {shlex.quote(sql)}")


def archived_segments(lab) -> dict[int, set[int]]:
    """The WAL segments in the repository: {segment number: {timelines}} (not `.partial`s)."""
    out = sh(lab, "proxy", f"find /var/lib/pgbackrest/archive/{NAME} -type f -printf '%f\\n'")
    found: dict[int, set[int]] = {}
    for name in out.splitlines():
        m = WAL_NAME.match(name)
        if m and ".partial" not in name:
            tli, log, seg = (int(g, 16) for g in m.groups())
            found.setdefault(log * 0x100 + seg, set()).add(tli)
    return found


def segment_number(wal: str) -> int:
    return int(wal[8:16], 16) * 0x100 + int(wal[16:24], 16)


@pytest.mark.timeout(2400)
def test_point_in_time_recovery_across_a_failover_brings_a_dropped_table_back(
    fresh_systemd_lab, worker, api
):
    lab = fresh_systemd_lab
    cluster_id, login = define_cluster(api, lab, NAME)
    policy = api.put(f"/api/v1/clusters/{cluster_id}/backups/", {"retention_full": 2})
    assert policy.status_code == 200, policy.content
    assert policy.json()["repo_node"] == "proxy" and policy.json()["encrypted"]

    started = time.monotonic()
    setup = run(api, cluster_id, "setup")
    assert setup.status == JobStatus.SUCCEEDED, setup.error
    print(f"setup with backups on: {time.monotonic() - started:.0f} s")
    cluster = Cluster.objects.get(pk=cluster_id)
    secret = cluster.secrets.get(name="superuser").value
    cipher = cluster.secrets.get(name="backup_cipher").value
    dsn = f"postgresql://postgres:{secret}@{lab.proxy.address}:5432/postgres"
    wait_for(lambda: whole(lab, dsn), 60, "the cluster to take writes")

    # Setup configured the backups itself (the policy came first): no configure_backups job.
    for step in setup.steps.filter(name__startswith="backup_").order_by("position"):
        print(f"  {step.name} {step.node.name if step.node else ''}: {step.summary}")
    assert "check passed" in setup.steps.get(name="backup_stanza").summary
    # pgBackRest's port: the cluster's hosts only (spare1 is no host of the cluster yet).
    assert "tcp dport 8432" in sh(lab, "proxy", "nft list table inet hacenter")
    for host in ("proxy", "node1", "node2"):
        state = sh(lab, host, "systemctl is-active hacenter-pgbackrest.service", check=False)
        assert state == "active", host
    # The passphrase is on the repository host only, and in no job log.
    assert cipher in sh(lab, "proxy", "cat /etc/pgbackrest/pgbackrest.conf")
    assert cipher not in sh(lab, "node1", "cat /etc/pgbackrest/pgbackrest.conf")
    assert not any(cipher in line.text for line in setup.log_lines.all())

    first = primary_name(lab)
    sh(lab, first, f"{PGBENCH} -q -i -s 5 postgres")
    sh(lab, first, f"{PGBENCH} -T 10 -c 2 postgres")

    started = time.monotonic()
    full = run(api, cluster_id, "backup", backup_type="full")
    assert full.status == JobStatus.SUCCEEDED, full.error
    print(f"full backup job: {time.monotonic() - started:.0f} s; {full.steps.last().summary}")
    info = sh(lab, "proxy", f"cd / && runuser -u pgbackrest -- pgbackrest --stanza={NAME} info")
    print(info)
    assert "full backup" in info and "status: ok" in info and "aes-256-cbc" in info
    answer = api.get(f"/api/v1/clusters/{cluster_id}/backups/").json()
    assert [b["type"] for b in answer["backups"]] == ["full"], answer
    backup = answer["backups"][0]
    assert backup["size_bytes"] > 50_000_000 and backup["wal_start"], backup
    print(f"API: {answer['summary']}")

    # More writes, then the primary loses power while writes go on through the proxy.
    sh(lab, first, f"{PGBENCH} -T 10 -c 2 postgres")
    survivor = "node2" if first == "node1" else "node1"
    writer = ProxyWriter(dsn)
    writer.start()
    try:
        wait_for(lambda: writer.acks, 20, "a first write")
        cut = time.monotonic()
        lab.power_off(first)
        address = lab.host(survivor).address
        wait_for(
            lambda: any(a.server == address and a.at > cut for a in writer.acks),
            120,
            f"writes on {survivor}",
        )
    finally:
        writer.stop()
    sh(
        lab,
        survivor,
        f"{PGBENCH} -T 10 -c 2 postgres",
    )
    timeline = int(psql(lab, survivor, "SELECT timeline_id FROM pg_control_checkpoint()"))
    assert timeline >= 2

    # A differential from the new primary: pgBackRest finds it among the pg hosts by itself
    # (the old one is off), and its check of the archive passes.
    started = time.monotonic()
    diff = run(api, cluster_id, "backup", backup_type="diff")
    assert diff.status == JobStatus.SUCCEEDED, diff.error
    print(f"diff backup job with {first} off: {time.monotonic() - started:.0f} s")
    answer = api.get(f"/api/v1/clusters/{cluster_id}/backups/").json()
    assert [b["type"] for b in answer["backups"]] == ["full", "diff"], answer
    print(f"after the failover: {answer['summary']}")
    archiver = answer["archiver"]
    assert archiver["failed_count"] == 0, archiver

    # No gap: every segment from the full backup's first WAL to the newest is archived, on
    # one timeline or the other.
    segments = archived_segments(lab)
    low = segment_number(backup["wal_start"])
    high = max(segments)
    missing = [n for n in range(low, high + 1) if n not in segments]
    print(
        f"archive: segments {low:#x}..{high:#x} ({high - low + 1}), timelines "
        f"{sorted({t for ts in segments.values() for t in ts})}, missing {missing}"
    )
    assert not missing
    assert any(timeline in ts for ts in segments.values())

    # A restore point after the failover, then the mistake.
    rows = psql(lab, survivor, "SELECT count(*) FROM pgbench_history")
    balance = psql(lab, survivor, "SELECT sum(abalance) FROM pgbench_accounts")
    point = run(api, cluster_id, "restore_point", name="before_drop")
    assert point.status == JobStatus.SUCCEEDED, point.error
    print(f"restore point: {point.steps.get().summary}")
    psql(lab, survivor, "DROP TABLE pgbench_history")
    # life goes on after the drop
    psql(lab, survivor, "CREATE TABLE after_drop AS SELECT generate_series(1, 100000) AS n")

    # Point-in-time recovery onto a new server (spare1), which is no member of the cluster.
    lab.power_on("spare1")
    target = lab.host("spare1").address
    scan = api.post("/api/v1/host-keys/scan/", {"address": target, "port": 22}).json()
    node1 = lab.host("node1").address
    member = api.post(
        f"/api/v1/clusters/{cluster_id}/jobs/",
        {
            "kind": "restore",
            "address": node1,
            "credential": login,
            "host_key_fingerprint": scan["fingerprint"],
            "target_type": "name",
            "target": "before_drop",
            "confirm": node1,
        },
    )
    assert member.status_code == 400 and "never goes onto a member" in member.json()["error"]
    started = time.monotonic()
    restore = run(
        api,
        cluster_id,
        "restore",
        address=target,
        credential=login,
        host_key_fingerprint=scan["fingerprint"],
        target_type="name",
        target="before_drop",
        confirm=target,
    )
    assert restore.status == JobStatus.SUCCEEDED, restore.error
    print(f"restore job: {time.monotonic() - started:.0f} s")
    for step in restore.steps.order_by("position"):
        print(f"  {step.name}: {step.summary}")
    assert psql(lab, "spare1", "SELECT count(*) FROM pgbench_history") == rows
    assert psql(lab, "spare1", "SELECT sum(abalance) FROM pgbench_accounts") == balance
    assert psql(lab, "spare1", "SELECT pg_is_in_recovery()") == "f"
    # The copy archives nothing into the cluster's repository.
    assert psql(lab, "spare1", "SHOW archive_mode") == "off"
    # ... and holds nothing written after the point.
    assert psql(lab, "spare1", "SELECT to_regclass('after_drop') IS NULL") == "t"
    print(f"restored on spare1: pgbench_history {rows} rows, balance sum {balance}")
    # The restore let spare1 through the repository's firewall for its own time only.
    assert target not in sh(lab, "proxy", "nft list set inet hacenter pgbackrest_v4")

    # The old primary comes back; a Rebuild by full copy: Patroni restores it from the
    # repository (the backups above), it replays the archive and streams from the primary.
    lab.power_on(first)
    started = time.monotonic()
    rebuild = run(api, cluster_id, "rebuild", node=first, full_copy=True)
    assert rebuild.status == JobStatus.SUCCEEDED, rebuild.error
    copy = rebuild.steps.get(name="reinitialise")
    print(f"rebuild of {first} by full copy: {time.monotonic() - started:.0f} s; {copy.summary}")
    assert copy.summary.startswith("copied by pgBackRest restore from the repository"), copy.summary
    said = [line.text for line in rebuild.log_lines.all()]
    assert any("replica has been created using pgbackrest" in t for t in said), said[-40:]
    assert psql(lab, first, "SELECT pg_is_in_recovery()") == "t"
    # written after every backup: it came by the archive or by streaming
    assert psql(lab, first, "SELECT count(*) FROM after_drop") == "100000"
    psql(lab, survivor, "CREATE TABLE after_rebuild AS SELECT 1 AS n")
    wait_for(
        lambda: psql(lab, first, "SELECT to_regclass('after_rebuild') IS NOT NULL") == "t",
        30,
        f"{first} to stream the primary's writes",
    )
