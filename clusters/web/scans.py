"""Host-key scans for pages and the API: a worker reads the key (web processes never talk to
servers) while the request waits for its answer."""

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.http import HttpRequest

from clusters.inventory import validators
from jobs import tasks


def scan_via_worker(address: str, port: int) -> dict:
    """Ask a worker to read the host key and wait for it: the key's type and fingerprint, or
    {"error": message}."""
    try:
        return tasks.scan_host_key.delay(address, port).get(
            timeout=settings.HOST_KEY_SCAN_TIMEOUT_S + 5
        )
    except CeleryTimeout:
        return {"error": "No worker answered within the time limit; is a Celery worker running?"}


def where_errors(typed: dict) -> dict[str, list[str]]:
    """The address and port checked as the forms check them, before anything is scanned."""
    errors: dict[str, list[str]] = {}
    try:
        validators.validate_ip_address(typed["address"])
    except validators.ValidationError as exc:
        errors["address"] = list(exc.messages)
    port = typed.get("ssh_port") or "22"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        errors["ssh_port"] = ["Expected a port number from 1 to 65535."]
    return errors


def host_key_step(
    request: HttpRequest, typed: dict, compared: str
) -> tuple[dict, dict[str, list[str]], bool]:
    """The host-key part of a page that takes a new server (add or replace a node, restore):
    a scan through a worker (asked only about a well-formed address and port), or the
    fingerprint shown before, which the admin must tick (`compared`) as compared with the
    server's own. (key, errors, confirmed): confirmed means the page may go ahead with it."""
    if request.POST.get("action") == "scan" or not request.POST.get("fingerprint"):
        errors = where_errors(typed)
        port = typed["ssh_port"] if typed.get("ssh_port", "").isdigit() else "22"
        key = {} if errors else scan_via_worker(typed["address"], int(port))
        return key, errors, False
    key = {"fingerprint": request.POST["fingerprint"]}
    if not request.POST.get(compared):
        return key, {compared: ["Compare the fingerprint with the server's own, then tick."]}, False
    return key, {}, True
