"""The TLS step against a scripted server: which files each node gets, with which owner and
mode, nothing re-sent when the server already holds the same bytes, and the key never on a
command line or in the log. tests/integration/test_tls_lab.py checks the real files."""

import dataclasses
import hashlib
from types import SimpleNamespace

from jobs.configs.spec import TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE
from jobs.playbooks import tls
from tests.unit.jobs.configs.test_configs import tls_for
from tests.unit.jobs.playbooks.scripted_server import SPEC, Rule, scripted_context

ETCD_KEY = "/etc/hacenter/tls/etcd.key"
TLS_SPEC = dataclasses.replace(SPEC, tls=tls_for(tuple(n.name for n in SPEC.nodes)))


def node(name: str, kind: str) -> SimpleNamespace:
    return SimpleNamespace(pk=7, name=name, kind=kind, tls_active=False)


def run_step(target: SimpleNamespace, state: list[str]):
    """The step on `target`, whose server prints `state` for the state probe; returns the
    verdict, the uploads with their owner and mode, every command and every log line."""
    uploads: dict[str, tuple[bytes, dict]] = {}
    logged: list[str] = []
    ctx = scripted_context(target, SimpleNamespace(), [Rule("sha256sum <", state)], spec=TLS_SPEC)
    server = ctx.connections.get(None)
    server.upload = lambda path, data, **kw: uploads.__setitem__(path, (data, kw))
    ctx.log_writer.write = lambda text, **kw: logged.append(text)
    verdict = tls.tls_files_step(ctx)
    return verdict, uploads, server.commands, logged


def present(path: str, content: str, owner: str, mode: str) -> str:
    return f"{path} {hashlib.sha256(content.encode()).hexdigest()} {owner} {mode}"


def test_a_database_node_gets_a_postgres_key_and_an_etcd_key_readable_by_their_daemons():
    verdict, uploads, commands, logged = run_step(node("node1", "database"), [])
    mine = TLS_SPEC.tls.node("node1")
    assert {
        path: (data.decode(), kw["owner"], kw["group"], oct(kw["mode"]))
        for path, (data, kw) in uploads.items()
    } == {
        TLS_CA_FILE: (TLS_SPEC.tls.ca_certificate, "root", "root", "0o644"),
        TLS_CERT_FILE: (mine.certificate, "root", "root", "0o644"),
        TLS_KEY_FILE: (mine.key, "root", "postgres", "0o640"),
        ETCD_KEY: (mine.key, "etcd", "etcd", "0o600"),
    }
    assert verdict == "wrote ca.crt, node.crt, node.key, etcd.key in /etc/hacenter/tls"
    assert commands[0] == "install -d -m 0755 -o root -g root /etc/hacenter/tls"
    key_body = mine.key.splitlines()[1]
    assert not any(key_body in c for c in commands)
    assert not any(key_body in line for line in logged)


def test_the_proxy_has_no_postgres_user_so_its_key_is_roots_alone():
    _, uploads, _, _ = run_step(node("proxy", "proxy"), [])
    assert uploads[TLS_KEY_FILE][1]["group"] == "root"
    assert uploads[TLS_KEY_FILE][1]["mode"] == 0o600
    assert uploads[ETCD_KEY][1]["owner"] == "etcd"


def test_files_already_in_place_are_not_sent_again():
    mine = TLS_SPEC.tls.node("node1")
    state = [
        present(TLS_CA_FILE, TLS_SPEC.tls.ca_certificate, "root:root", "644"),
        present(TLS_CERT_FILE, mine.certificate, "root:root", "644"),
        present(TLS_KEY_FILE, mine.key, "root:postgres", "640"),
        present(ETCD_KEY, mine.key, "etcd:etcd", "600"),
    ]
    verdict, uploads, _, _ = run_step(node("node1", "database"), state)
    assert verdict == "CA, certificate and keys already in place"
    assert uploads == {}


def test_a_changed_certificate_or_a_loosened_key_is_written_again():
    mine = TLS_SPEC.tls.node("node1")
    state = [
        present(TLS_CA_FILE, TLS_SPEC.tls.ca_certificate, "root:root", "644"),
        present(TLS_CERT_FILE, "an older certificate", "root:root", "644"),
        present(TLS_KEY_FILE, mine.key, "root:postgres", "644"),  # world-readable
        f"{ETCD_KEY} -",  # absent
    ]
    verdict, uploads, _, _ = run_step(node("node1", "database"), state)
    assert set(uploads) == {TLS_CERT_FILE, TLS_KEY_FILE, ETCD_KEY}
    assert verdict == "wrote node.crt, node.key, etcd.key in /etc/hacenter/tls"


def test_a_cluster_without_managed_tls_gets_no_files():
    ctx = scripted_context(node("node1", "database"), SimpleNamespace(), [], spec=SPEC)
    assert "not managed" in tls.tls_files_step(ctx)
    assert ctx.connections.get(None).commands == []
