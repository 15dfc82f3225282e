"""API tokens expire, can be listed and revoked (by their owner, or any of them by an admin),
are refused with a clear 401 once expired or revoked, record their last use at most once a
minute, and every creation and revocation is audited."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters.access.roles import VIEWER
from clusters.access.tokens import api_token_create
from clusters.inventory.services import InvalidInput
from clusters.models import ApiToken, AuditEntry
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(django_user_model):
    return make_user(django_user_model, "watcher", VIEWER)


def call(client, method: str, url: str, key: str, body: dict | None = None):
    return getattr(client, method)(
        url, body or {}, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
    )


# --- Expiry ---------------------------------------------------------------------------------


def test_a_new_token_expires_in_90_days_by_default(viewer):
    issued = api_token_create(by=viewer, name="ci")
    left = issued.token.expires - timezone.now()
    assert timedelta(days=89, hours=23) < left <= timedelta(days=90)
    assert issued.token.name == "ci" and issued.token.state() == "active"
    assert issued.token.digest == ApiToken.digest_of(issued.key)


def test_never_expiring_tokens_are_for_admins_who_ask(user, viewer):
    with pytest.raises(InvalidInput) as caught:
        api_token_create(by=viewer, never=True)
    assert "Only an admin" in caught.value.field_errors["never"][0]
    assert api_token_create(by=user, never=True).token.expires is None
    assert not ApiToken.objects.filter(user=viewer).exists()


@pytest.mark.parametrize("days", [0, 366, -1, "x", True, 1.5, "0", "366"])
def test_days_outside_one_to_a_year_are_refused(viewer, days):
    with pytest.raises(InvalidInput) as caught:
        api_token_create(by=viewer, days=days)
    assert "from 1 to 365" in caught.value.field_errors["days"][0]
    assert not ApiToken.objects.exists()


def test_an_expired_token_is_refused_with_a_clear_401(client, viewer):
    key = ApiToken.issue(viewer, days=1)
    ApiToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    response = call(client, "get", "/api/v1/clusters/", key)
    assert response.status_code == 401
    assert "expired on" in response.json()["error"]
    assert "create a new one" in response.json()["error"]


def test_a_token_from_before_expiry_existed_works_until_it_is_revoked(client, viewer):
    key = ApiToken.issue(viewer, days=None)  # as 0016 found it, before giving it an expiry
    assert call(client, "get", "/api/v1/clusters/", key).status_code == 200


# --- The API ---------------------------------------------------------------------------------


def test_create_shows_the_key_once_and_list_never_shows_it(client, viewer):
    own = ApiToken.issue(viewer)
    response = call(client, "post", "/api/v1/tokens/", own, {"name": "grafana", "days": 30})
    assert response.status_code == 201
    made = response.json()
    assert made["name"] == "grafana" and made["user"] == "watcher" and made["state"] == "active"
    assert "no-store" in response["Cache-Control"]
    key = made["key"]
    assert call(client, "get", "/api/v1/clusters/", key).status_code == 200  # it works
    listed = call(client, "get", "/api/v1/tokens/", own).json()
    assert {t["name"] for t in listed} == {"", "grafana"}
    text = str(listed)
    assert key not in text and made["prefix"] in text and "digest" not in text
    entry = AuditEntry.objects.get(action="api_token.create", result="ok")
    assert entry.username == "watcher"
    assert entry.target == f"API token {made['prefix']}… of watcher"
    assert key not in str(entry.params) and entry.params["name"] == "grafana"


def test_revoked_tokens_are_refused_and_the_revocation_is_audited(client, viewer):
    own = ApiToken.issue(viewer)
    other = call(client, "post", "/api/v1/tokens/", own, {"name": "ci"}).json()
    response = client.delete(f"/api/v1/tokens/{other['id']}/", HTTP_AUTHORIZATION=f"Token {own}")
    assert response.status_code == 200 and response.json()["state"] == "revoked"
    refused = call(client, "get", "/api/v1/clusters/", other["key"])
    assert refused.status_code == 401
    assert "was revoked on" in refused.json()["error"]
    assert AuditEntry.objects.filter(action="api_token.revoke", result="ok").count() == 1
    # Revoking again changes nothing and says so.
    again = call(client, "post", f"/api/v1/tokens/{other['id']}/revoke/", own)
    assert again.status_code == 200
    assert AuditEntry.objects.filter(result="ok: already revoked").count() == 1


def test_a_user_sees_and_revokes_only_their_own_tokens(client, user, viewer):
    admin_token = ApiToken.issue(user, name="admin's")
    own = ApiToken.issue(viewer)
    listed = call(client, "get", "/api/v1/tokens/", own).json()
    assert [t["user"] for t in listed] == ["watcher"]
    theirs = ApiToken.objects.get(name="admin's")
    response = call(client, "post", f"/api/v1/tokens/{theirs.pk}/revoke/", own)
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked is None
    assert call(client, "get", "/api/v1/clusters/", admin_token).status_code == 200


def test_an_admin_lists_every_token_and_revokes_anyones(client, user, viewer):
    admin_key = ApiToken.issue(user)
    ApiToken.issue(viewer, name="watcher's")
    listed = call(client, "get", "/api/v1/tokens/", admin_key).json()
    assert {t["user"] for t in listed} == {"ops", "watcher"}
    theirs = ApiToken.objects.get(name="watcher's")
    assert call(client, "delete", f"/api/v1/tokens/{theirs.pk}/", admin_key).status_code == 200
    theirs.refresh_from_db()
    assert theirs.revoked is not None


def test_an_admin_creates_a_token_for_another_user_a_viewer_cannot(client, user, viewer):
    admin_key = ApiToken.issue(user)
    made = call(client, "post", "/api/v1/tokens/", admin_key, {"user": "watcher", "never": True})
    assert made.status_code == 201 and made.json()["user"] == "watcher"
    assert made.json()["expires"] is None
    own = ApiToken.issue(viewer)
    refused = call(client, "post", "/api/v1/tokens/", own, {"user": "ops"})
    assert refused.status_code == 400
    assert "Only an admin" in refused.json()["field_errors"]["user"][0]


def test_last_use_is_written_at_most_once_a_minute(client, viewer):
    key = ApiToken.issue(viewer)
    with CaptureQueriesContext(connection) as first:
        call(client, "get", "/api/v1/clusters/", key)
    with CaptureQueriesContext(connection) as second:
        call(client, "get", "/api/v1/clusters/", key)

    def writes(queries) -> int:
        return sum(
            1
            for q in queries.captured_queries
            if q["sql"].startswith("UPDATE") and "apitoken" in q["sql"]
        )

    assert (writes(first), writes(second)) == (1, 0)
    ApiToken.objects.update(last_used=timezone.now() - timedelta(seconds=61))
    with CaptureQueriesContext(connection) as later:
        call(client, "get", "/api/v1/clusters/", key)
    assert writes(later) == 1


def test_metrics_refuse_a_revoked_token(client, viewer):
    key = ApiToken.issue(viewer)
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    ApiToken.objects.update(revoked=timezone.now())
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401


# --- The page -------------------------------------------------------------------------------


def test_the_page_shows_a_new_key_once_and_revokes(client, viewer):
    client.force_login(viewer)
    response = client.post("/users/tokens/", {"name": "laptop", "days": "7"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=viewer)
    page = response.content.decode()
    assert "copy it now" in page and token.prefix in page
    assert "no-store" in response["Cache-Control"]
    assert timedelta(days=6) < token.expires - timezone.now() <= timedelta(days=7)
    later = client.get("/users/tokens/").content.decode()
    assert "copy it now" not in later and "laptop" in later and "active" in later
    client.post(f"/users/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.state() == "revoked"
    assert [e.action for e in AuditEntry.objects.order_by("at", "pk")] == [
        "api_token.create",
        "api_token.revoke",
    ]


def test_the_page_offers_never_and_other_users_to_admins_only(client, user, viewer):
    client.force_login(viewer)
    page = client.get("/users/tokens/").content.decode()
    assert 'name="never"' not in page and 'name="user"' not in page
    response = client.post("/users/tokens/", {"days": "30", "never": "on"})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()
    client.force_login(user)
    page = client.get("/users/tokens/").content.decode()
    assert 'name="never"' in page and "watcher" in page


# --- manage.py create_api_token ---------------------------------------------------------------


def test_the_command_takes_days_and_never_and_is_audited(viewer):
    out = StringIO()
    call_command("create_api_token", "watcher", "--days", "10", stdout=out)
    token = ApiToken.objects.get(digest=ApiToken.digest_of(out.getvalue().strip()))
    assert timedelta(days=9) < token.expires - timezone.now() <= timedelta(days=10)
    call_command("create_api_token", "watcher", "--never", stdout=StringIO())
    assert ApiToken.objects.filter(expires__isnull=True).count() == 1
    with pytest.raises(CommandError, match="from 1 to 365"):
        call_command("create_api_token", "watcher", "--days", "400")
    assert AuditEntry.objects.filter(action="api_token.create").count() == 2
