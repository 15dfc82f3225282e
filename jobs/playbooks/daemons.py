"""Start, stop and query the cluster's daemons on a node.

Real servers run them as systemd units; hosts without systemd (containers, the test lab) use
HA Center's process mode: `setsid` + `setpriv` (which execs, so the pid file names the daemon
itself), a pid file under /run/hacenter, and a check of /proc/PID/cmdline so a reused pid is
never mistaken for ours.
"""

import shlex
from dataclasses import dataclass, field

from clusters.models import Node
from jobs.playbooks.base import StepContext, StepFailed

PID_DIR = "/run/hacenter"
LOG_DIR = "/var/log/hacenter"
SYSTEMD = "systemd"
PROCESS = "process"


@dataclass(frozen=True)
class Daemon:
    """One long-running program of the cluster on one node."""

    name: str  # unit / pid-file name, e.g. "patroni-pg1"
    argv: tuple[str, ...]
    user: str
    description: str
    env: dict[str, str] = field(default_factory=dict)
    # A directory under /run the daemon needs; /run is empty after every boot.
    runtime_dir: str = ""
    # A unit the server already has (an adopted cluster's own Patroni): started and stopped by
    # that name, its file never written by the console.
    unit_name: str = ""

    @property
    def pid_file(self) -> str:
        return f"{PID_DIR}/{self.name}.pid"

    @property
    def log_file(self) -> str:
        return f"{LOG_DIR}/{self.name}.log"

    @property
    def unit(self) -> str:
        return self.unit_name or f"hacenter-{self.name}.service"

    def command_line(self) -> str:
        env = " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(self.env.items()))
        return (f"env {env} " if env else "") + shlex.join(self.argv)


def init_system(ctx: StepContext, node: Node) -> str:
    """systemd when the node booted with it, process mode otherwise; a job param may force one."""
    forced = ctx.job.params.get("service_manager")
    if forced in (SYSTEMD, PROCESS):
        return forced
    cache = ctx.facts.setdefault("init_system", {})
    if node.pk not in cache:
        probe = ctx.run(
            "[ -d /run/systemd/system ] && command -v systemctl >/dev/null",
            node=node,
            sudo=False,
            echo=False,
        )
        cache[node.pk] = SYSTEMD if probe.ok else PROCESS
    return cache[node.pk]


def process_pid_script(daemon: Daemon) -> str:
    """Shell that prints the daemon's pid when it runs (pid file, live, same program)."""
    marker = shlex.quote(daemon.argv[-1])
    return (
        f'p=$(cat {shlex.quote(daemon.pid_file)} 2>/dev/null) && [ -n "$p" ] && '
        f"kill -0 \"$p\" 2>/dev/null && tr '\\0' ' ' < /proc/$p/cmdline | grep -qF -- {marker} "
        '&& echo "$p"'
    )


def pid(ctx: StepContext, node: Node, daemon: Daemon) -> int | None:
    """The daemon's pid if it runs on the node, else None."""
    if init_system(ctx, node) == SYSTEMD:
        script = f"systemctl show -p MainPID --value {shlex.quote(daemon.unit)}"
    else:
        script = process_pid_script(daemon)
    lines: list[str] = []
    ctx.run(script, node=node, echo=False, collect=lines)
    value = (lines or ["0"])[-1].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def start(ctx: StepContext, node: Node, daemon: Daemon) -> str:
    """Start the daemon unless it runs already; a verdict either way.

    A daemon that dies (or restarts) within its first seconds fails the step with its own last
    words, and under systemd its unit is disabled: it must not restart forever until the next
    setup run repairs what made it fail.
    """
    running = pid(ctx, node, daemon)
    if running:
        return f"{daemon.description} already running (pid {running})"
    systemd = init_system(ctx, node) == SYSTEMD
    if systemd:
        if not daemon.unit_name:
            ctx.connections.get(node).upload(
                unit_path(daemon), systemd_unit(daemon).encode(), mode=0o644
            )
        ctx.run(
            f"systemctl daemon-reload && systemctl reset-failed {shlex.quote(daemon.unit)} "
            f"2>/dev/null; systemctl enable --now {shlex.quote(daemon.unit)}",
            node=node,
            check=True,
        )
    else:
        ctx.run(process_start_script(daemon), node=node, check=True)
    started = stayed_up(ctx, node, daemon)
    if not started:
        why = diagnosis(ctx, node, daemon)
        if systemd:
            ctx.run(f"systemctl disable --now {shlex.quote(daemon.unit)}", node=node)
            why += f" ({daemon.unit} disabled until setup runs again)"
        raise StepFailed(f"{daemon.description} did not stay up on {node.name}: {why}")
    return f"{daemon.description} started (pid {started})"


def stayed_up(ctx: StepContext, node: Node, daemon: Daemon, seconds: float = 2.0) -> int | None:
    """The daemon's pid if it still runs `seconds` after its start without having restarted."""
    if init_system(ctx, node) != SYSTEMD:
        return pid(ctx, node, daemon)
    rounds = max(1, int(seconds / 0.5))
    script = (
        f"for i in $(seq {rounds}); do sleep 0.5; "
        f"systemctl show -p ActiveState -p NRestarts -p MainPID {shlex.quote(daemon.unit)} "
        "| tr '\\n' ' '; echo; done"
    )
    lines = ctx.output(script, node=node, echo=False)
    last = dict(item.split("=", 1) for item in (lines or [""])[-1].split() if "=" in item)
    restarted = any("NRestarts=0" not in line for line in lines)
    main_pid = int(last.get("MainPID", "0") or 0)
    if restarted or last.get("ActiveState") != "active" or main_pid <= 0:
        return None
    return main_pid


