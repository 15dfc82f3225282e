"""Issue 19, state-aware actions: `why_not` decides before the click what the job would refuse
after it. Proved against the real `jobs.services.job_start` (run, then rolled back) for every
kind in many cluster states; then the page-only predictions (a failover to a node that is down,
a fresh reading), each kind's reason in words, and `facts_read`."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from clusters.inventory.backups import backup_policy_set
from clusters.models import Cluster, FenceDevice, Node, NodeStatus, ScannedHostKey
from clusters.web import action_checks
from clusters.web.action_checks import ActionFacts, NodeFacts, job_refusal, why_not
from jobs import services
from jobs.errors import JobRefused
from jobs.models import Job
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db

STATES = [s.value for s in Cluster.State]


def world(state="healthy", *, three=False, **fields):
    """pg1 in `state`: node1 primary, node2 (and node3) streaming standbys, a proxy; read now."""
    now = timezone.now()
    fields = {"last_leader": "node1", "last_checked": now, **fields}
    cluster, nodes = three_node_cluster(state=state, **fields)
    if three:
        nodes.append(
            Node.objects.create(
                cluster=cluster,
                name="node3",
                address="198.18.0.14",
                credential=nodes[0].credential,
                kind="database",
                host_key_type="ssh-ed25519",
                host_key_base64="AAAA",
                host_key_fingerprint="SHA256:3",
            )
        )
    for node in nodes:
        if node.kind == "database":
            primary = node.name == "node1"
            NodeStatus.objects.create(
                node=node,
                role="primary" if primary else "replica",
                state="running" if primary else "streaming",
                timeline=4,
                wal_position=5_000_000,
                lag_bytes=None if primary else 2048,
                lag_seconds=None if primary else 0.2,
                writable=primary,
                last_seen=now,
            )
    return cluster


class _Rollback(Exception):
    """Leaves the transaction after a job was created: the next check starts from the same
    database."""


def job_start_accepts(cluster, kind, node, user) -> bool:
    """Whether the real job_start would start `kind` (typed confirmations typed right)."""
    params = {}
    if kind in ("failover", "remove_cluster", "failover_drill"):
        params["confirm"] = cluster.name
    elif kind in ("remove_node", "fence") and node is not None:
        params["confirm"] = node.name
    if kind == "replace_node":
        params["old_address"] = "198.18.0.99"
    if kind == "change_parameters":
        params["parameters"] = {"work_mem": "8MB"}
    if kind == "change_parameters_restart":
        kind, params = "change_parameters", {"parameters": {"shared_buffers": "256MB"}}
        params["restart"] = True
    try:
        with transaction.atomic():
            services.job_start(
                cluster=cluster, kind=kind, node=node, params=params, requested_by=user
            )
            raise _Rollback
    except _Rollback:
        return True
    except JobRefused:  # JobConflict too
        return False


# Each world: a name, the state, and changes to make to it.
def _split_brain(cluster):
    NodeStatus.objects.filter(node__name="node2").update(writable=True)


def _alone_writable(cluster):
    # node2 writable and node1 not: fencing node2 would stop every write.
    NodeStatus.objects.filter(node__name="node1").update(writable=False)
    NodeStatus.objects.filter(node__name="node2").update(writable=True)


def _busy(cluster):
    Job.objects.create(cluster=cluster, kind="switchover", status="running", mutating=True)


def _fencing(cluster):
    Job.objects.create(cluster=cluster, kind="fence", status="pending", mutating=False)


def _on_tls(cluster):
    Node.objects.filter(cluster=cluster).update(tls_active=True)
    Cluster.objects.filter(pk=cluster.pk).update(ca_certificate="-----BEGIN CERTIFICATE-----")


def _backups_on(cluster):
    _on_tls(cluster)
    backup_policy_set(cluster=cluster, data={})


def _drill_ready(cluster):
    """Backups on, a drill server set (scanned, no member) and a successful backup."""
    _backups_on(cluster)
    ScannedHostKey.objects.create(
        address="198.18.0.40", port=22, key_type="ssh-ed25519", base64="AAAA", fingerprint="S:x"
    )
    backup_policy_set(
        cluster=cluster,
        data={
            "drill_address": "198.18.0.40",
            "drill_credential": cluster.nodes.first().credential_id,
            "drill_host_key_fingerprint": "S:x",
        },
    )
    Job.objects.create(cluster=cluster, kind="backup", status="succeeded", mutating=False)


def _fence_device(cluster, *, tested=True):
    """The primary's fence device, tested (or never) by "Test fence device"."""
    FenceDevice.objects.create(
        node=cluster.nodes.get(name="node1"),
        method="redfish",
        options={"ip": "198.18.0.1", "username": "fence"},
        secret="s",
        last_test_ok=True if tested else None,
    )


