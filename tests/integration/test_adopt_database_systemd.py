"""Taking over the PostgreSQL a customer already runs (issue 16, items 1-3), on the systemd lab.

node1 gets Debian's own PostgreSQL 15 first, through the lab's apt proxy, the way a customer
has it: the `main` cluster under postgresql@15-main, an application role with a password, its
database with pgbench tables, large objects and contrib extensions. Then, through the API, a
cluster with `adopt_database`: preflight describes the server, setup takes it over, the data
survives a failover and a rebuild byte for byte. A take-over that fails puts the server back.
"""

import psycopg2
import pytest

from clusters.models import Cluster
from jobs.models import Job, JobStatus, LogLine
from tests.conftest import wait_for
from tests.integration.test_fresh_servers_systemd import (
    define,
    run,
    sh,
    steps,
    unit_state,
)

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

APP_PASSWORD = "customer-s3cret-pw"  # the customer's own, which must keep working
UNIT = "postgresql@15-main.service"
CONFIG_DIR = "/etc/postgresql/15/main"
DATA_DIR = "/var/lib/postgresql/15/main"
CUSTOMER_SQL = """
CREATE ROLE app LOGIN PASSWORD 'APP_PASSWORD';
CREATE DATABASE app OWNER app;
\\c app
CREATE EXTENSION pg_trgm;
CREATE EXTENSION hstore;
CREATE TABLE docs (id int PRIMARY KEY, attrs hstore, body oid);
INSERT INTO docs SELECT i, hstore('n', i::text),
    lo_from_bytea(0, convert_to(repeat(md5(i::text), 2000), 'UTF8'))
  FROM generate_series(1, 40) i;
CREATE INDEX docs_trgm ON docs USING gin ((attrs -> 'n') gin_trgm_ops);
ALTER TABLE docs OWNER TO app;
"""
CHECKSUM_SQL = """
SELECT 'table ' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1;
"""


def psql(lab, host: str, sql: str, database: str = "app") -> str:
    """SQL as postgres over the local socket (Debian's before, Patroni's after: same path)."""
    return lab.exec(
        host,
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            database,
        ],
        input=sql,
        timeout=300,
    ).stdout.strip()


def install_customer_postgres(lab, scale: int) -> None:
    """What the customer had before HA Center: Debian's PostgreSQL 15 with their data."""
    apt = f"-o Acquire::http::Proxy={lab.apt_proxy_url} -o Acquire::http::Pipeline-Depth=0"
    sh(
        lab,
        "node1",
        f"apt-get {apt} -q update >/dev/null && DEBIAN_FRONTEND=noninteractive "
        f"apt-get {apt} install -y -q --no-install-recommends postgresql-15 >/dev/null",
    )
    # Debian's generator enables it at runtime from start.conf: "enabled-runtime"
    assert unit_state(lab, "node1", UNIT).startswith("enabled"), unit_state(lab, "node1", UNIT)
    # their own settings, in conf.d, which must reach Patroni's config
    sh(lab, "node1", f"echo 'work_mem = 24MB' > {CONFIG_DIR}/conf.d/customer.conf")
    sh(lab, "node1", f"systemctl restart {UNIT}")
    psql(lab, "node1", CUSTOMER_SQL.replace("APP_PASSWORD", APP_PASSWORD), database="postgres")
    sh(
        lab,
        "node1",
        f"cd / && runuser -u postgres -- /usr/lib/postgresql/15/bin/pgbench -q -i -s {scale} "
        "app >/dev/null 2>&1 && runuser -u postgres -- psql -Xq -d app -c "
        "'ALTER TABLE pgbench_accounts OWNER TO app'",
    )


def checksums(lab, host: str) -> dict[str, str]:
    """An md5 of every public table's rows (in a fixed order) and of every large object."""
    tables = [line.split(" ", 1)[1] for line in psql(lab, host, CHECKSUM_SQL).splitlines()]
    sql = "".join(
        f"SELECT '{t}', md5(coalesce(string_agg(md5(x::text), ',' ORDER BY md5(x::text)), '')) "  # noqa: S608
        f"FROM {t} x;"
        for t in tables
    )
    sql += (
        "SELECT 'large objects', md5(string_agg(md5(lo_get(oid)), ',' ORDER BY oid)) "
        "FROM pg_largeobject_metadata;"
    )
    return dict(line.split("|", 1) for line in psql(lab, host, sql).splitlines())


def config_hashes(lab) -> str:
    return sh(
        lab,
        "node1",
        f"find {CONFIG_DIR} -type f | sort | xargs sha256sum; "
        f"stat -c '%a %U' {CONFIG_DIR}/pg_hba.conf; sha256sum {DATA_DIR}/postgresql.auto.conf",
    )


