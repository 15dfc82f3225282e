"""The REST API under /api/v1/: one NinjaAPI with every router, its error answers, the
OpenAPI document (/api/v1/openapi.json) and its browsable reference (/api/v1/docs/)."""

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from ninja import Swagger

from clusters.access.roles import VIEWER, role_required
from clusters.web.api import (
    alerts,
    backups,
    ca,
    clusters,
    events,
    failover_drills,
    fencing,
    incidents,
    jobs,
    parameters,
    readings,
    subscriptions,
    tokens,
    users,
    versions,
)
from clusters.web.api.openapi import DocumentedApi
from clusters.web.api.plumbing import (
    VIEWER_AUTH,
    ApiError,
    error_response,
    install_error_handlers,
)


def viewer_docs(view: Callable) -> Callable:
    """The document and its page need the viewer role, as the API's reads do: through a token
    (scripts, code generators) or, without one, the console's login (the page in a browser)."""
    page = role_required(VIEWER)(view)

    @functools.wraps(page)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if "Authorization" not in request.headers:
            return page(request, *args, **kwargs)
        try:
            VIEWER_AUTH(request)
        except ApiError as exc:
            return error_response(exc.status, exc.message, exc.field_errors)
        return view(request, *args, **kwargs)

    return wrapper


api = DocumentedApi(
    title="HA Center API",
    version="1",
    description=(
        "PostgreSQL HA clusters (PostgreSQL, Patroni, etcd, HAProxy) as HA Center runs them. "
        "Send `Authorization: Token <key>` (a key from the console's API tokens page). Errors "
        'are `{"error": message, "field_errors": {field: [messages]}}`.'
    ),
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs/",
    # ninja's Swagger page loads its script and styles from ninja's static files (no CDN)
    # when "ninja" is an installed app, and keeps its settings out of inline script (CSP).
    docs=Swagger(settings={"persistAuthorization": False}),
    docs_decorator=viewer_docs,
)
install_error_handlers(api)
ROUTERS = (
    clusters,
    jobs,
    parameters,
    events,
    incidents,
    tokens,
    ca,
    readings,
    alerts,
    users,
    subscriptions,
    versions,
    backups,
    fencing,
    failover_drills,
)
for module in ROUTERS:
    api.add_router("", module.router)
