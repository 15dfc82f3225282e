"""A probe writer through the proxy: how long did writes stop during a planned operation?"""

import itertools
import threading
import time

import psycopg2


class WriteProbe(threading.Thread):
    """Inserts a row through proxy:5432 every 50 ms and remembers when each commit returned."""

    def __init__(self, proxy_address: str, password: str) -> None:
        super().__init__(daemon=True, name="write-probe")
        self.dsn = {
            "host": proxy_address,
            "port": 5432,
            "user": "postgres",
            "password": password,
            "dbname": "postgres",
            "connect_timeout": 2,
        }
        self.acks: list[float] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        conn = None
        while not self._stop_event.is_set():
            try:
                if conn is None:
                    conn = psycopg2.connect(**self.dsn)
                    with conn, conn.cursor() as cur:
                        cur.execute(
                            "CREATE SCHEMA IF NOT EXISTS hacenter; CREATE TABLE IF NOT "
                            "EXISTS hacenter.write_probe (at timestamptz DEFAULT now())"
                        )
                with conn, conn.cursor() as cur:
                    cur.execute("INSERT INTO hacenter.write_probe DEFAULT VALUES")
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
