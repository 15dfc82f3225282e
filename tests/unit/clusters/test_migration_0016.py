"""0016: alert channel targets written in clear by an older console are encrypted in place (and
decrypted again on a rollback); tokens that never expired get 90 days."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from clusters.models import AlertChannel, ApiToken

BEFORE = [("clusters", "0015_tls")]
URL = "https://hooks.slack.com/services/T0/B0/old-plain-token"


def _raw_targets() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT target FROM clusters_alertchannel ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_upgrade_encrypts_existing_targets_and_gives_old_tokens_an_expiry(django_user_model):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    old.get_model("clusters", "AlertChannel").objects.create(kind="webhook", target=URL)
    old.get_model("clusters", "AlertChannel").objects.create(kind="email", target="a@example.com")
    user = old.get_model("auth", "User").objects.create(username="ci")
    old.get_model("clusters", "ApiToken").objects.create(user=user, digest="d" * 64, prefix="p")
    assert _raw_targets() == [URL, "a@example.com"]

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    raw = _raw_targets()
    assert all("old-plain-token" not in r and "example.com" not in r for r in raw)
    assert [c.target for c in AlertChannel.objects.order_by("pk")] == [URL, "a@example.com"]
    token = ApiToken.objects.get()
    assert token.expires is not None
    assert timedelta(days=89) < token.expires - timezone.now() <= timedelta(days=90)
    assert token.state() == "active"

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)  # a rollback leaves the targets readable by the older console
    assert _raw_targets() == [URL, "a@example.com"]
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
