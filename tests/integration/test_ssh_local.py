"""jobs.ssh against a throwaway OpenSSH server on 127.0.0.1 (its own host key, port and config)."""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clusters.inventory import ssh_keys
from jobs import ssh

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the throwaway sshd needs root"),
    pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="openssh-server not installed"),
]

SUDO_USER = os.environ.get("HC_SSH_SUDO_TEST_USER", "hcops")


@dataclass
class Sshd:
    port: int
    dir: Path
    host_key: ssh_keys.HostKey
    client_key: str = field(repr=False)  # private key text authorised for every user

    def connect(self, username: str = "root", **kwargs: object) -> ssh.Connection:
        return ssh.Connection(
            "127.0.0.1", self.port, self.host_key, ssh.Auth(username, self.client_key), **kwargs
        )


def keygen(path: Path, key_type: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", key_type, "-f", str(path)], check=True)
    return path


def keygen_fingerprint(pub: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(pub)], check=True, capture_output=True, text=True
    )
    return out.stdout.split()[1]


def host_key_of(pub: Path) -> ssh_keys.HostKey:
    key_type, blob = pub.read_text().split()[:2]
    return ssh_keys.HostKey(key_type, blob, keygen_fingerprint(pub))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {seconds} s")
        time.sleep(0.1)


def speaks_ssh(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def remote_alive(pattern: str) -> bool:
    # The "remote" host is this machine, so pgrep sees the remote processes.
    return (
        subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False).returncode == 0
    )


def start_sshd(workdir: Path, port: int, host_key: Path) -> subprocess.Popen[bytes]:
    config = workdir / f"sshd_config.{port}.{host_key.name}"
    config.write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {workdir}/sshd.{port}.pid
