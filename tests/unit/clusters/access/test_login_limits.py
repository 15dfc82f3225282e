"""Login limits against the review's findings (issue 17): the per-user limit counts every
spelling authentication accepts for a user, the client's address comes from a trusted proxy only,
and an address over its limit is slowed down, never refused a right password."""

import pytest
from django.conf import settings
from django.test import Client, RequestFactory

from clusters.access.client_address import client_address
from clusters.access.login import login_name
from clusters.models import AuditEntry
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
PROXY = "10.0.0.5"


@pytest.fixture
def no_pause(monkeypatch):
    pauses: list[float] = []
    monkeypatch.setattr("clusters.access.login.pause", pauses.append, raising=False)
    return pauses


def _login(client: Client, username: str, password: str, address: str = "10.1.1.1", **meta):
    return client.post(
        "/login/", {"username": username, "password": password}, REMOTE_ADDR=address, **meta
    )


@pytest.mark.parametrize(
    "spelling",
    [" ann", "ann ", "\tann\n", "\uff41\uff4e\uff4e", " \uff41nn "],  # full-width a, n
    ids=["leading-space", "trailing-space", "tab-newline", "full-width", "mixed"],
)
def test_every_spelling_authentication_accepts_counts_against_the_user(
    client, django_user_model, spelling
):
    """Finding: " user", "user " and full-width names bypassed the per-user limit."""
    make_user(django_user_model, "ann", "viewer")
    # Each spelling really is ann to authentication: the right password logs in with it.
    assert _login(Client(), spelling, "ann-password-123").status_code == 302
    for i in range(settings.LOGIN_MAX_FAILURES_PER_USER):
        # From many addresses, so only the per-user limit can stop it.
        assert _login(client, spelling, "wrong-password", f"10.9.0.{i + 1}").status_code == 200
    assert AuditEntry.objects.filter(action="login.failed", target="user ann").count() == 5
    response = _login(Client(), "ann", "ann-password-123", "10.9.1.1")
    assert response.status_code == 429
    assert _login(Client(), spelling, "ann-password-123", "10.9.1.2").status_code == 429


def test_login_name_is_what_the_login_form_hands_to_authentication():
    assert login_name("  \uff41\uff44\uff4d\uff49\uff4e ") == "admin"
    assert login_name("x" * 151 + " ") == "x" * 151  # too long: the form refuses it anyway
    assert login_name(None) == ""


def test_an_unknown_name_counts_against_its_normalised_form_without_being_recorded(client):
    for i, spelling in enumerate(["ghost", " ghost", "\uff47host", "ghost ", "ghost"]):
        assert _login(client, spelling, "x", f"10.8.0.{i + 1}").status_code == 200
    assert _login(Client(), "ghost", "x", "10.8.1.1").status_code == 429
    assert not AuditEntry.objects.filter(target__contains="ghost").exists()
    assert "ghost" not in str(list(AuditEntry.objects.values_list("params", flat=True)))
    assert _login(Client(), "other", "x", "10.8.1.2").status_code == 200


# --- The client's address behind the TLS proxy --------------------------------------------


def _request(remote: str, forwarded: str | None = None):
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


@pytest.mark.parametrize(
    "remote, forwarded, expected",
    [
        # Not from a trusted proxy: the header is never read, whatever it says.
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        # From the proxy: the address it appended (right-most), not what the client wrote.
        (PROXY, "198.51.100.1", "198.51.100.1"),
        (PROXY, "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        (PROXY, "6.6.6.6,198.51.100.1, 10.0.0.6", "198.51.100.1"),  # two trusted hops
        (PROXY, "", PROXY),
        (PROXY, "10.0.0.6", "10.0.0.6"),  # every hop ours: the left-most
        (PROXY, "198.51.100.1:51234", "198.51.100.1"),
        (PROXY, "[2001:db8::1]:443", "2001:db8::1"),
        (PROXY, "unknown", None),
        ("unix:/run/gunicorn.sock", "198.51.100.1", None),
    ],
)
def test_the_client_address_is_read_from_trusted_proxies_only(
    settings, remote, forwarded, expected
):
    settings.HACENTER_TRUSTED_PROXIES = ["10.0.0.0/29"]
    assert client_address(_request(remote, forwarded)) == expected


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    settings.HACENTER_TRUSTED_PROXIES = []
    assert client_address(_request(PROXY, "198.51.100.1")) == PROXY


def test_behind_the_proxy_random_names_from_one_client_lock_nobody_else_out(
    settings, django_user_model, no_pause
):
    """Finding: every request came from the proxy, so 20 failures under random names locked
    every user out, and the audit showed the proxy's address."""
    settings.HACENTER_TRUSTED_PROXIES = [PROXY]
    make_user(django_user_model, "ann", "viewer")
    attacker = Client()
    for i in range(settings.LOGIN_MAX_FAILURES_PER_ADDRESS):
        _login(attacker, f"random{i}", "guess", PROXY, HTTP_X_FORWARDED_FOR="198.51.100.66")
    assert set(
        AuditEntry.objects.filter(action="login.failed").values_list("source_address", flat=True)
    ) == {"198.51.100.66"}
    # Ann, behind the same proxy from her own address: neither refused nor slowed.
    ann = _login(Client(), "ann", "ann-password-123", PROXY, HTTP_X_FORWARDED_FOR="192.0.2.7")
    assert ann.status_code == 302 and no_pause == []
    assert AuditEntry.objects.get(action="login").source_address == "192.0.2.7"
    # The attacker's address is slowed down; a forged header does not get it out.
    forged = _login(Client(), "ann", "wrong", PROXY, HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.66")
    assert forged.status_code == 200 and no_pause == [settings.LOGIN_SLOWDOWN_S]


def test_a_right_password_from_a_slowed_address_logs_in_but_a_locked_user_does_not(
    settings, django_user_model, no_pause
):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 2
    make_user(django_user_model, "ann", "viewer")
    make_user(django_user_model, "bob", "viewer")
    client = Client()
    for _ in range(settings.LOGIN_MAX_FAILURES_PER_USER):
        _login(client, "bob", "wrong", "10.5.5.5")
    # The address is over its limit: ann's right password still logs in, after the pause.
    assert _login(Client(), "ann", "ann-password-123", "10.5.5.5").status_code == 302
    assert no_pause
    # bob is locked by bob's own failures: refused from anywhere, right password or not.
    assert _login(Client(), "bob", "bob-password-123", "10.6.6.6").status_code == 429


def test_the_trusted_proxy_setting_refuses_what_is_not_an_address():
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "HACENTER_DEBUG": "true",
        "HACENTER_TRUSTED_PROXIES": "10.0.0.1,proxy.example.com",
        "DJANGO_SETTINGS_MODULE": "hacenter.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=settings.BASE_DIR,
    )
    assert result.returncode != 0
    assert "HACENTER_TRUSTED_PROXIES: 'proxy.example.com' is not an IP address" in result.stderr
