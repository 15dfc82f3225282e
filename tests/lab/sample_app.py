"""A small real application for the lab's database nodes: the customer's HTTP service.

Standard library only (Debian 12 minbase has python3) and `psql` as the postgres user through
the local socket, so it needs nothing but the PostgreSQL that HA Center installs:

- ``POST /write`` inserts a row through the local PostgreSQL and answers
  ``{"id": <row id>, "node": <host name>}``; 503 when the database refuses or is away;
- ``GET /health`` answers 200 when a query on the local database works, 503 otherwise.

``install(lab, host)`` puts it on a host as ``sampleapp.service``, enabled and started: the
customer's state before HA Center (running everywhere, at boot too).
"""

import base64

UNIT = "sampleapp.service"
PORT = 8080
SCRIPT_PATH = "/usr/local/bin/sampleapp"

SCRIPT = r'''#!/usr/bin/python3
"""Sample application: POST /write inserts a row, GET /health checks the database."""
import http.server
import json
import socket
import subprocess
import sys

SQL = (
    "CREATE TABLE IF NOT EXISTS sample_rows (id bigserial PRIMARY KEY, node text, "
    "at timestamptz DEFAULT now()); "
    "INSERT INTO sample_rows (node) VALUES (:'node') RETURNING id"
)


def psql(*args):
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1",
         "-d", "postgres", *args],
        capture_output=True, text=True, timeout=5, check=False,
    )


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path != "/health":
            return self.answer(404, {"error": "not found"})
        try:
            ok = psql("-c", "SELECT 1").stdout.strip() == "1"
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        self.answer(200 if ok else 503, {"database": "up" if ok else "down"})

    def do_POST(self):
        if self.path != "/write":
            return self.answer(404, {"error": "not found"})
        node = socket.gethostname()
        try:
            # psql reads -c's text without variables; a script on stdin interpolates :'node'.
            done = subprocess.run(
                ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1",
                 "-v", "node=" + node, "-d", "postgres"],
                input=SQL + ";\n", capture_output=True, text=True, timeout=5, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return self.answer(503, {"error": str(exc), "node": node})
        lines = done.stdout.split()
        if done.returncode != 0 or not lines or not lines[-1].isdigit():
            return self.answer(503, {"error": done.stderr.strip()[-200:], "node": node})
        self.answer(200, {"id": int(lines[-1]), "node": node})

    def log_message(self, *args):
        pass


# One request at a time: the table is created on the first write, without racing itself.
http.server.HTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
'''

UNIT_TEXT = f"""[Unit]
Description=Sample application (the customer's HTTP service in front of PostgreSQL)
After=network.target

[Service]
ExecStart=/usr/bin/python3 {SCRIPT_PATH} {PORT}
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


def install(lab, host: str) -> None:
    """Install the application on `host` as the customer would: enabled and running."""
    for path, text, mode in (
        (SCRIPT_PATH, SCRIPT, "755"),
        (f"/etc/systemd/system/{UNIT}", UNIT_TEXT, "644"),
    ):
        encoded = base64.b64encode(text.encode()).decode()
        lab.exec(host, ["sh", "-c", f"echo {encoded} | base64 -d > {path} && chmod {mode} {path}"])
    lab.exec(host, ["sh", "-c", f"systemctl daemon-reload && systemctl enable --now {UNIT}"])
