"""The rolling minor upgrade's plan (jobs.playbooks.upgrade) and the page and API around it."""

from types import SimpleNamespace

import pytest
from django.utils import timezone

from clusters.models import Cluster, NodeStatus, NodeVersions
from jobs.errors import JobRefused
from jobs.package_versions import PackageState
from jobs.playbooks import upgrade, upgrade_apt, upgrade_restarts, versions
from jobs.playbooks.base import StepFailed
from tests.conftest import api_client, make_user
from tests.unit.conftest import three_node_cluster
from tests.unit.jobs.playbooks.scripted_server import Rule, scripted_context

pytestmark = pytest.mark.django_db


def healthy_cluster(primary: str = "node2"):
    cluster, nodes = three_node_cluster(state="healthy")
    for node in nodes:
        role = "primary" if node.name == primary else "replica"
        NodeStatus.objects.create(node=node, role=role, state="running", timeline=2)
    return cluster, nodes


def test_plan_upgrades_the_standbys_and_the_proxy_then_switches_over_then_the_old_primary():
    cluster, _ = healthy_cluster(primary="node1")
    steps = upgrade.plan(cluster, None, {})
    assert [(s.name, s.node.name if s.node else "") for s in steps] == [
        ("upgrade_check", ""),
        ("upgrade_node", "node2"),
        ("upgrade_node", "proxy"),
        ("upgrade_switchover", ""),
        ("upgrade_node", "node1"),
        ("upgrade_verify", ""),
    ]


def test_plan_falls_back_to_the_last_leader_when_the_monitor_saw_no_primary():
    cluster, _ = three_node_cluster(state="healthy", last_leader="node2")
    steps = upgrade.plan(cluster, None, {})
    assert [s.node.name for s in steps if s.name == "upgrade_node"] == ["node1", "proxy", "node2"]


@pytest.mark.parametrize("state", ["new", "degraded", "maintenance", "down", "unknown"])
def test_plan_refuses_a_cluster_that_is_not_healthy(state):
    cluster, _ = three_node_cluster(state=state)
    with pytest.raises(JobRefused, match="needs a healthy cluster"):
        upgrade.plan(cluster, None, {})


def test_plan_refuses_a_named_node_and_an_adopted_cluster():
    cluster, nodes = healthy_cluster()
    with pytest.raises(JobRefused, match="name no node"):
        upgrade.plan(cluster, nodes[0], {})
    Cluster.objects.filter(pk=cluster.pk).update(origin=Cluster.Origin.ADOPTED)
    cluster.refresh_from_db()
    with pytest.raises(JobRefused, match="adopted"):
        upgrade.plan(cluster, None, {})


def test_the_check_reads_our_packages_only_and_quotes_them():
    cluster, nodes = healthy_cluster()
    assert versions.tracked(cluster, nodes[0]) == [
        "postgresql-15",
        "postgresql-client-15",
        "libpq5",
        "etcd-server",
        "etcd-client",
    ]
    assert versions.tracked(cluster, nodes[2]) == ["haproxy", "etcd-server", "etcd-client"]
    script = versions.versions_script(["postgresql-15", "x; rm -rf /"])
    assert "'x; rm -rf /'" in script


def _stored(cluster, nodes):
    now = timezone.now()
    NodeVersions.objects.create(
        node=nodes[0],
        packages={
            "postgresql-15": {"installed": "15.18-0+deb12u1", "candidate": "15.20-0+deb12u1"},
            "etcd-server": {"installed": "3.4.23-4+b4", "candidate": "3.4.23-4+b4"},
        },
        running={"postgresql": "15.18-0+deb12u1", "patroni": "4.1.5"},
        stale=[],
        checked_at=now,
    )
    NodeVersions.objects.create(
        node=nodes[2],
        packages={"haproxy": {"installed": "2.6.12-1+deb12u4", "candidate": "2.6.12-1+deb12u4"}},
        stale=["/usr/sbin/haproxy"],
        checked_at=now,
    )


