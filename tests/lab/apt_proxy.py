"""The systemd lab's caching apt proxy: apt-cacher-ng on the bridge, for Debian's archives only.

Lab hosts have no route out, so ``apt-get`` works on them only through this proxy, exactly when
the product configures a cluster's "APT proxy" setting. The cache directory outlives the lab
(``/var/cache/hclab-systemd/apt-cacher-ng``), so CI runs and later runs download each package
once. The lab runs the daemon in the foreground as its own child with its own config dir; the
machine's apt-cacher-ng service (if any) is neither used nor needed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from . import sdmachine
from ._util import SYSTEM_PATH, LabError, wait_for
from .network import listen_inodes

BINARY = "/usr/sbin/apt-cacher-ng"
ADDRESS = sdmachine.BRIDGE_ADDRESS
PORT = 3142
CGROUP = "apt-proxy"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

#: ForceManaged refuses every request no Remap- rule matches, so the proxy never fetches from
#: anywhere but Debian's archives, whatever a host asks for. The rules name archives, not
#: suites: Debian 12's and 13's hosts (bookworm, trixie and their -security) go through alike.
CONFIG = """# Written by the HA Center lab (tests/lab/apt_proxy.py) on every start.
CacheDir: {cache}
LogDir: {workdir}/log
SupportDir: /usr/lib/apt-cacher-ng
PidFile: {workdir}/pid
SocketPath: {workdir}/socket
BindAddress: {address}
Port: {port}
ForeGround: 1
UnbufferLogs: 1
ForceManaged: 1
Remap-debrep: deb.debian.org/debian ftp.debian.org/debian ; http://deb.debian.org/debian/
Remap-secdeb: security.debian.org/debian-security deb.debian.org/debian-security ; \
http://deb.debian.org/debian-security/
"""


class AptProxy:
    """apt-cacher-ng listening on ``198.19.0.1:3142``; state in ``workdir``, cache in ``cache``."""

    def __init__(self, workdir: Path, cache: Path) -> None:
        self.workdir = workdir
        self.cache = cache
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """What hosts put in ``Acquire::http::Proxy``."""
        return f"http://{ADDRESS}:{PORT}"

    def is_running(self) -> bool:
        """Whether the proxy process (this run's or a leftover) is alive."""
        return bool(sdmachine.cgroup_pids(CGROUP))

    def start(self) -> None:
        """Start the daemon (the bridge address must exist) and wait until it accepts requests."""
        if not os.path.exists(BINARY):
            raise LabError(f"{BINARY} missing (apt-get install apt-cacher-ng)")
        conf = self.workdir / "conf"
        for d in (conf, self.workdir / "log", self.cache):
            d.mkdir(parents=True, exist_ok=True)
        (conf / "acng.conf").write_text(
            CONFIG.format(cache=self.cache, workdir=self.workdir, address=ADDRESS, port=PORT)
        )
        console = self.workdir / "console.log"
        with open(console, "ab") as log:
            self._proc = subprocess.Popen(
                sdmachine.in_cgroup_argv(CGROUP, [BINARY, "-c", str(conf)]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,  # a Ctrl-C at pytest must not stop it mid-download
                env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
            )
        proc = self._proc

        def listening() -> bool:
            if proc.poll() is not None:
                tail = console.read_text(errors="replace")[-1000:]
                raise LabError(
                    f"apt-cacher-ng exited {proc.returncode} (another one listening on port "
                    f"{PORT}? `systemctl stop apt-cacher-ng`):\n{tail}"
                )
            # the socket must be ours: a machine-wide apt-cacher-ng on 0.0.0.0:3142 would
            # answer a plain connect too, while ours is about to fail to bind
            return bool(listen_inodes(proc.pid, ADDRESS, PORT) & _socket_inodes(proc.pid))

        wait_for(listening, START_TIMEOUT, message=f"apt-cacher-ng on {ADDRESS}:{PORT}")

    def stop(self) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL) and remove its cgroup; safe when stopped.

        Also stops a daemon a crashed run left (found by its cgroup). SIGTERM first lets it
        close its cache files cleanly.
        """
        proc, self._proc = self._proc, None
        sdmachine.kill_pids(sdmachine.cgroup_pids(CGROUP), signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: not sdmachine.cgroup_pids(CGROUP), STOP_TIMEOUT, message="acng")
        sdmachine.kill_cgroup(CGROUP, STOP_TIMEOUT)
        if proc is not None:
            proc.wait(timeout=STOP_TIMEOUT)
        for leftover in ("pid", "socket"):
            (self.workdir / leftover).unlink(missing_ok=True)


def _socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets process ``pid`` holds open."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return set()
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes
