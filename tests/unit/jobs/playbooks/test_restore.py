"""Point-in-time recovery's plans (issue 22 part 2): what they refuse, before any server is
touched."""

import pytest

from clusters.inventory.backups import backup_policy_set
from clusters.models import ScannedHostKey
from jobs.errors import JobRefused
from jobs.playbooks import restore
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db

NEW = "198.18.0.40"


def backed_up():
    cluster, nodes = three_node_cluster(state="healthy", ca_certificate="x")
    backup_policy_set(cluster=cluster, data={})
    ScannedHostKey.objects.create(
        address=NEW, port=22, key_type="ssh-ed25519", base64="AAAA", fingerprint="SHA256:new"
    )
    params = {
        "address": NEW,
        "credential": nodes[0].credential_id,
        "host_key_fingerprint": "SHA256:new",
        "target_type": "name",
        "target": "before_drop",
        "confirm": NEW,
    }
    return cluster, nodes, params


def test_a_restore_onto_a_new_server_is_planned_on_that_server():
    cluster, _, params = backed_up()
    steps = restore.plan_restore(cluster, None, params)
    assert [s.name for s in steps] == ["restore_prepare", "restore_files", "restore_recover"]
    assert all(s.node is None for s in steps)  # the target is no node of the inventory
    target = restore._target_node(cluster, params)
    assert target.pk is None and target.host_key_base64 == "AAAA"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"address": "198.18.0.11", "confirm": "198.18.0.11"}, "never goes onto a member"),
        ({"confirm": "yes"}, "type the target's address"),
        ({"host_key_fingerprint": "SHA256:other"}, "scan the target's host key"),
        ({"credential": 0}, "saved login"),
        ({"target_type": "xid"}, "not one of name, time, latest"),
        ({"target": "; rm -rf /"}, "restore point's name"),
        ({"target_type": "time", "target": "yesterday"}, "a time is like"),
        ({"target": ""}, "needs `target`"),
    ],
)
def test_a_restore_is_refused_when(change, message):
    cluster, _, params = backed_up()
    with pytest.raises(JobRefused, match=message):
        restore.plan_restore(cluster, None, {**params, **change})


def test_a_restore_is_refused_onto_a_node_of_the_cluster():
    cluster, nodes, params = backed_up()
    with pytest.raises(JobRefused, match="never a node of the cluster"):
        restore.plan_restore(cluster, nodes[0], params)


def test_a_restore_point_needs_a_plain_name():
    cluster, _, _ = backed_up()
    assert [s.name for s in restore.plan_restore_point(cluster, None, {"name": "v1.2_x"})] == [
        "restore_point_create"
    ]
    with pytest.raises(JobRefused, match="needs a name"):
        restore.plan_restore_point(cluster, None, {"name": "it's"})


def test_the_restored_server_never_archives_into_the_cluster():
    class Ctx:
        facts = {"spec": type("S", (), {"postgres_version": 15, "name": "pg1"})()}
        node = type("N", (), {"address": NEW})()

    options = restore.start_options(Ctx(), restore.restored_dir(Ctx()))
    assert "-c archive_mode=off" in options and "-c ssl=off" in options
    assert f"-c listen_addresses={NEW},127.0.0.1" in options
    assert "-c hba_file=/var/lib/postgresql/15/restored-pg1/pg_hba.conf" in options
