"""Fixtures shared by the unit tests: a credential and scanned host keys for the lab's addresses."""

import pytest

from clusters.models import Credential, ScannedHostKey

FP = "SHA256:" + "A" * 43


@pytest.fixture
def cred():
    return Credential.objects.create(name="lab", username="root", password="pw-123456")


@pytest.fixture
def scanned():
    for last in (10, 11, 12):
        ScannedHostKey.objects.create(
            address=f"198.18.0.{last}",
            port=22,
            key_type="ssh-ed25519",
            base64="AAAAC3NzaC1lZDI1NTE5AAAAIExample",
            fingerprint=FP,
        )
