"""`manage.py export_inventory [-o FILE]`: the inventory as JSON, without secrets."""

import json

from django.core.management.base import BaseCommand

from clusters.access.audit import audit_record
from clusters.inventory.export_import import inventory_export


class Command(BaseCommand):
    help = "Print (or write to FILE) credentials by name and clusters with nodes; no secrets."

    def add_arguments(self, parser) -> None:
        parser.add_argument("-o", "--output", help="write here instead of standard output")

    def handle(self, *args, output: str | None = None, **options) -> None:
        text = json.dumps(inventory_export(), indent=2) + "\n"
        if output:
            with open(output, "w") as out:
                out.write(text)
            self.stderr.write(f"wrote {output}")
        else:
            self.stdout.write(text, ending="")
        audit_record(user=None, action="inventory.export", target=output or "stdout")
