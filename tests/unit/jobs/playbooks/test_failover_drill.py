"""The failover drill (issue 21 part 6): what the plan refuses and why, the steps it plans
(the Rebuild job's own among them), the live takeover check, the RTO/outage/RPO arithmetic,
and the history in the API."""

import datetime
from types import SimpleNamespace

import pytest
from django.utils import timezone

from clusters.access.roles import ADMIN, role_for_job
from clusters.models import Cluster, FenceDevice, Node, NodeStatus
from clusters.web import action_checks
from jobs import services
from jobs.drill_measure import Ack, ids_text, lost_ids, takeover
from jobs.errors import JobConflict, JobRefused, StepFailed
from jobs.models import FailoverDrill, Job, JobStatus
from jobs.playbooks import drill_checks, failover_drill, rebuild
from jobs.playbooks.base import StepContext
from jobs.ssh import CommandResult
from tests.conftest import api_client, make_user
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db
OLD, NEW = "198.18.0.11", "198.18.0.12"


def drill_ready(*, replication="async", tested=True, **fields):
    """A healthy cluster read by the monitor (node1 primary, node2 streaming; the synchronous
    standby on a sync cluster) whose primary has a fence device that passed its test."""
    cluster, nodes = three_node_cluster(
        state="healthy", last_leader="node1", replication=replication, **fields
    )
    NodeStatus.objects.create(node=nodes[0], role="primary", state="running", writable=True)
    NodeStatus.objects.create(
        node=nodes[1],
        role="sync_replica" if replication == "sync" else "replica",
        state="streaming",
        writable=False,
    )
    FenceDevice.objects.create(
        node=nodes[0],
        method="redfish",
        options={"ip": "198.18.0.1", "username": "fence"},
        secret="bmc-secret-1",
        last_test_ok=True if tested else None,
        last_test_result="Status: ON" if tested else "",
    )
    return cluster, nodes


def start(cluster, confirm="pg1", **kw):
    return services.job_start(
        cluster=cluster, kind="failover_drill", params={"confirm": confirm}, **kw
    )


# --- refusals -----------------------------------------------------------------------------


def test_a_ready_cluster_plans_check_write_off_measure_on_then_rebuilds_steps():
    cluster, nodes = drill_ready()
    job = start(cluster)
    names = list(job.steps.order_by("position").values_list("name", flat=True))
    rebuilt = [s.name for s in rebuild.plan(cluster, nodes[0], {})]
    assert names == [
        "drill_check",
        "drill_writer",
        "drill_power_off",
        "drill_takeover",
        "drill_loss",
        "drill_power_on",
        *rebuilt,
        "drill_finish",
    ]
    # The steps that act on the primary, and Rebuild's, name it; the job is mutating.
    by_name = {s.name: s for s in job.steps.select_related("node")}
    for name in ("drill_check", "drill_power_off", "drill_power_on", *rebuilt):
        assert by_name[name].node == nodes[0], name
    assert by_name["diagnose"].title.startswith("Rebuild node1: ")
    assert job.mutating and job.node is None
    assert set(names) <= set(failover_drill.PLAYBOOK.steps)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c, n: FenceDevice.objects.all().delete(), "node1, the primary, has no fence"),
        (
            lambda c, n: FenceDevice.objects.update(last_test_ok=None),
            "node1, the primary: its fence device was never tested",
        ),
        (
            lambda c, n: FenceDevice.objects.update(
                last_test_ok=False, last_test_result="Unable to get PowerState"
            ),
            "its fence device's last test failed (Unable to get PowerState)",
        ),
        (
            lambda c, n: Cluster.objects.filter(pk=c.pk).update(state="degraded"),
            "needs a healthy cluster: pg1 is degraded",
        ),
        (
            lambda c, n: Cluster.objects.filter(pk=c.pk).update(state="maintenance"),
            "needs a healthy cluster: pg1 is maintenance",
        ),
        (
            lambda c, n: NodeStatus.objects.filter(node=n[1]).update(state="stopped"),
            "no standby can take over: no standby streams",
        ),
        (
            lambda c, n: NodeStatus.objects.filter(node=n[1]).update(fenced=True),
            "no standby can take over",
        ),
        (
            lambda c, n: Cluster.objects.filter(pk=c.pk).update(last_leader=""),
            "has not read who holds the leader key",
        ),
        (lambda c, n: n[2].delete(), "pg1 has no proxy"),
        (
            lambda c, n: Job.objects.create(cluster=c, kind="fence", mutating=False),
            "wait for fence job",
        ),
    ],
)
def test_the_plan_refuses_what_cannot_be_drilled_and_says_why(change, words):
    cluster, nodes = drill_ready()
    change(cluster, nodes)
    cluster.refresh_from_db()
    with pytest.raises(JobRefused) as refused:
        start(cluster)
    assert words in str(refused.value)
    assert not Job.objects.filter(kind="failover_drill").exists()
    # The page's button says the same, before the click.
    facts = action_checks.facts_read(cluster)
    assert words in action_checks.why_not(cluster, "failover_drill", None, facts)


