"""SSH to the managed servers: pinned host keys, streamed output, killable commands, atomic upload.

With clusters.inventory.ssh_keys (key material), the only modules that import paramiko;
neither imports Django, so they work without settings. One `Connection` per host per job; every
`run` opens a fresh channel on it. What a command or a connection attempt comes to (results and
errors) is in `ssh_results`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import paramiko

from clusters.inventory.ssh_keys import (
    HostKey,
    InvalidPrivateKey,
    fingerprint_of,
    parse_private_key,
)
from jobs.remote_scripts import (
    PID_MARKER,
    build_kill_script,
    build_remote_command,
    build_sweep_command,
    build_upload_script,
)
from jobs.ssh_results import (
    AuthenticationFailed,
    CommandCancelled,
    CommandFailed,
    CommandResult,
    CommandTimeout,
    ConnectFailed,  # noqa: F401 - callers catch ssh.ConnectFailed with the rest
    ConnectionLost,
    HostKeyMismatch,  # noqa: F401 - callers catch ssh.HostKeyMismatch with the rest
    HostKeyUnknown,
    SSHError,
    connect_error,
    login_error,
    lost_message,
    one_line,
)

logger = logging.getLogger(__name__)

LineCallback = Callable[[str, str], None]  # (stream: "stdout" | "stderr", line without newline)

TAIL_LINES = 50
POLL_S = 0.25  # longest gap between two should_cancel / timeout checks
MAX_LINE_BYTES = 64 * 1024  # longer "lines" are cut, so binary output cannot eat memory
_PID_LINE = re.compile(rf"^{PID_MARKER}(\d+)$")
_NET_ERRORS = (paramiko.SSHException, EOFError, OSError)


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def scan_host_key(address: str, port: int = 22, timeout: float = 10.0) -> HostKey:
    """Trust-on-first-use scan: key exchange only, no authentication; the admin confirms it."""
    hostport = _hostport(address, port)
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise connect_error(exc, hostport, timeout) from exc
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        return HostKey.from_pkey(transport.get_remote_server_key())
    except _NET_ERRORS as exc:
        raise connect_error(exc, hostport, timeout) from exc
    finally:
        transport.close()


class _RejectUnknown(paramiko.RejectPolicy):
    """RejectPolicy that says which key the server offered, so the admin can confirm it."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise HostKeyUnknown(hostname, HostKey.from_pkey(key))


@dataclass(frozen=True)
class Auth:
    username: str
    private_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


class _LineBuffer:
    """Turns the chunks of one stream into complete, cleaned lines; keeps the last ones."""

    def __init__(self) -> None:
        self.pending, self.open, self.tail = b"", True, deque[str](maxlen=TAIL_LINES)

    def feed(self, chunk: bytes) -> list[str]:
        if chunk:
            *parts, self.pending = (self.pending + chunk).split(b"\n")
            if len(self.pending) > MAX_LINE_BYTES:
                parts, self.pending = [*parts, self.pending], b""
        else:  # EOF: a last line without newline still counts
            parts, self.pending, self.open = [self.pending] if self.pending else [], b"", False
        # Split bytes before decoding, so a character cut between two reads decodes whole.
        return [p.decode(errors="replace").replace("\x00", "").rstrip("\r") for p in parts]


