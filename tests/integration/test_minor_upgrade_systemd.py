"""Rolling minor upgrade on systemd servers that install from Debian's archive (issue 22 item 6).

The nodes start on an older build: before setup, the customer's apt configuration pins
PostgreSQL 15 and HAProxy to Debian 12's release suite (`bookworm`), while the archive's
`bookworm-security` offers a newer build of both (the lab's apt-cacher-ng reaches both). The
pin then goes, as an admin lifts it to let the upgrade happen, and:

- `check_updates` shows, per node, what is installed and what apt offers (API too);
- `minor_upgrade` moves every node while a writer writes through the proxy: writes pause only
  for the one switchover, no acknowledged write is lost, every node runs the new build (dpkg
  and the running PostgreSQL), Debian's `postgresql@15-main` stays masked and one HAProxy
  listens; a hold the admin places on the primary mid-job stops the job there with the
  cluster serving, and a retry finishes it.

Debian 12 has one build of etcd: the second test serves a rebuild of the nodes' own
etcd-server .deb (version +hclab1) from a local repository on the bridge (tests/lab/local_repo)
and checks that every member restarts on it, the primary's without a switchover.
"""

import time

import pytest

from clusters.models import Cluster, NodeVersions
from jobs.models import Job, JobStatus
from jobs.package_versions import compare
from tests.conftest import wait_for
from tests.integration.conftest import wait_for_job
from tests.integration.test_fresh_servers_systemd import (
    define,
    listeners,
    primary_name,
    run,
    sh,
    steps,
    whole,
)
from tests.integration.test_rotate_certificates_lab import longest_gap
from tests.lab import local_repo
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PINNED = ["postgresql-15", "postgresql-client-15", "libpq5", "haproxy"]
PIN_FILE = "/etc/apt/preferences.d/hclab-older-build"
PIN = f"Package: {' '.join(PINNED)}\nPin: release n=bookworm\nPin-Priority: 1001\n"
LOCAL_SOURCE = "/etc/apt/sources.list.d/hclab-local.list"
LOCAL_DIRECT = "/etc/apt/apt.conf.d/90hclab-local-direct"
# A switchover through the proxy measured 2.8-3.2 s (DESIGN.md §2); generous for a busy machine.
MAX_GAP_S = 15.0


def installed(lab, host: str, package: str) -> str:
    return sh(lab, host, f"dpkg-query -W -f='${{Version}}' {package} 2>/dev/null", check=False)


def server_version(lab, host: str) -> str:
    """PostgreSQL's own `server_version` on the node, through its local socket."""
    return sh(
        lab,
        host,
        "cd / && runuser -u postgres -- psql -X -A -t -h /var/run/postgresql "
        "-c 'SHOW server_version'",
    )


