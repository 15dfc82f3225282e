"""HAProxy 2.6 itself judges the application frontend's combined check (no lab needed).

The generated `listen app_80` section runs on loopback against a stand-in Patroni (answers
`OPTIONS /primary` with 200 or 503) and a stand-in application (`GET /health` 200 or 503); the
server must be UP only when both say yes. With the cluster's TLS the stand-in Patroni serves
https with node1's certificate, and HAProxy's Patroni step verifies it against the CA (a
certificate from another CA keeps the server DOWN).
"""

import http.server
import os
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from clusters.inventory import pki
from jobs.configs import HttpFrontend, haproxy_config
from tests.conftest import wait_for
from tests.unit.jobs.configs.test_configs import make_spec

pytestmark = pytest.mark.skipif(not shutil.which("haproxy"), reason="HAProxy is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Switch(http.server.ThreadingHTTPServer):
    """Answers every request with 200 while `on`, else 503."""

    on = False


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self) -> None:
        self.send_response(200 if self.server.on else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_OPTIONS = answer

    def log_message(self, *args) -> None:
        pass


def status(socket_path: Path, field: int = 17) -> str:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(socket_path))
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    for line in data.decode().splitlines():
        fields = line.split(",")
        if len(fields) > 17 and fields[0] == "app_80" and fields[1] == "node1":
            return fields[field]
    return ""


def serve_tls(server: Switch, certificate: str, key: str, directory: Path) -> None:
    (directory / "patroni.crt").write_text(certificate)
    (directory / "patroni.key").write_text(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "patroni.crt", directory / "patroni.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)


@pytest.mark.parametrize("tls", ["none", "cluster-ca", "other-ca"])
def test_application_server_is_up_only_when_primary_and_healthy(tmp_path: Path, tls: str) -> None:
    patroni, listen = Switch(("127.0.0.1", free_port()), Handler), free_port()
    app = Switch(("127.0.0.1", free_port()), Handler)
    spec = make_spec(1, frontends=(HttpFrontend(80, 8080, "/health"),), tls=tls != "none")
    if spec.tls is not None:
        mine = spec.tls.node("node1")
        if tls == "other-ca":
            other = pki.new_authority("other")
            mine = pki.issue(other, common_name="node1", dns_names=["node1"], ip_addresses=[])
        serve_tls(patroni, mine.certificate, mine.key, tmp_path)
        (tmp_path / "ca.crt").write_text(spec.tls.ca_certificate)
    for server in (patroni, app):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    text = haproxy_config(spec, ca_file=str(tmp_path / "ca.crt"))
    lines = text.splitlines()
    start = lines.index("listen app_80")
    section = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        section.append(line)
    body = "\n".join(section)
    body = body.replace("192.0.2.10:80", f"127.0.0.1:{listen}")
    body = body.replace("192.0.2.11:8080", f"127.0.0.1:{app.server_address[1]}")
    body = body.replace("connect port 8008", f"connect port {patroni.server_address[1]}")
    sock = tmp_path / "admin.sock"
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"global\n    stats socket {sock} mode 600 level admin\n"
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n"
        "    timeout server 10s\n    timeout check 1s\n" + body + "\n"
    )
    process = subprocess.Popen(["haproxy", "-f", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(sock), 10, "HAProxy's admin socket")
        seen = {}
        for primary, healthy in ((False, False), (True, False), (True, True), (False, True)):
            patroni.on, app.on = primary, healthy
            trusted = tls != "other-ca"
            expected = "UP" if primary and healthy and trusted else "DOWN"
            wait_for(lambda e=expected: status(sock).startswith(e), 15, f"{expected} {primary}")
            seen[(primary, healthy)] = status(sock)
        if tls == "other-ca":
            # DOWN because of the certificate, not the answers: a layer-6 (SSL) failure.
            wait_for(lambda: status(sock, 36).startswith("L6"), 15, "an SSL check failure")
        up = "UP" if tls != "other-ca" else "DOWN"
        assert [s.split()[0] for s in seen.values()] == ["DOWN", "DOWN", up, "DOWN"], seen
    finally:
        process.terminate()
        process.wait(timeout=10)
        patroni.shutdown()
        app.shutdown()
