"""Checks of user input shared by forms and the API: names, addresses, networks, fingerprints."""

import ipaddress
import re

from django.core.exceptions import ValidationError

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
SQL_IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
UNIX_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
HOSTNAME_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")


def validate_name(value: str) -> None:
    """Cluster and node names: they end up in file names, etcd keys and Patroni's scope."""
    if not NAME_RE.match(value):
        raise ValidationError(
            "Use 1–63 lower-case letters, digits and hyphens, starting with a letter."
        )


def validate_sql_identifier(value: str) -> None:
    if not SQL_IDENTIFIER_RE.match(value) or value.startswith("pg_"):
        raise ValidationError(
            "Use 1–63 lower-case letters, digits and underscores, starting with a letter or "
            "underscore, and not starting with pg_."
        )


def validate_unix_user(value: str) -> None:
    if not UNIX_USER_RE.match(value):
        raise ValidationError("Not a valid Unix user name (lower-case letters, digits, _ and -).")


def validate_address(value: str) -> None:
    """An IPv4/IPv6 address or a DNS host name; nothing a shell or URL could misread."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        labels = value.rstrip(".").split(".")
        if len(value) > 253 or not all(HOSTNAME_LABEL_RE.match(label) for label in labels):
            raise ValidationError(
                "Enter an IP address or a host name (letters, digits, hyphens and dots)."
            ) from None
        return
    if ip.is_unspecified or ip.is_multicast:
        raise ValidationError(f"{value} cannot be a server's address.")


def validate_cidr(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValidationError(f"{value!r} is not a network in CIDR form ({exc}).") from None


def validate_fingerprint(value: str) -> None:
    if not FINGERPRINT_RE.match(value):
        raise ValidationError(
            "Expected a SHA256 fingerprint as ssh-keygen -l prints it (SHA256:…, 43 characters)."
        )


def validate_no_control_characters(value: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError("Control characters are not allowed here.")
