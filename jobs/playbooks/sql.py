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
    port: int = POSTGRES_PORT,
) -> list[str]:
    """Run SQL with psql on the node and return its unaligned, tuples-only output lines
    (`port`: another PostgreSQL on the node, e.g. a restore drill's copy)."""
    command = (
        "cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 "
        f"-h {shlex.quote(_socket_dir(ctx))} -p {int(port)} -d {shlex.quote(database)}"
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


def quote_ident(name: str) -> str:
    """An SQL identifier (role, database), always double-quoted, as PostgreSQL's quote_ident:
    whatever the name holds, it stays one name and never becomes SQL. Validators keep names to
    [a-z_][a-z0-9_]*, whose quoted form means the same as the bare one; this is the second wall
    (the Django admin once saved names no form would accept)."""
    if "\0" in name or not name:
        raise StepFailed(f"refusing an empty identifier or one with a NUL byte: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """An SQL string literal, as PostgreSQL's quote_literal: quotes doubled, and E'' with
    doubled backslashes when the value holds one (right whatever standard_conforming_strings
    says)."""
    if "\0" in value:
        raise StepFailed("refusing a string with a NUL byte in SQL")
    quoted = "'" + value.replace("'", "''") + "'"
    if "\\" in value:
        return "E" + quoted.replace("\\", "\\\\")
    return quoted


def lsn_to_int(lsn: str) -> int:
    """'16/B374D848' -> a comparable integer."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)