WORLDS = [
    *[(state, state, {}, None) for state in STATES],
    ("backups-on", "healthy", {}, _backups_on),
    ("backups-on-down", "down", {}, _backups_on),
    ("backups-on-busy", "healthy", {"three": True}, lambda c: [_backups_on(c), _busy(c)]),
    ("drill-ready", "healthy", {}, _drill_ready),
    ("drill-ready-down", "down", {}, _drill_ready),
    ("drill-ready-busy", "healthy", {"three": True}, lambda c: [_drill_ready(c), _busy(c)]),
    ("healthy-three-nodes", "healthy", {"three": True}, None),
    ("degraded-three-nodes", "degraded", {"three": True}, None),
    ("paused", "maintenance", {"maintenance": True, "three": True}, None),
    ("adopted", "healthy", {"origin": "adopted", "three": True}, None),
    ("leader-unread", "healthy", {"last_leader": ""}, None),
    ("split-brain", "degraded", {}, _split_brain),
    ("only-writable-standby", "degraded", {}, _alone_writable),
    ("a-job-runs", "healthy", {"three": True}, _busy),
    ("a-fence-runs", "degraded", {"three": True}, _fencing),
    ("on-tls", "healthy", {}, _on_tls),
    ("on-tls-down", "down", {}, _on_tls),
    ("fence-device", "healthy", {}, _fence_device),
    ("fence-device-untested", "healthy", {}, lambda c: _fence_device(c, tested=False)),
    ("fence-device-degraded", "degraded", {}, _fence_device),
    ("fence-device-busy", "healthy", {"three": True}, lambda c: [_fence_device(c), _busy(c)]),
    ("fence-device-fencing", "healthy", {"three": True}, lambda c: [_fence_device(c), _fencing(c)]),
]
# Every kind the cluster page offers, with the nodes it may name (None: the cluster).
KINDS = {
    "switchover": (None, "node1", "node2", "proxy"),
    "failover": (None, "node2", "proxy"),
    "rebuild": (None, "node2", "proxy"),
    "restart": (None, "node2", "proxy"),
    "maintenance_on": (None,),
    "maintenance_off": (None,),
    "add_node": ("node2", "proxy"),  # the node the add page created
    "replace_node": (None, "node2"),
    "remove_node": ("node2", "proxy"),
    "fence": ("node1", "node2", "proxy"),
    "rotate_certificates": (None, "node2"),
    "remove_cluster": (None,),
    "read_parameters": (None,),
    "change_parameters": (None,),
    "configure_backups": (None, "node2"),
    "backup": (None, "node2"),
    "restore_drill": (None, "node2"),
    "minor_upgrade": (None, "node2"),
    "failover_drill": (None, "node2"),
}


@pytest.mark.parametrize(
    ("state", "fields", "change"), [w[1:] for w in WORLDS], ids=[w[0] for w in WORLDS]
)
def test_why_not_agrees_with_job_start_for_every_kind(django_user_model, state, fields, change):
    user = django_user_model.objects.create_superuser("root", password="root-password-123")
    cluster = world(state, **fields)
    if change:
        change(cluster)
    cluster.refresh_from_db()
    facts = action_checks.facts_read(cluster)
    nodes = {n.name: n for n in cluster.nodes.all()}
    disagree = []
    for kind, targets in KINDS.items():
        for name in targets:
            node = nodes.get(name) if name else None
            if name == "node3" and node is None:
                continue
            refused = job_refusal(cluster, kind, node, facts)
            accepted = job_start_accepts(cluster, kind, node, user)
            if (refused is None) != accepted:
                disagree.append((kind, name, refused, accepted))
            # The page's answer refuses at least what the job refuses.
            if refused is not None:
                assert why_not(cluster, kind, node, facts) == refused
    # A change whose preview says "restart": the page asks why_not_change_parameters.
    refused = action_checks.why_not_change_parameters(cluster, restart=True, facts=facts)
    accepted = job_start_accepts(cluster, "change_parameters_restart", None, user)
    if cluster.state != "unknown" and (refused is None) != accepted:
        disagree.append(("change_parameters (restart)", None, refused, accepted))
    assert disagree == []


