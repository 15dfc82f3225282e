"""`manage.py set_role USER ROLE`: give a user the viewer, operator or admin role (or none)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from clusters.access.audit import audit_record
from clusters.access.roles import ROLES, assign_role


class Command(BaseCommand):
    help = "Set a console user's role: viewer, operator, admin, or none."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=[*ROLES, "none"])

    def handle(self, *args, username: str, role: str, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        assign_role(user, None if role == "none" else role)
        audit_record(
            user=None, action="user.role", target=f"user {username}", params={"role": role}
        )
        self.stdout.write(f"{username} is now: {role}")
