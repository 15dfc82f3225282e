"""The SSH layer without a network: output lines, one-line connection errors, host:port."""

import errno
import socket

import paramiko
import pytest

from jobs import ssh, ssh_results


def test_line_buffer_joins_partial_lines_and_cleans_them() -> None:
    buf = ssh._LineBuffer()
    got = buf.feed(b"one\r\ntw") + buf.feed(b"o\x00\n\xc3") + buf.feed(b"\xa9t\xff") + buf.feed(b"")
    assert got == ["one", "two", "\u00e9t\ufffd"]
    assert not buf.open


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (socket.gaierror(-2, "Name or service not known"), "cannot resolve db1:22"),
        (TimeoutError("timed out"), "timed out connecting to db1:22 after 5 s"),
        (
            paramiko.ssh_exception.NoValidConnectionsError(
                {("10.0.0.1", 22): OSError(errno.ECONNREFUSED, "Connection refused")}
            ),
            "cannot connect to db1:22: Connection refused",
        ),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "db1:22: Network is unreachable"),
        (paramiko.SSHException("Error reading SSH protocol\nbanner"), "handshake with db1:22"),
        (EOFError(), "closed the connection"),
    ],
)
def test_network_errors_become_one_line_connect_failed(exc: BaseException, message: str) -> None:
    err = ssh_results.connect_error(exc, "db1:22", 5.0)
    assert isinstance(err, ssh.ConnectFailed)
    assert message in str(err)
    assert "\n" not in str(err)


def test_ipv6_hostport_is_bracketed() -> None:
    assert ssh._hostport("fd00::1", 2222) == "[fd00::1]:2222"
    assert ssh._hostport("db1", 22) == "db1:22"
