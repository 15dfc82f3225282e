"""The users' and roles' REST endpoints: the users page's actions through the API, with its
services, role and audit entries; a password is never answered or recorded. Every answer is
also checked against the OpenAPI document (conftest.py)."""

import pytest
from django.contrib.auth import get_user_model

from clusters.access.roles import role_of
from clusters.models import AuditEntry
from tests.conftest import make_user
from tests.unit.clusters.web.api.test_alerts_api import As

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-horse-battery-42"


@pytest.fixture
def admin(client, user):
    return As(client, user)  # `user` is "ops", an admin


@pytest.fixture
def viewer_user(django_user_model):
    return make_user(django_user_model, "watcher", "viewer")


@pytest.fixture
def viewer(client, viewer_user):
    return As(client, viewer_user)


def no_password_anywhere(*responses) -> None:
    for response in responses:
        text = response.content.decode()
        assert PASSWORD not in text and "pbkdf2" not in text  # nor its hash
    for entry in AuditEntry.objects.all():
        assert PASSWORD not in f"{entry.target} {entry.params} {entry.result}"


def test_an_admin_lists_every_user_with_their_role(admin, user, viewer_user, django_user_model):
    make_user(django_user_model, "newcomer", None)
    root = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    gone = make_user(django_user_model, "gone", "operator")
    gone.is_active = False
    gone.save()
    response = admin.get("/api/v1/users/")
    assert response.status_code == 200
    rows = response.json()
    assert [r["username"] for r in rows] == ["gone", "newcomer", "ops", "root", "watcher"]
    by_name = {r["username"]: r for r in rows}
    assert {name: r["role"] for name, r in by_name.items()} == {
        "gone": "none",  # disabled: no access, as the page shows it
        "newcomer": "none",
        "ops": "admin",
        "root": "admin",
        "watcher": "viewer",
    }
    assert by_name["root"]["is_superuser"] is True and by_name["ops"]["is_superuser"] is False
    assert by_name["gone"]["is_active"] is False
    assert by_name["ops"]["id"] == user.pk and by_name["root"]["id"] == root.pk
    assert by_name["ops"]["last_login"] is None and by_name["ops"]["date_joined"]
    assert "password" not in response.content.decode()


def test_an_admin_adds_a_user_whose_password_is_never_answered_or_audited(admin):
    body = {"username": "newbie", "password": PASSWORD, "role": "operator"}
    response = admin.post("/api/v1/users/", body)
    assert response.status_code == 201
    created = get_user_model().objects.get(username="newbie")
    assert response.json()["id"] == created.pk
    assert (response.json()["role"], response.json()["is_active"]) == ("operator", True)
    assert created.check_password(PASSWORD) and role_of(created) == "operator"
    entry = AuditEntry.objects.get(action="user.create")
    assert (entry.username, entry.target, entry.result) == ("ops", "user newbie", "ok")
    assert entry.params == {"username": "newbie", "role": "operator"}
    assert "password" not in response.json()
    no_password_anywhere(response)


def test_a_user_added_without_a_role_has_none(admin):
    response = admin.post("/api/v1/users/", {"username": "later", "password": PASSWORD})
    assert response.status_code == 201 and response.json()["role"] == "none"
    assert role_of(get_user_model().objects.get(username="later")) is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"username": "a b", "password": PASSWORD}, {"username"}),
        ({"username": "OPS", "password": PASSWORD}, {"username"}),  # exists, any case
        ({"username": "newbie", "password": "123"}, {"password"}),
        ({"username": "newbie", "password": PASSWORD, "role": "root"}, {"role"}),
        ({"username": "newbie", "password": PASSWORD, "role": ["admin"]}, {"role"}),
        ({"username": 7, "password": PASSWORD}, {"username"}),
        ({"username": "newbie", "password": 12345678901}, {"password"}),
        ({"username": "newbie"}, {"password"}),
        ({"password": PASSWORD}, {"username"}),
    ],
)
def test_bad_input_is_a_400_naming_each_field_and_adds_no_user(admin, body, fields):
    before = set(get_user_model().objects.values_list("username", flat=True))
    response = admin.post("/api/v1/users/", body)
    assert response.status_code == 400
    assert set(response.json()["field_errors"]) == fields
    assert set(get_user_model().objects.values_list("username", flat=True)) == before
    entry = AuditEntry.objects.get(action="user.create")
    assert entry.result == "refused: invalid " + ", ".join(sorted(fields))
    no_password_anywhere(response)