AuthorizedKeysFile {workdir}/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
LogLevel VERBOSE
"""
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir sshd insists on
    log = (workdir / f"sshd.{port}.log").open("ab")
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=log)
    try:
        wait_until(lambda: speaks_ssh(port) or proc.poll() is not None, 10, "sshd listening")
    except AssertionError:
        proc.kill()
        raise
    if proc.poll() is not None:
        raise RuntimeError(f"sshd exited: {(workdir / f'sshd.{port}.log').read_text()}")
    return proc


def stop_sshd(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    # Not tmp_path: a non-root test user must be able to read authorized_keys (0755 dir, 0644 file).
    workdir = Path(tempfile.mkdtemp(prefix="hc-sshd-"))
    workdir.chmod(0o755)
    host_key = keygen(workdir / "host_ed25519")
    client = keygen(workdir / "client_ed25519")
    shutil.copy(client.with_suffix(".pub"), workdir / "authorized_keys")
    (workdir / "authorized_keys").chmod(0o644)
    port = free_port()
    proc = start_sshd(workdir, port, host_key)
    try:
        yield Sshd(port, workdir, host_key_of(host_key.with_suffix(".pub")), client.read_text())
    finally:
        stop_sshd(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def conn(sshd: Sshd) -> Iterator[ssh.Connection]:
    with sshd.connect() as c:
        yield c


def test_connects_with_pinned_key_and_runs_echo(conn: ssh.Connection) -> None:
    result = conn.run("echo hello")
    assert result.ok
    assert result.exit_status == 0
    assert result.stdout_tail == ["hello"]
    assert result.stderr_tail == []  # the pid marker never shows up
    assert conn.is_root


def test_scan_host_key_matches_ssh_keygen(sshd: Sshd) -> None:
    scanned = ssh.scan_host_key("127.0.0.1", sshd.port, timeout=5)
    assert scanned == sshd.host_key
    assert scanned.fingerprint == keygen_fingerprint(sshd.dir / "host_ed25519.pub")


def test_changed_host_key_is_refused_with_both_fingerprints(sshd: Sshd, tmp_path: Path) -> None:
    # Another sshd with another host key while we pin the first one's: as if the server had been
    # reinstalled (or someone sits in between).
    other_key = keygen(sshd.dir / "host2_ed25519")
    port = free_port()
    proc = start_sshd(sshd.dir, port, other_key)
    try:
        conn = ssh.Connection("127.0.0.1", port, sshd.host_key, ssh.Auth("root", sshd.client_key))
        with pytest.raises(ssh.HostKeyMismatch) as caught:
            conn.open()
    finally:
        stop_sshd(proc)
    actual = keygen_fingerprint(other_key.with_suffix(".pub"))
    assert caught.value.expected_fingerprint == sshd.host_key.fingerprint
    assert caught.value.actual_fingerprint == actual
    message = str(caught.value)
    assert sshd.host_key.fingerprint in message
    assert actual in message
    assert f"127.0.0.1:{port}" in message
    assert "\n" not in message


def test_pinned_key_of_another_type_is_a_mismatch_too(sshd: Sshd, tmp_path: Path) -> None:
    wrong = host_key_of(keygen(tmp_path / "rsa", "rsa").with_suffix(".pub"))
    conn = ssh.Connection("127.0.0.1", sshd.port, wrong, ssh.Auth("root", sshd.client_key))
    with pytest.raises(ssh.HostKeyMismatch, match=re.escape(sshd.host_key.fingerprint)):
        conn.open()


def test_no_pinned_key_is_refused_and_shows_what_the_server_offers(sshd: Sshd) -> None:
    conn = ssh.Connection("127.0.0.1", sshd.port, None, ssh.Auth("root", sshd.client_key))
    with pytest.raises(ssh.HostKeyUnknown) as caught:
        conn.open()
    assert caught.value.host_key == sshd.host_key
    assert sshd.host_key.fingerprint in str(caught.value)


def test_wrong_key_is_an_authentication_failure(sshd: Sshd, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger").read_text()
    conn = ssh.Connection("127.0.0.1", sshd.port, sshd.host_key, ssh.Auth("root", stranger))
    with pytest.raises(ssh.AuthenticationFailed, match=rf"root@127\.0\.0\.1:{sshd.port}"):
        conn.open()


def test_password_never_appears_in_the_error(sshd: Sshd) -> None:
    auth = ssh.Auth("root", password="s3cr3t-pa55")
    conn = ssh.Connection("127.0.0.1", sshd.port, sshd.host_key, auth)
    with pytest.raises(ssh.AuthenticationFailed) as caught:
        conn.open()
    assert "s3cr3t" not in str(caught.value)


def test_refused_port_is_connect_failed() -> None:
    conn = ssh.Connection("127.0.0.1", free_port(), None, ssh.Auth("root", password="x"))
    with pytest.raises(ssh.ConnectFailed, match=r"cannot connect to 127\.0\.0\.1"):
        conn.open()


def test_silent_server_times_out_as_connect_failed() -> None:
    # Accepts TCP but never sends an SSH banner (a firewall or a wedged sshd).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        conn = ssh.Connection(
            "127.0.0.1", port, None, ssh.Auth("root", password="x"), connect_timeout=1
        )
        started = time.monotonic()
        with pytest.raises(ssh.ConnectFailed, match=rf"127\.0\.0\.1:{port}"):
            conn.open()
        with pytest.raises(ssh.ConnectFailed):
            ssh.scan_host_key("127.0.0.1", port, timeout=1)
    assert time.monotonic() - started < 10


def test_lost_connection_raises_instead_of_hanging(sshd: Sshd) -> None:
    conn = sshd.connect()
    conn.open()
    transport = conn._client.get_transport()  # type: ignore[union-attr]
    threading.Timer(0.5, transport.close).start()
    started = time.monotonic()
    with pytest.raises(ssh.ConnectionLost, match="lost"):
        conn.run("sleep 13.5")  # killed over a new connection, see the test below
    assert time.monotonic() - started < 10
    with pytest.raises(ssh.SSHError, match="not connected"):
        conn.run("true")
    conn.close()


def session_pids(sshd: Sshd) -> list[int]:
    """This sshd's per-connection processes (`sshd: root@notty` in OpenSSH 9.2)."""
    master = int((sshd.dir / f"sshd.{sshd.port}.pid").read_text())
    found = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def test_sshd_killed_mid_command_is_connection_lost_and_the_command_is_killed(
    sshd: Sshd,
) -> None:
    conn = sshd.connect()
    conn.open()
    before = set(session_pids(sshd))
    threading.Timer(1.0, lambda: [os.kill(pid, signal.SIGKILL) for pid in before]).start()
    started = time.monotonic()
    with pytest.raises(ssh.ConnectionLost) as lost:
        conn.run("sleep 37.25; echo done")
    assert time.monotonic() - started < 10
    message = str(lost.value)
    assert message.startswith(f"SSH connection to 127.0.0.1:{sshd.port} lost while a command ran")
    assert "was killed over a new connection" in message, message
    wait_until(lambda: not remote_alive("sleep 37.25"), 5, "the orphaned command to be gone")
    with pytest.raises(ssh.ConnectionLost, match="not connected"):
        conn.run("true")
    conn.close()


def test_five_thousand_lines_arrive_in_order(conn: ssh.Connection) -> None:
    lines: list[tuple[str, str]] = []
    result = conn.run("seq 1 5000", on_line=lambda stream, line: lines.append((stream, line)))
    assert lines == [("stdout", str(i)) for i in range(1, 5001)]
    assert result.stdout_tail == [str(i) for i in range(4951, 5001)]


def test_stdout_and_stderr_both_delivered_with_exit_status(conn: ssh.Connection) -> None:
    lines: list[tuple[str, str]] = []
    result = conn.run(
        "echo out; echo err >&2; printf 'no newline'; exit 7",
        on_line=lambda stream, line: lines.append((stream, line)),
    )
    assert sorted(lines) == [("stderr", "err"), ("stdout", "no newline"), ("stdout", "out")]
    assert result.exit_status == 7
    assert not result.ok
    assert result.stderr_tail == ["err"]


def test_check_raises_with_exit_code_and_last_stderr_line(conn: ssh.Connection) -> None:
    with pytest.raises(ssh.CommandFailed, match="exit status 3: second") as caught:
        conn.run("echo first >&2; echo second >&2; exit 3", check=True)
    assert isinstance(caught.value, ssh.SSHError)
    assert caught.value.result.exit_status == 3


