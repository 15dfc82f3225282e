"""`manage.py create_api_token USER`: print a new API token for USER (shown only this once)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from clusters.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for a user and print it; only its hash is stored."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        self.stdout.write(ApiToken.issue(user))
