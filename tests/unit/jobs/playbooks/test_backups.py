"""Backups (issue 22 part 1): the policy service, the schedule, the plans' refusals, and what
`pgbackrest info` and pg_stat_archiver are boiled down to."""

import datetime

import pytest
from django.utils import timezone

from clusters.inventory import pki
from clusters.inventory.backups import backup_policy_set
from clusters.inventory.services import InvalidInput
from clusters.inventory.tls import cluster_tls_ensure
from clusters.models import BackupPolicy, Node
from jobs.backup_schedule import backup_due, backups_configured, backups_start_due
from jobs.configs import spec as paths
from jobs.errors import JobRefused
from jobs.models import Job, JobStatus, Step
from jobs.playbooks import backup_info, backups, packages, rebuild, remove, restore, setup
from jobs.playbooks import nodes as node_plays
from jobs.playbooks.backup_tls import certificate_ok
from jobs.playbooks.setup import cluster_spec
from tests.conftest import api_client, make_user
from tests.unit.conftest import three_node_cluster
from tests.unit.jobs.playbooks.scripted_server import Rule, scripted_context

pytestmark = pytest.mark.django_db
WAL_START = "000000010000000000000003"

INFO = [
    {
        "name": "pg1",
        "cipher": "aes-256-cbc",
        "status": {"code": 0, "message": "ok"},
        "archive": [
            {"id": "15-1", "min": "000000010000000000000002", "max": "000000020000000000000009"}
        ],
        "backup": [
            {
                "label": "20261205-071500F",
                "type": "full",
                "timestamp": {"start": 1796454900, "stop": 1796454912},
                "info": {
                    "size": 83_886_080,
                    "delta": 83_886_080,
                    "repository": {"delta": 5_242_880},
                },
                "archive": {
                    "start": "000000010000000000000003",
                    "stop": "000000010000000000000003",
                },
                "error": False,
            }
        ],
    }
]


def test_info_is_boiled_down_to_the_last_backup_and_the_archive_range():
    summary = backup_info.summarize(INFO, "pg1")
    assert summary["status"] == "ok" and summary["cipher"] == "aes-256-cbc"
    assert summary["archive_max"] == "000000020000000000000009"
    (last,) = summary["backups"]
    assert last["duration_s"] == 12 and last["size_bytes"] == 83_886_080
    assert last["wal_start"] == "000000010000000000000003"
    assert last["started"].startswith("2026-12-05T")
    said = backup_info.describe(summary)
    assert "full 20261205-071500F: 80 MiB (repository 5 MiB) in 12 s" in said
    assert "WAL archive 000000010000000000000002 to 000000020000000000000009" in said


def test_the_archiver_line_is_parsed_and_failures_are_told():
    line = "|".join(
        [*("42", "000000020000000000000009", "2026-12-05 07:20:00+00", "3"), "X", "", "17"]
    )
    archiver = backup_info.parse_archiver(line)
    assert archiver["archived_count"] == 42 and archiver["failed_count"] == 3
    assert archiver["last_archived_age_s"] == 17 and archiver["last_failed_at"] is None
    assert backup_info.parse_archiver("") == {}
    failing = {**archiver, "last_failed_at": "2026-12-05 07:21:00+00"}
    summary = {**backup_info.summarize(INFO, "pg1"), "archiver": failing}
    assert "archiving fails on the primary: X failed" in backup_info.describe(summary)


def test_a_policy_defaults_to_the_proxy_and_refuses_bad_values():
    cluster, _ = three_node_cluster()
    policy = backup_policy_set(cluster=cluster, data={})
    assert policy.repository_node().name == "proxy" and policy.stanza == "pg1"
    with pytest.raises(InvalidInput) as refused:
        backup_policy_set(
            cluster=cluster,
            data={"repo_node": "node9", "retention_full": 0, "repo_path": "../x"},
        )
    assert set(refused.value.field_errors) == {"repo_node", "retention_full", "repo_path"}
    policy = backup_policy_set(cluster=cluster, data={"repo_node": "node2", "retention_full": 4})
    assert policy.repository_node().name == "node2" and policy.retention_full == 4


