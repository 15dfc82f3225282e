"""The REST API's routes under /api/v1/ (DESIGN.md §3), from the NinjaAPI in api.py."""

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern

from clusters.access.role_gate import guarded
from clusters.web.api.api import api
from clusters.web.api.plumbing import error_response


def _json_405(view: Callable) -> Callable:
    """ninja answers an unknown method with an empty 405; this API says which ones to use."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and "Allow" in response:
            methods = response["Allow"]
            message = f"Method {request.method} not allowed; use {methods}."
            answer = error_response(405, message)
            answer["Allow"] = methods
            return answer
        return response

    # Every operation checks the token and role itself (TokenAuth), the document and its page
    # through viewer_docs: the role gate middleware must not ask for a session too.
    return guarded(wrapper)


def _patterns() -> list[URLPattern]:
    """ninja's patterns, one per route (it makes one per operation, all to the same view),
    without its root view (the document's prefix comes from DocumentedApi.get_root_path)."""
    patterns, _app_name, _namespace = api.urls
    kept: dict[str, URLPattern] = {}
    for pattern in patterns:
        if pattern.name == "api-root" or str(pattern.pattern) in kept:
            continue
        pattern.callback = _json_405(pattern.callback)
        kept[str(pattern.pattern)] = pattern
    return list(kept.values())


urlpatterns = _patterns()
app_name = "api"
