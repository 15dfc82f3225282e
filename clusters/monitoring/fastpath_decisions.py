"""The fast-path agent's decisions, read into the cluster's history.

The agent on the witness (jobs/agents/fastpath.py, docs/fast-failover.md) decides alone: the
console may be down during a failover. It appends each decision (acted, declined, withdrawn,
failed) as one JSON line to a file on the witness and never rewrites it. Beat reads the new
lines over SSH every half minute and records each as a `fast_failover` event, which joins the
failover's incident like the monitor's own events and is counted in /metrics.

Where reading stopped is kept in the last such event (`details.file_offset`): the next read
starts there. A file shorter than that offset is a new one (the witness was replaced), read
from its start; an event already recorded (same time, outcome and primary) is not recorded
twice.
"""

import json
import logging
import shlex
from dataclasses import dataclass
from datetime import datetime

from django.utils.dateparse import parse_datetime

from clusters.alerts.events import event_record
from clusters.models import Cluster, ClusterEvent, Node
from jobs.connections import ConnectionPool
from jobs.ssh import SSHError

log = logging.getLogger(__name__)

DECISIONS_DIR = "/var/lib/hacenter/fastpath"
OUTCOMES = ("acted", "declined", "withdrawn", "failed")
SEVERITY = {
    "acted": ClusterEvent.Severity.WARNING,  # a node was powered off, by design
    "declined": ClusterEvent.Severity.WARNING,  # the lease decides: a slower failover
    "withdrawn": ClusterEvent.Severity.CRITICAL,  # fenced, yet the candidate did not take over
    "failed": ClusterEvent.Severity.CRITICAL,
}
# Lines per read: a burst bigger than this is read over the next passes.
LINES_PER_READ = 200
READ_TIMEOUT_S = 15


def decisions_path(cluster: Cluster) -> str:
    """The agent's decisions file on the witness (the cluster's name is Patroni's scope)."""
    return f"{DECISIONS_DIR}/{cluster.name}.jsonl"


@dataclass(frozen=True)
class Decision:
    """One line of the agent's file: what it decided about which primary, and why."""

    at: datetime
    outcome: str
    primary: str
    candidate: str
    sentence: str
    timings_ms: dict[str, int]

    @property
    def summary(self) -> str:
        return f"Fast failover {self.outcome}: {self.sentence}"


def decision_parse(line: str) -> Decision | None:
    """A decision from one line; None for a line that is not one (cut short, or unknown)."""
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("outcome") not in OUTCOMES:
        return None
    at = parse_datetime(str(raw.get("at", "")))
    if at is None or at.tzinfo is None:
        return None
    timings = raw.get("timings_ms") or {}
    return Decision(
        at=at,
        outcome=raw["outcome"],
        primary=str(raw.get("primary") or "")[:63],
        candidate=str(raw.get("candidate") or "")[:63],
        sentence=str(raw.get("sentence") or "no reason given")[:1000],
        timings_ms={
            str(k): int(v)
            for k, v in (timings.items() if isinstance(timings, dict) else [])
            if isinstance(v, (int, float))
        },
    )


def read_command(path: str, offset: int) -> str:
    """Shell that prints the file's size, then up to LINES_PER_READ whole lines from `offset`
    (nothing at all when the agent has written no file yet)."""
    quoted = shlex.quote(path)
    return (
        f"[ -f {quoted} ] || exit 0; stat -c %s -- {quoted}; "
        f"tail -c +{int(offset) + 1} -- {quoted} | head -n {LINES_PER_READ}"
    )


def lines_consumed(size: int, offset: int, lines: list[str]) -> tuple[int, list[Decision]]:
    """Where reading stopped and the decisions read, from the file's size, where reading began
    and the lines read. A file shorter than the offset is new: the caller reads it from 0. A
    last line that does not parse may be half-written: it is read again next time."""
    decisions = []
    for line in lines:
        decision = decision_parse(line)
        if decision is None and offset + len(line.encode()) + 1 > size:
            break  # the last line, possibly still being written
        offset += len(line.encode()) + 1
        if decision is not None:
            decisions.append(decision)
    return offset, decisions


def last_event(cluster: Cluster) -> ClusterEvent | None:
    return (
        ClusterEvent.objects.filter(cluster=cluster, kind=ClusterEvent.Kind.FAST_FAILOVER)
        .order_by("-id")
        .first()
    )


def last_offset(cluster: Cluster) -> int:
    event = last_event(cluster)
    return int(event.details.get("file_offset", 0)) if event else 0


def decisions_record(cluster: Cluster, decisions: list[Decision], offset: int) -> int:
    """Record each decision not recorded yet as a fast_failover event; the count recorded."""
    recorded = 0
    for decision in decisions:
        seen = ClusterEvent.objects.filter(
            cluster=cluster,
            kind=ClusterEvent.Kind.FAST_FAILOVER,
            at=decision.at,
            node=decision.primary,
            details__outcome=decision.outcome,
        ).exists()
        if seen:
            continue
        acted = decision.outcome == "acted"
        event_record(
            cluster,
            ClusterEvent.Kind.FAST_FAILOVER,
            decision.summary,
            severity=SEVERITY[decision.outcome],
            at=decision.at,
            node=decision.primary,
            old_primary=decision.primary if acted else "",
            new_primary=decision.candidate if acted else "",
            details={
                "outcome": decision.outcome,
                "candidate": decision.candidate,
                "sentence": decision.sentence,
                "timings_ms": decision.timings_ms,
                "file_offset": offset,
            },
        )
        recorded += 1
    return recorded


def stdout_lines(pool: ConnectionPool, witness: Node, command: str) -> list[str] | None:
    """Every line the command printed; None when the witness cannot be asked now."""
    lines: list[str] = []

    def keep(stream: str, line: str) -> None:
        if stream == "stdout":
            lines.append(line)

    try:
        result = pool.get(witness).run(command, timeout=READ_TIMEOUT_S, sudo=True, on_line=keep)
    except (SSHError, OSError) as exc:  # the witness is down or cut off: next time
        log.info("fast-path decisions on %s: %s", witness.name, exc)
        return None
    return lines if result.ok else None


def fastpath_decisions_read(cluster: Cluster, pool: ConnectionPool) -> int:
    """Read the witness's new decision lines and record them; the count recorded."""
    witness = cluster.proxy_node
    if witness is None:
        return 0
    offset = last_offset(cluster)
    for _attempt in range(2):  # a second time from 0 when the file is a new one
        lines = stdout_lines(pool, witness, read_command(decisions_path(cluster), offset))
        if not lines or not lines[0].strip().isdigit():
            return 0  # no file yet (no decision ever), or the witness unreachable
        size = int(lines[0])
        if size < offset:
            offset = 0
            continue
        end, decisions = lines_consumed(size, offset, lines[1:])
        recorded = decisions_record(cluster, decisions, end)
        offset_keep(cluster, end)
        return recorded
    return 0


def offset_keep(cluster: Cluster, offset: int) -> None:
    """Keep where reading stopped in the last event, also when every line read was recorded
    before (a new file read again from its start) or was no decision."""
    event = last_event(cluster)
    if event is not None and event.details.get("file_offset") != offset:
        event.details["file_offset"] = offset
        event.save(update_fields=["details"])


def fastpath_decisions_read_all() -> int:
    """Read every fast-failover cluster's decisions (beat, every 30 s)."""
    recorded = 0
    pool = ConnectionPool(tag="hacenter-fastpath-decisions")
    try:
        for cluster in Cluster.objects.filter(fast_failover=True):
            recorded += fastpath_decisions_read(cluster, pool)
    finally:
        pool.close()
    return recorded
