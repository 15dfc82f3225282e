"""The restore drill's SQL (jobs/drill_tables.py) through a real psql on a real PostgreSQL (the
one on 127.0.0.1 that CI and `tests/run.sh` use for the console's own data), as the drill
sends it: one script on stdin, unaligned tuples-only output. The transaction's rows come back
readable among psql's other lines, the restore point's LSN with them; the checksum does not
depend on the order rows were written in, and sees a changed row; the default tables are the
largest ones."""

import shutil
import subprocess

import psycopg2
import pytest

from jobs import drill_tables

DATABASE = "hc_drill_sql_test"


def _connect(dbname: str = "postgres"):
    try:
        connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=dbname)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL on 127.0.0.1 to run the SQL on: {exc}")
    connection.autocommit = True
    return connection


@pytest.fixture
def scratch():
    """A scratch database with a big table, the same rows in another order, and small ones."""
    if shutil.which("psql") is None:
        pytest.skip("no psql here")
    admin = _connect()
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cur.execute(f"CREATE DATABASE {DATABASE}")
    connection = _connect(DATABASE)
    with connection.cursor() as cur:
        cur.execute("CREATE SCHEMA app")
        cur.execute(
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g"
        )
        cur.execute("CREATE TABLE app.reversed (id int, v text)")
        cur.execute("INSERT INTO app.reversed SELECT id, v FROM big ORDER BY id DESC")
        for i in range(5):
            cur.execute(f"CREATE TABLE small{i} AS SELECT generate_series(1, {10 + i}) AS n")
    yield connection
    connection.close()
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    admin.close()


PSQL = [
    *("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
    *("-h", "127.0.0.1", "-U", "postgres", "-d", DATABASE),
]


def psql(script: str) -> list[str]:
    done = subprocess.run(
        PSQL,
        input=script,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_the_snapshot_reads_back_every_table_and_the_point(scratch):
    tables = ["public.big", "app.reversed", "public.small0"]
    results, lsn = drill_tables.parse_counts(
        psql(drill_tables.snapshot_sql(tables, "drill_test")), tables
    )
    assert "/" in lsn
    big, reversed_, small = results
    assert (big["rows"], reversed_["rows"], small["rows"]) == (20000, 20000, 10)
    # The same rows written in another order: the same checksum.
    assert big["checksum"] == reversed_["checksum"]
    copy, _ = drill_tables.parse_counts(psql(drill_tables.count_sql(tables)), tables)
    assert drill_tables.compare(results, copy)[1] == []

    with scratch.cursor() as cur:
        cur.execute("UPDATE app.reversed SET v = 'changed' WHERE id = 777")
    copy, _ = drill_tables.parse_counts(psql(drill_tables.count_sql(tables)), tables)
    assert drill_tables.compare(results, copy)[1] == [
        "app.reversed has the same 20000 rows but other contents"
    ]


def test_the_default_tables_are_the_five_largest(scratch):
    found = psql(drill_tables.LARGEST_TABLES_SQL)
    assert found[:2] in (["app.reversed", "public.big"], ["public.big", "app.reversed"])
    assert len(found) == 5 and all(drill_tables.table_name(t) for t in found)
