"""The monitor's reads without the network: a node's SQL answers through a fake connection, and
what `to_view` makes of a reading (replay lag in seconds, HAProxy's backends per server)."""

import socket
from datetime import UTC, datetime
from decimal import Decimal

import psycopg2
import pytest

from clusters.inventory import pki
from clusters.models import Cluster, Node
from clusters.monitoring.reads import (
    ARCHIVER_SQL,
    REPLICATION_SQL,
    STANDBY_LAG_SQL,
    Inventory,
    NodeReading,
    Reading,
    read_node,
)
from clusters.monitoring.view import to_view


def inventory(replication: str = "async") -> Inventory:
    """node1 and node2 of a cluster, unsaved: to_view reads no database."""
    cluster = Cluster(name="pg1", replication=replication, last_leader="node1")
    return Inventory(
        cluster=cluster,
        db_nodes=[Node(name="node1"), Node(name="node2")],
        proxy=Node(name="proxy"),
        secrets={},
        statuses={},
    )


def reading(
    *,
    standby_role: str = "replica",
    standby_state: str = "streaming",
    row: dict | None = None,
    standby: NodeReading | None = None,
    proxy: dict | None = None,
    patroni_lag: int = 0,
) -> Reading:
    """A primary node1 and a standby node2; `row` is node2's pg_stat_replication row on node1
    (None: node1 does not list it)."""
    members = [
        {"name": "node1", "role": "leader", "state": "running", "timeline": 1},
        {
            "name": "node2",
            "role": standby_role,
            "state": standby_state,
            "timeline": 1,
            "lag": patroni_lag,
        },
    ]
    return Reading(
        patroni={"members": members},
        history=[],
        nodes={
            "node1": NodeReading(
                writable=True, wal_position=9000, replication={"node2": row} if row else {}
            ),
            "node2": standby or NodeReading(writable=False, wal_position=8000),
        },
        proxy=proxy,
    )


def node2(view):
    return next(m for m in view.members if m.name == "node2")


def test_a_sync_standby_behind_with_no_replay_lag_on_the_primary_reports_its_own_figure():
    """The reported bug: the primary's replay_lag is NULL (PostgreSQL cleared it after a quiet
    spell and has not measured since) while WAL is in flight, so lag_seconds was null."""
    one = reading(
        standby_role="sync_standby",
        row={"state": "streaming", "lag_bytes": 4096, "replay_lag_s": None},
        standby=NodeReading(writable=False, wal_position=8000, standby_lag_s=0.0),
    )
    member = node2(to_view(inventory("sync"), one))
    assert member.patroni_role == "sync_standby"
    assert (member.lag_bytes, member.lag_seconds) == (4096, 0.0)


@pytest.mark.parametrize(
    ("case", "row", "patroni", "standby_lag_s", "expected"),
    [
        # row: node2's lag_bytes and replay_lag_s on the primary; patroni: node2's state, lag
        ("primary measured it", (10, 0.25), ("streaming", 10), 7.0, 0.25),
        ("caught up, nothing written", (0, None), ("streaming", 0), None, 0.0),
        ("behind, standby measured", (10, None), ("streaming", 10), 1.5, 1.5),
        ("behind, standby's read failed", (10, None), ("streaming", 10), None, None),
        ("primary unread, streaming", None, ("streaming", 10), 2.0, 2.0),
        ("primary unread, not streaming, behind", None, ("starting", 10), 0.0, None),
        ("primary unread, not streaming, 0 bytes", None, ("stopped", 0), None, 0.0),
    ],
)
def test_lag_seconds_comes_from_the_primary_then_from_the_standby_itself(
    case, row, patroni, standby_lag_s, expected
):
    for role in ("replica", "sync_standby"):  # the same rule for both
        one = reading(
            standby_role=role,
            standby_state=patroni[0],
            patroni_lag=patroni[1],
            row={"state": "streaming", "lag_bytes": row[0], "replay_lag_s": row[1]}
            if row
            else None,
            standby=NodeReading(writable=False, wal_position=1, standby_lag_s=standby_lag_s),
        )
        assert node2(to_view(inventory(), one)).lag_seconds == expected, (case, role)


