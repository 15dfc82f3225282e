"""The SSH connections of one job run, opened on demand with each node's pinned host key."""

from collections.abc import Callable

from django.conf import settings

from clusters.inventory import ssh_keys
from clusters.models import Node
from jobs import ssh
from jobs.errors import StepSkipped


class ConnectionPool:
    """One SSH connection per node per job run; a node that refused us is not retried in the run.

    Every command carries the job's tag. On a retry (`sweep`), each node's first connection
    first kills what the earlier attempts left running there, telling `log` about it.
    """

    def __init__(
        self,
        tag: str = "",
        sweep: bool = False,
        log: Callable[[str, str], None] | None = None,  # (text, node name)
    ) -> None:
        self.tag, self.sweep, self.log = tag, sweep, log
        self._open: dict[int, ssh.Connection] = {}
        self._failed: dict[int, ssh.SSHError] = {}

    def get(self, node: Node) -> ssh.Connection:
        if node.pk in self._failed:
            raise StepSkipped(f"skipped: no SSH session to {node.name} ({self._failed[node.pk]})")
        if node.pk not in self._open:
            self._open[node.pk] = self.connect(node)
        return self._open[node.pk]

    def connect(self, node: Node) -> ssh.Connection:
        """Open a connection with the node's pinned host key; remember a failure for the run."""
        cred = node.credential
        conn = ssh.Connection(
            node.address,
            node.ssh_port,
            ssh_keys.HostKey(node.host_key_type, node.host_key_base64, node.host_key_fingerprint),
            ssh.Auth(
                username=cred.username,
                private_key=cred.private_key or None,
                passphrase=cred.passphrase or None,
                password=cred.password or None,
            ),
            connect_timeout=settings.SSH_CONNECT_TIMEOUT_S,
            dead_peer_s=settings.SSH_DEAD_PEER_S,
            name=node.name,
            tag=self.tag,
        )
        try:
            conn.open()
        except ssh.SSHError as exc:
            self._failed[node.pk] = exc
            raise
        if self.sweep:
            self._sweep(conn, node)
        return conn

    def _sweep(self, conn: ssh.Connection, node: Node) -> None:
        try:
            groups = conn.sweep_leftovers()
        except ssh.SSHError as exc:  # the step may still work; say that it was not checked
            self._tell(f"could not check for commands an earlier attempt left running: {exc}", node)
            return
        if groups:
            listed = ", ".join(map(str, groups))
            self._tell(f"killed what an earlier attempt left running (groups {listed})", node)

    def _tell(self, text: str, node: Node) -> None:
        if self.log is not None:
            self.log(text, node.name)

    def close(self) -> None:
        for conn in self._open.values():
            conn.close()
        self._open.clear()
