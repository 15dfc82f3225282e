"""Console users and their roles: what an admin may do on the users page (services)."""

import re

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import transaction

from clusters.access.roles import ROLES, assign_role, role_of
from clusters.inventory.services import InvalidInput

USERNAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.@+-]{0,149}\Z")


def _role(value: object) -> str | None:
    if value in ("", None, "none"):
        return None
    if value not in ROLES:
        raise InvalidInput({"role": [f"Choose one of: none, {', '.join(ROLES)}."]})
    return str(value)


def user_create(*, username: str, password: str, role: str | None):
    """A new console user with ``role`` (None: no access until an admin gives one)."""
    role = _role(role)
    errors: dict[str, list[str]] = {}
    User = get_user_model()
    if not USERNAME_RE.fullmatch(username or ""):
        errors["username"] = ["Use letters, digits and . _ @ + - (up to 150, no spaces)."]
    elif User.objects.filter(username__iexact=username).exists():
        errors["username"] = ["A user with this name exists already."]
    try:
        password_validation.validate_password(password or "", User(username=username))
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise InvalidInput(errors)
    with transaction.atomic():
        user = User.objects.create_user(username, password=password)
        assign_role(user, role)
    return user


def user_role_set(*, user, role: str | None, by) -> None:
    """Change ``user``'s role. An admin cannot change their own (a last admin would lock
    everyone out), and a superuser stays an admin whatever the groups say."""
    role = _role(role)
    if user.pk == by.pk:
        raise InvalidInput({"role": ["You cannot change your own role; ask another admin."]})
    if user.is_superuser:
        raise InvalidInput(
            {"role": [f"{user.username} is a superuser, an admin whatever their group."]}
        )
    assign_role(user, role)


def user_rows() -> list[dict]:
    """Every user with their role, for the users page."""
    users = get_user_model().objects.prefetch_related("groups").order_by("username")
    return [{"user": u, "role": role_of(u) or "none"} for u in users]
