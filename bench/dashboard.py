"""Dashboard benchmark: the server time and bytes of the dashboard's 3-second refresh (its htmx
poll, which gets only the cards that changed) and of the whole fragment (a click on a count), and
the cluster page's lag series, with N clusters and H hours of raw status samples (one per
database node every 2 s, as the monitor writes them). Every standby has 20 minutes of sparkline
history. Before each refresh (outside the timed part) a monitor pass marks every cluster read and
gives new lags to none, 10 or a quarter of the standbys: cached drawings only help where nothing
changed.

Goal: p95 <= 100 ms for the dashboard at 200 clusters. Needs PostgreSQL on localhost; no
workers, no network. Run: `.venv/bin/python -m bench.dashboard --clusters 200 --hours 24`.
"""

import argparse
import functools
import gzip
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.database import use_fresh_database  # noqa: E402

use_fresh_database(f"hacenter_bench_dashboard_{os.getpid()}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402


def timed(call, rounds: int, between=lambda: None, cpu: list | None = None) -> list[float]:
    """Wall-clock milliseconds of each call, sorted; with `cpu`, also this process's CPU
    milliseconds (what the figure would be on an idle machine, the database's share aside)."""
    times = []
    for _ in range(rounds):
        between()
        begin, begin_cpu = time.perf_counter(), time.process_time()
        call()
        times.append((time.perf_counter() - begin) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - begin_cpu) * 1000)
    return sorted(times)


def describe(name: str, times: list[float]) -> str:
    p95 = times[max(int(len(times) * 0.95) - 1, 0)]
    return f"{name}: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms"


GZIP = {"HTTP_ACCEPT_ENCODING": "gzip"}


