"""The SQL setup_finish builds for the application's role and database, run on a real PostgreSQL
(the one on 127.0.0.1 that CI and `tests/run.sh` use for the console's own data): a name that is
SQL stays one quoted name (issue 17), and the quoting is SQL PostgreSQL accepts."""

from types import SimpleNamespace

import psycopg2
import pytest

from clusters.models import Cluster, ClusterSecret
from jobs.playbooks import setup_finish

pytestmark = pytest.mark.django_db
# What a Django admin could save before the models validated: a role name that is a command.
EVIL = "app LOGIN; CREATE ROLE hc17_pwned SUPERUSER; --"


def _connect():
    try:
        connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL on 127.0.0.1 to run the SQL on: {exc}")
    connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    return connection


def test_setup_finish_sql_keeps_a_hostile_name_one_role_on_a_real_postgresql(monkeypatch):
    connection = _connect()
    cluster = Cluster.objects.create(name="pg1", database_name=EVIL, database_user=EVIL)
    ClusterSecret.objects.create(cluster=cluster, name="monitor", value="Mon-pw-123")
    ClusterSecret.objects.create(cluster=cluster, name="application", value="App-pw-456")

    def psql(ctx, node, sql, **kwargs):
        with connection.cursor() as cur:
            cur.execute(sql)
            return [str(row[0]) for row in cur.fetchall()] if cur.description else []

    with connection.cursor() as cur:
        cur.execute(
            "SELECT rolname FROM pg_roles WHERE rolname IN ('hacenter_monitor', 'app', %s)", [EVIL]
        )
        existing = {row[0] for row in cur.fetchall()}
    if EVIL in existing:
        pytest.skip("a role of that name exists already on this server")
    monkeypatch.setattr(setup_finish, "psql", psql)
    monkeypatch.setattr(setup_finish, "current_primary", lambda ctx: SimpleNamespace(name="n1"))
    try:
        verdict = setup_finish.database_roles(SimpleNamespace(cluster=cluster))
        with connection.cursor() as cur:
            cur.execute("SELECT rolname FROM pg_roles WHERE rolname = %s", [EVIL])
            assert cur.fetchall() == [(EVIL,)]
            cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'hc17_pwned'")
            assert cur.fetchone() == (0,)
            cur.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", [EVIL]
            )
            assert cur.fetchall() == [(EVIL,)]
        assert "created" in verdict
        # A second run finds both and changes nothing (the literal in the lookup matches).
        assert "already exists" in setup_finish.database_roles(SimpleNamespace(cluster=cluster))
    finally:
        with connection.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{EVIL.replace(chr(34), chr(34) * 2)}"')
            # Only what this test made (unquoted SQL would have made "app" and hc17_pwned).
            for role in {EVIL, "hacenter_monitor", "hc17_pwned", "app"} - existing:
                cur.execute(f'DROP ROLE IF EXISTS "{role.replace(chr(34), chr(34) * 2)}"')
        connection.close()
