"""The host firewall on the lab: a host on the lab network that is in no cluster (the outsider,
198.18.0.50) cannot reach etcd, Patroni or PostgreSQL on any node, while the nodes, the console
(this test process, 198.18.0.1) and the proxy's clients still do; a second setup finds it as
wanted; remove takes it away. The table composes with a table of the server's own."""

import socket

import psycopg2
import pytest

from clusters.models import Cluster
from jobs import services
from jobs.models import JobStatus, StepStatus
from tests.integration.conftest import lab_credential, make_lab_cluster, wait_for_job

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The server's own table, which our table must leave alone and work beside.
SITE_TABLE = """table inet site {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 9999 drop
	}
}
"""
GUARDED = {
    "proxy": (2379, 2380, 5432, 5433, 7000),
    "node1": (2379, 2380, 8008, 5432),
    "node2": (2379, 2380, 8008, 5432),
}


def tcp_connects(lab, source: str, targets: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """From lab host `source`, try every target at once: "open", "refused" or "timeout"."""
    script = " ".join(
        f"( timeout 2 bash -c 'exec 3<>/dev/tcp/{address}/{port}' 2>/dev/null; "
        f'echo "{address} {port} $?" ) &'
        for address, port in targets
    )
    out = lab.exec(source, ["bash", "-c", f"{script} wait"], timeout=30).stdout
    words = {"0": "open", "124": "timeout"}
    results = {}
    for line in out.splitlines():
        address, port, rc = line.split()
        results[(address, int(port))] = words.get(rc, "refused")
    return results


def outsider_runs(lab, command: str):
    """A shell command on the outsider host (output and exit status, never raising)."""
    return lab.exec("outsider", ["bash", "-c", command], check=False, timeout=30)


def table(lab, host: str) -> str:
    done = lab.exec(host, ["nft", "list", "table", "inet", "hacenter"], check=False)
    return done.stdout if done.returncode == 0 else ""


def test_outsider_is_kept_out_while_the_cluster_works_and_remove_takes_the_table_away(lab, worker):
    from tests.lab import Lab

    lab.down(keep_data=False)
    world = Lab(n_db=2, root=lab.root, outsider=True)
    try:
        world.up(fresh=True)
        assert world.outsider.address == "198.18.0.50"
        world.exec("node2", ["nft", "-f", "-"], input=SITE_TABLE)
        cluster = make_lab_cluster(world, lab_credential(world), name="fw1")
        assert "outsider" not in set(cluster.nodes.values_list("name", flat=True))

        # Preflight names the server's own table and says ours will sit beside it.
        preflight = wait_for_job(services.job_start(cluster=cluster, kind="preflight"))
        found = preflight.steps.get(name="firewall", node__name="node2")
        assert found.status == StepStatus.SUCCEEDED, found.summary
        assert found.summary.startswith("found: nftables table inet site; setup adds"), found

        job = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=600)
        assert job.status == JobStatus.SUCCEEDED, job.error
        verdicts = {s.node.name: s.summary for s in job.steps.filter(name="firewall")}
        assert set(verdicts) == {"proxy", "node1", "node2"}
        for summary in verdicts.values():
            assert "table inet hacenter loaded" in summary, summary
            assert "198.18.0.1 (this SSH session)" in summary, summary
            assert "process mode" in summary, summary

        # The outsider reaches none of the guarded ports: every attempt times out (dropped).
        addresses = {h.name: h.address for h in world.hosts}
        targets = [(addresses[n], p) for n, ports in GUARDED.items() for p in ports]
        from_outside = tcp_connects(world, "outsider", targets)
        assert from_outside == dict.fromkeys(targets, "timeout"), from_outside
        # ...while a member reaches each of them (etcd, Patroni, PostgreSQL on node1, HAProxy)
        inside = [(a, p) for a, p in targets if a != addresses["node2"] and p != 7000]
        assert tcp_connects(world, "node2", inside) == dict.fromkeys(inside, "open")
        # and the drops are our table's, counted on each node
        for host in GUARDED:
            listing = table(world, host)
            dropped = [line for line in listing.splitlines() if "drop" in line]
            assert any("packets 0 " not in line for line in dropped), listing
        # the server's own table is still there beside ours
        assert "tcp dport 9999 drop" in world.exec("node2", ["nft", "list", "ruleset"]).stdout

        # The console (this process, 198.18.0.1) still reaches Patroni, the stats and PostgreSQL
        # on every node, and writes through the proxy.
        console = [(addresses[n], p) for n, ports in GUARDED.items() for p in ports if p > 5000]
        for address, port in console:  # 5432, 5433, 7000, 8008: not etcd
            socket.create_connection((address, port), timeout=2).close()
        password = cluster.secrets.get(name="superuser").value
        conn = psycopg2.connect(
            host=addresses["proxy"],
            port=5432,
            user="postgres",
            password=password,
            dbname="postgres",
            connect_timeout=5,
        )
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE fw_check (id int)")
            cur.execute("INSERT INTO fw_check VALUES (1)")
        conn.close()
        cluster.refresh_from_db()
        assert cluster.state == Cluster.State.HEALTHY

        # With our table taken away, TLS and authentication still keep the outsider out.
        for host in GUARDED:
            world.exec(host, ["nft", "delete", "table", "inet", "hacenter"])
        for name in ("proxy", "node1", "node2"):
            for port in (2379, 2380):  # etcd wants a client certificate from the cluster's CA
                done = outsider_runs(
                    world, f"curl -sk --max-time 3 https://{addresses[name]}:{port}/version"
                )
                assert done.returncode != 0 and "etcd" not in done.stdout, (name, port, done)
        for name in ("node1", "node2"):
            # Patroni's unsafe endpoints want the REST password; PostgreSQL has no rule for it.
            restart = outsider_runs(
                world,
                f"curl -sk --max-time 3 -o /dev/null -w '%{{http_code}}' -X POST "
                f"https://{addresses[name]}:8008/restart",
            )
            assert restart.stdout == "401", (name, restart)
            login = outsider_runs(
                world,
                f"PGCONNECT_TIMEOUT=3 psql -w 'host={addresses[name]} user=postgres "
                "dbname=postgres sslmode=require' -c 'select 1'",
            )
            assert login.returncode != 0 and "no pg_hba.conf entry" in login.stderr, login
        for host in GUARDED:
            world.exec(host, ["nft", "-f", "/etc/hacenter/firewall.nft"])

        rerun = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=300)
        assert rerun.status == JobStatus.SUCCEEDED, rerun.error
        for step in rerun.steps.filter(name="firewall"):
            assert step.summary.startswith("firewall already as wanted"), step.summary

        removal = services.job_start(
            cluster=cluster, kind="remove_cluster", params={"confirm": "fw1"}
        )
        removal = wait_for_job(removal, timeout=180)
        assert removal.status == JobStatus.SUCCEEDED, removal.error
        for step in removal.steps.filter(name="firewall_remove"):
            assert step.status == StepStatus.SUCCEEDED
            assert "table inet hacenter" in step.summary, step.summary
        for host in GUARDED:
            assert table(world, host) == ""
            firewall_file = world.exec(host, ["test", "-e", "/etc/hacenter/firewall.nft"], False)
            assert firewall_file.returncode == 1
        assert "tcp dport 9999 drop" in world.exec("node2", ["nft", "list", "ruleset"]).stdout
    finally:
        world.down(keep_data=False)
        lab.up(fresh=True)
