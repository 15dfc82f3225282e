"""Self-tests of the systemd lab: hosts are bare Debian 12 servers that boot systemd, keep their
disks across power cycles, shut down cleanly, and reach packages only through the apt proxy.

One lab for the module (the session ``systemd_lab``). The last test takes it down, checks that
nothing is left behind, and brings it back fresh.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab import LabError, reachable
from tests.lab.apt_proxy import PORT as APT_PROXY_PORT
from tests.lab.network import listen_inodes
from tests.lab.probes import served_fingerprint, ssh, tcp_from
from tests.lab.sdmachine import (
    BRIDGE,
    BRIDGE_ADDRESS,
    SYS_NET,
    cgroup_pids,
    lab_cgroups,
    link_exists,
    mounts_under,
)
from tests.lab.systemd_lab import UP_STATES, SystemdLab
from tests.lab_fixtures import wait_until


@pytest.fixture(scope="module")
def systemd_lab(systemd_lab: SystemdLab) -> SystemdLab:
    """The session lab with fresh disks for this module, whatever ran on it before."""
    systemd_lab.up(fresh=True)
    return systemd_lab


pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
#: Fail fast instead of apt's retries with back-off (7 s per run without a route).
APT = ["apt-get", "-q", "-o", "Acquire::Retries=0", "--error-on=any"]


@pytest.fixture(scope="module", autouse=True)
def _fresh_hosts() -> None:
    """Replaces tests/lab/conftest.py's: this module uses the systemd lab, not the netns one."""


