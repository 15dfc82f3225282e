"""What a customer does, on fresh Debian 12 and 13 servers that boot systemd and install from apt.

The systemd lab's hosts have empty package lists, no route out (packages come through the
cluster's APT proxy, an apt-cacher-ng the lab runs), none of the product's directories and no
PostgreSQL, Patroni, etcd or HAProxy. Each phase below was broken on such servers before
(issue "Fresh real servers", problems 1 to 5), and the netns lab could not show it. The day runs
on Debian 12 with PostgreSQL 15 and on Debian 13 with PostgreSQL 17, the majors their archives
have.
"""

import time

import psycopg2
import pytest

from clusters.models import Cluster
from jobs import patroni_api
from jobs.models import Job, JobStatus
from tests.conftest import wait_for
from tests.integration.conftest import patroni_at, wait_for_job
from tests.integration.systemd_clusters import POSTGRES, define_cluster
from tests.lab.rootfs import release_of
from tests.lab_fixtures import on_debian
from tests.workers import start_beat
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NAME = "fresh"
OUR_UNITS = {
    "proxy": [f"hacenter-etcd-{NAME}.service", "hacenter-haproxy.service"],
    "node1": [f"hacenter-etcd-{NAME}.service", f"hacenter-patroni-{NAME}.service"],
    "node2": [f"hacenter-etcd-{NAME}.service", f"hacenter-patroni-{NAME}.service"],
}
PORTS = {"proxy": (5432, 5433, 7000, 2379, 2380), "node1": (5432, 8008, 2379, 2380)}
PORTS["node2"] = PORTS["node1"]


def sh(lab, host: str, script: str, check: bool = True) -> str:
    return lab.exec(host, ["sh", "-c", script], check=check).stdout.strip()


def unit_state(lab, host: str, unit: str) -> str:
    """`is-enabled`/`is-active` of a unit, e.g. "enabled/active" or "masked/inactive"; "absent/"
    for a unit that does not exist (systemd 252, Debian 12, says nothing; 257 "not-found")."""
    enabled = sh(lab, host, f"systemctl is-enabled {unit} 2>/dev/null", check=False)
    enabled = "absent" if enabled in ("", "not-found") else enabled
    return f"{enabled}/{sh(lab, host, f'systemctl is-active {unit}', check=False)}"


def firewall_table(lab, host: str) -> str:
    """HA Center's nftables table on the host as `nft` lists it, "" when it is not loaded."""
    return sh(lab, host, "nft list table inet hacenter 2>/dev/null || true", check=False)


def listeners(lab, host: str, port: int) -> set[str]:
    """The pids listening on the port (any address)."""
    lines = sh(lab, host, f"ss -Hltnp 'sport = :{port}'", check=False).splitlines()
    return {pid.split(",")[0] for line in lines for pid in line.split("pid=")[1:]}


def define(api, lab) -> int:
    """Through the API, as an automation user would: the login, each host's key scanned and
    pinned, the cluster with the lab's apt-cacher-ng as its APT proxy. Its id."""
    cluster_id, _ = define_cluster(api, lab, NAME)
    assert api.get(f"/api/v1/clusters/{cluster_id}/").json()["apt_proxy"] == lab.apt_proxy_url
    return cluster_id


def run(api, cluster_id: int, kind: str, timeout: float = 900, **params) -> Job:
    """Start a job through the API and wait for its end."""
    started = api.post(f"/api/v1/clusters/{cluster_id}/jobs/", {"kind": kind, **params})
    assert started.status_code == 202, started.content
    return wait_for_job(Job.objects.get(pk=started.json()["id"]), timeout=timeout)


def steps(job: Job) -> dict[tuple[str, str], object]:
    return {(s.node.name if s.node else "", s.name): s for s in job.steps.select_related("node")}


