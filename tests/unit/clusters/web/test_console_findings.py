"""Console findings of issue 17 that are about answers and validators rather than one page:
full-match validators, secrets marked sensitive in error reports, and answers carrying a
secret that no cache may keep. (Login limits: access/test_login_limits.py; fence: api/
test_fence_guard.py; model validation: inventory/test_model_clean.py; the bad-input catalogue
has the API's cases.)"""

import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.views.debug import SafeExceptionReporterFilter

from clusters.access import users
from clusters.inventory import validators
from clusters.models import Cluster, ClusterSecret, Node
from jobs.configs.spec import NodeSpec
from tests.conftest import api_client, make_user
from tests.unit.clusters.web.bad_input_builders import FP

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[4]


# --- Validators match the whole value --------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "good"),
    [
        (validators.validate_name, "app"),
        (validators.validate_sql_identifier, "app"),
        (validators.validate_unix_user, "app"),
        (validators.validate_label, "app"),
        (validators.validate_fingerprint, FP),
        (validators.validate_apt_proxy, "http://cache:3142"),
        (validators.validate_application_unit, "app.service"),
        (validators.validate_check_path, "/health"),
        (validators.validate_server_address, "198.18.0.11"),
    ],
)
def test_a_trailing_line_break_is_refused_by_every_validator(check, good):
    """Finding: `^...$` with re.match let "app\\n" through ($ matches before a final \\n)."""
    check(good)
    with pytest.raises(ValidationError):
        check(good + "\n")


def test_a_trailing_line_break_is_refused_in_node_specs_and_user_names():
    with pytest.raises(ValueError, match="is not"):
        NodeSpec(name="node1\n", address="198.18.0.11", kind="database")
    with pytest.raises(users.InvalidInput):
        users.user_create(username="ann\n", password="ann-password-123", role=None)


# Files that match whole lines another program wrote, not input; and jobs/configs/ files other
# work owns (haproxy.py, yamlout.py): their patterns are listed in the report to the lead.
LINE_PARSERS = {
    "jobs/lint/parse.py",
    "jobs/ssh.py",
    "jobs/configs/haproxy.py",
    "jobs/configs/yamlout.py",
}


def test_no_validator_pattern_ends_in_a_dollar_that_a_newline_slips_past():
    found = []
    for folder in ("clusters", "jobs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = str(path.relative_to(ROOT))
            if relative in LINE_PARSERS or "/migrations/" in relative:
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if re.search(r"re\.compile\(\s*r?f?\"\^", line) and re.search(r"\$\"", line):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert found == [], "use \\A...\\Z and fullmatch:\n" + "\n".join(found)


# --- Secrets stay out of error reports -------------------------------------------------------


def test_the_wizards_credential_secrets_are_hidden_from_error_reports(client, user):
    client.force_login(user)
    client.post("/wizard/1/", {"name": "pg1", "replication": "async"})
    response = client.post(
        "/wizard/2/",
        {
            "action": "credential",
            "credential-name": "lab",
            "credential-username": "root",
            "credential-password": "wizard-secret-pw",
            "credential-passphrase": "",
            "credential-private_key": "",
        },
    )
    request = response.wsgi_request
    shown = SafeExceptionReporterFilter().get_post_parameters(request)
    assert shown["credential-password"] != "wizard-secret-pw"
    assert shown["credential-name"] == "lab"
    assert {"credential-private_key", "credential-passphrase"} <= set(
        request.sensitive_post_parameters
    )


def test_the_credential_pages_secrets_are_hidden_from_error_reports(client, user):
    client.force_login(user)
    response = client.post(
        "/credentials/", {"name": "lab", "username": "root", "password": "page-secret-pw"}
    )
    shown = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert shown["password"] != "page-secret-pw"


# --- Answers with a secret are never cached --------------------------------------------------


@pytest.fixture
def cluster_with_app(cred) -> Cluster:
    cluster = Cluster.objects.create(name="pg1", database_name="app", database_user="app")
    ClusterSecret.objects.create(cluster=cluster, name="application", value="App-pw-0123456789")
    for i, kind in enumerate(("database", "database", "proxy")):
        Node.objects.create(
            cluster=cluster,
            name=("node1", "node2", "proxy")[i],
            address=f"198.18.0.{11 + i}",
            credential=cred,
            kind=kind,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint=FP,
        )
    return cluster


def _never_cached(response) -> bool:
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    return {"no-store", "private"} <= directives


def test_the_connection_string_api_answer_is_not_cacheable(api, cluster_with_app):
    response = api.get(f"/api/v1/clusters/{cluster_with_app.pk}/connection/")
    assert response.status_code == 200 and "App-pw-0123456789" in response.content.decode()
    assert _never_cached(response), response.get("Cache-Control")


def test_a_refused_connection_string_answer_is_not_cacheable_either(
    client, django_user_model, cluster_with_app
):
    operator = api_client(client, make_user(django_user_model, "op", "operator"))
    response = operator.get(f"/api/v1/clusters/{cluster_with_app.pk}/connection/")
    assert response.status_code == 403 and _never_cached(response)


@pytest.mark.parametrize("htmx", [True, False], ids=["fragment", "page"])
def test_the_connection_string_page_and_fragment_are_not_cacheable(
    client, user, cluster_with_app, htmx
):
    client.force_login(user)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = client.post(f"/clusters/{cluster_with_app.pk}/connection/", **headers)
    assert response.status_code == 200 and "App-pw-0123456789" in response.content.decode()
    assert _never_cached(response), response.get("Cache-Control")
