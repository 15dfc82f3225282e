"""`manage.py rotate_field_keys`: every secret re-encrypted with the newest key, all or nothing."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from clusters.models import AuditEntry, Cluster, ClusterSecret, Credential

pytestmark = pytest.mark.django_db
OLD, NEW, STRANGER = (Fernet.generate_key().decode() for _ in range(3))


def raw(table: str, column: str) -> list[str]:
    """The stored tokens, as the database holds them (the ORM would decrypt)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} ORDER BY id")  # noqa: S608 - test constants
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def secrets_under_old_key(settings):
    settings.FIELD_KEYS = [OLD]
    Credential.objects.create(name="pw", username="root", password="root-password-1")
    Credential.objects.create(name="key", username="ops", private_key="KEY TEXT", passphrase="pp")
    cluster = Cluster.objects.create(name="pg1")
    ClusterSecret.objects.create(cluster=cluster, name="superuser", value="super-secret-1")
    return settings


def test_rotation_re_encrypts_everything_so_the_old_key_can_go(secrets_under_old_key, capsys):
    settings = secrets_under_old_key
    before = raw("clusters_credential", "password") + raw("clusters_clustersecret", "value")
    settings.FIELD_KEYS = [NEW, OLD]
    call_command("rotate_field_keys")
    out = capsys.readouterr().out
    assert "re-encrypted 4 secrets in 3 rows" in out and "may be removed" in out
    after = raw("clusters_credential", "password") + raw("clusters_clustersecret", "value")
    assert all(a != b for a, b in zip(before, after, strict=True) if b)
    settings.FIELD_KEYS = [NEW]  # the old key removed: everything still reads
    assert Credential.objects.get(name="pw").password == "root-password-1"
    key = Credential.objects.get(name="key")
    assert (key.private_key, key.passphrase) == ("KEY TEXT", "pp")
    assert ClusterSecret.objects.get().value == "super-secret-1"
    for token in raw("clusters_credential", "private_key") + raw("clusters_clustersecret", "value"):
        if token:
            Fernet(NEW.encode()).decrypt(token.encode())  # raises if not under the new key
    entry = AuditEntry.objects.get(action="field_keys.rotate")
    assert entry.result == "ok" and "super-secret-1" not in str(entry.params)


def test_a_secret_no_key_reads_stops_the_rotation_and_changes_nothing(secrets_under_old_key):
    settings = secrets_under_old_key
    settings.FIELD_KEYS = [STRANGER]
    Credential.objects.create(name="orphan", username="root", password="lost-password")
    settings.FIELD_KEYS = [NEW, OLD]
    before = raw("clusters_credential", "password") + raw("clusters_clustersecret", "value")
    with pytest.raises(CommandError, match=r"Cannot decrypt Credential\.password.*Nothing was"):
        call_command("rotate_field_keys")
    assert raw("clusters_credential", "password") + raw("clusters_clustersecret", "value") == before
    assert AuditEntry.objects.get(action="field_keys.rotate").result.startswith("failed")


def test_a_dry_run_reads_everything_and_writes_nothing(secrets_under_old_key, capsys):
    settings = secrets_under_old_key
    before = raw("clusters_credential", "password")
    settings.FIELD_KEYS = [NEW, OLD]
    call_command("rotate_field_keys", "--dry-run")
    assert "nothing was written" in capsys.readouterr().out
    assert raw("clusters_credential", "password") == before
