"""Jobs on an adopted Patroni cluster (the customer's own, perhaps without a proxy): setup and
remove refused without force, the fence without a proxy, and the job kinds that route through
the adopted layout."""

import pytest

from clusters.models import Cluster, Credential, Node, NodeStatus
from jobs import patroni_api
from jobs.errors import JobRefused
from jobs.playbooks import failover, fence, nodes, remove, restart, setup, sql
from jobs.playbooks.layout import patroni_layout
from tests.unit.jobs.playbooks.scripted_server import Rule, scripted_context

pytestmark = pytest.mark.django_db

LAYOUT = {
    "scope": "shop",
    "namespace": "/customer/",
    "config_path": "/etc/patroni/config.yml",
    "data_dir": "/var/lib/postgresql/15/shop",
    "bin_dir": "/usr/lib/postgresql/15/bin",
    "rest_user": "admin",
    "unit": "patroni.service",
}


def adopted(proxy: bool = False) -> Cluster:
    """The customer's cluster `shop`: node1 and node2 (and a proxy if asked), adopted."""
    cred = Credential.objects.create(name="c", username="root", password="pw-123456")
    cluster = Cluster.objects.create(
        name="shop", origin=Cluster.Origin.ADOPTED, patroni_layout=LAYOUT, state="healthy"
    )
    kinds = [("node1", "database"), ("node2", "database")] + ([("proxy", "proxy")] if proxy else [])
    for i, (name, kind) in enumerate(kinds):
        Node.objects.create(
            cluster=cluster,
            name=name,
            address=f"198.19.0.{11 + i}",
            credential=cred,
            kind=kind,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint=f"SHA256:{i}",
        )
    return cluster


@pytest.mark.parametrize(("module", "what"), [(setup, "setup"), (remove, "remove")])
def test_setup_and_remove_refuse_an_adopted_cluster_without_force(module, what):
    cluster = adopted()
    confirmed = {"confirm": "shop"}  # remove asks for the name in `confirm` first
    for params in ({}, {"force": "yes"}, {"force": "Shop"}):
        with pytest.raises(JobRefused, match=f'adopted Patroni cluster: {what}.*force="shop"'):
            module.plan(cluster, None, {**confirmed, **params})
    setup.refuse_adopted(cluster, {"force": "shop"}, what)  # the typed name lets it through


def test_a_built_cluster_needs_no_force():
    cluster = adopted()
    Cluster.objects.filter(pk=cluster.pk).update(origin=Cluster.Origin.BUILT)
    cluster.refresh_from_db()
    setup.refuse_adopted(cluster, {}, "setup")  # no exception


def test_restart_and_failover_plan_on_an_adopted_cluster_without_a_proxy():
    cluster = adopted()
    node2 = cluster.nodes.get(name="node2")
    assert [s.name for s in restart.plan(cluster, node2, {})] == ["pause", "restart", "resume"]
    steps = failover.plan(cluster, node2, {"confirm": "shop"})
    assert [(s.name, s.node) for s in steps] == [("failover", node2)]


def test_fence_without_a_proxy_skips_the_haproxy_wall_with_a_reason_and_stops_the_node():
    cluster = adopted()
    node1 = cluster.nodes.get(name="node1")
    NodeStatus.objects.create(node=node1)
    steps = fence.plan(cluster, node1, {})
    assert [(s.name, s.node) for s in steps] == [
        ("haproxy_maintenance", None),
        ("stop_database", node1),
    ]
    assert "no proxy" in steps[0].title

    ctx = scripted_context(None, cluster, [], spec=None)
    ctx.job.node = node1
    verdict = fence.haproxy_maintenance(ctx)
    assert verdict.warning and "no proxy in shop" in verdict.summary
    assert ctx.connections.get(None).commands == []  # nothing was run anywhere

    rules = [Rule("[ -d /run/systemd/system ]")]  # a systemd server
    ctx = scripted_context(node1, cluster, rules, spec=None)
    ctx.job.node = node1
    fence.stop_database(ctx)
    server = ctx.connections.get(node1)
    # The customer's own unit and data directory, from the adopted layout.
    server.ran("systemctl disable --now patroni.service")
    server.ran("/usr/lib/postgresql/15/bin/pg_ctl stop -D /var/lib/postgresql/15/shop")
    assert NodeStatus.objects.get(node=node1).fenced


def test_fence_with_a_proxy_plans_the_haproxy_wall_on_it():
    cluster = adopted(proxy=True)
    node1 = cluster.nodes.get(name="node1")
    steps = fence.plan(cluster, node1, {})
    assert steps[0].node == cluster.nodes.get(name="proxy")
    assert "maintenance in HAProxy" in steps[0].title


def test_failover_without_a_proxy_waits_for_the_leader_only(monkeypatch):
    cluster = adopted()
    node2 = cluster.nodes.get(name="node2")
    posted = []
    views = iter(
        [
            [
                {"name": "node1", "role": "leader"},
                {"name": "node2", "role": "replica", "state": "streaming", "lag": 0},
            ],
            [{"name": "node1", "role": "replica"}, {"name": "node2", "role": "leader"}],
        ]
    )
    monkeypatch.setattr(failover, "members", lambda ctx: next(views))
    monkeypatch.setattr(failover, "_answering_node", lambda ctx: cluster.nodes.get(name="node1"))
    monkeypatch.setattr(patroni_api, "post", lambda *a, **kw: posted.append((a, kw)) or (200, "ok"))

    def no_proxy(ctx):
        raise AssertionError("a cluster without a proxy has no HAProxy to ask")

    monkeypatch.setattr(failover, "routed_writes", no_proxy)
    ctx = scripted_context(node2, cluster, [], spec=None)
    verdict = failover.failover(ctx)
    assert "node2 is primary" in verdict
    assert posted[0][0][1] == "/failover" and posted[0][0][2] == {"candidate": "node2"}


@pytest.mark.parametrize("plan", [nodes.add_plan, nodes.replace_plan, nodes.remove_plan])
def test_node_membership_jobs_are_refused_on_an_adopted_cluster(plan):
    cluster = adopted()
    node2 = cluster.nodes.get(name="node2")
    params = {"old_address": "198.19.0.99", "confirm": "node2"}
    with pytest.raises(JobRefused, match=r"adopted Patroni cluster.*own tooling"):
        plan(cluster, node2, params)


def test_psql_finds_an_adopted_clusters_postgresql_at_its_own_socket():
    cluster = adopted()
    node1 = cluster.nodes.get(name="node1")
    ctx = scripted_context(node1, cluster, [Rule("psql", ["1"])])
    assert sql.psql(ctx, node1, "SELECT 1;") == ["1"]
    ctx.connections.get(node1).ran("-h /run/postgresql -p 5432")  # none stored: Debian's
    Cluster.objects.filter(pk=cluster.pk).update(patroni_layout={**LAYOUT, "socket_dir": "/tmp"})
    cluster.refresh_from_db()
    ctx = scripted_context(node1, cluster, [Rule("psql", ["1"])])
    sql.psql(ctx, node1, "SELECT 1;")
    ctx.connections.get(node1).ran("-h /tmp -p 5432")


def test_a_taken_over_database_keeps_its_data_directory_in_every_playbook():
    cluster = Cluster.objects.create(name="shop", postgres_version=15)
    assert patroni_layout(cluster).data_dir == "/var/lib/postgresql/15/shop"
    cluster.adopted_from = {"data_dir": "/var/lib/postgresql/15/main"}
    assert patroni_layout(cluster).data_dir == "/var/lib/postgresql/15/main"
