"""GET /api/v1/clusters/{id}/ca/: the cluster's CA certificate as a PEM file (any role)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from clusters.models import Cluster
from clusters.web.api.plumbing import api_view
from clusters.web.ca_views import ca_response


@api_view("GET")
def cluster_ca(request: HttpRequest, pk: int) -> HttpResponse:
    """The CA clients verify the cluster's PostgreSQL against (`sslrootcert`); 404 without one.
    Its fingerprint and expiry are in the cluster's answer (`tls`)."""
    return ca_response(get_object_or_404(Cluster, pk=pk))