def test_stdin_is_fed_to_the_command(conn: ssh.Connection) -> None:
    data = b"".join(b"line %d\n" % i for i in range(20000))  # larger than one SSH window
    result = conn.run("wc -c; cat >/dev/null", stdin=data)
    assert result.stdout_tail == [str(len(data))]


def test_timeout_kills_the_remote_process(conn: ssh.Connection) -> None:
    started = time.monotonic()
    with pytest.raises(ssh.CommandTimeout, match="timed out after 1 s"):
        conn.run("sleep 600.123", timeout=1)
    assert time.monotonic() - started < 10
    wait_until(lambda: not remote_alive("sleep 600.123"), 5, "remote sleep gone")


def test_cancel_kills_the_remote_process_group(conn: ssh.Connection) -> None:
    started = time.monotonic()
    lines: list[str] = []
    with pytest.raises(ssh.CommandCancelled, match="process group"):
        conn.run(
            # A child in the background and one ignoring TERM: both must go.
            "sleep 600.456 & sh -c 'trap \"\" TERM; sleep 600.457' & echo started; wait",
            on_line=lambda _stream, line: lines.append(line),
            should_cancel=lambda: time.monotonic() - started > 1,
        )
    assert lines == ["started"]
    wait_until(lambda: not remote_alive("sleep 600.45[67]"), 5, "remote sleeps gone")
    assert conn.run("echo still usable").stdout_tail == ["still usable"]


def test_cancel_while_output_is_closed_still_kills(conn: ssh.Connection) -> None:
    started = time.monotonic()
    with pytest.raises(ssh.CommandCancelled):
        conn.run(
            "exec >/dev/null 2>&1; sleep 600.789",
            should_cancel=lambda: time.monotonic() - started > 1,
        )
    wait_until(lambda: not remote_alive("sleep 600.789"), 5, "remote sleep gone")


def test_callback_failure_kills_the_remote_process(conn: ssh.Connection) -> None:
    def boom(_stream: str, _line: str) -> None:
        raise RuntimeError("log store down")

    with pytest.raises(RuntimeError, match="log store down"):
        conn.run("echo go; sleep 600.321", on_line=boom)
    wait_until(lambda: not remote_alive("sleep 600.321"), 5, "remote sleep gone")


def test_upload_is_atomic_with_mode_and_owner(conn: ssh.Connection, tmp_path: Path) -> None:
    target = tmp_path / "conf" / "patroni.yml"
    target.parent.mkdir()
    target.write_text("old\n")
    data = os.urandom(300_000) + b"\nend\n"

    # Watch the target while the upload runs: it is always either the old or the new content.
    seen: set[bytes] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.add(target.read_bytes())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        conn.upload(str(target), data, mode=0o640, owner="nobody", group="nogroup")
    finally:
        done.set()
        watcher.join()

    assert seen <= {b"old\n", data}
    assert target.read_bytes() == data
    st = target.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (st.st_uid, st.st_gid) == (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
    assert sorted(p.name for p in target.parent.iterdir()) == ["patroni.yml"]  # no temp left


def test_failed_upload_leaves_target_untouched(conn: ssh.Connection, tmp_path: Path) -> None:
    target = tmp_path / "keep.conf"
    target.write_text("old\n")
    with pytest.raises(ssh.SSHError, match="no-such-user"):
        conn.upload(str(target), b"new\n", owner="no-such-user")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.conf"]


def _has_passwordless_sudo(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    probe = ["sudo", "-n", "-u", user, "sudo", "-n", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def _account_locked(user: str) -> bool:
    # sshd with UsePAM no refuses even key logins to accounts whose password starts with "!".
    for line in Path("/etc/shadow").read_text().splitlines():
        name, password = line.split(":")[:2]
        if name == user:
            return password.startswith("!")
    return False


def test_sudo_as_non_root_user(sshd: Sshd, tmp_path: Path) -> None:
    if not _has_passwordless_sudo(SUDO_USER):
        pytest.skip(f"no user {SUDO_USER!r} with passwordless sudo (the lab creates it)")
    if _account_locked(SUDO_USER):
        pytest.skip(f"{SUDO_USER!r} is locked ('!' password); sshd without PAM refuses it")
    with sshd.connect(SUDO_USER) as conn:
        assert not conn.is_root
        assert conn.run("id -u").stdout_tail == ["0"]
        assert conn.run("id -un", sudo=False).stdout_tail == [SUDO_USER]

        target = tmp_path / "root-only.conf"
        conn.upload(str(target), b"x=1\n", mode=0o600)
        assert target.read_bytes() == b"x=1\n"
        assert target.stat().st_uid == 0

        started = time.monotonic()
        with pytest.raises(ssh.CommandCancelled):
            conn.run("sleep 600.654", should_cancel=lambda: time.monotonic() - started > 1)
        wait_until(lambda: not remote_alive("sleep 600.654"), 5, "root-owned sleep gone")
