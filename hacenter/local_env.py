"""`python -m hacenter.local_env`: write `.env` for a one-machine console (`make run`), once.

The file fills in only what the environment does not set: a variable exported in the shell
(``CELERY_BROKER_URL``, ``HACENTER_DEBUG``…) is left out of it, so the shell keeps the last word.
An existing `.env` is never rewritten: it holds the field-encryption key the stored secrets
need, and whatever its owner edited in it. Runs before Django is set up (settings would refuse
to load without the secret key this writes), so it imports nothing of the project.
"""

import json
import os
import secrets
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet

HEADER = "# Written by `make run` (python -m hacenter.local_env) for this machine only. Secret."


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """Whether a Redis server answers PING on host:port within half a second."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def broker_settings(base: Path, *, redis: bool) -> dict[str, str]:
    """Celery's broker and result backend: the local Redis, else the filesystem broker in var/."""
    if redis:
        return {
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
            "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/1",
        }
    folder = base / "var" / "broker"
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
    }
    return {
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_BROKER_TRANSPORT_OPTIONS": json.dumps(options),
        "CELERY_RESULT_BACKEND": f"file://{folder / 'results'}",
    }


def local_settings(base: Path, environ: Mapping[str, str], *, redis: bool) -> dict[str, str]:
    """What `.env` should hold: every local default the environment does not already set."""
    wanted = {
        "HACENTER_DEBUG": "true",
        "HACENTER_SECRET_KEY": secrets.token_urlsafe(50),
        "HACENTER_FIELD_KEYS": Fernet.generate_key().decode(),
    }
    # The broker's variables go together: a shell that names its own broker keeps all three,
    # never a mix of its URL and our transport options.
    if "CELERY_BROKER_URL" not in environ:
        wanted.update(broker_settings(base, redis=redis))
    return {name: value for name, value in wanted.items() if name not in environ}


def write_local_env(
    path: Path, environ: Mapping[str, str], *, redis: bool | None = None
) -> dict[str, str] | None:
    """Write `.env` at `path` unless it exists; return what was written (None: left as it was).

    `redis` says whether a local Redis answers (None: ask it now)."""
    if path.exists():
        return None
    if redis is None:
        redis = "CELERY_BROKER_URL" not in environ and redis_answers()
    values = local_settings(path.parent, environ, redis=redis)
    lines = [HEADER, *(f"{name}={value}" for name, value in values.items())]
    # Created 0600 from the start: it holds the keys, so no moment readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    return values


def main(argv: list[str]) -> int:
    """Write BASE_DIR/.env (or the path given) once and say what it chose, never the secrets."""
    path = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / ".env"
    written = write_local_env(path, os.environ)
    if written is None:
        # Never "delete it": it holds the key the stored credentials are encrypted with.
        print(f"{path.name} exists: left as it is (edit it; a variable set in the shell wins)")
    else:
        # Names only: the values are keys.
        print(f"wrote {path.name} with {', '.join(written) or 'a header only'}")
        print("  (what the environment already sets is left to it)")
    broker = os.environ.get("CELERY_BROKER_URL") or _from_file(path, "CELERY_BROKER_URL")
    print(f"Celery broker: {broker or 'redis://127.0.0.1:6379/0 (the default)'}")
    return 0


def _from_file(path: Path, name: str) -> str:
    """The value `path` gives `name` (the last one wins, as in django-environ), or ''."""
    value = ""
    for line in path.read_text().splitlines():
        if line.startswith(f"{name}="):
            value = line.split("=", 1)[1]
    return value


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
