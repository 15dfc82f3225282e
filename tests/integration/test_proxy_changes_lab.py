"""Proxy changes on a live lab cluster with two proxies behind the floating address and a writer
on that address: remove the second proxy while it holds the address (the address moves to the
first, writes resume), add it back, then replace it with a new server after it lost power.
The witness (the first proxy, etcd's third member) stays; every acknowledged write is kept."""

import time

import pytest

from clusters.models import ClusterEvent, Node
from jobs import node_changes
from jobs import services as job_services
from jobs.errors import JobRefused
from jobs.models import JobStatus
from jobs.playbooks import daemons, setup
from jobs.playbooks.etcd_members import local_etcdctl
from jobs.playbooks.setup_keepalived import keepalived_daemon
from tests.conftest import wait_for
from tests.integration.conftest import lab_credential, make_lab_cluster, wait_for_job
from tests.integration.test_node_changes_lab import etcd_peers, server
from tests.integration.test_operations_lab import run
from tests.lab.core import VIRTUAL_IP
from tests.lab.probes import vip_holder
from tests.writer import ProxyWriter, query_rows

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The new server that takes proxy2's place: a wiped host at an address no lab host uses.
SPARE = ("proxy3", 40)
WITNESS_SPARE = ("proxy4", 41)


def succeeded(job):
    """The job's step summaries by (node, step); on a failure, the steps that did not succeed
    (in full: the assertion message is cut after a few hundred characters)."""
    if job.status != JobStatus.SUCCEEDED:
        for step in job.steps.select_related("node").exclude(status="succeeded"):
            print(f"{job.kind} #{job.pk}: {step.node} {step.name} {step.status}: {step.summary}")
        print(f"{job.kind} #{job.pk}: {job.error}")
    assert job.status == JobStatus.SUCCEEDED, job.error
    return {(s.node.name if s.node else "", s.name): s.summary for s in job.steps.all()}


def holder(lab) -> str | None:
    """The lab host (of the proxies, spares included) whose eth0 carries the floating address;
    a lab host's name, which after a replacement is not the node's."""
    names = tuple(h.name for h in (*lab.hosts, *lab.extra_hosts) if h.name.startswith("proxy"))
    return vip_holder(lab, VIRTUAL_IP, names)


def running(lab, host: str, process: str) -> bool:
    return lab.exec(host, ["pgrep", "-x", process], check=False).returncode == 0


def hand_address_to(lab, cluster, target: str, other: str) -> None:
    """Make `target` hold the floating address with keepalived still running on `other`: stop
    `other`'s keepalived (the address moves), then start it again with the product's own
    command; with nopreempt it stays a backup."""
    daemon = keepalived_daemon(setup.cluster_spec(cluster))
    lab.exec(other, ["pkill", "-TERM", "-x", "keepalived"])
    wait_for(lambda: holder(lab) == target, 15, f"{target} to take the floating address")
    wait_for(lambda: not running(lab, other, "keepalived"), 10, f"keepalived on {other} to end")
    lab.exec(other, ["bash", "-c", daemons.process_start_script(daemon)])
    assert running(lab, other, "keepalived")
    time.sleep(2)  # past a failover time: the address stays where it is
    assert holder(lab) == target


def writes_resume(writer: ProxyWriter, after: float, what: str) -> None:
    wait_for(
        lambda: len([a for a in writer.acks if a.at > after]) >= 10,
        30,
        f"writes through {VIRTUAL_IP} after {what}",
    )


