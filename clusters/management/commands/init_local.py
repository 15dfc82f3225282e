"""`manage.py init_local`: prepare a one-machine console for `make run`.

Writes `.env` once (debug mode, a secret key, a field-encryption key), points Celery at Redis
when one answers on localhost and at the filesystem broker otherwise, migrates, and creates an
`admin` user whose password is printed this once.
"""

import json
import secrets
import socket
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from clusters.inventory.crypto import generate_key


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def broker_lines(base: Path) -> list[str]:
    if redis_answers():
        return [
            "CELERY_BROKER_URL=redis://127.0.0.1:6379/0",
            "CELERY_RESULT_BACKEND=redis://127.0.0.1:6379/1",
        ]
    folder = base / "var" / "broker"
    for sub in ("queue", "processed", "results"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
    }
    return [
        "CELERY_BROKER_URL=filesystem://",
        f"CELERY_BROKER_TRANSPORT_OPTIONS={json.dumps(options)}",
        f"CELERY_RESULT_BACKEND=file://{folder / 'results'}",
    ]


class Command(BaseCommand):
    help = "Write .env with fresh keys when missing, choose the broker, migrate, create an admin."

    def handle(self, *args, **options) -> None:
        base = Path(settings.BASE_DIR)
        env_file = base / ".env"
        kept = []
        if env_file.exists():
            kept = [
                line
                for line in env_file.read_text().splitlines()
                if not line.startswith(
                    (
                        "CELERY_BROKER_URL=",
                        "CELERY_RESULT_BACKEND=",
                        "CELERY_BROKER_TRANSPORT_OPTIONS=",
                    )
                )
            ]
        else:
            kept = [
                "# Written by `manage.py init_local` for this machine only. Keep it secret.",
                "HACENTER_DEBUG=true",
                f"HACENTER_SECRET_KEY={secrets.token_urlsafe(50)}",
                f"HACENTER_FIELD_KEYS={generate_key()}",
            ]
            self.stdout.write("wrote .env with a new secret key and field-encryption key")
        broker = broker_lines(base)
        env_file.write_text("\n".join(kept + broker) + "\n")
        env_file.chmod(0o600)
        self.stdout.write(f"Celery broker: {broker[0].split('=', 1)[1]}")
        call_command("migrate", interactive=False, verbosity=0)
        users = get_user_model().objects
        if not users.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser("admin", password=password)
            self.stdout.write(f"created user 'admin' with password: {password}  (shown once)")
