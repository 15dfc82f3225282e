"""A small apt repository on the machine running the tests, for the lab hosts to upgrade from.

Debian's archive offers one build of some packages (Debian 12's etcd), so a test that needs a
newer one repacks the .deb the hosts installed (taken from the lab's apt-cacher-ng cache) with
a higher version ("3.4.23-4+b4" → "3.4.23-4+b4+hclab1"), indexes it (dpkg-scanpackages, and a
Release file with the indexes' hashes) and serves it over HTTP on the lab bridge. The hosts add
it as an admin adds an internal repository: a sources.list.d entry (`trusted=yes`: it is not
signed) and, since their APT proxy serves Debian's archives only, `DIRECT` for its address.
Nothing here runs on a lab host; the test writes those two files there.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import subprocess
import threading
from email.utils import formatdate
from pathlib import Path

from .sdmachine import BRIDGE_ADDRESS

PORT = 8765


def repack(deb: Path, suffix: str, into: Path) -> tuple[str, str]:
    """`deb` with `suffix` appended to its version, written into `into`; (package, version)."""
    tree = into / f"{deb.stem}.tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN" / "control"
    fields = control.read_text().splitlines()
    package = next(f.split(":", 1)[1].strip() for f in fields if f.startswith("Package:"))
    version = next(f.split(":", 1)[1].strip() for f in fields if f.startswith("Version:"))
    version += suffix
    control.write_text(
        "\n".join(f"Version: {version}" if f.startswith("Version:") else f for f in fields) + "\n"
    )
    out = into / f"{package}_{version}.deb"
    # xz level 1: the default level takes minutes for a Go binary on a busy machine
    subprocess.run(
        ["dpkg-deb", "-Zxz", "-z1", "-b", str(tree), str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(["rm", "-rf", str(tree)], check=True)
    return package, version


def index(root: Path) -> None:
    """Packages, Packages.gz and a Release naming their hashes (a flat repository, `./`)."""
    packages = subprocess.run(
        ["dpkg-scanpackages", "-m", "."], cwd=root, check=True, capture_output=True
    ).stdout
    (root / "Packages").write_bytes(packages)
    (root / "Packages.gz").write_bytes(gzip.compress(packages))
    lines = [
        "Origin: hclab",
        "Label: hclab",
        "Suite: hclab",
        "Codename: hclab",
        f"Date: {formatdate(usegmt=True)}",
        "Architectures: amd64 all",
        "SHA256:",
    ]
    for name in ("Packages", "Packages.gz"):
        data = (root / name).read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    (root / "Release").write_text("\n".join(lines) + "\n")


class Served:
    """An HTTP server for `root` on the bridge address, in a thread; `stop()` ends it."""

    def __init__(self, root: Path, port: int = PORT) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._server = http.server.ThreadingHTTPServer((BRIDGE_ADDRESS, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://{BRIDGE_ADDRESS}:{port}/"

    def sources_line(self) -> str:
        return f"deb [trusted=yes] {self.url} ./\n"

    def direct_line(self) -> str:
        """apt.conf: reach this address without the cluster's APT proxy."""
        return f'Acquire::http::Proxy::{BRIDGE_ADDRESS} "DIRECT";\n'

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
