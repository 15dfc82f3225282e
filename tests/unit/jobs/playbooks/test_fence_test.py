"""Test fence device (issue 21 part 1): a status query from the witness, the secret on stdin
only, the answer kept on the device."""

import pytest

from clusters.inventory.fencing import fence_device_set
from clusters.models import FenceDevice
from jobs import services
from jobs.errors import JobRefused, StepFailed
from jobs.playbooks import fence_test, packages
from jobs.ssh_results import CommandResult
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db
SECRET = "bmc-secret-7391"


@pytest.fixture
def device():
    _cluster, nodes = three_node_cluster()
    return fence_device_set(
        node=nodes[1],
        data={
            "method": "redfish",
            "options": {"ip": "198.18.0.1", "ipport": 8443, "username": "admin"},
            "secret": SECRET,
        },
    )


class Ctx:
    """What the step uses of a StepContext: run (recorded, answered by ``answers``), log."""

    def __init__(self, job, witness, answers):
        self.job, self.node, self.answers = job, witness, list(answers)
        self.runs: list[dict] = []
        self.logged: list[str] = []

    def run(self, command, *, collect=None, stdin=None, **kw):
        self.runs.append({"command": command, "stdin": stdin})
        status, out, err = self.answers.pop(0)
        if collect is not None:
            collect.extend(out)
        return CommandResult(status, out, err)

    def log(self, text, **kw):
        self.logged.append(text)


def run_step(device, *answers):
    cluster = device.node.cluster
    job = services.job_start(cluster=cluster, kind="fence_test", node=device.node)
    ctx = Ctx(job, cluster.proxy_node, answers)
    try:
        verdict = fence_test.fence_status(ctx)
    except StepFailed as exc:
        verdict = exc
    device.refresh_from_db()
    return ctx, verdict


def test_the_job_runs_on_the_witness_and_changes_nothing(device):
    job = services.job_start(cluster=device.node.cluster, kind="fence_test", node=device.node)
    step = job.steps.get()
    assert step.node == device.node.cluster.proxy_node and not job.mutating
    assert SECRET not in str(job.params)


def test_a_node_without_a_device_or_a_cluster_without_a_proxy_is_refused(device):
    cluster = device.node.cluster
    with pytest.raises(JobRefused, match="no fence device"):
        services.job_start(cluster=cluster, kind="fence_test", node=cluster.nodes.get(name="node1"))
    cluster.nodes.filter(kind="proxy").delete()
    with pytest.raises(JobRefused, match="witness"):
        services.job_start(cluster=cluster, kind="fence_test", node=device.node)


def test_status_on_is_kept_and_the_secret_went_on_stdin_only(device):
    ctx, verdict = run_step(device, (0, [], []), (0, ["Status: ON"], []))
    assert "Status: ON" in verdict.summary
    assert (device.last_test_ok, device.last_test_power, device.last_test_result) == (
        True,
        "on",
        "Status: ON",
    )
    agent_run = ctx.runs[1]
    assert agent_run["command"] == "timeout 60 /usr/sbin/fence_redfish"
    assert f"password={SECRET}".encode() in agent_run["stdin"]
    assert b"action=status" in agent_run["stdin"]
    assert not [r for r in ctx.runs if SECRET in r["command"]]
    assert not [line for line in ctx.logged if SECRET in line]


def test_status_off_is_an_answer_too(device):
    _ctx, verdict = run_step(device, (0, [], []), (2, ["Status: OFF"], []))
    assert "Status: OFF" in verdict.summary
    assert (device.last_test_ok, device.last_test_power) == (True, "off")


def test_a_refused_password_fails_with_the_agents_reason(device):
    stderr = [
        "2026-12-05 10:58:09,841 ERROR: Unable to get PowerState: https://198.18.0.1:8443/x",
        "",
        "2026-12-05 10:58:09,841 ERROR: Please use '-h' for usage",
    ]
    _ctx, verdict = run_step(device, (0, [], []), (1, [], stderr))
    assert isinstance(verdict, StepFailed)
    assert "Unable to get PowerState" in str(verdict) and "secret" in str(verdict)
    assert device.last_test_ok is False
    assert device.last_test_result.startswith("Unable to get PowerState")


def test_a_witness_without_the_agent_says_to_run_setup(device):
    _ctx, verdict = run_step(device, (1, [], []))
    assert isinstance(verdict, StepFailed) and "run setup" in str(verdict)
    assert device.last_test_ok is False


def test_the_secret_is_redacted_from_job_logs(device):
    assert SECRET in device.node.cluster.secret_values()


def test_setup_installs_the_agents_on_the_witness_only(device):
    cluster = device.node.cluster
    proxy, node1 = cluster.proxy_node, cluster.nodes.get(name="node1")
    assert packages.fence_packages(proxy) == ["fence-agents"]
    assert packages.fence_packages(node1) == []
    fence_device_set(
        node=node1,
        data={
            "method": "ipmilan",
            "options": {"ip": "198.18.0.2", "username": "admin"},
            "secret": "x",
        },
    )
    assert packages.fence_packages(proxy) == ["fence-agents", "ipmitool"]
    FenceDevice.objects.all().delete()
    assert packages.fence_packages(proxy) == []


def test_a_change_keeps_the_secret_unless_the_method_changes(device):
    device.last_test_ok = True
    device.save()
    changed = fence_device_set(node=device.node, data={"options": {"ipport": 443}})
    assert changed.secret == SECRET and changed.last_test_ok is None  # a new test is needed
    from clusters.inventory.services import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        fence_device_set(
            node=device.node, data={"method": "ipmilan", "options": {"ip": "198.18.0.1"}}
        )
    assert "secret" in caught.value.field_errors and "options.username" in caught.value.field_errors
    device.refresh_from_db()
    assert device.method == "redfish"  # nothing changed
