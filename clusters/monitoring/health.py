"""Judging one monitor reading: the cluster's state, its alarms and whom the sentinel may fence.

Pure functions over a `ClusterView` the monitor builds every pass (`view.to_view`): no ORM, no
I/O, no Django import, so every rule is a table test and the sentinel, the monitor and the pages
all judge the same way.

Three sources disagree during trouble, and the rules lean on each for what only it knows:
Patroni's `/cluster` says who *should* be primary (the leader key); direct SQL
(`pg_is_in_recovery()`) says who *does* accept writes; HAProxy says where clients' writes *go*.
"""

from dataclasses import dataclass

from clusters.inventory.units import size_text
from jobs.playbooks.backup_info import archive_trouble

# Cluster states, the values of clusters.models.Cluster.State (a test keeps them in step; the
# model is not imported so that this module stays importable without Django).
HEALTHY = "healthy"
DEGRADED = "degraded"
FAILING_OVER = "failing_over"
MAINTENANCE = "maintenance"
DOWN = "down"
UNKNOWN = "unknown"
STATES = (HEALTHY, DEGRADED, FAILING_OVER, MAINTENANCE, DOWN, UNKNOWN)

# Node roles, the values of NodeStatus.Role, and Patroni's role names mapped onto them. The same
# table as NodeStatus.PATRONI_ROLES (a test keeps them equal).
PRIMARY, REPLICA, SYNC_REPLICA, UNKNOWN_ROLE = "primary", "replica", "sync_replica", "unknown"
PATRONI_ROLES = {
    "leader": PRIMARY,
    "master": PRIMARY,  # Patroni < 3.0
    "primary": PRIMARY,
    "standby_leader": REPLICA,  # leads a standby cluster, but itself replays a remote primary
    "replica": REPLICA,
    "sync_standby": SYNC_REPLICA,
    "quorum_standby": SYNC_REPLICA,
}

# HAProxy's backends, as jobs/configs/haproxy.py names them: writes (:5432), reads (:5433), and
# where reads go while no replica is UP (`use_backend be_replicas if { nbsrv(be_replicas) gt 0 }`).
RW_BACKEND, RO_BACKEND, RO_FALLBACK_BACKEND = "primary", "be_replicas", "be_replicas_fallback"
# An HTTP frontend's listen section is "app_<listen port>" (it follows the primary).
APP_BACKEND_PREFIX = "app_"
# HAProxy's server states; a status is one of these words, perhaps with more after it.
PROXY_STATES = ("UP", "DOWN", "MAINT", "DRAIN", "NOLB")

# ClusterAlarm.message is a CharField(300); a long list of standbys must not break the insert.
MAX_ALARM_MESSAGE = 300

# The reasons are shown as they are in the cluster page's "Why" box, on the dashboard's cards and
# in the API: one line each, saying what is wrong in words an operator acts on (what clients
# feel, or what to do), not a raw status.
NOTHING_ANSWERED = (
    "Neither Patroni nor HAProxy answered: the cluster cannot be read (the console's own "
    "network may be cut off)."
)
PATRONI_SILENT = "No Patroni answered: who should be primary is unknown."
PROXY_SILENT = "HAProxy's stats did not answer: where clients' writes go is unknown."
PROXY_DOWN = "{name}'s HAProxy does not answer: the floating address has no other proxy to move to."
PAUSED = "Patroni is paused (maintenance mode): no automatic failover until it is resumed."
NO_LEADER = "Nobody holds the leader key: Patroni is electing a new primary, writes wait."
NO_SYNC_STANDBY = (
    "No standby is synchronous yet: in synchronous mode Patroni would not fail over now."
)
WRITES_NOWHERE = "HAProxy routes writes to no server: clients cannot write."
# A data directory disk with less free than this is a problem (and an alarm); below
# DISK_FULL_BYTES it is said to be full.
DISK_LOW_FRACTION = 0.10
DISK_FULL_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class MemberView:
    """One database node as the monitor saw it in one pass, from the three sources."""

    name: str
    patroni_role: str | None  # from /cluster: leader, replica, sync_standby…; None: not listed
    patroni_state: str | None  # running, streaming, stopped, starting, crashed…
    writable: bool | None  # direct SQL: True = not in recovery; None = could not connect
    timeline: int | None
    lag_bytes: int | None
    lag_seconds: float | None
    proxy_rw: str | None  # status in HAProxy's read-write backend: UP, DOWN, MAINT, UP 1/2…
    proxy_ro: str | None  # status in the read-only backend; None = unknown
    fenced: bool = False  # the sentinel already shut it out
    proxy_ro_fallback: str | None = None  # status in the backend reads use when no replica is UP
    # ((backend, status), ...) in the application frontends' backends (APP_BACKEND_PREFIX).
    proxy_apps: tuple[tuple[str, str], ...] = ()
    # The fullest file system under its data directory, from the disk check (None: not read
    # lately): (mount point, free bytes, total bytes).
    disk: tuple[str, int, int] | None = None

    @property
    def proxy_backends(self) -> dict[str, str]:
        """This server's status in each HAProxy backend that lists it (empty: HAProxy unread)."""
        statuses = {
            RW_BACKEND: self.proxy_rw,
            RO_BACKEND: self.proxy_ro,
            RO_FALLBACK_BACKEND: self.proxy_ro_fallback,
            **dict(self.proxy_apps),
        }
        return {backend: status for backend, status in statuses.items() if status is not None}


