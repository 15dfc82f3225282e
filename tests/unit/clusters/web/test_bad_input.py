"""A catalogue of bad input through the API and the pages (new cluster, credentials, alerts).

Each case must be refused with a 4xx and a message that says what is wrong, leave every
inventory and job table exactly as it was, ask no worker to touch a server, and leave a
"refused" row in the audit trail. Shell metacharacters are tried in every free-text field.
"""

import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from clusters.models import AuditEntry
from tests.unit.clusters.web.bad_input_builders import (
    ENCRYPTED_KEY,
    LETTERS,
    NAME_RULE,
    TEN_MB,
    Bad,
    cred_body,
    node,
)
from tests.unit.clusters.web.bad_input_cases import API_CASES
from tests.unit.clusters.web.conftest import _state

pytestmark = pytest.mark.django_db

PAGE_CASES = [
    # --- pages -----------------------------------------------------------------------------
    Bad(
        "page-cred-name-subshell",
        "/credentials/",
        cred_body(name="lab$(id)"),
        LETTERS,
        page=True,
    ),
    Bad(
        "page-cred-key-with-passphrase-none-given",
        "/credentials/",
        cred_body(password="", private_key=ENCRYPTED_KEY),
        "encrypted key needs a passphrase",
        page=True,
    ),
    Bad(
        "page-cred-10mb-paste",
        "/credentials/",
        cred_body(password="", private_key=TEN_MB),
        "the console accepts at most 1024 KB",
        status=413,
        page=True,
    ),
    Bad(
        "page-cred-non-utf8-upload",
        "/credentials/",
        cred_body(password="", private_key_file="NON_UTF8_FILE"),
        "The key file is not UTF-8 text",
        page=True,
    ),
    Bad(
        "page-cluster-name-semicolon",
        "/clusters/new/",
        {"name": "pg1;reboot"},
        NAME_RULE,
        page=True,
    ),
    Bad(
        "page-node-address-and",
        "/clusters/new/",
        {"nodes-0-address": "198.18.0.11 && reboot"},
        "Enter the server's IP address",
        page=True,
    ),
    Bad(
        "page-node-address-host-name",
        "/clusters/new/",
        {"nodes-1-address": "db2.example.com"},
        "host names are not accepted because etcd and pg_hba need addresses",
        page=True,
    ),
    Bad(
        "page-node-port-pipe",
        "/clusters/new/",
        {"nodes-0-ssh_port": "22|id"},
        "Enter a whole number",
        page=True,
    ),
    Bad(
        "page-node-address-duplicate",
        "/clusters/new/",
        {"nodes-1-address": "198.18.0.11"},
        "Two nodes have this address",
        page=True,
    ),
    Bad(
        "page-networks-overlapping",
        "/clusters/new/",
        {"client_networks": "10.0.0.0/8 10.1.0.0/16"},
        "overlaps 10.0.0.0/8",
        page=True,
    ),
    Bad(
        "page-scan-address-subshell",
        "/clusters/new/",
        {"action": "scan", "nodes-0-address": "$(reboot)"},
        "Enter the server's IP address",
        status=200,  # the form comes back with the scan's verdict per server
        page=True,
    ),
    Bad(
        "page-alert-email-header-injection",
        "/alerts/",
        {"kind": "email", "target": "ops@example.com\nBcc: all@example.com"},
        "Enter an email address",
        page=True,
    ),
    Bad(
        "page-alert-webhook-semicolon",
        "/alerts/",
        {"kind": "webhook", "target": "https://hooks.example.com/x;reboot"},
        "not allowed here: ;",
        page=True,
    ),
    Bad(
        "page-alert-webhook-subshell",
        "/alerts/",
        {"kind": "webhook", "target": "https://hooks.example.com/$(id)"},
        "not allowed here: $ ( )",
        page=True,
    ),
    # --- webhooks into the console's own network (SSRF): refused unless allow-listed --------
    *(
        Bad(
            f"page-alert-webhook-{name}",
            "/alerts/",
            {"kind": "webhook", "target": url},
            says,
            page=True,
        )
        for name, url, says in (
            ("metadata", "http://169.254.169.254/latest/meta-data/", "is a link-local address"),
            ("hex-loopback", "http://0x7f000001/hook", "127.0.0.1 is a loopback address"),
            ("short-loopback", "http://127.1/", "127.0.0.1 is a loopback address"),
            ("decimal-loopback", "http://2130706433/", "127.0.0.1 is a loopback address"),
            ("ipv6-loopback", "http://[::1]:8080/", "::1 is a loopback address"),
            ("localhost", "http://localhost:6379/", "127.0.0.1 is a loopback address"),
            ("mapped-loopback", "http://[::ffff:127.0.0.1]/", "127.0.0.1, a loopback address"),
            ("private", "https://10.0.0.5/hook", "10.0.0.5 is a private address"),
            ("unspecified", "http://0.0.0.0:8000/", "is the unspecified address"),
        )
    ),
    Bad(
        "page-token-days-zero",
        "/users/tokens/",
        {"name": "ci", "days": "0"},
        "from 1 to 365",
        page=True,
    ),
]
CASES = API_CASES + PAGE_CASES


def test_the_catalogue_is_large_and_covers_the_issue():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40


def _fill(value, world: dict):
    text = json.dumps(value) if not isinstance(value, str) else value
    text = text.replace('"CRED"', str(world["cred"].pk))
    return json.loads(text) if not isinstance(value, str) else text


def _page_form(case: Bad, world: dict) -> dict:
    if case.url != "/clusters/new/":
        return dict(case.body)
    form = {
        "name": "pg1",
        "replication": "async",
        "failover_profile": "balanced",
        "client_networks": "10.20.0.0/16",
        "rows": "3",
        "action": "create",
    }
    for i in range(3):
        for key, value in node(i).items():
            form[f"nodes-{i}-{key}"] = world["cred"].pk if value == "CRED" else value
    return form | case.body


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_refused_clearly_and_changes_nothing(
    client, api, user, world, worker_calls, case: Bad
):
    before = _state()
    url = case.url.replace("EXISTING", str(world["cluster"].pk))
    if case.page:
        client.force_login(user)
        form = _page_form(case, world)
        if form.get("private_key_file") == "NON_UTF8_FILE":
            form["private_key_file"] = SimpleUploadedFile("id_ed25519", b"\xff\xfe\x00key")
        response = client.post(url, form)
        answer = html.unescape(response.content.decode())
    else:
        body = case.body
        if isinstance(body, dict):
            body = json.dumps(_fill(body, world))
        response = api.post(url, body)
        answer = response.content.decode()
        if response["Content-Type"] == "application/json":
            data = response.json()
            answer = json.dumps(data, ensure_ascii=False)
            if case.field is not None:
                assert case.message in " ".join(data["field_errors"].get(case.field, [])), data
    assert response.status_code == case.status, answer[-600:]
    assert case.message in answer, answer[-1500:]
    assert _state() == before
    assert AuditEntry.objects.filter(result__startswith="refused").exists()
    # Only the well-formed addresses of a page scan may reach a worker (to read a host key).
    assert worker_calls == (
        ["198.18.0.12", "198.18.0.13"] if case.id == "page-scan-address-subshell" else []
    )
