"""The setup wizard over its draft: each step validates with the shared forms, keeps what was
typed, and creates the cluster only from confirmed host keys. Scans are faked here (unit tests
never touch the network); the browser test drives the real thing against the lab."""

import html as html_module

import pytest

from clusters.inventory import forms
from clusters.models import Cluster, Credential, ScannedHostKey, WizardDraft
from clusters.web import wizard

pytestmark = pytest.mark.django_db

FP = {
    "198.18.0.11": "SHA256:" + "a" * 43,
    "198.18.0.12": "SHA256:" + "b" * 43,
    "198.18.0.10": "SHA256:" + "c" * 43,
}


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser("boss", password="boss-password-123")


@pytest.fixture
def cred():
    return Credential.objects.create(name="lab", username="root", password="pw-123456")


def fake_scan(address: str, port: int) -> dict:
    """What the worker's scan returns, recorded as a real scan records it."""
    if address not in FP:
        return {"error": f"cannot connect to {address}:{port}: connection refused"}
    ScannedHostKey.objects.update_or_create(
        address=address,
        port=port,
        fingerprint=FP[address],
        defaults={"key_type": "ssh-ed25519", "base64": "AAAA"},
    )
    return {"key_type": "ssh-ed25519", "fingerprint": FP[address]}


STEP1 = {
    "name": "pg1",
    "postgres_version": "15",
    "replication": "async",
    "failover_profile": "balanced",
    "client_networks": "10.0.0.0/24",
    "database_name": "app",
    "database_user": "app",
}


def servers_post(cred: Credential, **overrides) -> dict:
    rows = [
        ("node1", "198.18.0.11", "master"),
        ("node2", "198.18.0.12", "standby"),
        ("proxy", "198.18.0.10", "proxy"),
    ]
    data = {"rows": "3", "action": "next"}
    for i, (name, address, role) in enumerate(rows):
        data.update(
            {
                f"servers-{i}-name": name,
                f"servers-{i}-address": address,
                f"servers-{i}-ssh_port": "22",
                f"servers-{i}-credential": str(cred.pk),
                f"servers-{i}-role": role,
            }
        )
    data.update(overrides)
    return data


def test_step1_bad_input_shows_errors_next_to_fields_and_keeps_what_was_typed(client, admin):
    client.force_login(admin)
    bad = dict(STEP1, name="Bad Name!", client_networks="10.0.0.1/24", database_user="pg_x")
    html = client.post("/wizard/1/", bad).content.decode()
    assert 'id="f-name-err"' in html and "lower-case letters" in html
    assert "not a network in CIDR form" in html
    assert "not starting with pg_" in html
    assert 'value="Bad Name!"' in html  # kept as typed
    draft = WizardDraft.objects.get(user=admin)
    assert draft.reached == 1 and not Cluster.objects.exists()
    assert client.get("/wizard/2/").url == "/wizard/1/"  # cannot skip ahead


def test_step2_validates_rows_together_and_back_keeps_them(client, admin, cred):
    client.force_login(admin)
    assert client.post("/wizard/1/", STEP1).url == "/wizard/2/"
    data = servers_post(cred, **{"servers-1-role": "proxy", "servers-0-address": "not an ip!"})
    html = client.post("/wizard/2/", data).content.decode()
    assert "host names are not accepted because etcd and pg_hba need addresses" in html
    assert client.post("/wizard/2/", dict(data, action="back")).url == "/wizard/1/"
    html = client.get("/wizard/2/").content.decode()
    assert 'value="not an ip!"' in html  # going back kept what was typed
    data = servers_post(cred, **{"servers-1-role": "proxy"})
    html = client.post("/wizard/2/", data).content.decode()
    assert "at least two database nodes" in html
    assert WizardDraft.objects.get(user=admin).reached == 2


def test_inline_credential_is_stored_encrypted_and_bad_one_shows_its_error(client, admin):
    client.force_login(admin)
    client.post("/wizard/1/", STEP1)
    data = servers_post(Credential(pk=0), action="credential")
    for i in range(3):
        data[f"servers-{i}-credential"] = ""
    bad = dict(data, **{"credential-name": "k", "credential-username": "root"})
    bad["credential-private_key"] = "not a key"
    html = client.post("/wizard/2/", bad).content.decode()
    assert "field-error" in html and not Credential.objects.exists()
    ok = dict(data, **{"credential-name": "pw", "credential-username": "root"})
    ok["credential-password"] = "s3cret-password-xyz"
    assert client.post("/wizard/2/", ok).url == "/wizard/2/"
    cred = Credential.objects.get(name="pw")
    draft = WizardDraft.objects.get(user=admin)
    assert {r["credential"] for r in draft.servers} == {str(cred.pk)}
    assert "s3cret-password-xyz" not in str(draft.servers) + str(draft.cluster_fields)
    assert "s3cret-password-xyz" not in client.get("/wizard/2/").content.decode()