def app_logs_in(host: str, database: str = "app") -> int:
    conn = psycopg2.connect(
        host=host, user="app", password=APP_PASSWORD, dbname=database, connect_timeout=5
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM docs")
            return cur.fetchone()[0]
    finally:
        conn.close()


class AdoptingApi:
    """The test's API client, with `adopt_database` added to the cluster it defines (the rest
    of the definition is the fresh-servers test's, as an automation user sends it)."""

    def __init__(self, api) -> None:
        self.api = api

    def __getattr__(self, name: str):
        return getattr(self.api, name)  # get, put…: as the client sends them

    def post(self, url: str, body: dict):
        if url == "/api/v1/clusters/":
            body = {**body, "adopt_database": True, "postgres_version": 15}
        return self.api.post(url, body)


def adopt_cluster(api, lab) -> int:
    cluster_id = define(AdoptingApi(api), lab)
    detail = api.get(f"/api/v1/clusters/{cluster_id}/").json()
    assert detail["adopt_database"] is True
    return cluster_id


def log_text(job: Job) -> str:
    return "\n".join(LogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True))


@pytest.mark.timeout(2400)
def test_setup_takes_over_the_customers_postgres_and_keeps_every_byte(
    fresh_systemd_lab, worker, api
):
    lab = fresh_systemd_lab
    install_customer_postgres(lab, scale=5)
    before = checksums(lab, "node1")
    assert set(before) >= {"pgbench_accounts", "docs", "large objects"}

    cluster_id = adopt_cluster(api, lab)

    preflight = run(api, cluster_id, "preflight", timeout=600)
    found = steps(preflight)
    inspection = found[("node1", "existing_postgres")]
    assert preflight.status == JobStatus.SUCCEEDED, [(k, s.summary) for k, s in found.items()]
    assert "PostgreSQL 15." in inspection.summary and f"data {DATA_DIR}" in inspection.summary
    assert "postgres role's password" in inspection.summary
    assert "'local all all peer'" in inspection.summary  # replaced by the cluster's scram rule
    log = log_text(preflight)
    assert "app (" in log and "hstore" in log and "pg_trgm" in log, log[-2000:]
    assert "roles: app (login)" in log
    assert APP_PASSWORD not in log and "SCRAM-SHA-256$" not in log

    setup = run(api, cluster_id, "setup")
    assert setup.status == JobStatus.SUCCEEDED, (setup.status, setup.error)
    done = steps(setup)
    took = done[("node1", "adopt_primary")].summary
    assert "refused connections for" in took, took
    assert "moved the new empty cluster" in done[("node2", "set_aside_new_cluster")].summary
    cluster = Cluster.objects.get(pk=cluster_id)
    adopted = cluster.adopted_from
    assert adopted["data_dir"] == DATA_DIR and adopted["unit"] == UNIT
    assert adopted["parameters"]["work_mem"] == "24MB"
    assert adopted["outage_s"] < 60, adopted
    print(f"take-over: {adopted['outage_s']} s refused, {adopted['read_only_s']} s read-only")
    assert unit_state(lab, "node1", UNIT) == "masked/inactive"
    assert sh(lab, "node1", f"ls {adopted['backup_dir']}/config/pg_hba.conf")
    assert sh(lab, "node2", "ls -d /var/lib/postgresql/15/main.hacenter-aside-*")
    assert app_logs_in(lab.proxy.address) == 40  # its old password, through HAProxy
    wait_for(lambda: checksums(lab, "node2") == before, 60, "node2 to hold the same data")
    assert checksums(lab, "node1") == before

    # The same data through a power-off of the primary and a rebuild, under application users:
    # tests/e2e/test_adopt_browser_systemd.py (the acceptance, from the wizard).


@pytest.mark.timeout(1800)
def test_a_failed_take_over_puts_the_customers_server_back(fresh_systemd_lab, worker, api):
    lab = fresh_systemd_lab
    install_customer_postgres(lab, scale=1)
    before, configs = checksums(lab, "node1"), config_hashes(lab)
    unit_before = unit_state(lab, "node1", UNIT)
    assert unit_before.endswith("/active")
    cluster_id = adopt_cluster(api, lab)
    preflight = run(api, cluster_id, "preflight", timeout=600)
    assert preflight.status == JobStatus.SUCCEEDED, preflight.error

    # After preflight, something else takes Patroni's REST port on the master.
    node1 = lab.host("node1").address
    sh(lab, "node1", f"systemd-run --unit=squatter python3 -m http.server -b {node1} 8008")
    setup = run(api, cluster_id, "setup")
    assert setup.status == JobStatus.FAILED, (setup.status, setup.error)
    step = steps(setup)[("node1", "adopt_primary")]
    assert "put back as it was" in step.summary, step.summary
    assert unit_state(lab, "node1", UNIT) == unit_before
    assert config_hashes(lab) == configs
    assert checksums(lab, "node1") == before
    roles = psql(lab, "node1", "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_'")
    assert sorted(roles.split()) == ["app", "postgres"]
    login = sh(
        lab,
        "node1",
        f"PGPASSWORD={APP_PASSWORD} psql -XAt -h 127.0.0.1 -U app -d app "  # noqa: S608
        "-c 'SELECT count(*) FROM docs'",
    )
    assert login == "40"
    assert Cluster.objects.get(pk=cluster_id).adopted_from.get("rolled_back_at")
