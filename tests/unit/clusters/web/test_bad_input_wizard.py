"""The bad-input catalogue through the setup wizard: the same validators as the API
(test_bad_input.py), reached through steps 1 and 2 and the inline credential form.
Each case must show its message on the page, change nothing in the inventory or the jobs, and
never ask a worker to contact a server."""

import html
from dataclasses import dataclass, field

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.unit.clusters.web.bad_input_builders import (
    ENCRYPTED_KEY,
    IP_ONLY,
    LETTERS,
    NAME_RULE,
    TEN_MB,
)
from tests.unit.clusters.web.conftest import _state

pytestmark = pytest.mark.django_db

STEP1 = {
    "name": "pg1",
    "postgres_version": "15",
    "replication": "async",
    "failover_profile": "balanced",
    "client_networks": "10.20.0.0/16",
    "database_name": "app",
    "database_user": "app",
}
SERVERS = [
    {"name": "node1", "address": "198.18.0.11", "ssh_port": "22", "role": "master"},
    {"name": "node2", "address": "198.18.0.12", "ssh_port": "22", "role": "standby"},
    {"name": "proxy", "address": "198.18.0.13", "ssh_port": "22", "role": "proxy"},
]


@dataclass
class WizardBad:
    id: str
    step: int
    message: str
    cluster: dict = field(default_factory=dict)  # step 1 fields changed
    server: tuple[int, dict] | None = None  # step 2: (row, fields changed)
    servers: list[dict] | None = None  # step 2: the whole list
    credential: dict | None = None  # step 2: the inline credential form
    status: int = 200  # the step shown again with the message; 413 for a body over 1 MB


def replaced(i: int, **changes) -> tuple[int, dict]:
    return i, changes


CASES = [
    WizardBad("name-semicolon", 1, NAME_RULE, cluster={"name": "pg1;reboot"}),
    WizardBad("name-subshell", 1, NAME_RULE, cluster={"name": "$(reboot)"}),
    WizardBad("name-backtick", 1, NAME_RULE, cluster={"name": "pg`id`"}),
    WizardBad("name-64", 1, "at most 63", cluster={"name": "p" * 64}),
    WizardBad("name-taken", 1, "exists already", cluster={"name": "pg0"}),
    WizardBad("replication-both", 1, "Select a valid choice", cluster={"replication": "both"}),
    WizardBad("profile-turbo", 1, "Select a valid choice", cluster={"failover_profile": "turbo"}),
    WizardBad(
        "network-host-bits", 1, "has host bits set", cluster={"client_networks": "10.0.0.1/8"}
    ),
    WizardBad(
        "network-everything",
        1,
        "every address on the internet",
        cluster={"client_networks": "0.0.0.0/0"},
    ),
    WizardBad(
        "network-overlapping",
        1,
        "overlaps 10.0.0.0/8",
        cluster={"client_networks": "10.0.0.0/8 10.1.0.0/16"},
    ),
    WizardBad(
        "network-injected",
        1,
        "not a network in CIDR form",
        cluster={"client_networks": "10.0.0.0/8;id"},
    ),
    WizardBad(
        "database-injected",
        1,
        "lower-case letters, digits and underscores",
        cluster={"database_name": "app;drop"},
    ),
    WizardBad(
        "database-user-postgres",
        1,
        "PostgreSQL or HA Center uses itself",
        cluster={"database_user": "postgres"},
    ),
    WizardBad("server-name-backtick", 2, NAME_RULE, server=replaced(0, name="node1`id`")),
    # issue 17: a host name passed here and failed setup with a 500 later.
    WizardBad(
        "server-address-host-name", 2, IP_ONLY, server=replaced(1, address="db2.example.com")
    ),
    WizardBad(
        "server-address-subshell",
        2,
        "Enter the server's IP address",
        server=replaced(1, address="$(reboot)"),
    ),
    WizardBad(
        "server-address-and",
        2,
        "Enter the server's IP address",
        server=replaced(1, address="198.18.0.12 && reboot"),
    ),
    WizardBad(
        "server-port-70000", 2, "less than or equal to 65535", server=replaced(2, ssh_port="70000")
    ),
    WizardBad("server-port-text", 2, "Enter a whole number", server=replaced(2, ssh_port="22;id")),
    WizardBad(
        "server-address-duplicate",
        2,
        "Two nodes have this address",
        server=replaced(1, address="198.18.0.11"),
    ),
    WizardBad(
        "server-address-in-another-cluster",
        2,
        "already belongs to another cluster",
        server=replaced(1, address="198.18.0.21"),
    ),
    WizardBad(
        "servers-one-database",
        2,
        "at least two database nodes",
        servers=[SERVERS[0], SERVERS[2]],
    ),
    WizardBad(
        "credential-passphrase-missing",
        2,
        "encrypted key needs a passphrase",
        credential={"name": "k1", "username": "root", "private_key": ENCRYPTED_KEY},
    ),
    WizardBad(
        "credential-ten-mb",
        2,
        "A private key is a few KB",
        credential={"name": "k2", "username": "root", "private_key": TEN_MB},
        status=413,
    ),
    WizardBad(
        "credential-name-injected",
        2,
        LETTERS,
        credential={"name": "k; rm -rf /", "username": "root", "password": "pw-123456"},
    ),
]


def _servers_form(rows: list[dict], credential: int) -> dict:
    form = {"rows": str(len(rows))}
    for i, row in enumerate(rows):
        for key, value in {**row, "credential": credential}.items():
            form[f"servers-{i}-{key}"] = value
    return form


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_in_the_wizard_is_refused_next_to_the_field_and_changes_nothing(
    client, user, world, worker_calls, case: WizardBad
):
    client.force_login(user)
    if case.step == 2:  # a valid step 1 first, as an admin would have typed it
        assert client.post("/wizard/1/", STEP1).status_code == 302
    before = _state()
    if case.step == 1:
        response = client.post("/wizard/1/", STEP1 | case.cluster)
    else:
        rows = [dict(r) for r in (case.servers or SERVERS)]
        if case.server:
            i, changes = case.server
            rows[i] |= changes
        form = _servers_form(rows, world["cred"].pk)
        if case.credential is not None:
            form |= {f"credential-{k}": v for k, v in case.credential.items()}
            form["action"] = "credential"
        response = client.post("/wizard/2/", form)
    page = html.unescape(response.content.decode())
    assert response.status_code == case.status, response.status_code
    assert case.message in page, page[-2000:]
    assert _state() == before
    assert worker_calls == []


def test_a_non_utf8_key_file_in_the_wizard_is_refused(client, user, world, worker_calls):
    client.force_login(user)
    client.post("/wizard/1/", STEP1)
    before = _state()
    form = _servers_form(SERVERS, world["cred"].pk) | {
        "action": "credential",
        "credential-name": "k3",
        "credential-username": "root",
        "credential-private_key_file": SimpleUploadedFile("id_ed25519", b"\xff\xfe\x00key"),
    }
    page = html.unescape(client.post("/wizard/2/", form).content.decode())
    assert "The key file is not UTF-8 text" in page and _state() == before