def test_a_sync_cluster_needs_its_synchronous_standby():
    cluster, nodes = drill_ready(replication="sync")
    NodeStatus.objects.filter(node=nodes[1]).update(role="replica")
    with pytest.raises(JobRefused, match="no synchronous standby streams"):
        start(cluster)
    NodeStatus.objects.filter(node=nodes[1]).update(role="sync_replica")
    assert start(cluster).kind == "failover_drill"


def test_the_cluster_name_must_be_typed_and_no_node_named():
    cluster, nodes = drill_ready()
    with pytest.raises(JobRefused, match="repeat the cluster's name in 'confirm'"):
        start(cluster, confirm="node1")
    with pytest.raises(JobRefused, match="name no node"):
        services.job_start(
            cluster=cluster, kind="failover_drill", node=nodes[0], params={"confirm": "pg1"}
        )
    assert not Job.objects.exists()


def test_another_job_that_changes_the_cluster_blocks_a_drill():
    cluster, _ = drill_ready()
    Job.objects.create(cluster=cluster, kind="switchover", status="running", mutating=True)
    with pytest.raises(JobConflict, match="already has an active job"):
        start(cluster)
    facts = action_checks.facts_read(cluster)
    assert "one job changes a cluster at a time" in action_checks.why_not(
        cluster, "failover_drill", None, facts
    )


def test_only_admins_start_a_drill(client, django_user_model):
    assert role_for_job("failover_drill") == ADMIN
    cluster, _ = drill_ready()
    operator = api_client(client, make_user(django_user_model, "op", "operator"))
    answer = operator.post(f"/api/v1/clusters/{cluster.pk}/failover-drills/", {"confirm": "pg1"})
    assert answer.status_code == 403
    assert not Job.objects.exists()


# --- the live takeover check --------------------------------------------------------------

LEADER = {"name": "node1", "role": "leader", "state": "running", "timeline": 3}


def member(**fields):
    return {
        "name": "node2",
        "role": "replica",
        "state": "streaming",
        "timeline": 3,
        "lag": 0,
        **fields,
    }


@pytest.mark.parametrize(
    ("standby", "synchronous", "words"),
    [
        (member(), False, None),
        (member(role="sync_standby"), True, None),
        (member(), True, "node2 (not the synchronous standby)"),
        (member(state="stopped"), False, "node2 (stopped)"),
        (member(timeline=2), False, "node2 (on timeline 2, the primary on 3)"),
        (member(lag=50 * 1024 * 1024), False, f"node2 (lag {50 * 1024 * 1024} bytes)"),
        (member(lag="unknown"), False, "node2 (lag unknown bytes)"),
        (member(tags={"nofailover": True}), False, "node2 (tagged nofailover)"),
    ],
)
def test_takeover_refusal_reads_patronis_live_member_list(standby, synchronous, words):
    said = drill_checks.takeover_refusal([LEADER, standby], LEADER, synchronous=synchronous)
    if words is None:
        assert said is None
    else:
        assert said == f"no standby can take over: {words}"


def test_takeover_refusal_without_any_standby():
    said = drill_checks.takeover_refusal([LEADER], LEADER, synchronous=False)
    assert said == "no standby can take over: there is none"


# --- the arithmetic -----------------------------------------------------------------------


def ledger() -> list[Ack]:
    """Writes on the old primary every 0.05 s until 10.2 (the power went at 10.0, the device
    took a moment), nothing until 31.5, then the new primary."""
    acks = [Ack(i, OLD, 9.0 + i * 0.05) for i in range(1, 25)]  # 9.05 .. 10.20
    acks += [Ack(30, NEW, 31.5), Ack(31, NEW, 31.55)]
    return acks


def test_rto_counts_from_the_off_to_the_first_write_elsewhere():
    result = takeover(ledger(), OLD, off_at=10.0)
    assert result.first == Ack(30, NEW, 31.5)
    assert result.rto_s == pytest.approx(21.5)
    # The writer's gap starts at the old primary's last acknowledged write (10.2), not the off.
    assert result.outage_s == pytest.approx(31.5 - 10.2)


def test_no_takeover_while_only_the_old_primary_answered():
    acks = [a for a in ledger() if a.server == OLD]
    assert takeover(acks, OLD, off_at=10.0) is None
    # A write elsewhere before the off (a switchover earlier) is no takeover.
    assert takeover([Ack(1, NEW, 5.0), *acks], OLD, off_at=10.0) is None


