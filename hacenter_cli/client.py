"""The console's REST API over urllib: JSON in and out, errors turned into exit codes.

Every answer other than 2xx becomes a CliError carrying the API's `error` and `field_errors`:
404 -> not found (3), other 4xx -> refused (4), 5xx and no answer at all -> unreachable (5).
Redirects are not followed: urllib would resend the token to wherever the console points, and
a redirect only means the configured address is not the console's (http instead of https).
"""

import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from hacenter_cli.config import Config
from hacenter_cli.errors import CliError, Exit

TIMEOUT_S = 30
USER_AGENT = "hacenter-cli"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx code


class Api:
    """One console, one token. Methods answer the decoded JSON (or raise CliError)."""

    def __init__(self, config: Config, timeout: float = TIMEOUT_S) -> None:
        self.config, self.timeout = config, timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        pairs = [(k, v) for k, v in (query or {}).items() if v is not None]
        return self._call("GET", path + (f"?{urlencode(pairs, doseq=True)}" if pairs else ""))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call("POST", path, body or {})

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.config.api}{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http(s) checked in config)
        request.add_header("Authorization", f"Token {self.config.token}")
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", USER_AGENT)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, method, path) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # refused, DNS, TLS, timeout, a connection cut mid-answer
            reason = getattr(exc, "reason", exc)
            raise CliError(
                Exit.UNREACHABLE, f"cannot reach the console at {self.config.url}: {reason}"
            ) from None
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise CliError(
                Exit.UNREACHABLE, f"{method} {path}: the console's answer is not JSON"
            ) from None


def _http_error(exc: urllib.error.HTTPError, method: str, path: str) -> CliError:
    """The API's `{error, field_errors}` with the exit code its status means."""
    status = exc.code
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError, http.client.HTTPException):
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = body.get("error") if isinstance(body.get("error"), str) else None
    fields = body.get("field_errors") if isinstance(body.get("field_errors"), dict) else {}
    if 300 <= status < 400:
        where = exc.headers.get("Location", "elsewhere")
        return CliError(
            Exit.UNREACHABLE,
            f"the console redirects {method} {path} to {where}: set HACENTER_URL to the "
            "console's own address (https?)",
        )
    if status == 404:
        return CliError(Exit.NOT_FOUND, message or f"{path}: not found", fields, http_status=status)
    if 400 <= status < 500:
        return CliError(
            Exit.REFUSED,
            message or f"{method} {path}: refused ({status})",
            fields,
            http_status=status,
        )
    return CliError(
        Exit.UNREACHABLE,
        f"{method} {path}: the console answered {status} {message or exc.reason}",
        http_status=status,
    )
