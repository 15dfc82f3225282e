"""Setup's firewall step and its removal against a scripted server: what is checked before
anything is loaded, when it says "already", and what a bad setting or a refused file changes
(nothing). tests/integration/test_firewall_lab.py runs the same step on the lab's hosts."""

import hashlib
from types import SimpleNamespace

import pytest
from django.test import override_settings

from jobs.configs.firewall import CONFIG_PATH, firewall_unit
from jobs.errors import StepFailed
from jobs.playbooks import firewall
from tests.unit.jobs.playbooks.scripted_server import SPEC, Rule, scripted_context

SYSTEMD = Rule("[ -d /run/systemd/system ]")
PROCESS_MODE = Rule("[ -d /run/systemd/system ]", status=1)
CONSOLE = Rule("SSH_CONNECTION", ["198.19.0.1"])
UNIT_HASH = hashlib.sha256(firewall_unit(SPEC).encode()).hexdigest()


def cluster(**extra) -> SimpleNamespace:
    return SimpleNamespace(
        name="pg1", firewall=True, apt_proxy="", http_frontends=[], adopt_database=False, **extra
    )


def node(name: str = "node1", kind: str = "database") -> SimpleNamespace:
    return SimpleNamespace(pk=7, name=name, kind=kind, credential=SimpleNamespace(username="root"))


def run_step(rules, the_cluster=None):
    ctx = scripted_context(node(), the_cluster or cluster(), rules, spec=SPEC)
    return ctx, ctx.connections.get(None)


def test_first_run_checks_then_loads_the_table_and_enables_the_unit():
    ctx, server = run_step([SYSTEMD, CONSOLE, Rule("cmp -s", status=1), Rule("unshare", status=1)])
    summary = firewall.firewall(ctx)
    upload = server.uploads[firewall.CANDIDATE].decode()
    assert "tcp dport 8008 ip saddr != @patroni_v4 counter drop" in upload
    assert "198.19.0.1" in upload.split("set patroni_v4 {", 1)[1].split("\n\t}", 1)[0]
    checked = server.ran(f"nft -c -f {firewall.CANDIDATE}")
    loaded = server.ran(f"nft -f {CONFIG_PATH}")
    assert checked < server.ran("mv -f") < loaded < server.ran("systemctl enable")
    assert "ExecStop=-/usr/sbin/nft delete table inet hacenter" in (
        server.uploads[firewall.UNIT_PATH].decode()
    )
    assert "systemctl restart" not in " ".join(server.commands)  # its stop would open the ports
    assert summary.startswith("table inet hacenter loaded (2379, 2380, 8008, 5432, 8010 guarded)")
    assert "console 198.19.0.1 (this SSH session)" in summary
    assert "hacenter-firewall.service written and enabled" in summary


def test_second_run_says_already_when_table_file_and_unit_match():
    ctx, server = run_step(
        [
            SYSTEMD,
            CONSOLE,
            Rule("sha256sum", [f"{UNIT_HASH}  {firewall.UNIT_PATH}"]),
            Rule("systemctl is-enabled", ["enabled", "active"]),
        ]
    )
    summary = firewall.firewall(ctx)
    assert summary.startswith("firewall already as wanted (2379, 2380, 8008, 5432, 8010 guarded")
    assert not [c for c in server.commands if c.startswith(f"nft -f {CONFIG_PATH}")]
    assert firewall.UNIT_PATH not in server.uploads


def test_process_mode_only_loads_it():
    ctx, server = run_step([PROCESS_MODE, CONSOLE, Rule("cmp -s", status=1)])
    summary = firewall.firewall(ctx)
    assert "process mode: loaded now, not kept across a reboot" in summary
    assert firewall.UNIT_PATH not in server.uploads


def test_a_file_nft_refuses_is_removed_and_nothing_is_loaded():
    ctx, server = run_step([SYSTEMD, CONSOLE, Rule("nft -c -f", ["Error: syntax"], status=1)])
    with pytest.raises(StepFailed, match="nft refused the firewall for node1: Error: syntax"):
        firewall.firewall(ctx)
    assert server.ran(f"rm -f {firewall.CANDIDATE}")
    assert not [c for c in server.commands if c.startswith(("nft -f", "mv -f", "systemctl"))]


@override_settings(HACENTER_CONSOLE_NETWORKS=["10.0.0.5/24"])
def test_a_bad_console_network_setting_fails_before_anything_is_written():
    ctx, server = run_step([SYSTEMD, CONSOLE])
    with pytest.raises(StepFailed, match=r"'10.0.0.5/24' is not an address or CIDR"):
        firewall.firewall(ctx)
    assert server.uploads == {}


@override_settings(HACENTER_CONSOLE_NETWORKS=["10.9.0.0/16"])
def test_configured_console_networks_join_the_session_address():
    ctx, server = run_step([PROCESS_MODE, Rule("SSH_CONNECTION", ["::ffff:198.19.0.1"])])
    summary = firewall.firewall(ctx)
    patroni = server.uploads[firewall.CANDIDATE].decode().split("set patroni_v4 {", 1)[1]
    assert "10.9.0.0/16" in patroni.split("\n\t}", 1)[0]
    # a dual-stack sshd shows an IPv4 console as ::ffff:a.b.c.d; the table needs the IPv4 form
    assert "198.19.0.1 (this SSH session)" in summary
    assert "10.9.0.0/16 (HACENTER_CONSOLE_NETWORKS" in summary


def test_missing_nft_is_installed_first():
    ctx, server = run_step(
        [PROCESS_MODE, CONSOLE, Rule("command -v nft", status=1), Rule("dpkg-query", ["nftables"])]
    )
    summary = firewall.firewall(ctx)
    assert server.ran("install -y") < server.ran(f"nft -c -f {firewall.CANDIDATE}")
    assert summary.startswith("installed nftables")


def test_firewall_off_removes_our_table_unit_and_file():
    ctx, server = run_step([SYSTEMD], the_cluster=cluster())
    ctx.job.cluster.firewall = False
    summary = firewall.firewall(ctx)
    assert summary == (
        "firewall off for pg1: removed table inet hacenter, hacenter-firewall.service, "
        f"{CONFIG_PATH}"
    )
    assert server.ran("systemctl disable --now hacenter-firewall.service")
    assert server.ran("nft delete table inet hacenter")
    assert server.uploads == {}


def test_remove_on_a_node_without_our_firewall_says_so():
    ctx, _server = run_step(
        [
            SYSTEMD,
            Rule(f"test -e {firewall.UNIT_PATH}", status=1),
            Rule("list table inet hacenter", status=1),
            Rule(f"test -e {CONFIG_PATH}", status=1),
        ]
    )
    assert firewall.firewall_remove(ctx) == "no firewall of ours here"
