"""Dashboard benchmark: the server time of the dashboard's 3-second refresh (the htmx partial)
and of the cluster page's lag series, with N clusters and H hours of raw status samples
(one per database node every 2 s, as the monitor writes them).

Goal: p95 <= 100 ms for the dashboard at 200 clusters. Needs PostgreSQL on localhost; no
workers, no network. Run: `.venv/bin/python -m bench.dashboard --clusters 200 --hours 24`.
"""

import argparse
import os
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


def timed(call, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        begin = time.perf_counter()
        call()
        times.append((time.perf_counter() - begin) * 1000)
    return sorted(times)


def describe(name: str, times: list[float]) -> str:
    p95 = times[max(int(len(times) * 0.95) - 1, 0)]
    return f"{name}: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--hours", type=float, default=24)
    args = parser.parse_args()
    run(args)


def run(args: argparse.Namespace) -> None:
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from clusters.models import Cluster, Credential, Node, NodeStatus

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
                    node=node, role="primary" if h == 0 else "replica", state="streaming"
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
        assert client.get("/", HTTP_HX_REQUEST="true").status_code == 200

    def chart(range_key: str):
        return lambda: client.get(f"/clusters/{cluster.pk}/lag/?range={range_key}")

    from django.core.cache import cache

    from clusters import charts, selectors

    refresh()  # warm up: connection, templates
    node_ids = list(NodeStatus.objects.values_list("node_id", flat=True))
    cold = lambda: (cache.clear(), charts.lag_history_by_node(node_ids))  # noqa: E731
    print(describe("  sparkline data, nothing cached (first refresh)", timed(cold, 5)))
    history = lambda: charts.lag_history_by_node(node_ids)  # noqa: E731
    print(describe("  sparkline data, finished minutes cached", timed(history, 10)))
    if os.environ.get("BENCH_EXPLAIN"):
        from datetime import timedelta

        from django.db.models import Max
        from django.db.models.functions import TruncMinute

        from clusters.models import StatusSample

        start = timezone.now() - timedelta(minutes=20)
        qs = (
            StatusSample.objects.filter(node_id__in=node_ids, resolution="raw", at__gte=start)
            .annotate(minute=TruncMinute("at"))
            .values("node_id", "minute")
            .annotate(worst=Max("lag_bytes"))
        )
        print(qs.explain(analyze=True))
    print(describe("  of which dashboard_rows()", timed(selectors.dashboard_rows, 10)))
    print(describe("dashboard refresh (htmx partial)", timed(refresh, 30)) + " (goal: p95 <= 100)")
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.runcall(timed, refresh, 10)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    print(describe("cluster lag chart, last hour", timed(chart("1h"), 10)))
    print(describe("cluster lag chart, last day", timed(chart("1d"), 10)))


if __name__ == "__main__":
    main()
