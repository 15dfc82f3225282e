"""Host-key scans for pages and the API: a worker reads the key (web processes never talk to
servers) while the request waits for its answer."""

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings

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
