"""Secrets at rest: encrypted with the newest key, readable with any, never given as ciphertext."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from clusters.inventory import crypto
from clusters.models import Credential

pytestmark = pytest.mark.django_db


def raw_column(pk: int, column: str) -> str:
    with connection.cursor() as cur:
        cur.execute(f"SELECT {column} FROM clusters_credential WHERE id = %s", [pk])  # noqa: S608
        return cur.fetchone()[0]


def test_password_is_stored_encrypted_and_read_back():
    cred = Credential.objects.create(name="c", username="root", password="s3cret-password")
    assert "s3cret-password" not in raw_column(cred.pk, "password")
    assert Credential.objects.get(pk=cred.pk).password == "s3cret-password"


def test_wrong_key_raises_clear_error_never_ciphertext(settings):
    cred = Credential.objects.create(name="c", username="root", password="s3cret-password")
    settings.FIELD_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.FieldKeyError, match="none of the keys in HACENTER_FIELD_KEYS"):
        Credential.objects.get(pk=cred.pk)


def test_old_key_still_decrypts_after_a_new_key_is_added_first(settings):
    cred = Credential.objects.create(name="c", username="root", password="s3cret-password")
    settings.FIELD_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_KEYS]
    assert Credential.objects.get(pk=cred.pk).password == "s3cret-password"


def test_missing_keys_are_a_clear_configuration_error(settings):
    settings.FIELD_KEYS = []
    with pytest.raises(crypto.FieldKeyError, match="HACENTER_FIELD_KEYS is not set"):
        crypto.encrypt("x")


def test_malformed_key_is_a_clear_configuration_error(settings):
    settings.FIELD_KEYS = ["not-a-fernet-key"]
    with pytest.raises(crypto.FieldKeyError, match="malformed"):
        crypto.encrypt("x")


def test_blank_secret_stays_blank_without_a_key(settings):
    cred = Credential.objects.create(name="c", username="root", password="pw-long-enough")
    assert raw_column(cred.pk, "passphrase") == ""
