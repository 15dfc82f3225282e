"""Probes the labs' self-tests share: SSH into a host, the host key it serves, TCP from it."""

from __future__ import annotations

import subprocess

from .base import LabBase


def ssh(
    lab: LabBase, name: str, command: str, user: str = "root", check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` on host ``name`` over SSH with the lab key."""
    proc = subprocess.run(
        [*lab.ssh_argv(name, user), command], capture_output=True, text=True, timeout=60
    )
    if check:
        assert proc.returncode == 0, (
            f"{user}@{name}: {command!r} -> {proc.returncode} {proc.stderr}"
        )
    return proc


def served_fingerprint(address: str) -> str:
    """Fingerprint of the ed25519 host key a server presents, read over the network."""
    scan = subprocess.run(
        ["ssh-keyscan", "-T", "5", "-t", "ed25519", address],
        capture_output=True,
        text=True,
        timeout=15,
    )
    lines = [ln for ln in scan.stdout.splitlines() if not ln.startswith("#")]
    assert lines, f"no host key from {address}: {scan.stderr}"
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", "-"], input=lines[0] + "\n", capture_output=True, text=True
    )
    return out.stdout.split()[1]


def tcp_from(lab: LabBase, name: str, address: str, port: int) -> bool:
    """Whether host ``name`` can open a TCP connection to ``address:port`` (2 s limit)."""
    probe = f"exec 3<>/dev/tcp/{address}/{port}"
    return lab.exec(name, ["timeout", "2", "bash", "-c", probe], check=False).returncode == 0


def vip_holder(
    lab: LabBase, address: str, proxies: tuple[str, ...] = ("proxy", "proxy2")
) -> str | None:
    """The proxy whose eth0 carries the floating ``address`` (read on the hosts themselves);
    None when no powered proxy, or more than one, holds it."""
    found = [
        name
        for name in proxies
        if lab.is_powered(name)
        and address in lab.exec(name, ["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
    ]
    return found[0] if len(found) == 1 else None
