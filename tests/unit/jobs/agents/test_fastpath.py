"""The fast-path agent's rules (jobs/agents/fastpath.py) with fakes: miss counting and lateness,
the candidate's checks, the etcd transactions, the decisions and their sentences, and the
sequence's order of steps (each a precondition for the next)."""

import base64
import json

import pytest

from jobs.agents import fastpath as fp

NODES = {
    "node1": fp.NodeConf("node1", "10.0.0.11", fence_agent="fence_redfish", fence_input="ip=x\n"),
    "node2": fp.NodeConf("node2", "10.0.0.12", fence_agent="fence_redfish", fence_input="ip=y\n"),
}
CONF = fp.Config(scope="pg", namespace="/hacenter/", nodes=NODES, misses=3, late_s=0.5)


def unb64(value: str) -> str:
    return base64.b64decode(value).decode()


# -- misses ------------------------------------------------------------------------------------


def test_the_primary_is_dead_only_after_consecutive_misses():
    counter = fp.MissCounter(needed=3, late_s=0.5)
    assert not counter.observe("node1", True, 0.0, 1.0)
    assert not counter.observe("node1", True, 0.0, 1.2)
    assert counter.observe("node1", True, 0.0, 1.4)
    assert counter.first_miss == 1.0


def test_an_answer_resets_the_count():
    counter = fp.MissCounter(needed=3, late_s=0.5)
    counter.observe("node1", True, 0.0, 1.0)
    counter.observe("node1", True, 0.0, 1.2)
    counter.observe("node1", False, 0.0, 1.4)
    assert not counter.observe("node1", True, 0.0, 1.6)
    assert counter.count == 1 and counter.first_miss == 1.6


def test_a_late_iteration_resets_the_count_a_starved_agent_proves_nothing():
    counter = fp.MissCounter(needed=3, late_s=0.5)
    counter.observe("node1", True, 0.0, 1.0)
    counter.observe("node1", True, 0.0, 1.2)
    assert not counter.observe("node1", True, 2.0, 3.4)  # came 2 s late: no count
    assert counter.count == 0 and counter.late_resets == 1
    assert not counter.observe("node1", True, 0.1, 3.6)


def test_a_new_primary_starts_a_new_count():
    counter = fp.MissCounter(needed=2, late_s=0.5)
    counter.observe("node1", True, 0.0, 1.0)
    assert not counter.observe("node2", True, 0.0, 1.2)
    assert counter.observe("node2", True, 0.0, 1.4)


def test_a_miss_is_neither_postgres_nor_patroni_answering():
    assert fp.Reach(postgres=False, patroni=False).dead
    # Patroni crashed beside a running PostgreSQL: the lease's case, not a fence's.
    assert not fp.Reach(postgres=True, patroni=False).dead
    assert not fp.Reach(postgres=False, patroni=True).dead


# -- the candidate -----------------------------------------------------------------------------


def replica(**over):
    status = {
        "state": "running",
        "role": "replica",
        "replication_state": "streaming",
        "xlog": {"received_location": 1000, "replayed_location": 900},
    }
    return {**status, **over}


def test_a_streaming_replica_within_the_lag_limit_may_take_over():
    assert fp.candidate_refusal("node2", replica(), 1500, 1024, sync=False) is None
    assert fp.candidate_refusal("node2", replica(role="sync_standby"), None, 1, sync=True) is None
    # its stream broke when the primary died: its WAL position is what counts
    broken = replica(replication_state="in archive recovery")
    assert fp.candidate_refusal("node2", broken, 1100, 1024, sync=False) is None
    assert "lags" in fp.candidate_refusal("node2", broken, 9000, 1024, sync=False)


@pytest.mark.parametrize(
    ("status", "optime", "sync", "why"),
    [
        (None, 1000, True, "node2's Patroni does not answer"),
        (replica(state="starting"), 1000, True, "node2's PostgreSQL is starting"),
        (replica(role="primary"), 1000, True, "node2 is primary, not a replica"),
        (replica(replication_state="stopped"), 1000, True, "not replicating (stopped)"),
        (replica(pause=True), 1000, True, "maintenance mode"),
        (replica(), 1000 + 2048, True, "node2 lags 2048 bytes behind the primary (limit 1024)"),
        (replica(), None, False, "last WAL position is unknown"),
    ],
)
def test_the_candidate_is_refused(status, optime, sync, why):
    assert why in fp.candidate_refusal("node2", status, optime, 1024, sync=sync)


