"""The console database of a benchmark run: a PostgreSQL database of its own on localhost,
created empty before Django starts and dropped when the run ends, as CI's suite does.

Not SQLite: its single writer made bench.failover's setup fail with "database is locked" while
the worker wrote job logs and the benchmark polled the job.
"""

import atexit
import os
import subprocess

PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc"]


def use_fresh_database(name: str) -> None:
    """Point Django, in this process and in the workers it starts, at a new empty database
    `name` (dropped at exit). Call before `django.setup()`."""
    for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run([*PSQL, sql], check=True)
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
    os.environ["HACENTER_TEST_DB_NAME"] = name
    atexit.register(_drop, name)


def _drop(name: str) -> None:
    from django.db import connections

    connections.close_all()
    # FORCE: a worker that outlived the run may still hold a connection.
    subprocess.run([*PSQL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)
