"""`manage.py import_inventory FILE`: create the clusters of an export (all or nothing)."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from clusters.access.audit import audit_record
from clusters.inventory.export_import import inventory_import
from clusters.inventory.services import InvalidInput


class Command(BaseCommand):
    help = (
        "Create the clusters of an inventory export. Its credentials must exist here already "
        "(exports hold no secrets). Nothing is created unless everything is valid."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="an export_inventory file ('-' for standard input)")

    def handle(self, *args, file: str, **options) -> None:
        try:
            if file == "-":
                data = json.load(sys.stdin)
            else:
                with open(file, encoding="utf-8") as f:
                    data = json.load(f)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from None
        try:
            notices: list[str] = []
            created = inventory_import(data=data, notices=notices)
        except InvalidInput as exc:
            lines = [f"  {key}: {' '.join(msgs)}" for key, msgs in sorted(exc.field_errors.items())]
            audit_record(
                user=None,
                action="inventory.import",
                target=file,
                result="refused: invalid " + ", ".join(sorted(exc.field_errors))[:180],
            )
            raise CommandError("Nothing was imported:\n" + "\n".join(lines)) from None
        names = [c.name for c in created]
        audit_record(user=None, action="inventory.import", target=file, params={"clusters": names})
        self.stdout.write(f"imported {len(names)} cluster(s): {', '.join(names) or 'none'}")
        for notice in notices:
            self.stdout.write(f"  left out: {notice}")
