"""A writer through the proxy that records every acknowledged commit and which node answered.

pgbench aborts on a lost connection; this one reconnects and keeps a ledger, so a test can prove
that no acknowledged write was lost and that two nodes never took writes at the same time.
"""

import threading
import time
from dataclasses import dataclass, field

import psycopg2


@dataclass
class Ack:
    id: int
    server: str  # the PostgreSQL node that committed it (inet_server_addr)
    at: float  # time.monotonic() when the commit returned


@dataclass(eq=False)  # threads are kept in sets: keep identity hashing
class ProxyWriter(threading.Thread):
    """Inserts increasing ids into `table` through `dsn` until stopped."""

    dsn: str
    table: str = "writer_ledger"
    interval_s: float = 0.05
    acks: list[Ack] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(daemon=True, name="proxy-writer")
        self._stop_event = threading.Event()
        self._next_id = 1

    def run(self) -> None:
        conn = None
        while not self._stop_event.is_set():
            try:
                if conn is None:
                    conn = psycopg2.connect(self.dsn, connect_timeout=2)
                    with conn, conn.cursor() as cur:
                        cur.execute(
                            f"CREATE TABLE IF NOT EXISTS {self.table} (id bigint PRIMARY KEY)"
                        )
                with conn, conn.cursor() as cur:  # commits on leaving the block
                    insert = f"INSERT INTO {self.table} (id) VALUES (%s) RETURNING "  # noqa: S608
                    cur.execute(insert + "inet_server_addr()::text", [self._next_id])
                    server = cur.fetchone()[0].split("/")[0]
                self.acks.append(Ack(self._next_id, server, time.monotonic()))
                self._next_id += 1
            except psycopg2.Error as exc:
                self.errors.append((time.monotonic(), str(exc).strip().splitlines()[0]))
                if conn is not None:
                    conn.close()
                conn = None
                # An id that failed may or may not have committed: never reuse it.
                self._next_id += 1
                time.sleep(0.2)
            self._stop_event.wait(self.interval_s)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)

    def servers_in_order(self) -> list[str]:
        """The sequence of nodes that acknowledged writes, repeats collapsed."""
        order: list[str] = []
        for ack in self.acks:
            if not order or order[-1] != ack.server:
                order.append(ack.server)
        return order

    def stored_ids(self, timeout: float = 60) -> set[int]:
        """Every id in the table, read through the proxy; retried while the primary is still
        starting up or moving (a round may end right after a restart)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = psycopg2.connect(self.dsn, connect_timeout=5)
                try:
                    with conn, conn.cursor() as cur:
                        cur.execute(f"SELECT id FROM {self.table}")  # noqa: S608
                        return {row[0] for row in cur.fetchall()}
                finally:
                    conn.close()
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def query_rows(dsn: str, sql: str) -> list[tuple]:
    """Rows of one query on its own short connection (the tests' look at what was stored)."""
    conn = psycopg2.connect(dsn, connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()
