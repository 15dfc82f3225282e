"""The restore drill (issue 22 part 3): the drill server's validation, what the plan refuses,
the SQL it compares by, the comparison, the schedule, and the history in the API."""

import datetime

import pytest
from django.utils import timezone

from clusters.inventory.backups import backup_policy_set
from clusters.inventory.services import InvalidInput
from clusters.models import BackupPolicy, ScannedHostKey
from clusters.web import action_checks
from jobs import drill_tables
from jobs.backup_schedule import drill_due, drills_start_due
from jobs.errors import JobRefused
from jobs.models import Job, JobStatus, RestoreDrill
from jobs.playbooks import restore_drill
from tests.conftest import api_client, make_user
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db
SPARE = "198.18.0.40"


def _job(cluster, kind: str, hours_ago: float, **params) -> Job:
    job = Job.objects.create(cluster=cluster, kind=kind, status=JobStatus.SUCCEEDED, params=params)
    Job.objects.filter(pk=job.pk).update(
        created=timezone.now() - datetime.timedelta(hours=hours_ago)
    )
    return job


def _scanned(address: str = SPARE) -> str:
    ScannedHostKey.objects.get_or_create(
        address=address,
        port=22,
        fingerprint=f"SHA256:{address}",
        defaults={"key_type": "ssh-ed25519", "base64": "AAAAspare"},
    )
    return f"SHA256:{address}"


def drill_ready(**policy):
    """A healthy cluster with backups on, a drill server set and a successful full backup."""
    cluster, nodes = three_node_cluster(state="healthy", ca_certificate="x")
    backup_policy_set(
        cluster=cluster,
        data={
            "drill_address": SPARE,
            "drill_credential": nodes[0].credential_id,
            "drill_host_key_fingerprint": _scanned(),
            **policy,
        },
    )
    _job(cluster, "backup", 3, backup_type="full")
    return cluster, nodes


# --- the drill server ---------------------------------------------------------------------


def test_the_drill_server_is_pinned_from_its_scan_and_cleared_with_an_empty_address():
    cluster, _ = drill_ready(drill_tables=["pgbench_accounts", "app.orders"])
    policy = cluster.backup_policy
    assert (policy.drill_address, policy.drill_host_key_base64) == (SPARE, "AAAAspare")
    assert policy.drill_tables == ["pgbench_accounts", "app.orders"]
    server = policy.drill_server()
    assert server.pk is None and server.address == SPARE and server.host_key_type == "ssh-ed25519"
    backup_policy_set(cluster=cluster, data={"drill_address": ""})
    policy.refresh_from_db()
    assert policy.drill_server() is None and policy.drill_host_key_fingerprint == ""


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"drill_address": "198.18.0.11"}, "drill_address", "member of a cluster"),
        ({"drill_host_key_fingerprint": "SHA256:other"}, "drill_host_key_fingerprint", "scan"),
        ({"drill_credential": 0}, "drill_credential", "saved login"),
        ({"drill_ssh_port": 70000}, "drill_ssh_port", "port number"),
        ({"drill_tables": ["x; DROP TABLE y"]}, "drill_tables", "schema.table"),
        ({"drill_tables": "pgbench_accounts"}, "drill_tables", "schema.table"),
        ({"drill_database": "a b"}, "drill_database", "database name"),
        ({"drill_every_hours": -1}, "drill_every_hours", "whole number"),
    ],
)
def test_a_wrong_drill_server_or_table_is_refused_and_nothing_changes(change, field, words):
    cluster, nodes = three_node_cluster(state="healthy", ca_certificate="x")
    data = {
        "drill_address": SPARE,
        "drill_credential": nodes[0].credential_id,
        "drill_host_key_fingerprint": _scanned(),
        **change,
    }
    with pytest.raises(InvalidInput) as refused:
        backup_policy_set(cluster=cluster, data=data)
    assert field in refused.value.field_errors, refused.value.field_errors
    assert words in " ".join(refused.value.field_errors[field])
    assert not BackupPolicy.objects.filter(cluster=cluster).exists()


# --- the plan and the page's button --------------------------------------------------------


