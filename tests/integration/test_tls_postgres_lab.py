"""PostgreSQL over TLS on a cluster HA Center builds (issue 17 item 4), on the lab's real
servers: a client without TLS is refused through the proxy and directly when the cluster
requires client TLS; with `sslmode=verify-full` and the CA downloaded from the API it connects
through the proxy (the node certificates name the proxy's address) and to each node; HA
Center's own roles are refused without TLS even where clients are not; replication streams
over TLS; the monitor reads every node with verify-full. Then the option is turned off and setup
run again: plain clients are let in, HA Center's roles still are not."""

import psycopg2
import pytest

from clusters.inventory import pki
from clusters.models import Cluster, ClusterSecret
from clusters.monitoring.reads import read_node
from jobs import services
from jobs.models import JobStatus
from jobs.postgres_tls import node_tls, proxy_tls
from tests.conftest import api_client, make_user, wait_for
from tests.integration.conftest import lab_credential, make_lab_cluster, wait_for_job

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PROXY, NODE1, NODE2 = "198.18.0.10", "198.18.0.11", "198.18.0.12"
CONSOLE = "198.18.0.1"  # this machine's address on the lab bridge: a client network below


def connect(
    host: str, port: int, user: str, password: str, **tls
) -> psycopg2.extensions.connection:
    """A libpq connection to `host:port` as `user` (the app database for the app role)."""
    return psycopg2.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        dbname="app" if user == "app" else "postgres",
        connect_timeout=5,
        **tls,
    )


def refusal(host: str, port: int, user: str, password: str, **tls) -> str:
    """The server's refusal of a connection (the test fails if it is accepted)."""
    try:
        connect(host, port, user, password, **tls).close()
    except psycopg2.OperationalError as exc:
        return str(exc)
    raise AssertionError(f"{user}@{host}:{port} with {tls} was let in")


def over_tls(conn) -> tuple[bool, str, str]:
    """(this connection uses TLS, its protocol version, the server's address)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT ssl, version, host(inet_server_addr()) FROM pg_stat_ssl "
            "WHERE pid = pg_backend_pid()"
        )
        return cur.fetchone()


def setup(cluster: Cluster) -> None:
    job = wait_for_job(services.job_start(cluster=cluster, kind="setup"), timeout=600)
    steps = [(s.name, s.status, s.summary) for s in job.steps.all()]
    assert job.status == JobStatus.SUCCEEDED, (job.error, steps)


def test_postgres_requires_tls_and_clients_verify_the_server(
    fresh_lab, worker, client, django_user_model, tmp_path
):
    lab = fresh_lab
    cluster = make_lab_cluster(lab, lab_credential(lab), name="pgssl")
    Cluster.objects.filter(pk=cluster.pk).update(
        database_name="app", database_user="app", client_networks=[f"{CONSOLE}/32"]
    )
    cluster.refresh_from_db()
    assert cluster.require_client_tls  # the default for a new cluster
    setup(cluster)
    cluster.refresh_from_db()
    secrets = {s.name: s.value for s in ClusterSecret.objects.filter(cluster=cluster)}
    app_pw, superuser_pw = secrets["application"], secrets["superuser"]

    # The CA as a user gets it: from the API, saved under the name the strings give.
    viewer = api_client(client, make_user(django_user_model, "watcher", "viewer"))
    answer = viewer.get(f"/api/v1/clusters/{cluster.pk}/ca/")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/x-pem-file"
    admin = api_client(client, make_user(django_user_model, "boss", "admin"))
    strings = admin.get(f"/api/v1/clusters/{cluster.pk}/connection/").json()
    ca_path = tmp_path / strings["ca_file"]
    ca_path.write_bytes(answer.content)
    assert strings["read_write"].endswith(f"sslmode=verify-full&sslrootcert={ca_path.name}")

    # The read-write string as given, run where the CA was saved: through the proxy to node1.
    uri = strings["read_write"].replace(ca_path.name, str(ca_path))
    with psycopg2.connect(uri, connect_timeout=5) as conn:
        assert over_tls(conn)[0] is True and over_tls(conn)[2] == NODE1
    conn.close()
    verify = {"sslmode": "verify-full", "sslrootcert": str(ca_path)}
    # Through the proxy's read-only port, and straight to each node: each certificate names
    # the address connected to (the proxy's too), signed by the cluster's CA.
    for host, port in ((PROXY, 5433), (NODE1, 5432), (NODE2, 5432)):
        conn = connect(host, port, "app", app_pw, **verify)
        ssl_on, version, _ = over_tls(conn)
        conn.close()
        assert ssl_on and version in ("TLSv1.2", "TLSv1.3"), (host, port, version)
    # A CA that is not the cluster's: libpq refuses the server.
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_text(pki.new_authority("someone-else").certificate)
    message = refusal(NODE1, 5432, "app", app_pw, sslmode="verify-full", sslrootcert=str(other_ca))
    assert "certificate verify failed" in message

    # Without TLS: refused through the proxy and directly (pg_hba has hostssl lines only).
    for host, port in ((PROXY, 5432), (PROXY, 5433), (NODE1, 5432), (NODE2, 5432)):
        message = refusal(host, port, "app", app_pw, sslmode="disable")
        assert "no encryption" in message, message
    # HA Center's own roles: refused without TLS by a reject rule, whatever comes after it.
    message = refusal(PROXY, 5432, "postgres", superuser_pw, sslmode="disable")
    assert "rejects connection" in message, message

    # Replication streams over TLS: every standby's WAL sender on the primary has ssl.
    conn = connect(PROXY, 5432, "postgres", superuser_pw, **verify)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT r.application_name, s.ssl, r.state FROM pg_stat_replication r "
            "JOIN pg_stat_ssl s USING (pid)"
        )
        senders = cur.fetchall()
    conn.close()
    assert senders == [("node2", True, "streaming")], senders

    # The monitor and the workers verify the nodes with the cluster's CA, and read them.
    for node in cluster.database_nodes.select_related("cluster"):
        assert node_tls(node)["sslmode"] == "verify-full"
        reading = read_node(node, secrets["monitor"], 2.0)
        assert reading.writable is (node.name == "node1"), node.name
    assert proxy_tls(cluster)["sslmode"] == "verify-full"

    # The option off, setup again: plain clients are let in, HA Center's roles still are not.
    Cluster.objects.filter(pk=cluster.pk).update(require_client_tls=False)
    setup(cluster)

    def plain_client_in() -> bool:
        try:
            conn = connect(PROXY, 5432, "app", app_pw, sslmode="disable")
        except psycopg2.OperationalError:
            return False
        ssl_on = over_tls(conn)[0]
        conn.close()
        return ssl_on is False

    wait_for(plain_client_in, 15, "a plain client to get in once TLS is not required")
    message = refusal(NODE2, 5432, "postgres", superuser_pw, sslmode="disable")
    assert "rejects connection" in message, message
    strings = admin.get(f"/api/v1/clusters/{cluster.pk}/connection/").json()
    assert "sslmode=verify-full" in strings["read_write"]  # TLS is still what to use
