"""What setup needs to get right on a fresh systemd server, as pure logic: the units it writes,
the apt options it passes, how it reads apt's failures."""

from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError

from clusters.inventory.validators import validate_apt_proxy
from jobs.playbooks import daemons, distro_services, packages
from jobs.playbooks.base import StepFailed
from jobs.playbooks.setup_etcd import etcd_daemon
from jobs.playbooks.setup_finish import haproxy_daemon
from jobs.ssh_results import CommandTimeout
from tests.unit.jobs.playbooks.scripted_server import (
    SPEC,
    OneConnection,
    ScriptedConnection,
    scripted_context,
)


def node(name: str, kind: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, kind=kind)


def test_units_restart_with_a_limit_and_make_their_runtime_directory():
    unit = daemons.systemd_unit(haproxy_daemon())
    assert "Restart=on-failure" in unit
    # After 5 failed starts in 5 minutes the unit stays failed instead of restarting forever.
    assert "StartLimitIntervalSec=300\nStartLimitBurst=5" in unit.split("[Service]")[0]
    # /run is empty after a reboot: without this HAProxy cannot make its admin socket.
    assert "RuntimeDirectory=haproxy\nRuntimeDirectoryPreserve=yes" in unit
    assert "RuntimeDirectory" not in daemons.systemd_unit(etcd_daemon(SPEC))


def test_each_node_gets_the_packages_and_masks_for_its_role():
    assert packages.wanted(SPEC, node("node1", "database")) == [
        "postgresql-15",
        "python3",
        "python3-venv",
        "etcd-server",
        "etcd-client",
    ]
    # Three etcd members: the proxy and both database nodes.
    assert packages.wanted(SPEC, node("proxy", "proxy")) == [
        "haproxy",
        "etcd-server",
        "etcd-client",
    ]
    assert distro_services.competing_units(SPEC, node("proxy", "proxy")) == [
        "haproxy.service",
        "etcd.service",
    ]
    assert distro_services.competing_units(SPEC, node("node2", "database")) == ["etcd.service"]


def test_the_apt_proxy_is_one_quoted_option_and_absent_without_one():
    assert packages.apt_options(SimpleNamespace(apt_proxy="")) == packages.APT_COMMON
    assert packages.apt_options(SimpleNamespace(apt_proxy="http://198.19.0.1:3142")) == (
        f"{packages.APT_COMMON} -oAcquire::http::Proxy=http://198.19.0.1:3142"
    )
    # A failed fetch must fail the command: by default apt-get update only warns and exits 0.
    assert "APT::Update::Error-Mode=any" in packages.APT_COMMON


@pytest.mark.parametrize(
    "url", ["http://198.19.0.1:3142", "https://cache.example.net", "http://[2001:db8::1]:3142/"]
)
def test_proxy_urls_that_apt_accepts(url):
    validate_apt_proxy(url)


@pytest.mark.parametrize(
    "url", ["http://u:p@cache:3142", "http://cache:3142/x", "http://cache:3142;reboot", "cache"]
)
def test_proxy_urls_refused(url):
    with pytest.raises(ValidationError):
        validate_apt_proxy(url)


def test_apt_failures_are_told_by_apt_own_error_lines():
    tail = [
        "Reading package lists...",
        "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  "
        "Could not connect to deb.debian.org:80",
        "E: Some index files failed to download.",
    ]
    said = packages.apt_failure(tail)
    assert said.startswith("W: Failed to fetch") and said.endswith("failed to download.")
    assert "Reading package lists" not in said
    assert packages.apt_failure(["odd output"]) == "odd output"


class StallingConnection(ScriptedConnection):
    """apt-get update hangs (the SSH layer's timeout fires) the first `stalls` times."""

    def __init__(self, stalls: int) -> None:
        super().__init__(rules=[])
        self.stalls = stalls

    def run(self, command, **kwargs):
        if "update" in command and self.stalls:
            self.stalls -= 1
            self.commands.append(command)
            raise CommandTimeout("198.19.0.11:22: timed out after 300 s")
        return super().run(command, **kwargs)


def _refresh_on(connection: ScriptedConnection) -> None:
    ctx = scripted_context(
        node("node1", "database"), SimpleNamespace(apt_proxy="http://p:3142"), []
    )
    ctx.connections = OneConnection(connection)
    packages.refresh(ctx)


def test_a_stalled_apt_update_is_killed_and_run_once_more():
    connection = StallingConnection(stalls=1)
    _refresh_on(connection)
    assert sum("update" in c for c in connection.commands) == 2


def test_an_apt_update_that_stalls_twice_fails_the_step_and_says_so():
    connection = StallingConnection(stalls=2)
    with pytest.raises(StepFailed, match="did not end within 300 s, 2 times"):
        _refresh_on(connection)
    assert sum("update" in c for c in connection.commands) == 2