def test_no_write_of_the_old_primary_after_the_off_counts_from_the_off():
    result = takeover([Ack(1, OLD, 9.9), Ack(2, NEW, 12.0)], OLD, off_at=10.0)
    assert (result.rto_s, result.outage_s) == (pytest.approx(2.0), pytest.approx(2.1))
    result = takeover([Ack(2, NEW, 12.0)], OLD, off_at=10.0)
    assert result.outage_s == pytest.approx(2.0)  # no earlier write: from the off


def test_rpo_is_the_acknowledged_ids_the_new_primary_lacks():
    acks = ledger()
    stored = {a.id for a in acks} - {23, 24}
    stored |= {25, 26}  # ids whose commit failed but went through: not acknowledged, not lost
    assert lost_ids(acks, stored) == [23, 24]
    assert lost_ids(acks, {a.id for a in acks}) == []
    assert ids_text(list(range(1, 14))) == "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 3 more"


# --- the history --------------------------------------------------------------------------


def test_the_api_lists_drills_newest_first_and_says_why_one_cannot_start(client, user):
    cluster, _ = drill_ready(tested=False)
    old = Job.objects.create(cluster=cluster, kind="failover_drill", status=JobStatus.SUCCEEDED)
    lost = Job.objects.create(cluster=cluster, kind="failover_drill", status=JobStatus.LOST)
    passed = FailoverDrill.objects.create(
        cluster=cluster,
        job=old,
        primary_before="node1",
        primary_after="node2",
        replication="sync",
        rto_s=21.46,
        outage_s=21.6,
        acknowledged=812,
        rpo_rows=0,
        outcome="passed",
    )
    FailoverDrill.objects.filter(pk=passed.pk).update(
        started=timezone.now() - datetime.timedelta(days=1)
    )
    FailoverDrill.objects.create(cluster=cluster, job=lost, primary_before="node2")
    api = api_client(client, user)
    answer = api.get(f"/api/v1/clusters/{cluster.pk}/failover-drills/")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["why_not"] == (
        "node1, the primary: its fence device was never tested; "
        "test it (again) on its Fence device page"
    )
    newest, older = body["drills"]
    # A drill whose job was lost before a step said so is failed, with the reason.
    assert (newest["outcome"], newest["message"]) == ("failed", "job lost")
    assert older["rto_s"] == 21.46 and older["rpo_rows"] == 0 and older["acknowledged"] == 812
    assert (older["primary_before"], older["primary_after"]) == ("node1", "node2")
    refused = api.post(f"/api/v1/clusters/{cluster.pk}/failover-drills/", {"confirm": "pg1"})
    assert refused.status_code == 400 and "never tested" in refused.json()["error"]


def test_the_api_starts_a_drill_with_the_typed_name(client, user):
    cluster, _ = drill_ready()
    api = api_client(client, user)
    url = f"/api/v1/clusters/{cluster.pk}/failover-drills/"
    assert api.post(url, {}).status_code == 400  # confirm is required
    started = api.post(url, {"confirm": "pg1"})
    assert started.status_code == 202, started.content
    job = Job.objects.get(pk=started.json()["id"])
    assert job.kind == "failover_drill" and job.params == {"confirm": "pg1"}
    again = api.post(url, {"confirm": "pg1"})
    assert again.status_code == 409  # one job changes a cluster at a time


def test_the_cluster_page_shows_the_button_and_the_history(client, user):
    cluster, _ = drill_ready()
    job = Job.objects.create(cluster=cluster, kind="failover_drill", status=JobStatus.SUCCEEDED)
    FailoverDrill.objects.create(
        cluster=cluster,
        job=job,
        primary_before="node1",
        primary_after="node2",
        replication="async",
        rto_s=3.24,
        outage_s=3.4,
        acknowledged=120,
        rpo_rows=2,
        outcome="passed",
    )
    client.force_login(user)
    page = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert f'href="/clusters/{cluster.pk}/confirm/failover_drill/' in page
    assert "3.2 s" in page and "2 rows of 120" in page and "node1 → node2" in page
    confirm = client.get(f"/clusters/{cluster.pk}/confirm/failover_drill/").content.decode()
    assert "Type <code>pg1</code> to confirm" in confirm
    assert "powered off through its fence device" in confirm


def test_secrets_stay_out_of_the_drill_agents_command_line():
    cluster, nodes = drill_ready()
    device = FenceDevice.objects.get(node=nodes[0])
    command = failover_drill.fence_test.agent_command(device.method)
    assert "bmc-secret-1" not in command and command.endswith("/usr/sbin/fence_redfish")
    assert Node.objects.filter(cluster=cluster).count() == 3


# --- the power-off step against a scripted witness ----------------------------------------


