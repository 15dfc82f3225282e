"""The cluster's CA certificate for download: what clients give libpq as `sslrootcert`.

The certificate is public (it is what every node presents and what clients check it against),
so every role may read it; its key never leaves the console.
"""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from clusters.access.roles import VIEWER, role_required
from clusters.inventory.connection_strings import ca_file_name
from clusters.models import Cluster

PEM_CONTENT_TYPE = "application/x-pem-file"
NO_CA = (
    "This cluster has no certificate authority yet: setup makes it (a cluster built before "
    "TLS gets one when setup runs again)."
)


def ca_response(cluster: Cluster) -> HttpResponse:
    """The CA certificate as a PEM file named as the connection strings expect it; Http404
    for a cluster without one."""
    if not cluster.ca_certificate:
        raise Http404(NO_CA)
    response = HttpResponse(cluster.ca_certificate, content_type=PEM_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{ca_file_name(cluster)}"'
    return response


@role_required(VIEWER)
def cluster_ca(request: HttpRequest, pk: int) -> HttpResponse:
    """GET /clusters/<id>/ca.crt: the cluster's CA certificate (PEM)."""
    return ca_response(get_object_or_404(Cluster, pk=pk))
