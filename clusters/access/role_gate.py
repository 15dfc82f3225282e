"""Deny by default: a page view that declares no role still cannot be used without one.

``role_required`` (pages) and ``api_view`` (API) mark the views they guard. For any other view
of the console (a new page whose author wrote ``login_required``, or nothing), this middleware
applies the safe default: reading needs the viewer role, anything else the admin role.
Django's admin (its own staff checks), the login and logout pages are left alone.
"""

from collections.abc import Callable

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from clusters.access.roles import ADMIN, VIEWER, has_role, refusal

OPEN_URL_NAMES = frozenset({"login", "logout"})
MARK = "hacenter_guarded"  # set on a view function by role_required and api_view


def guarded(view: Callable) -> Callable:
    """Mark ``view`` as checking roles itself."""
    setattr(view, MARK, True)
    return view


class RoleGateMiddleware:
    """Applies viewer-to-read, admin-to-write to every view that checks no role itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Callable, args, kwargs):
        match = request.resolver_match
        if getattr(view, MARK, False) or match is None:
            return None
        if match.url_name in OPEN_URL_NAMES or match.namespace == "admin":
            return None
        if getattr(view, "view_class", None) is not None and match.url_name is None:
            return None  # unnamed class-based redirects (e.g. the admin login redirect)
        needed = VIEWER if request.method in ("GET", "HEAD") else ADMIN
        user = request.user
        if user.is_authenticated and has_role(user, needed):
            return None
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise PermissionDenied(refusal(user, needed))