def test_an_admin_sets_a_users_role(admin, viewer_user):
    response = admin.put(f"/api/v1/users/{viewer_user.pk}/role/", {"role": "operator"})
    assert response.status_code == 200
    assert (response.json()["username"], response.json()["role"]) == ("watcher", "operator")
    assert role_of(get_user_model().objects.get(pk=viewer_user.pk)) == "operator"
    entry = AuditEntry.objects.get(action="user.role")
    assert (entry.target, entry.params, entry.result) == (
        "user watcher",
        {"role": "operator"},
        "ok",
    )
    response = admin.put(f"/api/v1/users/{viewer_user.pk}/role/", {"role": "none"})
    assert response.status_code == 200 and response.json()["role"] == "none"
    assert role_of(get_user_model().objects.get(pk=viewer_user.pk)) is None


def test_an_admin_cannot_change_their_own_role(admin, user):
    response = admin.put(f"/api/v1/users/{user.pk}/role/", {"role": "viewer"})
    assert response.status_code == 400
    assert "cannot change your own role" in response.json()["field_errors"]["role"][0]
    assert role_of(get_user_model().objects.get(pk=user.pk)) == "admin"
    entry = AuditEntry.objects.get(action="user.role")
    assert entry.target == "user ops"
    assert entry.result.startswith("refused: You cannot change your own role")


def test_a_superusers_role_cannot_be_changed(admin, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    response = admin.put(f"/api/v1/users/{root.pk}/role/", {"role": "viewer"})
    assert response.status_code == 400
    assert "superuser" in response.json()["field_errors"]["role"][0]
    assert not root.groups.exists()
    assert AuditEntry.objects.get(action="user.role").result.startswith("refused: root is a")


@pytest.mark.parametrize("body", [{"role": "root"}, {"role": 3}, {}, {"rôle": "viewer"}])
def test_a_bad_or_missing_role_is_a_400_and_changes_nothing(admin, viewer_user, body):
    response = admin.put(f"/api/v1/users/{viewer_user.pk}/role/", body)
    assert response.status_code == 400
    assert set(response.json()["field_errors"]) == {"role"}
    assert role_of(get_user_model().objects.get(pk=viewer_user.pk)) == "viewer"
    assert AuditEntry.objects.get(action="user.role").result.startswith("refused: ")


def test_the_role_of_a_missing_user_is_a_404(admin):
    assert admin.put("/api/v1/users/999999/role/", {"role": "viewer"}).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/users/", None),
        ("post", "/api/v1/users/", {"username": "newbie", "password": PASSWORD}),
        ("put", "/api/v1/users/{id}/role/", {"role": "admin"}),
    ],
)
def test_a_viewer_token_is_refused_naming_the_admin_role(viewer, viewer_user, method, path, body):
    before = list(get_user_model().objects.values_list("username", "groups__name"))
    response = getattr(viewer, method)(path.format(id=viewer_user.pk), body)
    assert response.status_code == 403
    assert "This needs the admin role; you are a viewer" in response.json()["error"]
    assert list(get_user_model().objects.values_list("username", "groups__name")) == before
    if method != "get":
        entry = AuditEntry.objects.get()
        assert entry.username == "watcher" and entry.result.startswith("refused")
    no_password_anywhere(response)


def test_a_viewer_reads_the_roles_weakest_first(viewer):
    response = viewer.get("/api/v1/roles/")
    assert response.status_code == 200
    roles = response.json()
    assert [r["name"] for r in roles] == ["viewer", "operator", "admin"]
    assert [r["includes"] for r in roles] == [[], ["viewer"], ["viewer", "operator"]]
    assert all(r["may"] and "\n" not in r["may"] for r in roles)


def test_a_user_without_a_role_may_not_read_the_roles(client, django_user_model):
    nobody = As(client, make_user(django_user_model, "nobody", None))
    response = nobody.get("/api/v1/roles/")
    assert response.status_code == 403
    assert "needs the viewer role" in response.json()["error"]


def test_the_document_spells_out_the_roles():
    from tests.unit.clusters.web.api import openapi_check

    schemas = openapi_check.document()["components"]["schemas"]
    assert schemas["Role"]["enum"] == ["viewer", "operator", "admin"]
    assert schemas["UserRole"]["enum"] == ["none", "viewer", "operator", "admin"]
    assert {"UserIn", "UserRoleIn"} <= set(schemas)
    assert "password" not in schemas["UserOut"]["properties"]