class Witness:
    """The witness's SSH connection: the fence agent answers by the action on its stdin."""

    def __init__(self, status_line: str) -> None:
        self.status_line = status_line
        self.runs: list[tuple[str, bytes | None]] = []

    def get(self, node):
        return self

    def run(self, command, *, on_line=None, stdin=None, **_ignored) -> CommandResult:
        self.runs.append((command, stdin))
        action = (stdin or b"").split(b"\n")[0]
        out = {b"action=status": [self.status_line], b"action=off": ["Success: Powered OFF"]}
        lines = out.get(action, [])
        for line in lines:
            if on_line is not None:
                on_line("stdout", line)
        exit_status = 2 if action == b"action=status" and "OFF" in self.status_line else 0
        return CommandResult(exit_status, lines, [])

    def actions(self) -> list[str]:
        return [(stdin or b"").split(b"\n")[0].decode() for _, stdin in self.runs]


def power_off_context(witness: Witness):
    cluster, _ = drill_ready()
    job = start(cluster)
    FailoverDrill.objects.create(cluster=cluster, job=job, primary_before="node1")
    step = job.steps.get(name="drill_power_off")
    writer = SimpleNamespace(stop=lambda: None, acks=[], errors=[])
    log = SimpleNamespace(write=lambda *a, **kw: None, redact=set())
    return StepContext(
        job=job,
        step=step,
        log_writer=log,
        connections=witness,
        cancelled=lambda: False,
        facts={"drill_writer": writer},
    )


def test_power_off_waits_for_the_device_to_confirm_off():
    witness = Witness("Status: OFF")
    ctx = power_off_context(witness)
    said = failover_drill.recorded(failover_drill.drill_power_off)(ctx)
    assert "node1 powered off: Status: OFF" in said
    assert witness.actions() == ["action=off", "action=status"]
    drill = FailoverDrill.objects.get(job=ctx.job)
    assert drill.powered_off_at <= drill.off_confirmed_at and drill.outcome == "running"
    # The secret went on stdin only, never on a command line.
    assert all("bmc-secret-1" not in command for command, _ in witness.runs)
    assert b"password=bmc-secret-1" in witness.runs[0][1]


def test_a_device_that_never_confirms_off_fails_the_drill_and_powers_the_node_on(monkeypatch):
    monkeypatch.setattr(failover_drill, "OFF_CONFIRM_TIMEOUT_S", 0)
    witness = Witness("Status: ON")
    ctx = power_off_context(witness)
    with pytest.raises(StepFailed, match="did not confirm OFF within 0 s"):
        failover_drill.recorded(failover_drill.drill_power_off)(ctx)
    assert witness.actions() == ["action=off", "action=status", "action=on"]
    drill = FailoverDrill.objects.get(job=ctx.job)
    assert drill.outcome == "failed" and "nothing was measured" in drill.message


def check_context(monkeypatch, answer: dict, witness: Witness):
    """drill_check's context: Patroni's /cluster answers `answer`, the witness `witness`."""
    ctx = power_off_context(witness)
    FailoverDrill.objects.filter(job=ctx.job).delete()  # the check makes its own row
    ctx.step = ctx.job.steps.get(name="drill_check")
    monkeypatch.setattr(failover_drill.patroni_api, "cluster", lambda node, timeout: answer)
    return ctx


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"pause": True, "members": [LEADER, member()]}, "Patroni is paused"),
        ({"members": [{**LEADER, "name": "node2"}, member(name="node1")]}, "the primary is node2"),
        ({"members": [LEADER, member(state="stopped")]}, "no standby can take over: node2"),
        ({"members": [member()]}, "no primary at the moment"),
    ],
)
def test_the_live_check_changes_nothing_when_the_cluster_moved(monkeypatch, answer, words):
    witness = Witness("Status: ON")
    ctx = check_context(monkeypatch, answer, witness)
    with pytest.raises(StepFailed, match=words):
        failover_drill.recorded(failover_drill.drill_check)(ctx)
    assert witness.runs == []  # the device was not even asked
    drill = FailoverDrill.objects.get(job=ctx.job)
    assert (drill.outcome, drill.primary_before) == ("failed", "node1")


def test_the_live_check_asks_the_device_for_on_before_anything_changes(monkeypatch):
    answer = {"members": [LEADER, member()]}
    ctx = check_context(monkeypatch, answer, Witness("Status: OFF"))
    with pytest.raises(StepFailed, match="must answer ON before it is told to power off"):
        failover_drill.drill_check(ctx)
    witness = ctx.connections = Witness("Status: ON")
    said = failover_drill.drill_check(ctx)
    assert said == "node1 leads; node2 can take over; its fence device says Status: ON"
    assert witness.actions() == ["", "action=status"]  # `test -x` the agent, then status