def facts_of(*nodes: NodeFacts, **fields) -> ActionFacts:
    return ActionFacts(nodes={n.name: n for n in nodes}, now=timezone.now(), **fields)


def cluster_in(state="healthy", **fields) -> Cluster:
    """An unsaved cluster: why_not is pure, it needs no database."""
    return Cluster(name="pg1", state=state, **{"last_leader": "node1", **fields})


NODE1 = Node(name="node1", kind="database")
NODE2 = Node(name="node2", kind="database")
PRIMARY = NodeFacts("node1", "database", role="primary", state="running", writable=True)


def standby(name="node2", **fields) -> NodeFacts:
    fields = {"role": "replica", "state": "streaming", "last_seen": timezone.now(), **fields}
    return NodeFacts(name, "database", **fields)


@pytest.mark.parametrize("state", ["degraded", "down", "unknown", "failing_over", "maintenance"])
def test_switchover_needs_a_healthy_cluster(state):
    reason = why_not(cluster_in(state), "switchover", None, facts_of(PRIMARY, standby()))
    assert reason.startswith("needs a healthy cluster: pg1 is ")
    assert why_not(cluster_in(), "switchover", None, facts_of(PRIMARY, standby())) is None


def test_switchover_to_a_standby_that_does_not_stream_cannot_succeed():
    facts = facts_of(PRIMARY, standby(state="stopped"))
    assert job_refusal(cluster_in(), "switchover", NODE2, facts) is None  # checked live, later
    assert why_not(cluster_in(), "switchover", NODE2, facts) == "node2 does not stream (stopped)"
    assert why_not(cluster_in(), "switchover", NODE1, facts) == "node1 is already the primary"


def test_failover_to_a_node_down_for_minutes_says_so_and_since_when():
    gone = timezone.now() - timedelta(minutes=5, seconds=3)
    down = NodeFacts("node1", "database", role="unknown", state="down", last_seen=gone)
    facts = facts_of(down, NodeFacts("node2", "database", role="primary", state="running"))
    cluster = cluster_in("degraded", last_checked=timezone.now())
    assert why_not(cluster, "failover", NODE1, facts) == (
        "node1 is down (last answered 5 min ago): only a running standby can take over"
    )
    # The job itself would accept it and fail on the servers: this is the page's prediction.
    assert job_refusal(cluster, "failover", NODE1, facts) is None


def test_failover_to_a_standby_whose_patroni_went_quiet_or_that_is_fenced_or_not_sync():
    now = timezone.now()
    cluster = cluster_in("degraded", last_checked=now)
    quiet = standby(last_seen=now - timedelta(minutes=2))
    assert why_not(cluster, "failover", NODE2, facts_of(PRIMARY, quiet)) == (
        "node2's Patroni does not answer (last answered 2 min ago)"
    )
    fenced = standby(fenced=True)
    assert why_not(cluster, "failover", NODE2, facts_of(PRIMARY, fenced)) == (
        "node2 is fenced until rebuilt"
    )
    sync = cluster_in("healthy", last_checked=now, replication="sync")
    assert "only the synchronous standby" in why_not(
        sync, "failover", NODE2, facts_of(PRIMARY, standby())
    )
    on_sync = standby(role="sync_replica")
    assert why_not(sync, "failover", NODE2, facts_of(PRIMARY, on_sync)) is None
    assert why_not(cluster, "failover", NODE2, facts_of(PRIMARY, standby())) is None


