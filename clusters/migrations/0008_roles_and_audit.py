"""The three roles as Django groups; the audit trail's append-only managers."""

import django.db.models.manager
from django.db import migrations

ROLES = ("viewer", "operator", "admin")  # clusters.roles.ROLES at the time of writing


def create_groups(apps, schema_editor) -> None:
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("clusters", "0007_defaults_profile"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="auditentry",
            options={
                "base_manager_name": "plain",
                "ordering": ["-at"],
                "verbose_name_plural": "audit entries",
            },
        ),
        migrations.AlterModelManagers(
            name="auditentry",
            managers=[
                ("objects", django.db.models.manager.Manager()),
                ("plain", django.db.models.manager.Manager()),
            ],
        ),
        # Groups are kept on reversal: users may have been put in them since.
        migrations.RunPython(create_groups, migrations.RunPython.noop),
    ]
