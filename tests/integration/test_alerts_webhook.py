"""Webhook alerts against a real HTTP receiver on 127.0.0.1: the JSON that arrives, a receiver
that fails, a redirect that is not followed, a receiver that never answers, the test button."""

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from clusters.alerts import delivery as alert_delivery
from clusters.alerts.rules import alert_test_send, alerts_dispatch
from clusters.alerts.text import alert_text
from clusters.models import AlertChannel, Cluster, ClusterEvent

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@dataclass
class Receiver:
    """What the local webhook receiver got, and how it answers (status, extra headers, delay)."""

    url: str
    posts: list[dict] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 200
    answer_headers: dict[str, str] = field(default_factory=dict)
    hang: threading.Event | None = None  # set: the receiver waits on it before answering


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) that records the JSON bodies posted."""
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server dispatches to
            rec = holder[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            rec.posts.append({"path": self.path, "json": json.loads(body)})
            rec.headers.append(dict(self.headers))
            if rec.hang is not None:
                rec.hang.wait(30)
            self.send_response(rec.status)
            for name, value in rec.answer_headers.items():
                self.send_header(name, value)
            answer = b"ok" if rec.status < 300 else b"receiver says no"
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def do_GET(self) -> None:  # a followed redirect would arrive here
            holder[0].posts.append({"path": self.path, "json": None})
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder.append(Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/secret"))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield holder[0]
    if holder[0].hang is not None:
        holder[0].hang.set()
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture(autouse=True)
def loopback_allowed(settings) -> None:
    """The receiver listens on loopback, which webhooks may reach only when allow-listed."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.objects.create(name="c1")


@pytest.fixture
def channel(cluster: Cluster, receiver: Receiver) -> AlertChannel:
    return AlertChannel.objects.create(
        cluster=cluster, kind="webhook", target=receiver.url, min_severity="warning"
    )


def failover(cluster: Cluster) -> ClusterEvent:
    return ClusterEvent.objects.create(
        cluster=cluster,
        kind="failover",
        severity="critical",
        at=timezone.now(),
        old_primary="node1",
        new_primary="node2",
        downtime_s=23.1,
        lost_bytes=0,
        summary="Patroni promoted node2",
        details={"token": "never-sent"},
    )


def test_receiver_gets_the_text_and_the_event_fields(receiver, channel, cluster):
    event = failover(cluster)
    [delivery] = alerts_dispatch(event_id=event.pk)
    assert (delivery.status, delivery.error) == ("sent", "")

    [post] = receiver.posts
    assert post["path"] == "/hooks/T0/secret"
    assert post["json"] == {
        "text": alert_text(event),
        "cluster": "c1",
        "kind": "failover",
        "severity": "critical",
        "at": event.at.isoformat(),
        "node": None,
        "old_primary": "node1",
        "new_primary": "node2",
        "downtime_s": 23.1,
        "lost_bytes": 0,
    }
    assert post["json"]["text"] == (
        ":rotating_light: c1: failover from node1 to node2 (writes down 23.1 s)"
    )
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert "never-sent" not in json.dumps(post["json"])


def test_a_500_answer_is_a_failed_delivery_with_the_status(receiver, channel, cluster):
    receiver.status = 500
    [delivery] = alerts_dispatch(event_id=failover(cluster).pk)
    assert delivery.status == "failed"
    assert "500" in delivery.error
    # The receiver's own words are kept apart: the page shows them to admins only.
    assert delivery.error == "HTTP 500 Internal Server Error"
    assert delivery.detail == "receiver says no"
    assert "secret" not in delivery.error  # the URL's token is never written down


def test_loopback_is_refused_without_the_allow_list(receiver, channel, cluster, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    [delivery] = alerts_dispatch(event_id=failover(cluster).pk)
    assert delivery.status == "failed"
    assert delivery.error.startswith("refused: 127.0.0.1 is a loopback address")
    assert receiver.posts == []


def test_a_rebound_name_still_reaches_the_address_that_was_checked(receiver, cluster, monkeypatch):
    # The name's first answer is the receiver (allow-listed loopback); any later answer would
    # be another address. The delivery looks up once and connects where it checked.
    port = int(receiver.url.split(":")[2].split("/")[0])
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, *args, **kwargs):
        if host != "hooks.rebind.test":
            return real(host, *args, **kwargs)
        asked.append(host)
        ip = "127.0.0.1" if len(asked) == 1 else "192.0.2.1"  # TEST-NET: nothing answers
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    channel = AlertChannel.objects.create(
        cluster=cluster, kind="webhook", target=f"http://hooks.rebind.test:{port}/hooks/T0/x"
    )
    delivery = alert_test_send(channel=channel)
    assert (delivery.status, delivery.error) == ("test", "")
    assert asked == ["hooks.rebind.test"]
    assert receiver.posts[0]["path"] == "/hooks/T0/x"
    assert receiver.headers[0]["Host"] == f"hooks.rebind.test:{port}"


def test_redirects_are_not_followed(receiver, channel, cluster):
    receiver.status = 302
    receiver.answer_headers = {"Location": "ftp://127.0.0.1/elsewhere"}
    [delivery] = alerts_dispatch(event_id=failover(cluster).pk)
    assert delivery.status == "failed"
    assert delivery.error.startswith("HTTP 302 Found: redirects are not followed")
    assert len(receiver.posts) == 1  # no second request of any kind


def test_a_receiver_that_never_answers_fails_after_the_timeout(
    receiver, channel, cluster, monkeypatch
):
    monkeypatch.setattr(alert_delivery, "WEBHOOK_TIMEOUT_S", 0.5)
    receiver.hang = threading.Event()
    [delivery] = alerts_dispatch(event_id=failover(cluster).pk)
    assert (delivery.status, delivery.error) == ("failed", "no answer within 0.5 s")


def test_a_closed_port_is_a_failed_delivery(cluster):
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = AlertChannel.objects.create(
        cluster=cluster, kind="webhook", target=f"http://127.0.0.1:{port}/hook"
    )
    delivery = alert_test_send(channel=channel)
    assert delivery.status == "failed"
    assert delivery.error.startswith("cannot reach the webhook:")
    assert "refused" in delivery.error.lower()


def test_test_alert_reaches_the_receiver(receiver, channel):
    delivery = alert_test_send(channel=channel)
    assert (delivery.status, delivery.event) == ("test", None)
    [post] = receiver.posts
    assert post["json"]["kind"] == "test"
    assert post["json"]["cluster"] == "c1"
    assert (
        post["json"]["text"] == ":white_check_mark: HA Center test alert for c1: this channel works"
    )


def test_slack_markup_characters_are_escaped(receiver, channel, cluster):
    event = ClusterEvent.objects.create(
        cluster=cluster,
        kind="alarm_raised",
        severity="warning",
        at=timezone.now(),
        summary="routing <mismatch> & proxy sends writes to node1",
    )
    alerts_dispatch(event_id=event.pk)
    assert receiver.posts[0]["json"]["text"] == (
        ":warning: c1: routing &lt;mismatch&gt; &amp; proxy sends writes to node1"
    )
