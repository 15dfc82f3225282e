"""SQL on a node through PostgreSQL's local socket, as the postgres user (peer auth).

SQL goes through stdin, never the command line, so passwords in it do not show in `ps`.
"""

import shlex

from clusters.models import Cluster, Node
from jobs.configs.spec import POSTGRES_PORT, SOCKET_DIR
from jobs.playbooks.base import StepContext, StepFailed
from jobs.playbooks.layout import patroni_layout


def _socket_dir(ctx: StepContext) -> str:
    """HA Center's socket directory, or the one an adopted cluster's Patroni configures (read
    by the adopt job into its layout)."""
    cluster = ctx.cluster
    if getattr(cluster, "origin", None) != Cluster.Origin.ADOPTED:
        return SOCKET_DIR
    return patroni_layout(cluster).socket_dir


def psql(
    ctx: StepContext,
    node: Node,
    sql: str,
    *,
    database: str = "postgres",
    echo: bool = True,
    check: bool = True,
    timeout: float = 60,
) -> list[str]:
    """Run SQL with psql on the node and return its unaligned, tuples-only output lines."""
    command = (
        "cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 "
        f"-h {shlex.quote(_socket_dir(ctx))} -p {POSTGRES_PORT} -d {shlex.quote(database)}"
    )
    lines: list[str] = []
    if echo:
        ctx.log(f"psql on {node.name}: {sql.strip().splitlines()[0][:120]}", host=node.name)
    result = ctx.run(
        command, node=node, stdin=sql.encode(), echo=False, collect=lines, timeout=timeout
    )
    if check and not result.ok:
        raise StepFailed(f"SQL failed on {node.name}: {(result.stderr_tail or ['?'])[-1]}")
    return lines


def lsn_to_int(lsn: str) -> int:
    """'16/B374D848' -> a comparable integer."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)