def test_host_keys_must_each_be_confirmed_before_the_cluster_exists(admin, cred):
    draft = wizard.draft_get(user=admin)
    wizard.wizard_cluster_save(draft=draft, fields=STEP1)
    rows = [
        {"name": "node1", "address": "198.18.0.11", "role": "master", "credential": cred.pk},
        {"name": "node2", "address": "198.18.0.12", "role": "standby", "credential": cred.pk},
        {"name": "proxy", "address": "198.18.0.10", "role": "proxy", "credential": cred.pk},
    ]
    wizard.wizard_servers_save(draft=draft, rows=rows)
    wizard.wizard_host_keys_scan(draft=draft, scan=fake_scan)
    with pytest.raises(wizard.InvalidInput) as exc:
        wizard.wizard_host_keys_confirm(draft=draft, confirmed={0, 1}, user=admin)
    assert list(exc.value.field_errors) == ["nodes[2].host_key_fingerprint"]
    assert not Cluster.objects.exists()
    cluster = wizard.wizard_host_keys_confirm(draft=draft, confirmed={0, 1, 2}, user=admin)
    assert cluster.state == "new" and cluster.database_name == "app"
    assert cluster.client_networks == ["10.0.0.0/24"]
    pinned = dict(cluster.nodes.values_list("address", "host_key_fingerprint"))
    assert pinned == FP
    assert cluster.nodes.get(name="node1").bootstrap_primary
    # An edit of step 2 drops the not-yet-set-up cluster: its nodes pinned the old servers.
    rows[1] = dict(rows[1], address="198.18.0.13")
    wizard.wizard_servers_save(draft=draft, rows=rows)
    assert not Cluster.objects.exists() and draft.reached == 3
    wizard.wizard_host_keys_scan(draft=draft, scan=fake_scan)
    assert "connection refused" in wizard.host_key_of(draft, rows[1])["error"]


def test_launch_needs_a_passed_preflight(admin):
    draft = wizard.draft_get(user=admin)
    with pytest.raises(wizard.InvalidInput):
        wizard.wizard_launch(draft=draft, user=admin)
    with pytest.raises(wizard.InvalidInput, match="invalid input"):
        wizard.wizard_preflight_accept(draft=draft, acknowledged=True)


def test_wizard_is_for_admins_only(client, django_user_model):
    from tests.conftest import make_user

    client.force_login(make_user(django_user_model, "op", "operator"))
    response = client.get("/wizard/1/")
    assert response.status_code == 403 and "needs the admin role" in response.content.decode()
    assert not WizardDraft.objects.exists()


def test_discard_removes_the_draft(client, admin):
    client.force_login(admin)
    client.post("/wizard/1/", STEP1)
    assert client.post("/wizard/discard/").url == "/"
    assert not WizardDraft.objects.exists()


def defined_draft(admin, cred) -> WizardDraft:
    """A draft whose cluster exists (host keys confirmed), as before preflight."""
    draft = wizard.draft_get(user=admin)
    wizard.wizard_cluster_save(draft=draft, fields=STEP1)
    rows = [
        {"name": "node1", "address": "198.18.0.11", "role": "master", "credential": cred.pk},
        {"name": "node2", "address": "198.18.0.12", "role": "standby", "credential": cred.pk},
        {"name": "proxy", "address": "198.18.0.10", "role": "proxy", "credential": cred.pk},
    ]
    wizard.wizard_servers_save(draft=draft, rows=rows)
    wizard.wizard_host_keys_scan(draft=draft, scan=fake_scan)
    wizard.wizard_host_keys_confirm(draft=draft, confirmed={0, 1, 2}, user=admin)
    return draft


def finished_preflight(draft: WizardDraft, job_status: str, step_statuses: list[str]):
    """A preflight job as a worker leaves it (no worker here: unit tests run none)."""
    from jobs.models import Job, Step

    job = Job.objects.create(
        kind="preflight", cluster=draft.cluster, mutating=False, status=job_status
    )
    for i, status in enumerate(step_statuses, start=1):
        Step.objects.create(job=job, position=i, name=f"s{i}", title=f"check {i}", status=status)
    draft.preflight_job_id = job.pk
    draft.save()
    return job


def test_preflight_errors_stop_the_wizard(admin, cred):
    draft = defined_draft(admin, cred)
    finished_preflight(draft, "failed", ["succeeded", "failed", "pending"])
    assert wizard.preflight_outcome(draft)["verdict"] == "errors"
    with pytest.raises(wizard.InvalidInput, match="invalid input") as exc:
        wizard.wizard_preflight_accept(draft=draft, acknowledged=True)
    assert "fix them" in exc.value.field_errors["non_field_errors"][0]
    with pytest.raises(wizard.InvalidInput):
        wizard.wizard_launch(draft=draft, user=admin)
    assert draft.cluster.jobs.filter(kind="setup").count() == 0


