"""The lint rules: each a pure function of a `ConfigSnapshot` returning its findings.

A rule that cannot judge (the snapshot lacks what it needs: no proxy, the WAL rate not
measured) returns nothing rather than guessing; a rule that passes returns nothing too. Every
finding says what is wrong (`message`) and what happens in a failure because of it
(`consequence`), so the admin can weigh it without knowing Patroni's internals.
"""

import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}

# Patroni probes the other members with a fixed 2 s timeout before it promotes (DESIGN §2).
PATRONI_PROBE_S = 2.0
# HAProxy's own defaults when a section names no timing (HAProxy manual, "inter", "fall", "rise").
HAPROXY_DEFAULT_INTER_S, HAPROXY_DEFAULT_FALL, HAPROXY_DEFAULT_RISE = 2.0, 3, 2
# Above this, HAProxy's rise alone adds noticeably to every failover (HA Center ships 2 s).
SLOW_RISE_S = 3.0
# An async failover may lose up to maximum_lag_on_failover bytes; at or above this many seconds
# of the measured write rate that loss is worth naming.
LOSS_WINDOW_NOTE_S = 60.0


@dataclass(frozen=True)
class Finding:
    """One thing the lint found."""

    rule: str  # stable identifier of the rule, e.g. "lease_timing"
    severity: str  # ERROR | WARNING | INFO
    message: str  # what is configured, in one sentence
    consequence: str  # what happens in a failure because of it

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class HaproxyTiming:
    """How HAProxy checks the servers of the backend that sends writes to the primary."""

    inter_s: float
    fall: int
    rise: int
    shutdown_sessions: bool  # `on-marked-down shutdown-sessions`: clients cut when a server goes

    @property
    def mark_down_s(self) -> float:
        """How long clients are still sent to a server after it stopped being primary."""
        return self.inter_s * self.fall

    @property
    def mark_up_s(self) -> float:
        """How long a new primary is kept from clients after it started answering as one."""
        return self.inter_s * self.rise


@dataclass(frozen=True)
class HbaRule:
    """One pg_hba rule as PostgreSQL reads it (pg_hba_file_rules), in file order."""

    type: str  # local, host, hostssl, hostnossl, ...
    databases: tuple[str, ...]
    users: tuple[str, ...]
    address: str  # a CIDR, "all", "samehost", "samenet", a host name; "" for local
    method: str


@dataclass(frozen=True)
class ConfigSnapshot:
    """What the rules look at. Anything left at None (or empty) was not read: its rules are
    skipped."""

    source: str = "live"  # "live" (read from the servers) or "generated" (what setup writes)
    ttl: int | None = None
    loop_wait: int | None = None
    retry_timeout: int | None = None
    maximum_lag_on_failover: int | None = None
    synchronous_mode: bool = False
    synchronous_mode_strict: bool = False
    members: dict[str, str] = field(default_factory=dict)  # database member name -> address
    replication_user: str = "replicator"
    hba: tuple[HbaRule, ...] | None = None  # the effective rules of one database node
    haproxy: HaproxyTiming | None = None  # the write backend's checks; None: no proxy read
    wal_bytes_per_s: float | None = None  # measured on the primary over a few seconds
    watchdog: dict[str, str] = field(default_factory=dict)  # member -> mode (off, automatic...)
    watchdog_device: dict[str, bool] = field(default_factory=dict)  # member -> /dev/watchdog
    clock_offsets: dict[str, float] = field(default_factory=dict)  # host -> s ahead of console
    etcd_members: tuple[tuple[str, str], ...] | None = None  # (member name, host address)
    patroni_versions: dict[str, str] = field(default_factory=dict)  # member -> "3.0.2"


def lease_timing(s: ConfigSnapshot) -> list[Finding]:
    """Patroni's own rule: a loop plus two DCS retries must fit in the leader lease."""
    if None in (s.ttl, s.loop_wait, s.retry_timeout):
        return []
    need = s.loop_wait + 2 * s.retry_timeout
    if need <= s.ttl:
        return []
    return [
        Finding(
            "lease_timing",
            ERROR,
            f"loop_wait + 2 × retry_timeout = {s.loop_wait} + 2 × {s.retry_timeout} = {need} s "
            f"is more than ttl {s.ttl} s.",
            "A primary that is still retrying a slow etcd can lose its leader lease before it "
            "gives up and demotes itself: a standby promotes beside a primary that still takes "
            "writes (split brain), and those writes are lost when it is rewound.",
        )
    ]


