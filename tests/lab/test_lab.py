"""Self-tests of the lab: hosts look like separate servers, and failures do what they claim.

These SSH in with the OpenSSH client trusting any host key (the console itself pins keys with
paramiko; that is tested elsewhere). The teardown test runs last and brings the lab back up.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab import USER_PASSWORDS, Lab, LabError, reachable
from tests.lab.network import BRIDGE, BRIDGE_ADDRESS, lab_netns, lab_veths, link_exists
from tests.lab.probes import served_fingerprint, ssh, tcp_from
from tests.lab_fixtures import wait_until

pytestmark = pytest.mark.lab

PGBIN = "/usr/lib/postgresql/15/bin"
PGDATA = "/var/lib/postgresql/15/labtest"
REPO = Path(__file__).resolve().parents[2]


def test_hostnames_are_the_host_names(lab_clean: Lab) -> None:
    got = {
        h.name: ssh(lab_clean, h.name, "hostname; cat /etc/hostname").stdout.split()
        for h in lab_clean.hosts
    }
    assert got == {h.name: [h.name, h.name] for h in lab_clean.hosts}


def test_each_host_serves_its_own_host_key(lab_clean: Lab) -> None:
    served = {h.name: served_fingerprint(h.address) for h in lab_clean.hosts}
    assert served == {h.name: lab_clean.host_key_fingerprint(h.name) for h in lab_clean.hosts}
    assert len(set(served.values())) == len(lab_clean.hosts)


def test_pid_spaces_are_isolated(lab_clean: Lab) -> None:
    lab_clean.exec("node1", ["sh", "-c", "setsid sleep 4321 </dev/null >/dev/null 2>&1 &"])
    try:
        for h in lab_clean.hosts:
            ps = ssh(lab_clean, h.name, "ps -e -o pid=,args=").stdout.splitlines()
            first = ps[0].split(None, 1)
            assert first[0] == "1" and f"/{h.name}/ssh/sshd_config" in first[1], ps
            others = [o.name for o in lab_clean.hosts if o.name != h.name]
            assert not [ln for ln in ps if any(f"/{o}/ssh/" in ln for o in others)], ps
            assert any("sleep 4321" in ln for ln in ps) == (h.name == "node1"), ps
            assert len(ps) < 10, ps  # sshd, its session, the shell and ps (plus the sleep)
    finally:
        ps = lab_clean.exec("node1", ["ps", "-e", "-o", "pid=,args="]).stdout.splitlines()
        for pid in [ln.split()[0] for ln in ps if "sleep 4321" in ln]:
            lab_clean.exec("node1", ["kill", pid], check=False)


def test_hosts_reach_each_other_and_the_console(lab_clean: Lab) -> None:
    with socket.create_server((BRIDGE_ADDRESS, 0)) as listener:
        port = listener.getsockname()[1]
        for src in lab_clean.hosts:
            assert lab_clean.exec(src.name, ["ip", "route", "show", "default"]).stdout == ""
            assert tcp_from(lab_clean, src.name, BRIDGE_ADDRESS, port), src.name
            for dst in lab_clean.hosts:
                assert tcp_from(lab_clean, src.name, dst.address, 22), (src.name, dst.name)


def test_users_keys_passwords_and_sudo(lab_clean: Lab) -> None:
    assert ssh(lab_clean, "node1", "id -un; echo $HOME", user="hcops").stdout.split() == [
        "hcops",
        "/home/hcops",
    ]
    assert ssh(lab_clean, "node1", "sudo -n id -un", user="hcops").stdout.strip() == "root"
    refused = ssh(lab_clean, "node1", "sudo -n true", user="hcnosudo", check=False)
    assert refused.returncode != 0 and "password is required" in refused.stderr
    paramiko = pytest.importorskip("paramiko")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        lab_clean.host("node2").address,
        username="hcops",
        password=USER_PASSWORDS["hcops"],
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    try:
        _, out, _ = client.exec_command("hostname")
        assert out.read().decode().strip() == "node2"
    finally:
        client.close()


def test_two_hosts_run_postgresql_side_by_side(lab_clean: Lab) -> None:
    nodes = [h.name for h in lab_clean.db_nodes[:2]]
    init = (
        f"cd / && runuser -u postgres -- {PGBIN}/initdb -D {PGDATA} -A trust -U postgres"
        f" >/var/log/postgresql/labtest-initdb.log 2>&1"
        f" && echo 'host all all 198.18.0.0/24 trust' >>{PGDATA}/pg_hba.conf"
    )
    start = (
        f"cd /; runuser -u postgres -- setsid {PGBIN}/postgres -D {PGDATA}"
        " -c 'listen_addresses=*' </dev/null >/var/log/postgresql/labtest.log 2>&1 &"
    )
    try:
        running = [subprocess.Popen([*lab_clean.ssh_argv(n), init]) for n in nodes]
        assert [p.wait(timeout=120) for p in running] == [0, 0]
        running = [subprocess.Popen([*lab_clean.ssh_argv(n), start]) for n in nodes]
        assert [p.wait(timeout=30) for p in running] == [0, 0]  # returns: nothing holds ssh open
        ready = [f"{PGBIN}/pg_isready", "-q", "-h", "/run/postgresql", "-p", "5432"]
        for n in nodes:
            wait_until(lambda n=n: lab_clean.exec(n, ready, check=False).returncode == 0, 30)
        psql = f"runuser -u postgres -- {PGBIN}/psql -X -At -h"
        ssh(lab_clean, nodes[0], f"{psql} /run/postgresql -c 'create table only_here()'")
        for src, dst in (nodes, nodes[::-1]):
            address = lab_clean.host(dst).address
            query = "select inet_server_addr(), to_regclass('only_here') is not null"
            row = ssh(lab_clean, src, f'{psql} {address} -c "{query}"').stdout.strip()
            assert row == f"{address}|{'t' if dst == nodes[0] else 'f'}"
    finally:
        for n in nodes:
            stop = f"runuser -u postgres -- {PGBIN}/pg_ctl -D {PGDATA} stop -m immediate"
            lab_clean.exec(n, ["sh", "-c", f"cd /; {stop} >/dev/null 2>&1; rm -rf {PGDATA}"])


def test_power_off_kills_everything_and_power_on_restores(lab_clean: Lab) -> None:
    host = lab_clean.host("node2")
    ssh(lab_clean, "node2", "cd /; setsid sleep 600 </dev/null >/dev/null 2>&1 &")
    fingerprint = served_fingerprint(host.address)
    before = lab_clean.pids("node2")
    assert len(before) >= 3  # unshare, sshd, sleep
    lab_clean.power_off("node2")
    assert not lab_clean.is_powered("node2") and lab_clean.pids("node2") == []
    assert [pid for pid in before if Path(f"/proc/{pid}").exists()] == []
    assert not reachable(host.address, timeout=1)
    with pytest.raises(LabError):
        lab_clean.exec("node2", ["true"])
    lab_clean.power_on("node2")
    assert served_fingerprint(host.address) == fingerprint
    assert "sleep 600" not in ssh(lab_clean, "node2", "ps -e -o args=").stdout


def test_cut_network_isolates_and_restore_reconnects(lab_clean: Lab) -> None:
    host = lab_clean.host("node1")
    lab_clean.cut_network("node1")
    try:
        assert lab_clean.network_is_cut("node1")
        assert not reachable(host.address, timeout=1)
        assert not tcp_from(lab_clean, "node2", host.address, 22)
        assert not tcp_from(lab_clean, "node1", lab_clean.host("node2").address, 22)
        assert lab_clean.exec("node1", ["hostname"]).stdout.strip() == "node1"  # still running
    finally:
        lab_clean.restore_network("node1")
    wait_until(lambda: reachable(host.address, timeout=1), 10, message="node1 back on the network")
    assert ssh(lab_clean, "node1", "hostname").stdout.strip() == "node1"


def test_rekey_changes_the_served_host_key(lab_clean: Lab, tmp_path: Path) -> None:
    proxy = lab_clean.proxy
    saved = tmp_path / "old_key"
    shutil.copyfile(proxy.datadir / "ssh" / "ssh_host_ed25519_key", saved)
    old = served_fingerprint(proxy.address)
    sshd_pid = lab_clean.init_pid("proxy")
    try:
        new = lab_clean.rekey("proxy")
        assert new != old and served_fingerprint(proxy.address) == new
        assert lab_clean.init_pid("proxy") == sshd_pid  # restarted in place, host still up
    finally:
        assert lab_clean.rekey("proxy", key_file=saved) == old
    assert served_fingerprint(proxy.address) == old


def test_exec_runs_inside_the_host(lab_clean: Lab) -> None:
    assert lab_clean.exec("node1", ["hostname"]).stdout.strip() == "node1"
    stat = lab_clean.exec("node1", ["stat", "-c", "%U %a", "/run/postgresql"]).stdout.strip()
    assert stat == "postgres 2775"
    assert lab_clean.exec("node1", ["sh", "-c", "exit 3"], check=False).returncode == 3
    with pytest.raises(LabError):
        lab_clean.exec("node1", ["false"])


def test_wipe_erases_the_disk_but_keeps_identity(lab_clean: Lab) -> None:
    lab_clean.exec("node2", ["touch", "/var/lib/postgresql/marker", "/etc/haproxy/marker"])
    fingerprint = lab_clean.host_key_fingerprint("node2")
    lab_clean.wipe("node2")
    assert lab_clean.is_powered("node2")
    gone = lab_clean.exec("node2", ["ls", "/var/lib/postgresql", "/etc/haproxy"]).stdout
    assert "marker" not in gone and "haproxy.cfg" in gone  # package defaults are back
    assert served_fingerprint(lab_clean.host("node2").address) == fingerprint


def test_cli_status_reports_the_running_lab(lab_clean: Lab) -> None:
    cmd = [sys.executable, "-m", "tests.lab", "--root", str(lab_clean.root), "status"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for h in lab_clean.hosts:
        assert lab_clean.host_key_fingerprint(h.name) in out.stdout


def alive(pid: int) -> bool:
    """True for a running process; False once it is gone or only a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_down_leaves_nothing_and_up_again(lab: Lab) -> None:
    """Runs last in this module: removes the session lab, checks, then brings it back."""
    pids = [pid for h in lab.hosts for pid in lab.pids(h.name)]
    try:
        lab.down()
        print(f"lab down: {lab.last_down_seconds:.2f} s")
        assert lab_netns() == [] and lab_veths() == [] and not link_exists(BRIDGE)
        # A killed process may linger as a zombie until the machine's init reaps it: dead all
        # the same. Anything else still alive after the deadline is a leak.
        wait_until(lambda: not [p for p in pids if alive(p)], 10, message="host processes gone")
        lab.down()  # idempotent
    finally:
        lab.up()
    print(f"lab up (2 db + proxy, not fresh): {lab.last_up_seconds:.2f} s")
    assert all(lab.is_powered(h.name) for h in lab.hosts)
