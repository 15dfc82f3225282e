"""The audit trail: every change from a page or the API leaves a row with user, action, target,
parameters (never secrets), source address and result; rows cannot be changed; the audit page
filters them."""

import pytest

from clusters.access.audit import audit_record
from clusters.models import AuditEntry, Credential
from clusters.models.access import AuditEntryImmutable
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_a_page_change_is_recorded_with_user_address_params_and_result(client, user):
    client.force_login(user)
    client.post(
        "/credentials/",
        {"name": "lab", "username": "root", "password": "s3cret-pw-value"},
        REMOTE_ADDR="10.9.8.7",
    )
    entry = AuditEntry.objects.get(action="credential.create")
    assert (entry.username, entry.target, entry.source_address, entry.result) == (
        "ops",
        "credential lab",
        "10.9.8.7",
        "ok",
    )
    assert entry.params == {"name": "lab", "username": "root", "kind": "password"}
    assert "s3cret-pw-value" not in str(entry.params)


def test_a_refused_api_change_is_recorded_with_the_fields_but_not_their_values(api):
    response = api.post(
        "/api/v1/credentials/", {"name": "x", "username": "root; reboot", "password": "pw-abc-123"}
    )
    assert response.status_code == 400
    entry = AuditEntry.objects.get(action="credential.create")
    assert entry.result == "refused: invalid username"
    assert "reboot" not in str(entry.params) + entry.target + entry.result
    assert not Credential.objects.exists()


def test_a_change_no_view_recorded_is_recorded_by_the_middleware(client, user):
    """A CSRF failure never reaches the view; the safety net still writes it down."""
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    response = strict.post("/credentials/", {"name": "x", "username": "root", "password": "pw"})
    assert response.status_code == 403
    entry = AuditEntry.objects.get()
    assert entry.action == "post credential-list" and entry.username == "ops"
    assert entry.result == "refused: HTTP 403" and entry.params == {"status": 403}


def test_reads_are_not_audited_except_secret_reveals(client, user):
    client.force_login(user)
    for url in ("/", "/credentials/", "/jobs/", "/alerts/", "/audit/"):
        assert client.get(url).status_code == 200
    assert not AuditEntry.objects.exists()


def test_secret_looking_params_are_masked_even_if_a_caller_passes_them(django_user_model):
    entry = audit_record(
        user=None,
        action="x",
        params={"password": "hunter2", "nested": {"private_key": "KEY"}, "name": "ok"},
    )
    assert entry.params == {
        "password": "[hidden]",
        "nested": {"private_key": "[hidden]"},
        "name": "ok",
    }


def test_audit_entries_cannot_be_changed_or_removed():
    entry = audit_record(user=None, action="cluster.create", target="cluster pg1")
    entry.result = "forged"
    with pytest.raises(AuditEntryImmutable):
        entry.save()
    with pytest.raises(AuditEntryImmutable):
        entry.delete()
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.filter(pk=entry.pk).update(result="forged")
    with pytest.raises(AuditEntryImmutable):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get().result == "ok"


def test_deleting_a_user_keeps_their_entries_and_name(django_user_model):
    someone = make_user(django_user_model, "leaver", "operator")
    audit_record(user=someone, action="job.start.switchover", target="cluster pg1")
    someone.delete()
    entry = AuditEntry.objects.get()
    assert entry.user is None and entry.username == "leaver"


def test_the_admin_site_cannot_change_audit_entries(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    entry = audit_record(user=root, action="cluster.create", target="cluster pg1")
    client.force_login(root)
    url = f"/admin/clusters/auditentry/{entry.pk}/change/"
    client.post(url, {"action": "forged", "result": "forged"})
    client.post(f"/admin/clusters/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert AuditEntry.objects.filter(pk=entry.pk, result="ok", action="cluster.create").exists()


def test_the_audit_page_filters_by_user_action_result_and_address(client, user, django_user_model):
    other = make_user(django_user_model, "ann", "operator")
    audit_record(
        user=other, action="job.start.switchover", target="cluster pg1", source_address="10.0.0.5"
    )
    audit_record(
        user=other,
        action="job.start.rebuild",
        target="cluster pg2",
        result="refused: cluster pg2 already has an active job",
        source_address="10.0.0.6",
    )
    audit_record(user=user, action="credential.create", target="credential lab")
    client.force_login(user)

    def shown(query: str) -> list[str]:
        page = client.get(f"/audit/?{query}")
        assert page.status_code == 200
        return [e.action for e in page.context["page"].object_list]

    assert shown("") == ["credential.create", "job.start.rebuild", "job.start.switchover"]
    assert shown("user=ann") == ["job.start.rebuild", "job.start.switchover"]
    assert shown("action=job.start") == ["job.start.rebuild", "job.start.switchover"]
    assert shown("result=refused") == ["job.start.rebuild"]
    assert shown("result=ok&user=ann") == ["job.start.switchover"]
    assert shown("address=10.0.0.6") == ["job.start.rebuild"]
    assert shown("target=pg1") == ["job.start.switchover"]
    assert shown("since=2000-01-01&until=2000-01-02") == []
    page = client.get("/audit/?address=not-an-ip")
    assert "Not an IP address." in page.content.decode()
    html = client.get("/audit/").content.decode()
    # Nothing on the page can change an entry: its only POST form is the header's logout.
    assert html.count('method="post"') == 1 and 'action="/logout/"' in html
    assert "10.0.0.6" in html and "refused: cluster pg2 already has an active job" in html