def haproxy_timing(s: ConfigSnapshot) -> list[Finding]:
    """HAProxy's checks against Patroni's lease: how long clients go to a primary that is not
    one any more, and how long they are kept from the new one."""
    h = s.haproxy
    if h is None:
        return []
    found = []
    if not h.shutdown_sessions:
        found.append(
            Finding(
                "haproxy_timing",
                WARNING,
                "The write backend lacks `on-marked-down shutdown-sessions`.",
                "When the primary is demoted or fenced, clients already connected through the "
                "proxy stay connected to it and keep sending statements to a read-only (or "
                "isolated) node until their own timeout, instead of reconnecting to the new one.",
            )
        )
    if s.ttl is not None and h.mark_down_s >= s.ttl:
        found.append(
            Finding(
                "haproxy_timing",
                ERROR,
                f"HAProxy marks a primary down after inter {h.inter_s:g} s × fall {h.fall} = "
                f"{h.mark_down_s:g} s, not less than ttl {s.ttl} s.",
                "After a failover the old primary stays in the write backend for "
                f"{h.mark_down_s:g} s: clients are sent to a node that lost its lease while "
                "the new primary already takes writes.",
            )
        )
    if h.mark_up_s > SLOW_RISE_S:
        outage = f"≈ {s.ttl + PATRONI_PROBE_S + h.mark_up_s:g} s" if s.ttl else "longer"
        found.append(
            Finding(
                "haproxy_timing",
                WARNING,
                f"HAProxy routes to a new primary only after inter {h.inter_s:g} s × rise "
                f"{h.rise} = {h.mark_up_s:g} s of good checks.",
                f"Every failover keeps clients from the new primary {h.mark_up_s:g} s longer "
                f"than Patroni needs (failover {outage}: ttl + Patroni's 2 s probe + rise).",
            )
        )
    return found


def failover_lag(s: ConfigSnapshot) -> list[Finding]:
    """maximum_lag_on_failover against the measured WAL rate."""
    rate, limit = s.wal_bytes_per_s, s.maximum_lag_on_failover
    if rate is None or limit is None or rate <= 0:
        return []
    found = []
    # Patroni compares a standby with the position the leader last wrote to etcd, once a loop.
    per_loop = rate * ((s.loop_wait or 10) + 1)
    if per_loop > limit:
        found.append(
            Finding(
                "failover_lag",
                WARNING,
                f"maximum_lag_on_failover is {limit} bytes but the primary writes "
                f"{rate:,.0f} bytes/s ({per_loop:,.0f} bytes per Patroni loop).",
                "When the primary fails under this load its standbys are likely more than "
                "maximum_lag_on_failover behind, and Patroni promotes none of them: no "
                "automatic failover until someone fails over by hand.",
            )
        )
    elif not s.synchronous_mode and limit / rate >= LOSS_WINDOW_NOTE_S:
        found.append(
            Finding(
                "failover_lag",
                INFO,
                f"maximum_lag_on_failover is {limit} bytes, {limit / rate:,.0f} s of writes at "
                f"the measured {rate:,.0f} bytes/s.",
                "With async replication Patroni may promote a standby that far behind: up to "
                "that much acknowledged work is lost in a failover.",
            )
        )
    return found


def _address_matches(rule_address: str, address: str) -> bool:
    if rule_address in ("all", "samenet"):
        return True  # samenet: the cluster's members share a network (or nothing works)
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(rule_address, strict=False)
    except ValueError:
        return False  # a host name or samehost: not a peer's address as far as we can tell


def _replication_allowed(rules: tuple[HbaRule, ...], user: str, address: str) -> bool:
    """PostgreSQL's first-match rule for a replication connection from `address` as `user`."""
    for rule in rules:
        if rule.type not in ("host", "hostssl", "hostnossl"):
            continue
        # "all" does not cover replication connections; only the keyword does.
        if "replication" not in rule.databases:
            continue
        if not any(u in ("all", user) or u.startswith("+") for u in rule.users):
            continue
        if _address_matches(rule.address, address):
            return rule.method != "reject"
    return False


