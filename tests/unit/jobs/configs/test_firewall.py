"""The host firewall's nftables table: who may reach which port, rendered as an atomic nft script.

Where `nft` and `unshare` work (root, as in CI), the script is also loaded into a private,
empty network namespace: nft itself checks it, and reloading it replaces the table.
"""

import os
import shutil
import subprocess
from dataclasses import replace

import pytest

from jobs.configs import ClusterSpec, HttpFrontend, NodeSpec, Secrets
from jobs.configs.firewall import (
    CONFIG_PATH,
    console_networks,
    firewall_config,
    firewall_policy,
    firewall_unit,
)

SECRETS = Secrets(*(["pw"] * 6))
SPEC = ClusterSpec(
    name="pg1",
    postgres_version=15,
    replication="async",
    sync_strict=False,
    failover_profile="balanced",
    client_networks=("10.20.0.0/16", "2001:db8:1::/48"),
    nodes=(
        NodeSpec("proxy", "198.18.0.10", "proxy"),
        NodeSpec("node1", "198.18.0.11", "database"),
        NodeSpec("node2", "198.18.0.12", "database"),
        NodeSpec("node3", "198.18.0.14", "database"),
    ),
    secrets=SECRETS,
    http_frontends=(HttpFrontend(8080, 8080),),
)
PROXY, NODE1 = SPEC.nodes[0], SPEC.nodes[1]
CONSOLE = ["192.0.2.7"]


def rules_by_name(node: NodeSpec, console=CONSOLE) -> dict:
    return {r.name: r for r in firewall_policy(SPEC, node, console)}


def sources(rule) -> set[str]:
    return {str(n) for n in rule.sources}


def test_etcd_client_port_from_every_node_and_peer_port_from_etcd_members_only():
    rules = rules_by_name(NODE1)
    nodes = {f"{n.address}/32" for n in SPEC.nodes}
    assert rules["etcd_client"].ports == (2379,)
    assert sources(rules["etcd_client"]) == nodes  # node3 runs Patroni, not etcd: a client
    assert rules["etcd_peer"].ports == (2380,)
    # four nodes: the last database node is left out of etcd (an odd member count)
    assert sources(rules["etcd_peer"]) == {"198.18.0.10/32", "198.18.0.11/32", "198.18.0.12/32"}


def test_database_node_lets_nodes_and_console_reach_patroni_and_clients_reach_postgres():
    rules = rules_by_name(NODE1)
    nodes = {f"{n.address}/32" for n in SPEC.nodes}
    assert set(rules) == {"etcd_client", "etcd_peer", "patroni", "postgres", "fastpath"}
    # the fast-path peer answers the witness (the first proxy) only
    assert sources(rules["fastpath"]) == {f"{SPEC.proxy.address}/32"}
    assert rules["fastpath"].ports == (8010,)
    assert sources(rules["patroni"]) == nodes | {"192.0.2.7/32"}
    assert "10.20.0.0/16" not in sources(rules["patroni"])  # clients never reach Patroni
    assert sources(rules["postgres"]) == nodes | {
        "192.0.2.7/32",
        "10.20.0.0/16",
        "2001:db8:1::/48",
    }


def test_proxy_guards_its_listeners_frontends_and_stats_for_the_console_only():
    rules = rules_by_name(PROXY)
    assert set(rules) == {"etcd_client", "etcd_peer", "proxy", "stats"}
    assert rules["proxy"].ports == (5432, 5433, 8080)
    assert "10.20.0.0/16" in sources(rules["proxy"])
    assert sources(rules["stats"]) == {"192.0.2.7/32"}
    text = firewall_config(SPEC, PROXY, CONSOLE)
    assert "8008" not in text  # no Patroni on the proxy
    assert "tcp dport { 5432, 5433, 8080 } ip saddr != @proxy_v4 counter drop" in text


def test_script_replaces_our_table_in_one_transaction_and_only_drops():
    text = firewall_config(SPEC, NODE1, CONSOLE)
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines[:3] == [
        "add table inet hacenter",
        "delete table inet hacenter",
        "table inet hacenter {",
    ]
    assert "policy accept;" in text and "policy drop" not in text
    verdicts = [line.split(" comment ")[0].split()[-1] for line in lines if "saddr !=" in line]
    assert len(verdicts) == 10 and set(verdicts) == {"drop"}
    # the only accept is loopback's, and an accept ends only our own chain
    assert [line.strip() for line in lines if "accept" in line.split()] == ['iif "lo" accept']
    assert "22" not in {p for r in firewall_policy(SPEC, NODE1, CONSOLE) for p in map(str, r.ports)}


