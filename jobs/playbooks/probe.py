"""A probe writer through the proxy: how long did writes stop during a planned operation?"""

import itertools
import threading
import time

import psycopg2


class WriteProbe(threading.Thread):
    """Inserts a row through proxy:5432 every 50 ms and remembers when each commit returned.

    Without a proxy (an adopted cluster may have none) it is given the database nodes and
    lets libpq find the one that takes writes; there it writes nothing of ours into the
    customer's database: `txid_current()` needs a writable primary as much as an INSERT does.
    """

    def __init__(
        self,
        proxy_address: str | list[str],
        password: str,
        *,
        user: str = "postgres",
        tls: dict[str, str] | None = None,
    ) -> None:
        super().__init__(daemon=True, name="write-probe")
        self.direct = isinstance(proxy_address, list)
        self.dsn = {
            "host": ",".join(proxy_address) if self.direct else proxy_address,
            "port": ",".join(["5432"] * len(proxy_address)) if self.direct else 5432,
            "user": user,
            "password": password,
            "dbname": "postgres",
            "connect_timeout": 2,
            # libpq's sslmode/sslrootcert (jobs.postgres_tls.proxy_tls).
            **(tls or {}),
        }
        if self.direct:
            self.dsn["target_session_attrs"] = "read-write"
        self.acks: list[float] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        conn = None
        while not self._stop_event.is_set():
            try:
                if conn is None:
                    conn = psycopg2.connect(**self.dsn)
                    if not self.direct:
                        with conn, conn.cursor() as cur:
                            cur.execute(
                                "CREATE SCHEMA IF NOT EXISTS hacenter; CREATE TABLE IF NOT "
                                "EXISTS hacenter.write_probe (at timestamptz DEFAULT now())"
                            )
                with conn, conn.cursor() as cur:
                    cur.execute(
                        "SELECT txid_current()"
                        if self.direct
                        else "INSERT INTO hacenter.write_probe DEFAULT VALUES"
                    )
                self.acks.append(time.monotonic())
            except psycopg2.Error:
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
            self._stop_event.wait(0.05)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)

    def longest_gap(self) -> float:
        """The longest time between two acknowledged writes: the write downtime."""
        times = self.acks
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)
