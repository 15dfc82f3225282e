"""Setup and remove on a server that boots systemd, step by step against a scripted server:
the distribution's units masked before the install (else Debian's HAProxy comes back beside
ours after a reboot), a daemon that fails diagnosed from its journal and not left restarting,
our units removed by remove_cluster. tests/integration/test_fresh_servers_systemd.py does the
same on real Debian 12 servers."""

from types import SimpleNamespace

import pytest

from jobs.errors import StepFailed
from jobs.playbooks import daemons, remove, setup
from jobs.playbooks.setup_etcd import etcd_daemon
from tests.unit.jobs.playbooks.scripted_server import SPEC, Rule, scripted_context

SYSTEMD = Rule("[ -d /run/systemd/system ]")
CLUSTER = SimpleNamespace(apt_proxy="", http_frontends=[], adopt_database=False)


def node(name: str, kind: str) -> SimpleNamespace:
    return SimpleNamespace(pk=7, name=name, kind=kind, credential=SimpleNamespace(username="root"))


def test_the_install_masks_debian_haproxy_and_etcd_first_and_fetches_empty_lists():
    ctx = scripted_context(
        node("proxy", "proxy"),
        CLUSTER,
        [
            SYSTEMD,
            Rule("systemctl is-enabled", ["haproxy.service ", "etcd.service "]),
            Rule("dpkg-query", ["haproxy", "etcd-server", "etcd-client"]),
            Rule("ls -t /var/lib/apt/lists", []),  # a fresh image: no package lists at all
        ],
        spec=SPEC,
    )
    summary = setup.STEPS["install_packages"](ctx)
    server = ctx.connections.get(None)
    mask = server.ran("systemctl mask haproxy.service etcd.service")
    assert mask < server.ran("-q update") < server.ran("install -y")
    assert summary == (
        "installed haproxy, etcd-server, etcd-client (package lists refreshed); "
        "masked haproxy.service, etcd.service"
    )


PROCESS_MODE = Rule("[ -d /run/systemd/system ]", status=1)
DB_PACKAGES = ["postgresql-15", "python3-venv", "etcd-server", "etcd-client"]


def test_empty_package_lists_are_fetched_before_the_install():
    ctx = scripted_context(
        node("node1", "database"),
        CLUSTER,
        [PROCESS_MODE, Rule("dpkg-query", DB_PACKAGES), Rule("ls -t /var/lib/apt/lists", [])],
        spec=SPEC,
    )
    setup.STEPS["install_packages"](ctx)
    server = ctx.connections.get(None)
    assert server.ran("apt-get -o APT::Update::Error-Mode=any") == server.ran("-q update")
    assert server.ran("-q update") < server.ran("install -y")


def test_packages_no_source_has_are_all_named_and_nothing_is_installed():
    ctx = scripted_context(
        node("node1", "database"),
        CLUSTER,
        [
            PROCESS_MODE,
            Rule("dpkg-query", DB_PACKAGES),
            Rule("ls -t /var/lib/apt/lists", ["1764806400", "1764810000"]),  # an hour old
            Rule("apt-cache", ["postgresql-15", "etcd-server", "etcd-client"]),
        ],
        spec=SPEC,
    )
    with pytest.raises(StepFailed) as failed:
        setup.STEPS["install_packages"](ctx)
    assert "apt cannot find postgresql-15, etcd-server, etcd-client on node1" in str(failed.value)
    server = ctx.connections.get(None)
    server.ran("-q update")  # the lists were refreshed once before giving up
    assert not any("install -y" in c for c in server.commands)


def test_a_daemon_that_does_not_stay_up_is_told_by_its_journal_and_disabled():
    ctx = scripted_context(
        node("node2", "database"),
        CLUSTER,
        [
            SYSTEMD,
            Rule("systemctl show -p MainPID", ["0"]),
            Rule("-p ActiveState", ["ActiveState=activating NRestarts=1 MainPID=0"]),
            Rule("journalctl -u", ["listen tcp 198.19.0.12:2380: bind: address already in use"]),
        ],
    )
    with pytest.raises(StepFailed) as failed:
        daemons.start(ctx, ctx.node, etcd_daemon(SPEC))
    assert "bind: address already in use" in str(failed.value)
    ctx.connections.get(None).ran("systemctl disable --now hacenter-etcd-pg1.service")


@pytest.mark.parametrize(
    ("listening", "warning"),
    [([], False), (['LISTEN 0 4096 0.0.0.0:5432 0.0.0.0:* users:(("haproxy",pid=9,fd=7))'], True)],
)
def test_remove_takes_our_unit_away_and_names_a_listener_left(listening, warning):
    ctx = scripted_context(
        node("proxy", "proxy"),
        CLUSTER,
        [
            SYSTEMD,
            Rule("readlink /etc/systemd/system/", ["haproxy.service"]),
            Rule("ss -Hltnp", listening),
        ],
    )
    verdict = remove.stop_haproxy(ctx)
    server = ctx.connections.get(None)
    server.ran("systemctl disable --now hacenter-haproxy.service")
    server.ran("rm -f /etc/systemd/system/hacenter-haproxy.service")
    server.ran("systemctl unmask haproxy.service")
    assert getattr(verdict, "warning", False) == warning
    if warning:
        assert "still listening: 5432 by haproxy" in verdict.summary
