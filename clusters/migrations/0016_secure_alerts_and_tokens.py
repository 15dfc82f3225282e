"""Alert channel targets encrypted at rest (a webhook URL carries its receiver's token), the
target's own answer kept apart from the delivery error (admins only), and API tokens that
expire, can be revoked and have a name.

The target column becomes plain text first, then each row is encrypted in place, then the
field becomes an EncryptedTextField (the same column type: no second rewrite). Tokens issued
before this migration never expired: they now expire 90 days from the migration, which the
tokens page shows, so no automation breaks today.
"""

from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone

import clusters.inventory.fields
from clusters.inventory import crypto

EXISTING_TOKEN_DAYS = 90


def encrypt_targets(apps, schema_editor) -> None:
    AlertChannel = apps.get_model("clusters", "AlertChannel")
    for pk, target in AlertChannel.objects.values_list("pk", "target"):
        if target:
            AlertChannel.objects.filter(pk=pk).update(target=crypto.encrypt(target))


def decrypt_targets(apps, schema_editor) -> None:
    AlertChannel = apps.get_model("clusters", "AlertChannel")
    for pk, target in AlertChannel.objects.values_list("pk", "target"):
        if target:
            plain = crypto.decrypt(target, what=f"alert channel {pk}'s target")
            AlertChannel.objects.filter(pk=pk).update(target=plain)


def expire_old_tokens(apps, schema_editor) -> None:
    ApiToken = apps.get_model("clusters", "ApiToken")
    ApiToken.objects.filter(expires__isnull=True).update(
        expires=timezone.now() + timedelta(days=EXISTING_TOKEN_DAYS)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0015_tls"),
    ]

    operations = [
        migrations.AlterField(
            model_name="alertchannel",
            name="target",
            field=models.TextField(),
        ),
        migrations.RunPython(encrypt_targets, decrypt_targets),
        migrations.AlterField(
            model_name="alertchannel",
            name="target",
            field=clusters.inventory.fields.EncryptedTextField(),
        ),
        migrations.AddField(
            model_name="alertdelivery",
            name="detail",
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="name",
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="revoked",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(expire_old_tokens, migrations.RunPython.noop),
    ]
