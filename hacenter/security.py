"""HTTP hardening middleware: a Content Security Policy on every answer, and a cap on request
bodies that refuses a 10 MB paste with a sentence instead of reading it."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

# Django's admin uses style="" attributes in a few templates; it gets inline styles (never
# inline scripts). Our own pages get the strict policy.
ADMIN_STYLE = "style-src 'self' 'unsafe-inline'"


class ContentSecurityPolicyMiddleware:
    """Adds ``Content-Security-Policy`` from ``settings.CONTENT_SECURITY_POLICY``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if request.path.startswith("/admin/"):
            policy = policy.replace("style-src 'self'", ADMIN_STYLE)
        response.headers.setdefault("Content-Security-Policy", policy)
        return response


class RequestSizeLimitMiddleware:
    """Refuses a body larger than ``HACENTER_MAX_REQUEST_BYTES`` (HTTP 413) before it is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.HACENTER_MAX_REQUEST_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length <= limit:
            return self.get_response(request)
        message = (
            f"The request is {length / 1024 / 1024:.1f} MB; the console accepts at most "
            f"{limit // 1024} KB. A private key is a few KB: paste or upload the key file only."
        )
        if request.path.startswith("/api/"):
            return JsonResponse({"error": message, "field_errors": {}}, status=413)
        page = (
            "<!doctype html><html lang=en><title>Request too large · HA Center</title>"
            f'<h1>Request too large</h1><p role="alert">{escape(message)}</p>'
            '<p><a href="/">Back to HA Center</a></p></html>'
        )
        return HttpResponse(page, status=413)
