"""The REST API's plumbing under django-ninja: token authentication with the role check, the
JSON body reader and validator, and the error answers.

Every error is `{"error": message, "field_errors": {field: [messages]}}` with a 4xx code. The
order of checks is today's: an unknown method (405), then the token (401), then the role
(403), then the body (400/413), then the view.
"""

import json
from typing import Any, TypeVar

import pydantic
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import APIKeyHeader

from clusters.access import roles
from clusters.access.tokens import TokenRefused, api_token_authenticate
from clusters.inventory.services import InvalidInput

MAX_BODY_BYTES = 1024 * 1024


class ApiError(Exception):
    """An answer other than success, with its HTTP status."""

    def __init__(self, status: int, message: str, field_errors: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field_errors = status, message, field_errors or {}


def error_response(status: int, message: str, field_errors: dict | None = None) -> JsonResponse:
    return JsonResponse({"error": message, "field_errors": field_errors or {}}, status=status)


class TokenAuth(APIKeyHeader):
    """`Authorization: Token <key>` (clusters.access.tokens), then the role `needed`.

    The role is checked here, before ninja reads the body, so a caller without the role is
    refused (403, naming the role) whatever it sent. Token auth uses no cookie, so there is
    no cross-site request to forge: no CSRF check (ninja makes none for header keys).
    """

    param_name = "Authorization"

    def __init__(self, needed: str) -> None:
        if needed not in roles.ROLES:
            raise TypeError(f"TokenAuth({needed!r}): name a role, e.g. roles.ADMIN")
        self.needed = needed
        super().__init__()

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        scheme, _, token = (key or "").partition(" ")
        if scheme != "Token" or not token.strip():
            raise ApiError(
                401, "Authentication required: send the header 'Authorization: Token <key>'."
            )
        try:
            user = api_token_authenticate(token).user
        except TokenRefused as exc:
            raise ApiError(401, str(exc)) from None
        request.user = user
        if not roles.has_role(user, self.needed):
            raise ApiError(403, roles.refusal(user, self.needed))
        return user


# One instance per role; an operation names the role it needs (reads: VIEWER).
VIEWER_AUTH = TokenAuth(roles.VIEWER)
OPERATOR_AUTH = TokenAuth(roles.OPERATOR)
ADMIN_AUTH = TokenAuth(roles.ADMIN)


def json_body(request: HttpRequest) -> dict:
    """The body as a JSON object, or an ApiError that says what is wrong with it."""
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


Body = TypeVar("Body", bound=pydantic.BaseModel)


def validated_body(request: HttpRequest, schema: type[Body]) -> Body:
    """The body as `schema` (a schemas.BodyIn: the one the document shows), validated strictly.

    First the checks of `json_body`, with their answers (413; 400 for text that is not UTF-8,
    not JSON, not an object, or holds a broken escape). Then the schema, on the JSON text
    itself: in strict mode a JSON string is no number and `true` no 1, and an enumeration
    takes its values as text. A body that does not fit raises InvalidInput with messages by
    field (`nodes[1].address`), which the views answer and audit as they do the services' own
    refusals (400). Fields the schema does not declare are ignored, unless its config says
    otherwise (schemas_admin.UNKNOWN_FIELDS_REFUSED: each is named; schemas_hooks: they are
    kept for the service, which refuses them), as the document says for each body.
    """
    json_body(request)
    try:
        return schema.model_validate_json(request.body or b"{}", strict=True)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False)
        broken = next((e for e in errors if e["type"] == "json_invalid"), None)
        if broken is not None:
            # Python's parser took it, pydantic's did not (it nests 200 deep, not 1000).
            raise ApiError(
                400, f"The body is not valid JSON: {broken.get('ctx', {}).get('error', '')}"
            ) from None
        raise InvalidInput(field_errors(errors)) from None


