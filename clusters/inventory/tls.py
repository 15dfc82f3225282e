"""The cluster's certificates: made once by the console, renewed when a node's names change.

`cluster_tls_ensure` is called by setup (and by the rotate job with `renew=True`) before any
file is sent to the servers; it only changes the database. Which daemon uses which file is the
playbooks' business (jobs/playbooks/tls.py).
"""

import datetime

from django.db import transaction
from django.utils import timezone

from clusters.inventory import pki
from clusters.models import Cluster, Node

# A certificate with less than this left is renewed by the next setup run.
RENEW_BEFORE = datetime.timedelta(days=30)
LOOPBACK = ["127.0.0.1", "::1"]


def node_names(node: Node) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses a node's certificate must carry.

    Loopback, because Patroni and etcdctl on the node talk to the local etcd and REST API
    through 127.0.0.1. A database node's certificate also carries the proxy's address: clients
    reach PostgreSQL through HAProxy in TCP mode, so with `sslmode=verify-full` they check the
    proxy's address (or the floating one) against the certificate PostgreSQL presents.
    """
    dns = [node.name, "localhost"]
    ips = [node.address, *LOOPBACK]
    if node.kind == Node.Kind.DATABASE:
        ips += [p.address for p in node.cluster.nodes.all() if p.kind == Node.Kind.PROXY]
        if node.cluster.virtual_ip:  # clients reach it through the floating address too
            ips.append(node.cluster.virtual_address)
    return dns, ips


def _authority(cluster: Cluster) -> pki.Issued:
    return pki.Issued(cluster.ca_certificate, cluster.ca_key)


def _needs_new_certificate(node: Node, cluster: Cluster) -> str:
    """Why `node` needs a new certificate ("" when its own is still right)."""
    if not node.tls_certificate or not node.tls_key:
        return "none yet"
    if not pki.signed_by(node.tls_certificate, cluster.ca_certificate):
        return "not signed by the cluster's CA"
    info = pki.describe(node.tls_certificate)
    dns, ips = node_names(node)
    if set(dns) != set(info.dns_names) or {str(a) for a in ips} != set(info.ip_addresses):
        return "its names or addresses changed"
    if info.not_after - timezone.now() < RENEW_BEFORE:
        return f"it expires on {info.not_after:%Y-%m-%d}"
    return ""


@transaction.atomic
def cluster_tls_ensure(*, cluster: Cluster, renew: bool = False) -> dict[str, str]:
    """Make the cluster's CA if it has none, and a certificate for every node that lacks a
    right one (or for every node when `renew`). Returns {node name: why it got a new one}."""
    cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
    if not cluster.ca_certificate or not cluster.ca_key:
        ca = pki.new_authority(cluster.name)
        cluster.ca_certificate, cluster.ca_key = ca.certificate, ca.key
        cluster.save(update_fields=["ca_certificate", "ca_key"])
    issued: dict[str, str] = {}
    for node in cluster.nodes.select_related("cluster"):
        why = "renewal asked for" if renew else _needs_new_certificate(node, cluster)
        if not why:
            continue
        dns, ips = node_names(node)
        cert = pki.issue(
            _authority(cluster), common_name=node.name, dns_names=dns, ip_addresses=ips
        )
        node.tls_certificate, node.tls_key = cert.certificate, cert.key
        node.save(update_fields=["tls_certificate", "tls_key"])
        issued[node.name] = why
    return issued
