"""The inventory: credentials, clusters, their nodes and generated secrets, scanned host keys."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from clusters.inventory import cluster_fields, ssh_keys, validators
from clusters.inventory.fields import EncryptedTextField
from clusters.models.fencing import FenceDevice


def _check(
    errors: dict[str, list[str]], field: str, check: Callable[[Any], None], value: object
) -> None:
    """Run one validator; collect its messages under ``field``."""
    try:
        check(value)
    except ValidationError as exc:
        errors.setdefault(field, []).extend(exc.messages)


def pem_secret_values(pem: str) -> list[str]:
    """A private key, whole and line by line (a key may be echoed one line at a time), for
    redaction."""
    if not pem:
        return []
    return [pem] + [ln.strip() for ln in pem.splitlines() if len(ln.strip()) >= 16]


class Credential(models.Model):
    """How the console logs in to servers over SSH: a user with a private key or a password.

    The key, its passphrase and the password are encrypted at rest and never leave the console
    except inside the SSH handshake.
    """

    class Kind(models.TextChoices):
        KEY = "key", "private key"
        PASSWORD = "password", "password"

    name = models.CharField(max_length=100, unique=True)
    username = models.CharField(max_length=32)
    private_key = EncryptedTextField(blank=True)
    passphrase = EncryptedTextField(blank=True)
    password = EncryptedTextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.username}, {self.kind})"

    @property
    def kind(self) -> str:
        return self.Kind.KEY if self.private_key else self.Kind.PASSWORD

    def clean(self) -> None:
        """The checks the credential pages and the API run, for whatever saves through a model
        form (the Django admin): a display name, a Unix user, either a key or a password."""
        errors: dict[str, list[str]] = {}
        _check(errors, "name", validators.validate_label, self.name)
        _check(errors, "username", validators.validate_unix_user, self.username)
        for field in ("passphrase", "password"):
            _check(errors, field, validators.validate_secret_text, getattr(self, field))
        if bool(self.private_key) == bool(self.password):
            errors.setdefault("__all__", []).append(
                "Give either a private key or a password, not both."
            )
        elif self.private_key:
            try:
                ssh_keys.parse_private_key(self.private_key, self.passphrase or None)
            except ssh_keys.InvalidPrivateKey as exc:
                errors.setdefault("private_key", []).append(str(exc))
        elif self.passphrase:
            errors.setdefault("passphrase", []).append("A passphrase only goes with a private key.")
        if errors:
            raise ValidationError(errors)

    def secret_values(self) -> list[str]:
        """Every secret this credential holds, for redaction of logs."""
        return [v for v in (self.password, self.passphrase) if v] + pem_secret_values(
            self.private_key
        )


class Cluster(models.Model):
    """A PostgreSQL HA cluster: database nodes managed by Patroni, etcd, and one HAProxy host
    or two that share a floating address (keepalived, VRRP)."""

    class State(models.TextChoices):
        NEW = "new"  # defined in the console, nothing done on the servers yet
        PROVISIONING = "provisioning"  # a setup job is building it
        HEALTHY = "healthy"  # a primary, every standby streaming, proxy routing to the primary
        DEGRADED = "degraded"  # writable, but a standby or the proxy is not right
        FAILING_OVER = "failing_over"  # no primary at the moment, Patroni is electing one
        MAINTENANCE = "maintenance"  # Patroni paused by an operator
        DOWN = "down"  # no writable primary
        UNKNOWN = "unknown"  # the monitor could not read the cluster

    class Replication(models.TextChoices):
        ASYNC = "async"
        SYNC = "sync"

    class Origin(models.TextChoices):
        BUILT = "built", "set up by HA Center"
        ADOPTED = "adopted", "an existing Patroni cluster, adopted"

    class FailoverProfile(models.TextChoices):
        FAST = "fast"
        BALANCED = "balanced"
        SAFE = "safe"
        DEFAULTS = "defaults", "Patroni's defaults"  # for comparison; slowest failover

    name = models.CharField(max_length=63, unique=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.NEW)
    replication = models.CharField(
        max_length=10, choices=Replication.choices, default=Replication.ASYNC
    )
    failover_profile = models.CharField(
        max_length=10, choices=FailoverProfile.choices, default=FailoverProfile.BALANCED
    )
    postgres_version = models.PositiveSmallIntegerField(default=15)
    client_networks = models.JSONField(default=list, blank=True)
    database_name = models.CharField(max_length=63, blank=True)
    database_user = models.CharField(max_length=63, blank=True)
    # synchronous_mode_strict: refuse writes rather than run without a synchronous standby.
    sync_strict = models.BooleanField(default=False)
    http_frontends = models.JSONField(default=list, blank=True)  # [{"listen_port", "app_port"}]
    # An HTTP proxy apt uses on the nodes (servers without direct access to their mirrors).
    apt_proxy = models.CharField(max_length=200, blank=True)
    # Take over the PostgreSQL already running on the master (its data, roles and passwords)
    # instead of initialising an empty one; what the take-over found is kept in `adopted_from`
    # (version, Debian cluster name, data and config directories, the unit it disabled).
    adopt_database = models.BooleanField(default=False)
    adopted_from = models.JSONField(default=dict, blank=True)
    # The application's systemd unit on the database nodes: setup installs a Patroni callback
    # that starts it where the primary is and stops it on standbys ("the Slave stays idle").
    application_unit = models.CharField(max_length=100, blank=True)
    # Built by HA Center's setup, or an existing Patroni cluster adopted for monitoring and
    # operations (setup never runs on it unless the admin asks); `patroni_layout` holds what
    # adoption read from its members and etcd (scope, namespace, config path, data dir, ...).
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.BUILT)
    patroni_layout = models.JSONField(default=dict, blank=True)
    # The last configuration lint: findings [{rule, severity, message, consequence}] and when.
    config_findings = models.JSONField(default=list, blank=True)
    config_checked = models.DateTimeField(null=True, blank=True)
    # The last reading of PostgreSQL's parameters (jobs.playbooks.parameters): the primary's
    # pg_settings catalog (type, unit, range, context) and each node's values that differ from
    # the defaults or wait for a restart; never the values of protected parameters (some, such
    # as primary_conninfo, hold passwords). Pages and the API read it; only jobs refresh it.
    pg_parameters = models.JSONField(default=dict, blank=True)
    pg_parameters_read = models.DateTimeField(null=True, blank=True)
    # The cluster's own certificate authority (clusters.inventory.tls): it signs every node's
    # certificate for etcd, Patroni's REST API and PostgreSQL. The certificate is public (the
    # cluster page offers it for `sslrootcert`); the key is a secret like the passwords.
    ca_certificate = models.TextField(blank=True)
    ca_key = EncryptedTextField(blank=True)
    # Clients must use TLS (pg_hba `hostssl`); on for clusters made after TLS arrived.
    require_client_tls = models.BooleanField(default=True)
    # An nftables table of HA Center's own on every node limits who reaches the cluster's ports.
    firewall = models.BooleanField(default=True)
    maintenance = models.BooleanField(default=False)
    # The fenced fast path (issue 21, docs/fast-failover.md): setup installs the agent on the
    # witness and arms it only when on; nodes without a tested fence device keep the lease path.
    fast_failover = models.BooleanField(default=False)
    # At most one fast failover per cluster per this many seconds (kept in etcd by the agent).
    fast_failover_window_s = models.PositiveIntegerField(default=3600)
    # With two proxies: the floating address clients use, with its prefix length
    # ("10.0.0.100/24": keepalived adds it with that mask); empty for no VRRP. The address lies
    # in both proxies' network and is no node's own (clusters.inventory.virtual_ip).
    virtual_ip = models.CharField(max_length=50, blank=True)
    # VRRP's virtual_router_id (1-255); None derives it from the cluster's id
    # (`vrrp_router_id_effective`). Two clusters on one network segment need different ids.
    vrrp_router_id = models.PositiveSmallIntegerField(null=True, blank=True)
    # Which proxy answered on the floating address at the monitor's last read ("" unknown).
    vip_holder = models.CharField(max_length=63, blank=True)
    # Why the monitor judged the state it did: one line each, most weighty first, in words an
    # operator acts on (clusters.monitoring.health.derive_state); empty when healthy.
    state_reasons = models.JSONField(default=list, blank=True)
    # When the current state began, as the monitor saw it; unchanged while the state holds.
    # Empty until the monitor has judged the cluster once.
    state_since = models.DateTimeField(null=True, blank=True)
    last_checked = models.DateTimeField(null=True, blank=True)  # the monitor's last full read
    # Who held Patroni's leader key at the last read: a change of it is a failover/switchover.
    last_leader = models.CharField(max_length=63, blank=True)
    # One monitor run per cluster at a time: a run takes the lease with a conditional update.
    monitor_lease = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The checks the cluster pages, the wizard and the API run, for whatever saves through a
        model form (the Django admin): these values reach file names, SQL and HAProxy's config."""
        errors: dict[str, list[str]] = {}
        _check(errors, "name", validators.validate_name, self.name)
        if self.apt_proxy:
            _check(errors, "apt_proxy", validators.validate_apt_proxy, self.apt_proxy)
        found: dict[str, list[str]] = {}
        if self.database_name or self.database_user:
            cluster_fields.validate_database(
                {"name": self.database_name, "user": self.database_user}, found
            )
        cluster_fields.validate_client_networks(self.client_networks, found)
        cluster_fields.validate_http_frontends(self.http_frontends, found)
        cluster_fields.validate_application_unit(self.application_unit, found)
        for key, messages in found.items():
            # "database.user" -> the model's field database_user; list items -> their field.
            field = key.replace("database.", "database_").split("[")[0].split(".")[0]
            errors.setdefault(field, []).extend(messages)
        if errors:
            raise ValidationError(errors)

    @property
    def database_nodes(self) -> models.QuerySet["Node"]:
        return self.nodes.filter(kind=Node.Kind.DATABASE)

    @property
    def proxy_node(self) -> "Node | None":
        """The first proxy by name: with two, the one that is the etcd witness."""
        return self.nodes.filter(kind=Node.Kind.PROXY).first()

    @property
    def proxy_nodes(self) -> list["Node"]:
        """Every proxy (one, or two behind the floating address), the witness first."""
        return list(self.nodes.filter(kind=Node.Kind.PROXY))

    @property
    def virtual_address(self) -> str:
        """The floating address without its prefix length ("" when there is none)."""
        return self.virtual_ip.split("/")[0]

    @property
    def vrrp_router_id_effective(self) -> int:
        """The admin's virtual_router_id, else one derived from the cluster's id (1-255)."""
        return self.vrrp_router_id or (1 + ((self.pk or 1) - 1) % 255)

    def secret_values(self) -> list[str]:
        """Every secret of the cluster, of its nodes' credentials and fence devices, for log
        redaction."""
        values = [s.value for s in self.secrets.all()]
        values += pem_secret_values(self.ca_key)
        for node in self.nodes.select_related("credential"):
            values += node.credential.secret_values()
            values += pem_secret_values(node.tls_key)
        for device in FenceDevice.objects.filter(node__cluster=self):
            values += device.secret_values()
        return values


