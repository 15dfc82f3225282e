"""Re-encrypt every stored secret with the newest field key (``manage.py rotate_field_keys``).

Every model field that is an ``EncryptedTextField`` is found by looking, not by a list, so a
secret added later is rotated too. All or nothing: a value no configured key can read stops
the rotation, names the field, and leaves every row as it was.
"""

from dataclasses import dataclass

from cryptography.fernet import Fernet
from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction

from clusters.inventory.fields import EncryptedTextField


@dataclass(frozen=True)
class RotationResult:
    """How many secrets were re-encrypted, in how many rows, per model."""

    values: int
    rows: int
    per_model: dict[str, int]


def encrypted_fields() -> dict[type[models.Model], list[str]]:
    """Every model with encrypted fields, and their names."""
    found = {}
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        if names:
            found[model] = names
    return found


def field_keys_rotate(*, dry_run: bool = False) -> RotationResult:
    """Decrypt each secret with whichever key reads it and store it again encrypted with the
    newest key (the first of HACENTER_FIELD_KEYS). ``dry_run`` reads everything, writes nothing.
    Raises ``crypto.FieldKeyError`` naming the field when a value cannot be read."""
    values = rows = 0
    per_model: dict[str, int] = {}
    with transaction.atomic():
        for model, names in encrypted_fields().items():
            manager = model._base_manager
            count = 0
            # Row locks: a job saving a credential meanwhile waits instead of being overwritten.
            # No .iterator(): a server-side cursor left open by a failed decryption would
            # abort the surrounding transaction when closed. Secrets are hundreds of rows.
            for obj in manager.select_for_update().only("pk", *names).order_by("pk"):
                present = {n: getattr(obj, n) for n in names if getattr(obj, n)}
                if not present:
                    continue
                if not dry_run:
                    # update() runs get_prep_value: encrypts with the newest key.
                    manager.filter(pk=obj.pk).update(**present)
                values += len(present)
                count += 1
            rows += count
            per_model[model.__name__] = count
        if not dry_run:
            _check_newest_key_reads_everything()
    return RotationResult(values=values, rows=rows, per_model=per_model)


def _check_newest_key_reads_everything() -> None:
    """After rotation the newest key alone must read every stored token (so the old keys can
    go); anything else is a bug, and raising here rolls the rotation back."""
    newest = Fernet(next(k.strip() for k in settings.FIELD_KEYS if k.strip()).encode())
    # The raw columns: the ORM would hand back plaintext (from_db_value decrypts).
    with connection.cursor() as cursor:
        for model, names in encrypted_fields().items():
            columns = ", ".join(
                connection.ops.quote_name(model._meta.get_field(n).column) for n in names
            )
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT {columns} FROM {table}")  # noqa: S608 - names from models
            for row in cursor.fetchall():
                for token in row:
                    if token:
                        newest.decrypt(token.encode())
