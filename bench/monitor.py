"""Monitoring benchmark: N simulated clusters watched by 2 Celery worker processes and one beat.

Each cluster is node1 (primary), node2 (standby) and a proxy with fake Patroni, PostgreSQL and
HAProxy endpoints on 127.1.x.y (tests/fake_endpoints.py, in a child process); `--hung K` makes
the first K clusters accept connections and never answer. The workers run as in production
(thread pool, Procfile's concurrency); the dashboard is served by a real gunicorn process.

Prints, over the measured window (after a warm-up):
- the age of the oldest status of a healthy cluster, sampled every 0.5 s (goal: <= 5 s),
- the dashboard's response time over loopback, requested every 0.5 s while the monitor runs
  (goal: p95 <= 100 ms), and 40 times in a row once it stopped,
- the CPU and resident memory of the workers, beat and web processes.
Needs Redis and PostgreSQL on localhost. Run: `make bench-monitor` or
`.venv/bin/python -m bench.monitor --clusters 200 --seconds 60`.
"""

import argparse
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WEB_PORT = 8765
WORKER_CONCURRENCY = 8  # as in deploy/hacenter-monitor.service
from bench.database import use_fresh_database  # noqa: E402

use_fresh_database(f"hacenter_bench_monitor_{os.getpid()}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ["HACENTER_QUEUE"] = f"hacenter-bench-{os.getpid()}"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from clusters.models import Cluster  # noqa: E402
from tests import fake_endpoints  # noqa: E402
from tests.workers import start_beat, start_worker  # noqa: E402


def address(cluster: int, host: int) -> str:
    return f"127.1.{cluster}.{host}"


def make_clusters(n: int) -> list[int]:
    return [c.pk for c in fake_endpoints.make_clusters(address, n, "bench")]


def proc_stat(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS in MB) of a process and its children."""
    out = subprocess.run(
        ["ps", "-o", "cputimes=,rss=", "--ppid", str(pid), "-p", str(pid)],
        capture_output=True,
        text=True,
    ).stdout.split()
    cpu = sum(int(x) for x in out[0::2])
    return float(cpu), sum(int(x) for x in out[1::2]) / 1024


def start_web() -> subprocess.Popen:
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "tests.settings"}
    command = [str(ROOT / ".venv/bin/gunicorn"), "hacenter.wsgi", "-k", "gthread"]
    command += ["--threads", "8", "--workers", "1", "--bind", f"127.0.0.1:{WEB_PORT}"]
    web = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return web


def session_cookie() -> str:
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("bench", password="bench-pw-1")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])  # a role: else 403
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def get_dashboard(cookie: str) -> float | None:
    """One GET / over loopback; milliseconds, or None when the server is not up yet."""
    begin = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", WEB_PORT, timeout=10)
    try:
        conn.request("GET", "/", headers={"Cookie": cookie, "Host": "localhost"})
        response = conn.getresponse()
        response.read()
    except OSError:
        return None
    finally:
        conn.close()
    if response.status != 200:
        raise SystemExit(f"dashboard answered {response.status}")
    return (time.perf_counter() - begin) * 1000


def dashboard_in_process() -> list[float]:
    """The view's own time, through Django's test client in this process (no HTTP, no other
    process's work in the figure): how this benchmark measured the dashboard before."""
    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username="bench"))
    times = []
    for _ in range(50):
        begin = time.perf_counter()
        response = client.get("/")
        times.append((time.perf_counter() - begin) * 1000)
        assert response.status_code == 200
    return times


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--hung", type=int, default=0, help="clusters that never answer")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    if args.clusters > 250:
        raise SystemExit("at most 250 clusters (one 127.1.x.0/24 each)")
    call_command("migrate", verbosity=0)
    ids = make_clusters(args.clusters)
    healthy = ids[args.hung :]
    endpoints = fake_endpoints.start(address, args.clusters, hung=range(args.hung))
    cookie = session_cookie()
    web = start_web()
    workers = [start_worker(name=f"mon{i}", concurrency=WORKER_CONCURRENCY) for i in (1, 2)]
    beat = start_beat()
    staleness: list[float] = []
    dashboard: list[float] = []
    try:
        deadline = time.monotonic() + 30
        while get_dashboard(cookie) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(args.warmup)  # first passes, connection setup
        pids = (*(w.pid for w in workers), beat.pid, web.pid, endpoints.pid)
        before = {pid: proc_stat(pid)[0] for pid in pids}
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            oldest = (
                Cluster.objects.filter(pk__in=healthy)
                .order_by("last_checked")
                .values_list("last_checked", flat=True)
                .first()
            )
            staleness.append((timezone.now() - oldest).total_seconds() if oldest else 1e9)
            took = get_dashboard(cookie)
            if took is not None:
                dashboard.append(took)
            time.sleep(0.5)
        usage = {pid: proc_stat(pid) for pid in before}
        beat.stop()
        for worker in workers:
            worker.stop()
        idle = [t for _ in range(40) if (t := get_dashboard(cookie)) is not None]
        in_process = dashboard_in_process()
    finally:
        beat.stop()
        for worker in workers:
            worker.stop()
        os.killpg(web.pid, 15)
        web.wait(15)
        endpoints.kill()

    def cpu_share(pid: int) -> str:
        return f"{(usage[pid][0] - before[pid]) / args.seconds * 100:.0f}% of a core"

    print(
        f"{args.clusters} clusters ({args.hung} hung), 2 worker processes (--pool threads "
        f"--concurrency {WORKER_CONCURRENCY}), interval {settings.MONITOR_INTERVAL_S:g} s, "
        f"{args.seconds} s measured after {args.warmup} s warm-up"
    )
    print(
        f"oldest status age of the {len(healthy)} answering clusters ({len(staleness)} samples):"
        f" p50 {pct(staleness, 50):.1f} s, p95 {pct(staleness, 95):.1f} s,"
        f" max {max(staleness):.1f} s (goal: <= 5 s)"
    )
    print(
        f"dashboard GET / ({len(dashboard)} requests while monitoring, gunicorn):"
        f" p50 {pct(dashboard, 50):.1f} ms, p95 {pct(dashboard, 95):.1f} ms,"
        f" max {max(dashboard):.1f} ms (goal: p95 <= 100 ms)"
    )
    print(
        f"dashboard GET / ({len(idle)} requests, monitor stopped):"
        f" p50 {pct(idle, 50):.1f} ms, p95 {pct(idle, 95):.1f} ms, max {max(idle):.1f} ms"
    )
    print(
        f"dashboard view in-process (Django test client, 50 requests, monitor stopped):"
        f" p50 {pct(in_process, 50):.1f} ms, p95 {pct(in_process, 95):.1f} ms"
    )
    for i, worker in enumerate(workers, 1):
        print(f"worker {i}: RSS {usage[worker.pid][1]:.0f} MB, CPU {cpu_share(worker.pid)}")
    print(f"beat: RSS {usage[beat.pid][1]:.0f} MB, CPU {cpu_share(beat.pid)}")
    print(f"fake endpoints (not part of HA Center): CPU {cpu_share(endpoints.pid)}")
    print(
        f"web (gunicorn master + 1 worker): RSS {usage[web.pid][1]:.0f} MB, "
        f"CPU {cpu_share(web.pid)}"
    )


if __name__ == "__main__":
    main()
