"""GET /api/v1/clusters/{id}/ca/: the cluster's CA certificate as a PEM file (any role)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Router

from clusters.models import Cluster
from clusters.web.api.openapi import errors
from clusters.web.api.plumbing import VIEWER_AUTH
from clusters.web.ca_views import ca_response

router = Router(tags=["clusters"])


@router.get(
    "/clusters/{int:pk}/ca/",
    auth=VIEWER_AUTH,
    response={200: None, **errors(401, 403, 404)},
    openapi_extra={
        "responses": {
            200: {
                "description": "The CA certificate (PEM).",
                "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
            }
        }
    },
    url_name="api-cluster-ca",
)
def cluster_ca(request: HttpRequest, pk: int) -> HttpResponse:
    """The CA clients verify the cluster's PostgreSQL against (`sslrootcert`); 404 without one.
    Its fingerprint and expiry are in the cluster's answer (`tls`)."""
    return ca_response(get_object_or_404(Cluster, pk=pk))
