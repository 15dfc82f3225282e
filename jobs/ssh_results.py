"""What an SSH command or connection attempt comes to: a command's result, and the errors whose
one-line message the admin reads (never a secret in it)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import paramiko

from clusters.inventory.ssh_keys import HostKey


@dataclass
class CommandResult:
    exit_status: int  # -1 when the server sent none (the process died from a signal)
    stdout_tail: list[str]  # last TAIL_LINES lines, for verdicts
    stderr_tail: list[str]

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class SSHError(Exception):
    """Base; str(e) is a one-line human message shown to the admin."""


class HostKeyMismatch(SSHError):
    def __init__(self, hostport: str, expected_fingerprint: str, actual_fingerprint: str) -> None:
        self.expected_fingerprint = expected_fingerprint
        self.actual_fingerprint = actual_fingerprint
        super().__init__(
            f"host key of {hostport} changed: pinned {expected_fingerprint}, server presented "
            f"{actual_fingerprint}; refusing to connect"
        )


class HostKeyUnknown(SSHError):
    def __init__(self, hostport: str, host_key: HostKey) -> None:
        self.host_key, self.actual_fingerprint = host_key, host_key.fingerprint
        super().__init__(
            f"no pinned host key for {hostport}; it presents {host_key.key_type} "
            f"{host_key.fingerprint}: confirm it first"
        )


class AuthenticationFailed(SSHError):
    """Wrong key or password (never part of the message)."""


class ConnectFailed(SSHError):
    """Refused, unreachable, unresolvable, timed out, or not speaking SSH."""


class CommandTimeout(SSHError):
    """The command ran past its timeout; its process group was killed."""


class CommandCancelled(SSHError):
    """should_cancel() said stop; the command's process group was killed."""


class ConnectionLost(SSHError):
    """The connection dropped under a running command (its sshd died, the host went away)."""


class CommandFailed(SSHError):
    """`run(check=True)` saw a non-zero exit status; the result stays available for a verdict."""

    def __init__(self, message: str, result: CommandResult) -> None:
        super().__init__(message)
        self.result = result


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def lost_message(hostport: str, pgid: int | None, killed: bool) -> str:
    """What the admin reads when the connection dropped under a command: which host, and whether
    the command may still run there (it has its own session, so sshd's death does not end it)."""
    if killed:
        after = f"its process group {pgid} was killed over a new connection"
    elif pgid is not None:
        after = f"it may still run there (process group {pgid}; killing it failed)"
    else:
        after = "it may still run there (it had not reported its process group)"
    return f"SSH connection to {hostport} lost while a command ran; {after}"


def connect_error(exc: BaseException, hostport: str, timeout: float) -> SSHError:
    """Map what socket and paramiko raise while connecting to a one-line ConnectFailed."""
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        reasons = sorted({e.strerror or str(e) for e in exc.errors.values()})
        return ConnectFailed(f"cannot connect to {hostport}: {', '.join(reasons)}")
    if isinstance(exc, socket.gaierror):
        return ConnectFailed(f"cannot resolve {hostport}: {exc.strerror}")
    if isinstance(exc, TimeoutError):
        return ConnectFailed(f"timed out connecting to {hostport} after {timeout:g} s")
    if isinstance(exc, OSError):
        return ConnectFailed(f"cannot connect to {hostport}: {exc.strerror or one_line(exc)}")
    if isinstance(exc, EOFError):
        return ConnectFailed(f"{hostport} closed the connection during the SSH handshake")
    return ConnectFailed(f"SSH handshake with {hostport} failed: {one_line(exc)}")


def login_error(
    exc: BaseException, hostport: str, who: str, pkey: paramiko.PKey | None, timeout: float
) -> SSHError:
    """Map what paramiko raises while connecting and logging in to a one-line SSHError: an
    unknown or changed host key (both fingerprints named), refused credentials (never the
    secret, only which key or that a password was used), or a network failure."""
    if isinstance(exc, HostKeyUnknown):
        return HostKeyUnknown(hostport, exc.host_key)
    if isinstance(exc, paramiko.BadHostKeyException):
        expected, actual = (HostKey.from_pkey(k) for k in (exc.expected_key, exc.key))
        return HostKeyMismatch(hostport, expected.fingerprint, actual.fingerprint)
    if isinstance(exc, paramiko.AuthenticationException):
        used = f"key {pkey.fingerprint}" if pkey else "password"
        if isinstance(exc, paramiko.BadAuthenticationType):
            used += f"; server allows only {', '.join(exc.allowed_types)}"
        return AuthenticationFailed(f"authentication failed for {who} ({used})")
    return connect_error(exc, hostport, timeout)