@dataclass(frozen=True)
class ClusterView:
    """A whole cluster as the monitor saw it in one pass."""

    members: tuple[MemberView, ...]
    patroni_answered: bool  # at least one member answered /cluster
    leader: str | None  # who holds the leader key per /cluster
    paused: bool  # Patroni maintenance mode (pause) is on
    proxy_answered: bool  # HAProxy stats were read
    lag_threshold_bytes: int = 16 * 1024 * 1024
    synchronous: bool = False  # the cluster runs Patroni's synchronous_mode
    # The cluster has a proxy to read; an adopted cluster may have none, and then its silence
    # is no problem (clients connect to the nodes themselves).
    proxy_expected: bool = True
    # With two proxies and a floating address: the proxies whose own HAProxy stats did not
    # answer (read at each proxy's address, besides the read through the floating address).
    proxies_silent: tuple[str, ...] = ()
    # The leader's WAL archiver when it archives (reads._archiver), else None.
    archive: dict | None = None
    # maximum_lag_on_failover: Patroni promotes no standby further behind; None: not known.
    failover_lag_limit: int | None = None


def role_of(member: MemberView) -> str:
    """The console's role for a member ("primary", "replica", "sync_replica", "unknown"),
    from its Patroni role only: a node writable without the leader key is a split brain to
    report, not a primary to show."""
    return PATRONI_ROLES.get(member.patroni_role or "", UNKNOWN_ROLE)


def derive_state(view: ClusterView) -> tuple[str, list[str]]:
    """The cluster's state and the sentences that explain it (empty exactly when healthy).

    Rules, first match wins:

    1. Neither Patroni nor HAProxy answered → unknown. Direct SQL alone cannot say who should
       be primary nor where clients go; a split brain SQL sees is still listed (and alarmed).
    2. Patroni is paused → maintenance, whatever else is wrong; the reasons still list it all.
    3. Patroni answered but nobody holds the leader key → failing_over.
    4. Down, when clients' writes cannot reach a primary:
       - the leader's node does not accept writes per direct SQL (in recovery, or the console
         could not connect to it), or
       - HAProxy answered and does not route writes to the leader: no server UP in the
         read-write backend, or only other servers (those refuse the writes, or take them
         into a split brain that the rewind will throw away), or
       - Patroni is silent and HAProxy routes writes to no server.
    5. Degraded, for anything else that is not right:
       - Patroni silent (but HAProxy routes writes somewhere) or HAProxy unreadable;
       - with two proxies, one of them not answering at its own address;
       - two or more nodes accept writes (split brain), or one that does not hold the key;
       - HAProxy routes writes to more than one server;
       - a standby that is fenced, not listed by Patroni, not streaming (Patroni state other
         than "streaming"), lagging more than the threshold, or streaming but not UP in
         HAProxy's read-only backend (when that status is known);
       - a synchronous cluster with standbys of which Patroni names none synchronous (a
         just-rebuilt standby streams a while before it is named): no automatic failover is
         possible in that window.
    6. Healthy: the leader is writable and the only server UP in HAProxy's read-write backend,
       every other member streams at or below the lag threshold, both Patroni and HAProxy answered.

    A split brain therefore never comes out healthy: it is degraded at best (rule 5).
    The reasons come in that order of weight: the headline (rules 1 to 3), what makes it down,
    then the rest.
    """
    outage = _outage_reasons(view)
    problems = _problem_reasons(view)
    silent = [
        *([] if view.patroni_answered else [PATRONI_SILENT]),
        *([] if view.proxy_answered or not view.proxy_expected else [PROXY_SILENT]),
        *(PROXY_DOWN.format(name=name) for name in view.proxies_silent),
    ]
    if not view.patroni_answered and not view.proxy_answered:
        return UNKNOWN, [NOTHING_ANSWERED, *outage, *problems]
    if view.paused:
        return MAINTENANCE, [PAUSED, *silent, *outage, *problems]
    if _leader(view) is None and view.patroni_answered:
        return FAILING_OVER, [NO_LEADER, *_no_candidate(view), *silent, *outage, *problems]
    if outage:
        return DOWN, [*outage, *silent, *problems]
    if silent or problems:
        return DEGRADED, [*silent, *problems]
    return HEALTHY, []