def test_a_drill_is_planned_snapshot_first_and_teardown_last():
    cluster, _ = drill_ready()
    steps = restore_drill.plan_drill(cluster, None, {})
    assert [s.name for s in steps] == [
        "drill_snapshot",
        "drill_prepare",
        "drill_files",
        "drill_recover",
        "drill_verify",
        "drill_teardown",
    ]
    assert all(s.node is None for s in steps)  # the drill server is no node of the inventory
    facts = action_checks.facts_read(cluster)
    assert action_checks.why_not(cluster, "restore_drill", None, facts) is None


def test_a_drill_is_refused_without_a_server_a_backup_or_when_the_server_joined_a_cluster():
    cluster, nodes = three_node_cluster(state="healthy", ca_certificate="x")
    backup_policy_set(cluster=cluster, data={})
    facts = action_checks.facts_read(cluster)
    with pytest.raises(JobRefused, match="set a drill server first"):
        restore_drill.plan_drill(cluster, None, {})
    assert "set a drill server first" in action_checks.why_not(
        cluster, "restore_drill", None, facts
    )
    backup_policy_set(
        cluster=cluster,
        data={
            "drill_address": SPARE,
            "drill_credential": nodes[0].credential_id,
            "drill_host_key_fingerprint": _scanned(),
        },
    )
    with pytest.raises(JobRefused, match="no successful backup yet"):
        restore_drill.plan_drill(cluster, None, {})
    _job(cluster, "backup", 1, backup_type="full")
    with pytest.raises(JobRefused, match="name no node"):
        restore_drill.plan_drill(cluster, nodes[0], {})
    running = Job.objects.create(cluster=cluster, kind="restore_drill", status="running")
    with pytest.raises(JobRefused, match=f"running already \\(job {running.pk}\\)"):
        restore_drill.plan_drill(cluster, None, {})
    Job.objects.filter(pk=running.pk).update(status="succeeded")
    # The server became a member of another cluster since it was set.
    three_node_cluster("pg2", network="198.18.0.", first=40)
    with pytest.raises(JobRefused, match="member of a cluster"):
        restore_drill.plan_drill(cluster, None, {})
    facts = action_checks.facts_read(cluster)
    assert "member of a cluster" in action_checks.why_not(cluster, "restore_drill", None, facts)


# --- what is compared -----------------------------------------------------------------------


def test_table_names_are_plain_identifiers_in_a_schema():
    assert drill_tables.table_name("pgbench_accounts") == "public.pgbench_accounts"
    assert drill_tables.table_name("app.Orders") == "app.Orders"
    assert drill_tables.table_name('x"; DROP TABLE y') is None
    assert drill_tables.table_name("a.b.c") is None
    assert drill_tables.quoted("app.Orders") == '"app"."Orders"'


def test_the_snapshot_locks_counts_and_makes_the_point_in_one_transaction():
    sql = drill_tables.snapshot_sql(["public.a", "app.b"], "drill_7").splitlines()
    assert sql[0] == "BEGIN;" and sql[-1] == "COMMIT;"
    assert "lock_timeout" in sql[1]
    assert sql[2] == 'LOCK TABLE "public"."a", "app"."b" IN SHARE MODE;'
    assert sql[3].startswith("SELECT 'T', 0, count(*), coalesce(sum(hashtextextended(t::text, 0))")
    assert sql[4].endswith('FROM "app"."b" AS t;')
    assert sql[5] == "SELECT 'P', pg_create_restore_point('drill_7');"
    # No table chosen nor found: no LOCK statement (an empty one is a syntax error).
    assert "LOCK" not in drill_tables.snapshot_sql([], "drill_7")
    assert "pg_create_restore_point" not in drill_tables.count_sql(["public.a"])


def test_psqls_rows_are_read_by_index_and_a_missing_table_is_an_error():
    lines = ["BEGIN", "T|1|50|-77", "T|0|500000|123456789", "P|0/5000028", "COMMIT"]
    results, lsn = drill_tables.parse_counts(lines, ["public.a", "public.b"])
    assert lsn == "0/5000028"
    assert results == [
        {"table": "public.a", "rows": 500000, "checksum": "123456789"},
        {"table": "public.b", "rows": 50, "checksum": "-77"},
    ]
    with pytest.raises(ValueError, match=r"public\.b"):
        drill_tables.parse_counts(["T|0|1|1"], ["public.a", "public.b"])