def test_preflight_warnings_must_be_acknowledged_then_launch_starts_setup(
    client, admin, cred, django_capture_on_commit_callbacks
):
    draft = defined_draft(admin, cred)
    finished_preflight(draft, "succeeded", ["succeeded", "warning"])
    client.force_login(admin)
    html = client.post("/wizard/4/", {"action": "next"}).content.decode()
    assert "tick the box to go on" in html and "! warning" in html
    assert client.post("/wizard/4/", {"action": "next", "acknowledge": "1"}).url == "/wizard/5/"
    # The application step is optional: empty, it leads on to the review.
    assert client.post("/wizard/5/", {"action": "next", "frontends": "1"}).url == "/wizard/6/"
    html = client.get("/wizard/6/").content.decode()
    assert "passed with 1 warning" in html
    cluster = draft.cluster
    # The queued task is not run: unit tests have no worker (the browser test has one).
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/wizard/6/", {"action": "launch"})
    job = cluster.jobs.get(kind="setup")
    assert response.url == f"/jobs/{job.pk}/"
    assert not WizardDraft.objects.filter(user=admin).exists()


def application_post(**overrides) -> dict:
    data = {
        "action": "next",
        "frontends": "2",
        "frontends-0-listen_port": "80",
        "frontends-0-app_port": "8080",
        "frontends-0-check_path": "/health",
        "frontends-1-listen_port": "8443",
        "frontends-1-app_port": "443",
        "frontends-1-check_path": "",
        "application_unit": "myapp.service",
    }
    data.update(overrides)
    return data


def passed_preflight(client, admin, cred) -> WizardDraft:
    draft = defined_draft(admin, cred)
    finished_preflight(draft, "succeeded", ["succeeded"])
    client.force_login(admin)
    assert client.post("/wizard/4/", {"action": "next"}).url == "/wizard/5/"
    return draft


def test_application_step_gives_frontends_and_unit_to_the_cluster(client, admin, cred):
    draft = passed_preflight(client, admin, cred)
    assert client.post("/wizard/5/", application_post()).url == "/wizard/6/"
    cluster = Cluster.objects.get(pk=draft.cluster.pk)
    assert cluster.http_frontends == [
        {"listen_port": 80, "app_port": 8080, "check_path": "/health"},
        {"listen_port": 8443, "app_port": 443},
    ]
    assert cluster.application_unit == "myapp.service"
    html = client.get("/wizard/6/").content.decode()
    assert "proxy :80 → primary :8080 (checks /health)" in html
    assert "unit myapp.service runs on the primary only" in html


@pytest.mark.parametrize(
    ("override", "key", "message"),
    [
        ({"frontends-0-check_path": "/he alth"}, "http_frontends[0].check_path", "without spaces"),
        ({"frontends-0-check_path": "health"}, "http_frontends[0].check_path", "starting with /"),
        ({"frontends-0-check_path": "/a#b"}, "http_frontends[0].check_path", "#"),
        ({"frontends-1-listen_port": "5432"}, "http_frontends[1]", "Port 5432 is taken"),
        ({"frontends-1-listen_port": "80"}, "http_frontends[1]", "Port 80 is taken"),
        ({"frontends-0-app_port": "x"}, "http_frontends[0]", "numbers from 1 to 65535"),
        ({"application_unit": "my app.service"}, "application_unit", "ending in .service"),
        ({"application_unit": "myapp"}, "application_unit", "ending in .service"),
        ({"application_unit": "-x.service"}, "application_unit", "ending in .service"),
        ({"application_unit": "app@.service"}, "application_unit", "instance"),
        ({"application_unit": "postgresql.service"}, "application_unit", "application's own"),
        ({"application_unit": "hacenter-patroni-pg1.service"}, "application_unit", "own unit"),
    ],
)
def test_application_step_refuses_bad_input_and_changes_nothing(
    client, admin, cred, override, key, message
):
    draft = passed_preflight(client, admin, cred)
    response = client.post("/wizard/5/", application_post(**override))
    assert response.status_code == 200
    page = html_module.unescape(response.content.decode())
    assert message in page, page[-3000:]
    assert 'aria-invalid="true"' in page
    cluster = Cluster.objects.get(pk=draft.cluster.pk)
    assert cluster.http_frontends == [] and cluster.application_unit == ""
    assert WizardDraft.objects.get(pk=draft.pk).reached == WizardDraft.Step.APPLICATION
    # What was typed is kept, to correct it.
    assert WizardDraft.objects.get(pk=draft.pk).application["unit"] == (
        override.get("application_unit", "myapp.service")
    )
    # The API refuses the same input with the same key (the wizard adds no rules of its own).
    data = wizard.application_data(WizardDraft.objects.get(pk=draft.pk).application)
    errors: dict = {}
    forms.validate_http_frontends(data["http_frontends"], errors)
    forms.validate_application_unit(data["application_unit"], errors)
    assert key in errors, errors


def test_application_step_rows_can_be_added_and_removed(client, admin, cred):
    draft = passed_preflight(client, admin, cred)
    client.post("/wizard/5/", application_post(action="add"))
    assert len(WizardDraft.objects.get(pk=draft.pk).application["frontends"]) == 3
    client.post("/wizard/5/", application_post(action="remove-0"))
    rows = WizardDraft.objects.get(pk=draft.pk).application["frontends"]
    assert [r["listen_port"] for r in rows] == ["8443"]