def test_setup_archives_and_installs_pgbackrest_only_once_a_policy_exists():
    cluster, nodes = three_node_cluster()
    spec = cluster_spec(cluster)
    assert spec.backup_stanza == ""
    assert "pgbackrest" not in packages.wanted(spec, nodes[0])
    backup_policy_set(cluster=cluster, data={})
    spec = cluster_spec(cluster)
    assert (spec.backup_stanza, spec.backup_repo) == ("pg1", "proxy")
    assert all("pgbackrest" in packages.wanted(spec, n) for n in nodes)
    # the repository's passphrase is generated and redacted like every other secret
    cipher = cluster.secrets.get(name="backup_cipher").value
    assert len(cipher) >= 40 and cipher in cluster.secret_values()
    assert paths.data_dir(spec) == "/var/lib/postgresql/15/pg1"


def test_plans_refuse_without_a_policy_a_running_cluster_or_with_a_bad_type():
    cluster, _ = three_node_cluster(state="healthy", ca_certificate="x")
    with pytest.raises(JobRefused, match="no backups turned on"):
        backups.plan_backup(cluster, None, {})
    backup_policy_set(cluster=cluster, data={})
    with pytest.raises(JobRefused, match="not one of full, diff, incr"):
        backups.plan_backup(cluster, None, {"backup_type": "weekly"})
    steps = backups.plan_backup(cluster, None, {"backup_type": "diff"})
    # the first backup also rewrites each database node's Patroni file (replica methods)
    assert [(s.name, s.node.name) for s in steps] == [
        ("backup_run", "proxy"),
        ("backup_info", "proxy"),
        ("backup_replicas", "node1"),
        ("backup_replicas", "node2"),
    ]
    BackupPolicy.objects.filter(cluster=cluster).update(info=backup_info.summarize(INFO, "pg1"))
    steps = backups.plan_backup(cluster, None, {"backup_type": "diff"})
    assert [s.name for s in steps] == ["backup_run", "backup_info"]
    configure = backups.plan_configure(cluster, None, {})
    # pgBackRest's port in every host's firewall first, then the hosts
    assert [(s.name, s.node.name if s.node else "") for s in configure][:6] == [
        ("firewall", "node1"),
        ("firewall", "node2"),
        ("firewall", "proxy"),
        ("backup_host", "proxy"),
        ("backup_host", "node1"),
        ("backup_host", "node2"),
    ]
    cluster.state = "provisioning"
    with pytest.raises(JobRefused, match="needs a running cluster"):
        backups.plan_backup(cluster, None, {})


def _job(cluster, kind: str, hours_ago: float, **params) -> Job:
    job = Job.objects.create(cluster=cluster, kind=kind, status=JobStatus.SUCCEEDED, params=params)
    Job.objects.filter(pk=job.pk).update(
        created=timezone.now() - datetime.timedelta(hours=hours_ago)
    )
    return job


def test_the_schedule_wants_a_full_weekly_and_a_differential_daily():
    cluster, _ = three_node_cluster(state="healthy", ca_certificate="x")
    policy = backup_policy_set(cluster=cluster, data={})
    now = timezone.now()
    assert backup_due(policy, now) == "full"
    _job(cluster, "backup", 30, backup_type="full")
    assert backup_due(policy, now) == "diff"
    _job(cluster, "backup", 2, backup_type="diff")
    assert backup_due(policy, now) is None
    assert backup_due(policy, now + datetime.timedelta(days=7)) == "full"
    policy.full_every_hours = policy.diff_every_hours = 0
    assert backup_due(policy, now + datetime.timedelta(days=70)) is None


def test_the_repository_decides_how_replicas_are_made_once_it_holds_a_good_backup():
    cluster, _ = three_node_cluster(state="healthy", ca_certificate="x")
    policy = backup_policy_set(cluster=cluster, data={})
    assert not policy.holds_backup() and not cluster_spec(cluster).backup_replicas
    failed = backup_info.summarize(INFO, "pg1")
    failed["backups"][0]["error"] = True
    BackupPolicy.objects.filter(pk=policy.pk).update(info=failed)
    assert not cluster_spec(cluster).backup_replicas
    BackupPolicy.objects.filter(pk=policy.pk).update(info=backup_info.summarize(INFO, "pg1"))
    assert cluster_spec(cluster).backup_replicas
    BackupPolicy.objects.filter(pk=policy.pk).update(enabled=False)
    assert not cluster_spec(cluster).backup_replicas  # backups off: no stanza, no restore


