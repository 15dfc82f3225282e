"""Known secrets go in; setup runs on the lab; none of them comes out anywhere.

Seeded: the lab's SSH private key re-encrypted with a known passphrase (so setup must use the
passphrase), a password credential, and then every password setup generates. Searched: a dump
of every table of the console's database (encrypted columns hold only ciphertext, so the
plaintext may appear nowhere), the worker's log and this process's log, every job log line,
every page and every API answer an admin can fetch (the CA certificate's download included),
and the inventory export. Setup's generated secrets include the cluster's CA key and every
node's TLS key: each base64 line of them is searched for. The one place a secret may appear by
design, the admin-only and audited connection-strings answer, is checked to be audited instead.
"""

import json
import logging

import pytest
from cryptography.hazmat.primitives import serialization
from django.db import connection

from clusters.access.roles import assign_role
from clusters.inventory.export_import import inventory_export
from clusters.models import AuditEntry, Cluster
from tests.conftest import api_client
from tests.integration.conftest import wait_for_job

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSPHRASE = "seeded-passphrase-Zq8#wLm2"
SSH_PASSWORD = "seeded-ssh-password-Kv4!pX9r"


def _encrypted_copy(key_text: str) -> str:
    """The lab key in a PKCS#8 container encrypted with PASSPHRASE."""
    data = key_text.encode()
    if b"OPENSSH" in data:
        key = serialization.load_ssh_private_key(data, None)
    else:
        key = serialization.load_pem_private_key(data, None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    ).decode()


def _key_pieces(key_text: str) -> list[str]:
    # A key leaks as well line by line: each base64 body line is a secret of its own.
    return [ln.strip() for ln in key_text.splitlines() if len(ln.strip()) >= 16 and "---" not in ln]


def _database_dump() -> str:
    """Every row of every table, as stored (encrypted columns stay ciphertext)."""
    parts = []
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names()):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            parts.append(f"{table}: {cursor.fetchall()!r}")
    return "\n".join(parts)