def test_the_sync_key_names_the_candidates():
    assert fp.sync_candidates(None) is None  # async: no key
    assert fp.sync_candidates('{"leader": "node1", "sync_standby": "node2"}') == ["node2"]
    assert fp.sync_candidates('{"leader": "node1", "sync_standby": null}') == []
    assert fp.sync_candidates('{"sync_standby": "node2,node3"}') == ["node2", "node3"]


def test_optime_from_patronis_status_key():
    assert fp.optime('{"optime": 12345, "slots": {}}') == 12345
    assert fp.optime("12345") == 12345  # the older /optime/leader form
    assert fp.optime(None) is None and fp.optime("garbage") is None


# -- etcd --------------------------------------------------------------------------------------


def test_the_handover_is_one_transaction_guarded_by_the_revisions_read():
    body = fp.txn_handover(CONF, leader_rev=41, sync_rev=7, candidate="node2")
    compares = {(unb64(c["key"]), c["target"], c["mod_revision"]) for c in body["compare"]}
    assert compares == {("/hacenter/pg/leader", "MOD", "41"), ("/hacenter/pg/sync", "MOD", "7")}
    delete, put = body["success"]
    assert unb64(delete["request_delete_range"]["key"]) == "/hacenter/pg/leader"
    assert unb64(put["request_put"]["key"]) == "/hacenter/pg/failover"
    # Patroni's Failover.from_node reads "member" as the candidate; no "leader": a failover.
    assert json.loads(unb64(put["request_put"]["value"])) == {"member": "node2"}
    assert "failure" not in body  # a failed compare changes nothing


def test_the_intent_is_a_compare_and_set_on_a_lease_of_the_window():
    body = fp.txn_intent(CONF, lease_id="777", leader_rev=41, intent='{"x": 1}')
    intent, leader = body["compare"]
    assert unb64(intent["key"]) == "/hacenter-fastpath/pg/intent"  # outside Patroni's keys
    assert (intent["target"], intent["create_revision"]) == ("CREATE", "0")  # absent only
    assert (unb64(leader["key"]), leader["mod_revision"]) == ("/hacenter/pg/leader", "41")
    assert body["success"][0]["request_put"]["lease"] == "777"


def test_withdrawal_removes_only_the_agents_own_failover_key():
    body = fp.txn_withdraw(CONF, failover_rev=99)
    assert body["compare"][0]["mod_revision"] == "99"
    assert unb64(body["success"][0]["request_delete_range"]["key"]) == "/hacenter/pg/failover"


# -- HAProxy and the decisions -----------------------------------------------------------------


def test_haproxy_commands():
    assert fp.maintenance_commands(("primary", "be_replicas"), "node1") == [
        "set server primary/node1 state maint",
        "shutdown sessions server primary/node1",
        "set server be_replicas/node1 state maint",
        "shutdown sessions server be_replicas/node1",
    ]
    assert fp.primary_commands(("primary",), "node2") == [
        "set server primary/node2 state ready",
        "set server primary/node2 health up",
    ]


def test_a_decision_has_the_contracts_fields():
    entry = fp.decision("acted", "node1", "node2", "It was done.", {"detect": 812.7})
    assert set(entry) == {"at", "outcome", "primary", "candidate", "sentence", "timings_ms"}
    assert entry["timings_ms"] == {"detect": 812}
    assert entry["at"].endswith("Z") and len(entry["at"]) == len("2026-12-05T14:03:07.123Z")
    with pytest.raises(ValueError):
        fp.decision("maybe", "node1", None, "?")


def test_decisions_are_appended_never_rewritten(tmp_path):
    conf = fp.Config(
        scope="pg", namespace="/hacenter/", nodes={}, decisions=str(tmp_path / "d.jsonl")
    )
    fp.record(conf, fp.decision("declined", "node1", None, "One."))
    fp.record(conf, fp.decision("acted", "node1", "node2", "Two."))
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    assert [json.loads(line)["sentence"] for line in lines] == ["One.", "Two."]
    assert (tmp_path / "d.jsonl").stat().st_mode & 0o777 == 0o640


def test_the_peer_answers_the_witness_only():
    cert = {"subjectAltName": (("DNS", "proxy"), ("IP Address", "10.0.0.10"))}
    assert fp.peer_is_witness(cert, "proxy")
    assert not fp.peer_is_witness(cert, "node2")
    assert not fp.peer_is_witness(None, "proxy")