def test_setup_configures_backups_when_the_policy_comes_first():
    cluster, _ = three_node_cluster()
    plain = [s.name for s in setup.plan(cluster, None, {})]
    assert "backup_host" not in plain and plain[-1] == "verify"
    backup_policy_set(cluster=cluster, data={})
    steps = [(s.name, s.node.name if s.node else "") for s in setup.plan(cluster, None, {})]
    firewall = steps.index(("firewall", "proxy"))
    assert steps[firewall + 1 :] == [
        # the fast path's steps (they remove the agent while it is off)
        ("fastpath", "proxy"),
        ("fastpath", "node1"),
        ("fastpath", "node2"),
        ("backup_host", "proxy"),
        ("backup_host", "node1"),
        ("backup_host", "node2"),
        ("backup_stanza", "proxy"),
        ("backup_info", "proxy"),
        ("verify", ""),
    ]
    assert all(name in setup.PLAYBOOK.steps for name, _ in steps)


def test_remove_takes_pgbackrest_away_and_keeps_the_repository_aside():
    cluster, _ = three_node_cluster(state="healthy", ca_certificate="x")
    names = [s.name for s in remove.plan(cluster, None, {"confirm": "pg1"})]
    assert "backup_remove" not in names
    backup_policy_set(cluster=cluster, data={})
    steps = remove.plan(cluster, None, {"confirm": "pg1"})
    assert [s.node.name for s in steps if s.name == "backup_remove"] == ["proxy", "node1", "node2"]
    assert "backup_remove" in remove.PLAYBOOK.steps


def test_a_new_node_gets_pgbackrest_and_the_repository_learns_of_it():
    cluster, nodes = three_node_cluster(state="healthy", ca_certificate="x")
    backup_policy_set(cluster=cluster, data={})
    plan = node_plays.add_plan(cluster, nodes[1], {})
    steps = [(s.name, s.node.name if s.node else "") for s in plan]
    at = steps.index(("patroni_configure", "node2"))
    assert steps[at - 2 : at] == [("backup_host", "proxy"), ("backup_host", "node2")]


def test_a_rebuild_may_skip_the_repository_and_nothing_else():
    cluster, nodes = three_node_cluster(state="healthy", ca_certificate="x")
    assert rebuild.plan(cluster, nodes[0], {"copy_from": "primary"})
    with pytest.raises(JobRefused, match="copy_from"):
        rebuild.plan(cluster, nodes[0], {"copy_from": "tape"})


def test_due_backups_start_as_jobs_only_once_configured(django_capture_on_commit_callbacks):
    cluster, _ = three_node_cluster(state="healthy", ca_certificate="x")
    backup_policy_set(cluster=cluster, data={})
    assert backups_start_due() == []  # configure_backups never succeeded
    _job(cluster, "configure_backups", 1)
    with django_capture_on_commit_callbacks():
        (started,) = backups_start_due()
    job = Job.objects.get(pk=started)
    assert job.kind == "backup" and job.params == {"backup_type": "full"}
    assert backups_start_due() == []  # one backup at a time


def test_a_setup_that_configured_backups_lets_the_schedule_start():
    cluster, _ = three_node_cluster(state="healthy", ca_certificate="x")
    backup_policy_set(cluster=cluster, data={})
    setup_job = _job(cluster, "setup", 1)
    assert not backups_configured(cluster)  # a setup without the backup steps
    Step.objects.create(job=setup_job, position=1, name="backup_stanza", title="Stanza")
    assert backups_configured(cluster)


def test_the_api_sets_and_shows_the_policy_viewers_only_read(client, django_user_model):
    cluster, _ = three_node_cluster()
    admin = api_client(client, make_user(django_user_model, "boss", "admin"))
    url = f"/api/v1/clusters/{cluster.pk}/backups/"
    assert admin.get(url).status_code == 404
    answer = admin.put(url, {"retention_full": 3, "diff_every_hours": 12})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["repo_node"] == "proxy" and body["retention_full"] == 3 and body["encrypted"]
    assert body["backups"] == [] and "cipher" not in str(body).replace("encrypted", "")
    BackupPolicy.objects.filter(cluster=cluster).update(info={**backup_info.summarize(INFO, "pg1")})
    assert admin.get(url).json()["backups"][0]["label"] == "20261205-071500F"
    bad = admin.put(url, {"retention_full": "three"})
    assert bad.status_code == 400
    viewer = api_client(client, make_user(django_user_model, "eve", "viewer"))
    assert viewer.get(url).status_code == 200
    assert viewer.put(url, {"retention_full": 5}).status_code == 403
    assert Node.objects.filter(cluster=cluster).count() == 3


