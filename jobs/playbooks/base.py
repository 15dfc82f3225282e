"""What a playbook is: an ordered plan of small steps, and what a step gets to work with."""

import hashlib
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from clusters.models import Cluster, Node
from jobs.connections import ConnectionPool
from jobs.errors import StepCancelled, StepFailed
from jobs.logwriter import LogWriter
from jobs.models import Job, LogLine, Step
from jobs.ssh import CommandResult


@dataclass(frozen=True)
class StepSpec:
    """One planned step: which function runs, what the admin reads, on which node."""

    name: str
    title: str
    node: Node | None = None


@dataclass(frozen=True)
class Verdict:
    """What a step returns: a one-line summary and whether the admin should look at it."""

    summary: str
    warning: bool = False

    @classmethod
    def warn(cls, summary: str) -> "Verdict":
        return cls(summary, warning=True)


StepFunction = Callable[["StepContext"], "Verdict | str"]


@dataclass
class Playbook:
    """A procedure: how to plan its steps for a job, and the functions that run them.

    `mutating`: it changes servers, so only one such job may be active per cluster.
    `keep_going`: run every step even after one fails (preflight reports every problem at once);
    otherwise the job stops at the first failed step and a retry resumes there.
    """

    kind: str
    plan: Callable[[Cluster, Node | None, dict], list[StepSpec]]
    steps: dict[str, StepFunction]
    mutating: bool = True
    keep_going: bool = False


class CancelFlag:
    """Reads the job's cancel flag from the database, at most twice a second."""

    def __init__(self, job_id: int, interval_s: float = 0.5) -> None:
        self.job_id = job_id
        self.interval_s = interval_s
        self._checked_at = 0.0
        self._set = False

    def __call__(self) -> bool:
        if not self._set and time.monotonic() - self._checked_at >= self.interval_s:
            self.check_now()
        return self._set

    def check_now(self) -> bool:
        """Read the flag now (between steps, where half a second of staleness is not wanted)."""
        self._checked_at = time.monotonic()
        self._set = self._set or Job.objects.filter(pk=self.job_id, cancel_requested=True).exists()
        return self._set


@dataclass
class StepContext:
    """Everything a step may use: its job, node, the log, SSH, progress and the cancel flag."""

    job: Job
    step: Step
    log_writer: LogWriter
    connections: ConnectionPool
    cancelled: CancelFlag
    facts: dict = field(default_factory=dict)  # shared between the steps of one run

    @property
    def cluster(self) -> Cluster:
        return self.job.cluster

    @property
    def node(self) -> Node:
        if self.step.node is None:
            raise StepFailed("this step needs a node and has none")
        return self.step.node

    def log(self, text: str, *, host: str = "") -> None:
        """A line from the console itself: what it does and why."""
        self.log_writer.write(text, stream=LogLine.Stream.CONSOLE, host=host)

    def run(
        self,
        command: str,
        *,
        node: Node | None = None,
        timeout: float | None = 120,
        sudo: bool = True,
        check: bool = False,
        echo: bool = True,
        stdin: bytes | None = None,
        collect: list[str] | None = None,
    ) -> CommandResult:
        """Run a shell command on a node (the step's by default), streaming its output to the log.

        `collect` receives every stdout line (the result keeps only the last few).
        """
        node = node or self.node
        conn = self.connections.get(node)

        def on_line(stream: str, line: str) -> None:
            if echo:
                self.log_writer.write(line, stream=stream, host=node.name)
            if collect is not None and stream == "stdout":
                collect.append(line)

        if echo:
            self.log(f"$ {command}", host=node.name)
        return conn.run(
            command,
            on_line=on_line,
            timeout=timeout,
            should_cancel=self.cancelled,
            sudo=sudo,
            check=check,
            stdin=stdin,
        )

    def output(self, command: str, *, sudo: bool = False, **kwargs) -> list[str]:
        """Every stdout line of a command that must succeed."""
        lines: list[str] = []
        self.run(command, sudo=sudo, check=True, collect=lines, **kwargs)
        return lines

    def ensure_file(
        self,
        path: str,
        content: str,
        *,
        node: Node | None = None,
        mode: int = 0o644,
        owner: str | None = None,
        group: str | None = None,
    ) -> bool:
        """Make the file on the node hold `content` (atomic upload); False when it already did.

        Compares SHA-256 first, so a re-run leaves an unchanged file, and its daemon, alone.
        """
        node = node or self.node
        data = content.encode()
        lines = self.output(
            f"sha256sum {shlex.quote(path)} 2>/dev/null || true", node=node, sudo=True, echo=False
        )
        if lines and lines[0].split()[0] == hashlib.sha256(data).hexdigest():
            return False
        self.connections.get(node).upload(path, data, mode=mode, owner=owner, group=group)
        self.log(f"wrote {path} ({len(data)} bytes, mode {mode:o})", host=node.name)
        return True

    def wait_until(
        self, probe: Callable[[], object], *, timeout: float, what: str, interval: float = 1.0
    ) -> object:
        """Poll `probe` until it returns something truthy; cancellable; StepFailed at the
        deadline, naming what did not happen."""
        deadline = time.monotonic() + timeout
        while True:
            if self.cancelled():
                raise StepCancelled(f"canceled while waiting for {what}")
            value = probe()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise StepFailed(f"{what} did not happen within {timeout:g} s")
            time.sleep(interval)

    def progress(self, percent: int) -> None:
        """Report how far a long step is, for the progress bar."""
        percent = max(0, min(100, int(percent)))
        Step.objects.filter(pk=self.step.pk).update(progress=percent)
        self.step.progress = percent
