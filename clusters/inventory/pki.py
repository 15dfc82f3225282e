"""A certificate authority per cluster, and the certificates it issues to the cluster's nodes.

Pure functions of their arguments (no database, no network): `clusters.inventory.tls` decides
when to call them and stores the results. Keys are ECDSA P-256, which every daemon of the stack
reads (etcd, Patroni's Python `ssl`, PostgreSQL, HAProxy) and which keeps handshakes cheap.
"""

import datetime
import ipaddress
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 10 * 365
NODE_DAYS = 2 * 365
# Backdated so a node whose clock is a little behind the console's accepts a fresh certificate.
CLOCK_SLACK = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class Issued:
    """A certificate (PEM) and its private key (PEM, unencrypted: the caller encrypts it)."""

    certificate: str
    key: str = field(repr=False)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_authority(cluster_name: str) -> Issued:
    """A self-signed CA for one cluster, allowed to sign node certificates only (path length 0)."""
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HA Center"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"HA Center CA for {cluster_name}"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SLACK)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(_cert_pem(cert), _key_pem(key))


def issue(
    authority: Issued,
    *,
    common_name: str,
    dns_names: list[str],
    ip_addresses: list[str],
    days: int = NODE_DAYS,
) -> Issued:
    """A certificate signed by `authority` for a server that is also a client of its peers
    (etcd peers and Patroni present the same certificate both ways)."""
    ca_cert = x509.load_pem_x509_certificate(authority.certificate.encode())
    ca_key = serialization.load_pem_private_key(authority.key.encode(), password=None)
    key = _new_key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys(dns_names)]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in dict.fromkeys(ip_addresses)]
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HA Center"),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SLACK)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return Issued(_cert_pem(cert), _key_pem(key))


@dataclass(frozen=True)
class CertificateInfo:
    """What a page or a check needs to know about a certificate, without its key."""

    subject: str
    issuer: str
    not_after: datetime.datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    fingerprint_sha256: str


def describe(certificate_pem: str) -> CertificateInfo:
    """Subject, expiry, SANs and fingerprint of a PEM certificate."""
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    digest = cert.fingerprint(hashes.SHA256()).hex()
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
        dns_names=dns,
        ip_addresses=ips,
        fingerprint_sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper(),
    )


def signed_by(certificate_pem: str, authority_pem: str) -> bool:
    """Whether `certificate_pem` was issued by the CA in `authority_pem` (signature checked)."""
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    ca = x509.load_pem_x509_certificate(authority_pem.encode())
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
