"""REST endpoints for API tokens: list, create (the key shown once), revoke.

GET  /api/v1/tokens/                 every token for an admin, else the caller's own
POST /api/v1/tokens/                 {name, days | never, user} -> 201 {..., key}
DELETE /api/v1/tokens/{id}/          revoke (also POST /api/v1/tokens/{id}/revoke/)
"""

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache
from ninja import Router, Status
from ninja.decorators import decorate_view

from clusters.access.audit import audit, refused
from clusters.access.tokens import (
    api_token_create,
    api_token_revoke,
    api_tokens_visible,
)
from clusters.inventory.services import InvalidInput
from clusters.models import ApiToken
from clusters.web.api import schemas as s
from clusters.web.api.openapi import body_of, errors
from clusters.web.api.plumbing import VIEWER_AUTH, ApiError, validated_body

router = Router(tags=["tokens"])


def token_summary(token: ApiToken) -> dict:
    """A token as the API and pages describe it: never its key or digest."""
    return {
        "id": token.pk,
        "prefix": token.prefix,
        "name": token.name,
        "user": token.user.username,
        "created": token.created.isoformat(),
        "expires": token.expires.isoformat() if token.expires else None,
        "last_used": token.last_used.isoformat() if token.last_used else None,
        "revoked": token.revoked.isoformat() if token.revoked else None,
        "state": token.state(),
    }


def token_audit_target(token: ApiToken) -> str:
    return f"API token {token.prefix}… of {token.user.username}"


def audit_token_created(request: HttpRequest, token: ApiToken) -> None:
    """The audit entry of a new token (never its key), for the API and the page alike."""
    expires = token.expires.isoformat() if token.expires else "never"
    audit(
        request,
        action="api_token.create",
        target=token_audit_target(token),
        params={"owner": token.user.username, "name": token.name, "expires": expires},
    )


def audit_token_revoked(request: HttpRequest, token: ApiToken, *, changed: bool) -> None:
    audit(
        request,
        action="api_token.revoke",
        target=token_audit_target(token),
        result="ok" if changed else "ok: already revoked",
    )


@router.get(
    "/tokens/",
    auth=VIEWER_AUTH,
    response={200: list[s.TokenOut], **errors(401, 403)},
    url_name="api-tokens",
)
@decorate_view(never_cache)  # one URL with the POST, whose answer holds the key
def tokens(request: HttpRequest):
    """The tokens the caller may see: every token for an admin, else the caller's own."""
    return [token_summary(t) for t in api_tokens_visible(request.user)]


@router.post(
    "/tokens/",
    auth=VIEWER_AUTH,
    response={201: s.NewTokenOut, **errors(400, 401, 403, 413)},
    openapi_extra=body_of(s.TokenIn),
)
@decorate_view(never_cache)  # the answer holds the key
def token_create(request: HttpRequest):
    """Create a token (for another user: admins); its key is in this answer only."""
    try:
        body = validated_body(request, s.TokenIn)
        owner = request.user
        if body.user not in (None, "", request.user.username):
            owner = get_user_model().objects.filter(username=body.user).first()
            if owner is None:
                raise InvalidInput({"user": ["No user has this name."]})
        issued = api_token_create(
            by=request.user, owner=owner, name=body.name, days=body.days, never=body.never
        )
    except InvalidInput as exc:
        audit(request, action="api_token.create", result=refused(exc.field_errors))
        raise ApiError(400, "The token was not created.", exc.field_errors) from None
    token = issued.token
    audit_token_created(request, token)
    return Status(201, token_summary(token) | {"key": issued.key})


def _revoke(request: HttpRequest, pk: int) -> dict:
    """Revoke a token; a token the caller may not see is 404 (its existence is not told)."""
    token = get_object_or_404(api_tokens_visible(request.user), pk=pk)
    try:
        changed = api_token_revoke(token=token, by=request.user)
    except InvalidInput as exc:
        audit(request, action="api_token.revoke", result=refused(exc.field_errors))
        raise ApiError(403, " ".join(m for ms in exc.field_errors.values() for m in ms)) from None
    audit_token_revoked(request, token, changed=changed)
    return token_summary(token)


# Revocation answers on both URLs to DELETE and POST, as it did before the port (clients that
# cannot send DELETE use POST …/revoke/); one operation per method keeps operation ids unique.
REVOKED = {200: s.TokenOut, **errors(401, 403, 404)}


@router.delete("/tokens/{int:pk}/", auth=VIEWER_AUTH, response=REVOKED, url_name="api-token")
def token_revoke(request: HttpRequest, pk: int):
    """Revoke a token."""
    return _revoke(request, pk)


@router.post("/tokens/{int:pk}/", auth=VIEWER_AUTH, response=REVOKED, url_name="api-token")
def token_revoke_by_post(request: HttpRequest, pk: int):
    """Revoke a token (the same as DELETE)."""
    return _revoke(request, pk)


@router.post(
    "/tokens/{int:pk}/revoke/", auth=VIEWER_AUTH, response=REVOKED, url_name="api-token-revoke"
)
def token_revoke_post(request: HttpRequest, pk: int):
    """Revoke a token (the same as DELETE /tokens/{id}/, for clients that cannot send one)."""
    return _revoke(request, pk)


@router.delete(
    "/tokens/{int:pk}/revoke/", auth=VIEWER_AUTH, response=REVOKED, url_name="api-token-revoke"
)
def token_revoke_delete(request: HttpRequest, pk: int):
    """Revoke a token (the same as DELETE /tokens/{id}/)."""
    return _revoke(request, pk)
