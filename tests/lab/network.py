"""The lab network: bridge ``hclab0`` in the root namespace, one netns + veth pair per host.

Everything here touches only names that start with ``hclab`` / ``hcv-`` and the 198.18.0.0/24 lab
network, so it can never disturb the machine's own interfaces.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path

from ._util import LabError, run, wait_for

BRIDGE = "hclab0"
BRIDGE_ADDRESS = "198.18.0.1"
PREFIX_LEN = 24
NETNS_PREFIX = "hclab-"
VETH_PREFIX = "hcv-"
NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")


def link_exists(name: str) -> bool:
    """Whether a network interface ``name`` exists in the root namespace."""
    return (SYS_NET / name).exists()


def lab_netns() -> list[str]:
    """Names of every lab network namespace currently present (ours, from this or a crashed run)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(NETNS_PREFIX))


def lab_veths() -> list[str]:
    """Root-side veth ends the lab left in the root namespace."""
    if not SYS_NET.is_dir():
        return []
    return sorted(p.name for p in SYS_NET.iterdir() if p.name.startswith(VETH_PREFIX))


def netns_pids(netns: str) -> list[int]:
    """Pids of processes whose network namespace is ``netns``.

    Same answer as ``ip netns pids`` but read straight from /proc: it is polled in tight loops
    during power-off and teardown, where forking ``ip`` each time would dominate the wait.
    """
    try:
        st = os.stat(NETNS_DIR / netns)
    except FileNotFoundError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ns = os.stat(f"/proc/{entry}/ns/net")
        except OSError:  # gone meanwhile, or a zombie without namespaces
            continue
        if (ns.st_ino, ns.st_dev) == (st.st_ino, st.st_dev):
            pids.append(int(entry))
    return sorted(pids)


def kill_pids(pids: list[int]) -> None:
    """SIGKILL each pid, ignoring those that already exited."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def init_pid(netns: str) -> int | None:
    """Machine pid of the PID-namespace init (a host's PID 1) running in ``netns``, if any."""
    for pid in netns_pids(netns):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            # "NSpid: <machine pid> 1" is PID 1 of a namespace one level below ours; deeper
            # namespaces a host makes itself have more fields and are not the host's init.
            if line.startswith("NSpid:") and line.split()[2:] == ["1"]:
                return pid
    return None


def stop_netns_processes(netns: str, timeout: float) -> None:
    """Kill everything running in ``netns``: its init first, then any stragglers.

    Killing the init first makes the kernel kill and reap the whole PID namespace, and lets the
    ``unshare`` parent see its child die; killing all at once would orphan the init to the
    machine's PID 1, which may reap zombies only lazily.
    """
    pid = init_pid(netns)
    if pid is not None:
        kill_pids([pid])
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: not netns_pids(netns), min(timeout, 2.0), message="init to exit")
    # unshare and nsenter parents live outside the PID namespace and usually exit by themselves
    kill_pids(netns_pids(netns))
    wait_for(lambda: not netns_pids(netns), timeout, message=f"processes of {netns} to exit")


def listen_inodes(pid: int, address: str, port: int = 22) -> set[str]:
    """Socket inodes listening on ``address:port`` in the network namespace of ``pid``.

    Read from /proc/<pid>/net/tcp so readiness checks send no packet and leave no sshd log noise.
    """
    want = "".join(f"{int(o):02X}" for o in reversed(address.split("."))) + f":{port:04X}"
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {f[9] for f in (line.split() for line in lines) if f[1] == want and f[3] == "0A"}


def _set_sysctl(path: str, value: str) -> None:
    # Best effort: IPv6 off on lab links only keeps router/DAD chatter off the bridge.
    with contextlib.suppress(OSError):
        Path(path).write_text(value)


