"""Two proxies behind a floating address (keepalived, VRRP) on the lab: the address moves
when the proxy that holds it loses power, and writes through it resume within seconds."""

import subprocess
import time

import psycopg2
import pytest

from clusters.access.roles import assign_role
from clusters.models import ApiToken, Cluster
from jobs import services
from jobs.models import JobStatus
from tests.conftest import wait_for
from tests.integration.conftest import lab_credential, make_lab_cluster, wait_for_job
from tests.lab.core import VIRTUAL_IP
from tests.workers import start_beat
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def holder(lab) -> str | None:
    """The proxy whose eth0 carries the floating address (read on the hosts themselves)."""
    found = [
        name
        for name in ("proxy", "proxy2")
        if lab.is_powered(name)
        and VIRTUAL_IP in lab.exec(name, ["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
    ]
    return found[0] if len(found) == 1 else None


def test_power_off_of_the_vip_holder_moves_the_address_and_writes_resume(
    fresh_lab, worker, client, django_user_model
):
    proxy2 = fresh_lab.add_second_proxy()
    cluster = make_lab_cluster(
        fresh_lab,
        lab_credential(fresh_lab),
        name="vip",
        hosts=[*fresh_lab.hosts, proxy2],
        virtual_ip=f"{VIRTUAL_IP}/24",
    )
    assert [p.name for p in cluster.proxy_nodes] == ["proxy", "proxy2"]
    job = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=600)
    assert job.status == JobStatus.SUCCEEDED, (
        job.error,
        [(s.title, s.status, s.summary) for s in job.steps.all()],
    )
    for step in job.steps.filter(name__in=["prepare", "keepalived", "verify"]):
        print(f"{step.title}: {step.summary}")
    first = wait_for(lambda: holder(fresh_lab), 20, "one proxy to hold the floating address")
    other = "proxy2" if first == "proxy" else "proxy"

    admin = django_user_model.objects.create_user("admin", password="pw-admin-1")
    assign_role(admin, "admin")
    auth = {"HTTP_AUTHORIZATION": f"Token {ApiToken.issue(admin)}"}
    beat = start_beat()
    secret = cluster.secrets.get(name="superuser").value
    writer = ProxyWriter(f"postgresql://postgres:{secret}@{VIRTUAL_IP}:5432/postgres")
    writer.start()
    try:
        wait_for(
            lambda: Cluster.objects.get(pk=cluster.pk).vip_holder == first,
            30,
            f"the monitor to see {first} answer on the floating address",
        )
        wait_for(lambda: len(writer.acks) >= 20, 30, "the writer to get going")

        # A power-off: the host's cable goes dead with it (a netns keeps its addresses after
        # its processes die, and would go on answering ARP for the floating address).
        fault = time.monotonic()
        fresh_lab.cut_network(first)
        fresh_lab.power_off(first)

        # An acknowledgement can still land just after the fault's start (its answer was on
        # its way): the writes resume with the first one after the writer's first failure.
        def first_write_after_the_break():
            broke = next((at for at, _ in writer.errors if at > fault), None)
            return broke and next((a for a in writer.acks if a.at > broke), None)

        try:
            resumed = wait_for(
                first_write_after_the_break,
                30,
                "a write through the floating address after the power-off",
            )
        except BaseException:  # pytest.fail's outcome: say what the hosts show first
            print(diagnosis(fresh_lab, other, writer))
            raise
        seconds = resumed.at - fault
        print(f"power-off of {first}: first write through {VIRTUAL_IP} after {seconds:.2f} s")
        assert seconds < 15
        wait_for(lambda: holder(fresh_lab) == other, 5, f"{other} to hold the address")

        wait_for(
            lambda: Cluster.objects.get(pk=cluster.pk).vip_holder == other,
            30,
            f"the monitor to see {other} answer on the floating address",
        )
        detail = client.get(f"/api/v1/clusters/{cluster.pk}/", **auth).json()
        assert detail["virtual_ip"]["holder"] == other, detail.get("virtual_ip")
        client.force_login(admin)
        page = client.get(f"/clusters/{cluster.pk}/").content.decode()
        assert f"held by <strong>{other}</strong>" in page
        # The dead proxy is said: the address has nowhere to go if the other one fails too.
        reasons = wait_for(
            lambda: Cluster.objects.get(pk=cluster.pk).state_reasons,
            30,
            "the monitor to say what is missing",
        )
        assert any(f"{first}'s HAProxy does not answer" in r for r in reasons), reasons
        print(f"cluster page: held by {other}; reasons: {reasons}")
        wait_for(lambda: len([a for a in writer.acks if a.at > fault]) >= 20, 20, "more writes")
    finally:
        writer.stop()
        writer.join(10)
        beat.stop()
        fresh_lab.restore_network(first)
        fresh_lab.power_on(first)

    # No acknowledged write lost: every id the writer was told committed is there.
    acked = {a.id for a in writer.acks}
    rows = {
        r[0]
        for r in query_rows(
            f"postgresql://postgres:{secret}@{VIRTUAL_IP}:5432/postgres",
            "SELECT id FROM writer_ledger",
        )
    }
    print(
        f"{len(acked)} writes acknowledged, {len(acked - rows)} lost, {len(writer.errors)} errors"
    )
    assert acked <= rows

    # The proxy is back (setup starts its daemons again: the lab has no systemd to do it), and
    # the address stays where it is: no preemption, no second move.
    rerun = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=300)
    assert rerun.status == JobStatus.SUCCEEDED, rerun.error
    summaries = {
        (s.node.name if s.node else "cluster", s.name): s.summary
        for s in rerun.steps.select_related("node")
    }
    print(f"setup again: {first}: {summaries[(first, 'keepalived')]}")
    print(f"setup again: {other}: {summaries[(other, 'keepalived')]}")
    assert "keepalived started" in summaries[(first, "keepalived")]
    assert "already configured and running" in summaries[(other, "keepalived")]
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # a window, not a wait: it must hold all along
        assert holder(fresh_lab) == other
        time.sleep(0.5)

    # HAProxy dies on the holder, the host stays up: keepalived's check lets the address go.
    stopped = time.monotonic()
    fresh_lab.exec(other, ["pkill", "-KILL", "-x", "haproxy"])
    wait_for(lambda: holder(fresh_lab) == first, 15, f"{first} to take the address back")
    moved = time.monotonic() - stopped
    print(f"HAProxy killed on {other}: the address on {first} after {moved:.2f} s")
    assert query_rows(f"postgresql://postgres:{secret}@{VIRTUAL_IP}:5432/postgres", "SELECT 1") == [
        (1,)
    ]

    removal = services.job_start(cluster=cluster, kind="remove_cluster", params={"confirm": "vip"})
    removal = wait_for_job(removal, timeout=180)
    assert removal.status == JobStatus.SUCCEEDED, removal.error
    for name in ("proxy", "proxy2"):
        assert fresh_lab.exec(name, ["pgrep", "-x", "keepalived"], check=False).returncode == 1
        addresses = fresh_lab.exec(name, ["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
        assert VIRTUAL_IP not in addresses, (name, addresses)


def diagnosis(lab, survivor: str, writer: ProxyWriter) -> str:
    """What the surviving proxy and this machine show, for a failure's report."""
    commands = [
        ["ip", "-o", "addr", "show", "dev", "eth0"],
        ["tail", "-n", "30", "/var/log/hacenter/keepalived.log"],
        ["ss", "-ltn"],
        ["nft", "list", "ruleset"],
    ]
    parts = [
        f"{survivor}$ {' '.join(c)}\n{lab.exec(survivor, c, check=False).stdout}" for c in commands
    ]
    neigh = subprocess.run(["ip", "neigh", "show", VIRTUAL_IP], capture_output=True, text=True)
    parts.append(f"console$ ip neigh show {VIRTUAL_IP}\n{neigh.stdout}")
    conns = subprocess.run(["ss", "-tnoi", "dst", VIRTUAL_IP], capture_output=True, text=True)
    parts.append(f"console$ ss -tnoi dst {VIRTUAL_IP}\n{conns.stdout}")
    parts.append(f"writer errors (last 5): {writer.errors[-5:]}")
    return "\n".join(parts)


def query_rows(dsn: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(dsn, connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()