def test_the_primary_never_has_a_lag():
    one = reading(row={"state": "streaming", "lag_bytes": 0, "replay_lag_s": None})
    primary = to_view(inventory(), one).members[0]
    assert (primary.lag_bytes, primary.lag_seconds) == (None, None)


STATS = {
    "primary": {"node1": "UP", "node2": "DOWN"},
    "be_replicas": {"node1": "DOWN", "node2": "UP 1/2"},
    "be_replicas_fallback": {"node1": "UP", "node2": "DOWN"},
    "app_8080": {"node1": "UP", "node2": "DOWN"},
}


def test_each_server_gets_its_status_in_the_database_and_application_backends():
    view = to_view(inventory(), reading(proxy=STATS))
    # app_8080 is an HTTP frontend (listen app_<port>): the cluster page shows where it routes.
    assert [m.proxy_backends for m in view.members] == [
        {"primary": "UP", "be_replicas": "DOWN", "be_replicas_fallback": "UP", "app_8080": "UP"},
        {
            "primary": "DOWN",
            "be_replicas": "UP 1/2",
            "be_replicas_fallback": "DOWN",
            "app_8080": "DOWN",
        },
    ]


def test_unread_haproxy_leaves_every_backend_status_unknown():
    view = to_view(inventory(), reading(proxy=None))
    assert [m.proxy_backends for m in view.members] == [{}, {}]


class FakeCursor:
    """Answers the monitor's statements like a node in or out of recovery would."""

    def __init__(self, in_recovery: bool, standby_answer: object) -> None:
        self.in_recovery, self.standby_answer = in_recovery, standby_answer
        self.executed: list[str] = []
        self._rows: list[tuple] = []
        self.archiver_rows: list[tuple] = []  # none: archive_mode is off

    def __enter__(self) -> "FakeCursor":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str) -> None:
        self.executed.append(sql)
        if sql == STANDBY_LAG_SQL:
            if isinstance(self.standby_answer, Exception):
                raise self.standby_answer
            self._rows = [(self.standby_answer,)]
        elif sql == REPLICATION_SQL:
            self._rows = [("node2", "streaming", 0, None, None, None)]
        elif sql == ARCHIVER_SQL:
            self._rows = self.archiver_rows
        else:  # pg_is_in_recovery(), the position, pg_postmaster_start_time()
            self._rows = [(self.in_recovery, Decimal(8000), None)]

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple]:
        return self._rows


class FakeConnection:
    def __init__(self, cursor: FakeCursor) -> None:
        self._cursor, self.autocommit = cursor, False

    def cursor(self) -> FakeCursor:
        return self._cursor

    def close(self) -> None:
        pass


def db_node(name: str, address: str, *, ca: str = "", tls_active: bool = False) -> Node:
    """An unsaved database node of an unsaved cluster (read_node reads no database)."""
    return Node(
        name=name,
        address=address,
        tls_active=tls_active,
        cluster=Cluster(name="pg1", ca_certificate=ca),
    )


def fake_node(monkeypatch, in_recovery: bool, standby_answer: object) -> FakeCursor:
    cursor = FakeCursor(in_recovery, standby_answer)
    monkeypatch.setattr(
        "clusters.monitoring.reads.psycopg2.connect", lambda **kw: FakeConnection(cursor)
    )
    return cursor


@pytest.mark.parametrize(
    ("answer", "seconds"),
    [
        (0, 0.0),  # replayed all it received
        (Decimal("2.5"), 2.5),
        (Decimal("-0.2"), 0.0),  # its clock a little behind the primary's
        (None, None),  # nothing replayed since it started
    ],
)
def test_a_standby_reads_its_own_replay_delay(monkeypatch, answer, seconds):
    fake_node(monkeypatch, in_recovery=True, standby_answer=answer)
    found = read_node(db_node("node2", "10.0.0.2"), "pw", 1.0)
    assert (found.writable, found.wal_position, found.standby_lag_s) == (False, 8000, seconds)
    assert isinstance(found.standby_lag_s, float | None)


