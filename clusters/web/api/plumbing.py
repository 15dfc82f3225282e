"""The REST API's plumbing: token authentication, JSON bodies and JSON errors.

Every error is `{"error": message, "field_errors": {field: [messages]}}` with a 4xx code.
"""

import functools
import json
from collections.abc import Callable

from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from clusters.access import roles
from clusters.access.tokens import TokenRefused, api_token_authenticate

MAX_BODY_BYTES = 1024 * 1024


class ApiError(Exception):
    """An answer other than success, with its HTTP status."""

    def __init__(self, status: int, message: str, field_errors: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field_errors = status, message, field_errors or {}


def error_response(status: int, message: str, field_errors: dict | None = None) -> JsonResponse:
    return JsonResponse({"error": message, "field_errors": field_errors or {}}, status=status)


def _authenticate(request: HttpRequest):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme != "Token" or not token.strip():
        raise ApiError(
            401, "Authentication required: send the header 'Authorization: Token <key>'."
        )
    try:
        return api_token_authenticate(token).user
    except TokenRefused as exc:
        raise ApiError(401, str(exc)) from None


def _json_body(request: HttpRequest) -> dict:
    if int(request.headers.get("Content-Length") or 0) > MAX_BODY_BYTES:
        raise ApiError(413, f"The request body is larger than {MAX_BODY_BYTES // 1024} KB.")
    if not request.body:
        return {}
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(
            400, "The body is not UTF-8 text: send JSON encoded as UTF-8 (a key file is ASCII)."
        ) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ApiError(400, f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "The body is not valid JSON: nested too deeply.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The body must be a JSON object.")
    if _has_lone_surrogate(data):
        # "\ud800" is valid JSON but no valid text: it cannot be stored or encrypted.
        raise ApiError(400, "The body holds a broken Unicode escape (a lone \\ud800–\\udfff).")
    return data


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def api_view(*methods: str, write: str | None = None) -> Callable:
    """Token-authenticated JSON endpoint accepting `methods`; the view gets `request.data`.

    GET needs the viewer role; any other method needs the role `write`, which an endpoint
    accepting one must name (so no endpoint is left unguarded by omission).
    """
    if any(m != "GET" for m in methods) and write not in roles.ROLES:
        raise TypeError(f"api_view{methods}: name the role that may write, e.g. write=ADMIN")

    def decorate(view: Callable) -> Callable:
        @csrf_exempt  # token-authenticated: no cookies, so no cross-site request to forge
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> JsonResponse:
            try:
                if request.method not in methods:
                    raise ApiError(
                        405, f"Method {request.method} not allowed; use {', '.join(methods)}."
                    )
                request.user = _authenticate(request)
                needed = roles.VIEWER if request.method == "GET" else write
                if not roles.has_role(request.user, needed):
                    raise ApiError(403, roles.refusal(request.user, needed))
                request.data = _json_body(request) if request.method == "POST" else {}
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.status, exc.message, exc.field_errors)
            except Http404 as exc:
                return error_response(404, str(exc) or "Not found.")

        wrapper.hacenter_guarded = True  # checks roles itself (clusters.access.role_gate)
        return wrapper

    return decorate
