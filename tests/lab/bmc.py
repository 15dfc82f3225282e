"""A Redfish BMC for the lab's hosts, so the product's fence devices run the real
`fence_redfish` against something that powers a lab host off (issue 21). Test infrastructure,
not product.

It serves, over HTTPS with a self-signed certificate (the agent's ``ssl_insecure``) and basic
authentication, on the lab bridge's address (the console side, which every lab host reaches),
the resources `fence_redfish` reads (fence-agents 4.12, /usr/sbin/fence_redfish):

- ``GET /redfish/v1`` → ``Systems`` → ``GET /redfish/v1/Systems`` → ``Members``;
- ``GET /redfish/v1/Systems/<host>``: ``PowerState`` On/Off and the
  ``#ComputerSystem.Reset`` action's target;
- ``POST /redfish/v1/Systems/<host>/Actions/ComputerSystem.Reset`` with ``ResetType``
  ForceOff (the host's plug pulled, as `lab poweroff` does, and its cable with it: a powered-off
  server answers nothing), On/ForceOn (cable back, booted), ForceRestart (both).

A system's id is the lab host's name. A wrong user or password is answered 401 with a Redfish
error body, as BMCs do. ``requests`` keeps every request (method, path, ResetType) so a test can
prove a status query sent no reset.

``broken`` makes it a faulty device (the chaos suite's "fence broken" rounds): ``"refuse"``
answers every reset 500 and does nothing (it still tells a host that is already off as Off,
so a fence of such a host is confirmed, rightly); ``"stuck_on"`` accepts every reset (204),
does nothing, and reports ``PowerState`` On whatever the host's state, as a BMC whose relay is
welded; ``"silent"`` answers every request 503, as a BMC whose controller hangs. With
``stuck_on`` and ``silent`` nothing can confirm an off.
"""

from __future__ import annotations

import base64
import datetime
import hmac
import ipaddress
import json
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ._util import LabError

PORT = 8443
ROOT = "/redfish/v1"
RESET_SUFFIX = "/Actions/ComputerSystem.Reset"
#: The ways ``LabBMC.broken`` can break the device ("" works).
BROKEN_MODES = ("", "refuse", "stuck_on", "silent")


def self_signed(address: str, into: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for ``address`` (files in ``into``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hclab-bmc")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = into / "bmc.crt", into / "bmc.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class LabBMC:
    """The BMC of every host of ``lab`` at ``https://address:port``; ``start()``/``stop()``."""

    def __init__(
        self, lab, address: str, *, port: int = PORT, username: str = "admin", password: str
    ) -> None:
        self.lab, self.address, self.port = lab, address, port
        self.username, self.password = username, password
        self.requests: list[tuple[str, str, str]] = []  # (method, path, ResetType or "")
        self.broken = ""  # one of BROKEN_MODES
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="hclab-bmc-")

    def start(self) -> LabBMC:
        cert, key = self_signed(self.address, Path(self._dir.name))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        bmc = self

        class Handler(_Handler):
            owner = bmc

        server = ThreadingHTTPServer((self.address, self.port), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True, name="lab-bmc")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = None
        self._dir.cleanup()

    def __enter__(self) -> LabBMC:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def systems_uri(self, host: str) -> str:
        return f"{ROOT}/Systems/{host}"

    def fence_device(self, host: str, secret: str) -> dict:
        """A redfish fence device for lab host `host` through this BMC, as the API and
        fence_device_set take it (`secret`: the password to send, right or wrong)."""
        options = {
            "ip": self.address,
            "ipport": self.port,
            "username": self.username,
            "systems_uri": self.systems_uri(host),
            "ssl_insecure": True,
        }
        return {"method": "redfish", "options": options, "secret": secret}

    # -- what the handler asks -------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.username) and hmac.compare_digest(
            password, self.password
        )

    def hosts(self) -> list[str]:
        return [h.name for h in self.lab.hosts]

    def break_as(self, mode: str) -> None:
        """Break the device (see the module's docstring) or, with "", repair it."""
        if mode not in BROKEN_MODES:
            raise ValueError(f"unknown broken mode {mode!r}; one of {BROKEN_MODES}")
        self.broken = mode

    def power_state(self, host: str) -> str:
        if self.broken == "stuck_on":
            return "On"
        return "On" if self.lab.is_powered(host) else "Off"

    def reset(self, host: str, kind: str) -> bool:
        """Carry out a ResetType on the lab host; False for one this BMC does not offer.
        A "stuck_on" BMC accepts it and does nothing."""
        if self.broken == "stuck_on":
            return kind in ("ForceOff", "ForceRestart", "On", "ForceOn")
        if kind in ("ForceOff", "ForceRestart"):
            if self.lab.is_powered(host):
                self.lab.power_off(host)
            self._cut(host)
        if kind in ("On", "ForceOn", "ForceRestart"):
            if self.lab.network_is_cut(host):
                self.lab.restore_network(host)
            self.lab.power_on(host)
        return kind in ("ForceOff", "ForceRestart", "On", "ForceOn")

    def _cut(self, host: str) -> None:
        """Pull the powered-off host's cable. A systemd lab host's cable (nspawn's veth) goes
        with the container when it dies, or a moment later: then nothing is left to cut."""
        try:
            if not self.lab.network_is_cut(host):
                self.lab.cut_network(host)
        except LabError:
            if self.lab.network_is_cut(host) is False and self._has_link(host):
                raise

    def _has_link(self, host: str) -> bool:
        veth = getattr(self.lab.host(host), "veth", None)
        return veth is None or Path(f"/sys/class/net/{veth}").exists()


