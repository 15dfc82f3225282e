"""Webhooks cannot reach the console's own network (SSRF), their URLs are encrypted at rest, and
what a target answered is shown to admins only.

No network: name resolution is a stand-in and any connection attempt is recorded and refused.
The real sends (a receiver on loopback, allow-listed) are in
tests/integration/test_alerts_webhook.py.
"""

import ipaddress
import socket

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connection

from clusters.access.roles import VIEWER
from clusters.alerts import addresses
from clusters.alerts.rules import alert_channel_create, alert_test_send
from clusters.alerts.targets import validate_channel
from clusters.models import AlertChannel, AlertDelivery, AuditEntry, Cluster
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.216.34"


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.objects.create(name="pg1")


@pytest.fixture
def connections(monkeypatch) -> list[tuple]:
    """Every address a socket tried to connect to; none gets through."""
    tried: list[tuple] = []

    def connect(self, address):
        tried.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return tried


def resolver(monkeypatch, *answers: list[str]) -> list[str]:
    """Make getaddrinfo answer each call with the next list of addresses; returns the names
    asked, in order."""
    asked: list[str] = []
    queue = list(answers)

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        asked.append(host)
        ips = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port, 0, 0) if ":" in ip else (ip, port),
            )
            for ip in ips
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


# --- When the channel is saved: the host as written, no lookup ---------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://0x7f000001/", "127.0.0.1 is a loopback address"),
        ("http://127.1/", "127.0.0.1 is a loopback address"),
        ("http://2130706433:8080/", "127.0.0.1 is a loopback address"),
        ("http://0177.0.0.1/", "127.0.0.1 is a loopback address"),
        ("http://[::1]/", "::1 is a loopback address"),
        ("http://localhost:6379/", "127.0.0.1 is a loopback address"),
        ("http://LOCALHOST./", "127.0.0.1 is a loopback address"),
        ("http://127.0.0.1./", "127.0.0.1 is a loopback address"),
        ("http://[0:0:0:0:0:ffff:7f00:1]/", "stands for 127.0.0.1, a loopback address"),
        ("http://[::]/", ":: is the unspecified address"),
        ("http://redis.localhost/", "127.0.0.1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/", "stands for 127.0.0.1, a loopback address"),
        ("http://[::ffff:169.254.169.254]/", "stands for 169.254.169.254, a link-local"),
        ("http://[64:ff9b::7f00:1]/", "stands for 127.0.0.1, a loopback address"),
        ("http://[2002:7f00:1::1]/", "stands for 127.0.0.1, a loopback address"),
        ("http://[fe80::1%25eth0]/", "fe80::1 is a link-local address"),
        ("https://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("https://192.168.0.10/hook", "192.168.0.10 is a private address"),
        ("https://172.16.0.1/hook", "172.16.0.1 is a private address"),
        ("https://[fd00::1]/hook", "fd00::1 is a private address"),
        ("https://100.64.0.1/hook", "100.64.0.1 is a reserved or non-public address"),
        ("https://0.0.0.0/hook", "0.0.0.0 is the unspecified address"),
        ("https://224.0.0.1/hook", "224.0.0.1 is a multicast address"),
    ],
)
def test_private_loopback_and_link_local_targets_are_refused_when_saved(url, says):
    with pytest.raises(ValidationError) as caught:
        validate_channel("webhook", url)
    message = caught.value.messages[0]
    assert says in message
    assert "HACENTER_WEBHOOK_ALLOWED_NETWORKS" in message


def test_a_refused_target_creates_no_channel(cluster):
    with pytest.raises(ValidationError) as caught:
        alert_channel_create(kind="webhook", target="http://169.254.169.254/", cluster=cluster)
    assert "link-local" in caught.value.message_dict["target"][0]
    assert not AlertChannel.objects.exists()


