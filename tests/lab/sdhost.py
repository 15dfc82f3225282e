"""What makes each systemd lab host itself: its name, addresses, machine-id, keys.

Written through the host's mounted overlay root before it boots, so every file lands on the
host's own disk; machine-id and the SSH host key are made once per disk (they are the server's
identity), the rest follows the lab's topology on every boot.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import hostfs, rootfs
from ._util import LabError
from .network import PREFIX_LEN

MACHINE_PREFIX = "hcsd-"


@dataclass(frozen=True)
class SystemdHost:
    """One lab host: a container named ``hcsd-<name>`` whose disk lives in ``datadir``."""

    name: str
    address: str
    datadir: Path

    @property
    def machine(self) -> str:
        """nspawn machine name; prefixed so the machine-side veth ``vb-hcsd-...`` is ours."""
        return f"{MACHINE_PREFIX}{self.name}"

    @property
    def veth(self) -> str:
        """Machine-side end of the host's network cable (on the bridge)."""
        return f"vb-{self.machine}"

    @property
    def upper(self) -> Path:
        """The host's disk: everything it changed relative to the image."""
        return self.datadir / "upper"

    @property
    def merged(self) -> Path:
        """Where the host's root file system is mounted on the machine while the lab is up."""
        return self.datadir / "merged"

    @property
    def host_key_pub(self) -> Path:
        """Public half of the host key sshd serves (readable also while the lab is down)."""
        return self.upper / "etc" / "ssh" / "ssh_host_ed25519_key.pub"


def _inside(root: Path, path: str) -> Path:
    """``path`` of the host whose root is ``root``, refusing one that symlinks out of it."""
    target = root / path.lstrip("/")
    if not target.parent.resolve().is_relative_to(root.resolve()):
        raise LabError(f"{path} on {root} leads outside the host")
    return target


def _put(
    root: Path, path: str, text: str, mode: int = 0o644, owner: tuple[int, int] = (0, 0)
) -> None:
    """Write ``text`` to ``path`` inside the host's root ``root`` (never through a symlink)."""
    target = _inside(root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    target.write_text(text)
    os.chown(target, *owner)
    os.chmod(target, mode)


def _user_ids(root: Path, user: str) -> tuple[int, int]:
    """uid and gid of ``user`` in the host's /etc/passwd."""
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise LabError(f"no user {user} in the image")


def write_identity(h: SystemdHost, peers: dict[str, str], public_key: str) -> None:
    """Write the host's name, addresses, machine-id, host key and authorized keys into its root.

    Runs through the mounted overlay before boot, so every file lands on the host's disk;
    machine-id and the host key are made once per disk, the rest follows the topology.
    """
    m = h.merged
    _put(m, "/etc/hostname", f"{h.name}\n")
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", ""]
    lines += [f"{address}\t{name}" for name, address in peers.items()]
    _put(m, "/etc/hosts", "\n".join(lines) + "\n")
    machine_id = m / "etc" / "machine-id"
    if machine_id.read_text().strip() in ("", "uninitialized"):
        _put(m, "/etc/machine-id", f"{uuid.uuid4().hex}\n", 0o444)
    network = (
        "# Written by the HA Center lab: the host's address on the lab bridge and no default\n"
        "# route, so it reaches the other hosts and 198.19.0.1 but never the outside.\n"
        f"[Match]\nName=host0\n\n[Network]\nAddress={h.address}/{PREFIX_LEN}\n"
        "LinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    )
    _put(m, "/etc/systemd/network/10-hclab.network", network)
    host_key = m / "etc" / "ssh" / "ssh_host_ed25519_key"
    if not host_key.exists():  # made here so the lab knows the fingerprint clients will see
        hostfs.ensure_keypair(host_key, f"root@{h.name}")
    for user, home in (("root", "/root"), (rootfs.ADMIN_USER, f"/home/{rootfs.ADMIN_USER}")):
        ids = _user_ids(m, user)
        ssh_dir = _inside(m, f"{home}/.ssh/authorized_keys").parent
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(ssh_dir, *ids)
        _put(m, f"{home}/.ssh/authorized_keys", f"{public_key}\n", 0o600, ids)
