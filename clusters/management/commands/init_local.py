"""`manage.py init_local`: prepare a one-machine console for `make run`.

`make run` writes `.env` first (`python -m hacenter.local_env`: debug mode, keys and the broker,
each only where the environment sets none, and only when `.env` is missing). This command then
makes the filesystem broker's folders when that broker is the one in use, migrates, and creates
an `admin` user whose password is printed this once.
"""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


def broker_folders() -> list[Path]:
    """The folders Celery's filesystem broker and file result backend need (none for Redis)."""
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        return []
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    folders = [
        Path(options[key])
        for key in ("data_folder_in", "data_folder_out", "processed_folder")
        if options.get(key)
    ]
    if settings.CELERY_RESULT_BACKEND.startswith("file://"):
        folders.append(Path(settings.CELERY_RESULT_BACKEND.removeprefix("file://")))
    return folders


class Command(BaseCommand):
    help = "Make the filesystem broker's folders if it is used, migrate, create an admin."

    def handle(self, *args, **options) -> None:
        """Prepare the local console; safe to run again (nothing is done twice)."""
        for folder in broker_folders():
            folder.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        users = get_user_model().objects
        if not users.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            users.create_superuser("admin", password=password)
            self.stdout.write(f"created user 'admin' with password: {password}  (shown once)")