class ClusterSecret(models.Model):
    """A password the console generated for a cluster (database roles, Patroni REST, HAProxy
    stats), encrypted at rest. Never logged; shown only on an admin's explicit, audited request.
    """

    class Name(models.TextChoices):
        SUPERUSER = "superuser"  # PostgreSQL role postgres
        REPLICATION = "replication"  # role replicator, used by standbys
        REWIND = "rewind"  # role rewind_user, used by pg_rewind
        REST_API = "rest_api"  # Patroni REST API, unsafe endpoints
        HAPROXY_STATS = "haproxy_stats"  # HAProxy stats page
        MONITOR = "monitor"  # role hacenter_monitor (pg_monitor), used by the monitor
        APPLICATION = "application"  # the application's own role, when the cluster names one
        BACKUP_CIPHER = "backup_cipher"  # pgBackRest's repository passphrase (repo1-cipher-pass)

    cluster = models.ForeignKey(Cluster, related_name="secrets", on_delete=models.CASCADE)
    name = models.CharField(max_length=30, choices=Name.choices)
    value = EncryptedTextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="cluster_secret_unique")
        ]

    def __str__(self) -> str:
        return f"{self.cluster} {self.name}"


class Node(models.Model):
    """One server of a cluster, with the SSH host key the admin confirmed (pinned)."""

    class Kind(models.TextChoices):
        DATABASE = "database"  # PostgreSQL + Patroni + an etcd member
        PROXY = "proxy"  # HAProxy (+ keepalived with two); the first one is the etcd witness

    cluster = models.ForeignKey(Cluster, related_name="nodes", on_delete=models.CASCADE)
    name = models.CharField(max_length=63)
    address = models.CharField(max_length=253)
    ssh_port = models.PositiveIntegerField(default=22)
    credential = models.ForeignKey(Credential, related_name="nodes", on_delete=models.PROTECT)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The database node setup bootstraps as the first primary ("master" in the vendor manuals).
    bootstrap_primary = models.BooleanField(default=False)
    host_key_type = models.CharField(max_length=40)
    host_key_base64 = models.TextField()
    host_key_fingerprint = models.CharField(max_length=100)
    # The node's certificate from the cluster's CA (SANs: its name and addresses) and its key.
    tls_certificate = models.TextField(blank=True)
    tls_key = EncryptedTextField(blank=True)
    # Set by setup once this node's etcd member and Patroni REST API speak TLS: until then
    # (a cluster built before TLS, being converted) workers and the monitor use plain HTTP.
    tls_active = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cluster", "kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="node_name_unique_in_cluster"),
            # A server can belong to one cluster only: its ports would collide otherwise.
            models.UniqueConstraint(fields=["address", "ssh_port"], name="node_address_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"

    def clean(self) -> None:
        """The checks NodeForm runs, for whatever saves through a model form (the Django
        admin): a name fit for file names and etcd, an IP address others reach it by."""
        errors: dict[str, list[str]] = {}
        _check(errors, "name", validators.validate_name, self.name)
        _check(errors, "address", validators.validate_server_address, self.address)
        if not 1 <= (self.ssh_port or 0) <= 65535:
            errors["ssh_port"] = ["Expected a port number from 1 to 65535."]
        if self.host_key_fingerprint:
            _check(
                errors,
                "host_key_fingerprint",
                validators.validate_fingerprint,
                self.host_key_fingerprint,
            )
        if errors:
            raise ValidationError(errors)


class ScannedHostKey(models.Model):
    """A host key seen by a scan, waiting for an admin to confirm its fingerprint.

    Creating a node with a fingerprint pins the full key recorded here; the console never trusts
    a key the admin did not see.
    """

    address = models.CharField(max_length=253)
    port = models.PositiveIntegerField()
    key_type = models.CharField(max_length=40)
    base64 = models.TextField()
    fingerprint = models.CharField(max_length=100)
    scanned = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["address", "port", "fingerprint"], name="scanned_key_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.address}:{self.port} {self.fingerprint}"

    def clean(self) -> None:
        """The checks a scan's request passes, for whatever saves through a model form (the
        Django admin): an IP address, a port, a SHA256 fingerprint."""
        errors: dict[str, list[str]] = {}
        _check(errors, "address", validators.validate_ip_address, self.address)
        if not 1 <= (self.port or 0) <= 65535:
            errors["port"] = ["Expected a port number from 1 to 65535."]
        _check(errors, "fingerprint", validators.validate_fingerprint, self.fingerprint)
        if errors:
            raise ValidationError(errors)
