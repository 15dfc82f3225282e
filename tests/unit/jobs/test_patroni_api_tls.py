"""The workers' and the monitor's Patroni client over TLS, against a real HTTPS server on
loopback presenting a node certificate from the cluster's CA: verified by the CA and the IP
SAN, refused with another CA or a wrong address, and never led elsewhere by a redirect."""

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusters.inventory import pki
from clusters.models import Cluster, Node
from clusters.monitoring import reads
from jobs import patroni_api

CA = pki.new_authority("demo")
OTHER_CA = pki.new_authority("someone-else")


class Handler(http.server.BaseHTTPRequestHandler):
    """/cluster answers like Patroni; /moved redirects to /cluster; records what it was asked."""

    asked: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        self.asked.append((self.path, self.headers.get("Authorization", "")))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/cluster")
            self.end_headers()
            return
        body = json.dumps({"members": [{"name": "node1", "role": "leader"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path, monkeypatch, request) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 with node1's certificate (SANs: node1 and 127.0.0.1, or
    the addresses the test gives as its parameter)."""
    ips = getattr(request, "param", ["127.0.0.1"])
    cert = pki.issue(CA, common_name="node1", dns_names=["node1"], ip_addresses=ips)
    (tmp_path / "node.crt").write_text(cert.certificate)
    (tmp_path / "node.key").write_text(cert.key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "node.crt", tmp_path / "node.key")
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    Handler.asked = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    port = httpd.server_address[1]
    monkeypatch.setattr(patroni_api, "PORT", port)
    monkeypatch.setattr(reads, "PATRONI_PORT", port)
    yield port
    httpd.shutdown()
    httpd.server_close()


def node(address: str = "127.0.0.1", *, tls_active: bool = True, ca: str = CA.certificate):
    return Node(
        name="node1", address=address, tls_active=tls_active, cluster=Cluster(ca_certificate=ca)
    )


def test_a_tls_node_is_asked_over_https_verified_by_the_clusters_ca(server):
    assert patroni_api.url(node(), "/cluster").startswith("https://127.0.0.1:")
    assert patroni_api.cluster(node())["members"][0]["name"] == "node1"


def test_a_node_before_tls_is_asked_over_plain_http():
    assert patroni_api.url(node(tls_active=False), "/cluster").startswith("http://127.0.0.1:")


def test_a_certificate_from_another_ca_is_refused(server):
    with pytest.raises(patroni_api.PatroniUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        patroni_api.cluster(node(ca=OTHER_CA.certificate))


@pytest.mark.parametrize("server", [["127.0.0.2"]], indirect=True)
def test_an_address_the_certificate_does_not_name_is_refused(server):
    # Signed by the right CA, but for another address (and the DNS name is not checked).
    with pytest.raises(patroni_api.PatroniUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        patroni_api.cluster(node())


def test_plain_http_to_the_tls_server_gets_no_answer(server):
    with pytest.raises(patroni_api.PatroniUnavailable):
        patroni_api.cluster(node(tls_active=False))


def test_a_redirect_is_not_followed_and_credentials_go_nowhere_else(server):
    status, _ = patroni_api.post(node(), "/moved", {}, auth=("hacenter", "pw"), method="GET")
    assert status == 302
    assert [path for path, _ in Handler.asked] == ["/moved"]


def test_the_context_is_built_once_per_ca():
    assert patroni_api.ca_context(CA.certificate) is patroni_api.ca_context(CA.certificate)
    assert patroni_api.ca_context(CA.certificate) is not patroni_api.ca_context(
        OTHER_CA.certificate
    )
    assert patroni_api.ca_context(CA.certificate).check_hostname


def test_tls_active_without_a_stored_ca_is_an_error_not_an_unverified_read():
    with pytest.raises(patroni_api.PatroniUnavailable, match="no CA"):
        patroni_api.tls_context(node(ca=""))


def test_the_monitor_reads_a_tls_node_verified_and_ignores_redirects(server):
    assert reads._get_json(node(), "/cluster", 2.0)["members"][0]["name"] == "node1"
    assert reads._get_json(node(ca=OTHER_CA.certificate), "/cluster", 2.0) is None
    assert reads._get_json(node(), "/moved", 2.0) is None
    assert [path for path, _ in Handler.asked] == ["/cluster", "/moved"]
