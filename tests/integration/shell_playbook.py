"""A test-only playbook: each step runs one command from the job's params on the job's node.

Lets the integration tests drive the real runner, worker and SSH path with commands of their
choice (5,000 lines, a long sleep); it exists only under tests.settings.
"""

from clusters.models import Cluster, Node
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    return [
        StepSpec("command", f"run command {i + 1}", node) for i in range(len(params["commands"]))
    ]


def command(ctx: StepContext) -> str:
    """Run the params' command for this step's position; fail on a non-zero exit."""
    cmd = ctx.job.params["commands"][ctx.step.position - 1]
    result = ctx.run(cmd, timeout=None)
    if not result.ok:
        raise StepFailed(f"exit {result.exit_status}")
    return f"exit 0, last line: {(result.stdout_tail or [''])[-1]}"


PLAYBOOK = Playbook(kind="test_shell", plan=plan, steps={"command": command})
