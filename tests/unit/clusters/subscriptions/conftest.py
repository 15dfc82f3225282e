"""A real HTTP receiver on 127.0.0.1 for the subscriptions' tests: it checks each POST's
signature with the secret it is given, as docs/webhooks.md tells receivers to, records what
came, and answers the statuses it is told to (200 once the list is used up)."""

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clusters.subscriptions.signing import signature_valid


@dataclass
class Post:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    secret: str = ""  # the subscription's, set by the test once it is made
    posts: list[Post] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answered in turn, then 200
    answer_headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A ThreadingHTTPServer on a free loopback port; its URL carries a token-like path."""
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server dispatches to
            rec = holder[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ok = signature_valid(
                rec.secret,
                timestamp=self.headers.get("X-HACenter-Timestamp", ""),
                body=body,
                signature_header=self.headers.get("X-HACenter-Signature", ""),
            )
            rec.posts.append(Post(self.path, dict(self.headers), body, ok))
            status = rec.statuses.pop(0) if rec.statuses else 200
            if not ok:
                status = 401  # what a careful receiver answers
            self.send_response(status)
            for name, value in rec.answer_headers.items():
                self.send_header(name, value)
            answer = b"ok" if status < 300 else b"receiver says no"
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def do_GET(self) -> None:  # a followed redirect would arrive here
            holder[0].posts.append(Post(self.path, dict(self.headers), b"", False))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    holder.append(Receiver(url=f"http://127.0.0.1:{port}/hooks/T0KEN-in-path"))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def loopback_allowed(settings) -> None:
    """The receiver listens on loopback, which webhooks may reach only when allow-listed
    (as in tests/integration/test_alerts_webhook.py)."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
