"""The application that follows the primary: HAProxy's combined check, Patroni's callbacks, the
callback script and its sudoers rule.

No network: the callback script runs for real under `sh` with a stand-in `sudo` and `logger`
on its PATH (they record what they were asked), `visudo` and `haproxy -c` check the files
where they are installed.
"""

import os
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from jobs.configs import HttpFrontend, haproxy_config, patroni_config_dict
from jobs.configs import application as files
from tests.unit.jobs.configs.test_configs import HAPROXY, make_spec

VISUDO = "/usr/sbin/visudo"
UNIT = "myapp.service"


def app_spec(**changes):
    spec = make_spec(frontends=(HttpFrontend(80, 8080, "/health"), HttpFrontend(8443, 443)))
    return replace(spec, **{"application_unit": UNIT, **changes})


def section(text: str, title: str) -> list[str]:
    """The stripped lines of one haproxy.cfg section."""
    lines = text.splitlines()
    start = lines.index(title)
    body = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        body.append(line.strip())
    return body


def test_haproxy_frontend_with_a_path_needs_the_primary_and_the_application() -> None:
    app = section(haproxy_config(app_spec()), "listen app_80")
    # One check sequence: Patroni's /primary on 8008, then the application's path on its port.
    assert app[app.index("option httpchk") :][:8] == [
        "option httpchk",
        "http-check connect port 8008",
        "http-check send meth OPTIONS uri /primary",
        "http-check expect status 200",
        "http-check connect",
        "http-check send meth GET uri /health ver HTTP/1.1 hdr Host localhost",
        "http-check expect status 200-399",
        "default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions",
    ]
    assert "server node1 192.0.2.11:8080 check" in app
    assert not any("check port" in line for line in app)


def test_haproxy_frontend_without_a_path_follows_patroni_alone() -> None:
    app = section(haproxy_config(app_spec()), "listen app_8443")
    assert "http-check send meth OPTIONS uri /primary" in app
    assert not any(line.startswith("http-check connect") for line in app)
    assert "server node2 192.0.2.12:443 check port 8008" in app


@pytest.mark.parametrize("path", ["health", "/a b", "/a#b", '/a"b', "/a\\b", "/${HOME}", "/é"])
def test_spec_refuses_a_check_path_that_would_change_the_config(path: str) -> None:
    with pytest.raises(ValueError, match="check path"):
        HttpFrontend(80, 8080, path)


@pytest.mark.parametrize(
    "unit", ["myapp", "-x.service", "a b.service", "a;b.service", "a'.service"]
)
def test_spec_refuses_a_unit_that_is_not_a_service_name(unit: str) -> None:
    with pytest.raises(ValueError, match="Application unit"):
        app_spec(application_unit=unit)


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="HAProxy is not installed")
def test_haproxy_accepts_the_combined_check(tmp_path: Path) -> None:
    state = tmp_path / "server-state"
    state.write_text("1\n")
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        haproxy_config(app_spec(), socket_path=str(tmp_path / "s.sock"), state_file=str(state))
    )
    result = subprocess.run(
        [HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "[WARNING]" not in output, output


def test_patroni_runs_the_callback_on_every_change_only_with_a_unit() -> None:
    spec = app_spec()
    node = spec.database_nodes[0]
    callbacks = patroni_config_dict(spec, node)["postgresql"]["callbacks"]
    path = "/usr/local/lib/hacenter/demo-app-callback"
    assert callbacks == {a: path for a in ("on_start", "on_stop", "on_restart", "on_role_change")}
    plain = replace(spec, application_unit="")
    assert "callbacks" not in patroni_config_dict(plain, node)["postgresql"]


def test_sudoers_rule_allows_start_and_stop_of_the_unit_only(tmp_path: Path) -> None:
    rule = files.sudoers_rule(app_spec())
    grants = [line for line in rule.splitlines() if not line.startswith("#")]
    assert grants == [
        "postgres ALL=(root) NOPASSWD: /usr/bin/systemctl start myapp.service, "
        "/usr/bin/systemctl stop myapp.service"
    ]
    assert "." not in files.sudoers_path(app_spec()).rsplit("/", 1)[1]  # sudo skips dotted names
    if not os.path.exists(VISUDO):
        pytest.skip("visudo is not installed")
    path = tmp_path / "rule"
    path.write_text(rule)
    path.chmod(0o440)
    checked = subprocess.run(
        [VISUDO, "-c", "-f", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def run_callback(tmp_path: Path, *args: str, sudo_status: int = 0) -> tuple[int, list[str]]:
    """Run the callback script with stand-ins for sudo and logger; (exit status, their calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    calls.write_text("")
    for name, status in (("sudo", sudo_status), ("logger", 0)):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\nexit {status}\n')
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    script = tmp_path / "callback"
    script.write_text(files.callback_script(app_spec()))
    result = subprocess.run(
        ["sh", str(script), *args],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, calls.read_text().splitlines()


@pytest.mark.parametrize(
    ("args", "verb"),
    [
        (("on_role_change", "primary", "demo"), "start"),
        (("on_start", "master", "demo"), "start"),  # Patroni before 3.0 said master
        (("on_restart", "primary", "demo"), "start"),
        (("on_role_change", "replica", "demo"), "stop"),
        (("on_role_change", "demoted", "demo"), "stop"),
        (("on_start", "standby_leader", "demo"), "stop"),  # a standby cluster takes no writes
        (("on_stop", "primary", "demo"), "stop"),
    ],
)
def test_callback_starts_the_unit_on_the_primary_and_stops_it_elsewhere(
    tmp_path: Path, args: tuple[str, ...], verb: str
) -> None:
    status, calls = run_callback(tmp_path, *args)
    assert status == 0
    assert calls[0] == f"sudo -n /usr/bin/systemctl {verb} {UNIT}"
    assert calls[1] == f"logger -t hacenter-app -- {UNIT}: {verb} done ({args[0]}, role {args[1]})"


def test_callback_ignores_other_actions(tmp_path: Path) -> None:
    assert run_callback(tmp_path, "on_reload", "primary", "demo") == (0, [])


def test_callback_reports_a_failed_start_to_the_journal(tmp_path: Path) -> None:
    status, calls = run_callback(tmp_path, "on_role_change", "primary", "demo", sudo_status=5)
    assert status == 5
    assert calls[1].startswith("logger -p user.err -t hacenter-app -- myapp.service: start failed")