def test_the_api_shows_what_runs_where_and_what_is_available(client, django_user_model):
    cluster, nodes = healthy_cluster()
    _stored(cluster, nodes)
    api = api_client(client, make_user(django_user_model, "viewer1", "viewer"))
    body = api.get(f"/api/v1/clusters/{cluster.pk}/versions/").json()
    by_node = {n["node"]: n for n in body["nodes"]}
    assert body["updates_available"] is True
    assert by_node["node1"]["packages"]["postgresql-15"] == {
        "installed": "15.18-0+deb12u1",
        "available": "15.20-0+deb12u1",
    }
    assert by_node["node1"]["packages"]["etcd-server"]["available"] is None
    assert by_node["node1"]["running"] == {"postgresql": "15.18-0+deb12u1", "patroni": "4.1.5"}
    assert by_node["proxy"]["restart_needed"] == ["/usr/sbin/haproxy"]
    assert by_node["node2"]["checked_at"] is None


def test_the_cluster_page_shows_versions_and_offers_the_upgrade_to_operators(
    client, django_user_model
):
    cluster, nodes = healthy_cluster()
    _stored(cluster, nodes)
    client.force_login(make_user(django_user_model, "op1", "operator"))
    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert 'id="versions"' in page and "15.20-0+deb12u1" in page
    assert 'value="check_updates"' in page
    assert f"/clusters/{cluster.pk}/confirm/minor_upgrade/" in page
    client.force_login(make_user(django_user_model, "viewer2", "viewer"))
    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "15.20-0+deb12u1" in page and "minor_upgrade/" not in page


# --- steps, on a scripted server ----------------------------------------------------------


def _context(node, cluster, rules=(), **params):
    ctx = scripted_context(node, cluster, list(rules))
    ctx.job.pk = 0
    ctx.job.params = dict(params)
    return ctx


def test_the_check_refuses_a_new_major_and_names_it(monkeypatch):
    cluster, _ = healthy_cluster()
    offered = {
        "haproxy": PackageState("haproxy", "2.6.12-1+deb12u4", "2.8.3-1"),
        "postgresql-15": PackageState("postgresql-15", "15.18-0+deb12u1", "15.20-0+deb12u1"),
    }
    monkeypatch.setattr(upgrade_apt, "refresh", lambda ctx, node: None)
    monkeypatch.setattr(versions, "package_states", lambda ctx, node: offered)
    monkeypatch.setattr(versions, "read_and_store", lambda ctx, node: None)
    ctx = _context(None, cluster)
    with pytest.raises(StepFailed, match=r"refused: .*node1: haproxy 2\.6 → 2\.8"):
        upgrade.upgrade_check(ctx)
    assert "targets" not in ctx.job.params


def test_the_check_notes_the_exact_versions_per_node(monkeypatch):
    cluster, _ = healthy_cluster()
    offered = {
        "postgresql-15": PackageState("postgresql-15", "15.18-0+deb12u1", "15.20-0+deb12u1"),
        "etcd-server": PackageState("etcd-server", "3.4.23-4+b4", "3.4.23-4+b4"),
    }
    monkeypatch.setattr(upgrade_apt, "refresh", lambda ctx, node: None)
    monkeypatch.setattr(versions, "package_states", lambda ctx, node: offered)
    monkeypatch.setattr(versions, "read_and_store", lambda ctx, node: None)
    ctx = _context(None, cluster)
    verdict = upgrade.upgrade_check(ctx)
    assert ctx.job.params["targets"]["node1"] == {"postgresql-15": "15.20-0+deb12u1"}
    assert "postgresql-15 15.20-0+deb12u1 on node1, node2, proxy" in verdict


def test_a_node_step_refuses_the_primary_while_it_needs_the_upgrade(monkeypatch):
    cluster, nodes = healthy_cluster(primary="node2")
    monkeypatch.setattr(upgrade, "_installed", lambda ctx, node: {"libpq5": "15.18-0+deb12u1"})
    monkeypatch.setattr(upgrade_restarts, "leader_name", lambda ctx: "node2")
    monkeypatch.setattr(versions, "stale_binaries", lambda ctx, node: [])
    ctx = _context(nodes[1], cluster, targets={"node2": {"libpq5": "15.20-0+deb12u1"}})
    with pytest.raises(StepFailed, match="node2 is the primary"):
        upgrade.upgrade_node(ctx)


