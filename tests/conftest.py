"""Fixtures shared by the whole suite."""

import time
from collections.abc import Callable

import pytest


def make_user(django_user_model, username: str, role: str | None):
    """A real user in the group of `role` (None: in no group)."""
    from clusters.access.roles import assign_role

    user = django_user_model.objects.create_user(username, password=f"{username}-password-123")
    assign_role(user, role)
    return user


@pytest.fixture
def user(django_user_model):
    """An admin (the admin group): may do everything, as the tests before roles assumed."""
    return make_user(django_user_model, "ops", "admin")


@pytest.fixture
def api(client, user):
    """A Django test client that sends a real API token (the `user` fixture's: an admin)."""
    return api_client(client, user)


def api_client(client, user):
    """A Django test client sending `user`'s API token."""
    from clusters.models import ApiToken

    token = ApiToken.issue(user)

    class Api:
        def get(self, url: str, **kw):
            return client.get(url, HTTP_AUTHORIZATION=f"Token {token}", **kw)

        def post(self, url: str, data: dict | None = None, **kw):
            return client.post(
                url,
                data=data or {},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Token {token}",
                **kw,
            )

        def put(self, url: str, data: dict | None = None, **kw):
            return client.put(
                url,
                data=data or {},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Token {token}",
                **kw,
            )

        def delete(self, url: str, **kw):
            return client.delete(url, HTTP_AUTHORIZATION=f"Token {token}", **kw)

    return Api()


def wait_for(
    predicate: Callable[[], object], timeout: float, message: str, interval: float = 0.2
) -> object:
    """Poll until `predicate` returns something truthy; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{message} (waited {timeout:g} s)")
        time.sleep(interval)