@pytest.mark.timeout(900)
def test_remove_add_and_replace_the_second_proxy_under_writes(fresh_lab, worker):
    proxy2 = fresh_lab.add_second_proxy()
    credential = lab_credential(fresh_lab)
    cluster = make_lab_cluster(
        fresh_lab,
        credential,
        name="px",
        hosts=[*fresh_lab.hosts, proxy2],
        virtual_ip=f"{VIRTUAL_IP}/24",
    )
    started = time.monotonic()
    succeeded(wait_for_job(job_services.job_start(cluster=cluster, kind="setup"), timeout=600))
    print(f"setup: {time.monotonic() - started:.0f} s")
    cluster.refresh_from_db()
    secret = cluster.secrets.get(name="superuser").value
    vip_dsn = f"postgresql://postgres:{secret}@{VIRTUAL_IP}:5432/postgres"
    writer = ProxyWriter(vip_dsn)
    writer.start()
    try:
        wait_for(lambda: len(writer.acks) >= 10, 30, "the writer to get going")
        # The witness is never removed; it is replaced.
        with pytest.raises(JobRefused, match="etcd witness"):
            job_services.job_start(
                cluster=cluster,
                kind="remove_node",
                node=cluster.nodes.get(name="proxy"),
                params={"confirm": "proxy"},
            )

        # Remove proxy2 while it holds the floating address: it moves to proxy.
        if holder(fresh_lab) != "proxy2":
            hand_address_to(fresh_lab, cluster, "proxy2", "proxy")
        began = time.monotonic()
        removed = run(cluster, "remove_node", node="proxy2", confirm="proxy2")
        summaries = succeeded(removed)
        print(f"remove proxy2: {time.monotonic() - began:.0f} s; {summaries}")
        assert holder(fresh_lab) == "proxy"
        writes_resume(writer, time.monotonic(), "the removal")
        assert not Node.objects.filter(cluster=cluster, name="proxy2").exists()
        assert not running(fresh_lab, "proxy2", "haproxy")
        assert not running(fresh_lab, "proxy2", "keepalived")
        kept = fresh_lab.exec(
            "proxy2", ["sh", "-c", "ls -d /etc/haproxy/haproxy.cfg.removed-*"], check=False
        )
        assert kept.returncode == 0, "the removed proxy's config is moved aside, not deleted"
        # node1 no longer lets proxy2 in: its connection is dropped (timeout).
        knock = fresh_lab.exec(
            "proxy2",
            ["timeout", "2", "bash", "-c", "exec 3<>/dev/tcp/198.18.0.11/5432"],
            check=False,
        )
        assert knock.returncode == 124, knock

        # Add it back (the same server, its old files aside): HAProxy and keepalived again.
        began = time.monotonic()
        added = node_changes.node_add(
            cluster=cluster, data={**server(fresh_lab, "proxy2", credential), "kind": "proxy"}
        )
        summaries = succeeded(wait_for_job(added, timeout=600))
        print(f"add proxy2: {time.monotonic() - began:.0f} s; {summaries[('', 'proxy_verify')]}")
        assert "written through proxy and proxy2" in summaries[("", "proxy_verify")]
        assert running(fresh_lab, "proxy2", "haproxy")
        assert running(fresh_lab, "proxy2", "keepalived")
        assert holder(fresh_lab) == "proxy"  # no preemption: the address stays
        assert "etcd_membership" not in {name for _, name in summaries}
        assert etcd_peers(fresh_lab) == {f"https://198.18.0.{i}:2380" for i in (10, 11, 12)}

        # proxy2 loses power; a new, wiped server takes its name.
        spare = fresh_lab.add_spare_host(*SPARE)
        fresh_lab.cut_network("proxy2")
        fresh_lab.power_off("proxy2")
        began = time.monotonic()
        replaced = node_changes.node_replace(
            node=cluster.nodes.get(name="proxy2"),
            data=server(fresh_lab, spare.name, credential, name="proxy2"),
        )
        summaries = succeeded(wait_for_job(replaced, timeout=600))
        print(f"replace proxy2: {time.monotonic() - began:.0f} s")
        assert cluster.nodes.get(name="proxy2").address == spare.address
        assert running(fresh_lab, spare.name, "haproxy")
        assert running(fresh_lab, spare.name, "keepalived")
        assert "written through proxy and proxy2" in summaries[("", "proxy_verify")]
        assert etcd_peers(fresh_lab) == {f"https://198.18.0.{i}:2380" for i in (10, 11, 12)}
        writes_resume(writer, time.monotonic(), "the replacement")

        # The witness (the address's holder) loses power: the address moves to proxy2, and a
        # new server takes the witness's name and its etcd member.
        assert holder(fresh_lab) == "proxy"
        new_witness = fresh_lab.add_spare_host(*WITNESS_SPARE)
        fresh_lab.cut_network("proxy")
        fresh_lab.power_off("proxy")
        # proxy2 is the lab's proxy3 now.
        wait_for(lambda: holder(fresh_lab) == spare.name, 15, "proxy2 to take the address")
        writes_resume(writer, time.monotonic(), "the witness's power-off")
        began = time.monotonic()
        replaced = node_changes.node_replace(
            node=cluster.nodes.get(name="proxy"),
            data=server(fresh_lab, new_witness.name, credential, name="proxy"),
        )
        summaries = succeeded(wait_for_job(replaced, timeout=600))
        print(f"replace the witness: {time.monotonic() - began:.0f} s")
        print(f"  {summaries[('', 'check_etcd_quorum')]}")
        print(f"  {summaries[('', 'etcd_membership')]}")
        assert "removed proxy (https://198.18.0.10:2380)" in summaries[("", "etcd_membership")]
        peers = fresh_lab.exec(
            new_witness.name, ["sh", "-c", local_etcdctl("member", "list")]
        ).stdout
        assert {line.split(", ")[3] for line in peers.splitlines() if line.strip()} == {
            f"https://{new_witness.address}:2380",
            "https://198.18.0.11:2380",
            "https://198.18.0.12:2380",
        }
        assert holder(fresh_lab) == spare.name  # no preemption by the new witness
        assert "written through proxy and proxy2" in summaries[("", "proxy_verify")]
        writes_resume(writer, time.monotonic(), "the witness's replacement")
    finally:
        writer.stop()
        fresh_lab.restore_network("proxy2")
        fresh_lab.restore_network("proxy")
    kinds = set(ClusterEvent.objects.filter(cluster=cluster).values_list("kind", flat=True))
    assert {"node_added", "node_replaced", "node_removed"} <= kinds
    acked = {a.id for a in writer.acks}
    rows = {r[0] for r in query_rows(vip_dsn, "SELECT id FROM writer_ledger")}
    lost = acked - rows
    print(f"{len(acked)} writes acknowledged, {len(lost)} lost, {len(writer.errors)} errors")
    assert acked <= rows
    print(f"whole test: {time.monotonic() - started:.0f} s")