def field_errors(errors: list) -> dict[str, list[str]]:
    """Pydantic's errors as this API's `field_errors`: {field name: [clear messages]}."""
    fields: dict[str, list[str]] = {}
    for error in errors:
        messages = fields.setdefault(field_name(tuple(error.get("loc", ()))), [])
        if (message := error_message(error)) not in messages:
            messages.append(message)
    return fields


def in_one_line(errors: dict[str, list[str]]) -> str:
    """Field errors as one message, for an answer whose `error` names what is wrong
    ("kind: This field is required. node: The value must be text (a JSON string).")."""
    return " ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())


_TEXT = "The value must be text (a JSON string)."
_WHOLE = "Enter a whole number (a JSON number, not text)."
_OBJECT = "Expected an object (a JSON object)."
# Pydantic's error types as sentences a person can act on, in the words of the console's forms
# ("This field is required.", "Enter a whole number."); `{…}` is filled from the error.
MESSAGES = {
    "missing": "This field is required.",
    "string_type": _TEXT,
    "int_type": _WHOLE,
    "int_parsing": _WHOLE,
    "int_from_float": _WHOLE,
    "float_type": "Enter a number (a JSON number, not text).",
    "bool_type": "Expected true or false.",
    "list_type": "Expected a list (a JSON array).",
    "model_type": _OBJECT,
    "model_attributes_type": _OBJECT,
    "dict_type": _OBJECT,
    "enum": "Select a valid choice: {expected}.",
    "literal_error": "Select a valid choice: {expected}.",
    "greater_than_equal": "Ensure this value is greater than or equal to {ge}.",
    "less_than_equal": "Ensure this value is less than or equal to {le}.",
    "string_too_long": "Ensure this value has at most {max_length} characters.",
    "too_long": "Give at most {max_length} items.",
    "string_pattern_mismatch": "This value does not have the expected form.",
    # A body whose schema refuses unknown fields (extra="forbid"; the document says so).
    "extra_forbidden": "Unknown field: this request does not take it.",
}


def error_message(error: dict) -> str:
    """One pydantic error as a sentence: a field's own (schemas.says), else MESSAGES', else
    pydantic's."""
    template = MESSAGES.get(error.get("type", ""))
    if template is None:
        return str(error.get("msg", "This value is not valid."))
    try:
        return template.format(**error.get("ctx", {}))
    except (KeyError, IndexError):
        return str(error.get("msg", template))


def field_name(location: tuple) -> str:
    """ninja's error location ("body", "payload", "nodes", 1, "address") as the services name
    fields: nodes[1].address."""
    parts = [p for p in location if p not in ("body", "query", "path", "payload")]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "non_field_errors"


def install_error_handlers(api: NinjaAPI) -> None:
    """Answer every error in this API's shape instead of ninja's `{"detail": …}`."""

    def answer(request: HttpRequest, status: int, message: str, fields: dict | None = None):
        return api.create_response(
            request, {"error": message, "field_errors": fields or {}}, status=status
        )

    def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return answer(request, exc.status, exc.message, exc.field_errors)

    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return answer(request, 404, str(exc) or "Not found.")

    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return answer(request, exc.status_code, str(exc))

    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        fields: dict[str, list[str]] = {}
        for error in exc.errors:
            fields.setdefault(field_name(tuple(error.get("loc", ()))), []).append(error["msg"])
        return answer(request, 400, "The request is not valid.", fields)

    def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return answer(
            request, 401, "Authentication required: send the header 'Authorization: Token <key>'."
        )

    def invalid_input(request: HttpRequest, exc: InvalidInput) -> HttpResponse:
        # A view answers a body's refusal itself (its message, its audit entry); this is the
        # answer of one that does not.
        return answer(request, 400, "The request is not valid.", exc.field_errors)

    api.add_exception_handler(ApiError, api_error)
    api.add_exception_handler(InvalidInput, invalid_input)
    api.add_exception_handler(Http404, not_found)
    api.add_exception_handler(HttpError, http_error)
    api.add_exception_handler(ValidationError, validation_error)
    api.add_exception_handler(AuthenticationError, unauthenticated)
