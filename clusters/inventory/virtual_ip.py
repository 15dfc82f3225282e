"""The floating address of a cluster with two proxies: what makes a valid one.

keepalived adds the address to whichever proxy is VRRP master, with the prefix length given
here, so it must lie in the network both proxies share and must be no server's own address:
the proxy that took it would otherwise answer for a database node's address.
"""

import ipaddress
from collections.abc import Sequence


def virtual_ip_format_problems(value: str) -> list[str]:
    """Why `value` is not an address with a prefix length fit to float; [] when it is."""
    text = (value or "").strip()
    if "/" not in text:
        return ["Give the address with its prefix length, e.g. 10.0.0.100/24."]
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        return [f"{text!r} is not an address with a prefix length."]
    address, network = iface.ip, iface.network
    if address.is_loopback or address.is_multicast or address.is_unspecified:
        return [f"{address} cannot be a floating address."]
    if network.num_addresses > 2 and address in (
        network.network_address,
        network.broadcast_address,
    ):
        return [f"{address} is the network's own or broadcast address."]
    return []


def virtual_ip_problems(value: str, proxies: Sequence[str], nodes: Sequence[str]) -> list[str]:
    """Why `value` ("10.0.0.100/24") cannot be the floating address of proxies at `proxies`
    in a cluster whose servers are `nodes` (every node's address); [] when it can."""
    if problems := virtual_ip_format_problems(value):
        return problems
    iface = ipaddress.ip_interface(value.strip())
    address, network = iface.ip, iface.network
    problems = []
    if len(proxies) != 2:
        problems.append("A floating address needs two proxy nodes.")
    outside = [p for p in proxies if ipaddress.ip_address(p) not in network]
    if outside:
        problems.append(
            f"{network} is not the proxies' network: {', '.join(outside)} lie outside it."
        )
    if str(address) in {str(ipaddress.ip_address(n)) for n in nodes}:
        problems.append(f"{address} is a node's own address; pick a free one.")
    return problems


def network_of(value: str) -> str:
    """The network of a valid floating address ("10.0.0.100/24" -> "10.0.0.0/24")."""
    return str(ipaddress.ip_interface(value.strip()).network)


def validate_router_id(value: object) -> list[str]:
    """VRRP's virtual_router_id is one byte, 0 reserved."""
    if value in (None, ""):
        return []
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 255:
        return ["The VRRP router id is a number from 1 to 255."]
    return []
