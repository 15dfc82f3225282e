""" "If the primary died now": for each standby, whether Patroni would promote it and how many
bytes of acknowledged writes would be lost, from the monitor's last reading. Pure.

The rules are Patroni's own (4.x, `ha.py`: `is_failover_possible`, `_is_healthiest_node`),
applied to what the monitor stored:
- a member whose PostgreSQL is not running as a standby (`streaming`, or `running` while it
  catches up) cannot take over; nor can one the sentinel fenced, or one whose Patroni did not
  answer the last reading (it would not take part in the race);
- in synchronous mode only the member named synchronous may take over (Patroni's `/sync` key);
- a member more than `maximum_lag_on_failover` bytes behind does not promote itself, in either
  mode (Patroni compares its WAL position with the leader's last optime in etcd; the monitor's
  lag is the same distance as Patroni's /cluster reports it);
- of those left, the one furthest ahead wins: the others see a healthier member and stand down.

HA Center writes `nofailover: false` on every member it builds, so that tag never refuses one
here; an adopted cluster's tags are not read (its layout says so on the page).
"""

from dataclasses import dataclass, field

from clusters.inventory.units import size_text

# Verdicts, as the page and the API spell them.
WOULD_PROMOTE = "would_promote"  # Patroni would pick this one
ELIGIBLE = "eligible"  # may take over, but another one is further ahead
REFUSED = "refused"  # would not take over: `reasons` say why
UNKNOWN = "unknown"  # no fresh reading to judge by

RUNNING_STATES = ("streaming", "running")


@dataclass(frozen=True)
class Member:
    """What the monitor last read of one database member."""

    name: str
    role: str  # NodeStatus.Role: primary, replica, sync_replica, unknown
    state: str  # Patroni's member state: streaming, running, stopped, …
    lag_bytes: int | None
    wal_position: int | None
    fenced: bool
    answered: bool  # its Patroni answered the monitor's last reading


@dataclass(frozen=True)
class Outlook:
    """One standby's fate if the primary died now."""

    node: str
    verdict: str
    reasons: list[str] = field(default_factory=list)
    bytes_at_risk: int | None = None  # acknowledged writes it lacks; None: cannot tell


def _refusals(member: Member, *, sync: bool, maximum_lag: int) -> list[str]:
    """Why Patroni would not promote `member` (empty: it may)."""
    reasons = []
    if not member.answered:
        reasons.append("its Patroni did not answer the last reading")
    if member.fenced:
        reasons.append("it is fenced until rebuilt")
    if member.state not in RUNNING_STATES:
        reasons.append(f"its PostgreSQL is {member.state or 'in an unknown state'}, not streaming")
    if sync and member.role != "sync_replica":
        reasons.append("in synchronous mode only the synchronous standby may take over")
    if member.lag_bytes is not None and member.lag_bytes > maximum_lag:
        reasons.append(
            f"it lags {size_text(member.lag_bytes)}, more than maximum_lag_on_failover "
            f"({size_text(maximum_lag)})"
        )
    return reasons


def _at_risk(member: Member, *, sync: bool) -> int | None:
    """Acknowledged writes the member lacks: none on the synchronous standby (each commit
    waited for it), its lag otherwise."""
    if sync and member.role == "sync_replica":
        return 0
    return member.lag_bytes


def failover_outlook(
    members: list[Member], *, sync: bool, maximum_lag: int, observed: bool
) -> list[Outlook]:
    """Each standby's outlook, in the members' order. `observed` is false when the monitor has
    no fresh reading of the cluster (every standby is then unknown); a cluster without a
    primary has nothing to fail over from (also unknown)."""
    # Every member but the primary: one whose role the last reading could not tell (stopped,
    # silent) is a standby that would not take over, and is listed as such.
    standbys = [m for m in members if m.role != "primary"]
    has_primary = any(m.role == "primary" for m in members)
    if not observed or not has_primary:
        why = "no fresh reading of the cluster" if not observed else "there is no primary now"
        return [Outlook(m.name, UNKNOWN, [why]) for m in standbys]
    refusals = {m.name: _refusals(m, sync=sync, maximum_lag=maximum_lag) for m in standbys}
    able = [m for m in standbys if not refusals[m.name]]
    # Furthest ahead first: the highest WAL position, else the least lag.
    able.sort(key=lambda m: (-(m.wal_position or 0), m.lag_bytes or 0))
    chosen = able[0].name if able else None
    found = []
    for member in standbys:
        risk = _at_risk(member, sync=sync)
        if refusals[member.name]:
            found.append(Outlook(member.name, REFUSED, refusals[member.name], risk))
        elif member.name == chosen:
            found.append(Outlook(member.name, WOULD_PROMOTE, [], risk))
        else:
            ahead = f"{chosen} is further ahead and would be promoted"
            found.append(Outlook(member.name, ELIGIBLE, [ahead], risk))
    return found