@pytest.mark.timeout(2400)
def test_minor_upgrade_moves_every_node_with_one_switchover(fresh_systemd_lab, worker, api):
    lab = fresh_systemd_lab
    hosts = [h.name for h in lab.hosts]
    for host in hosts:  # the customer's own apt configuration, before HA Center arrives
        lab.exec(host, ["sh", "-c", f"cat > {PIN_FILE}"], input=PIN)
    cluster_id = define(api, lab)
    setup = run(api, cluster_id, "setup")
    assert setup.status == JobStatus.SUCCEEDED, setup.error
    old = {h: installed(lab, h, "postgresql-15") for h in ("node1", "node2")}
    old["proxy"] = installed(lab, "proxy", "haproxy")
    print(f"installed from the pinned suite: {old}")

    # The admin lifts the pin; the archive's -security suite offers the newer build.
    for host in hosts:
        sh(lab, host, f"rm -f {PIN_FILE}")
    check = run(api, cluster_id, "check_updates", timeout=600)
    assert check.status == JobStatus.SUCCEEDED, [(k, s.summary) for k, s in steps(check).items()]
    offered = NodeVersions.objects.get(node__name="node1", node__cluster_id=cluster_id)
    new_pg = offered.packages["postgresql-15"]["candidate"]
    if compare(new_pg, old["node1"]) <= 0:
        pytest.skip(f"the archive offers no newer postgresql-15 than {old['node1']} any more")
    print(f"check_updates, node1: {steps(check)[('node1', 'versions_read')].summary}")
    detail = api.get(f"/api/v1/clusters/{cluster_id}/versions/").json()
    print(f"API versions: {detail}")
    by_node = {n["node"]: n for n in detail["nodes"]}
    assert by_node["node1"]["packages"]["postgresql-15"]["available"] == new_pg
    new_haproxy = by_node["proxy"]["packages"]["haproxy"]["available"]

    cluster = Cluster.objects.get(pk=cluster_id)
    secret = cluster.secrets.get(name="superuser").value
    dsn = f"postgresql://postgres:{secret}@{lab.proxy.address}:5432/postgres"
    wait_for(lambda: whole(lab, dsn), 60, "the cluster to take writes")
    primary = primary_name(lab)
    writer = ProxyWriter(dsn)
    writer.start()
    try:
        wait_for(lambda: len(writer.acks) >= 10, 20, "the writer to get going")
        started = time.monotonic()
        answer = api.post(f"/api/v1/clusters/{cluster_id}/jobs/", {"kind": "minor_upgrade"})
        assert answer.status_code == 202, answer.content
        upgrade = Job.objects.get(pk=answer.json()["id"])

        # Once the check has chosen the versions, the admin holds PostgreSQL on the primary:
        # the job upgrades the standbys and switches over, then stops at that node, and the
        # cluster goes on serving.
        def checked() -> bool:
            return upgrade.steps.filter(name="upgrade_check", status="succeeded").exists()

        wait_for(checked, 300, "the upgrade's check to finish")
        sh(lab, primary, "apt-mark hold postgresql-15")
        upgrade = wait_for_job(upgrade, timeout=900)
        stopped = steps(upgrade)[(primary, "upgrade_node")]
        print(f"with a hold on {primary}: {upgrade.status}; {stopped.summary}")
        assert upgrade.status == JobStatus.FAILED and "apt-mark hold" in stopped.summary
        failed_at = time.monotonic()
        wait_for(lambda: whole(lab, dsn), 60, "the cluster to serve after the failed node")
        wait_for(lambda: writer.acks[-1].at > failed_at, 20, "writes after the failure")

        # The admin lifts the hold and retries: the job resumes at that node.
        sh(lab, primary, "apt-mark unhold postgresql-15")
        assert api.post(f"/api/v1/jobs/{upgrade.pk}/retry/").status_code in (200, 202)
        upgrade = wait_for_job(upgrade, timeout=900, statuses=("running",))
        upgrade = wait_for_job(upgrade, timeout=900)
        ended = time.monotonic()
        time.sleep(2)
    finally:
        writer.stop()
    done = steps(upgrade)
    for (node, name), step in done.items():
        print(f"  {name} {node}: {step.status} {step.summary}")
    assert upgrade.status == JobStatus.SUCCEEDED, upgrade.error
    # What Debian's package scripts said about the services they would have started.
    said = r"postgresql@|invoke-rc|masked|haproxy\.service"
    for line in upgrade.log_lines.filter(text__iregex=said):
        print(f"  log {line.host}: {line.text}")
    gap = longest_gap(writer, started, ended)
    missing = {a.id for a in writer.acks} - writer.stored_ids()
    print(
        f"minor upgrade: {ended - started:.1f} s; longest write gap {gap:.2f} s; "
        f"{len(writer.acks)} writes acknowledged, {len(missing)} lost; "
        f"writers: {writer.servers_in_order()}"
    )
    assert not missing
    assert gap < MAX_GAP_S
    assert len(writer.servers_in_order()) == 2, "writes moved once: one switchover"

    for host in ("node1", "node2"):
        for package in ("postgresql-15", "postgresql-client-15", "libpq5"):
            assert installed(lab, host, package) == new_pg, (host, package)
        assert new_pg in server_version(lab, host), host
        # Debian's own cluster stayed masked; nothing runs PostgreSQL outside Patroni.
        unit = sh(lab, host, "systemctl is-enabled postgresql@15-main.service", check=False)
        assert unit == "masked", (host, unit)
    assert installed(lab, "proxy", "haproxy") == new_haproxy
    assert len(listeners(lab, "proxy", 5432)) == 1, sh(lab, "proxy", "ss -Hltnp")
    assert whole(lab, dsn)


