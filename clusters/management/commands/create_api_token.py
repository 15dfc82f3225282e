"""`manage.py create_api_token USER [--days N | --never] [--name NAME]`: print a new API token
for USER (shown only this once); audited like one made on the tokens page."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from clusters.access.audit import audit_record
from clusters.access.tokens import DEFAULT_DAYS, MAX_DAYS
from clusters.models import ApiToken


class Command(BaseCommand):
    help = (
        f"Create an API token for a user and print it; only its hash is stored. It expires "
        f"after --days (default {DEFAULT_DAYS}, at most {MAX_DAYS}) unless --never."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
        parser.add_argument(
            "--never", action="store_true", help="a token that never expires (avoid if you can)"
        )
        parser.add_argument("--name", default="", help="what the token is for")

    def handle(self, *args, username: str, days: int, never: bool, name: str, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not never and not 1 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be from 1 to {MAX_DAYS} (or give --never).")
        if len(name) > 100 or not name.isprintable():
            raise CommandError("--name: at most 100 printable characters.")
        key = ApiToken.issue(user, days=None if never else days, name=name)
        token = ApiToken.objects.get(digest=ApiToken.digest_of(key))
        # No request: the row says the command made it, for whom, and until when.
        audit_record(
            user=None,
            action="api_token.create",
            target=f"API token {token.prefix}… of {user.username}",
            params={
                "owner": user.username,
                "name": name,
                "expires": token.expires.isoformat() if token.expires else "never",
                "via": "manage.py create_api_token",
            },
        )
        self.stdout.write(key)
