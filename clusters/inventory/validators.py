"""Checks of user input shared by forms and the API: names, addresses, networks, fingerprints."""

import ipaddress
import re

from django.core.exceptions import ValidationError

NAME_RE = re.compile(r"\A[a-z][a-z0-9-]{0,62}\Z")
SQL_IDENTIFIER_RE = re.compile(r"\A[a-z_][a-z0-9_]{0,62}\Z")
UNIX_USER_RE = re.compile(r"\A[a-z_][a-z0-9_-]{0,31}\Z")
HOSTNAME_LABEL_RE = re.compile(r"\A(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
FINGERPRINT_RE = re.compile(r"\ASHA256:[A-Za-z0-9+/]{43}\Z")
# Display names (credentials): words, not code. Nothing a shell, YAML or HTML would act on.
LABEL_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,99}\Z")
SHELL_METACHARACTERS = frozenset("`$;&|<>()'\"\\{}*?!#~\n\r\t")
MAX_SECRET_CHARS = 1024
APT_PROXY_RE = re.compile(r"\Ahttps?://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?/?\Z")


def validate_name(value: str) -> None:
    """Cluster and node names: they end up in file names, etcd keys and Patroni's scope."""
    if not NAME_RE.fullmatch(value):
        raise ValidationError(
            "Use 1–63 lower-case letters, digits and hyphens, starting with a letter."
        )


def validate_sql_identifier(value: str) -> None:
    if not SQL_IDENTIFIER_RE.fullmatch(value) or value.startswith("pg_"):
        raise ValidationError(
            "Use 1–63 lower-case letters, digits and underscores, starting with a letter or "
            "underscore, and not starting with pg_."
        )


def validate_unix_user(value: str) -> None:
    if not UNIX_USER_RE.fullmatch(value):
        raise ValidationError("Not a valid Unix user name (lower-case letters, digits, _ and -).")


def validate_address(value: str) -> None:
    """An IPv4/IPv6 address or a DNS host name; nothing a shell or URL could misread."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        labels = value.rstrip(".").split(".")
        if len(value) > 253 or not all(HOSTNAME_LABEL_RE.fullmatch(label) for label in labels):
            raise ValidationError(
                "Enter an IP address or a host name (letters, digits, hyphens and dots)."
            ) from None
        return
    if ip.is_unspecified or ip.is_multicast:
        raise ValidationError(f"{value} cannot be a server's address.")


def validate_apt_proxy(value: str) -> None:
    """An HTTP proxy for apt on the nodes (apt-cacher-ng, Squid): ``http://host:port``.

    No user name or password: it would be stored and passed in clear on every apt command.
    """
    match = APT_PROXY_RE.fullmatch(value)
    if not match:
        raise ValidationError(
            "Enter the proxy as http://host:port (or https://), without a path or a password."
        )
    validate_address(match["host"].strip("[]"))


def validate_cidr(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValidationError(f"{value!r} is not a network in CIDR form ({exc}).") from None


def validate_fingerprint(value: str) -> None:
    if not FINGERPRINT_RE.fullmatch(value):
        raise ValidationError(
            "Expected a SHA256 fingerprint as ssh-keygen -l prints it (SHA256:…, 43 characters)."
        )


def validate_no_control_characters(value: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError("Control characters are not allowed here.")


def validate_label(value: str) -> None:
    """A display name such as a credential's: letters, digits, spaces and . _ @ + -."""
    if not LABEL_RE.fullmatch(value) or value != value.strip():
        raise ValidationError(
            "Use 1–100 letters, digits, spaces and . _ @ + - (starting with a letter or digit); "
            "no shell or control characters."
        )


def validate_no_shell_metacharacters(value: str, *, allowed: str = "") -> None:
    """Free text that ends up near a command line (or looks like it wants to): refuse the
    characters a shell would act on, and say which were found. ``allowed`` lifts some (a URL
    needs ? & and #)."""
    found = sorted({c for c in value if c in SHELL_METACHARACTERS and c not in allowed})
    if found:
        shown = " ".join(repr(c)[1:-1] for c in found)
        raise ValidationError(f"These characters are not allowed here: {shown}")


