"""Setup's fast-path step (jobs/playbooks/fastpath.py): what goes into the agent's and the
peers' config files, and the agent removed when the cluster's fast failover is off."""

import dataclasses
import json
from types import SimpleNamespace

from clusters.models import FenceDevice, Node
from jobs.agents import fastpath as agent
from jobs.configs.spec import HttpFrontend, NodeTls, TlsSpec
from jobs.playbooks import fastpath
from tests.unit.jobs.playbooks.scripted_server import SPEC, Rule, scripted_context

SECRET = "bmc s3cret;with=odd chars"
TLS_SPEC = dataclasses.replace(
    SPEC,
    tls=TlsSpec(ca_certificate="CA", nodes=(("node1", NodeTls("c", "k")),)),
    http_frontends=(HttpFrontend(8080, 80),),
)


def device(node: str, ok: bool | None) -> FenceDevice:
    """An unsaved device of an unsaved node: the step reads it, nothing more."""
    return FenceDevice(
        node=Node(name=node),
        method="redfish",
        options={"ip": "10.9.0.1", "username": "admin", "ssl_insecure": True},
        secret=SECRET,
        last_test_ok=ok,
    )


def test_only_nodes_whose_device_test_passed_are_fenced():
    entries = fastpath.fence_entries([device("node1", True), device("node2", False)])
    assert set(entries) == {"node1"}  # node2's failed test: it keeps the lease path
    assert entries["node1"]["fence_agent"] == "fence_redfish"
    lines = entries["node1"]["fence_input"].splitlines()
    # the agent adds its own action line; the options and the secret come as on stdin
    assert lines == ["ip=10.9.0.1", "username=admin", "ssl_insecure=1", f"password={SECRET}"]
    assert fastpath.fence_entries([device("node1", None)]) == {}  # never tested


def test_the_agents_config_loads_in_the_agent(tmp_path):
    fences = fastpath.fence_entries([device("node1", True)])
    config = fastpath.agent_config(TLS_SPEC, window_s=600, fences=fences)
    path = tmp_path / "fastpath.json"
    path.write_text(json.dumps(config))
    conf = agent.load_config(str(path))
    assert conf.scope == "pg1" and conf.prefix == "/hacenter/pg1/"
    assert conf.etcd_endpoints == (
        "https://198.19.0.10:2379",
        "https://198.19.0.11:2379",
        "https://198.19.0.12:2379",
    )
    assert conf.nodes["node1"].fence_agent == "fence_redfish"
    assert conf.nodes["node2"].fence_agent == ""  # no tested device: the lease path
    assert conf.nodes["node2"].peer_port == 8010
    assert conf.witness == "proxy" and conf.window_s == 600
    assert conf.decisions == "/var/lib/hacenter/fastpath/pg1.jsonl"
    assert conf.tls_ca == "/etc/hacenter/tls/ca.crt"
    assert "app_8080" in conf.backends and "app_8080" in conf.primary_backends
    assert conf.primary_backends[:2] == ("primary", "be_replicas_fallback")


def test_a_peers_config_holds_no_fence_secret():
    fences = fastpath.fence_entries([device("node1", True)])
    config = fastpath.agent_config(TLS_SPEC, window_s=600, fences=fences, peer_listen="198.19.0.11")
    text = json.dumps(config)
    assert SECRET not in text and "fence" not in text
    assert config["peer_listen"] == "198.19.0.11" and config["witness"] == "proxy"


def test_the_daemons_take_no_secret_on_their_command_line():
    for daemon in (fastpath.agent_daemon(SPEC), fastpath.peer_daemon(SPEC)):
        assert daemon.argv[:2] == ("/usr/bin/python3", fastpath.AGENT_PATH)
        assert daemon.argv[-1].startswith("/etc/hacenter/fastpath-")
    assert fastpath.agent_daemon(SPEC).user == "root"  # the fence secrets, HAProxy's socket
    assert fastpath.peer_daemon(SPEC).user == "postgres"  # it may read the node's key
    assert "--peer" in fastpath.peer_daemon(SPEC).argv


def node(name: str, kind: str) -> SimpleNamespace:
    address = next(n.address for n in SPEC.nodes if n.name == name)
    login = SimpleNamespace(username="root")
    return SimpleNamespace(pk=3, name=name, kind=kind, address=address, credential=login)


def test_off_removes_the_agent_and_its_configuration():
    cluster = SimpleNamespace(fast_failover=False, fast_failover_window_s=3600)
    ctx = scripted_context(
        node("proxy", "proxy"),
        cluster,
        [Rule("[ -d /run/systemd/system ]"), Rule("systemctl show -p MainPID", ["0"])],
        spec=SPEC,
    )
    verdict = fastpath.fastpath(ctx)
    server = ctx.connections.get(None)
    assert verdict.startswith("fast failover is off: Fast-path agent stopped")
    assert server.ran("systemctl disable --now hacenter-fastpath-pg1.service")
    assert server.ran("rm -f /etc/systemd/system/hacenter-fastpath-pg1.service")
    assert server.ran("rm -f /etc/hacenter/fastpath-pg1.json")


def test_off_and_never_installed_changes_nothing():
    cluster = SimpleNamespace(fast_failover=False, fast_failover_window_s=3600)
    ctx = scripted_context(
        node("node1", "database"),
        cluster,
        [Rule("[ -d /run/systemd/system ]", status=1), Rule("test -e", status=1)],
        spec=SPEC,
    )
    assert fastpath.fastpath(ctx) == "fast failover is off"
    server = ctx.connections.get(None)
    assert not [c for c in server.commands if "rm -f" in c or "kill -TERM" in c]


def test_on_a_peer_gets_the_program_and_its_0600_file():
    cluster = SimpleNamespace(fast_failover=True, fast_failover_window_s=3600)
    ctx = scripted_context(
        node("node1", "database"),
        cluster,
        [Rule("[ -d /run/systemd/system ]", status=1), Rule("cat /run/hacenter/", ["4242"])],
        spec=SPEC,
    )
    fastpath.fastpath(ctx)
    server = ctx.connections.get(None)
    assert server.uploads[fastpath.AGENT_PATH] == fastpath.AGENT_SOURCE.read_bytes()
    config = json.loads(server.uploads["/etc/hacenter/fastpath-peer-pg1.json"])
    assert config["peer_listen"] == "198.19.0.11"
