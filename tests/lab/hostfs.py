"""What makes each lab host look like its own Debian server: private dirs, sshd config, users.

Every host shares the machine's installed packages and ``/etc/passwd``. ``/etc``, ``/opt`` and
``/var/log`` are overlays (the machine's copy below, the host's changes in
``<root>/<host>/upper/``): a host sees what the packages put there, and whatever the product
writes (``/etc/hacenter``, ``/opt/patroni``, ``/var/log/hacenter``...) is private and starts
absent, as on a fresh server, so a missing ``mkdir`` fails here too. The data paths a
PostgreSQL/etcd server writes to are the host's own directories, bind-mounted from
``<root>/<host>/fs/<path>``. ``hostinit.sh`` mounts both.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from ._util import LabError, run

#: Lab login users besides root, and their passwords (sshd checks /etc/shadow: UsePAM is off).
#: hcnosudo needs a password too: with UsePAM off sshd refuses even key logins to locked accounts.
USER_PASSWORDS = {"hcops": "hcops-lab-password", "hcnosudo": "hcnosudo-lab-password"}
SUDO_USER = "hcops"
SUDOERS_FILE = Path("/etc/sudoers.d/hcops")
#: Users whose per-host authorized_keys file holds the lab key.
KEY_USERS = ("root", *USER_PASSWORDS)


@dataclass(frozen=True)
class PrivateDir:
    """A path that each host sees as its own directory."""

    path: str
    owner: str = "root"
    mode: int = 0o755
    #: copy the machine's contents in when the host's copy is first made (package defaults)
    seed: bool = False


PRIVATE_DIRS: tuple[PrivateDir, ...] = (
    PrivateDir("/tmp", mode=0o1777),
    PrivateDir("/var/tmp", mode=0o1777),
    PrivateDir("/root", mode=0o700),
    # /home is per host so each user's ~/.ssh/authorized_keys is per host, like real servers.
    PrivateDir("/home"),
    PrivateDir("/var/lib/postgresql", owner="postgres"),
    PrivateDir("/etc/postgresql", owner="postgres"),
    PrivateDir("/var/log/postgresql", owner="postgres", mode=0o1775),
    PrivateDir("/var/lib/etcd", owner="etcd", mode=0o700),
    PrivateDir("/var/lib/patroni", owner="postgres", mode=0o750),
    PrivateDir("/var/lib/haproxy", seed=True),
    # What HA Center writes there (the fast-path agent and its decisions, the application's
    # callback): each server's own, or one host's files would show on every other.
    PrivateDir("/usr/local/lib/hacenter"),
    PrivateDir("/var/lib/hacenter"),
)
#: Trees each host sees as the machine's, with its own changes on top (overlayfs).
OVERLAY_DIRS = ("/etc", "/opt", "/var/log")
#: Mount points earlier lab versions made on the machine; removed when still empty, or
#: every host would find them there, as no fresh server has them.
OLD_MOUNT_POINTS = ("/etc/hacenter", "/opt/patroni", "/var/log/hacenter", "/etc/etcd")
#: Files each host sees as its own (generated from the topology on every ``up``).
PRIVATE_FILES = ("/etc/hosts", "/etc/hostname")


def _ids(owner: str) -> tuple[int, int]:
    """uid/gid of ``owner`` (its primary group), falling back to root when the user is absent."""
    try:
        pw = pwd.getpwnam(owner)
    except KeyError:
        return 0, 0
    return pw.pw_uid, pw.pw_gid


def ensure_mount_points() -> None:
    """Create (empty) machine-side mount points that packages did not create, and remove the
    empty ones earlier lab versions made for paths the product must create itself."""
    for d in PRIVATE_DIRS:
        os.makedirs(d.path, mode=0o755, exist_ok=True)
    for path in OLD_MOUNT_POINTS:
        with contextlib.suppress(OSError):  # absent, or not empty: someone else's
            os.rmdir(path)


def ensure_users() -> None:
    """Create hcops (passwordless sudo) and hcnosudo on the machine, once; idempotent."""
    if shutil.which("visudo") is None:
        raise LabError("sudo is not installed: apt-get install -y sudo")
    for user, password in USER_PASSWORDS.items():
        try:
            pwd.getpwnam(user)
        except KeyError:
            home = f"/home/{user}"  # per host: /home is a private dir; no machine-side home
            run(["useradd", "--no-create-home", "--home-dir", home, "-s", "/bin/bash", user])
            run(["chpasswd"], input=f"{user}:{password}\n")
    content = f"{SUDO_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n"
    if not SUDOERS_FILE.exists() or SUDOERS_FILE.read_text() != content:
        tmp = SUDOERS_FILE.with_name(".hcops.tmp")
        tmp.write_text(content)
        os.chmod(tmp, 0o440)
        check = run(["visudo", "-c", "-q", "-f", str(tmp)], check=False)
        if check.returncode != 0:
            tmp.unlink()
            raise LabError(f"visudo rejected the hcops sudoers file: {check.stderr.strip()}")
        os.replace(tmp, SUDOERS_FILE)


def ensure_keypair(path: Path, comment: str) -> None:
    """Generate an ed25519 key pair at ``path`` (+ ``.pub``) unless one is already there."""
    if path.exists() and path.with_suffix(".pub").exists():
        return
    path.unlink(missing_ok=True)
    path.with_suffix(".pub").unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def fingerprint(pub_or_private: Path) -> str:
    """``SHA256:...`` fingerprint of a key file, exactly as ``ssh-keygen -lf`` prints it."""
    return run(["ssh-keygen", "-l", "-f", str(pub_or_private)]).stdout.split()[1]


def host_fs(hostdir: Path, path: str) -> Path:
    """Where the machine keeps the host's copy of ``path``."""
    return hostdir / "fs" / path.lstrip("/")