# -- the sequence, with fakes ------------------------------------------------------------------


class FakeEtcd:
    """Keys with revisions; a txn applies the handover or intent when its compares hold."""

    def __init__(self, keys: dict[str, str]):
        self.rev = 10
        self.keys = {k: (v, self.bump()) for k, v in keys.items()}
        self.txns: list[dict] = []
        self.after_handover = None  # what the candidate does once the key is released

    def bump(self) -> int:
        self.rev += 1
        return self.rev

    def get(self, key):
        value, rev = self.keys.get(key, (None, 0))
        return value, rev, rev

    def lease(self, ttl):
        return "1"

    def txn(self, body):
        self.txns.append(body)
        for c in body["compare"]:
            _, rev = self.keys.get(unb64(c["key"]), (None, 0))
            wanted = int(c.get("mod_revision", c.get("create_revision", 0)))
            if rev != wanted:
                return False
        for op in body["success"]:
            if "request_put" in op:
                put = op["request_put"]
                self.keys[unb64(put["key"])] = (unb64(put["value"]), self.bump())
            else:
                self.keys.pop(unb64(op["request_delete_range"]["key"]), None)
        if self.after_handover and "/hacenter/pg/failover" in self.keys:
            self.after_handover(self)
        return True


@pytest.fixture
def world(monkeypatch, tmp_path):
    """An agent whose etcd, peer, Patroni, HAProxy and fence device are fakes; ``calls`` keeps
    what it did, in order."""
    calls: list[str] = []
    etcd = FakeEtcd(
        {
            "/hacenter/pg/leader": "node1",
            "/hacenter/pg/sync": '{"leader": "node1", "sync_standby": "node2"}',
            "/hacenter/pg/status": '{"optime": 1000}',
        }
    )
    state = {"peer": fp.Reach(False, False), "off": 0, "status": fp.FENCE_OFF, "leader": True}
    status = {"node2": replica(role="sync_standby")}

    def takes_over(e):
        if state["leader"]:
            e.keys["/hacenter/pg/leader"] = ("node2", e.bump())
            status["node2"] = replica(role="primary")

    etcd.after_handover = takes_over
    monkeypatch.setattr(fp, "peer_opinion", lambda conf, peer, target, ctx: state["peer"])
    monkeypatch.setattr(fp, "patroni_status", lambda a, p, name, c, t: status.get(name))
    monkeypatch.setattr(fp, "haproxy", lambda conf, cmds: calls.extend(cmds) or [])

    def fence(conf, node, action, timeout):
        calls.append(f"fence {action} {node.name}")
        return state["off"] if action == "off" else state["status"]

    monkeypatch.setattr(fp, "fence_agent", fence)
    conf = fp.Config(
        scope="pg",
        namespace="/hacenter/",
        nodes=dict(NODES),
        decisions=str(tmp_path / "d.jsonl"),
        takeover_timeout_s=0.3,
        backends=("primary", "be_replicas"),
        primary_backends=("primary",),
    )
    agent = fp.Agent(conf)
    agent.etcd = etcd

    def run() -> dict:
        agent.act(agent.conf.nodes["node1"], 900.0)
        return json.loads((tmp_path / "d.jsonl").read_text().splitlines()[-1])

    return agent, etcd, state, status, calls, run


def test_acted_fences_before_the_key_is_released_then_haproxy_is_told(world):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059
    entry = run()
    assert entry["outcome"] == "acted", entry
    assert (entry["primary"], entry["candidate"]) == ("node1", "node2")
    assert calls == [
        "set server primary/node1 state maint",
        "shutdown sessions server primary/node1",
        "set server be_replicas/node1 state maint",
        "shutdown sessions server be_replicas/node1",
        "fence off node1",
        "fence status node1",
        "set server primary/node2 state ready",
        "set server primary/node2 health up",
    ]
    intent, handover = etcd.txns
    assert unb64(intent["compare"][0]["key"]).endswith("/intent")
    assert unb64(handover["success"][1]["request_put"]["key"]) == "/hacenter/pg/failover"
    assert set(entry["timings_ms"]) == {"detect", "fence", "handover", "total"}
    assert entry["sentence"].startswith("node1 was unreachable from the witness and from node2")


def test_a_peer_that_still_reaches_the_primary_means_nothing_is_done(world):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059
    state["peer"] = fp.Reach(postgres=True, patroni=True)
    entry = run()
    assert entry["outcome"] == "declined"
    assert "node2's host still reaches it" in entry["sentence"]
    assert calls == [] and etcd.txns == []


