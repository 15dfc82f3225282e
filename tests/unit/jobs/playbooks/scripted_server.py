"""A scripted server for unit tests of playbook steps: the real StepContext, with an SSH
connection that answers each command from a list of rules and records what was run.

Only the server is fake: the step's own logic (which commands, in what order, what it makes
of their answers) is what runs. The lab tests run the same steps on real servers.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace

from jobs.configs.spec import ClusterSpec, NodeSpec, Secrets
from jobs.playbooks.base import StepContext
from jobs.ssh import CommandResult
from jobs.ssh_results import CommandFailed

#: A three-node cluster (two database nodes and the proxy, all etcd members).
SPEC = ClusterSpec(
    name="pg1",
    postgres_version=15,
    replication="async",
    sync_strict=False,
    failover_profile="balanced",
    client_networks=(),
    nodes=(
        NodeSpec("node1", "198.19.0.11", "database"),
        NodeSpec("node2", "198.19.0.12", "database"),
        NodeSpec("proxy", "198.19.0.10", "proxy"),
    ),
    secrets=Secrets(*(f"s{i}" * 8 for i in range(6))),
)


@dataclass
class Rule:
    """A command containing ``match`` exits with ``status`` after printing ``stdout``."""

    match: str
    stdout: list[str] = field(default_factory=list)
    status: int = 0


@dataclass
class ScriptedConnection:
    """Answers like ``jobs.ssh.Connection.run``; the first matching rule wins, else exit 0."""

    rules: list[Rule]
    commands: list[str] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    is_root: bool = True

    def run(self, command, *, on_line=None, check=False, **_ignored) -> CommandResult:
        self.commands.append(command)
        rule = next((r for r in self.rules if r.match in command), Rule(""))
        for line in rule.stdout:
            if on_line is not None:
                on_line("stdout", line)
        result = CommandResult(rule.status, rule.stdout[-20:], [])
        if check and rule.status != 0:
            raise CommandFailed(f"exit {rule.status}: {command[:80]}", result)
        return result

    def upload(self, path: str, data: bytes, **_ignored) -> None:
        self.uploads[path] = data

    def ran(self, text: str) -> int:
        """The index of the first command containing ``text``; fails the test when none did."""
        found = [i for i, c in enumerate(self.commands) if text in c]
        assert found, f"no command contained {text!r}; ran: {self.commands}"
        return found[0]


class OneConnection:
    def __init__(self, connection: ScriptedConnection) -> None:
        self.connection = connection

    def get(self, node) -> ScriptedConnection:
        return self.connection


def scripted_context(node, cluster, rules: list[Rule], **facts) -> StepContext:
    """A StepContext for one step on `node` whose server answers by `rules`."""
    step = SimpleNamespace(pk=1, node=node, name="step")
    this_step_only = SimpleNamespace(select_related=lambda *related: [step])
    job = SimpleNamespace(
        params={},
        created=datetime(2026, 12, 4, tzinfo=UTC),
        cluster=cluster,
        steps=SimpleNamespace(filter=lambda **lookups: this_step_only),
    )
    writer = SimpleNamespace(write=lambda *a, **kw: None, redact=set())
    return StepContext(
        job=job,
        step=step,
        log_writer=writer,
        connections=OneConnection(ScriptedConnection(rules)),
        cancelled=lambda: False,
        facts=dict(facts),
    )