def find_alarms(view: ClusterView) -> dict[str, str]:
    """Active alarm conditions, code → one-line message (at most MAX_ALARM_MESSAGE characters).

    - "split_brain": two or more members accept writes per direct SQL. Raised whatever else is
      going on (pause, failover, fenced nodes): a fenced node that still accepts writes from
      whoever reaches it directly is still a second primary.
    - "proxy_rw_not_leader": HAProxy's read-write backend has a server UP that does not hold
      the leader key (alone or next to the leader).
    - "leader_mismatch": HAProxy routes writes to exactly one server and it is not the leader.
      It overlaps "proxy_rw_not_leader" on purpose: that one says a wrong server is routed,
      this one that the leader gets no writes at all.
    - "writes_nowhere": HAProxy answered and routes writes to no server, so clients cannot
      write at all; raised when a leader holds the key and when Patroni is silent, but not
      while nobody holds the key (Patroni is electing: the state says failing_over) nor while
      paused (an operator restarting the primary by hand). The monitor holds it back for a
      moment after a hand-over, while HAProxy's checks catch up (`observe`).
    - "standby_not_streaming": the non-leader members that do not stream, in one message.
    - "disk_low": a database node's data directory disk has less than DISK_LOW_FRACTION free
      (the disk check's last reading, monitoring.disk_space); raised whatever the state.
    - "archive_behind": the leader archives WAL (backups are on) and segments wait while its
      last attempt failed or nothing was archived for long (backup_info.archive_trouble).

    Routing alarms need a leader to compare with: none while nobody holds the key (the state
    says failing_over) or Patroni is silent. "standby_not_streaming" is not raised while
    paused — an operator is restarting or rebuilding nodes by hand, and an alarm per planned
    restart would teach people to ignore it; the state's reasons still list those standbys —
    nor during a failover, when standbys have no primary to stream from yet, nor for fenced
    members, which are kept out on purpose until rebuilt.
    """
    alarms: dict[str, str] = {}
    leader = _leader(view)
    writers = [m.name for m in view.members if m.writable is True]
    if len(writers) >= 2:
        alarms["split_brain"] = (
            f"Split brain: {_names(writers)} accept writes at the same time "
            f"(leader key: {leader or 'nobody'})."
        )
    if leader is not None and view.proxy_answered:
        routed = _routed(view)
        strays = [name for name in routed if name != leader]
        if strays:
            alarms["proxy_rw_not_leader"] = (
                f"HAProxy routes writes to {_names(strays)}, which "
                f"{'does' if len(strays) == 1 else 'do'} not hold the leader key ({leader})."
            )
        if len(routed) == 1 and routed[0] != leader:
            alarms["leader_mismatch"] = (
                f"Patroni's leader is {leader} but HAProxy routes writes to {routed[0]}."
            )
    electing = view.patroni_answered and leader is None
    if view.proxy_answered and not _routed(view) and not (electing or view.paused):
        alarms["writes_nowhere"] = WRITES_NOWHERE
    if leader is not None and not view.paused:
        idle = [
            _standby_problem(m, view) for m in _standbys(view) if not m.fenced and not _streams(m)
        ]
        if idle:
            alarms["standby_not_streaming"] = " ".join(p for p in idle if p)
    if disks := [p for m in view.members if (p := _disk_problem(m))]:
        alarms["disk_low"] = " ".join(disks)
    if view.archive and (trouble := archive_trouble(view.archive)):
        alarms["archive_behind"] = f"WAL archive falls behind: {trouble}."
    return {code: _clip(message) for code, message in alarms.items()}


