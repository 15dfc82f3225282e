"""The users page and `manage.py set_role`: admins give roles; nobody changes their own."""

import pytest
from django.core.management import call_command

from clusters.access.roles import role_of
from clusters.models import AuditEntry
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_an_admin_adds_a_user_who_can_then_log_in_with_that_role(client, user, django_user_model):
    client.force_login(user)
    response = client.post(
        "/users/", {"username": "ann", "password": "ann-long-password-1", "role": "operator"}
    )
    assert response.status_code == 302
    ann = django_user_model.objects.get(username="ann")
    assert role_of(ann) == "operator"
    entry = AuditEntry.objects.get(action="user.create")
    assert entry.params == {"username": "ann", "role": "operator"}
    assert "ann-long-password-1" not in str(entry.params) + entry.target + entry.result
    client.logout()
    login = client.post("/login/", {"username": "ann", "password": "ann-long-password-1"})
    assert login.status_code == 302
    assert client.get("/").context["can_operate"] is True


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"username": "ann", "password": "short", "role": "viewer"}, "too short"),
        (
            {"username": "ops", "password": "ann-long-password-1", "role": "viewer"},
            "exists already",
        ),
        ({"username": "a b;id", "password": "ann-long-password-1", "role": "viewer"}, "no spaces"),
        ({"username": "ann", "password": "ann-long-password-1", "role": "root"}, "Choose one of"),
    ],
)
def test_a_bad_new_user_is_refused_with_the_reason(client, user, django_user_model, form, message):
    client.force_login(user)
    response = client.post("/users/", form)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert django_user_model.objects.count() == 1
    assert AuditEntry.objects.get(action="user.create").result.startswith("refused")


def test_an_admin_changes_another_users_role_but_not_their_own(client, user, django_user_model):
    ann = make_user(django_user_model, "ann", "viewer")
    client.force_login(user)
    client.post(f"/users/{ann.pk}/role/", {"role": "admin"})
    ann.refresh_from_db()
    assert role_of(django_user_model.objects.get(pk=ann.pk)) == "admin"
    response = client.post(f"/users/{user.pk}/role/", {"role": "viewer"}, follow=True)
    assert "You cannot change your own role" in response.content.decode()
    assert role_of(django_user_model.objects.get(pk=user.pk)) == "admin"
    results = list(AuditEntry.objects.filter(action="user.role").values_list("result", flat=True))
    assert sorted(results) == ["ok", "refused: You cannot change your own role; ask another admin."]


def test_set_role_command(django_user_model, capsys):
    ann = make_user(django_user_model, "ann", None)
    call_command("set_role", "ann", "viewer")
    assert role_of(django_user_model.objects.get(pk=ann.pk)) == "viewer"
    call_command("set_role", "ann", "none")
    assert role_of(django_user_model.objects.get(pk=ann.pk)) is None
    assert AuditEntry.objects.filter(action="user.role", target="user ann").count() == 2
