"""What both labs share: named hosts on a bridge (``proxy`` first, then ``node1``..``nodeN``), the
lab SSH key, the context manager, and running commands in a host without SSH. Each lab says how
a host boots, powers off and is entered (:attr:`NSENTER`)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import hostfs
from ._util import SYSTEM_PATH, LabError, run

STOP_TIMEOUT = 10.0


class LabBase:
    """Subclasses set ``hosts`` (proxy first), ``root`` and ``_procs`` (host name → the process
    that runs it) and implement the methods below that raise NotImplementedError."""

    #: nsenter's flags that put a command in all of a host's namespaces
    NSENTER: tuple[str, ...] = ("--all",)
    hosts: list[Any]
    #: hosts on the lab network that belong to no cluster (the netns lab's outsider)
    extra_hosts: tuple[Any, ...] = ()
    root: Path
    _procs: dict[str, subprocess.Popen[bytes]]

    # -- topology -------------------------------------------------------------------------

    @property
    def proxy(self) -> Any:
        """The HAProxy host (the subnet's .10)."""
        return self.hosts[0]

    @property
    def db_nodes(self) -> list[Any]:
        """The database hosts node1..nodeN (.11...)."""
        return self.hosts[1:]

    def host(self, name: str) -> Any:
        """The host called ``name`` (an extra host too); raises KeyError for unknown names."""
        every = [*self.hosts, *self.extra_hosts]
        for h in every:
            if h.name == name:
                return h
        raise KeyError(f"no lab host {name!r}; hosts: {[h.name for h in every]}")

    @property
    def key_path(self) -> Path:
        """Private ed25519 key that logs in on every host (root and the lab's users)."""
        return self.root / "lab_key"

    @property
    def private_key_text(self) -> str:
        """OpenSSH-format text of the lab private key (what a person pastes into the wizard)."""
        return self.key_path.read_text()

    @property
    def public_key_text(self) -> str:
        """The lab public key line."""
        return self.key_path.with_suffix(".pub").read_text().strip()

    # -- lifecycle ------------------------------------------------------------------------

    def up(self, fresh: bool = False) -> Self:
        raise NotImplementedError

    def down(self, keep_data: bool = True) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.up()
        except BaseException:
            self.down()  # __exit__ will not run for a failed __enter__
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def _reap(self, name: str) -> None:
        """Collect the exit of the process that ran the host (killed or powered off)."""
        proc = self._procs.pop(name, None)
        if proc is not None:
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # -- per-host state -------------------------------------------------------------------

    def init_pid(self, name: str) -> int | None:
        raise NotImplementedError

    def power_on(self, name: str) -> None:
        raise NotImplementedError

    def restore_network(self, name: str) -> None:
        raise NotImplementedError

    def network_is_cut(self, name: str) -> bool:
        raise NotImplementedError

    def is_powered(self, name: str) -> bool:
        """Whether the host is running (its PID 1 exists)."""
        return self.init_pid(name) is not None

    def heal(self) -> None:
        """Power every host on and plug every cable back (between tests)."""
        for h in self.hosts:
            self.power_on(h.name)
            if self.network_is_cut(h.name):
                self.restore_network(h.name)

    def host_key_fingerprint(self, name: str) -> str:
        """``SHA256:...`` of the host key the host's sshd serves (as ``ssh-keygen -lf`` prints)."""
        return hostfs.fingerprint(self.host(name).host_key_pub)

    # -- running things on hosts ------------------------------------------------------------

    def exec(
        self,
        name: str,
        argv: Sequence[str],
        check: bool = True,
        input: str | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as root inside the host (all its namespaces), without SSH.

        Output is captured as text; ``check`` raises :class:`LabError` on a non-zero exit.
        """
        pid = self.init_pid(name)
        if pid is None:
            raise LabError(f"host {name} is powered off")
        nsenter = ["nsenter", "-t", str(pid), *self.NSENTER, "--wd=/", "--"]
        env = {"PATH": SYSTEM_PATH, "HOME": "/root", "LANG": "C.UTF-8", "USER": "root"}
        return run([*nsenter, *argv], check=check, input=input, timeout=timeout, env=env)

    def ssh_argv(self, name: str, user: str = "root") -> list[str]:
        """``ssh`` argv logging into the host with the lab key, trusting any host key."""
        return [
            *("ssh", "-i", str(self.key_path), "-o", "StrictHostKeyChecking=no"),
            *("-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"),
            *("-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5"),
            f"{user}@{self.host(name).address}",
        ]