def hba_replication(s: ConfigSnapshot) -> list[Finding]:
    """Every member may open a replication connection: any of them may be the primary."""
    if s.hba is None or len(s.members) < 2:
        return []
    refused = sorted(
        name
        for name, address in s.members.items()
        if not _replication_allowed(s.hba, s.replication_user, address)
    )
    if not refused:
        return []
    return [
        Finding(
            "hba_replication",
            ERROR,
            f"pg_hba does not let {', '.join(refused)} connect for replication as "
            f"{s.replication_user}.",
            f"When {refused[0]} is a standby of another primary (after a failover or a "
            "switchover) it cannot stream or be rebuilt: the cluster runs without a working "
            "standby, and in synchronous mode writes may stop.",
        )
    ]


def synchronous_standby(s: ConfigSnapshot) -> list[Finding]:
    """synchronous_mode with a single standby: what happens to writes around a failover."""
    if not s.synchronous_mode:
        return []
    standbys = len(s.members) - 1
    if standbys < 1 and s.members:
        return [
            Finding(
                "synchronous_standby",
                WARNING,
                "synchronous_mode is on but the cluster has no standby.",
                "Nothing protects a commit, and there is nothing to fail over to.",
            )
        ]
    if standbys != 1:
        return []
    if s.synchronous_mode_strict:
        return [
            Finding(
                "synchronous_standby",
                WARNING,
                "synchronous_mode_strict with one standby.",
                "Whenever that standby is down or being rebuilt, writes on the primary stop; "
                "after a failover they stop until the old primary rejoins as the new one's "
                "synchronous standby.",
            )
        ]
    return [
        Finding(
            "synchronous_standby",
            WARNING,
            "synchronous_mode (not strict) with one standby.",
            "After a failover the new primary takes writes with no synchronous partner until "
            "the old primary rejoins; a second failure in that window loses acknowledged "
            "commits, and a primary that loses its standby writes on unprotected.",
        )
    ]


def watchdog(s: ConfigSnapshot) -> list[Finding]:
    """Patroni's watchdog: whether a hung Patroni can leave a writable primary behind."""
    if not s.watchdog:
        return []
    modes = {name: (mode or "off").lower() for name, mode in s.watchdog.items()}
    found = []
    for name, mode in sorted(modes.items()):
        if mode == "required" and s.watchdog_device.get(name) is False:
            found.append(
                Finding(
                    "watchdog",
                    ERROR,
                    f"{name} requires a watchdog but has no /dev/watchdog.",
                    f"Patroni on {name} cannot become leader: a failover to it never happens.",
                )
            )
        elif mode == "automatic" and s.watchdog_device.get(name) is False:
            found.append(
                Finding(
                    "watchdog",
                    WARNING,
                    f"{name} uses the watchdog if available, and has no /dev/watchdog.",
                    "It runs without one: see the watchdog finding for what that means.",
                )
            )
    if len(set(modes.values())) > 1:
        listed = ", ".join(f"{n} {m}" for n, m in sorted(modes.items()))
        found.append(
            Finding(
                "watchdog",
                WARNING,
                f"The members' watchdog modes differ: {listed}.",
                "Whether a hung primary is reset depends on which node is primary.",
            )
        )
    if all(mode in ("off", "false") for mode in modes.values()):
        found.append(
            Finding(
                "watchdog",
                INFO,
                "The watchdog is off on every member.",
                "If Patroni on the primary hangs while PostgreSQL runs, the primary keeps "
                "accepting writes after its lease expired and a standby was promoted (the "
                "freeze hazard); HA Center's sentinel fences such a node, softdog would reset it.",
            )
        )
    return found