def prepare_host_dirs(hostdir: Path) -> None:
    """Make the host's private directories the first time (later runs keep what is in them)."""
    for tree in OVERLAY_DIRS:
        for layer in ("upper", "work"):
            (hostdir / layer / tree.lstrip("/")).mkdir(parents=True, exist_ok=True)
    for d in PRIVATE_DIRS:
        target = host_fs(hostdir, d.path)
        if target.exists():
            continue
        target.mkdir(parents=True)
        if d.seed and os.path.isdir(d.path):
            shutil.copytree(d.path, target, symlinks=True, dirs_exist_ok=True)
        os.chown(target, *_ids(d.owner))
        os.chmod(target, d.mode)  # after chown, which would clear the sticky/setgid bits
    for user in USER_PASSWORDS:
        home = host_fs(hostdir, "/home") / user
        if not home.exists():
            home.mkdir(mode=0o750)
            os.chown(home, *_ids(user))


def write_host_config(
    hostdir: Path, name: str, address: str, peers: dict[str, str], lab_pubkey: str
) -> Path:
    """Write the host's identity, sshd config and mount table; return the sshd_config path.

    ``peers`` maps every lab host name to its address, for the host's /etc/hosts (sudo and
    PostgreSQL tools resolve the local hostname; without it sudo warns on every call).
    """
    ssh = hostdir / "ssh"
    (ssh / "authorized_keys.d").mkdir(parents=True, exist_ok=True)
    # sshd StrictModes: dirs above key files must not be group/world writable
    os.chmod(ssh, 0o755)  # noqa: S103
    host_key = ssh / "ssh_host_ed25519_key"
    ensure_keypair(host_key, f"hclab-{name}")
    for user in KEY_USERS:
        keys = ssh / "authorized_keys.d" / user
        keys.write_text(lab_pubkey.strip() + "\n")
        os.chmod(keys, 0o644)
    # own name on the lab address, not 127.0.1.1: cluster software advertises what it resolves
    hosts = ["127.0.0.1 localhost", f"{address} {name}"]
    hosts += [f"{addr} {peer}" for peer, addr in peers.items() if peer != name]
    host_fs(hostdir, "/etc").mkdir(parents=True, exist_ok=True)
    host_fs(hostdir, "/etc/hosts").write_text("\n".join(hosts) + "\n")
    host_fs(hostdir, "/etc/hostname").write_text(name + "\n")
    config = ssh / "sshd_config"
    config.write_text(
        f"""# HA Center lab host {name}; generated by tests/lab on every up
Port 22
ListenAddress {address}
HostKey {host_key}
PidFile none
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys {ssh}/authorized_keys.d/%u
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
MaxSessions 64
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
"""
    )
    mounts = [f"{host_fs(hostdir, d.path)} {d.path}" for d in PRIVATE_DIRS]
    mounts += [f"{host_fs(hostdir, f)} {f}" for f in PRIVATE_FILES]
    (hostdir / "mounts").write_text("\n".join(mounts) + "\n")
    return config
