"""The API tokens page: create one (its key shown once), see them, revoke one; audited.

Admins see every user's tokens and may create one for anyone, or one that never expires;
everyone else sees and manages their own.
"""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from clusters.access.audit import audit, refused
from clusters.access.roles import VIEWER, can_admin, role_required
from clusters.access.tokens import (
    DEFAULT_DAYS,
    MAX_DAYS,
    api_token_create,
    api_token_revoke,
    api_tokens_visible,
)
from clusters.inventory.services import InvalidInput
from clusters.web.api.tokens import audit_token_created, audit_token_revoked


@role_required(VIEWER, post=VIEWER)
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """The tokens the user may see and a form to create one."""
    errors: dict[str, list[str]] = {}
    new_key = ""
    if request.method == "POST":
        post = request.POST
        owner = request.user
        try:
            wanted = post.get("user", "")
            if wanted and wanted != str(request.user.pk):
                found = (
                    get_user_model().objects.filter(pk=wanted).first() if wanted.isdigit() else None
                )
                if found is None:
                    raise InvalidInput({"user": ["That user does not exist any more."]})
                owner = found
            issued = api_token_create(
                by=request.user,
                owner=owner,
                name=post.get("name", ""),
                days=post.get("days", ""),
                never=post.get("never") == "on",
            )
        except InvalidInput as exc:
            errors = exc.field_errors
            audit(request, action="api_token.create", result=refused(errors))
        else:
            audit_token_created(request, issued.token)
            new_key = issued.key
    admin = can_admin(request.user)
    response = render(
        request,
        "clusters/tokens.html",
        {
            "tokens": api_tokens_visible(request.user),
            "users": get_user_model().objects.order_by("username") if admin else [],
            "new_key": new_key,
            "errors": errors,
            "default_days": DEFAULT_DAYS,
            "max_days": MAX_DAYS,
            "posted": request.POST if errors else {},
        },
        status=400 if errors else 200,
    )
    add_never_cache_headers(response)  # a new key is on this page once
    return response


@role_required(VIEWER, post=VIEWER)
@require_POST
def token_revoke_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of the tokens the user may see (another user's is a 404 for non-admins)."""
    token = get_object_or_404(api_tokens_visible(request.user), pk=pk)
    changed = api_token_revoke(token=token, by=request.user)
    audit_token_revoked(request, token, changed=changed)
    if changed:
        messages.success(request, f"Token {token.prefix}… revoked: it is refused from now on.")
    else:
        messages.info(request, f"Token {token.prefix}… was revoked already.")
    return redirect("token-list")