def alive(pid: int) -> bool:
    """True for a running process; False once it is gone or only a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_hosts_boot_systemd_and_lack_the_ha_stack(systemd_lab: SystemdLab) -> None:
    lab = systemd_lab
    for h in lab.hosts:
        assert lab.exec(h.name, ["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
        assert lab.system_state(h.name) in UP_STATES
        assert ssh(lab, h.name, "hostname; cat /etc/hostname").stdout.split() == [h.name] * 2
    # a customer's fresh server: the product has to install and configure everything itself
    packages = ["postgresql-15", "patroni", "etcd-server", "haproxy"]
    query = lab.exec("node1", ["dpkg-query", "-W", *packages], check=False)
    assert query.returncode != 0 and query.stderr.count("no packages found") == len(packages)
    for path in ("/etc/hacenter", "/opt/patroni", "/etc/apt/apt.conf.d/99mmdebstrap"):
        assert lab.exec("node1", ["test", "-e", path], check=False).returncode == 1, path
    lists = lab.exec("node1", ["ls", "/var/lib/apt/lists"]).stdout.split()
    assert sorted(lists) == ["lock", "partial"]
    ids = {lab.exec(h.name, ["cat", "/etc/machine-id"]).stdout for h in lab.hosts}
    assert len(ids) == len(lab.hosts)


def test_ssh_as_root_and_hcops_with_the_lab_key(systemd_lab: SystemdLab) -> None:
    assert ssh(systemd_lab, "node2", "id -un").stdout.strip() == "root"
    out = ssh(systemd_lab, "node2", "id -un; sudo -n true && sudo -n id -un", user="hcops")
    assert out.stdout.split() == ["hcops", "root"]


def test_each_host_serves_the_host_key_the_lab_reports(systemd_lab: SystemdLab) -> None:
    lab = systemd_lab
    served = {h.name: served_fingerprint(h.address) for h in lab.hosts}
    assert served == {h.name: lab.host_key_fingerprint(h.name) for h in lab.hosts}
    assert len(set(served.values())) == len(lab.hosts)


def test_no_way_out_but_the_apt_proxy(systemd_lab: SystemdLab) -> None:
    lab = systemd_lab
    for h in lab.hosts:
        assert lab.exec(h.name, ["ip", "route", "show", "default"]).stdout == ""
        # asks the routing table only: no packet is sent
        out = lab.exec(h.name, ["ip", "route", "get", "203.0.113.1"], check=False)
        assert out.returncode != 0 and "unreachable" in out.stderr
    assert tcp_from(lab, "node1", lab.host("node2").address, 22)
    assert tcp_from(lab, "node2", lab.proxy.address, 22)
    assert tcp_from(lab, "proxy", BRIDGE_ADDRESS, APT_PROXY_PORT)
    direct = lab.exec("node1", [*APT, "update"], check=False, timeout=120)
    assert direct.returncode != 0, direct.stdout
    via_proxy = [*APT, "-o", f"Acquire::http::Proxy={lab.apt_proxy_url}"]
    lab.exec("node1", [*via_proxy, "update"], timeout=300)
    policy = lab.exec("node1", ["apt-cache", "policy", "postgresql-15"]).stdout
    assert "Candidate: 15." in policy


def test_the_disk_survives_a_power_cycle(systemd_lab: SystemdLab) -> None:
    lab = systemd_lab
    host = lab.host("node2")
    lab.exec("node2", ["sh", "-c", "echo kept >/var/lib/hclab-marker"])
    machine_id = lab.exec("node2", ["cat", "/etc/machine-id"]).stdout
    fingerprint = served_fingerprint(host.address)
    before = lab.pids("node2")
    lab.power_off("node2")
    assert not lab.is_powered("node2") and lab.pids("node2") == []
    assert [pid for pid in before if alive(pid)] == []
    assert not reachable(host.address, timeout=1)
    with pytest.raises(LabError):
        lab.exec("node2", ["true"])
    lab.power_on("node2")
    assert lab.exec("node2", ["cat", "/var/lib/hclab-marker"]).stdout == "kept\n"
    assert lab.exec("node2", ["cat", "/etc/machine-id"]).stdout == machine_id
    assert served_fingerprint(host.address) == fingerprint
    assert lab.system_state("node2") in UP_STATES


def test_shutdown_is_clean_and_reboot_brings_sshd_back(systemd_lab: SystemdLab) -> None:
    lab = systemd_lab
    console = lab.host("node1").datadir / "console.log"
    seen = console.stat().st_size
    assert lab.shutdown("node1") is True
    assert not lab.is_powered("node1")
    with open(console, errors="replace") as log:
        log.seek(seen)
        assert "has been shut down" in log.read()  # nspawn's word for a clean power-off
    lab.power_on("node1")
    init = lab.init_pid("proxy")
    lab.reboot("proxy")
    assert lab.init_pid("proxy") not in (None, init)
    assert ssh(lab, "proxy", "systemctl is-system-running").stdout.strip() in UP_STATES


def test_cut_network_isolates_and_restore_reconnects(systemd_lab: SystemdLab) -> None:
    lab = systemd_lab
    host = lab.host("node1")
    lab.cut_network("node1")
    try:
        assert lab.network_is_cut("node1")
        assert not reachable(host.address, timeout=1)
        assert not tcp_from(lab, "node2", host.address, 22)
    finally:
        lab.restore_network("node1")
    assert not lab.network_is_cut("node1")
    wait_until(lambda: reachable(host.address, timeout=1), 15, message="node1 back on the network")


def test_cli_status_reports_the_running_lab(systemd_lab: SystemdLab) -> None:
    cmd = [sys.executable, "-m", "tests.lab", "--root", str(systemd_lab.root)]
    out = subprocess.run(
        [*cmd, "status", "--kind", "systemd"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for h in systemd_lab.hosts:
        assert systemd_lab.host_key_fingerprint(h.name) in out.stdout


def test_a_spare_host_is_off_until_asked_for_then_a_server_like_the_others(
    systemd_lab: SystemdLab,
) -> None:
    """spare1 (a restore's new server) boots only when a test powers it on; the cluster's
    hosts reach it, and it has no route out either."""
    lab = systemd_lab
    spare = lab.host("spare1")
    assert spare not in lab.hosts and spare.address == "198.19.0.21"
    lab.power_off("spare1")  # whatever an earlier test did
    assert not lab.is_powered("spare1")
    lab.power_on("spare1")
    assert lab.system_state("spare1") in UP_STATES
    assert served_fingerprint(spare.address) == lab.host_key_fingerprint("spare1")
    assert tcp_from(lab, "node1", spare.address, 22)
    lab.power_off("spare1")


def test_down_leaves_nothing_and_fresh_wipes_the_disks(systemd_lab: SystemdLab) -> None:
    """Runs last in this module: removes the lab, checks, then brings it back fresh."""
    lab = systemd_lab
    lab.heal()
    pids = [p for h in lab.hosts for p in lab.pids(h.name)] + cgroup_pids("apt-proxy")
    fingerprint = lab.host_key_fingerprint("node2")
    marker = lab.host("node2").upper / "var" / "lib" / "hclab-marker"
    try:
        lab.down()
        print(f"systemd lab down: {lab.last_down_seconds:.2f} s")
        assert lab_cgroups() == []
        assert mounts_under(lab.root) == []
        assert not link_exists(BRIDGE)
        assert [n for n in os.listdir(SYS_NET) if n.startswith("vb-hcsd-")] == []
        # no probe of lab addresses now: without the bridge they would be routed off the machine
        assert not listen_inodes(os.getpid(), BRIDGE_ADDRESS, APT_PROXY_PORT)
        wait_until(lambda: not [p for p in pids if alive(p)], 10, message="lab processes gone")
        assert marker.exists()  # down keeps the disks
        lab.down()  # idempotent
    finally:
        lab.up(fresh=True)
    print(f"systemd lab up (fresh, image cached): {lab.last_up_seconds:.2f} s")
    assert lab.exec("node2", ["test", "-e", "/var/lib/hclab-marker"], check=False).returncode == 1
    assert lab.host_key_fingerprint("node2") != fingerprint
    assert all(lab.system_state(h.name) in UP_STATES for h in lab.hosts)
