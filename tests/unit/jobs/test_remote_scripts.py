"""The shell scripts HA Center runs on nodes, run here on real processes and files: the sweep
of an earlier attempt's leftovers and the atomic upload, and how commands are wrapped."""

import contextlib
import hashlib
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from jobs import remote_scripts
from jobs.remote_scripts import build_kill_script, build_remote_command, build_sweep_command


def start(command: str, tag: str = "", **kwargs) -> tuple[subprocess.Popen, int]:
    """Run a command as Connection.run does on a node; the process and its process group."""
    proc = subprocess.Popen(
        ["bash", "-c", build_remote_command(command, False, tag)],
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
    return proc, int(proc.stderr.readline().removeprefix(remote_scripts.PID_MARKER))


def wait_until(predicate, what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


NASTY = """echo a; rm -rf / $(x) `y` '"' \\ $HOME *"""


def test_remote_command_quotes_every_metacharacter() -> None:
    line = build_remote_command(NASTY, sudo=False)
    argv = shlex.split(line)

    assert argv[:4] == ["setsid", "-w", "sh", "-c"]
    assert argv[-2:] == ["hc", NASTY]  # the command arrives as one untouched argument
    assert f'echo "{remote_scripts.PID_MARKER}$$" >&2;' in argv[4]
    assert shlex.quote(NASTY) in line


def test_remote_command_carries_its_tag_in_the_environment() -> None:
    plain = shlex.split(build_remote_command("id -u", sudo=True))
    tagged = shlex.split(build_remote_command("id -u", sudo=True, tag="job-7"))
    assert tagged == [*plain[:3], "env", "HACENTER_JOB=job-7", *plain[3:]]


def test_remote_command_sudo_wrapping() -> None:
    plain = shlex.split(build_remote_command("id -u", sudo=False))
    sudo = shlex.split(build_remote_command("id -u", sudo=True))
    assert sudo == ["sudo", "-n", "--", *plain]


def test_remote_command_really_runs_through_sh(tmp_path: Path) -> None:
    # Run the built line through a local shell: prints the marker on stderr, then exactly NASTY's
    # intended output, and nothing gets executed by the quoting layers.
    marker = tmp_path / "pwned"
    command = f"printf '%s\\n' {shlex.quote(NASTY)}; echo ok >&2; exit 3 # $(touch {marker})"
    proc = subprocess.run(
        ["bash", "-c", build_remote_command(command, sudo=False)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3
    assert proc.stdout == NASTY + "\n"
    assert proc.stderr.splitlines()[0].startswith(remote_scripts.PID_MARKER)
    assert proc.stderr.splitlines()[1:] == ["ok"]
    assert not marker.exists()


def test_kill_script_terms_then_kills_the_process_group() -> None:
    script = build_kill_script(4242)
    assert script.index("kill -s TERM -- -4242") < script.index("kill -s KILL -- -4242")
    # A process group that is already gone is not an error.
    assert subprocess.run(["sh", "-c", build_kill_script(2**22 + 7)], check=False).returncode == 0


def test_sweep_kills_an_earlier_attempts_command_but_not_its_daemon_nor_other_jobs(
    tmp_path: Path,
) -> None:
    # An "earlier attempt" left a command running, with a child in its group and a daemon it
    # started in a session of its own; another job's command runs too. Locally, as on a node.
    tag = f"job-{os.getpid()}"
    daemon_pid = tmp_path / "daemon.pid"
    left, group = start(f"setsid sleep 300.1 & echo $! > {daemon_pid}; sleep 300.2 & wait", tag)
    other, other_group = start("sleep 300.3", f"{tag}0")
    try:
        wait_until(lambda: daemon_pid.exists() and daemon_pid.read_text().strip(), "a daemon")
        daemon = int(daemon_pid.read_text())

        sweep = build_remote_command(build_sweep_command(tag), False, tag)
        out = subprocess.run(["bash", "-c", sweep], capture_output=True, text=True, check=True)

        assert out.stdout.split() == [str(group)]
        left.wait(timeout=10)  # the command's group is gone
        os.kill(daemon, 0)  # still there: a daemon is not a leftover
        assert other.poll() is None  # another job's command is not touched
    finally:  # only what this test started, by process group
        daemon_group = int(daemon_pid.read_text()) if daemon_pid.exists() else None
        for pgid in [group, other_group, *([daemon_group] if daemon_group else [])]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        for proc in (left, other):
            proc.wait(timeout=10)


def test_sweep_refuses_a_tag_that_is_not_a_plain_word() -> None:
    with pytest.raises(ValueError, match="command tag"):
        build_sweep_command("job-1; rm -rf /")


NEW = b"new content\n" * 4096


def upload(target: Path) -> tuple[subprocess.Popen, int]:
    """An upload of NEW to `target` that waits for its bytes on stdin."""
    digest = hashlib.sha256(NEW).hexdigest()
    script = remote_scripts.build_upload_script(str(target), digest, 0o600, None, None)
    return start(script, stdin=subprocess.PIPE)


def temp_files(target: Path) -> list[Path]:
    return list(target.parent.glob(f".{target.name}.hc-*"))


@pytest.mark.parametrize("ending", ["stdin cut short", "TERM to its group"])
def test_an_interrupted_upload_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, ending: str
) -> None:
    target = tmp_path / "patroni.yml"
    target.write_bytes(b"old")
    proc, group = upload(target)
    proc.stdin.write(NEW[: len(NEW) // 2].decode())
    proc.stdin.flush()
    wait_until(lambda: temp_files(target), "the temp file")
    if ending == "stdin cut short":  # what a dropped connection looks like to the script
        proc.stdin.close()
    else:  # what the kill of a lost connection's command does
        os.killpg(group, signal.SIGTERM)
    assert proc.wait(timeout=10) != 0
    assert target.read_bytes() == b"old"
    assert temp_files(target) == []


def test_a_whole_upload_replaces_the_file_with_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "patroni.yml"
    target.write_bytes(b"old")
    proc, _ = upload(target)
    proc.communicate(NEW.decode(), timeout=10)
    assert proc.returncode == 0
    assert target.read_bytes() == NEW
    assert target.stat().st_mode & 0o777 == 0o600
    assert temp_files(target) == []


def test_an_upload_makes_the_directories_a_fresh_server_lacks(tmp_path: Path) -> None:
    # A fresh server has no /etc/hacenter: "Configure etcd" failed there with mktemp's error.
    target = tmp_path / "etc" / "hacenter" / "etcd-pg1.yml"
    proc, _ = upload(target)
    proc.communicate(NEW.decode(), timeout=10)
    assert proc.returncode == 0
    assert target.read_bytes() == NEW
