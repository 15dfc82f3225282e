"""pgBackRest's own certificate on a host (jobs/configs/pgbackrest.py says why it is not the
node certificate): issued from the cluster's CA when the one there is missing, foreign or
near its end."""

from django.utils import timezone

from clusters.inventory import pki
from clusters.inventory.tls import RENEW_BEFORE
from clusters.models import Cluster, Node
from jobs.configs import pgbackrest as conf
from jobs.playbooks.base import StepContext


def certificate_ok(pem: str, cluster: Cluster, common_name: str, address: str) -> bool:
    """Whether `pem` is a certificate of the cluster's CA for `common_name` with `address` as
    a DNS name, and not about to expire."""
    if "BEGIN CERTIFICATE" not in pem or not pki.signed_by(pem, cluster.ca_certificate):
        return False
    info = pki.describe(pem)
    left = info.not_after - timezone.now()
    return address in info.dns_names and common_name in info.dns_names and left > RENEW_BEFORE


def certificate_put(ctx: StepContext, node: Node, owner: str, common_name: str = "") -> bool:
    """pgBackRest's certificate and key on `node` (see conf.CERT_FILE), issued now from the
    cluster's CA when the one there is missing, foreign, or near its end; True when it was.
    The key goes up as the upload's stdin and is redacted from the log."""
    common_name = common_name or node.name
    cluster = Cluster.objects.get(pk=ctx.cluster.pk)
    have = "\n".join(
        ctx.output(f"cat {conf.CERT_FILE} 2>/dev/null || true", node=node, sudo=True, echo=False)
    )
    if certificate_ok(have, cluster, common_name, node.address):
        return False
    issued = pki.issue(
        pki.Issued(cluster.ca_certificate, cluster.ca_key),
        common_name=common_name,
        dns_names=[common_name, node.address],
        ip_addresses=[node.address],
    )
    ctx.log_writer.redact.add(issued.key)
    conn = ctx.connections.get(node)
    conn.upload(conf.KEY_FILE, issued.key.encode(), mode=0o600, owner=owner, group=owner)
    conn.upload(conf.CERT_FILE, issued.certificate.encode(), mode=0o644)
    ctx.log(f"pgBackRest certificate for {common_name} issued by the cluster's CA", host=node.name)
    return True