def test_remove_keeps_two_database_nodes_and_never_the_primary():
    two = facts_of(PRIMARY, standby())
    assert why_not(cluster_in(), "remove_node", NODE2, two) == (
        "a cluster keeps at least two database nodes: add a standby first, or replace node2"
    )
    three = facts_of(PRIMARY, standby(), standby("node3"))
    assert why_not(cluster_in(), "remove_node", NODE2, three) is None
    assert why_not(cluster_in(), "remove_node", NODE1, three) == (
        "node1 is the primary: switch over first"
    )
    paused = cluster_in("maintenance", maintenance=True)
    assert (
        why_not(paused, "remove_node", NODE2, three) == "pg1 is in maintenance mode: end it first"
    )


def test_restart_rotation_and_node_changes_need_a_running_cluster_of_ours():
    facts = facts_of(PRIMARY, standby())
    assert why_not(cluster_in("down"), "restart", None, facts) == (
        "needs a running cluster: pg1 is down"
    )
    assert why_not(cluster_in("degraded"), "restart", None, facts) is None
    adopted = cluster_in(origin="adopted")
    assert "adopted Patroni cluster" in why_not(adopted, "add_node", None, facts)
    assert "not on TLS yet (node1, node2)" in why_not(
        cluster_in(), "rotate_certificates", None, facts
    )
    assert why_not(cluster_in("new"), "maintenance_on", None, facts) == "pg1 is not set up yet"


def test_fence_never_the_leader_nor_the_only_writer_nor_blind():
    facts = facts_of(PRIMARY, standby())
    assert why_not(cluster_in(), "fence", NODE1, facts) == (
        "node1 holds the leader key: move the primary first"
    )
    assert why_not(cluster_in(), "fence", NODE2, facts) is None
    blind = Cluster(name="pg1", state="degraded", last_leader="")
    assert "has not read who holds the leader key" in why_not(blind, "fence", NODE2, facts)
    alone = facts_of(
        NodeFacts("node1", "database", role="unknown", state="down"), standby(writable=True)
    )
    assert why_not(cluster_in("degraded", last_leader="node3"), "fence", NODE2, alone) == (
        "node2 is the only node that accepts writes"
    )


def test_an_active_job_disables_every_change_until_it_ends():
    busy = facts_of(PRIMARY, standby(), active_job="switchover #12 (running)")
    for kind in ("switchover", "restart", "maintenance_on", "rotate_certificates"):
        reason = why_not(cluster_in(), kind, None, busy)
        if kind != "rotate_certificates":  # refused earlier: not on TLS
            assert reason == (
                "wait for switchover #12 (running) to end: one job changes a cluster at a time"
            )
    assert why_not(cluster_in(), "rebuild", NODE2, busy).startswith("wait for switchover #12")
    fencing = facts_of(PRIMARY, standby(), active_fence="fence #3 (pending)")
    assert why_not(cluster_in(), "fence", NODE2, fencing).startswith("wait for fence #3")
    assert why_not(cluster_in(), "rebuild", NODE2, fencing) is None  # a fence is no change


def test_an_unknown_cluster_needs_a_fresh_reading_for_what_acts_on_one():
    facts = facts_of(PRIMARY, standby(), standby("node3"))
    unknown = cluster_in("unknown")
    for kind in ("rebuild", "failover", "fence", "remove_node"):
        assert why_not(unknown, kind, NODE2, facts).startswith("needs a fresh reading"), kind
    assert why_not(unknown, "maintenance_on", None, facts).startswith("needs a fresh reading")


def test_facts_read_names_the_active_jobs_and_the_outlook():
    cluster = world("healthy")
    job = Job.objects.create(cluster=cluster, kind="rebuild", status="running", mutating=True)
    facts = action_checks.facts_read(cluster)
    assert facts.active_job == f"rebuild #{job.pk} (running)" and facts.active_fence
    assert set(facts.nodes) == {"node1", "node2", "proxy"}
    assert facts.nodes["node2"].state == "streaming" and facts.nodes["node1"].writable
    assert facts.outlook["node2"]["verdict"] == "would_promote"
