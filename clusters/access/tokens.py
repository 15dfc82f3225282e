"""API tokens: create with an expiry, list, revoke, and check one on each API request.

Rules:
- A token expires after `days` (default 90, at most 365). "Never" only when an admin asks for
  it explicitly (`never=True`); nobody gets a token that never expires by accident.
- Anyone with a role creates, lists and revokes their own tokens; an admin those of every user
  and may create one for another user.
- The key is returned once by `api_token_create` and never stored (only its SHA-256).
- An expired or revoked token is refused with a sentence that says which and since when.
- `last_used` is written at most once a minute per token: a busy client costs few writes.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from clusters.access.roles import can_admin, role_of
from clusters.inventory.services import InvalidInput
from clusters.models import ApiToken

DEFAULT_DAYS = 90
MAX_DAYS = 365
NAME_MAX_CHARS = 100
LAST_USED_EVERY_S = 60


class TokenRefused(Exception):
    """The key names no token, or one that expired or was revoked; the message says which."""


@dataclass(frozen=True)
class IssuedToken:
    """A new token's row and its key, which exists only here (shown to its owner once)."""

    token: ApiToken
    key: str


def _days(value: object) -> int:
    # bool is an int: `true` in JSON is not a number of days.
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DAYS:
        raise InvalidInput(
            {"days": [f"Give the days the token lasts as a whole number from 1 to {MAX_DAYS}."]}
        )
    return value


def _name(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput({"name": ["The name must be text."]})
    name = value.strip()
    if len(name) > NAME_MAX_CHARS or any(not c.isprintable() for c in name):
        raise InvalidInput(
            {"name": [f"Use at most {NAME_MAX_CHARS} printable characters, on one line."]}
        )
    return name


def api_token_create(
    *, by, owner=None, name: object = "", days: object = DEFAULT_DAYS, never: bool = False
) -> IssuedToken:
    """A new token for `owner` (default: `by`) lasting `days`, or forever when an admin sets
    `never`. Raises InvalidInput keyed by field; creates nothing then."""
    owner = owner or by
    errors: dict[str, list[str]] = {}
    if owner.pk != by.pk and not can_admin(by):
        errors["user"] = ["Only an admin creates tokens for another user."]
    elif role_of(owner) is None:
        errors["user"] = [f"{owner.username} has no role: a token would be refused anyway."]
    try:
        clean_name = _name(name)
    except InvalidInput as exc:
        errors.update(exc.field_errors)
    expiry_days: int | None = None
    if never is True:
        if not can_admin(by):
            errors["never"] = ["Only an admin may create a token that never expires."]
    elif never not in (False, None):
        errors["never"] = ["Say true or false."]
    else:
        try:
            expiry_days = _days(DEFAULT_DAYS if days in (None, "") else days)
        except InvalidInput as exc:
            errors.update(exc.field_errors)
    if errors:
        raise InvalidInput(errors)
    key = ApiToken.issue(owner, days=expiry_days, name=clean_name)
    return IssuedToken(token=ApiToken.objects.get(digest=ApiToken.digest_of(key)), key=key)


def api_tokens_visible(user) -> QuerySet[ApiToken]:
    """The tokens `user` may see and revoke: every token for an admin, else their own."""
    tokens = ApiToken.objects.select_related("user").order_by("-created", "-pk")
    return tokens if can_admin(user) else tokens.filter(user=user)


def api_token_revoke(*, token: ApiToken, by) -> bool:
    """Revoke `token` now; False when it was revoked already (nothing changes). A user may
    revoke only their own tokens unless an admin; the caller finds it through
    `api_tokens_visible`, so another user's token is a 404, not a refusal."""
    if token.user_id != by.pk and not can_admin(by):
        raise InvalidInput({"token": ["You may revoke only your own tokens."]})
    # Conditional: two revocations at once leave the first time standing.
    changed = ApiToken.objects.filter(pk=token.pk, revoked__isnull=True).update(
        revoked=timezone.now()
    )
    token.refresh_from_db(fields=["revoked"])
    return bool(changed)


def api_token_authenticate(key: str) -> ApiToken:
    """The active token for `key`, its user loaded; raises TokenRefused with the reason."""
    key = key.strip()
    found = (
        ApiToken.objects.select_related("user")
        .filter(digest=ApiToken.digest_of(key), user__is_active=True)
        .first()
        if key
        else None
    )
    if found is None:
        raise TokenRefused("Invalid API token, or its user is disabled.")
    now = timezone.now()
    state = found.state(now)
    if state == "revoked":
        raise TokenRefused(
            f"This API token ({found.prefix}…) was revoked on {found.revoked:%Y-%m-%d %H:%M} "
            "UTC; create a new one on the tokens page."
        )
    if state == "expired":
        raise TokenRefused(
            f"This API token ({found.prefix}…) expired on {found.expires:%Y-%m-%d %H:%M} UTC; "
            "create a new one on the tokens page."
        )
    token_used(found, now=now)
    return found


def token_used(token: ApiToken, *, now=None) -> None:
    """Record a use, at most once a minute: the conditional UPDATE writes nothing when
    another request recorded one within the minute, and no statement is sent at all when the
    row in hand says so already."""
    now = now or timezone.now()
    since = now - timedelta(seconds=LAST_USED_EVERY_S)
    if token.last_used is not None and token.last_used > since:
        return
    ApiToken.objects.filter(
        Q(last_used__isnull=True) | Q(last_used__lte=since), pk=token.pk
    ).update(last_used=now)


def active_tokens() -> QuerySet[ApiToken]:
    """Tokens neither revoked nor expired, for filters that check many at once (metrics)."""
    now = timezone.now()
    return ApiToken.objects.filter(revoked__isnull=True).filter(
        Q(expires__isnull=True) | Q(expires__gt=now)
    )
