"""A cluster's backups with pgBackRest: where the repository lives, how long backups are kept,
when they run, and what the repository last said about itself."""

from django.db import models

from clusters.models.inventory import Cluster, Node

DEFAULT_REPO_PATH = "/var/lib/pgbackrest"


class BackupPolicy(models.Model):
    """How a cluster is backed up (issue 22 part 1). One per cluster; none means no backups.

    The repository is a directory on one host (`repo_node`, the proxy by default): pgBackRest
    runs there as a TLS server, every database node pushes its WAL to it, and backups are
    taken from there. The repository's encryption passphrase is a ClusterSecret
    (`backup_cipher`), never a field here.
    """

    cluster = models.OneToOneField(Cluster, related_name="backup_policy", on_delete=models.CASCADE)
    enabled = models.BooleanField(default=True)
    # The host that holds the repository; null: the cluster's proxy.
    repo_node = models.ForeignKey(
        Node, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    repo_path = models.CharField(max_length=200, default=DEFAULT_REPO_PATH)
    # Full backups kept (repo1-retention-full); older ones and their WAL are expired.
    retention_full = models.PositiveSmallIntegerField(default=2)
    # The schedule the console's beat follows: a full backup when the last is older than
    # `full_every_hours`, otherwise a differential when the last backup of any type is older
    # than `diff_every_hours`. 0 turns that kind off.
    full_every_hours = models.PositiveIntegerField(default=7 * 24)
    diff_every_hours = models.PositiveIntegerField(default=24)
    # What `pgbackrest info --output=json` last said (the stanza's entry), and when it was read.
    info = models.JSONField(default=dict, blank=True)
    info_read = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"backups of {self.cluster}"

    @property
    def stanza(self) -> str:
        """pgBackRest's name for the cluster's database: the cluster's name."""
        return self.cluster.name

    def repository_node(self) -> Node | None:
        """The host holding the repository: the chosen one, else the proxy."""
        return self.repo_node or self.cluster.proxy_node

    def holds_backup(self) -> bool:
        """The repository, as last read, holds a backup that did not fail: standbys can be
        restored from it (Patroni's `pgbackrest` replica method). `info` is only written by
        a job whose stanza check passed, so this also says the backups were configured."""
        return any(not b.get("error") for b in (self.info or {}).get("backups") or [])