def diagnosis(ctx: StepContext, node: Node, daemon: Daemon) -> str:
    """The daemon's last words: its journal under systemd, its log file in process mode."""
    if init_system(ctx, node) == SYSTEMD:
        command = (
            f"journalctl -u {shlex.quote(daemon.unit)} -n 30 --no-pager -o cat 2>/dev/null "
            "| grep -v -e '^Started ' -e '^Stopped ' -e 'Scheduled restart job' "
            "-e 'Failed with result' -e 'Main process exited' -e 'Consumed ' | tail -n 5"
        )
    else:
        command = f"tail -n 5 {shlex.quote(daemon.log_file)} 2>/dev/null || true"
    lines = [line for line in ctx.output(command, node=node, sudo=True) if line.strip()]
    return " | ".join(lines)[-400:] or "it wrote nothing before it stopped"


def unit_path(daemon: Daemon) -> str:
    return f"/etc/systemd/system/{daemon.unit}"


def remove(ctx: StepContext, node: Node, daemon: Daemon, timeout_s: int = 30) -> str:
    """Stop the daemon for good: under systemd its unit file goes too."""
    verdict = stop(ctx, node, daemon, timeout_s)
    if init_system(ctx, node) == SYSTEMD:
        ctx.run(
            f"rm -f {shlex.quote(unit_path(daemon))} && systemctl daemon-reload && "
            f"{{ systemctl reset-failed {shlex.quote(daemon.unit)} 2>/dev/null || true; }}",
            node=node,
            check=True,
        )
        verdict += f"; {daemon.unit} removed"
    return verdict


def stop(ctx: StepContext, node: Node, daemon: Daemon, timeout_s: int = 30) -> str:
    """Stop the daemon (TERM, then KILL after `timeout_s`); fine when it is not running."""
    if init_system(ctx, node) == SYSTEMD:
        ctx.run(f"systemctl disable --now {shlex.quote(daemon.unit)} || true", node=node)
        return f"{daemon.description} stopped"
    running = pid(ctx, node, daemon)
    if not running:
        return f"{daemon.description} was not running"
    ctx.run(
        f"kill -TERM {running}; for i in $(seq {timeout_s * 5}); do kill -0 {running} "
        f"2>/dev/null || exit 0; sleep 0.2; done; kill -KILL {running}",
        node=node,
        check=True,
    )
    return f"{daemon.description} stopped (was pid {running})"


def process_start_script(daemon: Daemon) -> str:
    """setsid detaches from the SSH session; setpriv execs as the user, so $! is the daemon.
    The short sleep lets a daemon that dies on a bad config be seen dead by the check after."""
    runtime = f"mkdir -p /run/{shlex.quote(daemon.runtime_dir)} && " if daemon.runtime_dir else ""
    return (
        f"{runtime}mkdir -p {PID_DIR} {LOG_DIR} && chown {shlex.quote(daemon.user)} {LOG_DIR} && "
        f"touch {shlex.quote(daemon.log_file)} && "
        f"chown {shlex.quote(daemon.user)} {shlex.quote(daemon.log_file)} && cd / && "
        f"{{ setsid setpriv --reuid={shlex.quote(daemon.user)} "
        f"--regid={shlex.quote(daemon.user)} --init-groups -- {daemon.command_line()} "
        f"</dev/null >>{shlex.quote(daemon.log_file)} 2>&1 & echo $! > "
        f"{shlex.quote(daemon.pid_file)}; }} && sleep 0.3"
    )


def systemd_unit(daemon: Daemon) -> str:
    """The unit: restarted on failure, but at most 5 times in 5 minutes (then it stays failed
    and the monitor reports it) instead of forever."""
    env = "".join(f"Environment={shlex.quote(f'{k}={v}')}\n" for k, v in sorted(daemon.env.items()))
    runtime = (
        f"RuntimeDirectory={daemon.runtime_dir}\nRuntimeDirectoryPreserve=yes\n"
        if daemon.runtime_dir
        else ""
    )
    return (
        "# Generated by HA Center; changes here are overwritten.\n"
        f"[Unit]\nDescription={daemon.description} (HA Center)\n"
        "After=network-online.target\nWants=network-online.target\n"
        "StartLimitIntervalSec=300\nStartLimitBurst=5\n\n"
        f"[Service]\nUser={daemon.user}\n{env}{runtime}ExecStart={shlex.join(daemon.argv)}\n"
        "Restart=on-failure\nRestartSec=2\nKillMode=process\nTimeoutStopSec=60\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def restart(ctx: StepContext, node: Node, daemon: Daemon) -> str:
    """Stop and start `daemon` (its start checks it stays up)."""
    stop(ctx, node, daemon)
    return start(ctx, node, daemon)


def started_after(ctx: StepContext, node: Node, daemon: Daemon, path: str) -> bool:
    """Whether `daemon` runs and started after `path` was last written (it read that file)."""
    running = pid(ctx, node, daemon)
    if not running:
        return False
    script = (
        f"s=$(( $(date +%s) - $(ps -o etimes= -p {running}) )); "
        f'[ "$s" -ge "$(stat -c %Y {shlex.quote(path)})" ]'
    )
    return ctx.run(script, node=node, echo=False).ok
