"""The login page, rate limited, with every attempt in the audit trail.

Failed attempts are counted from the audit trail itself (per user name and per source
address, within a window), so every web process shares the count without a cache, and the
counting cannot drift from what the audit page shows.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from clusters.access.audit import audit, source_address
from clusters.models import AuditEntry

FAILED, REFUSED, OK = "login.failed", "login.refused", "login"


def _target(username: str) -> str:
    # Only a user name that exists is written down: a password typed into the name field by
    # mistake must not land in the audit trail.
    exists = get_user_model().objects.filter(username=username).exists()
    return f"user {username}" if exists else "unknown user"


def login_blocked(*, username: str, address: str | None) -> bool:
    """Whether recent failures for this user name or this address reach their limit."""
    since = timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_S)
    recent = AuditEntry.objects.filter(action=FAILED, at__gte=since)
    target = _target(username)
    if target != "unknown user":
        # Failures before the user's last successful login do not count against them.
        last_ok = AuditEntry.objects.filter(action=OK, target=target).values_list("at").first()
        mine = recent.filter(target=target, at__gt=last_ok[0]) if last_ok else recent
        if mine.filter(target=target).count() >= settings.LOGIN_MAX_FAILURES_PER_USER:
            return True
    return (
        address is not None
        and recent.filter(source_address=address).count() >= settings.LOGIN_MAX_FAILURES_PER_ADDRESS
    )


class RateLimitedLoginView(LoginView):
    """Django's login view, refusing with HTTP 429 after too many recent failures."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        username = str(request.POST.get("username", ""))[:150]
        if login_blocked(username=username, address=source_address(request)):
            minutes = max(1, settings.LOGIN_FAILURE_WINDOW_S // 60)
            audit(
                request,
                action=REFUSED,
                target=_target(username),
                result="refused: too many failures",
            )
            # An unbound form: a bound one would authenticate while rendering its errors.
            form = self.get_form_class()(request=request)
            context = self.get_context_data(
                form=form,
                blocked=f"Too many failed logins. Wait {minutes} minutes, then try again.",
            )
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)  # logs the user in
        audit(self.request, action=OK, target=f"user {form.get_user().username}")
        return response

    def form_invalid(self, form) -> HttpResponse:
        username = str(self.request.POST.get("username", ""))[:150]
        audit(
            self.request, action=FAILED, target=_target(username), result="refused: wrong password"
        )
        return super().form_invalid(form)
