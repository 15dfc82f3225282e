"""Two proxies behind a floating address: the spec, keepalived's config, HAProxy's binds and
the firewall's VRRP rule (issue 20)."""

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from jobs.configs import NodeSpec
from jobs.configs.firewall import firewall_config
from jobs.configs.haproxy import haproxy_config
from jobs.configs.keepalived import check_script, keepalived_config
from tests.unit.jobs.configs.test_configs import HAPROXY, make_spec

KEEPALIVED = "/usr/sbin/keepalived"


def two_proxies(vip: str = "192.0.2.100/24", router_id: int = 42):
    spec = make_spec(2)
    return replace(
        spec,
        nodes=(*spec.nodes, NodeSpec("proxy2", "192.0.2.13", "proxy")),
        virtual_ip=vip,
        vrrp_router_id=router_id,
    )


def test_the_first_proxy_is_the_etcd_witness_and_the_second_no_member() -> None:
    spec = two_proxies()
    assert [p.name for p in spec.proxies] == ["proxy", "proxy2"]
    assert spec.proxy.name == "proxy"
    assert [m.name for m in spec.etcd_members] == ["proxy", "node1", "node2"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"virtual_ip": "192.0.2.11/24"}, "a node's own address"),
        ({"vrrp_router_id": 0}, "router id 1-255"),
        ({"virtual_ip": "not-an-ip"}, "does not appear to be"),
    ],
)
def test_spec_refuses_a_floating_address_that_cannot_work(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(two_proxies(), **change)


def test_spec_refuses_three_proxies_and_holds_a_floating_address_with_one() -> None:
    spec = two_proxies()
    with pytest.raises(ValueError, match="one proxy node, or two"):
        replace(spec, nodes=(*spec.nodes, NodeSpec("proxy3", "192.0.2.14", "proxy")))
    with pytest.raises(ValueError, match="router id 1-255"):
        replace(spec, vrrp_router_id=0)
    # One proxy left after the second was removed (jobs/playbooks/proxies.py): it holds the
    # address alone, with no peer to send adverts to.
    alone = replace(make_spec(2), virtual_ip="192.0.2.100/24", vrrp_router_id=1)
    text = keepalived_config(alone, alone.proxies[0], "eth0")
    assert "unicast_peer" not in text and "192.0.2.100/24 dev eth0" in text


def test_keepalived_config_is_nopreempt_unicast_and_checks_haproxy() -> None:
    spec = two_proxies()
    first = keepalived_config(spec, spec.proxies[0], "eth0")
    second = keepalived_config(spec, spec.proxies[1], "ens3")
    for text in (first, second):
        assert "state BACKUP" in text and "nopreempt" in text
        assert "virtual_router_id 42" in text
        assert "check_unicast_src" in text
        assert "track_script" in text and "/etc/hacenter/keepalived-check-demo.sh" in text
    assert "priority 150" in first and "priority 100" in second
    assert "unicast_src_ip 192.0.2.10" in first and "        192.0.2.13\n" in first
    assert "unicast_src_ip 192.0.2.13" in second and "        192.0.2.10\n" in second
    assert "192.0.2.100/24 dev eth0" in first and "192.0.2.100/24 dev ens3" in second
    assert "7001" in check_script(spec)


def test_keepalived_config_refuses_a_database_node_and_odd_interfaces() -> None:
    spec = two_proxies()
    with pytest.raises(ValueError, match="not one of"):
        keepalived_config(spec, spec.database_nodes[0], "eth0")
    with pytest.raises(ValueError, match="Interface"):
        keepalived_config(spec, spec.proxy, "eth0; rm -rf /")


@pytest.mark.skipif(not os.path.exists(KEEPALIVED), reason="keepalived is not installed")
def test_keepalived_accepts_the_config(tmp_path: Path) -> None:
    spec = two_proxies()
    # keepalived checks the interface exists (and refuses loopback): any of this machine's.
    interfaces = sorted(p.name for p in Path("/sys/class/net").iterdir() if p.name != "lo")
    if not interfaces:
        pytest.skip("no network interface but loopback")
    config = tmp_path / "keepalived.conf"
    config.write_text(keepalived_config(spec, spec.proxy, interfaces[0]))
    result = subprocess.run(
        [KEEPALIVED, "--config-test", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = result.stdout + result.stderr
    # The check script is not on this machine: that is the only complaint allowed.
    problems = [
        line
        for line in output.splitlines()
        if line.strip() and "track script hacenter_haproxy" not in line
    ]
    # 5: the missing script (a warning keepalived counts as an error in --config-test).
    assert result.returncode in (0, 5), output
    assert not problems, output


def test_haproxy_of_each_proxy_binds_its_own_address_and_the_floating_one() -> None:
    spec = two_proxies()
    first = haproxy_config(spec)
    second = haproxy_config(spec, node=spec.proxies[1])
    assert "bind 192.0.2.10:5432" in first and "bind 192.0.2.13:5432" not in first
    assert "bind 192.0.2.13:5432" in second
    for text, name in ((first, "proxy"), (second, "proxy2")):
        for port in (5432, 5433, 7000):
            assert f"bind 192.0.2.100:{port} transparent" in text
        assert f"stats show-node {name}" in text
        assert f"http-after-response set-header X-Hacenter-Node {name}" in text
        assert "bind 127.0.0.1:7001" in text and "monitor-uri /" in text


def test_haproxy_of_one_proxy_is_as_before() -> None:
    text = haproxy_config(make_spec(2))
    assert "transparent" not in text and "show-node" not in text and "7001" not in text


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="HAProxy is not installed")
def test_haproxy_accepts_the_config_with_a_floating_address(tmp_path: Path) -> None:
    spec = two_proxies()
    state = tmp_path / "server-state"
    state.write_text("1\n")
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        haproxy_config(
            spec,
            node=spec.proxies[1],
            socket_path=str(tmp_path / "admin.sock"),
            state_file=str(state),
        )
    )
    result = subprocess.run(
        [HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[WARNING]" not in output and "[ALERT]" not in output, output


def test_firewall_lets_vrrp_in_from_the_proxies_only() -> None:
    spec = two_proxies()
    text = firewall_config(spec, spec.proxies[1], ["198.51.100.7"])
    assert "ip protocol 112 ip saddr != @vrrp_v4 counter drop" in text
    assert "elements = { 192.0.2.10, 192.0.2.13 }" in text
    assert "protocol 112" not in firewall_config(spec, spec.database_nodes[0], ["198.51.100.7"])
    assert "protocol 112" not in firewall_config(make_spec(2), make_spec(2).proxy, ["198.51.100.7"])
