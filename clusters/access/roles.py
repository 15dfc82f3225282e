"""Who may do what: three roles as Django groups, checked by pages, the API and templates.

- ``viewer``: reads every page and API answer (never a secret).
- ``operator``: a viewer who also runs jobs on clusters (switchover, rebuild, maintenance, ...).
- ``admin``: an operator who also changes the inventory, credentials, alert channels and users.

A superuser is an admin. A user in no group has no role and sees nothing but the login page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib.auth.models import Group
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from clusters.access.audit import audit

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)  # weakest first: each role includes the ones before it


def role_of(user) -> str | None:
    """The strongest role ``user`` holds, or ``None`` for an anonymous or role-less user."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    # One query per request, however many checks a page makes (decorator, template flags);
    # a user object lives for one request, and assign_role forgets the cached answer.
    if not hasattr(user, "_hacenter_role"):
        names = set(user.groups.values_list("name", flat=True))
        user._hacenter_role = next((r for r in reversed(ROLES) if r in names), None)
    return user._hacenter_role


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


# Jobs that change the inventory rather than run it: removing a cluster from its servers, and
# adding, replacing or removing a server, are an admin's decisions; so is replacing the
# cluster's certificates (a security operation). Every other job is an operator's. A fence is
# the sentinel's job; a person's fence is a guarded admin action (jobs.services.job_start).
ADMIN_JOB_KINDS = frozenset(
    {
        *("remove_cluster", "add_node", "replace_node", "remove_node", "rotate_certificates"),
        # a restore copies the cluster's data onto another server
        *("fence", "restore"),
        # powers the primary off on purpose (issue 21 part 6)
        "failover_drill",
    }
)


def role_for_job(kind: str) -> str:
    """The role needed to start or retry a job of ``kind`` (any operator may cancel one)."""
    return ADMIN if kind in ADMIN_JOB_KINDS else OPERATOR


def refusal(user, role: str) -> str:
    """The sentence shown to a user who lacks ``role``."""
    held = role_of(user)
    if held is None:
        return (
            f"Your account has no role in HA Center; this needs the {role} role. "
            "Ask an administrator to give you one."
        )
    article = "an" if held[0] in "aeiou" else "a"
    return f"This needs the {role} role; you are {article} {held}. Ask an administrator."


def role_required(role: str, *, post: str | None = None) -> Callable:
    """Page decorator: GET and HEAD need ``role``; any other method needs ``post`` (or ``role``).

    Anonymous users go to the login page; a logged-in user without the role gets a 403 page
    that says which role is needed, and a refused change is audited.
    """

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            user = request.user
            reading = request.method in ("GET", "HEAD")
            needed = role if reading else (post or role)
            if user.is_authenticated and has_role(user, needed):
                return view(request, *args, **kwargs)
            message = refusal(user, needed) if user.is_authenticated else "not logged in"
            if not reading:
                match = request.resolver_match
                name = match.url_name if match and match.url_name else "unknown"
                action = f"{request.method.lower()} {name}"
                audit(request, action=action, target=request.path, result=f"refused: {message}")
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            raise PermissionDenied(message)

        wrapper.hacenter_guarded = True  # the role gate middleware leaves it to this check
        return wrapper

    return decorate


def assign_role(user, role: str | None) -> None:
    """Give ``user`` exactly ``role`` (or no role with ``None``), creating the group if needed."""
    if role is not None and role not in ROLES:
        raise ValueError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    if role is not None:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    user.__dict__.pop("_hacenter_role", None)
