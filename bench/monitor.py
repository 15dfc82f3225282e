"""Monitoring benchmark: N simulated clusters (fake Patroni and HAProxy endpoints on loopback
addresses 127.1.x.y) watched by 2 Celery worker processes and one beat.

Prints: how stale the oldest cluster status is, sampled every second (goal: never older than
5 s); the dashboard's server time for N clusters (goal: p95 <= 100 ms); worker memory (RSS).
Needs Redis and PostgreSQL on localhost. Run: `make bench-monitor` or
`.venv/bin/python -m bench.monitor --clusters 200 --seconds 60`.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "hacenter_bench_monitor"
subprocess.run(
    ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME}"],
    check=True,
)
subprocess.run(
    ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {DB_NAME}"], check=True
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
os.environ["HACENTER_TEST_DB_NAME"] = DB_NAME
os.environ["HACENTER_QUEUE"] = f"hacenter-bench-{os.getpid()}"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from clusters.models import Cluster, Credential, Node  # noqa: E402
from clusters.services import cluster_secrets_ensure  # noqa: E402
from tests.workers import CeleryProcess, start_beat, start_worker  # noqa: E402


def address(cluster: int, host: int) -> str:
    return f"127.1.{cluster}.{host}"


def patroni_body(c: int) -> bytes:
    members = [
        {
            "name": "node1",
            "role": "leader",
            "state": "running",
            "host": address(c, 11),
            "port": 5432,
            "timeline": 1,
        },
        {
            "name": "node2",
            "role": "replica",
            "state": "streaming",
            "host": address(c, 12),
            "port": 5432,
            "timeline": 1,
            "lag": 0,
        },
    ]
    return json.dumps({"members": members}).encode()


def stats_body() -> bytes:
    header = "# pxname,svname,status\n"
    rows = [
        "primary,node1,UP",
        "primary,node2,DOWN",
        "be_replicas,node1,DOWN",
        "be_replicas,node2,UP",
    ]
    return (header + "\n".join(rows) + "\n").encode()


async def serve(clusters: int, ready: threading.Event) -> None:
    """One asyncio loop serving every fake endpoint: cheap enough for hundreds of addresses."""

    def handler(body: bytes, content_type: str):
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await reader.readuntil(b"\r\n\r\n")
            payload = b"[]" if b"/history" in request.split(b"\r\n", 1)[0] else body
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: "
                + content_type.encode()
                + b"\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + payload
            )
            await writer.drain()
            writer.close()

        return handle

    for c in range(clusters):
        for host in (11, 12):
            await asyncio.start_server(
                handler(patroni_body(c), "application/json"), address(c, host), 8008
            )
        await asyncio.start_server(handler(stats_body(), "text/csv"), address(c, 10), 7000)
    ready.set()
    await asyncio.Event().wait()


def make_clusters(n: int) -> None:
    cred = Credential.objects.create(name="bench", username="root", password="bench-pw-1234")
    for c in range(n):
        cluster = Cluster.objects.create(name=f"bench{c}", state=Cluster.State.HEALTHY)
        for name, host, kind in (
            ("node1", 11, "database"),
            ("node2", 12, "database"),
            ("proxy", 10, "proxy"),
        ):
            Node.objects.create(
                cluster=cluster,
                name=name,
                address=address(c, host),
                credential=cred,
                kind=kind,
                host_key_type="ssh-ed25519",
                host_key_base64="AAAA",
                host_key_fingerprint=f"SHA256:{c}",
            )
        cluster_secrets_ensure(cluster=cluster)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    out = subprocess.run(
        ["ps", "-o", "rss=", "--ppid", str(pid), "-p", str(pid)], capture_output=True, text=True
    ).stdout.split()
    return sum(int(x) for x in out) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    if args.clusters > 250:
        raise SystemExit("at most 250 clusters (one 127.1.x.0/24 each)")
    call_command("migrate", verbosity=0)
    make_clusters(args.clusters)
    ready = threading.Event()
    threading.Thread(target=lambda: asyncio.run(serve(args.clusters, ready)), daemon=True).start()
    ready.wait(30)
    workers: list[CeleryProcess] = [start_worker(name=f"mon{i}", concurrency=16) for i in (1, 2)]
    beat = start_beat()
    staleness: list[float] = []
    try:
        time.sleep(10)  # warm up: first passes, connection pools
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            oldest = (
                Cluster.objects.order_by("last_checked")
                .values_list("last_checked", flat=True)
                .first()
            )
            staleness.append((timezone.now() - oldest).total_seconds() if oldest else 1e9)
            time.sleep(1)
        memory = [rss_mb(w.pid) for w in workers]
    finally:
        beat.stop()
        for worker in workers:
            worker.stop()
    user = get_user_model().objects.create_user("bench", password="bench-pw-1")
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    times = []
    for _ in range(50):
        begin = time.perf_counter()
        response = client.get("/")
        times.append((time.perf_counter() - begin) * 1000)
        assert response.status_code == 200
    times.sort()
    staleness.sort()
    print(
        f"{args.clusters} clusters, 2 worker processes (16 threads each), interval 2 s, "
        f"{args.seconds} s measured"
    )
    print(
        f"oldest status age: median {statistics.median(staleness):.1f} s, "
        f"p95 {staleness[int(len(staleness) * 0.95) - 1]:.1f} s, max {staleness[-1]:.1f} s "
        f"(goal: <= 5 s)"
    )
    print(
        f"dashboard (/) server time: median {statistics.median(times):.1f} ms, "
        f"p95 {times[int(len(times) * 0.95) - 1]:.1f} ms (goal: p95 <= 100 ms)"
    )
    print(
        f"worker RSS: {', '.join(f'{m:.0f} MB' for m in memory)}; "
        f"web-side process RSS {rss_mb(os.getpid()):.0f} MB (includes the fake endpoints)"
    )


if __name__ == "__main__":
    main()
