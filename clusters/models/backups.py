"""A cluster's backups with pgBackRest: where the repository lives, how long backups are kept,
when they run, and what the repository last said about itself."""

from django.db import models

from clusters.models.inventory import Cluster, Credential, Node

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
    # The restore drill (issue 22 part 3): a throwaway server outside every cluster the
    # latest backup is restored onto, checked and torn down. No address: no drill. Its host
    # key is pinned here from an earlier scan, like a node's.
    drill_address = models.CharField(max_length=253, blank=True)
    drill_ssh_port = models.PositiveIntegerField(default=22)
    drill_credential = models.ForeignKey(
        Credential, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    drill_host_key_type = models.CharField(max_length=40, blank=True)
    drill_host_key_base64 = models.TextField(blank=True)
    drill_host_key_fingerprint = models.CharField(max_length=100, blank=True)
    # The database whose tables the drill compares, and which ("schema.table"; empty: its five
    # largest user tables).
    drill_database = models.CharField(max_length=63, default="postgres")
    drill_tables = models.JSONField(default=list, blank=True)
    # The beat starts a drill when the last one is older than this (0: no scheduled drills).
    drill_every_hours = models.PositiveIntegerField(default=0)
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

    def drill_server(self) -> Node | None:
        """The drill server as an unsaved Node (never in the inventory) with its pinned host
        key; None when no drill server is set."""
        if not self.drill_address or self.drill_credential_id is None:
            return None
        return Node(
            cluster=self.cluster,
            name="drill-server",
            address=self.drill_address,
            ssh_port=self.drill_ssh_port,
            credential=self.drill_credential,
            kind=Node.Kind.DATABASE,
            host_key_type=self.drill_host_key_type,
            host_key_base64=self.drill_host_key_base64,
            host_key_fingerprint=self.drill_host_key_fingerprint,
        )

    def holds_backup(self) -> bool:
        """The repository, as last read, holds a backup that did not fail: standbys can be
        restored from it (Patroni's `pgbackrest` replica method). `info` is only written by
        a job whose stanza check passed, so this also says the backups were configured."""
        return any(not b.get("error") for b in (self.info or {}).get("backups") or [])
