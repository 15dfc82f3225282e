"""A model field that stores text encrypted (see clusters.inventory.crypto)."""

from typing import Any

from django.db import models

from clusters.inventory import crypto


class EncryptedTextField(models.TextField):
    """Text encrypted at rest; blank stays blank so "no secret" needs no key to read."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        owner = f"{self.model.__name__}.{self.name}"
        return crypto.decrypt(value, what=owner)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(value)