class _Handler(BaseHTTPRequestHandler):
    owner: LabBMC
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test's output is the job's log, not this server's

    def _answer(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict | None = None) -> None:
        body = {"error": {"code": "Base.1.0.GeneralError", "message": message}}
        self._answer(status, body, headers)

    def _gate(self) -> bool:
        if self.owner.authorized(self.headers.get("Authorization")):
            return True
        self._error(401, "Invalid credentials", {"WWW-Authenticate": 'Basic realm="hclab-bmc"'})
        return False

    def _silent(self) -> bool:
        """A "silent" BMC answers 503 to everything (after the authentication, as a hung
        controller behind a working web server does)."""
        if self.owner.broken != "silent":
            return False
        self._error(503, "Service temporarily unavailable")
        return True

    def _host(self, path: str) -> str | None:
        name = path[len(f"{ROOT}/Systems/") :].split("/")[0]
        return name if name in self.owner.hosts() else None

    def do_GET(self) -> None:
        path = self.path.rstrip("/")
        self.owner.requests.append(("GET", path, ""))
        if not self._gate() or self._silent():
            return
        if path == ROOT:
            self._answer(
                200,
                {
                    "@odata.id": ROOT,
                    "Id": "RootService",
                    "RedfishVersion": "1.6.0",
                    "Systems": {"@odata.id": f"{ROOT}/Systems"},
                },
            )
        elif path == f"{ROOT}/Systems":
            members = [{"@odata.id": self.owner.systems_uri(h)} for h in self.owner.hosts()]
            self._answer(
                200,
                {
                    "@odata.id": path,
                    "Members": members,
                    "Members@odata.count": len(members),
                },
            )
        elif (host := self._host(path)) and path == self.owner.systems_uri(host):
            self._answer(
                200,
                {
                    "@odata.id": path,
                    "Id": host,
                    "Name": host,
                    "PowerState": self.owner.power_state(host),
                    "Actions": {
                        "#ComputerSystem.Reset": {
                            "target": path + RESET_SUFFIX,
                            "ResetType@Redfish.AllowableValues": [
                                "On",
                                "ForceOff",
                                "ForceOn",
                                "ForceRestart",
                            ],
                        }
                    },
                },
            )
        else:
            self._error(404, f"No resource {path}")

    def do_POST(self) -> None:
        path = self.path.rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            kind = str(json.loads(raw or b"{}").get("ResetType", ""))
        except (ValueError, AttributeError):
            kind = ""
        self.owner.requests.append(("POST", path, kind))
        if not self._gate() or self._silent():
            return
        host = self._host(path)
        if host is None or path != self.owner.systems_uri(host) + RESET_SUFFIX:
            self._error(404, f"No action {path}")
        elif self.owner.broken == "refuse":
            self._error(500, "The power controller did not respond")
        elif not self.owner.reset(host, kind):
            self._error(400, f"ResetType {kind!r} is not supported")
        else:
            self._answer(204)