def validate_secret_text(value: str) -> None:
    """A password or passphrase: any printable text up to 1024 characters. Control characters
    (a NUL, a line break) are refused: no SSH server or keyboard would produce them."""
    if len(value) > MAX_SECRET_CHARS:
        raise ValidationError(f"At most {MAX_SECRET_CHARS} characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValidationError("Control characters (line breaks, tabs, NUL) are not allowed.")


def normalize_address(value: str) -> str:
    """One spelling per server: IP addresses compressed (an IPv4-mapped IPv6 address becomes
    IPv4), host names lower-case without the final dot. Two spellings of one server must
    compare equal, or "duplicate address" checks are blind."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return value.rstrip(".").lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.compressed


IP_ONLY_MESSAGE = (
    "Enter the server's IP address; host names are not accepted because etcd and pg_hba "
    "need addresses."
)


def validate_ip_address(value: str) -> None:
    """An IPv4 or IPv6 address, nothing else: what a host-key scan of a node and a node itself
    take. A host name would pass the forms and fail setup (etcd listens on addresses, pg_hba
    host names need reverse DNS; jobs.configs.spec.NodeSpec refuses them), so it is refused
    here, where the admin can still fix it."""
    if value.rstrip(".").lower() in ("localhost", "localhost.localdomain"):
        raise ValidationError(
            f"{value} is this machine's own name; give the server's address on the "
            "network the other nodes share."
        )
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ValidationError(IP_ONLY_MESSAGE) from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        raise ValidationError(f"{value} is a scoped address; give one without %zone.")
    if ip.is_unspecified or ip.is_multicast:
        raise ValidationError(f"{value} cannot be a server's address.")


def validate_server_address(value: str) -> None:
    """A node's address: an IP address (validate_ip_address) other servers can reach it by
    (not loopback, not link-local: every node and the proxy connect to it by this address)."""
    validate_ip_address(value)
    ip = ipaddress.ip_address(normalize_address(value))
    if ip.is_loopback or ip.is_link_local:
        raise ValidationError(
            f"{value} is a {'loopback' if ip.is_loopback else 'link-local'} address: the other "
            "nodes could not reach this server by it. Give its address on the shared network."
        )


def validate_open_network(value: str) -> None:
    """Refuse a network that admits every address (0.0.0.0/0, ::/0) to pg_hba."""
    if ipaddress.ip_network(value, strict=False).prefixlen == 0:
        raise ValidationError(
            f"{value} would let every address on the internet try to log in to PostgreSQL; "
            "name your application servers' networks instead."
        )


# A systemd service name as `systemctl` takes it, never an option (no leading "-"), and only
# characters that need no quoting in a sudoers rule or a shell.
UNIT_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.@-]{0,91}\.service\Z")
# Units HA Center runs or stops itself, and the way in: a callback must never touch them.
FORBIDDEN_UNIT_RE = re.compile(
    r"\A(hacenter-.*|patroni.*|postgresql.*|etcd.*|haproxy.*|ssh|sshd|systemd-.*|sudo.*)\.service\Z"
)
# An HTTP path HAProxy's check sends unquoted: printable ASCII without space, quote, backslash,
# '#' (starts a comment) or '$' (a variable in HAProxy's config).
CHECK_PATH_RE = re.compile(r"\A/[A-Za-z0-9._~!&()*+,;=:@%/?-]{0,199}\Z")


def validate_application_unit(value: str) -> None:
    """The application's systemd unit that follows the primary, e.g. ``myapp.service``."""
    if not UNIT_RE.fullmatch(value) or value.endswith("@.service"):
        raise ValidationError(
            "Give a systemd service name such as myapp.service: letters, digits and -_.@, "
            "ending in .service (a template needs its instance, as in myapp@1.service)."
        )
    if FORBIDDEN_UNIT_RE.fullmatch(value):
        raise ValidationError(
            f"{value} is run by HA Center or the system itself; name the application's own unit."
        )


def validate_check_path(value: str) -> None:
    """The application's own health path that HAProxy asks with GET, e.g. ``/health``."""
    if not CHECK_PATH_RE.fullmatch(value):
        raise ValidationError(
            "Give a path starting with / (at most 200 characters), such as /health: letters, "
            "digits and URL punctuation, without spaces, quotes, backslashes, # or $."
        )
