"""The failover drill's writer (issue 21 part 6): it inserts a row through the cluster's proxy
every 50 ms, from the Celery worker that runs the drill, and keeps a ledger of what was
acknowledged, so the drill can say how long writes stopped and which acknowledged rows the
failover lost (jobs.drill_measure).

It writes where applications write (the floating address, else the first proxy, port 5432)
as the cluster's superuser, whose reserved connections still let it in on a busy cluster,
into `hacenter.failover_drill` of the `postgres` database: one row per insert, keyed by the
drill and an increasing id. An id whose commit failed may or may not have committed, so it
is never reused, and only returned commits count as acknowledged.
"""

import threading
import time

import psycopg2

from jobs.drill_measure import Ack

TABLE = "hacenter.failover_drill"
INTERVAL_S = 0.05
# A failed connection is tried again this soon: the new primary's first write is what the
# drill measures, so the writer must not sleep through it.
RETRY_S = 0.1
# However the job ends (canceled between two steps, when no step can stop it), the writer
# stops by itself after this long: more than the drill's off, takeover and count can take.
MAX_LIFETIME_S = 600
CREATE = (
    "CREATE SCHEMA IF NOT EXISTS hacenter; "
    f"CREATE TABLE IF NOT EXISTS {TABLE} (drill bigint NOT NULL, id bigint NOT NULL, "
    "at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (drill, id))"
)
INSERT = f"INSERT INTO {TABLE} (drill, id) VALUES (%s, %s) RETURNING inet_server_addr()::text"  # noqa: S608


class DrillWriter(threading.Thread):
    """Inserts increasing ids for drill `drill` through `dsn` (libpq keywords) until stopped."""

    def __init__(self, dsn: dict, drill: int, *, clock=time.monotonic) -> None:
        super().__init__(daemon=True, name=f"failover-drill-writer-{drill}")
        self.dsn = {"connect_timeout": 2, **dsn}
        self.drill = drill
        self.acks: list[Ack] = []
        self.errors: list[tuple[float, str]] = []  # (when, the error's first line)
        self._clock = clock
        self._stop_event = threading.Event()
        self._next_id = 1

    def run(self) -> None:
        conn = None
        ends = self._clock() + MAX_LIFETIME_S
        while not self._stop_event.is_set() and self._clock() < ends:
            try:
                if conn is None:
                    conn = psycopg2.connect(**self.dsn)
                    with conn, conn.cursor() as cur:
                        cur.execute(CREATE)
                with conn, conn.cursor() as cur:  # commits on leaving the block
                    cur.execute(INSERT, [self.drill, self._next_id])
                    server = cur.fetchone()[0].split("/")[0]
                self.acks.append(Ack(self._next_id, server, self._clock()))
                self._next_id += 1
            except psycopg2.Error as exc:
                said = str(exc).strip().splitlines()
                self.errors.append((self._clock(), said[0] if said else type(exc).__name__))
                if conn is not None:
                    conn.close()
                conn = None
                self._next_id += 1  # it may have committed: never reused
                self._stop_event.wait(RETRY_S)
                continue
            self._stop_event.wait(INTERVAL_S)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(30)


def stored_ids(dsn: dict, drill: int) -> set[int]:
    """The ids of drill `drill` the table holds, read through the proxy (the new primary)."""
    conn = psycopg2.connect(**{"connect_timeout": 5, **dsn})
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"SELECT id FROM {TABLE} WHERE drill = %s", [drill])  # noqa: S608
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def forget(dsn: dict, drill: int) -> None:
    """The drill's rows deleted once counted: the table keeps nothing between drills."""
    conn = psycopg2.connect(**{"connect_timeout": 5, **dsn})
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"DELETE FROM {TABLE} WHERE drill = %s", [drill])  # noqa: S608
    finally:
        conn.close()
