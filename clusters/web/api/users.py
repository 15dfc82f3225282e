"""REST endpoints for users and roles: the twins of the users page (clusters.web.user_views),
with its services (clusters.access.users), role and audit entries.

GET /api/v1/users/                (admin)  every user with their role
POST /api/v1/users/               (admin)  {username, password, role} -> 201
PUT /api/v1/users/{id}/role/      (admin)  {role} -> the user
GET /api/v1/roles/                (viewer) the roles and what each may do

A password is read once, handed to the service and never answered, logged or audited.
"""

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from clusters.access.audit import audit, refused
from clusters.access.roles import ADMIN, OPERATOR, ROLES, VIEWER, role_of
from clusters.access.users import user_create, user_role_set
from clusters.inventory.services import InvalidInput
from clusters.web.api import schemas_admin as s
from clusters.web.api.openapi import body_of, errors
from clusters.web.api.plumbing import ADMIN_AUTH, VIEWER_AUTH, ApiError, validated_body

router = Router(tags=["users"])

# What each role may do, in one line (clusters.access.roles; the users page says the same).
ROLE_ABILITIES = {
    VIEWER: "Reads every page and API answer (never a secret).",
    OPERATOR: "Also runs jobs on clusters (switchover, rebuild, maintenance…), cancels and "
    "retries them.",
    ADMIN: "Also changes clusters, servers, credentials, alert channels and users, and runs "
    "the jobs that change the inventory (removals, node changes, certificates, fencing).",
}


def user_json(user) -> dict:
    """A user as the API answers it: never their password (or its hash)."""
    return {
        "id": user.pk,
        "username": user.username,
        # As the page shows it: "none" for a user in no group, and for a disabled one.
        "role": role_of(user) or "none",
        "is_superuser": user.is_superuser,
        "is_active": user.is_active,
        "last_login": user.last_login,
        "date_joined": user.date_joined,
    }


@router.get(
    "/users/",
    auth=ADMIN_AUTH,
    response={200: list[s.UserOut], **errors(401, 403)},
    url_name="api-users",
)
def users(request: HttpRequest):
    """Every console user with their role ("none": no access), by name (admins)."""
    found = get_user_model().objects.order_by("username")
    return [user_json(u) for u in found]


@router.post(
    "/users/",
    auth=ADMIN_AUTH,
    response={201: s.UserOut, **errors(400, 401, 403, 413)},
    openapi_extra=body_of(s.UserIn),
    url_name="api-users",
)
def user_add(request: HttpRequest):
    """Add a user (admins): `{username, password, role}`; role none (the default) gives no
    access until an admin gives one. The password must pass the console's password rules; it
    is never answered or recorded."""
    try:
        data = validated_body(request, s.UserIn).model_dump(mode="json")
        role = data["role"]
        user = user_create(username=data["username"], password=data["password"], role=role)
    except InvalidInput as exc:
        audit(request, action="user.create", result=refused(exc.field_errors))
        raise ApiError(400, "The user was not added.", exc.field_errors) from None
    audit(
        request,
        action="user.create",
        target=f"user {user.username}",
        params={"username": user.username, "role": role},
    )
    return Status(201, user_json(user))


@router.put(
    "/users/{int:pk}/role/",
    auth=ADMIN_AUTH,
    response={200: s.UserOut, **errors(400, 401, 403, 404, 413)},
    openapi_extra=body_of(s.UserRoleIn),
    url_name="api-user-role",
)
def user_role(request: HttpRequest, pk: int):
    """Set a user's role (admins): `{role: none|viewer|operator|admin}`. Refused, as on the
    page, for your own account (ask another admin: a last admin would lock everyone out) and
    for a superuser (an admin whatever their role)."""
    user = get_object_or_404(get_user_model(), pk=pk)
    target = f"user {user.username}"
    try:
        # `role` is required (UserRoleIn): a PUT without one must not take a user's access away.
        role = validated_body(request, s.UserRoleIn).model_dump(mode="json")["role"]
        user_role_set(user=user, role=role, by=request.user)
    except InvalidInput as exc:
        message = " ".join(m for msgs in exc.field_errors.values() for m in msgs)
        audit(request, action="user.role", target=target, result=f"refused: {message}")
        raise ApiError(400, "The role was not changed.", exc.field_errors) from None
    audit(request, action="user.role", target=target, params={"role": role})
    return user_json(user)


@router.get(
    "/roles/",
    auth=VIEWER_AUTH,
    response={200: list[s.RoleOut], **errors(401, 403)},
    url_name="api-roles",
    tags=["users"],
)
def roles(request: HttpRequest):
    """The roles, weakest first, with what each may do; each includes the ones before it."""
    return [
        {"name": role, "may": ROLE_ABILITIES[role], "includes": list(ROLES[:i])}
        for i, role in enumerate(ROLES)
    ]
