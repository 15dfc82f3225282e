"""The users page: admins add users and set their roles; every change is audited."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from clusters.access.audit import audit, refused
from clusters.access.roles import ADMIN, ROLES, role_required
from clusters.access.users import user_create, user_role_set, user_rows
from clusters.inventory.services import InvalidInput


@sensitive_post_parameters("password")  # out of error reports
@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def user_list(request: HttpRequest) -> HttpResponse:
    """Users and roles, and a form to add a user."""
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        username, role = request.POST.get("username", ""), request.POST.get("role", "")
        try:
            user = user_create(
                username=username, password=request.POST.get("password", ""), role=role
            )
        except InvalidInput as exc:
            errors = exc.field_errors
            audit(request, action="user.create", result=refused(errors))
        else:
            audit(
                request,
                action="user.create",
                target=f"user {user.username}",
                params={"username": user.username, "role": role or "none"},
            )
            messages.success(request, f"User {user.username} added.")
            return redirect("user-list")
    context = {
        "rows": user_rows(),
        "roles": ("none", *ROLES),
        "errors": errors,
        "posted": {
            "username": request.POST.get("username", ""),
            "role": request.POST.get("role", ""),
        }
        if errors
        else {},
    }
    return render(request, "clusters/users.html", context, status=400 if errors else 200)


@role_required(ADMIN)
@require_POST
def user_role(request: HttpRequest, pk: int) -> HttpResponse:
    """Set one user's role."""
    user = get_object_or_404(get_user_model(), pk=pk)
    role = request.POST.get("role", "")
    try:
        user_role_set(user=user, role=role, by=request.user)
    except InvalidInput as exc:
        message = " ".join(m for msgs in exc.field_errors.values() for m in msgs)
        audit(
            request,
            action="user.role",
            target=f"user {user.username}",
            result=f"refused: {message}",
        )
        messages.error(request, message)
    else:
        audit(request, action="user.role", target=f"user {user.username}", params={"role": role})
        messages.success(request, f"{user.username} is now: {role or 'none'}.")
    return redirect("user-list")
