"""A stand-in for the console's REST API on loopback: canned answers by method and path,
and a record of every request (headers included) so tests can check what the CLI sent."""

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "tok-" + "s3cret" * 6

# An answer: (status, JSON body) or (status, JSON body, extra headers); a callable gets the
# request's query and answers one.
Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeConsole:
    url: str = ""
    routes: dict[tuple[str, str], Answer | Callable[[dict], Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def on(self, method: str, path: str, answer: Answer | Callable[[dict], Answer]) -> None:
        self.routes[(method, f"/api/v1{path}")] = answer

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a user of this console would have (no config file to find)."""
        return {"HACENTER_URL": self.url, "HACENTER_TOKEN": TOKEN, "HOME": "/nonexistent", **extra}


def _handler(console: FakeConsole) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            query = parse_qs(parts.query)
            console.seen.append(
                Seen(
                    self.command,
                    parts.path,
                    query,
                    dict(self.headers),
                    json.loads(raw) if raw else None,
                )
            )
            answer = console.routes.get((self.command, parts.path))
            if answer is None:
                answer = (404, {"error": "Not found.", "field_errors": {}})
            if callable(answer):
                answer = answer(query)
            status, body, *rest = answer
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (rest[0] if rest else {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: object) -> None:  # quiet
            pass

    return Handler


@contextmanager
def running() -> Iterator[FakeConsole]:
    console = FakeConsole()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(console))
    console.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield console
    finally:
        server.shutdown()
        server.server_close()