def whole(lab, dsn: str, replication: str = "async") -> bool:
    """A leader and its standby streaming (the synchronous one on a sync cluster), and a write
    through the proxy."""
    try:
        members = patroni_api.cluster(patroni_at(lab.host("node1").address), timeout=2)["members"]
        conn = psycopg2.connect(dsn, connect_timeout=2)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS beats (at timestamptz DEFAULT now())")
                cur.execute("INSERT INTO beats DEFAULT VALUES")
        finally:
            conn.close()
    except (patroni_api.PatroniUnavailable, psycopg2.Error, KeyError, OSError):
        return False
    states = sorted((m["role"], m["state"]) for m in members)
    standby = "sync_standby" if replication == "sync" else "replica"
    return states == [("leader", "running"), (standby, "streaming")]


def primary_name(lab) -> str | None:
    """The leader the first answering Patroni names; None while it names none (mid-failover)
    or none answers."""
    for host in ("node1", "node2"):
        try:
            members = patroni_api.cluster(patroni_at(lab.host(host).address), timeout=2)["members"]
        except patroni_api.PatroniUnavailable:
            continue
        return next((m["name"] for m in members if m["role"] == "leader"), None)
    return None


@pytest.mark.timeout(2400)
@on_debian("12", "13")
def test_a_customers_cluster_on_fresh_systemd_servers(fresh_systemd_lab, worker, api):
    lab = fresh_systemd_lab
    debian = f"Debian GNU/Linux {lab.release} ({release_of(lab.release).suite})"
    postgres = f"postgresql-{POSTGRES[lab.release]}"
    cluster_id = define(api, lab)
    cluster = Cluster.objects.get(pk=cluster_id)
    assert sh(lab, "node1", "ls /var/lib/apt/lists | grep -c _Packages", check=False) == "0"

    # Preflight (problem 1): it finds every package, through the proxy, and changes nothing.
    preflight = run(api, cluster_id, "preflight", timeout=600)
    found = steps(preflight)
    assert preflight.status == JobStatus.SUCCEEDED, [(k, s.summary) for k, s in found.items()]
    assert found[("node1", "os_version")].summary == debian
    packages = found[("node1", "package_sources")].summary
    assert f"setup will install {postgres}" in packages and "refreshed" in packages, packages
    assert "haproxy" in found[("proxy", "package_sources")].summary
    assert sh(lab, "node1", "ls /var/lib/apt/lists | grep -c _Packages", check=False) == "0"

    # Problem 5: something else holds etcd's peer port on node2. Setup fails at "Start etcd"
    # with the daemon's own words from the journal, and its unit does not restart forever.
    node2 = lab.host("node2").address
    sh(lab, "node2", f"systemd-run --unit=squatter python3 -m http.server -b {node2} 2380")
    failed = run(api, cluster_id, "setup")
    assert failed.status == JobStatus.FAILED
    etcd_step = steps(failed)[("node2", "etcd_start")]
    assert "address already in use" in etcd_step.summary, etcd_step.summary
    assert unit_state(lab, "node2", f"hacenter-etcd-{NAME}.service").startswith("disabled/")
    installed = steps(failed)[("node1", "install_packages")].summary
    assert f"installed {postgres}" in installed and "refreshed" in installed, installed

    # The next run repairs it (problems 1 and 2 were fixed by the first run's early steps).
    sh(lab, "node2", "systemctl stop squatter")
    setup = run(api, cluster_id, "setup")
    assert setup.status == JobStatus.SUCCEEDED, setup.error
    cluster.refresh_from_db()
    assert cluster.state == Cluster.State.HEALTHY
    for host, units in OUR_UNITS.items():
        for unit in units:
            assert unit_state(lab, host, unit) == "enabled/active", (host, unit)
    # The host firewall (issue 17): our table loaded by our unit on every host.
    for host in OUR_UNITS:
        assert unit_state(lab, host, "hacenter-firewall.service") == "enabled/active", host
        assert "chain input" in firewall_table(lab, host), host
    # Problem 3: Debian's own HAProxy and etcd cannot start beside ours, now or after a boot.
    assert unit_state(lab, "proxy", "haproxy.service") == "masked/inactive"
    assert unit_state(lab, "node1", "etcd.service") == "masked/inactive"

    secret = cluster.secrets.get(name="superuser").value
    dsn = f"postgresql://postgres:{secret}@{lab.proxy.address}:5432/postgres"
    wait_for(lambda: whole(lab, dsn), 60, "the cluster to take writes")
    beat = start_beat()
    try:
        # A reboot of each host in turn: everything comes back by itself, one HAProxy.
        for host in ("proxy", "node2", "node1"):
            lab.reboot(host)
            wait_for(lambda: whole(lab, dsn), 180, f"the cluster to be whole after {host} rebooted")
            assert len(listeners(lab, "proxy", 5432)) == 1, sh(lab, "proxy", "ss -Hltnp")
            # the firewall's table is back after the boot, loaded by hacenter-firewall.service
            assert "chain input" in firewall_table(lab, host), host

        # A hard power-off of the primary: writes go on on the standby; the event is recorded.
        wait_for(lambda: Cluster.objects.get(pk=cluster.pk).state == "healthy", 60, "healthy")
        old = primary_name(lab)
        survivor = "node2" if old == "node1" else "node1"
        writer = ProxyWriter(dsn)
        writer.start()
        try:
            wait_for(lambda: writer.acks, 20, "a first write")
            cut = time.monotonic()
            lab.power_off(old)
            address = lab.host(survivor).address
            wait_for(
                lambda: any(a.server == address and a.at > cut for a in writer.acks),
                120,
                f"writes on {survivor}",
            )
        finally:
            writer.stop()
        # The failover as the API tells it, and HAProxy's backends as the monitor read them.
        events = f"/api/v1/clusters/{cluster_id}/events/?kind=failover"
        # (The reboot of the primary above was a failover too: this is the one from `old`.)
        wait_for(
            lambda: [e for e in api.get(events).json()["events"] if e["old_primary"] == old],
            60,
            f"the failover event from {old} to {survivor}",
        )

        # Power on and Rebuild: the old primary becomes the standby.
        lab.power_on(old)
        rebuild = run(api, cluster_id, "rebuild", node=old)
        assert rebuild.status == JobStatus.SUCCEEDED, rebuild.error
        wait_for(lambda: whole(lab, dsn), 120, "the cluster to be whole after the rebuild")
        assert primary_name(lab) == survivor

        def routed() -> dict:
            detail = api.get(f"/api/v1/clusters/{cluster_id}/").json()
            serving = {
                (b["frontend"], b["node"]) for b in detail["proxy"]["backends"] if b["serving"]
            }
            standby = next(n for n in detail["nodes"] if n["name"] == old)
            ok = ("rw", survivor) in serving and ("ro", old) in serving
            return detail if ok and standby["lag_seconds"] is not None else {}

        wait_for(routed, 60, f"the API to show writes on {survivor}, reads on {old}, its lag")
    finally:
        beat.stop()

    # Problem 4: remove_cluster leaves no listener and none of our units behind.
    removal = run(api, cluster_id, "remove_cluster", timeout=300, confirm=NAME)
    assert removal.status == JobStatus.SUCCEEDED, removal.error
    for host, units in OUR_UNITS.items():
        for port in PORTS[host]:
            assert not listeners(lab, host, port), (host, port, sh(lab, host, "ss -Hltnp"))
        left = sh(lab, host, "ls /etc/systemd/system | grep '^hacenter-' || true")
        assert left == "", (host, left)  # hacenter-firewall.service included
        assert firewall_table(lab, host) == "", host
        assert all(unit_state(lab, host, u).startswith("absent/") for u in units)
    assert unit_state(lab, "proxy", "haproxy.service") != "masked/inactive"
