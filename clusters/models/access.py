"""Who may use the console and what they did: API tokens and the audit trail."""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """A token for the REST API; only its SHA-256 is stored, the token is shown once.

    It works until `expires` (None: never, which only an admin may choose) unless `revoked`.
    Services are in clusters.access.tokens.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, related_name="api_tokens", on_delete=models.CASCADE
    )
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)  # to tell tokens apart on the tokens page
    name = models.CharField(max_length=100, blank=True)  # what it is for ("ci", "grafana")
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField(null=True, blank=True)  # None: never expires
    revoked = models.DateTimeField(null=True, blank=True)  # when it was revoked, if it was
    # Updated at most once a minute (clusters.access.tokens), so busy clients cause few writes.
    last_used = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @staticmethod
    def digest_of(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, user: models.Model, *, days: int | None = 90, name: str = "") -> str:
        """Create a token for `user` valid `days` (None: never) and return it; it cannot be
        read back later. No checks: callers that take input use tokens.api_token_create."""
        token = secrets.token_urlsafe(32)
        expires = timezone.now() + timedelta(days=days) if days is not None else None
        cls.objects.create(
            user=user, digest=cls.digest_of(token), prefix=token[:8], name=name, expires=expires
        )
        return token

    def state(self, now: datetime | None = None) -> str:
        """ "revoked", "expired" or "active"."""
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and self.expires <= (now or timezone.now()):
            return "expired"
        return "active"


class AuditEntryQuerySet(models.QuerySet):
    """Audit rows are written once: the console's code cannot update or delete them in bulk."""

    def update(self, **kwargs):
        raise AuditEntryImmutable("audit entries cannot be changed")

    def delete(self):
        raise AuditEntryImmutable("audit entries cannot be deleted")


class AuditEntryImmutable(Exception):
    """Raised on any attempt to change or remove an audit entry through the ORM."""


class AuditEntry(models.Model):
    """Who did what to which target, from where, and how it ended. Never holds secrets.

    Append-only: ``save`` refuses an existing row and the default manager refuses ``update``
    and ``delete``. Django's own bookkeeping (``SET_NULL`` when a user is deleted) goes through
    the base manager, which stays plain, so removing a user keeps their entries and name.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)  # kept when the user is deleted
    action = models.CharField(max_length=60)
    target = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    result = models.CharField(max_length=200, blank=True)

    objects = AuditEntryQuerySet.as_manager()
    # The base manager, for Django's SET_NULL when a user is deleted.
    plain = models.Manager()  # noqa: DJ012 - a manager, not a field

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit entries"
        base_manager_name = "plain"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.target}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise AuditEntryImmutable(f"audit entry {self.pk} cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEntryImmutable(f"audit entry {self.pk} cannot be deleted")