class Poll:
    """The dashboard's poll as htmx sends it: the version the page shows, then the version each
    answer brings. Records each answer's size before and after gzip, and its status."""

    def __init__(self, client) -> None:
        self.client, self.url = client, "/"
        self.sizes: list[tuple[int, int]] = []
        self.codes: list[int] = []

    def start(self) -> None:
        """Load the page, as a browser does, and take its poll address."""
        self.follow(self.client.get("/").content)

    def follow(self, body: bytes) -> None:
        found = re.search(rb'id="dashboard-poll"[^>]* hx-get="([^"]+)"', body)
        if found:
            self.url = found.group(1).decode().replace("&amp;", "&")

    def measure(self, call) -> tuple[int, int]:
        response = call()
        sent = response.content
        body = gzip.decompress(sent) if response.get("Content-Encoding") == "gzip" else sent
        return len(body), len(sent)

    def __call__(self) -> None:
        response = self.client.get(self.url, HTTP_HX_REQUEST="true", **GZIP)
        assert response.status_code in (200, 204), response.status_code
        sent = response.content
        body = gzip.decompress(sent) if response.get("Content-Encoding") == "gzip" else sent
        self.sizes.append((len(body), len(sent)))
        self.codes.append(response.status_code)
        self.follow(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--hours", type=float, default=24)
    args = parser.parse_args()
    run(args)


def run(args: argparse.Namespace) -> None:
    django.setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from clusters.models import Cluster, Credential, Node, NodeStatus
    from clusters.monitoring.lag_history import SPARK_MINUTES, lag_minutes_add

    def history(lag: int) -> list[list[int]]:
        minutes = [now - timedelta(minutes=m) for m in range(SPARK_MINUTES - 1, -1, -1)]
        return functools.reduce(
            lambda kept, at: lag_minutes_add(kept, at, random.randrange(lag)), minutes, []
        )

    call_command("migrate", verbosity=0)
    cred = Credential.objects.create(name="bench", username="root", password="bench-pw-123")
    now = timezone.now()
    for c in range(args.clusters):
        cluster = Cluster.objects.create(name=f"c{c}", state="healthy", last_checked=now)
        for h, (name, kind) in enumerate(
            (("node1", "database"), ("node2", "database"), ("proxy", "proxy"))
        ):
            node = Node.objects.create(
                cluster=cluster,
                name=name,
                address=f"10.{c // 250}.{c % 250}.{h + 1}",
                credential=cred,
                kind=kind,
                host_key_type="ssh-ed25519",
                host_key_base64="AAAA",
                host_key_fingerprint="SHA256:x",
            )
            if kind == "database":
                NodeStatus.objects.create(
                    node=node,
                    role="primary" if h == 0 else "replica",
                    state="running" if h == 0 else "streaming",
                    lag_bytes=None if h == 0 else 4096,
                    lag_seconds=None if h == 0 else 0.1,
                    lag_minutes=[] if h == 0 else history(100_000),
                )
    samples = int(args.hours * 3600 / 2)
    begin = time.perf_counter()
    with connection.cursor() as cursor:  # one INSERT … SELECT: millions of rows in seconds
        cursor.execute(
            """INSERT INTO clusters_statussample
                 (node_id, at, resolution, up, role, timeline, lag_bytes, lag_seconds)
               SELECT n.id, now() - make_interval(secs => 2 * i), 'raw', true, 'replica', 1,
                      (random() * 100000)::bigint, random()
               FROM clusters_node n, generate_series(0, %s) i WHERE n.kind = 'database'""",
            [samples - 1],
        )
        cursor.execute("ANALYZE clusters_statussample")
        cursor.execute("SELECT count(*) FROM clusters_statussample")
        rows = cursor.fetchone()[0]
    print(
        f"{args.clusters} clusters, {rows:,} raw samples ({args.hours:g} h), "
        f"written in {time.perf_counter() - begin:.0f} s"
    )
    user = get_user_model().objects.create_superuser("bench", password="bench-pw-1")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    cluster = Cluster.objects.get(name="c0")

    def refresh() -> None:
        """The whole fragment, as a click on a count or the search gets it."""
        assert client.get("/", HTTP_HX_REQUEST="true").status_code == 200

    def chart(range_key: str):
        return lambda: client.get(f"/clusters/{cluster.pk}/lag/?range={range_key}")

    from clusters.web import selectors

    standbys = list(NodeStatus.objects.filter(role="replica"))

    def monitor_pass(changing: int) -> None:
        """A monitor pass: every cluster read now, `changing` standbys with a new lag."""
        Cluster.objects.update(last_checked=timezone.now())
        changed = random.sample(standbys, changing)
        for status in changed:
            status.lag_bytes = random.randrange(200_000)
            status.lag_minutes = lag_minutes_add(
                status.lag_minutes, timezone.now(), status.lag_bytes
            )
        NodeStatus.objects.bulk_update(changed, ["lag_bytes", "lag_minutes"])

    refresh()  # warm up: connection, templates
    print(describe("  of which dashboard_rows()", timed(selectors.dashboard_rows, 10)))
    monitor_pass(0)
    poll = Poll(client)
    poll.start()
    whole = poll.measure(lambda: client.get("/", HTTP_HX_REQUEST="true", **GZIP))
    cpu: list[float] = []
    times = timed(refresh, 30, between=lambda: monitor_pass(len(standbys) // 4), cpu=cpu)
    print(
        describe("whole fragment (a click on a count, a search)", times)
        + f"; {whole[0]:,} B, {whole[1]:,} B gzipped"
    )
    print(describe("  its CPU time in the web process", sorted(cpu)))
    print("refresh every 3 s, the poll (it sends only what changed; gzipped):")
    for label, changing in (
        ("nothing changed", 0),
        ("10 clusters changed", 10),
        (f"{len(standbys) // 4} clusters changed", len(standbys) // 4),
    ):
        poll()  # the version after the whole-fragment rounds above
        poll.sizes.clear()
        cpu = []
        times = timed(poll, 30, between=lambda n=changing: monitor_pass(n), cpu=cpu)
        raw = statistics.median(r for r, _ in poll.sizes)
        sent = statistics.median(s for _, s in poll.sizes)
        codes = sorted(set(poll.codes[-30:]))
        print(
            describe(f"  {label}", times)
            + f" (goal: p95 <= 100); {raw:,.0f} B, {sent:,.0f} B sent, HTTP {codes}"
        )
        print(describe("    its CPU time in the web process", sorted(cpu)))
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profile = cProfile.Profile()
        for _ in range(10):
            monitor_pass(10)
            profile.runcall(poll)
        pstats.Stats(profile).sort_stats(os.environ["BENCH_PROFILE"]).print_stats(40)
    print(describe("cluster lag chart, last hour", timed(chart("1h"), 10)))
    print(describe("cluster lag chart, last day", timed(chart("1d"), 10)))


if __name__ == "__main__":
    main()
