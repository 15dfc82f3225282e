"""The job runner end to end: a real worker runs commands over SSH on a lab host."""

import threading

import pytest

from jobs import services, ssh
from jobs.models import JobStatus, StepStatus
from jobs.runner import ConnectionPool
from tests.conftest import wait_for
from tests.integration.conftest import wait_for_job

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def shell_job(cluster, *commands: str, node: str = "node1"):
    return services.job_start(
        cluster=cluster,
        kind="test_shell",
        node=cluster.nodes.get(name=node),
        params={"commands": commands},
    )


def test_a_step_printing_5000_lines_streams_all_of_them_in_order(lab_cluster, worker):
    job = wait_for_job(shell_job(lab_cluster, "seq 1 5000; echo err-line >&2"))
    assert job.status == JobStatus.SUCCEEDED, job.error
    out = list(job.log_lines.filter(stream="stdout").order_by("seq").values_list("text", flat=True))
    assert out == [str(i) for i in range(1, 5001)]
    assert job.log_lines.filter(stream="stderr", text="err-line", host="node1").exists()
    seqs = list(job.log_lines.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))  # no gaps, no duplicates


def test_log_lines_appear_while_the_command_still_runs(lab_cluster, worker):
    job = shell_job(lab_cluster, "echo first-line; sleep 4; echo second-line")
    wait_for(
        lambda: job.log_lines.filter(text="first-line").exists(),
        15,
        "the first line to be stored while the command sleeps",
    )
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert not job.log_lines.filter(text="second-line").exists()
    assert wait_for_job(job).status == JobStatus.SUCCEEDED


def test_cancelling_a_running_sleep_ends_the_remote_process(lab_cluster, lab_clean, worker):
    marker = "sleep 600.4242"

    def remote_sleep_running() -> bool:
        return lab_clean.exec("node1", ["pgrep", "-f", marker], check=False).returncode == 0

    job = shell_job(lab_cluster, marker, "echo never")
    wait_for(remote_sleep_running, 30, "the remote sleep to start")
    services.job_cancel(job=job)
    job = wait_for_job(job, timeout=20)
    assert job.status == JobStatus.CANCELED
    assert job.steps.get(position=1).status == StepStatus.CANCELED
    assert job.steps.get(position=2).status == StepStatus.CANCELED
    wait_for(lambda: not remote_sleep_running(), 10, "the remote sleep to be gone")


def test_failed_command_fails_the_job_and_retry_resumes_at_the_failed_step(lab_cluster, worker):
    flag = "/tmp/hacenter-retry-flag"
    job = wait_for_job(
        shell_job(lab_cluster, "echo step-one", f"test -e {flag}", f"rm {flag}; echo step-three")
    )
    assert job.status == JobStatus.FAILED
    assert job.steps.get(position=2).summary == "exit 1"
    first_finished = job.steps.get(position=1).finished
    wait_for_job(shell_job(lab_cluster, f"touch {flag}"))
    services.job_retry(job=job)
    job = wait_for_job(job, statuses=(JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.ERRORED))
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.steps.get(position=1).finished == first_finished
    assert job.log_lines.filter(text="step-one").count() == 1
    assert job.log_lines.filter(text__startswith="attempt 2: resuming at step 2").exists()


def test_a_host_that_vanishes_under_a_quiet_command_ends_it_as_connection_lost(
    lab_cluster, lab_clean, settings
):
    """No reset and no output: without the dead-peer watch the command would wait forever (the
    shell playbook's commands have no timeout) while TCP retransmits for ~15 minutes."""
    settings.SSH_DEAD_PEER_S = 8
    marker = "sleep 600.4343"
    conn = ConnectionPool().connect(lab_cluster.nodes.get(name="node1"))
    ended: dict[str, BaseException] = {}

    def run() -> None:
        try:
            conn.run(marker, timeout=None)
        except ssh.SSHError as exc:
            ended["error"] = exc

    command = threading.Thread(target=run, daemon=True)
    command.start()
    wait_for(
        lambda: lab_clean.exec("node1", ["pgrep", "-f", marker], check=False).returncode == 0,
        30,
        "the remote sleep to start",
    )
    lab_clean.cut_network("node1")
    try:
        command.join(120)  # generous: ~8 s unacknowledged, then a 10 s attempt to kill it
        assert not command.is_alive(), "the command still waits on a host that is gone"
        error = ended.get("error")
        assert isinstance(error, ssh.ConnectionLost), ended
        # The cut host could not be reached to kill it, and the message says so.
        assert "SSH connection to node1 (198.18.0.11:22) lost" in str(error)
        assert "may still run there" in str(error)
    finally:
        lab_clean.restore_network("node1")
        conn.close()
        lab_clean.exec("node1", ["pkill", "-f", marker], check=False)