def clock_skew(s: ConfigSnapshot, max_skew_s: float = 1.0) -> list[Finding]:
    """The nodes' clocks against each other."""
    if len(s.clock_offsets) < 2:
        return []
    ahead = max(s.clock_offsets, key=s.clock_offsets.get)
    behind = min(s.clock_offsets, key=s.clock_offsets.get)
    spread = s.clock_offsets[ahead] - s.clock_offsets[behind]
    if spread <= max_skew_s:
        return []
    return [
        Finding(
            "clock_skew",
            WARNING,
            f"{ahead}'s clock is {spread:.2f} s ahead of {behind}'s (more than {max_skew_s:g} s).",
            "Failover timings, replication lag in seconds and log times compared across nodes "
            "are off by that much; certificates may look not yet valid. (Leases are timed by "
            "etcd, so failover itself is not delayed.) Run NTP or chrony on every node.",
        )
    ]


def etcd_topology(s: ConfigSnapshot) -> list[Finding]:
    """An odd number of etcd members, on distinct hosts, so one host's loss keeps a quorum."""
    if s.etcd_members is None:
        return []
    count = len(s.etcd_members)
    found = []
    if count < 3:
        found.append(
            Finding(
                "etcd_topology",
                ERROR,
                f"etcd has {count} member(s).",
                "Losing one etcd host loses the quorum: no Patroni can renew its lease, the "
                "primary demotes itself and the cluster takes no writes until etcd is back.",
            )
        )
    elif count % 2 == 0:
        found.append(
            Finding(
                "etcd_topology",
                WARNING,
                f"etcd has an even number of members ({count}).",
                f"{count} members survive no more losses than {count - 1} do, but one more "
                "host's failure counts against the quorum.",
            )
        )
    quorum = count // 2 + 1
    for host, members in sorted(Counter(h for _, h in s.etcd_members).items()):
        if members < 2:
            continue
        left = count - members
        found.append(
            Finding(
                "etcd_topology",
                ERROR if left < quorum else WARNING,
                f"{members} of {count} etcd members run on one host, {host}.",
                f"Losing {host} takes {members} members at once"
                + (
                    ": the quorum is gone, the primary demotes itself and writes stop."
                    if left < quorum
                    else "; the quorum survives, but with no margin for another loss."
                ),
            )
        )
    return found


# Patroni before this re-creates its leader key with an unconditional write after its lease
# expired (fixed in 3.0.3, patroni PR #2689; DESIGN §2, the freeze hazard).
SAFE_PATRONI = (3, 0, 3)


def _version(text: str) -> tuple[int, ...] | None:
    parts = text.split(".")[:3]
    return tuple(int(p) for p in parts) if parts and all(p.isdigit() for p in parts) else None


def patroni_version(s: ConfigSnapshot) -> list[Finding]:
    """Members that run a Patroni with the leader-key overwrite (Debian 12 ships 3.0.2)."""
    old = {
        member: version
        for member, version in sorted(s.patroni_versions.items())
        if (parsed := _version(version)) is not None and parsed < SAFE_PATRONI
    }
    if not old:
        return []
    listed = ", ".join(f"{member} {version}" for member, version in old.items())
    return [
        Finding(
            "patroni_version",
            ERROR,
            f"Patroni older than 3.0.3 runs on {listed}.",
            "A primary that freezes (or loses etcd) past its lease and comes back rewrites the "
            "leader key over the new primary's: two primaries take writes and one side's are "
            "lost (measured on Debian 12's 3.0.2: tens of thousands of acknowledged rows, with "
            "synchronous_mode too). Upgrade Patroni to 3.0.3 or later (4.x from PyPI).",
        )
    ]


RULES: tuple[Callable[[ConfigSnapshot], list[Finding]], ...] = (
    lease_timing,
    haproxy_timing,
    failover_lag,
    hba_replication,
    synchronous_standby,
    watchdog,
    clock_skew,
    etcd_topology,
    patroni_version,
)


def lint(snapshot: ConfigSnapshot, *, max_clock_skew_s: float = 1.0) -> list[Finding]:
    """Every rule's findings, errors first."""
    found: list[Finding] = []
    for rule in RULES:
        if rule is clock_skew:
            found += clock_skew(snapshot, max_clock_skew_s)
        else:
            found += rule(snapshot)
    return sorted(found, key=lambda f: SEVERITY_ORDER[f.severity])
