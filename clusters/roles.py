"""Who may do what: three roles as Django groups, checked by pages, the API and templates.

- ``viewer``: reads every page and API answer (never a secret).
- ``operator``: a viewer who also runs jobs on clusters (switchover, rebuild, maintenance, ...).
- ``admin``: an operator who also changes the inventory, credentials, alert channels and users.

A superuser is an admin. A user in no group has no role and sees nothing but the login page.
"""

from __future__ import annotations

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)  # weakest first: each role includes the ones before it


def role_of(user) -> str | None:
    """The strongest role ``user`` holds, or ``None`` for an anonymous or role-less user."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))
    for role in reversed(ROLES):
        if role in names:
            return role
    return None


def has_role(user, role: str) -> bool:
    """True when ``user`` holds ``role`` or a stronger one."""
    held = role_of(user)
    return held is not None and ROLES.index(held) >= ROLES.index(role)


def can_view(user) -> bool:
    return has_role(user, VIEWER)


def can_operate(user) -> bool:
    return has_role(user, OPERATOR)


def can_admin(user) -> bool:
    return has_role(user, ADMIN)


def role_flags(request) -> dict:
    """Template context processor: ``role``, ``can_operate`` and ``can_admin`` for the page."""
    user = getattr(request, "user", None)
    role = role_of(user)
    return {
        "role": role,
        "can_operate": has_role(user, OPERATOR) if role else False,
        "can_admin": role == ADMIN,
    }
