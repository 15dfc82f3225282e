"""Fixtures shared by the whole suite."""

import time
from collections.abc import Callable

import pytest


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ops", password="ops-password-123")


@pytest.fixture
def api(client, user):
    """A Django test client that sends a real API token."""
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