def test_the_comparison_names_each_table_that_differs_and_how():
    primary = [
        {"table": "public.a", "rows": 10, "checksum": "1"},
        {"table": "public.b", "rows": 5, "checksum": "2"},
        {"table": "public.c", "rows": 3, "checksum": "3"},
        {"table": "public.d", "rows": 1, "checksum": "4"},
    ]
    copy = [
        {"table": "public.a", "rows": 10, "checksum": "1"},
        {"table": "public.b", "rows": 4, "checksum": "9"},
        {"table": "public.c", "rows": 3, "checksum": "8"},
    ]
    merged, differ = drill_tables.compare(primary, copy)
    assert [m["same"] for m in merged] == [True, False, False, False]
    assert merged[1]["copy_rows"] == 4 and merged[3]["copy_rows"] is None
    assert differ == [
        "public.b has 4 rows on the copy, 5 on the primary",
        "public.c has the same 3 rows but other contents",
        "public.d is missing on the copy",
    ]
    assert drill_tables.compare(primary[:1], copy[:1])[1] == []


# --- the schedule -------------------------------------------------------------------------


def test_a_drill_is_due_after_a_backup_every_so_many_hours():
    now = timezone.now()
    hours = datetime.timedelta(hours=1)
    assert not drill_due(0, now, None, now)  # drills off
    assert not drill_due(24, None, None, now)  # nothing to restore yet
    assert drill_due(24, now - hours, None, now)  # never drilled
    assert not drill_due(24, now - hours, now - 23 * hours, now)
    assert drill_due(24, now - hours, now - 24 * hours, now)


def test_due_drills_start_as_jobs_one_at_a_time(django_capture_on_commit_callbacks):
    cluster, _ = drill_ready()
    assert drills_start_due() == []  # drill_every_hours is 0: no scheduled drills
    backup_policy_set(cluster=cluster, data={"drill_every_hours": 24})
    with django_capture_on_commit_callbacks():
        (started,) = drills_start_due()
    assert Job.objects.get(pk=started).kind == "restore_drill"
    assert drills_start_due() == []  # that one is still pending
    Job.objects.filter(pk=started).update(status=JobStatus.SUCCEEDED)
    RestoreDrill.objects.create(cluster=cluster, job_id=started, target_address=SPARE)
    assert drills_start_due() == []  # drilled less than a day ago
    later = timezone.now() + datetime.timedelta(hours=25)
    with django_capture_on_commit_callbacks():
        assert len(drills_start_due(later)) == 1


# --- the history ----------------------------------------------------------------------------


def test_the_api_shows_the_drill_server_and_history_without_secrets(client, django_user_model):
    cluster, nodes = drill_ready()
    passed = _job(cluster, "restore_drill", 2)
    RestoreDrill.objects.create(
        cluster=cluster,
        job=passed,
        target_address=SPARE,
        backup_label="20261205-071500F",
        restore_point=f"drill_{passed.pk}",
        results=[{"table": "public.a", "rows": 3, "checksum": "1", "copy_rows": 3, "same": True}],
        outcome="passed",
        rto_seconds=42.5,
    )
    lost = _job(cluster, "restore_drill", 1)
    Job.objects.filter(pk=lost.pk).update(status=JobStatus.LOST)
    RestoreDrill.objects.create(cluster=cluster, job=lost, target_address=SPARE)
    viewer = api_client(client, make_user(django_user_model, "eve", "viewer"))
    body = viewer.get(f"/api/v1/clusters/{cluster.pk}/backups/").json()
    assert body["drill_server"] == {
        "address": SPARE,
        "ssh_port": 22,
        "credential": nodes[0].credential_id,
        "host_key_fingerprint": f"SHA256:{SPARE}",
    }
    newest, older = body["drills"]
    assert (newest["outcome"], newest["reason"]) == ("failed", "job lost")
    assert (older["outcome"], older["rto_seconds"]) == ("passed", 42.5)
    assert older["tables"][0]["table"] == "public.a"
    assert "pw-123456" not in str(body) and "AAAAspare" not in str(body)


def test_the_restored_backups_label_is_read_from_pgbackrests_line():
    line = (
        "P00   INFO: repo1: restore backup set 20261205-103000F, recovery will start at "
        "2026-12-05 10:30:00"
    )
    assert restore_drill.LABEL.search(line).group(1) == "20261205-103000F"