def fence_candidates(view: ClusterView) -> list[str]:
    """Members the sentinel should shut out: writable per direct SQL without the leader key,
    and not fenced already.

    Empty when nobody holds the leader key (or Patroni is silent): Patroni is electing, and
    the node that is still writable may be the old primary about to demote or the one about
    to win; fencing then would be guessing, and a wrong guess fences the only copy of the
    latest writes. Empty while paused too: Patroni itself does not demote a primary without
    the lock in pause, because an operator is working by hand (perhaps promoting on purpose);
    the split_brain alarm still tells them.
    """
    leader = _leader(view)
    if leader is None or view.paused:
        return []
    return [
        m.name for m in view.members if m.writable is True and m.name != leader and not m.fenced
    ]


def fence_confirmed(named: dict[str, str | None], leader: str) -> bool:
    """Whether every database node whose Patroni answered /cluster names `leader` (None: it
    names nobody). The sentinel fences only then.

    The monitor reads one node's view, and one view can be stale: in the chaos suite a node
    whose network had just come back still named itself leader, and fencing on that word shut
    down the new primary, which named itself. A node that does not answer (frozen, or its
    Patroni stopped) has no say: a frozen rogue primary is what the sentinel exists for.
    """
    return bool(named) and all(name == leader for name in named.values())


def is_up(status: str | None) -> bool:
    """Whether an HAProxy server status means it takes traffic ("UP", or "UP 1/2": still UP
    while failing checks). DOWN, MAINT, DRAIN and unknown do not."""
    return status is not None and status.strip().upper().startswith("UP")


def proxy_state(status: str) -> str:
    """HAProxy's server status as one of PROXY_STATES: "UP 1/2" (failing its checks, still UP
    until the next failure) is UP, "DOWN 1/2" is DOWN, "MAINT (via …)" is MAINT. Anything else is
    answered as HAProxy wrote it."""
    text = status.strip().upper()
    return next((s for s in PROXY_STATES if text.startswith(s)), text)


