"""The chaos suite's fenced fast path (issue 21): the faults only that profile runs, what a
fence leaves to heal, the agent's decisions read on the witness, and a watch for two writable
primaries.

The fast path runs on a cluster with `fast_failover` on and a Redfish fence device on each
database node (the lab BMC, tests/lab/bmc.py): the agent on the witness (the proxy) powers a
dead primary off through it and hands the leader key over at once. `faults.FAULTS` names
these faults (`fast_path=True`); each takes the round's `faults.Target`.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tests.lab._util import SYSTEM_PATH

if TYPE_CHECKING:
    from tests.chaos.faults import Target
    from tests.lab import Lab

#: The faults the fast path must win by a fence (and, with the fence broken, leave to the lease).
FAST_PATH_FAULTS = ("poweroff", "netcut", "freeze")
#: The faults after which nothing may be fenced.
NEVER_FENCED = ("witness_cut",)
#: The agent's program on the witness, as setup installs it (docs/fast-failover.md).
AGENT_PROGRAM = "/usr/local/lib/hacenter/fastpath.py"
#: The false positive "primary slow but alive": its PostgreSQL and Patroni stopped this long,
#: about as long as the agent's run of misses (5 probes of up to 2 x 0.3 s).
SLOW_PRIMARY_S = 2.5
#: The false positive "agent starved of CPU": the agent stopped this long, this many times,
#: running a second in between (each time it wakes up late).
STARVE_S, STARVE_TIMES = 3.0, 3
#: The witness's cable pulled this long: it sees every node dead, and is the minority.
WITNESS_CUT_S = 20


def _thaw(target: Target, host: str) -> None:
    """SIGCONT of the host's postgres processes, unless a fence powered the host off
    meanwhile (the fast path fences a frozen primary)."""
    if target.lab.is_powered(host):
        target.lab.exec(host, ["pkill", "-CONT", "-u", "postgres"], check=False)


def freeze_for(seconds: float) -> Callable[[Target], None]:
    """SIGSTOP of PostgreSQL and Patroni on the primary, SIGCONT `seconds` later."""

    def inject(target: Target) -> None:
        host = target.primary
        target.lab.exec(host, ["pkill", "-STOP", "-u", "postgres"])
        target.later(seconds, lambda: _thaw(target, host))

    return inject


def _agent(target: Target, signal: str) -> None:
    # "[/]…": the pattern matches the agent's command line, not pkill's (nor nsenter's) own.
    pattern = f"[/]{AGENT_PROGRAM[1:]} --config"
    target.lab.exec("proxy", ["pkill", f"-{signal}", "-f", pattern], check=False)


def _agent_starved(target: Target) -> None:
    """Stop the agent STARVE_TIMES times for STARVE_S (what a starved CPU does to it, longer
    than its run of misses), a second of running in between; in the background."""

    def starve() -> None:
        for _ in range(STARVE_TIMES):
            _agent(target, "STOP")
            time.sleep(STARVE_S)
            _agent(target, "CONT")
            time.sleep(1)

    thread = threading.Thread(target=starve, name="starve-agent")
    thread.start()
    target._timers.append(thread)


def _witness_cut(target: Target) -> None:
    target.lab.cut_network("proxy")


def _witness_back(target: Target) -> None:
    target.lab.restore_network("proxy")


def restore_fenced(lab: Lab, names: list[str]) -> list[str]:
    """What the operator does after a fence (issue 21: the node stays off until then): cable
    back and power on, for each host a fence (or the fault) left off; the names restored."""
    restored = []
    for name in names:
        if lab.network_is_cut(name) or not lab.is_powered(name):
            restored.append(name)
        if lab.network_is_cut(name):
            lab.restore_network(name)
        lab.power_on(name)  # no-op when it runs
    return restored


def fast_promises_broken(row: dict) -> list[str]:
    """The fast path's promises a round broke (issue 21's acceptance), from its recorded
    figures: with working fence devices, never two writable primaries, a fenced failover
    after FAST_PATH_FAULTS, nothing fenced after NEVER_FENCED, at most one after a false
    positive; with a broken fence, the agent declines and fences nothing (the lease fails
    over)."""
    decided = row.get("decided") or {}
    acted = decided.get("acted", 0)
    broken = []
    if row.get("path") == "fast":
        if row.get("two_writable"):
            broken.append("two PostgreSQL servers were writable at once")
        if row["fault"] in FAST_PATH_FAULTS:
            if acted != 1 or not row.get("failover"):
                broken.append(f"not one fenced failover (acted {acted} times)")
        elif row["fault"] in NEVER_FENCED:
            if acted:
                broken.append("a node was fenced")
        elif acted > 1:
            broken.append(f"fenced {acted} times")
    elif row.get("path") == "fence_broken" and (acted or not decided.get("declined")):
        broken.append(f"the agent did not decline (decided {decided})")
    return broken


# -- the agent's decisions, read on the witness ------------------------------------------------


def decisions_offset(lab: Lab, scope: str) -> int:
    """The decisions file's size now (0 before the agent's first decision)."""
    from clusters.monitoring.fastpath_decisions import DECISIONS_DIR

    path = f"{DECISIONS_DIR}/{scope}.jsonl"
    out = lab.exec("proxy", ["sh", "-c", 'stat -c %s -- "$1" 2>/dev/null || echo 0', "-", path])
    return int(out.stdout.strip() or 0)


def decisions_since(lab: Lab, scope: str, offset: int) -> list[dict]:
    """The agent's decisions written after `offset`, as the console parses them
    (clusters.monitoring.fastpath_decisions): outcome, sentence, timings, primary, candidate."""
    from clusters.monitoring.fastpath_decisions import DECISIONS_DIR, decision_parse

    path = f"{DECISIONS_DIR}/{scope}.jsonl"
    out = lab.exec("proxy", ["tail", "-c", f"+{offset + 1}", "--", path], check=False)
    decisions = []
    for line in out.stdout.splitlines():
        parsed = decision_parse(line)
        if parsed is not None:
            decisions.append(
                {
                    "at": parsed.at.isoformat(),
                    "outcome": parsed.outcome,
                    "primary": parsed.primary,
                    "candidate": parsed.candidate,
                    "sentence": parsed.sentence[:300],
                    "timings_ms": parsed.timings_ms,
                }
            )
    return decisions


# -- two writable primaries --------------------------------------------------------------------

IS_PRIMARY_SQL = "SELECT NOT pg_is_in_recovery()"


class WritableWatch(threading.Thread):
    """Asks every powered database host's PostgreSQL, from inside the host (its local socket:
    a cut cable does not hide it), every `interval_s` whether it is out of recovery; counts the
    passes where two or more were. A frozen server does not answer within the pass's timeout
    and counts as not writable (it cannot take a write either)."""

    def __init__(self, lab: Lab, hosts: list[str], interval_s: float = 0.5) -> None:
        super().__init__(daemon=True, name="writable-watch")
        self.lab, self.hosts, self.interval_s = lab, hosts, interval_s
        self.passes = 0
        self.two_writable: list[list[str]] = []  # the hosts of each such pass
        self._stop_event = threading.Event()

    def writable(self, host: str) -> bool:
        """Whether `host`'s PostgreSQL says it is out of recovery. Asked in the host's mount
        and PID namespaces but not its network namespace (a Unix socket needs none): a lab
        power-off (the BMC's) waits for every process in the host's network namespace to
        exit, and a question in flight there would slow the fence it measures."""
        pid = self.lab.init_pid(host)
        if pid is None:
            return False
        enter = ["nsenter", "-t", str(pid), "--mount", "--pid", "--wd=/", "--"]
        sql = ["runuser", "-u", "postgres", "--", "psql", "-h", "/run/postgresql", "-XAtqc"]
        try:
            out = subprocess.run(
                [*enter, "timeout", "1", *sql, IS_PRIMARY_SQL],
                capture_output=True,
                text=True,
                timeout=5,
                env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
            )
        except subprocess.TimeoutExpired:
            return False
        return out.returncode == 0 and out.stdout.strip() == "t"

    def run(self) -> None:
        while not self._stop_event.is_set():
            writable = [h for h in self.hosts if self.writable(h)]
            self.passes += 1
            if len(writable) > 1:
                self.two_writable.append(writable)
            self._stop_event.wait(self.interval_s)

    def stop(self) -> int:
        """Stop; the number of passes that found two writable primaries."""
        self._stop_event.set()
        self.join(30)
        return len(self.two_writable)
