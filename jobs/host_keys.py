"""Reading a server's SSH host key for an admin to confirm (trust on first use), in a worker."""

from django.conf import settings

from clusters.inventory.validators import normalize_address
from clusters.models import ScannedHostKey
from jobs import ssh


def host_key_scan(*, address: str, port: int) -> dict:
    """Read a server's host key and remember it, so a node created with this fingerprint can pin
    the full key. Returns the key's type and fingerprint, or {"error": message}."""
    try:
        key = ssh.scan_host_key(address, port, timeout=settings.HOST_KEY_SCAN_TIMEOUT_S)
    except ssh.SSHError as exc:
        return {"error": str(exc)}
    ScannedHostKey.objects.update_or_create(
        address=normalize_address(address),  # as NodeForm stores it, so the two match
        port=port,
        fingerprint=key.fingerprint,
        defaults={"key_type": key.key_type, "base64": key.base64},
    )
    return {
        "address": address,
        "port": port,
        "key_type": key.key_type,
        "fingerprint": key.fingerprint,
    }
