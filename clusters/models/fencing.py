"""Fence devices: how a database node is powered off for certain (issue 21 part 1)."""

from django.db import models

from clusters.inventory.fence_methods import METHODS
from clusters.inventory.fields import EncryptedTextField


class FenceDevice(models.Model):
    """A database node's fence device: the method (which agent of Debian's `fence-agents`),
    its options and its secret, and the last "Test fence device" result.

    The agent runs on the cluster's witness (the first proxy), where the fast-path agent will
    run and where the console is not needed during a failover; a test therefore proves the
    witness reaches the device. The secret is encrypted at rest, goes to the agent on stdin
    only, and is redacted from every job log (Cluster.secret_values); pages and the API say
    only whether one is set. A node without a device, or whose last test failed, keeps the
    lease path.
    """

    class Method(models.TextChoices):
        REDFISH = "redfish", METHODS["redfish"].title
        IPMILAN = "ipmilan", METHODS["ipmilan"].title
        VIRSH = "virsh", METHODS["virsh"].title
        AWS = "aws", METHODS["aws"].title
        AZURE = "azure", METHODS["azure"].title
        GCE = "gce", METHODS["gce"].title

    node = models.OneToOneField(
        "clusters.Node", related_name="fence_device", on_delete=models.CASCADE
    )
    method = models.CharField(max_length=20, choices=Method.choices)
    # The agent's options by its stdin names (clusters.inventory.fence_methods), checked there.
    options = models.JSONField(default=dict, blank=True)
    secret = EncryptedTextField(blank=True)
    updated = models.DateTimeField(auto_now=True)
    # The last test: when, whether the device answered, and its one line ("Status: ON").
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_result = models.CharField(max_length=300, blank=True)
    last_test_power = models.CharField(max_length=10, blank=True)  # "on" / "off" when it answered

    def __str__(self) -> str:
        return f"{self.node} fence {self.method}"

    @property
    def agent(self) -> str:
        return METHODS[self.method].agent

    def untested_reason(self) -> str:
        """Why the fast path may not fence with this device ("" when its last test passed):
        the one rule the agent's config, the fast-failover page and the failover drill share."""
        if self.last_test_ok is None:
            return "its fence device was never tested"
        if not self.last_test_ok:
            return f"its fence device's last test failed ({self.last_test_result or 'no answer'})"
        return ""

    def secret_values(self) -> list[str]:
        """The secret, for redaction of logs."""
        return [self.secret] if self.secret else []