def bridge_filter_rule(action: str, bridge: str = BRIDGE) -> None:
    """Add (``-I``) or remove (``-D``) an iptables ACCEPT for traffic bridged inside ``bridge``.

    With br_netfilter loaded and ``bridge-nf-call-iptables=1`` bridged frames traverse the root
    namespace's FORWARD chain, where a DROP policy (Docker sets one) would cut hosts off from
    each other. The rule only matches frames entering and leaving the bridge.
    """
    flag = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    iptables = shutil.which("iptables")
    if iptables is None or not flag.exists() or flag.read_text().strip() != "1":
        return
    rule = ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]
    present = run([iptables, "-w", "-C", *rule], check=False).returncode == 0
    if (action == "-I" and not present) or (action == "-D" and present):
        run([iptables, "-w", action, *rule], check=False)


def ensure_bridge(bridge: str = BRIDGE, address: str = BRIDGE_ADDRESS) -> None:
    """Create and address a lab bridge (the netns lab's by default) unless it is already there."""
    if not link_exists(bridge):
        run(["ip", "link", "add", bridge, "type", "bridge"])
    _set_sysctl(f"/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6", "1")
    addrs = run(["ip", "-4", "-o", "addr", "show", "dev", bridge]).stdout
    if f" {address}/{PREFIX_LEN} " not in addrs:
        run(["ip", "addr", "add", f"{address}/{PREFIX_LEN}", "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])
    bridge_filter_rule("-I", bridge)


def add_host_link(netns: str, veth: str, address: str) -> None:
    """Create ``netns`` wired to the bridge: ``veth`` outside, ``eth0`` with ``address`` inside."""
    run(["ip", "netns", "add", netns])
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
    _set_sysctl(f"/proc/sys/net/ipv6/conf/{veth}/disable_ipv6", "1")
    run(["ip", "link", "set", veth, "master", BRIDGE, "up"])
    inside = ["ip", "-n", netns]
    run([*inside, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", "eth0"])
    run([*inside, "link", "set", "lo", "up"])
    run([*inside, "link", "set", "eth0", "up"])


def set_host_link(netns: str, up: bool) -> None:
    """Plug (``up``) or unplug the host's ``eth0`` from inside its namespace, like a cable."""
    run(["ip", "-n", netns, "link", "set", "eth0", "up" if up else "down"])


def host_link_is_up(netns: str) -> bool:
    """Whether the host's ``eth0`` is administratively up."""
    out = run(["ip", "-n", netns, "-o", "link", "show", "eth0"], check=False).stdout
    if "<" not in out:
        return False
    return "UP" in out.split("<", 1)[1].split(">", 1)[0].split(",")


def _leftovers() -> list[str]:
    left = [f"netns {n}" for n in lab_netns()] + [f"link {v}" for v in lab_veths()]
    if link_exists(BRIDGE):
        left.append(f"link {BRIDGE}")
    return left


def teardown(timeout: float = 10.0) -> None:
    """Remove every lab process, veth, namespace and the bridge; a no-op when nothing is there.

    Order matters: namespace deletion is asynchronous, so killing the processes and deleting the
    veth explicitly first is what lets an immediately following ``up`` recreate the same names.
    """
    namespaces = lab_netns()
    for ns in namespaces:  # every init first: the PID namespaces then die in parallel
        kill_pids([pid for pid in [init_pid(ns)] if pid is not None])
    for ns in namespaces:
        stop_netns_processes(ns, timeout)
    deadline = time.monotonic() + timeout
    while True:
        for veth in lab_veths():
            run(["ip", "link", "del", veth], check=False)
        for ns in lab_netns():
            run(["ip", "netns", "del", ns], check=False)
        if link_exists(BRIDGE):
            run(["ip", "link", "del", BRIDGE], check=False)
        left = _leftovers()
        if not left:
            break
        if time.monotonic() >= deadline:
            raise LabError(f"lab teardown left: {', '.join(left)}")
        time.sleep(0.05)
    bridge_filter_rule("-D")


def reachable(address: str, port: int = 22, timeout: float = 1.0) -> bool:
    """Whether a TCP connection from the console side to ``address:port`` succeeds."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False
