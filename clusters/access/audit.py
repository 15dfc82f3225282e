"""The audit trail's entry point for pages and the API, and its safety net.

Views call ``audit(request, ...)`` with a meaningful action, target and parameters. The
middleware records every other request that could change something (POST, PUT, PATCH, DELETE)
and that no view recorded: a refusal by role or CSRF, a crash, the Django admin. So every
mutating request leaves a row, with its result, and never its body (bodies carry secrets).
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from clusters.access.client_address import client_address
from clusters.models import AuditEntry

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_MARK = "_hacenter_audited"


def audit_record(
    *,
    user,
    action: str,
    target: str = "",
    params: dict | None = None,
    source_address: str | None = None,
    result: str = "ok",
) -> AuditEntry:
    """Record a mutating action. `params` must never contain secrets: callers pass ids and names,
    and any key that names a secret is masked here as a second line of defence."""
    return AuditEntry.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        username=getattr(user, "username", "") or "",
        action=action[:60],
        target=target[:200],
        params=_without_secrets(params or {}),
        source_address=source_address,
        result=result[:200],
    )


SECRET_PARAM_WORDS = ("password", "passphrase", "private_key", "secret", "token")


def _without_secrets(params: dict) -> dict:
    return {
        key: "[hidden]"
        if any(word in str(key).lower() for word in SECRET_PARAM_WORDS)
        else (_without_secrets(value) if isinstance(value, dict) else value)
        for key, value in params.items()
    }


def source_address(request: HttpRequest) -> str | None:
    """The client's address (behind a trusted proxy, the one it forwarded: see
    clusters.access.client_address); None when it is not an IP address (a Unix socket), which
    the audit column could not hold."""
    return client_address(request)


def audit(
    request: HttpRequest,
    *,
    action: str,
    target: str = "",
    params: dict | None = None,
    result: str = "ok",
    user=None,
) -> AuditEntry:
    """Record what this request did (``user`` defaults to the request's user)."""
    mark_audited(request)
    return audit_record(
        user=user if user is not None else getattr(request, "user", None),
        action=action,
        target=target,
        params=params,
        source_address=source_address(request),
        result=result,
    )


def mark_audited(request: HttpRequest) -> None:
    """Say that a service has recorded this request already (so the middleware does not)."""
    setattr(request, _MARK, True)


def refused(field_errors: dict[str, list[str]]) -> str:
    """A result naming the fields that were refused (names only: a value may be a secret)."""
    return "refused: invalid " + ", ".join(sorted(field_errors)) if field_errors else "refused"


class AuditMiddleware:
    """Records each unsafe request that its view did not audit itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in SAFE_METHODS:
            return self.get_response(request)
        # Who it was before the view ran: logout ends the session, the API sets its own user.
        before = getattr(request, "user", None)
        if before is not None and not before.is_authenticated:
            before = None
        response = self.get_response(request)
        if not getattr(request, _MARK, False):
            after = getattr(request, "user", None)
            user = after if after is not None and after.is_authenticated else before
            match = getattr(request, "resolver_match", None)
            name = match.url_name if match and match.url_name else "unknown"
            status = response.status_code
            audit(
                request,
                user=user,
                action=f"{request.method.lower()} {name}"[:60],
                target=request.path[:200],
                params={"status": status},
                result="ok" if status < 400 else f"refused: HTTP {status}",
            )
        return response