def test_each_family_has_its_own_set_and_rule():
    text = firewall_config(SPEC, NODE1, CONSOLE)
    assert "tcp dport 5432 ip saddr != @postgres_v4 counter drop" in text
    assert "tcp dport 5432 ip6 saddr != @postgres_v6 counter drop" in text
    v6 = text.split("set postgres_v6 {", 1)[1].split("\n\t}", 1)[0]
    assert "elements = { 2001:db8:1::/48 }" in v6
    # no IPv6 node: the etcd v6 sets are empty, so no IPv6 source reaches etcd
    etcd_v6 = text.split("set etcd_peer_v6 {", 1)[1].split("\n\t}", 1)[0]
    assert "elements" not in etcd_v6


def test_overlapping_sources_are_merged_for_nfts_interval_sets():
    text = firewall_config(SPEC, NODE1, ["198.18.0.0/24", "198.18.0.1"])
    patroni = text.split("set patroni_v4 {", 1)[1].split("\n\t}", 1)[0]
    assert "elements = { 198.18.0.0/24 }" in patroni


def test_ipv6_nodes_and_console():
    spec = replace(
        SPEC,
        nodes=(
            NodeSpec("proxy", "2001:db8::10", "proxy"),
            NodeSpec("node1", "2001:db8::11", "database"),
            NodeSpec("node2", "2001:db8::12", "database"),
        ),
    )
    text = firewall_config(spec, spec.nodes[1], ["2001:db8:ff::/64"])
    peers = text.split("set etcd_peer_v6 {", 1)[1].split("\n\t}", 1)[0]
    assert "2001:db8::10" in peers and "2001:db8::12" in peers
    assert "2001:db8:ff::/64" in text.split("set patroni_v6 {", 1)[1].split("\n\t}", 1)[0]


@pytest.mark.parametrize(
    ("console", "message"),
    [
        ([], "console's address is unknown"),
        (["not-an-address"], "'not-an-address' is not an address or CIDR"),
        (["10.0.0.5/24"], "'10.0.0.5/24' is not an address or CIDR"),  # host bits set
        (["10.0.0.0/8; drop"], "is not an address or CIDR"),
    ],
)
def test_bad_console_networks_are_refused(console, message):
    with pytest.raises(ValueError, match=message):
        firewall_config(SPEC, NODE1, console)


def test_a_node_of_another_cluster_is_refused():
    with pytest.raises(ValueError, match="not a node of pg1"):
        firewall_policy(SPEC, NodeSpec("other", "198.18.0.99", "database"), CONSOLE)


def test_console_networks_accepts_addresses_and_cidrs():
    assert [str(n) for n in console_networks([" 192.0.2.7 ", "10.0.0.0/8", "::1"])] == [
        "192.0.2.7/32",
        "10.0.0.0/8",
        "::1/128",
    ]


def test_unit_loads_the_table_before_the_network_and_deletes_it_when_stopped():
    unit = firewall_unit(SPEC)
    assert "Type=oneshot\nRemainAfterExit=yes\n" in unit
    assert f"ExecStart=/usr/sbin/nft -f {CONFIG_PATH}\n" in unit
    assert "ExecStop=-/usr/sbin/nft delete table inet hacenter\n" in unit
    assert "Before=network-pre.target\n" in unit and "DefaultDependencies=no\n" in unit
    assert "WantedBy=multi-user.target" in unit


def _nft_in_private_netns() -> bool:
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-n", "nft", "list", "tables"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _nft_in_private_netns(), reason="needs root, nft and unshare -n")
@pytest.mark.parametrize("node", [PROXY, NODE1], ids=["proxy", "database"])
def test_nft_loads_the_script_twice_in_a_private_namespace(tmp_path, node):
    path = tmp_path / "firewall.nft"
    path.write_text(firewall_config(SPEC, node, ["192.0.2.0/24", "2001:db8:ff::/64"]))
    # loaded twice: the second load replaces the table (add + delete + define) without error
    script = f'nft -f "{path}" && nft -f "{path}" && nft -s list ruleset'
    done = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("table inet hacenter {") == 1
    assert done.stdout.count("chain input {") == 1


def test_pgbackrest_port_is_open_between_the_clusters_hosts_only_when_backed_up():
    assert "pgbackrest" not in rules_by_name(NODE1)
    backed = replace(SPEC, backup_stanza="pg1", backup_repo="proxy")
    nodes = {f"{n.address}/32" for n in SPEC.nodes}
    for node in (PROXY, NODE1):  # the repository host and a database node
        rule = {r.name: r for r in firewall_policy(backed, node, CONSOLE)}["pgbackrest"]
        assert rule.ports == (8432,)
        assert sources(rule) == nodes  # neither the console nor the clients
    elsewhere = replace(backed, backup_repo="node1")
    assert "pgbackrest" not in {r.name for r in firewall_policy(elsewhere, PROXY, CONSOLE)}
    assert "tcp dport 8432 ip saddr != @pgbackrest_v4" in firewall_config(backed, NODE1, CONSOLE)
