"""The parameter jobs' plans and what their readings keep (no server: the steps run on the lab,
tests/integration/test_parameters_lab.py)."""

from types import SimpleNamespace

import pytest

from clusters.models import Cluster
from jobs.errors import JobRefused
from jobs.playbooks import parameters
from jobs.playbooks.parameters import catalog_of, node_values, plan_change, plan_read

ROWS = {
    "shared_buffers": {
        "vartype": "integer",
        "context": "postmaster",
        "setting": "16384",
        "unit": "8kB",
        "min_val": "16",
        "max_val": "1073741823",
        "enumvals": None,
        "source": "configuration file",
        "pending_restart": True,
    },
    "work_mem": {"vartype": "integer", "context": "user", "setting": "4096", "source": "default"},
    "primary_conninfo": {
        "vartype": "string",
        "context": "sighup",
        "setting": "host=198.18.0.11 user=replicator password=s3cret",
        "source": "configuration file",
    },
    "application_name": {
        "vartype": "string",
        "context": "user",
        "setting": "x password=oops",
        "source": "client",
    },
}


def test_readings_never_keep_a_password():
    assert catalog_of(ROWS)["primary_conninfo"]["setting"] is None
    values = node_values(ROWS)
    assert values["primary_conninfo"]["setting"] is None
    assert values["application_name"]["setting"] is None
    assert "s3cret" not in str(catalog_of(ROWS)) + str(values)


def test_node_values_keep_what_is_set_or_pending():
    values = node_values(ROWS)
    assert values["shared_buffers"] == {"setting": "16384", "pending_restart": True}
    assert "work_mem" not in values  # a built-in default


def cluster(state="healthy", **fields) -> Cluster:
    return Cluster(name="pg1", state=state, **fields)


def test_plan_of_a_reload_and_of_a_rolling_restart():
    reload = [s.name for s in plan_change(cluster(), None, {"parameters": {"work_mem": "8MB"}})]
    assert reload == ["validate", "apply", "wait_applied", "verify"]
    params = {"parameters": {"shared_buffers": "256MB"}, "restart": True}
    steps = [s.name for s in plan_change(cluster(), None, params)]
    assert steps[3:6] == ["restart_standbys", "switchover", "restart_old_primary"]


@pytest.mark.parametrize(
    ("state", "fields", "restart", "message"),
    [
        ("degraded", {}, True, "needs a healthy cluster"),
        ("down", {}, False, "needs a running cluster"),
        ("new", {}, False, "needs a running cluster"),
        ("healthy", {"maintenance": True}, True, "maintenance mode"),
    ],
)
def test_plan_refuses_what_the_cluster_cannot_run(state, fields, restart, message):
    params = {"parameters": {"shared_buffers": "256MB"}, "restart": restart}
    with pytest.raises(JobRefused, match=message):
        plan_change(cluster(state, **fields), None, params)


def test_plan_needs_parameters_and_read_needs_a_set_up_cluster():
    with pytest.raises(JobRefused, match="name the parameters"):
        plan_change(cluster(), None, {})
    with pytest.raises(JobRefused, match="not set up"):
        plan_read(cluster("new"), None, {})
    assert [s.name for s in plan_read(cluster("degraded"), None, {})] == ["read"]


class _Ctx:
    """What _checked_nodes reads: the job's params and the cluster's database nodes."""

    def __init__(self, params: dict) -> None:
        self.job = SimpleNamespace(params=params)
        self.cluster = SimpleNamespace(
            database_nodes=[SimpleNamespace(name="node1"), SimpleNamespace(name="node2")]
        )


def test_a_reload_leaves_a_stopped_member_to_patroni_and_says_so(monkeypatch):
    monkeypatch.setattr(
        parameters,
        "members",
        lambda ctx: [{"name": "node1", "state": "running"}, {"name": "node2", "state": "stopped"}],
    )
    nodes, down = parameters._checked_nodes(_Ctx({"restart_names": []}))
    assert [n.name for n in nodes] == ["node1"] and down == ["node2"]
    verdict = parameters._left_out("every node reports work_mem=8192", down)
    assert verdict.warning
    assert verdict.summary.startswith("every running node reports work_mem=8192; node2 not")
    # A change that restarts checks every node: a stopped one fails the step.
    nodes, down = parameters._checked_nodes(_Ctx({"restart_names": ["shared_buffers"]}))
    assert len(nodes) == 2 and down == []
