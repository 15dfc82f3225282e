"""SSH key material: host-key fingerprints as OpenSSH prints them, pinned host keys, and
private keys as admins paste or upload them (OpenSSH or PEM, with or without a passphrase).
Pure functions of the key text; `jobs.ssh` uses them to connect."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from dataclasses import dataclass

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


class InvalidPrivateKey(ValueError):
    """A pasted private key we cannot use; the message says why."""


def fingerprint_of(key_type: str, base64_blob: str) -> str:
    """SHA256 fingerprint exactly as `ssh-keygen -lf` prints it; checks the blob is a key_type."""
    try:
        blob = base64.b64decode(base64_blob.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("host key is not valid base64") from exc
    # The blob starts with its own type as an SSH string: a type/blob pair must agree.
    if blob[4 : 4 + int.from_bytes(blob[:4], "big")] != key_type.encode():
        raise ValueError(f"host key blob is not of type {key_type}")
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class HostKey:
    """A server's public host key, as pinned on the Node once the admin confirmed it."""

    key_type: str
    base64: str
    fingerprint: str

    @classmethod
    def from_pkey(cls, pkey: paramiko.PKey) -> HostKey:
        blob = pkey.get_base64()
        return cls(pkey.get_name(), blob, fingerprint_of(pkey.get_name(), blob))

    def to_pkey(self) -> paramiko.PKey:
        return paramiko.PKey.from_type_string(self.key_type, base64.b64decode(self.base64))


def public_key_line(pkey: paramiko.PKey) -> str:
    """`ssh-ed25519 AAAA...`: what goes into authorized_keys."""
    return f"{pkey.get_name()} {pkey.get_base64()}"


_PARAMIKO_CLASSES = (
    (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
    (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),
    (rsa.RSAPrivateKey, paramiko.RSAKey),
)


def parse_private_key(text: str, passphrase: str | None = None) -> paramiko.PKey:
    """Read a pasted Ed25519, ECDSA or RSA private key (OpenSSH, PEM or PKCS#8 container).

    cryptography reads it: unlike trying paramiko's classes in turn, it knows PKCS#8 and tells
    "encrypted" from "wrong passphrase" from "garbage". The matching paramiko class then gets
    the key re-serialised, unencrypted, in memory.
    """
    text = text.strip().replace("\r\n", "\n")
    if not text:
        raise InvalidPrivateKey("empty key")
    if not text.isascii():  # key files are ASCII: U+FFFD & co. mean a badly decoded paste
        raise InvalidPrivateKey("key has non-ASCII characters: wrong encoding or damaged paste")
    if "PRIVATE KEY-----" not in text:
        if re.match(r"(ssh-|ecdsa-|sk-)\S+ AAAA", text) or "PUBLIC KEY-----" in text:
            raise InvalidPrivateKey("this is a public key; paste the private one (not the .pub)")
        raise InvalidPrivateKey("not a private key (OpenSSH or PEM expected)")
    data = text.encode() + b"\n"
    openssh = "BEGIN OPENSSH PRIVATE KEY" in text
    load = serialization.load_ssh_private_key if openssh else serialization.load_pem_private_key
    secret = passphrase.encode() if passphrase else None
    try:
        try:
            key = load(data, secret)
        except TypeError:  # cryptography's way to say "encrypted" or "not encrypted"
            if secret is None:
                raise InvalidPrivateKey("encrypted key needs a passphrase") from None
            key = load(data, None)  # a passphrase given for a plain key is harmless
    except ValueError as exc:
        if secret is not None:  # wrong passphrase, or a damaged key? Only the former is encrypted.
            try:
                load(data, None)
            except TypeError:
                raise InvalidPrivateKey("wrong passphrase") from None
            except ValueError:
                pass
        raise InvalidPrivateKey(f"damaged or unreadable private key ({exc!s:.60})") from None
    cls = next((c for t, c in _PARAMIKO_CLASSES if isinstance(key, t)), None)
    if cls is None:
        raise InvalidPrivateKey(f"unsupported key type {type(key).__name__}")
    plain = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    try:
        return cls.from_private_key(io.StringIO(plain.decode()))
    except paramiko.SSHException as exc:  # e.g. an ECDSA curve paramiko does not speak
        raise InvalidPrivateKey(f"unsupported key: {' '.join(str(exc).split())}") from None
