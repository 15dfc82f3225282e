"""Node changes on a live lab cluster with a writer through the proxy: add a standby, replace
a powered-off standby with a new server under the same name, remove a standby. The primary
never changes, so every acknowledged write must be there at the end."""

import pytest

from clusters.inventory import services as cluster_services
from clusters.models import ClusterEvent, Node
from jobs import node_changes, patroni_api
from jobs import services as job_services
from jobs.host_keys import host_key_scan
from jobs.models import JobStatus
from jobs.playbooks.etcd_members import local_etcdctl
from tests.integration.conftest import lab_credential, patroni_at, wait_for_job
from tests.integration.test_operations_lab import run
from tests.lab import Lab
from tests.writer import ProxyWriter

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def lab4(lab):
    """Proxy + node1..node4 for this test; the session's usual lab comes back afterwards."""
    lab.down(keep_data=False)
    big = Lab(n_db=4, root=lab.root)
    try:
        yield big.up(fresh=True)
    finally:
        big.down(keep_data=False)
        lab.up(fresh=True)


def server(lab: Lab, host: str, credential, name: str | None = None) -> dict:
    """A node's fields as an admin enters them after scanning and confirming the host key."""
    h = lab.host(host)
    scan = host_key_scan(address=h.address, port=22)
    assert scan["fingerprint"] == lab.host_key_fingerprint(host)
    return {
        "name": name or host,
        "address": h.address,
        "ssh_port": 22,
        "credential": credential.pk,
        "host_key_fingerprint": scan["fingerprint"],
    }


def patroni_members(address: str = "198.18.0.11") -> dict[str, dict]:
    return {m["name"]: m for m in patroni_api.cluster(patroni_at(address), timeout=3)["members"]}


def etcd_peers(lab: Lab) -> set[str]:
    out = lab.exec("proxy", ["sh", "-c", local_etcdctl("member", "list")]).stdout
    return {line.split(", ")[3] for line in out.splitlines() if line.strip()}


def haproxy_servers(lab: Lab) -> set[str]:
    config = lab.exec("proxy", ["cat", "/etc/haproxy/haproxy.cfg"]).stdout
    return {line.split()[1] for line in config.splitlines() if line.strip().startswith("server ")}


@pytest.mark.timeout(900)  # a setup, then three node jobs
def test_add_replace_and_remove_a_node_under_writes(lab4, worker):
    credential = lab_credential(lab4)
    nodes = [
        {**server(lab4, h, credential), "kind": kind}
        for h, kind in (("proxy", "proxy"), ("node1", "database"), ("node2", "database"))
    ]
    cluster = cluster_services.cluster_create(
        data={"name": "grow", "replication": "async", "nodes": nodes}
    )
    run(cluster, "setup", timeout=600)
    secret = cluster.secrets.get(name="superuser").value
    writer = ProxyWriter(f"postgresql://postgres:{secret}@198.18.0.10:5432/postgres")
    writer.start()
    cluster.refresh_from_db()  # set up now
    try:
        added = node_changes.node_add(cluster=cluster, data=server(lab4, "node3", credential))
        added = wait_for_job(added, timeout=600)
        assert added.status == JobStatus.SUCCEEDED, [
            (s.title, s.summary) for s in added.steps.all()
        ]
        assert patroni_members()["node3"]["state"] == "streaming"
        assert {"node1", "node2", "node3"} <= haproxy_servers(lab4)
        # Four nodes: etcd keeps its three members (an even count adds no tolerance).
        assert etcd_peers(lab4) == {f"https://198.18.0.{i}:2380" for i in (10, 11, 12)}

        lab4.power_off("node2")
        node2 = cluster.nodes.get(name="node2")
        replaced = node_changes.node_replace(
            node=node2, data=server(lab4, "node4", credential, name="node2")
        )
        replaced = wait_for_job(replaced, timeout=600)
        assert replaced.status == JobStatus.SUCCEEDED, [
            (s.title, s.summary) for s in replaced.steps.all()
        ]
        members = patroni_members()
        assert members["node2"]["host"] == "198.18.0.14"
        assert members["node2"]["state"] == "streaming"
        assert etcd_peers(lab4) == {f"https://198.18.0.{i}:2380" for i in (10, 11, 14)}
        etcd_step = replaced.steps.get(name="etcd_membership").summary
        assert "removed node2 (https://198.18.0.12:2380)" in etcd_step, etcd_step

        with pytest.raises(Exception, match="repeat the node's name"):
            job_services.job_start(
                cluster=cluster, kind="remove_node", node=cluster.nodes.get(name="node3")
            )
        node3_address = cluster.nodes.get(name="node3").address
        removed = run(cluster, "remove_node", node="node3", confirm="node3")
        kept = removed.steps.get(name="stop_node").summary
        assert ".removed-" in kept, kept
        assert not Node.objects.filter(cluster=cluster, name="node3").exists()
        assert "node3" not in haproxy_servers(lab4)
        # The other nodes' firewalls no longer let the removed server in: its connection to
        # node1's etcd is dropped (timeout), not answered.
        knock = lab4.exec(
            "node3",
            ["timeout", "2", "bash", "-c", "exec 3<>/dev/tcp/198.18.0.11/2379"],
            check=False,
        )
        assert knock.returncode == 124, (node3_address, knock)
        moved = lab4.exec(
            "node3", ["sh", "-c", "ls -d /var/lib/postgresql/15/grow.removed-*"], check=False
        )
        assert moved.returncode == 0  # the removed node's data is kept aside, not deleted
    finally:
        writer.stop()
    kinds = set(ClusterEvent.objects.filter(cluster=cluster).values_list("kind", flat=True))
    assert {"node_added", "node_replaced", "node_removed"} <= kinds
    missing = {a.id for a in writer.acks} - writer.stored_ids()
    print(f"node changes: {len(writer.acks)} writes acknowledged, {len(missing)} missing")
    assert writer.servers_in_order() == ["198.18.0.11"]  # the primary never moved
    assert not missing