def etcd_stale(lab, host: str) -> bool:
    """Whether the host's etcd runs a binary dpkg has since replaced."""
    exe = sh(lab, host, "readlink /proc/$(pgrep -o -x etcd)/exe", check=False)
    return exe.endswith("(deleted)")


@pytest.mark.timeout(2400)
def test_minor_upgrade_restarts_every_etcd_member_on_the_new_build(
    fresh_systemd_lab, worker, api, tmp_path
):
    """Debian 12 offers one etcd build: a local repository offers a rebuild of it (same
    upstream 3.4.23, version +hclab1). Every member restarts on it, one at a time, with the
    quorum and the raft leader on the proxy kept."""
    lab = fresh_systemd_lab
    cluster_id = define(api, lab)
    setup = run(api, cluster_id, "setup")
    assert setup.status == JobStatus.SUCCEEDED, setup.error
    pool = lab.cache / "apt-cacher-ng" / "debrep" / "pool" / "main" / "e" / "etcd"
    # The build the nodes run: the cache may hold other releases' too (Debian 13's etcd 3.5,
    # when the same run booted a Debian 13 lab first). File names carry no epoch.
    version = installed(lab, "node1", "etcd-server").split(":")[-1]
    built = sorted(pool.glob(f"etcd-server_{version}_*.deb"))
    assert built, f"no etcd-server {version} .deb in the proxy's cache under {pool}"
    _, new_etcd = local_repo.repack(built[-1], "+hclab1", tmp_path)
    local_repo.index(tmp_path)
    served = local_repo.Served(tmp_path)
    try:
        for host in [h.name for h in lab.hosts]:  # the admin adds the internal repository
            lab.exec(host, ["sh", "-c", f"cat > {LOCAL_SOURCE}"], input=served.sources_line())
            lab.exec(host, ["sh", "-c", f"cat > {LOCAL_DIRECT}"], input=served.direct_line())
        cluster = Cluster.objects.get(pk=cluster_id)
        secret = cluster.secrets.get(name="superuser").value
        dsn = f"postgresql://postgres:{secret}@{lab.proxy.address}:5432/postgres"
        wait_for(lambda: whole(lab, dsn), 60, "the cluster to take writes")
        writer = ProxyWriter(dsn)
        writer.start()
        try:
            wait_for(lambda: len(writer.acks) >= 10, 20, "the writer to get going")
            started = time.monotonic()
            upgrade = run(api, cluster_id, "minor_upgrade", timeout=1800)
            ended = time.monotonic()
            time.sleep(2)
        finally:
            writer.stop()
    finally:
        served.stop()
    for (node, name), step in steps(upgrade).items():
        print(f"  {name} {node}: {step.status} {step.summary}")
    assert upgrade.status == JobStatus.SUCCEEDED, upgrade.error
    gap = longest_gap(writer, started, ended)
    missing = {a.id for a in writer.acks} - writer.stored_ids()
    print(
        f"etcd upgrade: {ended - started:.1f} s; longest write gap {gap:.2f} s; "
        f"{len(writer.acks)} writes acknowledged, {len(missing)} lost"
    )
    assert not missing
    assert gap < MAX_GAP_S
    for host in [h.name for h in lab.hosts]:
        assert installed(lab, host, "etcd-server") == new_etcd, host
        assert not etcd_stale(lab, host), host
        assert "etcd member restarted" in steps(upgrade)[(host, "upgrade_node")].summary
    assert whole(lab, dsn)
