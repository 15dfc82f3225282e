"""Patroni for the nodes: a wheel set the console builds once per node Python, then uploads.

Why not Debian's `patroni`: 3.0.2 re-creates its leader key with an unconditional PUT after its
lease expired, so a frozen primary that resumes takes the leadership back and acknowledged writes
are lost (DESIGN.md §2). PyPI's 4.1.x makes that PUT conditional. Nodes often have no package
index, so the console downloads the wheels (it reaches PyPI) and ships them over SSH.
"""

import contextlib
import fcntl
import io
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

PATRONI_REQUIREMENT = "patroni[psycopg2-binary,etcd3]=={version}"
# Dependencies published only as source: built here into pure-Python wheels.
SOURCE_ONLY = ["ydiff>=1.2.0,<1.5,!=1.4.0,!=1.4.1", "python-etcd>=0.4.3,<0.5"]
_build_lock = threading.Lock()


class WheelBuildFailed(Exception):
    """pip could not assemble the wheel set; the message has pip's last words."""


def wheel_dir(python: str, machine: str) -> Path:
    """Where the wheels for one Patroni version, node Python (e.g. "3.11") and CPU live."""
    tag = f"patroni-{settings.PATRONI_VERSION}-cp{python.replace('.', '')}-{machine}"
    return Path(settings.HACENTER_WHEEL_CACHE) / tag


def _pip(args: list[str], log) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    log(f"console: {' '.join(cmd[2:])}")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise WheelBuildFailed(f"pip {args[0]} failed: {last}")


@contextlib.contextmanager
def _folder_lock(target: Path) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_wheels(python: str, machine: str, log) -> Path:
    """The wheel directory for that node, downloading it first when the cache has none."""
    target = wheel_dir(python, machine)
    done = target / ".complete"
    # Two setup jobs must not fill one folder at once: the thread lock for jobs of one worker,
    # the file lock for workers in other processes on this machine.
    with _build_lock, _folder_lock(target):
        if done.exists():
            return target
        _pip(["wheel", "-q", "--no-deps", "-w", str(target), *SOURCE_ONLY], log)
        version = python.replace(".", "")
        _pip(
            [
                "download",
                "-q",
                "-d",
                str(target),
                "--find-links",
                str(target),
                "--only-binary=:all:",
                "--python-version",
                python,
                "--implementation",
                "cp",
                "--abi",
                f"cp{version}",
                "--platform",
                f"manylinux2014_{machine}",
                "--platform",
                f"manylinux_2_17_{machine}",
                "--platform",
                "any",
                PATRONI_REQUIREMENT.format(version=settings.PATRONI_VERSION),
                "pip",
            ],
            log,
        )
        done.write_text("ok\n")
    return target


def tarball(folder: Path) -> bytes:
    """The wheel folder as an uncompressed tar (wheels are already compressed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for wheel in sorted(folder.glob("*.whl")):
            tar.add(wheel, arcname=wheel.name)
    return buffer.getvalue()
