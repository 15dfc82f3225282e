"""The client's address, the one helper every reader of it uses (the audit trail, login limits).

Production runs gunicorn behind a TLS proxy (README, "Running in production"), so REMOTE_ADDR
is the proxy's address for every request. Neither gunicorn nor Django rewrites it from
``X-Forwarded-For`` (Django dropped that middleware because the header is client-controlled),
so the console does it here, the way gunicorn's ``forwarded_allow_ips`` trusts headers: only
when the request comes from an address in ``HACENTER_TRUSTED_PROXIES``, and then from the
right: each trusted proxy appends the address it received the request from, so the right-most
address that is not one of our proxies is the client; anything left of it was written by
whoever sent the request and is ignored.
"""

import functools
import ipaddress

from django.conf import settings
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def trusted_proxies() -> tuple[Network, ...]:
    """The networks of the proxies whose X-Forwarded-For is believed (settings, read per call
    so tests and reloads see changes; parsed once per value)."""
    return _networks(tuple(settings.HACENTER_TRUSTED_PROXIES))


def _parse(value: str) -> Address | None:
    """An address as a proxy writes it: plain, or with a port ("1.2.3.4:5678", "[::1]:80")."""
    value = value.strip()
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        if value.startswith("[") and "]" in value:
            host = value[1 : value.index("]")]
        elif value.count(":") == 1:
            host = value.split(":", 1)[0]
        else:
            return None
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: Address, networks: tuple[Network, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def client_address(request: HttpRequest) -> str | None:
    """The address of the client that sent ``request``, or None when it cannot be told (a Unix
    socket as REMOTE_ADDR; a trusted proxy that forwarded something that is not an address,
    which a proxy that appends its peer's address never does)."""
    remote = _parse(request.META.get("REMOTE_ADDR") or "")
    if remote is None:
        return None
    networks = trusted_proxies()
    if not networks or not _trusted(remote, networks):
        return str(remote)  # the header of an untrusted sender is never read
    hops = [h for h in (request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",") if h.strip()]
    if not hops:
        return str(remote)
    for hop in reversed(hops):
        ip = _parse(hop)
        if ip is None:
            return None
        if not _trusted(ip, networks):
            return str(ip)
    # Every hop is one of our proxies (a request from a proxy host itself): the first one.
    return str(_parse(hops[0]))