def test_a_failed_replay_delay_read_costs_the_figure_not_the_node(monkeypatch):
    fake_node(monkeypatch, in_recovery=True, standby_answer=psycopg2.ProgrammingError("no"))
    found = read_node(db_node("node2", "10.0.0.2"), "pw", 1.0)
    assert (found.writable, found.standby_lag_s) == (False, None)


def test_a_primary_reads_its_standbys_and_not_its_own_replay_delay(monkeypatch):
    cursor = fake_node(monkeypatch, in_recovery=False, standby_answer=0)
    found = read_node(db_node("node1", "10.0.0.1"), "pw", 1.0)
    assert found.writable is True and found.standby_lag_s is None
    assert list(found.replication) == ["node2"]
    assert STANDBY_LAG_SQL not in cursor.executed


def test_a_primary_that_archives_reads_its_archiver_and_the_segments_waiting(monkeypatch):
    cursor = fake_node(monkeypatch, in_recovery=False, standby_answer=0)
    assert read_node(db_node("node1", "10.0.0.1"), "pw", 1.0).archiver is None  # mode off
    archived = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    cursor.archiver_rows = [("00000002000000000000000A", archived, 1, "x", None, 700, 3)]
    found = read_node(db_node("node1", "10.0.0.1"), "pw", 1.0).archiver
    assert found == {
        "last_archived_wal": "00000002000000000000000A",
        "last_archived_at": "2026-12-05T08:00:00+00:00",
        "failed_count": 1,
        "last_failed_wal": "x",
        "last_failed_at": None,
        "last_archived_age_s": 700,
        "waiting": 3,
    }


def _connect_kwargs(monkeypatch, node: Node) -> dict:
    seen: dict = {}

    def connect(**kw):
        seen.update(kw)
        raise psycopg2.OperationalError("refused")

    monkeypatch.setattr("clusters.monitoring.reads.psycopg2.connect", connect)
    monkeypatch.setattr("clusters.monitoring.reads.host_answers", lambda node, timeout: False)
    assert read_node(node, "pw", 1.0) == NodeReading(host_answers=False)
    return seen


def test_a_node_whose_postgres_is_silent_is_told_up_or_down_by_its_ssh_port(monkeypatch):
    monkeypatch.setattr(
        "clusters.monitoring.reads.psycopg2.connect",
        lambda **kw: (_ for _ in ()).throw(psycopg2.OperationalError("refused")),
    )
    with socket.create_server(("127.0.0.1", 0)) as listening:
        node = db_node("node1", "127.0.0.1")
        node.ssh_port = listening.getsockname()[1]
        assert read_node(node, "pw", 1.0).host_answers is True
    assert read_node(node, "pw", 1.0).host_answers is False  # closed: nothing listens
    # PostgreSQL answers: the server is not probed, the field stays unread.
    fake_node(monkeypatch, in_recovery=True, standby_answer=0)
    assert read_node(node, "pw", 1.0).host_answers is None


def test_the_monitor_verifies_a_tls_node_against_the_clusters_ca(monkeypatch, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    ca = pki.new_authority("pg1").certificate
    seen = _connect_kwargs(monkeypatch, db_node("node1", "10.0.0.1", ca=ca, tls_active=True))
    assert seen["sslmode"] == "verify-full"
    with open(seen["sslrootcert"]) as f:
        assert f.read() == ca


@pytest.mark.parametrize(("ca", "active"), [("", False), ("", True), ("CA", False)])
def test_the_monitor_prefers_tls_on_a_node_not_converted_yet(monkeypatch, ca, active):
    # No CA (built before TLS), or a CA whose files the node does not serve yet: TLS when the
    # server offers it, as libpq does by default, and the node keeps being read.
    seen = _connect_kwargs(monkeypatch, db_node("node1", "10.0.0.1", ca=ca, tls_active=active))
    assert seen["sslmode"] == "prefer" and "sslrootcert" not in seen
