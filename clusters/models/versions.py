"""What each node runs and what its apt sources offer, as the last version check read it."""

from django.db import models

from clusters.models.inventory import Node


class NodeVersions(models.Model):
    """One node's software versions, written by the `check_updates` and `minor_upgrade` jobs.

    `packages`: {name: {"installed": version, "candidate": version}} for HA Center's packages
    only ("" where dpkg has none installed or apt offers none). `running`: versions the daemons
    report ({"postgresql": "15.20-0+deb12u1", "patroni": "4.1.5"}). `stale`: programs that run
    a binary the package manager has since replaced (they still run the old version until a
    restart).
    """

    node = models.OneToOneField(Node, related_name="versions", on_delete=models.CASCADE)
    packages = models.JSONField(default=dict, blank=True)
    running = models.JSONField(default=dict, blank=True)
    stale = models.JSONField(default=list, blank=True)
    checked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.node}: {len(self.packages)} packages checked at {self.checked_at}"
