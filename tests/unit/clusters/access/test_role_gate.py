"""Deny by default: a page added without a role check (only `login_required`, or nothing)
still needs the viewer role to read and the admin role to change anything."""

import pytest
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import path

from hacenter.urls import urlpatterns as console_urls
from tests.conftest import make_user


@login_required
def careless_page(request):
    """A view whose author forgot roles: it would change something on POST."""
    return HttpResponse("done")


urlpatterns = [path("careless/", careless_page, name="careless"), *console_urls]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.mark.parametrize(
    ("role", "get_status", "post_status"),
    [
        ("none", 403, 403),
        ("viewer", 200, 403),
        ("operator", 200, 403),
        ("admin", 200, 200),
    ],
)
def test_an_unguarded_view_gets_viewer_to_read_and_admin_to_write(
    client, django_user_model, role, get_status, post_status
):
    client.force_login(make_user(django_user_model, f"u-{role}", None if role == "none" else role))
    assert client.get("/careless/").status_code == get_status
    response = client.post("/careless/")
    assert response.status_code == post_status
    if post_status == 403:
        assert "needs the admin role" in response.content.decode()


def test_an_unguarded_view_sends_anonymous_visitors_to_login(client):
    response = client.get("/careless/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get("/login/").status_code == 200  # the gate leaves the login page open


def test_every_view_of_the_console_checks_roles_itself_or_is_open():
    """Today every page and API view is guarded explicitly; the gate is the safety net."""
    from django.urls import URLPattern, URLResolver, get_resolver

    from clusters.access.role_gate import MARK, OPEN_URL_NAMES

    def views(patterns):
        for p in patterns:
            if isinstance(p, URLResolver):
                if p.namespace != "admin":
                    yield from views(p.url_patterns)
            elif isinstance(p, URLPattern) and p.name:
                yield p.name, p.callback

    unguarded = [
        name
        for name, view in views(get_resolver("hacenter.urls").url_patterns)
        if name not in OPEN_URL_NAMES and not getattr(view, MARK, False)
    ]
    assert unguarded == []