def proxy_serving(backends: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """Per HAProxy backend ({backend: {server: status}}), the servers it sends new connections to
    now: those UP. DRAIN and NOLB servers keep their sessions but get no new ones; DOWN and MAINT
    get nothing. The read-only frontend uses its fallback backend only while no server of the
    replicas' backend is UP, so the fallback's servers serve nothing otherwise."""
    serving = {
        backend: {server for server, status in servers.items() if is_up(status)}
        for backend, servers in backends.items()
    }
    if serving.get(RO_BACKEND) and RO_FALLBACK_BACKEND in serving:
        serving[RO_FALLBACK_BACKEND] = set()
    return serving


def _leader(view: ClusterView) -> str | None:
    # A leader name without Patroni's answer would be stale; trust it only with the answer.
    return view.leader if view.patroni_answered else None


def _member(view: ClusterView, name: str) -> MemberView | None:
    return next((m for m in view.members if m.name == name), None)


def _routed(view: ClusterView) -> list[str]:
    """Servers UP in HAProxy's read-write backend (meaningful only when it answered)."""
    return [m.name for m in view.members if is_up(m.proxy_rw)]


def _standbys(view: ClusterView) -> list[MemberView]:
    leader = _leader(view)
    return [m for m in view.members if m.name != leader]


def _streams(member: MemberView) -> bool:
    # Patroni ≥ 3.0 reports "streaming" for a replica receiving WAL from its upstream;
    # "running" on a replica means it is up but not replicating.
    return member.patroni_role is not None and member.patroni_state == "streaming"


def _no_candidate(view: ClusterView) -> list[str]:
    """Why the election cannot end, when every standby Patroni lists is further behind the
    last primary's position than maximum_lag_on_failover: Patroni promotes none of them, so
    writes wait for the old primary (an empty list when one may still win)."""
    if view.failover_lag_limit is None:
        return []
    standbys = [m for m in view.members if m.patroni_role is not None]
    behind = [
        m for m in standbys if m.lag_bytes is not None and m.lag_bytes > view.failover_lag_limit
    ]
    if not behind or len(behind) < len(standbys):
        return []
    lags = ", ".join(f"{m.name} {_size(m.lag_bytes)}" for m in behind)
    return [
        f"No standby will be promoted: each lags more than maximum_lag_on_failover "
        f"({_size(view.failover_lag_limit)}) behind the last primary ({lags}), so writes "
        "wait for the old primary to come back, which loses none of them."
    ]


def _outage_reasons(view: ClusterView) -> list[str]:
    """Why clients' writes cannot reach a primary (rule 4); empty when they can or nobody knows."""
    reasons = []
    leader = _leader(view)
    routed = _routed(view)
    if leader is not None:
        node = _member(view, leader)
        if node is None:
            reasons.append(
                f"{leader} holds the leader key but is not a database node of this cluster."
            )
        elif node.writable is None:
            reasons.append(
                f"{leader} holds the leader key but its PostgreSQL does not answer the console."
            )
        elif not node.writable:
            reasons.append(f"{leader} holds the leader key but is read-only: writes fail.")
    if view.proxy_answered:
        if not routed:
            reasons.append(WRITES_NOWHERE)
        elif leader is not None and leader not in routed:
            reasons.append(
                f"HAProxy routes writes to {_names(routed)}, not to the leader {leader}: "
                "clients' writes fail or go astray."
            )
    return reasons


def _problem_reasons(view: ClusterView) -> list[str]:
    """Everything else that keeps the cluster from healthy (rule 5), apart from silence."""
    reasons = []
    leader = _leader(view)
    writers = [m.name for m in view.members if m.writable is True]
    if len(writers) >= 2:
        reasons.append(
            f"Split brain: {_names(writers)} accept writes at the same time; what the one "
            "without the leader key takes will be lost."
        )
    elif writers and leader is not None and writers[0] != leader:
        reasons.append(
            f"{writers[0]} accepts writes but {leader} holds the leader key: what it takes will "
            "be lost."
        )
    if view.proxy_answered:
        routed = _routed(view)
        if len(routed) >= 2:
            reasons.append(
                f"HAProxy routes writes to more than one server ({_names(routed)}): only the "
                "leader should get them."
            )
    if view.patroni_answered:
        standbys = _standbys(view)
        reasons += [p for m in standbys if (p := _standby_problem(m, view))]
        synchronous = [m for m in standbys if role_of(m) == SYNC_REPLICA and not m.fenced]
        if view.synchronous and leader is not None and standbys and not synchronous:
            reasons.append(NO_SYNC_STANDBY)
    else:
        # Without Patroni only the sentinel's own record is known about the standbys.
        reasons += [_fenced(m) for m in view.members if m.fenced]
    reasons += [p for m in view.members if (p := _disk_problem(m))]
    return reasons


def _disk_problem(member: MemberView) -> str | None:
    """The member's data directory disk below DISK_LOW_FRACTION free, in one sentence."""
    if member.disk is None:
        return None
    mount, free, total = member.disk
    if total <= 0 or free / total >= DISK_LOW_FRACTION:
        return None
    how = "is full" if free < DISK_FULL_BYTES else "is nearly full"
    return (
        f"{member.name}'s data directory disk ({mount}) {how}: {size_text(free)} free of "
        f"{size_text(total)}; PostgreSQL cannot grow tables nor write new WAL once it is full."
    )


def _standby_problem(member: MemberView, view: ClusterView) -> str | None:
    """The one sentence that says what is wrong with a non-leader member, or None."""
    if member.fenced:
        return _fenced(member)
    if member.patroni_role is None:
        return (
            f"{member.name} is missing from Patroni's members: its Patroni is stopped or cut off."
        )
    if not _streams(member):
        return (
            f"{member.name} does not stream from the primary "
            f"(Patroni: {member.patroni_state or 'unknown'}): it falls behind and is no safe "
            "failover target."
        )
    # Above, not at, the threshold: the same comparison as the lag events (`observe`).
    if member.lag_bytes is not None and member.lag_bytes > view.lag_threshold_bytes:
        seconds = f", {member.lag_seconds:.1f} s" if member.lag_seconds is not None else ""
        return (
            f"{member.name} lags {_size(member.lag_bytes)}{seconds} behind the primary "
            f"(threshold {_size(view.lag_threshold_bytes)})."
        )
    if view.proxy_answered and member.proxy_ro is not None and not is_up(member.proxy_ro):
        return f"{member.name} streams but HAProxy sends it no reads ({member.proxy_ro})."
    return None


def _fenced(member: MemberView) -> str:
    return f"{member.name} is fenced (shut out by the sentinel): rebuild it as a standby."


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def _clip(message: str) -> str:
    if len(message) <= MAX_ALARM_MESSAGE:
        return message
    return message[: MAX_ALARM_MESSAGE - 1] + "…"