def test_the_archive_falls_behind_when_the_last_attempt_failed_or_nothing_was_archived_lately():
    ok = backup_info.parse_archiver(
        "9|00000001000000000000000A|2026-12-05 07:20:00+00|6||2026-12-05 07:00:00+00|30"
    )
    assert backup_info.archive_trouble(ok) == ""  # failures before the stanza existed
    failing = {**ok, "last_failed_at": "2026-12-05 07:21:00+00", "last_failed_wal": "X"}
    assert "archiving fails on the primary: X failed" in backup_info.archive_trouble(failing)
    stale = {**ok, "last_archived_age_s": 900}
    assert "900 s old" in backup_info.archive_trouble(stale)
    summary = {**backup_info.summarize(INFO, "pg1"), "archiver": ok}
    assert "archiving works (6 failed attempt(s) earlier)" in backup_info.describe(summary)


def test_pgbackrests_certificate_names_the_address_as_a_dns_name_unlike_the_node_one():
    """pgBackRest 2.45 matches no IP SAN: the node certificate does not do for it."""
    cluster, nodes = three_node_cluster()
    cluster_tls_ensure(cluster=cluster)
    cluster.refresh_from_db()
    node = Node.objects.get(pk=nodes[0].pk)
    assert not certificate_ok(node.tls_certificate, cluster, node.name, node.address)
    ours = pki.issue(
        pki.Issued(cluster.ca_certificate, cluster.ca_key),
        common_name=node.name,
        dns_names=[node.name, node.address],
        ip_addresses=[node.address],
    )
    assert certificate_ok(ours.certificate, cluster, node.name, node.address)
    assert not certificate_ok(ours.certificate, cluster, node.name, "198.18.0.99")
    assert not certificate_ok("", cluster, node.name, node.address)


def test_remove_takes_the_unit_and_config_away_and_renames_the_repository():
    cluster, nodes = three_node_cluster(state="healthy", ca_certificate="x")
    backup_policy_set(cluster=cluster, data={})
    proxy = nodes[2]
    lines: list[str] = []
    ctx = scripted_context(proxy, cluster, [Rule("[ -d /run/systemd/system ]")])
    ctx.log_writer.write = lambda text, **kw: lines.append(text)
    verdict = remove.backup_remove(ctx)
    server = ctx.connections.get(None)
    server.ran("systemctl disable --now hacenter-pgbackrest.service")
    server.ran("rm -f /etc/systemd/system/hacenter-pgbackrest.service")
    server.ran("rm -f /etc/pgbackrest/pgbackrest.conf /etc/pgbackrest/tls.crt")
    kept = "/var/lib/pgbackrest.removed-20261204T000000Z"
    # renamed, never deleted, and the log says where
    server.ran(f"mv -T /var/lib/pgbackrest {kept}")
    assert not any("rm -rf /var/lib/pgbackrest" in c for c in server.commands)
    assert f"repository kept as {kept}" in verdict
    assert any(kept in line and "delete it yourself" in line for line in lines)
    # a database node: the unit and config go, there is no repository to move
    ctx = scripted_context(nodes[0], cluster, [Rule("[ -d /run/systemd/system ]")])
    assert "repository" not in remove.backup_remove(ctx)
    assert not any("mv -T" in c for c in ctx.connections.get(None).commands)


def test_a_restore_target_is_let_through_the_repositorys_firewall_for_its_time_only():
    cluster, _ = three_node_cluster(state="healthy", ca_certificate="x")
    backup_policy_set(cluster=cluster, data={})
    target = Node(cluster=cluster, name="restore-target", address="198.18.0.40")
    ctx = scripted_context(target, cluster, [])
    said = restore.repository_let_in(ctx, add=True)
    assert said == "proxy's firewall lets 198.18.0.40 reach pgBackRest for this restore"
    server = ctx.connections.get(None)
    server.ran("nft add element inet hacenter pgbackrest_v4 { 198.18.0.40 }")
    restore.repository_let_in(ctx, add=False)
    server.ran("nft delete element inet hacenter pgbackrest_v4 { 198.18.0.40 }")
    # the cluster's firewall is off: no table, nothing to open
    ctx = scripted_context(target, cluster, [Rule("nft list set", status=3)])
    assert restore.repository_let_in(ctx, add=True) == ""
