"""The fence agent on the witness, for the failover drill (jobs.playbooks.failover_drill): ask
the primary's device for its power, tell it off or on, wait until it confirms, and whether the
node's SSH answers once it is on. The agent gets its options and secret on stdin
(jobs.playbooks.fence_test.agent_run), never on its command line."""

import socket

from clusters.models import FenceDevice, Node
from jobs.playbooks import fence_test
from jobs.playbooks.base import StepContext, StepFailed


def device_of(ctx: StepContext, name: str) -> FenceDevice:
    """The fence device of the cluster's node `name` (it may have been removed meanwhile)."""
    device = FenceDevice.objects.filter(node__name=name, node__cluster=ctx.cluster)
    found = device.select_related("node").first()
    if found is None:
        raise StepFailed("the old primary's fence device was removed meanwhile")
    return found


def witness(ctx: StepContext) -> Node:
    """The first proxy, where the fence agents run."""
    if ctx.cluster.proxy_node is None:
        raise StepFailed("the cluster has no proxy any more: the fence agent runs there")
    return ctx.cluster.proxy_node


def agent(ctx: StepContext, device: FenceDevice, action: str) -> tuple[int, list[str], list[str]]:
    """Run the device's agent on the witness with `action`; its exit status and output."""
    return fence_test.agent_run(ctx, device, action, node=witness(ctx))


def power_state(ctx: StepContext, device: FenceDevice) -> tuple[str, str]:
    """The device's answer to `action=status`: ("on" / "off" / "", its one line)."""
    status, out, err = agent(ctx, device, "status")
    _ok, power, line = fence_test.judge(status, out, err)
    return power, line


def wait_power(ctx: StepContext, device: FenceDevice, want: str, timeout: float) -> str:
    """Ask the device until it says `want` ("on" / "off"); its line."""
    said: list[str] = []

    def reached() -> bool:
        state, line = power_state(ctx, device)
        said[:] = [line]
        return state == want

    try:
        ctx.wait_until(reached, timeout=timeout, interval=1, what=f"the device to say {want}")
    except StepFailed:
        raise StepFailed(
            f"{device.node.name}'s fence device did not confirm {want.upper()} within "
            f"{timeout:g} s (it last said: {said[0] if said else 'nothing'})"
        ) from None
    return said[0]


def power_on_again(ctx: StepContext, device: FenceDevice, why: str) -> None:
    """A drill must not leave the cluster without its old primary when the failover did not
    happen: the device is told `action=on` once, whatever it answers."""
    ctx.log(f"{why}: powering {device.node.name} on again")
    try:
        agent(ctx, device, "on")
    except Exception as exc:  # the step fails anyway, with its own reason
        ctx.log(f"powering {device.node.name} on failed too: {exc}")


def ssh_answers(address: str, port: int) -> bool:
    """Whether an SSH server answers at address:port with its banner (the job's connection
    pool would give up on the node for the rest of the run after one failed connection)."""
    try:
        with socket.create_connection((address, port), timeout=2) as sock:
            sock.settimeout(3)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False
