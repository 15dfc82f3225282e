"""Defining, changing and removing a node's fence device (issue 21 part 1).

Only the inventory changes here: setup installs the agents on the witness, the `fence_test`
job asks the device for its power state. The secret is write-only: a change that leaves it
out keeps the stored one (unless the method changes, which needs the new method's secret).
"""

from django.core.exceptions import ValidationError

from clusters.inventory.fence_methods import METHODS, clean_options, clean_secret
from clusters.inventory.services import InvalidInput
from clusters.models import FenceDevice, Node


def fence_device_set(*, node: Node, data: dict) -> FenceDevice:
    """Create or update ``node``'s fence device from ``data`` (method, options: a dict by the
    agent's option names, secret); InvalidInput names each wrong field, nothing is saved
    then. A changed device loses its last test result: it says nothing about the new one."""
    errors: dict[str, list[str]] = {}
    if node.kind != Node.Kind.DATABASE:
        raise InvalidInput({"node": ["Only a database node has a fence device."]})
    device = FenceDevice.objects.filter(node=node).first()
    method = data.get("method", device.method if device else None)
    if method not in METHODS:
        raise InvalidInput({"method": [f"One of: {', '.join(METHODS)}."]})
    same_method = device is not None and device.method == method
    given = data.get("options", {})
    if not isinstance(given, dict):
        raise InvalidInput({"options": ["An object of the agent's options."]})
    try:
        options = clean_options(method, given, old=device.options if same_method else None)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(f"options.{field}", []).extend(messages)
        options = {}
    secret = data.get("secret")
    if secret is None:
        secret = device.secret if same_method else ""
    if not isinstance(secret, str):
        errors.setdefault("secret", []).append("Text.")
    else:
        try:
            secret = clean_secret(method, secret)
        except ValidationError as exc:
            errors.setdefault("secret", []).extend(exc.messages)
        else:
            if METHODS[method].credential_required and not secret:
                label = METHODS[method].credential_label
                errors.setdefault("secret", []).append(f"{label}: required for {method}.")
    if errors:
        raise InvalidInput(errors)
    device = device or FenceDevice(node=node)
    changed = (device.method, device.options, device.secret) != (method, options, secret)
    device.method, device.options, device.secret = method, options, secret
    if changed:
        device.last_test_at = device.last_test_ok = None
        device.last_test_result = device.last_test_power = ""
    device.save()
    return device


def fence_device_delete(*, node: Node) -> bool:
    """Remove the node's fence device (the node keeps the lease path); False when it had none."""
    deleted, _ = FenceDevice.objects.filter(node=node).delete()
    return bool(deleted)


def fence_device_summary(device: FenceDevice) -> dict:
    """What pages and the API show of a device: never the secret, only whether one is set."""
    return {
        "node": device.node.name,
        "method": device.method,
        "agent": device.agent,
        "options": dict(device.options),
        "secret_set": bool(device.secret),
        "witness": (w.name if (w := device.node.cluster.proxy_node) else None),
        "last_test": {
            "at": device.last_test_at.isoformat() if device.last_test_at else None,
            "ok": device.last_test_ok,
            "power": device.last_test_power or None,
            "result": device.last_test_result,
        },
    }
