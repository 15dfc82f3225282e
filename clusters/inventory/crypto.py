"""Encryption of secrets at rest with MultiFernet.

Keys come from HACENTER_FIELD_KEYS (comma-separated, newest first): the newest encrypts, all of them
decrypt, so a key can be rotated without downtime. A value that no key decrypts raises
`FieldKeyError`; it is never handed back as ciphertext.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class FieldKeyError(ImproperlyConfigured):
    """The configured keys cannot encrypt or decrypt a stored secret."""


def generate_key() -> str:
    """A new random Fernet key, as text for HACENTER_FIELD_KEYS."""
    return Fernet.generate_key().decode()


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise FieldKeyError(
            "HACENTER_FIELD_KEYS is not set: secrets cannot be encrypted or read. "
            "Generate a key with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'` and set it (make run does this for you)."
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise FieldKeyError(
            "HACENTER_FIELD_KEYS holds a malformed key: each key must be 32 url-safe "
            "base64-encoded bytes, as Fernet.generate_key() makes."
        ) from exc


def _fernet() -> MultiFernet:
    # Read the setting at call time, never at import (tests and rotation change it).
    return _fernet_for(tuple(k.strip() for k in settings.FIELD_KEYS if k.strip()))


def encrypt(plaintext: str) -> str:
    """Encrypt text with the newest key."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, what: str = "a secret") -> str:
    """Decrypt text encrypted by any configured key; raise FieldKeyError when none matches."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise FieldKeyError(
            f"Cannot decrypt {what}: none of the keys in HACENTER_FIELD_KEYS matches the key it "
            "was encrypted with. Restore the old key (keep it after the new one) and run "
            "`manage.py rotate_field_keys`."
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token with the newest key."""
    return _fernet().rotate(token.encode()).decode()
