"""Key handling: fingerprints and private keys; no network (keys come from ssh-keygen)."""

import subprocess
from pathlib import Path

import paramiko
import pytest

from clusters.inventory import ssh_keys


def keygen(tmp_path: Path, name: str, *args: str, passphrase: str = "") -> Path:
    path = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-N", passphrase, "-C", "test", "-f", str(path), *args], check=True
    )
    return path


def keygen_fingerprint(pub: Path) -> str:
    # "256 SHA256:abc... test (ED25519)"
    return subprocess.run(
        ["ssh-keygen", "-lf", str(pub)], check=True, capture_output=True, text=True
    ).stdout.split()[1]


@pytest.mark.parametrize(
    "args",
    [("-t", "ed25519"), ("-t", "ecdsa", "-b", "384"), ("-t", "rsa", "-b", "2048")],
    ids=["ed25519", "ecdsa", "rsa"],
)
def test_fingerprint_matches_ssh_keygen(tmp_path: Path, args: tuple[str, ...]) -> None:
    key = keygen(tmp_path, "k", *args)
    key_type, blob = key.with_suffix(".pub").read_text().split()[:2]
    expected = keygen_fingerprint(key.with_suffix(".pub"))

    assert ssh_keys.fingerprint_of(key_type, blob) == expected
    pkey = ssh_keys.parse_private_key(key.read_text())
    host_key = ssh_keys.HostKey.from_pkey(pkey)
    assert host_key == ssh_keys.HostKey(key_type, blob, expected)
    assert ssh_keys.public_key_line(pkey) == f"{key_type} {blob}"
    assert host_key.to_pkey() == paramiko.PKey.from_type_string(key_type, pkey.asbytes())


def test_fingerprint_refuses_a_blob_of_another_type(tmp_path: Path) -> None:
    blob = keygen(tmp_path, "k", "-t", "ed25519").with_suffix(".pub").read_text().split()[1]
    with pytest.raises(ValueError, match="not of type ssh-rsa"):
        ssh_keys.fingerprint_of("ssh-rsa", blob)
    with pytest.raises(ValueError, match="base64"):
        ssh_keys.fingerprint_of("ssh-ed25519", "not base64!")


@pytest.mark.parametrize(
    ("args", "header", "cls"),
    [
        (("-t", "ed25519"), "OPENSSH PRIVATE KEY", paramiko.Ed25519Key),
        (("-t", "rsa", "-b", "2048", "-m", "PEM"), "RSA PRIVATE KEY", paramiko.RSAKey),
        (("-t", "rsa", "-b", "2048", "-m", "PKCS8"), "BEGIN PRIVATE KEY", paramiko.RSAKey),
        (("-t", "ecdsa"), "OPENSSH PRIVATE KEY", paramiko.ECDSAKey),
        (("-t", "ecdsa", "-m", "PEM"), "EC PRIVATE KEY", paramiko.ECDSAKey),
    ],
    ids=["openssh-ed25519", "pem-rsa", "pkcs8-rsa", "openssh-ecdsa", "pem-ecdsa"],
)
def test_parse_private_key_accepts_common_formats(
    tmp_path: Path, args: tuple[str, ...], header: str, cls: type
) -> None:
    key = keygen(tmp_path, "k", *args)
    text = key.read_text()
    assert header in text

    pkey = ssh_keys.parse_private_key(text)

    assert isinstance(pkey, cls)
    assert pkey.can_sign()
    assert ssh_keys.public_key_line(pkey) == " ".join(
        key.with_suffix(".pub").read_text().split()[:2]
    )
    # Pasted from a Windows form with CRLF and stray blank lines: still fine.
    assert ssh_keys.parse_private_key("\r\n" + text.replace("\n", "\r\n") + "\r\n") == pkey


@pytest.mark.parametrize("args", [("-t", "ed25519"), ("-t", "rsa", "-b", "2048", "-m", "PEM")])
def test_encrypted_key_needs_the_right_passphrase(tmp_path: Path, args: tuple[str, ...]) -> None:
    text = keygen(tmp_path, "k", *args, passphrase="correct horse").read_text()

    with pytest.raises(ssh_keys.InvalidPrivateKey, match="encrypted key needs a passphrase"):
        ssh_keys.parse_private_key(text)
    with pytest.raises(ssh_keys.InvalidPrivateKey, match="wrong passphrase"):
        ssh_keys.parse_private_key(text, "battery staple")
    assert ssh_keys.parse_private_key(text, "correct horse").can_sign()


def test_passphrase_for_an_unencrypted_key_is_ignored(tmp_path: Path) -> None:
    text = keygen(tmp_path, "k", "-t", "ed25519").read_text()
    assert ssh_keys.parse_private_key(text, "unneeded").can_sign()


def test_parse_private_key_refuses_garbage_and_public_keys(tmp_path: Path) -> None:
    key = keygen(tmp_path, "k", "-t", "ed25519")
    with pytest.raises(
        ssh_keys.InvalidPrivateKey, match=r"not a private key \(OpenSSH or PEM expected\)"
    ):
        ssh_keys.parse_private_key("hello world")
    with pytest.raises(ssh_keys.InvalidPrivateKey, match="empty key"):
        ssh_keys.parse_private_key("  \n")
    with pytest.raises(ssh_keys.InvalidPrivateKey, match="this is a public key"):
        ssh_keys.parse_private_key(key.with_suffix(".pub").read_text())
    truncated = "\n".join([*key.read_text().splitlines()[:2], "-----END OPENSSH PRIVATE KEY-----"])
    with pytest.raises(ssh_keys.InvalidPrivateKey, match="damaged or unreadable private key"):
        ssh_keys.parse_private_key(truncated)


def test_parse_private_key_refuses_badly_decoded_bytes(tmp_path: Path) -> None:
    raw = keygen(tmp_path, "k", "-t", "ed25519").read_bytes()
    # A binary file (or UTF-16 export) decoded as UTF-8 with replacement characters.
    mangled = (b"\xff\xfe" + raw.replace(b"A", b"\xe9", 3)).decode("utf-8", errors="replace")
    with pytest.raises(ssh_keys.InvalidPrivateKey, match="non-ASCII"):
        ssh_keys.parse_private_key(mangled)
    with pytest.raises(ssh_keys.InvalidPrivateKey, match="non-ASCII"):
        ssh_keys.parse_private_key(raw.decode("utf-16", errors="replace"))
