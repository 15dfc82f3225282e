"""Which certificate each daemon on a node serves right now, read from the node itself.

A daemon that was told to reload may still hold its old certificate (etcd reads the files on
each new handshake, Patroni swaps its REST socket on its next loop, PostgreSQL on SIGHUP): the
rotate and conversion steps prove the swap by the serial a fresh handshake shows, not by
trusting that a reload worked. The handshake is made from the node with `openssl s_client`,
presenting the node's own certificate (etcd demands one) and verifying the served chain
against the cluster's CA and the node's address.
"""

import shlex

from cryptography import x509

from clusters.models import Node
from jobs.configs import spec as paths
from jobs.playbooks.base import StepContext

ETCD = "etcd"
PATRONI = "Patroni"
POSTGRES = "PostgreSQL"
# How long one handshake may take before the probe reports nothing for that daemon.
HANDSHAKE_TIMEOUT_S = 5


def certificate_serial(certificate_pem: str) -> int:
    """The serial number of a PEM certificate."""
    return x509.load_pem_x509_certificate(certificate_pem.encode()).serial_number


def short(serial: int | None) -> str:
    """A serial as the verdicts show it: its first 8 hex digits (they are 159 random bits)."""
    if serial is None:
        return "nothing"
    digits = f"{serial:X}"
    return digits[:8] + ("…" if len(digits) > 8 else "")


def endpoints(spec: paths.ClusterSpec, node: Node) -> dict[str, int]:
    """The TLS ports of `node`'s daemons, by daemon name."""
    ports: dict[str, int] = {}
    if node.name in {m.name for m in spec.etcd_members}:
        ports[ETCD] = paths.ETCD_CLIENT_PORT
    if node.kind == Node.Kind.DATABASE:
        ports[PATRONI] = paths.PATRONI_PORT
        ports[POSTGRES] = paths.POSTGRES_PORT
    return ports


def probe_script(address: str, ports: dict[str, int]) -> str:
    """Shell printing `<daemon> <serial hex>` per daemon (`<daemon> -` when no handshake).

    PostgreSQL speaks TLS only after its own SSLRequest: `-starttls postgres` (OpenSSL ≥ 1.1.1).
    `-verify_return_error` makes a chain that does not lead to the cluster's CA, or a name that
    does not match the node's address, an empty answer instead of a serial.
    """
    lines = []
    for daemon, port in ports.items():
        starttls = " -starttls postgres" if daemon == POSTGRES else ""
        handshake = (
            f"timeout {HANDSHAKE_TIMEOUT_S} openssl s_client "
            f"-connect {shlex.quote(paths.host_port(address, port))}{starttls} "
            f"-CAfile {shlex.quote(paths.TLS_CA_FILE)} -cert {shlex.quote(paths.TLS_CERT_FILE)} "
            f"-key {shlex.quote(paths.TLS_KEY_FILE)} -verify_return_error "
            f"-verify_ip {shlex.quote(address)} </dev/null 2>/dev/null"
        )
        # s_client prints the served certificate's PEM; x509 reads the first block.
        lines.append(
            f"s=$({handshake} | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2); "
            f'echo {shlex.quote(daemon)} "${{s:--}}"'
        )
    return "; ".join(lines)


def parse_serials(lines: list[str]) -> dict[str, int | None]:
    """`probe_script`'s output as {daemon: serial or None}."""
    served: dict[str, int | None] = {}
    for line in lines:
        daemon, _, value = line.strip().rpartition(" ")
        if not daemon:
            continue
        try:
            served[daemon] = int(value, 16)
        except ValueError:
            served[daemon] = None
    return served


def served_serials(ctx: StepContext, node: Node, spec: paths.ClusterSpec) -> dict[str, int | None]:
    """{daemon: the serial it serves now, or None} for every TLS daemon on `node` (as root:
    the node key is not world-readable)."""
    ports = endpoints(spec, node)
    if not ports:
        return {}
    lines = ctx.output(probe_script(node.address, ports), node=node, sudo=True, echo=False)
    return parse_serials(lines)


def describe(served: dict[str, int | None], want: int) -> str:
    """ "etcd 3A1F09C2…, Patroni 3A1F09C2…" with the daemons still serving another marked."""
    parts = []
    for daemon, serial in served.items():
        mark = "" if serial == want else " (not the new one)"
        parts.append(f"{daemon} {short(serial)}{mark}")
    return ", ".join(parts)
