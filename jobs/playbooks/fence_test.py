"""Test fence device: ask a node's fence device for its power state from the witness.

A status query, never an off: the agent is started with ``action=status``. It runs on the
cluster's witness (the first proxy), where the fast-path agent will fence from while the
console may be down, so a passing test proves the witness reaches the device with these
options and this secret. The options and the secret go to the agent on stdin, never on its
command line. The result (when, ok or failed, its one line) is kept on the FenceDevice.
Non-mutating: it may run beside any other job.
"""

import re
import shlex

from django.utils import timezone

from clusters.inventory.fence_methods import METHODS, agent_input
from clusters.models import Cluster, FenceDevice, Node
from jobs.errors import JobRefused
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict

AGENT_DIR = "/usr/sbin"
# The agent's own timeouts (login 5 s, power 20 s) are shorter; this stops a hung one.
AGENT_TIMEOUT_S = 60
# fence agents' exit codes for action=status: 0 on, 2 off, anything else a failure.
EXIT_ON, EXIT_OFF = 0, 2
NOISE = ("Please use '-h' for usage",)
# fencing.py's logging: "2026-12-05 10:58:09,841 ERROR: …" (or "ERROR:root:…" in older ones).
LOG_PREFIX = re.compile(r"\A(?:\d{4}-\d\d-\d\d [\d:,.]+ )?(?:ERROR|WARNING|INFO|DEBUG):(?:root:)?")


def agent_command(method: str) -> str:
    """The command that runs the method's agent, reading its options from stdin. No option
    is on it: the secret would show in ``ps`` on the witness."""
    agent = shlex.quote(f"{AGENT_DIR}/{METHODS[method].agent}")
    return f"timeout {AGENT_TIMEOUT_S} {agent}"


def agent_run(
    ctx: StepContext, device: FenceDevice, action: str, node: Node | None = None
) -> tuple[int, list[str], list[str]]:
    """Run the device's agent with `action` on `node` (the step's own by default: the
    witness); its exit status, output and error lines. Options and secret go on stdin."""
    out: list[str] = []
    result = ctx.run(
        agent_command(device.method),
        node=node,
        sudo=False,
        stdin=agent_input(device.method, device.options, device.secret, action=action),
        collect=out,
        timeout=AGENT_TIMEOUT_S + 15,
    )
    return result.exit_status, out, result.stderr_tail


def answer_line(lines: list[str]) -> str:
    """The agent's one line: its last meaningful output line, without the logging prefix."""
    for line in reversed(lines):
        text = LOG_PREFIX.sub("", line.strip()).strip()
        if text and text not in NOISE:
            return text[:300]
    return ""


def judge(exit_status: int, stdout: list[str], stderr: list[str]) -> tuple[bool, str, str]:
    """(ok, power "on"/"off"/"", one line) from the agent's exit status and output."""
    status_line = next((ln.strip() for ln in stdout if ln.strip().startswith("Status:")), "")
    if exit_status == EXIT_ON and status_line:
        return True, "on", status_line
    if exit_status == EXIT_OFF and status_line:
        return True, "off", status_line
    if exit_status == 124:
        return False, "", f"no answer within {AGENT_TIMEOUT_S} s"
    said = answer_line(stderr) or answer_line(stdout) or "no output"
    return False, "", f"{said} (exit {exit_status})"


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    if node is None or node.kind != Node.Kind.DATABASE:
        raise JobRefused("name the database node whose fence device to test ('node')")
    if not FenceDevice.objects.filter(node=node).exists():
        raise JobRefused(f"{node.name} has no fence device; define one first")
    witness = cluster.proxy_node
    if witness is None:
        raise JobRefused(
            f"{cluster.name} has no proxy: the fence agent runs on the witness (the first proxy)"
        )
    return [
        StepSpec("fence_status", f"Ask {node.name}'s fence device for its power state", witness)
    ]


def fence_status(ctx: StepContext) -> Verdict:
    target = ctx.job.node
    device = FenceDevice.objects.filter(node=target).first() if target else None
    if device is None:
        raise StepFailed("the node's fence device was removed meanwhile")
    witness = ctx.node
    agent = device.agent
    present = ctx.run(
        f"test -x {shlex.quote(f'{AGENT_DIR}/{agent}')}", sudo=False, echo=False, timeout=30
    )
    if not present.ok:
        _record(device, False, "", f"{agent} is not installed on {witness.name}")
        raise StepFailed(
            f"{agent} is not installed on the witness {witness.name}: run setup, which installs "
            "Debian's fence-agents there once a node has a fence device"
        )
    ctx.log(f"{agent} on {witness.name}: action=status (options and secret on stdin)")
    ok, power, line = judge(*agent_run(ctx, device, "status"))
    _record(device, ok, power, line)
    if not ok:
        raise StepFailed(
            f"{agent} on {witness.name} could not read {target.name}'s power state: {line}. "
            "Check the address, port, user name and secret, and that the witness reaches it."
        )
    return Verdict(f"{target.name}: {line} (from {witness.name})")


def _record(device: FenceDevice, ok: bool, power: str, line: str) -> None:
    FenceDevice.objects.filter(pk=device.pk).update(
        last_test_at=timezone.now(),
        last_test_ok=ok,
        last_test_power=power,
        last_test_result=line[:300],
    )


PLAYBOOK = Playbook(
    kind="fence_test", plan=plan, steps={"fence_status": fence_status}, mutating=False
)