class Connection:
    """One SSH connection to one host, pinned host key, many channels."""

    def __init__(
        self,
        address: str,
        port: int,
        host_key: HostKey | None,
        auth: Auth,
        *,
        connect_timeout: float = 10.0,
        dead_peer_s: float = 60.0,
        name: str = "",
        tag: str = "",
    ) -> None:
        self.address, self.port, self.host_key, self.auth = address, port, host_key, auth
        self.connect_timeout = connect_timeout
        self.dead_peer_s = dead_peer_s
        self.hostport = _hostport(address, port)
        # A lost connection's message names the node too: a step that runs on every node
        # (its title names none) must still say which one dropped.
        self.name = name
        self.label = f"{name} ({self.hostport})" if name else self.hostport
        self.tag = tag  # every command carries it in its environment (build_remote_command)
        self._client: paramiko.SSHClient | None = None
        self._is_root = False
        self._may_reconnect = True  # only ever to kill what a lost connection left running

    def __enter__(self) -> Connection:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def is_root(self) -> bool:
        """Whether we log in as uid 0 (then `sudo=True` adds no sudo); known after open()."""
        return self._is_root

    def open(self) -> None:
        """Connect, check the pinned host key, authenticate, and learn whether we are root."""
        if self._client is not None:
            return
        who, timeout = f"{self.auth.username}@{self.hostport}", self.connect_timeout
        pkey = None
        if self.auth.private_key:
            try:
                pkey = parse_private_key(self.auth.private_key, self.auth.passphrase)
            except InvalidPrivateKey as exc:  # callers handle SSHError from open()
                raise AuthenticationFailed(f"unusable private key for {who}: {exc}") from None
        elif not self.auth.password:
            raise AuthenticationFailed(f"no private key or password configured for {who}")
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_RejectUnknown())
        if self.host_key is not None:
            self._pin(client, self.host_key)
        try:
            client.connect(
                self.address,
                self.port,
                username=self.auth.username,
                password=self.auth.password or None,
                pkey=pkey,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except BaseException as exc:
            client.close()
            if isinstance(exc, (*_NET_ERRORS, HostKeyUnknown)):
                raise login_error(exc, self.hostport, who, pkey, timeout) from None
            raise
        self._watch_for_dead_peer(client.get_transport())
        self._client = client
        try:
            uid = self.run("id -u", sudo=False, timeout=timeout, check=True).stdout_tail
        except BaseException:
            self.close()
            raise
        self._is_root = uid[-1:] == ["0"]  # last line: a chatty .bashrc may print first

    def _watch_for_dead_peer(self, transport: paramiko.Transport) -> None:
        """Break the connection once the peer has acknowledged nothing for `dead_peer_s`.

        A host that vanishes without a reset (cable cut, power-off behind a switch) would
        otherwise leave a quiet command waiting until its own timeout, or forever without one:
        TCP retransmits for ~15 minutes. SSH keepalives make sure something is always in
        flight, and TCP_USER_TIMEOUT drops the socket when it stays unacknowledged; the
        transport then dies and the command ends with ConnectionLost.
        """
        transport.set_keepalive(max(1, int(self.dead_peer_s / 4)))
        if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux; elsewhere only the keepalives
            ms = int(self.dead_peer_s * 1000)
            transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, ms)

    def _pin(self, client: paramiko.SSHClient, key: HostKey) -> None:
        try:
            pkey, fingerprint = key.to_pkey(), fingerprint_of(key.key_type, key.base64)
        except (ValueError, paramiko.SSHException) as exc:
            raise SSHError(f"pinned host key of {self.hostport} is unreadable: {exc}") from None
        if fingerprint != key.fingerprint:  # a damaged record must not pin something else
            raise SSHError(f"pinned host key of {self.hostport} does not match its fingerprint")
        # paramiko looks ports other than 22 up as "[host]:port"; the bare name would never match.
        name = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        client.get_host_keys().add(name, key.key_type, pkey)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _channel(self) -> paramiko.Channel:
        transport = self._client.get_transport() if self._client else None
        if transport is None or not transport.is_active():
            raise ConnectionLost(f"SSH connection to {self.label} lost; not connected any more")
        try:
            return transport.open_session(timeout=self.connect_timeout)
        except _NET_ERRORS as exc:
            if not transport.is_active():
                raise ConnectionLost(
                    f"SSH connection to {self.label} lost: cannot open a channel"
                ) from None
            raise SSHError(f"{self.hostport}: cannot open a channel: {one_line(exc)}") from None

    def run(
        self,
        command: str,
        *,
        on_line: LineCallback | None = None,
        timeout: float | None = None,
        should_cancel: Callable[[], bool] | None = None,
        sudo: bool = True,
        stdin: bytes | None = None,
        check: bool = False,
    ) -> CommandResult:
        """Run a /bin/sh command without a pty, handing each output line to on_line as it comes.

        On timeout, cancel or any other exception (a failing on_line, a worker shutting down),
        the remote process group is killed over a second channel before raising: closing the
        channel alone would leave the command running.
        """
        use_sudo = sudo and not self._is_root
        if should_cancel is not None and should_cancel():
            raise CommandCancelled(f"{self.hostport}: cancelled before the command started")
        chan = self._channel()
        bufs = {"stderr": _LineBuffer(), "stdout": _LineBuffer()}  # stderr first: pid marker
        reads = {"stderr": chan.recv_stderr, "stdout": chan.recv}
        to_send = memoryview(stdin or b"")
        pgid: int | None = None
        stop: BaseException | None = None
        start = stopped_at = last_poll = time.monotonic()
        try:
            chan.exec_command(build_remote_command(command, use_sudo, self.tag))
            poller = select.poll()  # not select.select: a busy worker may hold fds above 1024
            poller.register(chan.fileno(), select.POLLIN)  # readable when either stream has data
            chan.setblocking(False)
            if not to_send:
                chan.shutdown_write()  # EOF on stdin: a command reading it must not hang
            while any(b.open for b in bufs.values()) or not chan.exit_status_ready():
                now = time.monotonic()
                if stop is None:
                    stopped_at = now
                    if timeout is not None and now - start > timeout:
                        stop = CommandTimeout(f"{self.hostport}: timed out after {timeout:g} s")
                    elif should_cancel is not None and now - last_poll >= POLL_S:
                        last_poll = now  # should_cancel may query the database: not per chunk
                        if should_cancel():
                            stop = CommandCancelled(f"{self.hostport}: command cancelled")
                # Stop once the pid marker is in (it normally is long before), to kill by it.
                if stop is not None and (pgid is not None or now - stopped_at > 3):
                    break
                # Fill the send window completely before waiting: one chunk per poll capped
                # uploads at ~1.6 MB/s.
                while to_send and chan.send_ready():
                    try:
                        to_send = to_send[chan.send(to_send[:32768]) :]
                    except TimeoutError:
                        break
                    except OSError:  # channel closed: the command stopped reading
                        to_send = memoryview(b"")
                    if not to_send:
                        chan.shutdown_write()
                if not any(b.open for b in bufs.values()):
                    chan.status_event.wait(POLL_S)  # output closed, process still running
                    continue
                poller.poll(2 if to_send else POLL_S * 1000)
                for name, buf in bufs.items():
                    try:
                        chunk = reads[name](32768) if buf.open else None
                    except TimeoutError:  # nothing buffered on this stream right now
                        continue
                    for line in buf.feed(chunk) if chunk is not None else ():
                        if pgid is None and name == "stderr" and (m := _PID_LINE.match(line)):
                            pgid = int(m.group(1))
                            continue
                        buf.tail.append(line)
                        if on_line is not None and stop is None:
                            try:
                                on_line(name, line)
                            except Exception as exc:  # kill first (below), then re-raise
                                stop, stopped_at = exc, time.monotonic()
            if stop is not None:
                raise stop
            status = chan.recv_exit_status()  # only now: both streams are drained
            if status == -1 and not self._alive():
                raise ConnectionLost(self.label)
        except BaseException as exc:
            killed = pgid is not None and self._kill(pgid, use_sudo)
            if isinstance(exc, CommandTimeout | CommandCancelled):
                note = f"remote process group {pgid} killed" if killed else "remote kill unsure"
                raise type(exc)(f"{exc}; {note}") from None
            if isinstance(exc, (ConnectionLost, *_NET_ERRORS)) and not self._alive():
                raise ConnectionLost(lost_message(self.label, pgid, killed)) from None
            if isinstance(exc, _NET_ERRORS):
                raise SSHError(f"{self.hostport}: command failed: {one_line(exc)}") from exc
            raise
        finally:
            chan.close()
        result = CommandResult(status, list(bufs["stdout"].tail), list(bufs["stderr"].tail))
        if check and not result.ok:
            last = result.stderr_tail[-1] if result.stderr_tail else "no error output"
            raise CommandFailed(f"{self.hostport}: exit status {status}: {last}", result)
        return result

    def _alive(self) -> bool:
        transport = self._client.get_transport() if self._client else None
        return transport is not None and transport.is_active()

    def _kill(self, pgid: int, sudo: bool) -> bool:
        """Kill the command's process group over a second channel; over a new connection
        (pinned key as always, closed at once) when this one was lost, because the command
        outlives the sshd that started it and would race a retry of its step."""
        conn = self
        if not self._alive() and self._may_reconnect:
            conn = Connection(
                self.address,
                self.port,
                self.host_key,
                self.auth,
                connect_timeout=self.connect_timeout,
                dead_peer_s=self.dead_peer_s,
                name=self.name,
                tag=self.tag,
            )
            conn._may_reconnect = False  # if that one drops too, give up rather than loop
        try:
            conn.open()  # nothing to do when it is this, still open
            return conn.run(build_kill_script(pgid), sudo=sudo, timeout=15).ok
        except SSHError as exc:
            logger.warning("could not kill process group %s on %s: %s", pgid, self.hostport, exc)
            return False
        finally:
            if conn is not self:
                conn.close()

    def sweep_leftovers(self) -> list[int]:
        """Kill what earlier commands with this connection's tag left running on the host and
        return the process groups killed. A worker that died mid-step leaves its command
        running (own session); a retry must not run the step beside it. Call it before this
        connection runs commands of its own: they carry the tag too."""
        if not self.tag:
            return []
        result = self.run(build_sweep_command(self.tag), sudo=True, timeout=60, check=True)
        return [int(g) for g in " ".join(result.stdout_tail).split()]

    def upload(
        self,
        remote_path: str,
        data: bytes,
        *,
        mode: int = 0o644,
        owner: str | None = None,
        group: str | None = None,
        sudo: bool = True,
    ) -> None:
        """Atomically replace remote_path: temp file in the same directory, then rename.

        The bytes stream into `cat` (works under sudo, unlike SFTP) and are checked against their
        SHA-256 before the rename, so a dropped connection never installs half a file.
        """
        script = build_upload_script(
            remote_path, hashlib.sha256(data).hexdigest(), mode, owner, group
        )
        self.run(script, stdin=data, sudo=sudo, check=True, timeout=600)