def test_a_node_step_installs_exactly_our_packages_keeping_config_files(monkeypatch):
    cluster, nodes = healthy_cluster(primary="node2")
    new = "15.20-0+deb12u1"
    installed = {"postgresql-15": "15.18-0+deb12u1", "libpq5": new}
    monkeypatch.setattr(upgrade, "_installed", lambda ctx, node: installed)
    monkeypatch.setattr(upgrade_restarts, "leader_name", lambda ctx: "node2")
    monkeypatch.setattr(upgrade_apt, "masked", lambda ctx, node: {"postgresql@15-main.service"})
    restarted = ["PostgreSQL restarted"]
    monkeypatch.setattr(upgrade_restarts, "restart_stale", lambda ctx, node: restarted)
    monkeypatch.setattr(upgrade_restarts, "check_node", lambda ctx, node, done: ["streams"])
    stored = SimpleNamespace(packages={p: {"installed": new} for p in ("postgresql-15", "libpq5")})
    monkeypatch.setattr(versions, "read_and_store", lambda ctx, node: stored)
    monkeypatch.setattr(versions, "stale_binaries", lambda ctx, node: [])
    rules = [Rule("apt-get -s", ["Inst postgresql-15 [15.18-0+deb12u1] (15.20-0+deb12u1)"])]
    wanted = {"postgresql-15": new, "libpq5": new}
    ctx = _context(nodes[0], cluster, rules, targets={"node1": wanted})
    verdict = upgrade.upgrade_node(ctx)
    assert verdict == f"postgresql-15 {new}; PostgreSQL restarted; streams"
    conn = ctx.connections.connection
    install = conn.commands[conn.ran("DEBIAN_FRONTEND=noninteractive apt-get")]
    assert "--only-upgrade" in install and "--force-confold" in install
    assert install.endswith(f" postgresql-15={new}")  # libpq5 is there already


def test_a_node_step_refuses_what_would_remove_or_change_another_package(monkeypatch):
    cluster, nodes = healthy_cluster(primary="node2")
    monkeypatch.setattr(upgrade, "_installed", lambda ctx, node: {"libpq5": "15.18-0+deb12u1"})
    monkeypatch.setattr(upgrade_restarts, "leader_name", lambda ctx: "node2")
    monkeypatch.setattr(upgrade_apt, "masked", lambda ctx, node: set())
    monkeypatch.setattr(versions, "stale_binaries", lambda ctx, node: [])
    rules = [Rule("apt-get -s", ["Remv mysql-common [5.8]", "Inst libc6 [2.36-9] (2.36-10)"])]
    ctx = _context(nodes[0], cluster, rules, targets={"node1": {"libpq5": "15.20-0+deb12u1"}})
    with pytest.raises(StepFailed, match="remove mysql-common; also change libc6"):
        upgrade.upgrade_node(ctx)
    assert not any("DEBIAN_FRONTEND" in c for c in ctx.connections.connection.commands)


def test_a_node_step_fails_when_the_upgrade_unmasked_a_distribution_unit(monkeypatch):
    cluster, nodes = healthy_cluster(primary="node2")
    seen = iter([{"postgresql@15-main.service"}, set()])
    monkeypatch.setattr(upgrade, "_installed", lambda ctx, node: {"libpq5": "15.18-0+deb12u1"})
    monkeypatch.setattr(upgrade_restarts, "leader_name", lambda ctx: "node2")
    monkeypatch.setattr(upgrade_apt, "masked", lambda ctx, node: next(seen))
    monkeypatch.setattr(versions, "stale_binaries", lambda ctx, node: [])
    ctx = _context(nodes[0], cluster, targets={"node1": {"libpq5": "15.20-0+deb12u1"}})
    with pytest.raises(StepFailed, match=r"unmasked postgresql@15-main\.service"):
        upgrade.upgrade_node(ctx)


