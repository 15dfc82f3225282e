"""Which addresses a webhook may reach: public ones, and networks an admin allow-listed.

A webhook URL is typed by an admin but fetched by the worker, from inside the console's
network: without a check it could reach the cloud metadata service (169.254.169.254), the
console's own Redis or PostgreSQL on loopback, or any private host, and the delivery record
would tell what answered (SSRF). So a target must be a public address unless it lies in
settings.WEBHOOK_ALLOWED_NETWORKS (HACENTER_WEBHOOK_ALLOWED_NETWORKS, CIDRs, empty by default).

The check runs twice: when the channel is saved, on the host as written (an IP literal in any
form the C resolver accepts: `127.1`, `0x7f000001`, `2130706433`, `[::ffff:127.0.0.1]`, and the
name `localhost`), without any network lookup; and at each send, on every address the name
resolves to, after which the worker connects to the address it checked (see `delivery`), so a
DNS answer that changes between the check and the connection (rebinding) cannot move it.
"""

import ipaddress
import socket
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# NAT64's well-known prefix carries an IPv4 address in its last 32 bits (RFC 6052).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(Exception):
    """The webhook's host is, or resolves to, an address it may not reach; the message says
    which kind of address and how an admin can allow it."""


@lru_cache(maxsize=8)
def _parse_networks(values: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"HACENTER_WEBHOOK_ALLOWED_NETWORKS holds {value!r}, which is not a network: "
                "give CIDRs separated by commas, like 10.20.0.0/16,fd00::/8."
            ) from None
    return tuple(networks)


def allowed_networks() -> tuple[IPNetwork, ...]:
    """The admin's allow-list, read at call time (tests and deployments change it)."""
    raw = getattr(settings, "WEBHOOK_ALLOWED_NETWORKS", None) or ()
    if isinstance(raw, str):
        raw = raw.split(",")
    return _parse_networks(tuple(v for v in raw if v.strip()))


def _kind(ip: IPAddress) -> str | None:
    """What is wrong with `ip` as a webhook target, or None for a public address."""
    if ip.is_loopback:
        return "a loopback address (this machine)"
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if ip.is_unspecified:
        return "the unspecified address (this machine)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved or non-public address"
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, Teredo, NAT64), if any: a
    connection to it may end up at that IPv4 address."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress, *, name: str = "") -> str | None:
    """Why the worker may not send to `ip` (one sentence, saying that `name` resolves to it
    when given), or None when it may."""
    networks = allowed_networks()
    if any(ip.version == n.version and ip in n for n in networks):
        return None
    embedded = _embedded_ipv4(ip)
    if embedded is not None and any(n.version == 4 and embedded in n for n in networks):
        return None
    # The address it stands for first: ::ffff:127.0.0.1 is loopback, not just "private".
    subject = f"{name} resolves to {ip}, which" if name else str(ip)
    if embedded is not None and (kind := _kind(embedded)):
        what = f"{subject} stands for {embedded}, {kind}"
    elif kind := _kind(ip):
        what = f"{subject} is {kind}"
    else:
        return None
    return (
        f"{what}; webhooks go to public addresses only, unless an administrator "
        "adds its network to HACENTER_WEBHOOK_ALLOWED_NETWORKS"
    )


def literal_address(host: str) -> IPAddress | None:
    """The address `host` (a URL's hostname, brackets removed) names without any lookup, read
    the way the C resolver behind http.client reads it; None when it is a name.

    inet_aton accepts the short and numeric forms (`127.1`, `0x7f000001`, `2130706433`,
    `0177.0.0.1`) that ipaddress refuses but getaddrinfo, and so the connection, honours.
    """
    text = host.rstrip(".")  # "127.0.0.1." is that address to the resolver, too
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text.split("%", 1)[0])  # a zone (%eth0) is not part
        except ValueError:
            return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def _is_localhost_name(host: str) -> bool:
    # RFC 6761: "localhost" and every name under it resolve to loopback, whatever DNS says.
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def check_host(host: str) -> None:
    """Save-time check, with no network lookup: raise TargetRefused when the host as written
    is an address (or `localhost`) a webhook may not reach. A name is checked at send time."""
    ip = literal_address(host)
    if ip is None and _is_localhost_name(host):
        ip = ipaddress.IPv4Address("127.0.0.1")
    if ip is not None and (reason := refusal(ip)):
        raise TargetRefused(reason)


def resolve_checked(host: str, port: int) -> list[tuple[int, tuple]]:
    """Send-time check: resolve `host` and return every (family, socket address), in the
    resolver's order, after checking each (a name with one private address among public ones
    is refused: which one a connection would end up using is not ours to choose)."""
    # Raises TargetRefused, or socket.gaierror when the name does not resolve.
    if _is_localhost_name(host):
        check_host(host)  # never trust DNS for localhost (RFC 6761)
    results = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    if not results:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    for _family, _type, _proto, _name, sockaddr in results:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if reason := refusal(ip, name="" if literal_address(host) is not None else host):
            raise TargetRefused(reason)
    return [(family, sockaddr) for family, _type, _proto, _name, sockaddr in results]