def test_an_allow_listed_network_is_accepted_and_nothing_else(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8", "fd00:1::/64"]
    validate_channel("webhook", "http://127.1:8080/hook")
    validate_channel("webhook", "http://localhost:8080/hook")
    validate_channel("webhook", "http://[::ffff:127.0.0.1]/hook")
    validate_channel("webhook", "http://[fd00:1::5]/hook")
    for url in ("http://10.0.0.1/", "http://[::1]/", "http://169.254.169.254/"):
        with pytest.raises(ValidationError):
            validate_channel("webhook", url)


def test_a_malformed_allow_list_is_a_clear_configuration_error(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8", "not-a-net"]
    with pytest.raises(ImproperlyConfigured, match="'not-a-net', which is not a network"):
        validate_channel("webhook", "http://10.1.1.1/")


def test_names_and_public_addresses_pass_without_a_lookup(monkeypatch):
    def no_lookup(*args, **kwargs):
        raise AssertionError("a page must not resolve names")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    validate_channel("webhook", "https://hooks.slack.com/services/T0/B0/X")
    validate_channel("webhook", "http://mattermost:8065/hooks/abc")
    validate_channel("webhook", f"http://{PUBLIC}/hook")


def test_literal_addresses_are_read_as_the_c_resolver_reads_them():
    for written, meant in [
        ("0x7f000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
    ]:
        assert addresses.literal_address(written) == ipaddress.ip_address(meant), written
    assert addresses.literal_address("hooks.example.com") is None


# --- When it is sent: every resolved address, and the connection goes to the checked one ------


def test_a_name_that_resolves_to_a_private_address_is_refused_before_connecting(
    cluster, monkeypatch, connections
):
    resolver(monkeypatch, [PUBLIC, "10.9.8.7"])
    channel = AlertChannel.objects.create(
        cluster=cluster, kind="webhook", target="https://hooks.example.com/T0/secret-token"
    )
    delivery = alert_test_send(channel=channel)
    assert delivery.status == "failed"
    assert delivery.error.startswith(
        "refused: hooks.example.com resolves to 10.9.8.7, which is a private address;"
    )
    assert "secret-token" not in delivery.error
    assert connections == []


def test_a_name_that_resolves_to_the_metadata_service_is_refused(cluster, monkeypatch, connections):
    resolver(monkeypatch, ["169.254.169.254"])
    channel = AlertChannel.objects.create(
        cluster=cluster, kind="webhook", target="http://metadata.example.com/latest/"
    )
    delivery = alert_test_send(channel=channel)
    assert "resolves to 169.254.169.254, which is a link-local address" in delivery.error
    assert connections == []


def test_the_connection_goes_to_the_address_that_was_checked(cluster, monkeypatch, connections):
    # DNS rebinding: the first answer is public, every later one loopback. Only one lookup is
    # made and the socket connects to the public address that lookup returned.
    asked = resolver(monkeypatch, [PUBLIC], ["127.0.0.1"])
    channel = AlertChannel.objects.create(
        cluster=cluster, kind="webhook", target="https://hooks.example.com/T0/x"
    )
    delivery = alert_test_send(channel=channel)
    assert asked == ["hooks.example.com"]
    assert connections == [(PUBLIC, 443)]
    assert delivery.error.startswith("cannot reach the webhook:")


def test_each_checked_address_is_tried_in_turn_and_no_other(cluster, monkeypatch, connections):
    other = "2606:4700:4700::1111"
    asked = resolver(monkeypatch, [other, PUBLIC], ["10.0.0.1"])
    channel = AlertChannel.objects.create(
        cluster=cluster, kind="webhook", target="http://hooks.example.com:8080/T0/x"
    )
    alert_test_send(channel=channel)
    assert asked == ["hooks.example.com"]
    assert connections == [(other, 8080, 0, 0), (PUBLIC, 8080)]


def test_a_name_that_does_not_resolve_is_a_clear_failure(cluster, monkeypatch, connections):
    def getaddrinfo(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    channel = AlertChannel.objects.create(
        cluster=cluster, kind="webhook", target="https://nowhere.example.com/T0/x"
    )
    delivery = alert_test_send(channel=channel)
    assert delivery.error == (
        "cannot resolve the webhook's host nowhere.example.com: Name or service not known"
    )
    assert connections == []


def test_a_row_saved_before_the_check_is_refused_at_send_time(cluster, connections):
    # Written straight to the table (an older console, the Django admin): no validation ran.
    channel = AlertChannel.objects.create(
        cluster=cluster, kind="webhook", target="http://0x7f000001:6379/"
    )
    delivery = alert_test_send(channel=channel)
    assert delivery.error.startswith("refused: 127.0.0.1 is a loopback address")
    assert connections == []


# --- The URL at rest and on pages ------------------------------------------------------------


def test_webhook_urls_are_stored_encrypted(cluster):
    url = "https://hooks.slack.com/services/T0/B0/very-secret-token"
    channel = alert_channel_create(kind="webhook", target=url, cluster=cluster)
    with connection.cursor() as cursor:
        cursor.execute("SELECT target FROM clusters_alertchannel WHERE id = %s", [channel.pk])
        [(raw,)] = cursor.fetchall()
    assert "very-secret-token" not in raw and "hooks.slack.com" not in raw
    assert AlertChannel.objects.get(pk=channel.pk).target == url
    assert "very-secret-token" not in str(channel)


def test_pages_show_the_url_masked_to_admins_and_viewers(client, django_user_model, user, cluster):
    url = "https://hooks.slack.com/services/T0/B0/very-secret-token"
    alert_channel_create(kind="webhook", target=url, cluster=cluster)
    viewer = make_user(django_user_model, "watcher", VIEWER)
    for who in (user, viewer):
        client.force_login(who)
        page = client.get("/alerts/").content.decode()
        assert "https://hooks.slack.com/…" in page
        assert "very-secret-token" not in page and "/services/" not in page


def test_only_the_admins_edit_page_shows_the_full_url(client, django_user_model, user, cluster):
    url = "https://hooks.slack.com/services/T0/B0/very-secret-token"
    channel = alert_channel_create(kind="webhook", target=url, cluster=cluster)
    viewer = make_user(django_user_model, "watcher", VIEWER)
    client.force_login(viewer)
    assert client.get(f"/alerts/{channel.pk}/edit/").status_code == 403
    client.force_login(user)
    response = client.get(f"/alerts/{channel.pk}/edit/")
    assert url in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_editing_a_channel_checks_the_new_target_like_a_new_one(client, user, cluster):
    url = "https://hooks.slack.com/services/T0/B0/very-secret-token"
    channel = alert_channel_create(kind="webhook", target=url, cluster=cluster)
    client.force_login(user)
    response = client.post(
        f"/alerts/{channel.pk}/edit/",
        {"target": "http://169.254.169.254/latest/", "min_severity": "critical"},
    )
    assert response.status_code == 400
    assert "is a link-local address" in response.content.decode()
    channel.refresh_from_db()
    assert (channel.target, channel.min_severity) == (url, "warning")
    new = "https://hooks.slack.com/services/T0/B0/rotated-token"
    response = client.post(
        f"/alerts/{channel.pk}/edit/", {"target": new, "min_severity": "critical"}
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.target, channel.min_severity) == (new, "critical")
    results = list(
        AuditEntry.objects.filter(action="alert_channel.update")
        .order_by("at", "pk")
        .values_list("result", flat=True)
    )
    assert results == ["refused: invalid target", "ok"]
    assert not AuditEntry.objects.filter(params__icontains="token").exists()


# --- What the target answered: admins only ----------------------------------------------------


def test_the_targets_answer_is_shown_to_admins_only(client, django_user_model, user, cluster):
    channel = AlertChannel.objects.create(
        cluster=cluster, kind="webhook", target=f"https://{PUBLIC}/hook"
    )
    AlertDelivery.objects.create(
        channel=channel,
        status="failed",
        error="HTTP 500 Internal Server Error",
        detail="redis_version:7.0.15 internal banner",
    )
    viewer = make_user(django_user_model, "watcher", VIEWER)
    client.force_login(viewer)
    page = client.get("/alerts/").content.decode()
    assert "HTTP 500 Internal Server Error" in page
    assert "redis_version" not in page
    client.force_login(user)  # an admin
    assert "redis_version:7.0.15 internal banner" in client.get("/alerts/").content.decode()
