"""`manage.py rotate_field_keys`: re-encrypt every stored secret with the newest field key.

Put the new key first in HACENTER_FIELD_KEYS, keep the old ones after it, run this, then the
old keys may be removed.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from clusters.access.audit import audit_record
from clusters.inventory.crypto import FieldKeyError
from clusters.inventory.keyrotation import field_keys_rotate


class Command(BaseCommand):
    help = "Re-encrypt every secret with the newest key in HACENTER_FIELD_KEYS (all or nothing)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="read every secret with the keys; write nothing"
        )

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        keys = [k for k in settings.FIELD_KEYS if k.strip()]
        try:
            result = field_keys_rotate(dry_run=dry_run)
        except FieldKeyError as exc:
            audit_record(user=None, action="field_keys.rotate", result=f"failed: {exc}"[:200])
            raise CommandError(f"{exc} Nothing was changed.") from None
        if dry_run:
            self.stdout.write(
                f"dry run: every one of {result.values} secrets in {result.rows} rows is "
                f"readable with the {len(keys)} configured key(s); nothing was written."
            )
            return
        audit_record(
            user=None,
            action="field_keys.rotate",
            params={"rows": result.per_model, "keys": len(keys)},
        )
        detail = ", ".join(f"{name} {n}" for name, n in result.per_model.items() if n)
        self.stdout.write(
            f"re-encrypted {result.values} secrets in {result.rows} rows ({detail or 'none'}) "
            "with the newest key. The newest key alone now reads them all: the older keys "
            "may be removed from HACENTER_FIELD_KEYS."
        )