def test_the_outside_patroni_check_quotes_the_data_directory():
    script = upgrade_restarts.outside_patroni_script("/var/lib/postgresql/15/my main")
    assert "realpath -m '/var/lib/postgresql/15/my main'" in script


def test_the_check_refuses_packages_the_admin_holds(monkeypatch):
    cluster, _ = healthy_cluster()
    offered = {
        "postgresql-15": PackageState("postgresql-15", "15.18-0+deb12u1", "15.20-0+deb12u1"),
    }
    monkeypatch.setattr(upgrade_apt, "refresh", lambda ctx, node: None)
    monkeypatch.setattr(versions, "package_states", lambda ctx, node: offered)
    monkeypatch.setattr(versions, "read_and_store", lambda ctx, node: None)
    ctx = _context(None, cluster, [Rule("apt-mark showhold", ["postgresql-15", "vim"])])
    with pytest.raises(StepFailed, match=r"apt-mark hold \(node1: postgresql-15; node2: post"):
        upgrade.upgrade_check(ctx)


def test_a_node_step_stops_at_a_hold_placed_after_the_check(monkeypatch):
    cluster, nodes = healthy_cluster(primary="node2")
    monkeypatch.setattr(upgrade, "_installed", lambda ctx, node: {"libpq5": "15.18-0+deb12u1"})
    monkeypatch.setattr(upgrade_restarts, "leader_name", lambda ctx: "node2")
    monkeypatch.setattr(versions, "stale_binaries", lambda ctx, node: [])
    rules = [Rule("apt-mark showhold", ["libpq5"])]
    ctx = _context(nodes[0], cluster, rules, targets={"node1": {"libpq5": "15.20-0+deb12u1"}})
    with pytest.raises(StepFailed, match="node1: libpq5"):
        upgrade.upgrade_node(ctx)
    assert not any("apt-get" in c for c in ctx.connections.connection.commands)


@pytest.mark.parametrize(
    ("todo", "stale", "expected"),
    [
        ({"postgresql-15": "15.20-0+deb12u1"}, [], True),
        ({"libpq5": "15.20-0+deb12u1"}, [], True),
        ({}, ["/usr/lib/postgresql/15/bin/postgres"], True),
        ({"etcd-server": "3.4.23-4+b6"}, ["/usr/bin/etcd"], False),
        ({"haproxy": "2.6.12-1+deb12u4"}, [], False),
    ],
)
def test_only_a_postgresql_change_needs_the_switchover(todo, stale, expected):
    assert upgrade.touches_postgres(todo, stale) is expected


def test_an_etcd_build_is_installed_on_the_primary_without_a_switchover(monkeypatch):
    cluster, nodes = healthy_cluster(primary="node2")
    monkeypatch.setattr(upgrade, "_installed", lambda ctx, node: {"etcd-server": "3.4.23-4+b4"})
    monkeypatch.setattr(upgrade_restarts, "leader_name", lambda ctx: "node2")
    monkeypatch.setattr(versions, "stale_binaries", lambda ctx, node: [])
    ctx = _context(nodes[1], cluster, targets={"node2": {"etcd-server": "3.4.23-4+b6"}})
    assert "keeps its PostgreSQL build" in upgrade.upgrade_switchover(ctx)


def test_the_checks_verdict_names_newer_builds_only_and_what_needs_a_restart():
    row = NodeVersions(
        packages={
            "postgresql-15": {"installed": "15.18-0+deb12u1", "candidate": "15.20-0+deb12u1"},
            "haproxy": {"installed": "2.6.13-1", "candidate": "2.6.12-1+deb12u4"},  # newer here
        },
        running={"postgresql": "15.18-0+deb12u1"},
        stale=["/usr/sbin/haproxy"],
    )
    assert versions.describe(row) == (
        "haproxy 2.6.13-1; postgresql-15 15.18-0+deb12u1 → 15.20-0+deb12u1 available; "
        "postgresql running 15.18-0+deb12u1; restart needed: /usr/sbin/haproxy"
    )