def test_no_seeded_or_generated_secret_leaks_anywhere(
    fresh_lab, worker, client, django_user_model, caplog
):
    caplog.set_level(logging.DEBUG)
    admin = django_user_model.objects.create_user("admin", password="pw-admin-secret-1")
    assign_role(admin, "admin")
    api = api_client(client, admin)
    answers: list[str] = []

    def keep(response) -> dict:
        answers.append(response.content.decode())
        return response.json()

    protected_key = _encrypted_copy(fresh_lab.private_key_text)
    cred = keep(
        api.post(
            "/api/v1/credentials/",
            {
                "name": "lab-root",
                "username": "root",
                "private_key": protected_key,
                "passphrase": PASSPHRASE,
            },
        )
    )
    keep(
        api.post(
            "/api/v1/credentials/",
            {"name": "spare", "username": "deploy", "password": SSH_PASSWORD},
        )
    )
    nodes = []
    for host in fresh_lab.hosts:
        scan = keep(api.post("/api/v1/host-keys/scan/", {"address": host.address, "port": 22}))
        assert scan["fingerprint"] == fresh_lab.host_key_fingerprint(host.name)
        nodes.append(
            {
                "name": host.name,
                "address": host.address,
                "ssh_port": 22,
                "credential": cred["id"],
                "host_key_fingerprint": scan["fingerprint"],
                "kind": "proxy" if host.name == "proxy" else "database",
            }
        )
    body = {
        "name": "pgs",
        "replication": "async",
        "nodes": nodes,
        "client_networks": ["198.18.0.1/32"],
        "database": {"name": "app", "user": "app"},
    }
    cluster_id = keep(api.post("/api/v1/clusters/", body))["id"]
    job_id = keep(api.post(f"/api/v1/clusters/{cluster_id}/jobs/", {"kind": "setup"}))["id"]

    from jobs.models import Job

    job = wait_for_job(Job.objects.get(pk=job_id), timeout=600)
    steps = [(s.title, s.status, s.summary) for s in job.steps.all()]
    assert job.status == "succeeded", (job.error, steps)
    cluster = Cluster.objects.get(pk=cluster_id)
    generated = [s.value for s in cluster.secrets.all()]
    assert len(generated) >= 6  # superuser, replication, rewind, REST API, stats, monitor, app
    # The cluster's CA and a certificate per node, made by setup; their keys are secrets too.
    assert "PRIVATE KEY" in cluster.ca_key
    tls_keys = {"CA": cluster.ca_key} | {n.name: n.tls_key for n in cluster.nodes.all()}
    assert all("PRIVATE KEY" in key for key in tls_keys.values()), list(tls_keys)

    # The deliberate reveal: admin-only, audited, and left out of the search below.
    connection_answer = api.get(f"/api/v1/clusters/{cluster_id}/connection/")
    assert connection_answer.status_code == 200
    assert AuditEntry.objects.filter(action="cluster.connection.read", user=admin).exists()

    client.force_login(admin)
    pages = [
        "/",
        f"/clusters/{cluster_id}/",
        "/clusters/new/",
        "/credentials/",
        "/alerts/",
        "/audit/",
        "/jobs/",
        f"/jobs/{job_id}/",
        f"/jobs/{job_id}/steps/",
        f"/jobs/{job_id}/log/?after=0",
        f"/clusters/{cluster_id}/ca.crt",
    ]
    for url in pages:
        # The step list and the log are htmx fragments: a plain GET goes to the job page.
        fragment = url.endswith(("/steps/", "?after=0"))
        response = client.get(url, HTTP_HX_REQUEST="true") if fragment else client.get(url)
        assert response.status_code == 200, url
        answers.append(response.content.decode())
    for url in (
        "/api/v1/credentials/",
        "/api/v1/clusters/",
        f"/api/v1/clusters/{cluster_id}/",
        f"/api/v1/jobs/{job_id}/",
        f"/api/v1/jobs/{job_id}/log/?after=0",
    ):
        keep(api.get(url))
    ca_answer = api.get(f"/api/v1/clusters/{cluster_id}/ca/")
    assert ca_answer.status_code == 200 and "BEGIN CERTIFICATE" in ca_answer.content.decode()
    answers.append(ca_answer.content.decode())
    metrics = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {_token(admin)}")
    assert metrics.status_code == 200
    answers.append(metrics.content.decode())

    log_lines = "\n".join(job.log_lines.values_list("text", flat=True))
    assert "Patroni" in log_lines  # the search below looks at a real log, not an empty one
    places = {
        "database dump": _database_dump(),
        "worker log": worker.log_path.read_text(errors="replace"),
        "console log": "\n".join(r.getMessage() for r in caplog.records),
        "job log lines": log_lines,
        "pages and API answers": "\n".join(answers),
        "inventory export": json.dumps(inventory_export()),
    }
    secrets = {
        "passphrase": PASSPHRASE,
        "ssh password": SSH_PASSWORD,
        **{f"generated {s.name}": s.value for s in cluster.secrets.all()},
        **{f"key line {i}": p for i, p in enumerate(_key_pieces(protected_key))},
        **{f"plain key line {i}": p for i, p in enumerate(_key_pieces(fresh_lab.private_key_text))},
        **{
            f"{owner} TLS key line {i}": p
            for owner, key in tls_keys.items()
            for i, p in enumerate(_key_pieces(key))
        },
    }
    leaks = [
        f"{name} in {place}"
        for name, secret in secrets.items()
        for place, text in places.items()
        if secret in text
    ]
    assert leaks == []
    # The search is real: the dump holds the inventory, and a generated password is found
    # where it is shown on purpose.
    assert "lab-root" in places["database dump"] and "pgs" in places["database dump"]
    assert any(g in connection_answer.content.decode() for g in generated)
    # The CA certificate (public) is there, downloaded; the export holds the cluster.
    assert cluster.ca_certificate.splitlines()[1] in places["pages and API answers"]
    assert '"name": "pgs"' in places["inventory export"]


def _token(user) -> str:
    from clusters.models import ApiToken

    return ApiToken.issue(user)
