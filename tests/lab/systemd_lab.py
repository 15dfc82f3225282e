"""The :class:`SystemdLab`: real Debian servers booting systemd in ``systemd-nspawn`` containers.

Where the namespace :class:`~tests.lab.core.Lab` shares the machine's packages, these hosts are
what a customer hands over: a fresh minimal Debian 12 (or 13, ``release="13"``) with systemd as
PID 1, sshd, sudo and an admin user, and nothing of PostgreSQL, Patroni, etcd or HAProxy. The
product must install all of it, through apt, which works only via the lab's caching proxy
(``apt_proxy_url``): hosts have no route out. The public interface matches ``Lab`` wherever it
makes sense, so tests can take either.

Each host's root is an overlay: the shared image (see :mod:`tests.lab.rootfs`) below, the host's
"disk" ``<root>/<host>/upper`` above, kept across power cycles and ``down()``, wiped by ``fresh``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from . import apt_proxy, hostfs, rootfs, sdhost, sdmachine
from ._util import SYSTEM_PATH, LabError, run, wait_for
from .base import STOP_TIMEOUT, LabBase
from .network import listen_inodes, reachable
from .sdhost import SystemdHost

DEFAULT_ROOT = "/var/lib/hclab-systemd"
PROXY_NAME = "proxy"
SUBNET = "198.19.0"
PROXY_OCTET = 10
SPARE_OCTET = 20
BOOT_TIMEOUT = 90.0  # a second or a few; much longer for many hosts on a busy machine
SHUTDOWN_TIMEOUT = 60.0
UP_STATES = ("running", "degraded")
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - sshd's listening socket is looked for, nothing binds
REQUIRED_TOOLS = (
    *("systemd-nspawn", "mmdebstrap", "zstd", "tar", "nsenter", "ip", "mount", "umount"),
    "ssh-keygen",
)


class SystemdLab(LabBase):
    """A proxy host plus ``n_db`` database hosts on bridge ``hcsd0`` (198.19.0.0/24).

    ``proxy`` is 198.19.0.10, ``node1``..``nodeN`` .11 on; the machine is 198.19.0.1 and runs
    the apt proxy there. The lab SSH key (``<root>/lab_key``) logs in as root and ``hcops``
    (passwordless sudo). Needs root, systemd-nspawn, mmdebstrap and apt-cacher-ng.

    ``release`` is the hosts' Debian release, "12" (bookworm) or "13" (trixie). Labs of either
    release share the bridge, the addresses, the root and the apt cache: one is up at a time
    (``up`` tears down whichever runs), and a host's disk made on the other release is wiped.
    """

    def __init__(
        self,
        n_db: int = 2,
        root: str | os.PathLike[str] = DEFAULT_ROOT,
        cache: str | os.PathLike[str] = rootfs.DEFAULT_CACHE,
        release: str = rootfs.DEFAULT_RELEASE,
        spares: int = 0,
    ) -> None:
        if not 1 <= n_db <= 99:  # keeps every veth name within the kernel's 15 characters
            raise ValueError("n_db must be between 1 and 99")
        rootfs.release_of(release)  # ValueError for a release without a recipe
        self.release = release
        self.n_db = n_db
        self.root = Path(root)
        self.cache = Path(cache)
        names = [PROXY_NAME] + [f"node{i}" for i in range(1, n_db + 1)]
        self.hosts: list[SystemdHost] = [
            SystemdHost(n, f"{SUBNET}.{PROXY_OCTET + i}", self.root / n)
            for i, n in enumerate(names)
        ]
        # Servers of no cluster (``spare1``.. at .21 on): prepared by ``up`` but booted only by
        # ``power_on``, so labs that never use one pay nothing for it (a restore's new host).
        self.extra_hosts = tuple(
            SystemdHost(f"spare{i}", f"{SUBNET}.{SPARE_OCTET + i}", self.root / f"spare{i}")
            for i in range(1, spares + 1)
        )
        self._apt = apt_proxy.AptProxy(self.root / "apt-proxy", self.cache / "apt-cacher-ng")
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.last_up_seconds: float | None = None
        self.last_down_seconds: float | None = None
        #: seconds the last ``up`` spent building the image; None when it came from the cache
        self.last_image_build_seconds: float | None = None

    # -- topology -------------------------------------------------------------------------

    @property
    def apt_proxy_url(self) -> str:
        """The caching apt proxy hosts can use (``http://198.19.0.1:3142``), Debian only."""
        return self._apt.url

    # -- lifecycle ------------------------------------------------------------------------

    @staticmethod
    def preflight() -> str | None:
        """Why the lab cannot run on this machine, or None when it can."""
        if os.geteuid() != 0:
            return "the systemd lab needs root (containers, mounts, cgroups, a bridge)"
        missing = [t for t in REQUIRED_TOOLS if shutil.which(t, path=SYSTEM_PATH) is None]
        if not os.path.exists(apt_proxy.BINARY):
            missing.append("apt-cacher-ng")
        if missing:
            return f"missing tools: {', '.join(missing)} (bash tests/system-deps.sh)"
        overlay = "\toverlay\n" in Path("/proc/filesystems").read_text()
        # not loaded yet is fine: the first overlay mount loads the module
        if not overlay and run(["modprobe", "-n", "overlay"], check=False).returncode != 0:
            return "the kernel has no overlayfs"
        if not sdmachine.cgroup_roots():
            return "no name=systemd or cgroup2 hierarchy under /sys/fs/cgroup"
        return None

    def up(self, fresh: bool = False) -> SystemdLab:
        """Start the bridge and apt proxy, boot every host; return once all are fully up.

        Leftovers of a previous (crashed) run are removed first. The first run on a machine
        builds the image (about half a minute). ``fresh`` wipes every host's disk (new host
        keys, nothing installed) but never the lab key, the image or the apt cache.
        """
        started = time.monotonic()
        problem = self.preflight()
        if problem:
            raise LabError(problem)
        self._teardown()
        self.root.mkdir(parents=True, exist_ok=True)
        hostfs.ensure_keypair(self.key_path, "hclab-systemd")
        sdmachine.ensure_bridge()
        self._apt.start()
        building = time.monotonic()
        cached = rootfs.image_path(self.cache, self.release).exists()
        image = rootfs.ensure_image(self.cache, apt_proxy=self._apt.url, release=self.release)
        self.last_image_build_seconds = None if cached else time.monotonic() - building
        base = rootfs.ensure_base(image, self.root, self.release)
        peers = {h.name: h.address for h in (*self.hosts, *self.extra_hosts)}
        for h in (*self.hosts, *self.extra_hosts):
            self._prepare(h, peers, base, fresh)
        for h in self.hosts:  # boot all first, then wait: hosts start in parallel
            self._spawn(h)
        for h in self.hosts:
            self._wait_booted(h)
        self.last_up_seconds = time.monotonic() - started
        return self

    def down(self, keep_data: bool = True) -> None:
        """Kill every host and the apt proxy, unmount the roots, remove the bridge.

        Safe when nothing is up. Host disks stay unless ``keep_data`` is False; the lab key,
        the image and the apt cache always stay.
        """
        started = time.monotonic()
        self._teardown()
        if not keep_data:
            for h in (*self.hosts, *self.extra_hosts):
                shutil.rmtree(h.datadir, ignore_errors=True)
        self.last_down_seconds = time.monotonic() - started

    def _teardown(self) -> None:
        # found by name: also what a crashed run left
        hosts = [g for g in sdmachine.lab_cgroups() if g != apt_proxy.CGROUP]
        sdmachine.kill_cgroups(hosts, STOP_TIMEOUT)
        for name in list(self._procs):
            self._reap(name)
        self._apt.stop()
        sdmachine.unmount_all(self.root)
        sdmachine.remove_bridge(STOP_TIMEOUT)

    def _prepare(self, h: SystemdHost, peers: dict[str, str], base: Path, fresh: bool) -> None:
        stamp = h.datadir / "image"
        if fresh or (stamp.exists() and stamp.read_text().strip() != base.name):
            shutil.rmtree(h.datadir, ignore_errors=True)  # a disk made on another image: new server
        h.datadir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(f"{base.name}\n")
        sdmachine.mount_overlay(base, h.upper, h.datadir / "work", h.merged)
        sdhost.write_identity(h, peers, self.public_key_text)

    def _spawn(self, h: SystemdHost) -> None:
        argv = [
            *("systemd-nspawn", "--boot", f"--machine={h.machine}", f"--hostname={h.name}"),
            f"--directory={h.merged}",
            f"--network-bridge={sdmachine.BRIDGE}",
            # no machined/dbus on the machine; the lab moved it into a cgroup of its own
            *("--register=no", "--keep-unit", "--console=read-only"),
            # leave the host's own /etc alone: resolv.conf, localtime and journal are its own
            *("--resolv-conf=off", "--timezone=off", "--link-journal=no"),
        ]
        with open(h.datadir / "console.log", "ab") as log:
            self._procs[h.name] = subprocess.Popen(
                sdmachine.in_cgroup_argv(h.name, argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                # own session: a Ctrl-C aimed at pytest or the CLI must not power hosts off
                start_new_session=True,
                env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
            )

    def _wait_booted(self, h: SystemdHost) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT

        def alive_pid() -> int | None:
            proc = self._procs.get(h.name)
            if proc is not None and proc.poll() is not None:
                tail = (h.datadir / "console.log").read_text(errors="replace")[-2000:]
                raise LabError(f"host {h.name} died while booting:\n{tail}")
            return self.init_pid(h.name)

        def sshd_accepts() -> bool:
            pid = alive_pid()  # sockets are read from /proc first: no connection log noise
            if not pid or not (listen_inodes(pid, ANY_ADDRESS) | listen_inodes(pid, h.address)):
                return False
            return reachable(h.address)

        def booted() -> bool:
            return alive_pid() is not None and self.system_state(h.name) in UP_STATES

        wait_for(sshd_accepts, BOOT_TIMEOUT, message=f"sshd on {h.name} ({h.address}:22)")
        remaining = max(deadline - time.monotonic(), 1.0)
        wait_for(booted, remaining, interval=0.2, message=f"systemd on {h.name} to finish booting")

    # -- per-host state and failures --------------------------------------------------------

    def pids(self, name: str) -> list[int]:
        """Machine pids of the host's nspawn and every process its systemd manages."""
        return sdmachine.cgroup_pids(self.host(name).name)

    def init_pid(self, name: str) -> int | None:
        """Machine pid of the host's PID 1 (its systemd), or None when the host is off."""
        return sdmachine.namespace_init(self.pids(name))

    def system_state(self, name: str) -> str | None:
        """What ``systemctl is-system-running`` says on the host; None when it is off."""
        if not self.is_powered(name):
            return None
        out = self.exec(name, ["systemctl", "is-system-running"], check=False, timeout=15)
        return out.stdout.strip() or None

    def power_on(self, name: str) -> None:
        """Boot a powered-off host (same disk, same host key); no-op when it is running."""
        h = self.host(name)
        if not os.path.ismount(h.merged):
            raise LabError(f"lab is not up ({h.merged} not mounted); call up() first")
        if self.is_powered(name):
            return
        self._reap(name)
        sdmachine.kill_cgroup(h.name, STOP_TIMEOUT)  # an nspawn still cleaning up
        self._spawn(h)
        self._wait_booted(h)

    def power_off(self, name: str) -> None:
        """Pull the plug: SIGKILL the host's systemd, so the kernel kills everything it runs."""
        h = self.host(name)
        sdmachine.kill_cgroup(h.name, STOP_TIMEOUT)
        self._reap(h.name)

    def shutdown(self, name: str, timeout: float = SHUTDOWN_TIMEOUT) -> bool:
        """Power off cleanly (``systemctl poweroff``'s signal to systemd), hard after ``timeout``.

        Returns True when the host stopped by itself within ``timeout``.
        """
        h = self.host(name)
        pid = self.init_pid(name)
        clean = True
        if pid is not None:
            sdmachine.kill_pids([pid], signal.SIGRTMIN + 4)  # systemd: start poweroff.target
            try:  # nspawn exits, and its cgroup empties, once the container has powered off
                wait_for(lambda: not self.pids(name), timeout, 0.1, f"{name} to shut down")
            except TimeoutError:
                clean = False
        self.power_off(h.name)
        return clean

    def reboot(self, name: str) -> None:
        """Shut the host down cleanly and boot it again; returns once it is fully up."""
        self.shutdown(name)
        self.power_on(name)

    def cut_network(self, name: str) -> None:
        """Pull the host's cable at the switch (its veth down): peers time out, no carrier.

        A power cycle plugs it back in: the host gets a new cable when it boots.
        """
        sdmachine.set_link(self.host(name).veth, up=False)

    def restore_network(self, name: str) -> None:
        """Plug the host's cable back in."""
        sdmachine.set_link(self.host(name).veth, up=True)

    def network_is_cut(self, name: str) -> bool:
        """Whether :meth:`cut_network` is in effect for the (running) host."""
        veth = self.host(name).veth
        return sdmachine.link_exists(veth) and not sdmachine.link_is_up(veth)

    def memory_bytes(self, name: str) -> int:
        """Proportional set size of the host's processes (nspawn included), in bytes."""
        total = 0
        for pid in self.pids(name):
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            total += sum(
                int(ln.split()[1]) * 1024 for ln in rollup.splitlines() if ln.startswith("Pss:")
            )
        return total

    # -- running things on hosts ------------------------------------------------------------

    def status(self) -> list[dict[str, object]]:
        """One dict per host: name, address, powered, state, link up, fingerprint, memory."""
        rows: list[dict[str, object]] = []
        for h in self.hosts:
            powered = self.is_powered(h.name)
            rows.append(
                {
                    "name": h.name,
                    "address": h.address,
                    "powered": powered,
                    "state": self.system_state(h.name) if powered else None,
                    "link_up": powered and not self.network_is_cut(h.name),
                    "fingerprint": (
                        self.host_key_fingerprint(h.name) if h.host_key_pub.exists() else None
                    ),
                    "memory_mib": round(self.memory_bytes(h.name) / 2**20, 1),
                }
            )
        return rows
