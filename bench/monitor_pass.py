"""What one monitor pass costs: CPU per cluster and database statements per round, in-process.

N simulated clusters (tests/fake_endpoints.py, in a child process whose CPU is not counted),
monitored round after round in this process as the workers do (claim, batches, reads in the
read pool, wave writes), without Celery. CPU is this process's (all threads), so it includes
the reads, the judgement and the ORM, and excludes the endpoints and the database server.
Needs PostgreSQL on localhost. Run: `.venv/bin/python -m bench.monitor_pass --clusters 50`.
"""

import argparse
import time

from bench import monitor as setup  # first: creates the benchmark database, sets Django up

# isort: split
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clusters.monitoring.batch import monitor_batch_run, monitor_claim_due
from tests import fake_endpoints


def monitor_round() -> None:
    lease, batches = monitor_claim_due()
    for batch in batches:
        monitor_batch_run(cluster_ids=batch, lease=lease)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    setup.make_clusters(args.clusters)
    endpoints = fake_endpoints.start(setup.address, args.clusters)
    try:
        monitor_round()  # first pass: statuses created, connections opened
        with CaptureQueriesContext(connection) as captured:
            monitor_round()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.rounds):
            monitor_round()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        endpoints.kill()
    passes = args.clusters * args.rounds
    print(
        f"{args.clusters} clusters x {args.rounds} rounds: CPU {cpu * 1000 / passes:.1f} ms per "
        f"cluster pass, wall {wall * 1000 / args.rounds:.0f} ms per round, "
        f"{len(captured)} statements per round ({len(captured) / args.clusters:.2f} per cluster)"
    )


if __name__ == "__main__":
    main()
