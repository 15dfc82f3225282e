"""What the systemd lab changes on the machine: cgroups, the bridge ``hcsd0``, overlay mounts.

Every process the lab starts (each host's ``systemd-nspawn`` and the apt proxy) runs in a cgroup
of its own, ``hclab-sd-<name>``, in the name=systemd hierarchy and the unified (cgroup2) one when
mounted. That is how a later run finds and kills what a crashed run left, and how a host's
processes are told apart from everything else on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from . import network
from ._util import LabError, run, wait_for
from .network import SYS_NET, link_exists

CGROUP_PREFIX = "hclab-sd-"
BRIDGE = "hcsd0"
BRIDGE_ADDRESS = "198.19.0.1"

#: ``sh -c`` wrapper: move itself into the cgroups named by its arguments, then exec the command.
#: With ``--keep-unit`` nspawn stays in (and hands the container) the cgroup it starts in.
_ENTER_CGROUPS = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ >"$1/cgroup.procs" || exit 125; '
    'shift; n=$((n - 1)); done; exec "$@"'
)


# -- cgroups ------------------------------------------------------------------------------


def cgroup_roots() -> list[Path]:
    """Mount points of the hierarchies lab processes join: name=systemd (v1) and cgroup2.

    A cgroup v1 machine has ``/sys/fs/cgroup/systemd`` (plus ``unified`` in hybrid mode); a pure
    cgroup2 machine has only ``/sys/fs/cgroup``. Other v1 controllers are left alone.
    """
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fstype, _, options = post.split(" ", 2)
        mount_point = Path(pre.split()[4])
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options.split(",")):
            roots.append(mount_point)
    return sorted(set(roots), key=lambda p: (p.name != "systemd", str(p)))


def cgroup_dirs(name: str) -> list[Path]:
    """The cgroup directories of lab process group ``name`` (may not exist yet)."""
    return [root / f"{CGROUP_PREFIX}{name}" for root in cgroup_roots()]


def in_cgroup_argv(name: str, argv: list[str]) -> list[str]:
    """``argv`` wrapped so that it runs in lab cgroup ``name`` from its first instruction."""
    dirs = cgroup_dirs(name)
    if not dirs:
        raise LabError("no name=systemd or cgroup2 hierarchy mounted under /sys/fs/cgroup")
    for d in dirs:
        d.mkdir(exist_ok=True)
    return ["sh", "-c", _ENTER_CGROUPS, "sh", str(len(dirs)), *map(str, dirs), *argv]


def cgroup_pids(name: str) -> list[int]:
    """Machine pids of every process in lab cgroup ``name`` and the cgroups below it."""
    pids: set[int] = set()
    for top in cgroup_dirs(name):
        for dirpath, _, _ in os.walk(top):  # the container adds and removes cgroups meanwhile
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in Path(dirpath, "cgroup.procs").read_text().split())
    return sorted(pids)


def lab_cgroups() -> list[str]:
    """Names of every lab cgroup present in any hierarchy (this run's or a crashed run's)."""
    names = {
        d.name.removeprefix(CGROUP_PREFIX)
        for root in cgroup_roots()
        for d in root.glob(f"{CGROUP_PREFIX}*")
        if d.is_dir()
    }
    return sorted(names)


def namespace_init(pids: list[int]) -> int | None:
    """The one of ``pids`` that is PID 1 of a PID namespace one level below the machine's."""
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            # "NSpid: <machine pid> 1": a container's init. Its own nested namespaces (if a
            # host runs containers) have more fields; nspawn itself has only one.
            if line.startswith("NSpid:") and line.split()[2:] == ["1"]:
                return pid
    return None


def kill_pids(pids: list[int], sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to each pid, ignoring those that already exited."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def kill_cgroups(names: list[str], timeout: float) -> None:
    """SIGKILL everything in the lab cgroups ``names`` and remove them.

    Each container's init goes first, all at once: the kernel tears the containers down in
    parallel, and each nspawn, seeing its container gone, gets a moment to clean up (its lock
    files, its veth) and exit by itself. Whatever is left (such as the apt proxy) is killed next.
    """
    inits = {n: namespace_init(cgroup_pids(n)) for n in names}
    kill_pids([pid for pid in inits.values() if pid is not None])
    containers = [n for n, pid in inits.items() if pid is not None]
    with contextlib.suppress(TimeoutError):
        wait_for(
            lambda: not any(cgroup_pids(n) for n in containers),
            min(timeout, 3.0),
            message="nspawn to exit",
        )
    for n in names:
        kill_pids(cgroup_pids(n))
    for n in names:
        wait_for(lambda n=n: not cgroup_pids(n), timeout, message=f"processes of {n} to exit")
        remove_cgroup(n)


def kill_cgroup(name: str, timeout: float) -> None:
    """:func:`kill_cgroups` for one cgroup: a host's power cord, or a leftover's."""
    kill_cgroups([name], timeout)


def remove_cgroup(name: str) -> None:
    """Remove the (empty) cgroup tree of ``name``; sub-cgroups the container made go first."""
    for top in cgroup_dirs(name):
        for dirpath, _, _ in os.walk(top, topdown=False):  # children before their parent
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


# -- the bridge ---------------------------------------------------------------------------


def bridge_ports() -> list[str]:
    """Interfaces attached to the bridge (the machine-side veth of every running host)."""
    brif = SYS_NET / BRIDGE / "brif"
    return sorted(p.name for p in brif.iterdir()) if brif.is_dir() else []


def ensure_bridge() -> None:
    """Create bridge ``hcsd0`` with the machine's lab address unless it is already there."""
    network.ensure_bridge(BRIDGE, BRIDGE_ADDRESS)


def remove_bridge(timeout: float) -> None:
    """Delete the bridge and any veth still attached to it; a no-op when absent."""
    deadline = time.monotonic() + timeout
    while link_exists(BRIDGE):
        for port in bridge_ports():  # normally gone with their container's network namespace
            run(["ip", "link", "del", port], check=False)
        run(["ip", "link", "del", BRIDGE], check=False)
        if time.monotonic() >= deadline and link_exists(BRIDGE):
            raise LabError(f"could not remove bridge {BRIDGE}")
        time.sleep(0.05)
    network.bridge_filter_rule("-D", BRIDGE)


def set_link(name: str, up: bool) -> None:
    """Set a machine-side veth up or down: plugging or pulling a host's cable at the switch."""
    run(["ip", "link", "set", name, "up" if up else "down"])


def link_is_up(name: str) -> bool:
    """Whether interface ``name`` is administratively up."""
    try:
        flags = int((SYS_NET / name / "flags").read_text(), 16)
    except OSError:
        return False
    return bool(flags & 0x1)  # IFF_UP


# -- overlay mounts -----------------------------------------------------------------------


def mounts_under(root: Path) -> list[Path]:
    """Mount points below ``root``, deepest first (the order to unmount them in)."""
    prefix = str(root).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(Path(point))
    return sorted(set(points), key=lambda p: -len(p.parts))


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    """Mount an overlay of ``upper`` on read-only ``lower`` at ``target``."""
    for d in (upper, work, target):
        d.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    run(["mount", "-t", "overlay", "overlay", "-o", options, str(target)])


def unmount_all(root: Path) -> None:
    """Unmount every mount below ``root``; one still busy is detached lazily."""
    for point in mounts_under(root):
        if run(["umount", str(point)], check=False).returncode != 0:
            run(["umount", "--lazy", str(point)])  # a straggler holding it: detach now
