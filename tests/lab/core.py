"""The :class:`Lab`: throwaway "servers" made of Linux namespaces, reached by SSH (DESIGN §4)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import hostfs, network
from ._util import SYSTEM_PATH, LabError, run, wait_for
from .base import STOP_TIMEOUT, LabBase

DEFAULT_ROOT = "/var/lib/hclab"
HOSTINIT = Path(__file__).with_name("hostinit.sh")
PROXY_NAME = "proxy"
SUBNET = "198.18.0"
PROXY_OCTET = 10
#: A host on the lab network that is in no cluster (``Lab(outsider=True)``): the stranger whose
#: connections the host firewall must stop. Fixed address, above any database host's.
OUTSIDER_NAME = "outsider"
OUTSIDER_OCTET = 50
#: A second proxy for clusters with a floating address (``Lab.add_second_proxy``), and that
#: address (nobody's own: keepalived puts it on whichever proxy holds it).
PROXY2_NAME = "proxy2"
PROXY2_OCTET = 13
VIRTUAL_IP = f"{SUBNET}.100"
BOOT_TIMEOUT = 15.0
REQUIRED_TOOLS = ("ip", "unshare", "nsenter", "ssh-keygen", "mount", "useradd", "chpasswd")


@dataclass(frozen=True)
class LabHost:
    """One lab host: a network namespace with its own PID/UTS/IPC/mount namespaces and sshd."""

    name: str
    address: str
    netns: str
    veth: str
    datadir: Path

    @property
    def host_key_pub(self) -> Path:
        """Public half of the host key sshd serves (survives power cycles, replaced by rekey)."""
        return self.datadir / "ssh" / "ssh_host_ed25519_key.pub"


class Lab(LabBase):
    """A proxy host plus ``n_db`` database hosts on bridge ``hclab0`` (198.18.0.0/24).

    Host data lives in ``<root>/<host>/`` and survives ``down()`` unless asked otherwise; the lab
    SSH key (``<root>/lab_key``) is generated once and kept. Every method that takes ``name``
    accepts ``"proxy"`` or ``"node1"``..``"nodeN"``. Needs root.
    """

    # the host's PID, mount, UTS, IPC and network namespaces (it has no user or cgroup one)
    NSENTER = ("-p", "-m", "-u", "-i", "-n")

    def __init__(
        self, n_db: int = 2, root: str | os.PathLike[str] = DEFAULT_ROOT, outsider: bool = False
    ) -> None:
        if not 1 <= n_db <= 200:
            raise ValueError("n_db must be between 1 and 200")
        if outsider and PROXY_OCTET + n_db >= OUTSIDER_OCTET:
            raise ValueError(f"with an outsider (.{OUTSIDER_OCTET}), n_db is at most 39")
        self.n_db = n_db
        self.root = Path(root)
        names = [PROXY_NAME] + [f"node{i}" for i in range(1, n_db + 1)]
        self.hosts: list[LabHost] = [self._host(n, PROXY_OCTET + i) for i, n in enumerate(names)]
        # Booted with the others but kept out of ``hosts``: clusters are made of ``hosts``.
        self.extra_hosts = (self._host(OUTSIDER_NAME, OUTSIDER_OCTET),) if outsider else ()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.last_up_seconds: float | None = None
        self.last_down_seconds: float | None = None

    def _host(self, name: str, octet: int) -> LabHost:
        return LabHost(
            name=name,
            address=f"{SUBNET}.{octet}",
            netns=f"{network.NETNS_PREFIX}{name}",
            veth=f"{network.VETH_PREFIX}{name}",
            datadir=self.root / name,
        )

    @property
    def outsider(self) -> LabHost:
        """The host in no cluster (``Lab(outsider=True)``), at .50."""
        if not self.extra_hosts:
            raise LabError("this lab has no outsider; make it with Lab(outsider=True)")
        return self.extra_hosts[0]

    def add_second_proxy(self) -> LabHost:
        """Boot ``proxy2`` (.13, wiped disk) on the running lab, kept among the extra hosts: a
        cluster with two proxies takes it. Needs a lab of two database hosts (.13 is node3's)."""
        if self.n_db > 2:
            raise LabError("proxy2 takes .13, node3's address: use a lab of two database hosts")
        return self.add_spare_host(PROXY2_NAME, PROXY2_OCTET)

    def add_spare_host(self, name: str, octet: int) -> LabHost:
        """Boot a host `name` at .`octet` with a wiped disk on the running lab, kept among the
        extra hosts (a new server for a node change); booted again wiped if it exists."""
        if PROXY_OCTET <= octet <= PROXY_OCTET + self.n_db:
            raise LabError(f".{octet} belongs to one of the lab's hosts")
        existing = [h for h in self.extra_hosts if h.name == name]
        h = existing[0] if existing else self._host(name, octet)
        if existing and self.is_powered(h.name):
            self.power_off(h.name)
        shutil.rmtree(h.datadir, ignore_errors=True)
        self._prepare(h, {x.name: x.address for x in self.hosts})
        if not existing:
            self.extra_hosts = (*self.extra_hosts, h)
        if not os.path.exists(network.NETNS_DIR / h.netns):
            network.add_host_link(h.netns, h.veth, h.address)
        self._spawn(h)
        self._wait_booted(h)
        return h

    # -- lifecycle ------------------------------------------------------------------------

    @staticmethod
    def preflight() -> str | None:
        """Why the lab cannot run on this machine, or None when it can."""
        if os.geteuid() != 0:
            return "the lab needs root (network namespaces, mounts, useradd)"
        missing = [t for t in REQUIRED_TOOLS if shutil.which(t, path=SYSTEM_PATH) is None]
        if not os.path.exists("/usr/sbin/sshd"):
            missing.append("sshd (apt-get install -y openssh-server)")
        if shutil.which("visudo", path=SYSTEM_PATH) is None:
            missing.append("sudo (apt-get install -y sudo)")
        if missing:
            return f"missing tools: {', '.join(missing)}"
        try:
            run(["ip", "netns", "list"], timeout=10)
        except (LabError, OSError, subprocess.TimeoutExpired) as exc:
            return f"ip netns unavailable: {exc}"
        return None

    def up(self, fresh: bool = False) -> Lab:
        """Build the network and boot every host; returns once each sshd listens.

        Leftovers of a previous (crashed) run are removed first. ``fresh`` wipes every host's
        data (new host keys, empty disks) but never the lab key.
        """
        started = time.monotonic()
        problem = self.preflight()
        if problem:
            raise LabError(problem)
        self._teardown()
        self.root.mkdir(parents=True, exist_ok=True)
        # sshd StrictModes checks every dir above authorized_keys; hosts must read their config
        os.chmod(self.root, 0o755)  # noqa: S103
        hostfs.ensure_keypair(self.key_path, "hclab")
        hostfs.ensure_users()
        hostfs.ensure_mount_points()
        peers = {h.name: h.address for h in self.hosts}
        every = [*self.hosts, *self.extra_hosts]
        for h in every:
            if fresh:
                shutil.rmtree(h.datadir, ignore_errors=True)
            self._prepare(h, peers)
        network.ensure_bridge()
        for h in every:
            network.add_host_link(h.netns, h.veth, h.address)
        for h in every:  # boot all first, then wait: hosts start in parallel
            self._spawn(h)
        for h in every:
            self._wait_booted(h)
        self.last_up_seconds = time.monotonic() - started
        return self

    def down(self, keep_data: bool = True) -> None:
        """Stop every host and remove namespaces, veths and the bridge; safe when nothing is up.

        Host data dirs stay unless ``keep_data`` is False; the lab key always stays.
        """
        started = time.monotonic()
        self._teardown()
        if not keep_data:
            for h in [*self.hosts, *self.extra_hosts]:
                shutil.rmtree(h.datadir, ignore_errors=True)
        self.last_down_seconds = time.monotonic() - started

    def _teardown(self) -> None:
        network.teardown(STOP_TIMEOUT)
        for name in list(self._procs):
            self._reap(name)

    def _prepare(self, h: LabHost, peers: dict[str, str]) -> None:
        h.datadir.mkdir(parents=True, exist_ok=True)
        os.chmod(h.datadir, 0o755)  # noqa: S103 - same StrictModes rule
        hostfs.prepare_host_dirs(h.datadir)
        hostfs.write_host_config(h.datadir, h.name, h.address, peers, self.public_key_text)

    def _spawn(self, h: LabHost) -> None:
        log = open(h.datadir / "console.log", "ab")  # noqa: SIM115 - the child keeps its own fd
        try:
            self._procs[h.name] = subprocess.Popen(
                [
                    *("ip", "netns", "exec", h.netns, "unshare", "--uts", "--ipc", "--pid"),
                    *("--fork", "--mount-proc", "--kill-child=KILL"),
                    *("/bin/sh", str(HOSTINIT), h.name, str(h.datadir)),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # own session: a Ctrl-C aimed at pytest or the CLI must not power hosts off
                start_new_session=True,
                env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
            )
        finally:
            log.close()

    def _wait_booted(self, h: LabHost) -> None:
        def listening() -> bool:
            proc = self._procs.get(h.name)
            if proc is not None and proc.poll() is not None:
                tail = (h.datadir / "console.log").read_text(errors="replace")[-2000:]
                raise LabError(f"host {h.name} died while booting:\n{tail}")
            pid = self.init_pid(h.name)
            return pid is not None and bool(network.listen_inodes(pid, h.address))

        wait_for(listening, BOOT_TIMEOUT, message=f"sshd on {h.name} ({h.address}:22)")

    # -- per-host state and failures --------------------------------------------------------

    def pids(self, name: str) -> list[int]:
        """Machine pids of every process in the host's network namespace (``ip netns pids``)."""
        return network.netns_pids(self.host(name).netns)

    def init_pid(self, name: str) -> int | None:
        """Machine pid of the host's PID 1 (its sshd), or None when the host is off."""
        return network.init_pid(self.host(name).netns)

    def power_on(self, name: str) -> None:
        """Boot a powered-off host (same disk, same host key); no-op when it is running."""
        h = self.host(name)
        if not os.path.exists(network.NETNS_DIR / h.netns):
            raise LabError(f"lab is not up (no namespace {h.netns}); call up() first")
        if self.is_powered(name):
            return
        self._reap(name)
        self._spawn(h)
        self._wait_booted(h)

    def power_off(self, name: str) -> None:
        """Pull the plug: SIGKILL the host's PID 1, so the kernel kills everything it runs."""
        h = self.host(name)
        network.stop_netns_processes(h.netns, STOP_TIMEOUT)
        self._reap(h.name)

    def cut_network(self, name: str) -> None:
        """Unplug the host's cable (``eth0`` down inside): peers time out, the host sees no link."""
        network.set_host_link(self.host(name).netns, up=False)

    def restore_network(self, name: str) -> None:
        """Plug the host's cable back in."""
        network.set_host_link(self.host(name).netns, up=True)

    def network_is_cut(self, name: str) -> bool:
        """Whether :meth:`cut_network` is in effect for the host."""
        return not network.host_link_is_up(self.host(name).netns)

    def rekey(self, name: str, key_file: str | os.PathLike[str] | None = None) -> str:
        """Give the host a new sshd host key and restart sshd; return the new fingerprint.

        ``key_file`` installs that private key (e.g. a saved old one) instead of a fresh key.
        sshd restarts in place on SIGHUP (re-exec, same pid), so the host and whatever it runs
        stay up; a powered-off host simply boots with the new key.
        """
        h = self.host(name)
        key = h.datadir / "ssh" / "ssh_host_ed25519_key"
        key.unlink(missing_ok=True)
        key.with_suffix(".pub").unlink(missing_ok=True)
        if key_file is None:
            hostfs.ensure_keypair(key, f"hclab-{name}")
        else:
            shutil.copyfile(key_file, key)
            os.chmod(key, 0o600)
            pub = run(["ssh-keygen", "-y", "-f", str(key)]).stdout.strip()
            key.with_suffix(".pub").write_text(f"{pub} hclab-{name}\n")
        pid = self.init_pid(name)
        if pid is not None:
            before = network.listen_inodes(pid, h.address)
            os.kill(pid, signal.SIGHUP)
            wait_for(
                lambda: (now := network.listen_inodes(pid, h.address)) and now != before,
                BOOT_TIMEOUT,
                message=f"sshd on {name} to restart with its new key",
            )
        return self.host_key_fingerprint(name)

    def wipe(self, name: str, keep_ssh: bool = True) -> None:
        """Erase the host's disk (every private dir: PostgreSQL, etcd, Patroni, homes, /tmp...).

        ``keep_ssh`` keeps its host key (a disk replaced, same machine identity). A running host
        is powered off for the wipe and booted again after it.
        """
        h = self.host(name)
        was_on = self.is_powered(name)
        if was_on:
            self.power_off(name)
        for layer in ("fs", "upper", "work"):
            shutil.rmtree(h.datadir / layer, ignore_errors=True)
        if not keep_ssh:
            shutil.rmtree(h.datadir / "ssh", ignore_errors=True)
        self._prepare(h, {x.name: x.address for x in self.hosts})
        if was_on:
            self.power_on(name)

    # -- running things on hosts ------------------------------------------------------------

    def status(self) -> list[dict[str, object]]:
        """One dict per host: name, address, netns present, powered, link up, fingerprint."""
        rows: list[dict[str, object]] = []
        for h in self.hosts:
            present = os.path.exists(network.NETNS_DIR / h.netns)
            powered = present and self.is_powered(h.name)
            rows.append(
                {
                    "name": h.name,
                    "address": h.address,
                    "netns": present,
                    "powered": powered,
                    "link_up": present and network.host_link_is_up(h.netns),
                    "fingerprint": (
                        self.host_key_fingerprint(h.name) if h.host_key_pub.exists() else None
                    ),
                }
            )
        return rows