def test_a_device_that_cannot_confirm_declines_and_gives_the_node_back_to_haproxy(world):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059
    state["status"] = fp.FENCE_ON
    entry = run()
    assert entry["outcome"] == "declined"
    assert "was not fenced for certain" in entry["sentence"]
    assert calls[-2:] == [
        "set server primary/node1 state ready",
        "set server be_replicas/node1 state ready",
    ]
    assert etcd.get("/hacenter/pg/leader")[0] == "node1"  # the leader key stays: the lease decides
    assert "/hacenter/pg/failover" not in etcd.keys


def test_a_failed_power_off_declines_without_a_status_query(world):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059
    state["off"] = 1
    entry = run()
    assert (
        entry["outcome"] == "declined"
        and "power-off through fence_redfish failed" in (entry["sentence"])
    )
    assert "fence status node1" not in calls


def test_a_lagging_candidate_is_not_promoted_early(world):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059
    etcd.keys["/hacenter/pg/status"] = ('{"optime": 99999999}', etcd.bump())
    entry = run()
    assert entry["outcome"] == "declined" and "lags" in entry["sentence"]
    assert calls == [] and etcd.txns == []


def test_the_rate_limit_allows_one_fast_failover_per_window(world):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059
    etcd.keys["/hacenter-fastpath/pg/intent"] = ('{"primary": "node2"}', etcd.bump())
    entry = run()
    assert (
        entry["outcome"] == "declined" and "already happened within the last" in (entry["sentence"])
    )
    assert calls == []


def test_a_leader_key_that_moved_meanwhile_is_left_to_patroni(world):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059
    etcd.keys["/hacenter/pg/leader"] = ("node2", etcd.bump())
    entry = run()
    assert entry["outcome"] == "declined" and "the leader key is now node2" in entry["sentence"]


def test_a_key_changed_between_fence_and_handover_releases_nothing(world, monkeypatch):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059
    real = fp.power_off_confirmed

    def fence_then_sync_changes(conf, node):
        etcd.keys["/hacenter/pg/sync"] = ('{"sync_standby": null}', etcd.bump())
        return real(conf, node)

    monkeypatch.setattr(fp, "power_off_confirmed", fence_then_sync_changes)
    entry = run()
    assert entry["outcome"] == "declined" and "changed after it was read" in entry["sentence"]
    assert etcd.get("/hacenter/pg/leader")[0] == "node1"
    # it is off for certain: it stays out of HAProxy
    assert "set server primary/node1 state ready" not in calls


def test_a_candidate_that_does_not_take_over_is_withdrawn(world):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059
    state["leader"] = False
    entry = run()
    assert entry["outcome"] == "withdrawn"
    assert "/hacenter/pg/failover" not in etcd.keys
    assert "did not take over within" in entry["sentence"]


def test_no_fence_device_keeps_the_lease_path(world):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059
    agent.conf.nodes["node1"] = fp.NodeConf("node1", "10.0.0.11")  # the fixture's own copy
    entry = run()
    assert entry["outcome"] == "declined" and "no tested fence device" in entry["sentence"]
    assert calls == []


def test_an_unexpected_error_is_a_failed_decision(world, monkeypatch):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059

    def broken(conf, cmds):
        raise RuntimeError("socket gone")

    monkeypatch.setattr(fp, "haproxy", broken)
    entry = run()
    assert entry["outcome"] == "failed" and "socket gone" in entry["sentence"]


def test_one_decision_per_death_until_the_primary_answers_again(world, monkeypatch):
    agent, etcd, state, status, calls, run = world  # noqa: RUF059
    acted: list[str] = []
    monkeypatch.setattr(agent, "act", lambda node, ms: acted.append(node.name))
    monkeypatch.setattr(agent, "refresh_primary", lambda: None)
    agent.primary = "node1"
    seen = {"reach": fp.Reach(False, False)}
    monkeypatch.setattr(fp, "probe", lambda conf, node, ctx: seen["reach"])
    for _ in range(12):  # the fixture agent needs 5 misses in a row
        agent.iteration(0.0)
    assert acted == ["node1"]  # not again while it stays dead
    seen["reach"] = fp.Reach(True, True)
    agent.iteration(0.0)
    seen["reach"] = fp.Reach(False, False)
    for _ in range(12):
        agent.iteration(0.0)
    assert acted == ["node1", "node1"]
