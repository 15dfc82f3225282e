"""Preflight and the job runner against the lab's real sshd hosts, run by a real worker."""

import pytest

from jobs import services
from jobs.models import JobStatus, StepStatus
from tests.integration.conftest import lab_credential, make_lab_cluster, port_squatted, wait_for_job

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_preflight_on_two_database_nodes_and_proxy_shows_every_verdict(lab_cluster, worker):
    job = wait_for_job(services.job_start(cluster=lab_cluster, kind="preflight"))
    steps = list(job.steps.select_related("node"))
    assert job.status == JobStatus.SUCCEEDED, (job.error, [(s.title, s.summary) for s in steps])
    assert len(steps) == 3 * 10 + 2  # and across nodes: one PostgreSQL major, the lint
    assert all(s.status in (StepStatus.SUCCEEDED, StepStatus.WARNING) and s.summary for s in steps)
    verdicts = {(s.node.name if s.node else "cluster", s.name): s.summary for s in steps}
    assert verdicts[("node1", "ssh_login")].startswith("logged in as root on node1")
    assert "Debian" in verdicts[("node2", "os_version")]
    assert "cores" in verdicts[("proxy", "resources")]
    assert "PostgreSQL 15" in verdicts[("node1", "software")]
    assert "HAProxy" in verdicts[("proxy", "software")]
    # The lab's hosts share this machine's packages: nothing for setup to install.
    assert verdicts[("proxy", "package_sources")].startswith("all installed: haproxy")
    assert verdicts[("node1", "ports")].startswith("free: 5432, 8008, 2379, 2380")
    assert verdicts[("node1", "reachability")] == "reaches 2 peers on 9 ports"
    assert "clock" in verdicts[("node2", "clock")]
    assert verdicts[("node1", "firewall")].startswith(
        "no other firewall found; setup adds the table inet hacenter beside it"
    )
    assert verdicts[("cluster", "same_postgres_major")] == "PostgreSQL 15 on every database node"
    # HA Center's own configuration passes its lint (a note on the watchdog being off).
    assert verdicts[("cluster", "config_lint")].startswith("no problem found")
    hosts = set(job.log_lines.values_list("host", flat=True))
    assert {"node1", "node2", "proxy"} <= hosts


def test_preflight_refuses_a_port_taken_by_other_software(lab_cluster, lab_clean, worker):
    with port_squatted(lab_clean, "node2", "198.18.0.12", 8008):
        job = wait_for_job(services.job_start(cluster=lab_cluster, kind="preflight"))
        ports = job.steps.get(node__name="node2", name="ports")
        assert job.status == JobStatus.FAILED
        assert ports.status == StepStatus.FAILED
        assert "8008 by perl" in ports.summary
        assert job.steps.get(node__name="node1", name="ports").status == StepStatus.SUCCEEDED


def test_changed_host_key_is_refused_with_both_fingerprints(lab_cluster, lab_clean, worker):
    pinned = lab_cluster.nodes.get(name="node1").host_key_fingerprint
    new = lab_clean.rekey("node1")
    job = wait_for_job(services.job_start(cluster=lab_cluster, kind="preflight"))
    login = job.steps.get(node__name="node1", name="ssh_login")
    assert job.status == JobStatus.FAILED
    assert login.status == StepStatus.FAILED
    assert pinned in login.summary and new in login.summary
    later = job.steps.filter(node__name="node1").exclude(name="ssh_login")
    assert set(later.values_list("status", flat=True)) == {StepStatus.SKIPPED}
    assert job.steps.get(node__name="node2", name="ssh_login").status == StepStatus.SUCCEEDED


def test_wrong_key_gives_a_failed_step_with_a_clear_message(lab_clean, worker, db, tmp_path):
    import subprocess

    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True
    )
    cred = lab_credential(lab_clean)
    cluster = make_lab_cluster(lab_clean, cred, name="wrongkey")
    cred.private_key = (tmp_path / "k").read_text()
    cred.save()
    job = wait_for_job(services.job_start(cluster=cluster, kind="preflight"))
    login = job.steps.get(node__name="node1", name="ssh_login")
    assert login.status == StepStatus.FAILED
    assert "root@198.18.0.11" in login.summary
    assert "authentication" in login.summary.lower()


def test_wrong_password_gives_a_failed_step_and_is_never_logged(lab_clean, worker, db):
    from clusters.models import Credential

    cred = Credential.objects.create(name="pw", username="hcops", password="not-the-password-9")
    cluster = make_lab_cluster(lab_clean, cred, name="wrongpw")
    job = wait_for_job(services.job_start(cluster=cluster, kind="preflight"))
    login = job.steps.get(node__name="proxy", name="ssh_login")
    assert login.status == StepStatus.FAILED
    assert "hcops@198.18.0.10" in login.summary
    assert not job.log_lines.filter(text__contains="not-the-password-9").exists()
    assert "not-the-password-9" not in job.error


def test_non_root_user_with_sudo_passes_and_without_sudo_fails(lab_clean, worker, db):
    from clusters.models import Credential

    ops = Credential.objects.create(
        name="ops", username="hcops", private_key=lab_clean.private_key_text
    )
    job = wait_for_job(
        services.job_start(
            cluster=make_lab_cluster(lab_clean, ops, name="sudook"), kind="preflight"
        )
    )
    assert job.steps.get(node__name="node1", name="sudo").summary == (
        "hcops may use sudo without a password"
    )
    assert job.steps.get(node__name="node1", name="ports").status == StepStatus.SUCCEEDED
    job.cluster.delete()
    nosudo = Credential.objects.create(
        name="nosudo", username="hcnosudo", private_key=lab_clean.private_key_text
    )
    job = wait_for_job(
        services.job_start(
            cluster=make_lab_cluster(lab_clean, nosudo, name="sudono"), kind="preflight"
        )
    )
    sudo = job.steps.get(node__name="node1", name="sudo")
    assert job.status == JobStatus.FAILED
    assert sudo.status == StepStatus.FAILED
    assert "hcnosudo cannot use sudo without a password" in sudo.summary
