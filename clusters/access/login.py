"""The login page, rate limited, with every attempt in the audit trail.

Failed attempts are counted from the audit trail itself (per user and per client address,
within a window), so every web process shares the count without a cache, and the counting
cannot drift from what the audit page shows.

Two limits, two answers:
- A *user* with too many recent failures is refused (HTTP 429), even with the right password:
  that is what stops guessing one account's password.
- An *address* with too many recent failures is slowed down, not refused: every login from it
  waits ``LOGIN_SLOWDOWN_S`` before the password is checked, and a right password still logs in.
  Refusing would let anyone behind a shared address (a NAT, an office proxy) lock every user
  out with 20 wrong guesses under random names.

Names are counted as authentication sees them: stripped and NFKC-normalised exactly as the
login form does, so " admin", "admin " and its full-width spelling are all admin's failures.
"""

import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UsernameField
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from clusters.access.audit import audit, source_address
from clusters.models import AuditEntry

FAILED, REFUSED, OK = "login.failed", "login.refused", "login"
USERNAME_MAX = 150  # AbstractUser.username's max_length, which the login form enforces
# Tests replace it to see the pause without waiting.
pause = time.sleep


def login_name(raw: object) -> str:
    """The user name exactly as authentication receives it: AuthenticationForm's UsernameField
    strips it (CharField) and NFKC-normalises it (as AbstractBaseUser.normalize_username)."""
    return UsernameField(max_length=USERNAME_MAX).to_python(str(raw or "")) or ""


def _name_key(name: str) -> str:
    # A keyed digest of the normalised name: failures under a name that is no user's can be
    # counted without writing the name down (it may be a password typed in the wrong field).
    return salted_hmac("hacenter.login.name", name).hexdigest()[:32]


def _target(name: str) -> str:
    # Only a user name that exists is written down, as the model stores it.
    exists = get_user_model()._default_manager.filter(username=name).exists()
    return f"user {name}" if exists else "unknown user"


def _recent_failures():
    since = timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_S)
    return AuditEntry.objects.filter(action=FAILED, at__gte=since)


def user_locked(name: str) -> bool:
    """Whether recent failures for this (normalised) name reach the per-user limit. Failures
    before the user's last successful login do not count against them."""
    target = _target(name)
    recent = _recent_failures()
    if target == "unknown user":
        mine = recent.filter(params__name_key=_name_key(name))
    else:
        mine = recent.filter(target=target)
        last_ok = AuditEntry.objects.filter(action=OK, target=target).values_list("at").first()
        if last_ok:
            mine = mine.filter(at__gt=last_ok[0])
    return mine.count() >= settings.LOGIN_MAX_FAILURES_PER_USER


def address_limited(address: str | None) -> bool:
    """Whether recent failures from this client address reach the per-address limit."""
    return (
        address is not None
        and _recent_failures().filter(source_address=address).count()
        >= settings.LOGIN_MAX_FAILURES_PER_ADDRESS
    )


class RateLimitedLoginView(LoginView):
    """Django's login view: HTTP 429 for a user with too many recent failures, a pause for an
    address with too many."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        name = login_name(request.POST.get("username", ""))
        self.login_target = _target(name)
        self.login_name_key = _name_key(name)
        if user_locked(name):
            minutes = max(1, settings.LOGIN_FAILURE_WINDOW_S // 60)
            audit(
                request,
                action=REFUSED,
                target=self.login_target,
                params={"name_key": self.login_name_key},
                result="refused: too many failures",
            )
            # An unbound form: a bound one would authenticate while rendering its errors.
            form = self.get_form_class()(request=request)
            context = self.get_context_data(
                form=form,
                blocked=f"Too many failed logins. Wait {minutes} minutes, then try again.",
            )
            return self.render_to_response(context, status=429)
        self.slowed = address_limited(source_address(request))
        if self.slowed:
            pause(settings.LOGIN_SLOWDOWN_S)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)  # logs the user in
        params = {"slowed": True} if getattr(self, "slowed", False) else None
        audit(self.request, action=OK, target=f"user {form.get_user().username}", params=params)
        return response

    def form_invalid(self, form) -> HttpResponse:
        result = "refused: wrong password"
        if getattr(self, "slowed", False):
            result += " (address slowed down: too many failures)"
        audit(
            self.request,
            action=FAILED,
            target=self.login_target,
            params={"name_key": self.login_name_key},
            result=result,
        )
        return super().form_invalid(form)
