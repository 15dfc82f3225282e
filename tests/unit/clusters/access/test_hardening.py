"""Hardening: login rate limit, CSRF on every form and htmx request, a Content Security Policy
that our pages keep (no inline script or style), secure settings outside DEBUG, and the
production settings that must be set."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from clusters.models import AlertChannel, AuditEntry, Cluster, Credential, Node
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[4]


# --- Login rate limit ------------------------------------------------------------------------


def _login(client: Client, username: str, password: str, address: str = "10.1.1.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_login_is_refused_after_five_failures_even_with_the_right_password(
    client, django_user_model
):
    make_user(django_user_model, "ann", "viewer")
    for _ in range(settings.LOGIN_MAX_FAILURES_PER_USER):
        assert _login(client, "ann", "wrong-password").status_code == 200
    response = _login(client, "ann", "ann-password-123")
    assert response.status_code == 429
    assert "Too many failed logins. Wait 15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.filter(action="login.failed", target="user ann").count() == 5
    refused = AuditEntry.objects.get(action="login.refused")
    assert refused.result == "refused: too many failures" and refused.source_address == "10.1.1.1"
    # Another user from another address is not affected.
    make_user(django_user_model, "bob", "viewer")
    assert _login(Client(), "bob", "bob-password-123", "10.2.2.2").status_code == 302


def test_failures_from_one_address_slow_that_address_down_but_a_right_password_logs_in(
    client, django_user_model, settings, monkeypatch
):
    pauses = []
    monkeypatch.setattr("clusters.access.login.pause", pauses.append)
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 3
    make_user(django_user_model, "ann", "viewer")
    for name in ("x1", "x2", "x3"):
        _login(client, name, "guess", "10.3.3.3")
    assert pauses == []
    assert _login(client, "ann", "ann-password-123", "10.3.3.3").status_code == 302
    assert pauses == [settings.LOGIN_SLOWDOWN_S]
    assert AuditEntry.objects.get(action="login").params == {"slowed": True}
    assert _login(Client(), "ann", "ann-password-123", "10.4.4.4").status_code == 302
    assert len(pauses) == 1  # another address is not slowed


def test_a_successful_login_clears_the_users_earlier_failures(client, django_user_model):
    make_user(django_user_model, "ann", "viewer")
    for _ in range(settings.LOGIN_MAX_FAILURES_PER_USER - 1):
        _login(client, "ann", "wrong-password")
    assert _login(client, "ann", "ann-password-123").status_code == 302
    client.logout()
    _login(client, "ann", "wrong-password")  # one more: counted from the success on
    assert _login(client, "ann", "ann-password-123").status_code == 302


def test_an_address_that_is_not_an_ip_is_audited_as_unknown(client, user):
    client.force_login(user)
    client.post("/alerts/", {"kind": "email", "target": "x"}, REMOTE_ADDR="unix:/run/gunicorn")
    assert AuditEntry.objects.get(action="alert_channel.create").source_address is None


def test_a_failed_login_with_an_unknown_name_does_not_record_the_name(client):
    _login(client, "correct horse battery staple", "x")
    entry = AuditEntry.objects.get(action="login.failed")
    assert entry.target == "unknown user" and "horse" not in str(entry.params)


def test_the_admin_site_login_goes_through_the_rate_limited_login(client, django_user_model):
    django_user_model.objects.create_superuser("root", password="root-password-123")
    response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": "x"})
    assert response.status_code == 302 and response["Location"] == "/login/?next=/admin/"
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_a_successful_login_is_audited(client, django_user_model):
    make_user(django_user_model, "ann", "viewer")
    assert _login(client, "ann", "ann-password-123").status_code == 302
    assert AuditEntry.objects.get(action="login").target == "user ann"


# --- CSRF ------------------------------------------------------------------------------------

TEMPLATE_DIRS = [ROOT / "templates", ROOT / "clusters" / "templates", ROOT / "jobs" / "templates"]


def _templates():
    for folder in TEMPLATE_DIRS:
        yield from sorted(folder.rglob("*.html"))


def test_every_post_form_in_every_template_carries_the_csrf_token():
    forms = 0
    for path in _templates():
        for form in re.findall(r"<form\b[^>]*>.*?</form>", path.read_text(), re.S | re.I):
            if re.search(r"method=[\"']?post", form, re.I):
                forms += 1
                assert "{% csrf_token %}" in form, f"{path.name}: {form[:120]}"
    assert forms >= 10  # the scan found the forms (a broken regex would pass vacuously)


def test_htmx_requests_carry_the_csrf_token_from_the_body(client, user):
    client.force_login(user)
    html = client.get("/").content.decode()
    assert re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"[A-Za-z0-9]{32,}\"\}'>", html)


@pytest.fixture
def world():
    cred = Credential.objects.create(name="lab", username="root", password="pw-123456")
    cluster = Cluster.objects.create(name="pg1", database_name="app", database_user="app")
    for i, kind in enumerate(("database", "database", "proxy")):
        Node.objects.create(
            cluster=cluster,
            name=f"n{i}",
            address=f"198.18.0.{11 + i}",
            credential=cred,
            kind=kind,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint="SHA256:x",
        )
    channel = AlertChannel.objects.create(kind="email", target="a@example.com")
    return cluster, channel


def test_every_page_post_without_the_csrf_token_is_refused_and_changes_nothing(user, world):
    cluster, channel = world
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    posts = {
        "/credentials/": {"name": "new", "username": "root", "password": "pw-123456"},
        "/clusters/new/": {"name": "pg2"},
        f"/clusters/{cluster.pk}/jobs/": {"kind": "preflight"},
        f"/clusters/{cluster.pk}/connection/": {},
        "/alerts/": {"kind": "email", "target": "b@example.com"},
        f"/alerts/{channel.pk}/toggle/": {},
        f"/alerts/{channel.pk}/delete/": {},
        f"/alerts/{channel.pk}/test/": {},
        "/logout/": {},
    }
    for url, data in posts.items():
        response = strict.post(url, data)
        assert response.status_code == 403, url
        assert "CSRF" in response.content.decode(), url
    assert Credential.objects.count() == 1 and Cluster.objects.count() == 1
    assert list(AlertChannel.objects.values_list("enabled", flat=True)) == [True]
    assert cluster.jobs.count() == 0
    assert AuditEntry.objects.filter(result="refused: HTTP 403").count() == len(posts)


def test_an_htmx_post_with_the_token_in_its_header_is_accepted(user, world):
    cluster, _ = world
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    html = strict.get(f"/clusters/{cluster.pk}/").content.decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)
    response = strict.post(
        f"/clusters/{cluster.pk}/connection/", HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200  # no password yet: setup has not run, but accepted
    assert AuditEntry.objects.get(action="cluster.connection.read").result == "ok"


# --- Content Security Policy -----------------------------------------------------------------


def test_every_answer_has_the_content_security_policy(client, user, api):
    client.force_login(user)
    for response in (client.get("/"), client.get("/login/"), api.get("/api/v1/clusters/")):
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        assert "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "object-src 'none'" in policy


def test_templates_have_no_inline_script_style_or_event_handler():
    """What the policy would block in the browser: caught here, before a browser test."""
    for path in _templates():
        text = re.sub(r"\{#.*?#\}", "", path.read_text())  # template comments render nothing
        for tag in re.findall(r"<script\b[^>]*>", text, re.I):
            assert "src=" in tag, f"{path.name}: inline script {tag}"
        assert not re.search(r"<style\b", text, re.I), f"{path.name}: <style> element"
        assert not re.search(r"\sstyle=", text, re.I), f"{path.name}: style attribute"
        assert not re.search(r"\son[a-z]+=", text, re.I), f"{path.name}: inline event handler"
        assert "javascript:" not in text, f"{path.name}: javascript: URL"
        assert not re.search(r"hx-on|hx-vars|js:", text), f"{path.name}: htmx eval"


def test_htmx_is_told_not_to_inject_styles_or_evaluate_code(client, user):
    client.force_login(user)
    html = client.get("/").content.decode()
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', html).group(1)
    assert '"includeIndicatorStyles": false' in config and '"allowEval": false' in config
    assert re.search(r'<script src="/static/django_htmx/htmx-2\.min\.js" defer></script>', html)
    css = (ROOT / "static" / "hacenter.css").read_text()
    assert ".htmx-request .htmx-indicator" in css  # the rules htmx would have injected


# --- Security settings -------------------------------------------------------------------------


def test_security_headers_and_cookie_flags(client, user):
    response = client.get("/login/", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert settings.SESSION_COOKIE_HTTPONLY and settings.CSRF_COOKIE_HTTPONLY
    assert settings.SESSION_COOKIE_SAMESITE == "Lax" and settings.SESSION_EXPIRE_AT_BROWSER_CLOSE


def _settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess:
    """Import hacenter.settings with exactly these HACENTER_* variables (none from our env)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HACENTER_")}
    clean.update(env, DJANGO_SETTINGS_MODULE="hacenter.settings")
    # Empty values set explicitly, so a developer's .env cannot fill them in (it never overrides).
    for name in ("HACENTER_SECRET_KEY", "HACENTER_FIELD_KEYS", "HACENTER_DEBUG"):
        clean.setdefault(name, "")
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "(s.SECURE_PROXY_SSL_HEADER or ['none'])[0])"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _settings_in_a_fresh_process(HACENTER_FIELD_KEYS=settings.FIELD_KEYS[0])
    assert result.returncode != 0
    assert "HACENTER_SECRET_KEY is not set" in result.stderr


def test_production_refuses_to_start_without_field_keys():
    result = _settings_in_a_fresh_process(HACENTER_SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "HACENTER_FIELD_KEYS is not set" in result.stderr


def test_production_refuses_a_malformed_field_key_without_printing_it():
    good = settings.FIELD_KEYS[0]
    result = _settings_in_a_fresh_process(
        HACENTER_SECRET_KEY="x" * 50, HACENTER_FIELD_KEYS=f"{good},not-a-real-key-zzz"
    )
    assert result.returncode != 0
    assert "key number 2 is not a Fernet key" in result.stderr
    assert "not-a-real-key-zzz" not in result.stderr and good not in result.stderr


def test_production_cookies_are_secure_with_hsts():
    result = _settings_in_a_fresh_process(
        HACENTER_SECRET_KEY="x" * 50, HACENTER_FIELD_KEYS=settings.FIELD_KEYS[0]
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "31536000", "HTTP_X_FORWARDED_PROTO"]


def test_debug_mode_starts_without_keys_and_with_plain_cookies():
    result = _settings_in_a_fresh_process(HACENTER_DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "0", "none"]
