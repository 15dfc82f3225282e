"""The Patroni 4.1 config file (`/etc/patroni/<cluster>.yml`) of each database node."""

from jobs.configs.application import patroni_callbacks
from jobs.configs.pgbackrest import archive_command, replica_command, restore_command
from jobs.configs.profiles import timing_for
from jobs.configs.spec import (
    ETCD_CLIENT_PORT,
    MONITOR_USER,
    PATRONI_PORT,
    POSTGRES_PORT,
    REPLICATION_USER,
    REST_API_USER,
    REWIND_USER,
    SOCKET_DIR,
    SUPERUSER,
    TLS_CA_FILE,
    TLS_CERT_FILE,
    TLS_KEY_FILE,
    ClusterSpec,
    NodeSpec,
    bin_dir,
    bracketed,
    data_dir,
    header,
    host_cidr,
    host_port,
)
from jobs.configs.yamlout import Value, dump

NAMESPACE = "/hacenter/"
MAXIMUM_LAG_ON_FAILOVER = 1024 * 1024  # bytes a standby may lag and still be promoted


def patroni_dcs_settings(spec: ClusterSpec) -> dict[str, Value]:
    """The cluster-wide settings Patroni keeps in etcd.

    Written into `bootstrap.dcs` for the first start; afterwards Patroni ignores that section,
    so a later change is sent with `PATCH /config` using this same dict.
    """
    timing = timing_for(spec.failover_profile)
    sync = spec.replication == "sync"
    settings = {
        "ttl": timing.ttl,
        "loop_wait": timing.loop_wait,
        "retry_timeout": timing.retry_timeout,
        "primary_start_timeout": timing.primary_start_timeout,
        "maximum_lag_on_failover": MAXIMUM_LAG_ON_FAILOVER,
        "synchronous_mode": sync,
        # Strict means "no writes without a synchronous standby"; it only exists with sync.
        "synchronous_mode_strict": sync and spec.sync_strict,
        "postgresql": {
            "use_pg_rewind": True,
            "use_slots": True,
            "parameters": {
                "wal_level": "replica",
                "hot_standby": "on",
                # pg_rewind needs hint bits in the WAL (data checksums give it too).
                "wal_log_hints": "on",
                "max_wal_senders": 10,
                "max_replication_slots": 10,
                "wal_keep_size": "256MB",
                "password_encryption": "scram-sha-256",
                # A new replica waits for its slot until the leader's next loop; retry quickly.
                "wal_retrieve_retry_interval": "1s",
                # Notice a dead standby well before the 60 s default.
                "wal_sender_timeout": "30s",
            },
        },
    }
    if spec.adopted is not None:
        # An adopted server's own settings (memory, logging, extensions...), cluster-wide so
        # every standby runs as the server did. They hold none of the settings above except
        # where the server had more (max_wal_senders, max_replication_slots, wal_keep_size):
        # existing_postgres_judge.carried_parameters decides that.
        parameters = settings["postgresql"]["parameters"]
        settings["postgresql"]["parameters"] = {**parameters, **dict(spec.adopted.parameters)}
    return settings


def pg_hba_lines(spec: ClusterSpec) -> list[str]:
    """Who may connect to PostgreSQL: the cluster's own hosts and the named client networks.

    Clients reach the database through HAProxy's TCP proxy, which hides their address, so the
    proxy's line (each proxy's, with two) stands for them; the client networks are for direct
    connections.

    With the cluster's TLS (`spec.tls`), replication and HA Center's own roles come in over TLS
    only (`hostssl`, and a `hostnossl … reject` so no later rule, such as a client line or a
    taken-over server's own rules kept after ours, lets them in over plain TCP); clients use
    `hostssl` too when the cluster requires it (with the same `reject` for their sources).
    Loopback and the local socket stay as they are: nothing crosses a network there.
    """
    tls = spec.tls
    ours = "hostssl" if tls is not None else "host"
    clients = "hostssl" if tls is not None and tls.require_client_tls else "host"
    lines = [
        f"local all {SUPERUSER} peer",
        "local all all scram-sha-256",
        "host all all 127.0.0.1/32 scram-sha-256",
        # Patroni reads a standby's own timeline over a local replication connection before it
        # promotes it; without this line a failover stalled (seen in the freeze test).
        f"host replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256",
    ]
    databases = [host_cidr(node.address) for node in spec.database_nodes]
    lines += [f"{ours} replication {REPLICATION_USER} {cidr} scram-sha-256" for cidr in databases]
    # Patroni connects to its own node's address as the superuser; pg_rewind to the new
    # primary's address as the rewind user.
    lines += [f"{ours} all {SUPERUSER} {cidr} scram-sha-256" for cidr in databases]
    lines += [f"{ours} all {REWIND_USER} {cidr} scram-sha-256" for cidr in databases]
    lines += [
        f"{ours} all {MONITOR_USER} {host_cidr(a)} scram-sha-256" for a in spec.monitor_sources
    ]
    if tls is not None:
        roles = ",".join((SUPERUSER, REPLICATION_USER, REWIND_USER, MONITOR_USER))
        lines.append(f"hostnossl all,replication {roles} all reject")
    sources = [*(host_cidr(p.address) for p in spec.proxies), *spec.client_networks]
    lines += [f"{clients} all all {cidr} scram-sha-256" for cidr in sources]
    if clients == "hostssl":
        # Required means required: a taken-over server's own rule for the same networks,
        # kept after ours, must not let a plain connection in either.
        lines += [f"hostnossl all all {cidr} reject" for cidr in sources]
    return lines


def postgresql_parameters(spec: ClusterSpec) -> dict[str, Value]:
    """The node's own PostgreSQL settings (not cluster-wide: Patroni writes them into each
    node's postgresql.conf). With the cluster's TLS, PostgreSQL serves the node certificate;
    `ssl` is reloadable, so a running server takes it without a restart."""
    parameters: dict[str, Value] = {"unix_socket_directories": SOCKET_DIR}
    if spec.tls is not None:
        parameters |= {
            "ssl": "on",
            "ssl_cert_file": TLS_CERT_FILE,
            "ssl_key_file": TLS_KEY_FILE,
            # No ssl_ca_file: with one, PostgreSQL asks clients for a certificate, and a client
            # holding one from another CA (~/.postgresql/postgresql.crt) fails the handshake.
            "ssl_min_protocol_version": "TLSv1.2",
        }
    if spec.backup_stanza:
        # Per node, not in the DCS: whichever node is primary archives, so the archive goes on
        # across a failover or a switchover. `on`, not `always`: pgBackRest refuses `always`
        # (its check and backup stop with "archive_mode=always not supported"). So a segment
        # the old primary finished but had not pushed yet when it died is not archived by the
        # standby that received it; archive-push runs as soon as a segment is complete, which
        # keeps that window to the push's own second. archive_timeout bounds how old the
        # newest archived WAL is on a quiet database.
        parameters |= {
            "archive_mode": "on",
            "archive_command": archive_command(spec.backup_stanza),
            "archive_timeout": 60,
        }
    return parameters


def postgresql_authentication(spec: ClusterSpec) -> dict[str, Value]:
    """The roles Patroni connects as. With the cluster's TLS, replication (primary_conninfo,
    pg_basebackup) and pg_rewind verify the other node's certificate against the cluster's CA
    and its address against the certificate's SANs (Patroni passes sslmode and sslrootcert on).
    The superuser only connects to its own node (the node's address or loopback), so it keeps
    libpq's default (TLS when offered), which the `hostssl` rule then requires."""
    secrets = spec.secrets
    verify: dict[str, Value] = (
        {"sslmode": "verify-full", "sslrootcert": TLS_CA_FILE} if spec.tls is not None else {}
    )
    return {
        "superuser": {"username": SUPERUSER, "password": secrets.superuser},
        "replication": {"username": REPLICATION_USER, "password": secrets.replication, **verify},
        "rewind": {"username": REWIND_USER, "password": secrets.rewind, **verify},
    }


def restapi_section(spec: ClusterSpec, api_address: str) -> dict[str, Value]:
    """Patroni's REST API: Basic auth on the unsafe endpoints; with the cluster's TLS, https
    with the node certificate. `cafile` is also what Patroni's own requests to the other
    members verify against (PatroniRequest takes `ctl.cacert` or else `restapi.cafile`, and
    checks the member's address against the certificate's IP SANs). Client certificates are
    not asked for (`verify_client` unset): HAProxy and the monitor authenticate the server."""
    section: dict[str, Value] = {
        "listen": api_address,
        "connect_address": api_address,
        # Patroni asks for these on the unsafe endpoints (switchover, restart, PATCH config).
        "authentication": {"username": REST_API_USER, "password": spec.secrets.rest_api},
    }
    if spec.tls is not None:
        section |= {"certfile": TLS_CERT_FILE, "keyfile": TLS_KEY_FILE, "cafile": TLS_CA_FILE}
    return section


def etcd3_section(spec: ClusterSpec) -> dict[str, Value]:
    """Patroni's etcd client: with the cluster's TLS, https presenting the node certificate
    (etcd demands one from the cluster's CA)."""
    section: dict[str, Value] = {
        "hosts": [host_port(member.address, ETCD_CLIENT_PORT) for member in spec.etcd_members]
    }
    if spec.tls is not None:
        section |= {
            "protocol": "https",
            "cacert": TLS_CA_FILE,
            "cert": TLS_CERT_FILE,
            "key": TLS_KEY_FILE,
        }
    return section


def replica_methods(spec: ClusterSpec) -> dict[str, Value]:
    """How Patroni creates a replica (a new node, a Rebuild's full copy, a reinit): from the
    backup repository when it holds a backup, else (and when that fails) pg_basebackup from
    the primary.

    The `pgbackrest` method runs as postgres (Patroni's user) with the node's pgbackrest.conf,
    which reaches the repository over TLS. `no_params`: pgBackRest refuses the --scope,
    --datadir... Patroni would add. `keep_data`: Patroni leaves the data directory for the
    delta restore; should the restore fail, its basebackup empties the directory first.
    `recovery_conf.restore_command`: Patroni strips recovery settings from
    postgresql.auto.conf (where pgBackRest wrote its own), so the WAL between the backup's end
    and now is fetched from the archive with this one, then the standby streams from the
    primary (Patroni's primary_conninfo).
    """
    if not (spec.backup_stanza and spec.backup_replicas):
        return {"create_replica_methods": ["basebackup"]}
    return {
        "create_replica_methods": ["pgbackrest", "basebackup"],
        "pgbackrest": {
            "command": replica_command(spec.backup_stanza, data_dir(spec)),
            "keep_data": True,
            "no_params": True,
        },
        "recovery_conf": {"restore_command": restore_command(spec.backup_stanza)},
    }


def patroni_config_dict(spec: ClusterSpec, node: NodeSpec) -> dict[str, Value]:
    """The settings of `node`'s Patroni; ValueError for a node that does not run PostgreSQL."""
    if node not in spec.database_nodes:
        raise ValueError(f"{node.name} is not a database node of {spec.name}.")
    api_address = host_port(node.address, PATRONI_PORT)
    return {
        "scope": spec.name,
        "namespace": NAMESPACE,
        "name": node.name,
        "restapi": restapi_section(spec, api_address),
        "etcd3": etcd3_section(spec),
        **({"ctl": {"cacert": TLS_CA_FILE}} if spec.tls is not None else {}),
        "bootstrap": {
            "dcs": patroni_dcs_settings(spec),
            "initdb": [
                {"encoding": "UTF8"},
                "data-checksums",
                {"auth-host": "scram-sha-256"},
                {"auth-local": "peer"},
            ],
        },
        "postgresql": {
            # Loopback too, for local tools; Patroni strips an IPv6 host's brackets.
            "listen": f"{bracketed(node.address)},127.0.0.1:{POSTGRES_PORT}",
            "connect_address": host_port(node.address, POSTGRES_PORT),
            "data_dir": data_dir(spec),
            "bin_dir": bin_dir(spec.postgres_version),
            "pgpass": f"/var/lib/postgresql/.pgpass_{spec.name}",
            "authentication": postgresql_authentication(spec),
            "parameters": postgresql_parameters(spec),
            # Without a fast checkpoint a new replica waited 95 s for a spread one (DESIGN §2).
            "basebackup": [{"checkpoint": "fast"}],
            **replica_methods(spec),
            # An adopted server's own rules come after the cluster's, so ours decide first.
            "pg_hba": pg_hba_lines(spec) + list(spec.adopted.pg_hba if spec.adopted else ()),
            **(
                {"pg_ident": list(spec.adopted.pg_ident)}
                if spec.adopted and spec.adopted.pg_ident
                else {}
            ),
            # The application's unit follows the primary (jobs.configs.application).
            **({"callbacks": patroni_callbacks(spec)} if spec.application_unit else {}),
        },
        # Quoted by the writer: a bare off is YAML for false. The watchdog stays off until the
        # admin asks for softdog on real servers (it would reset a whole lab machine).
        "watchdog": {"mode": "off"},
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        "log": {"level": "INFO"},
    }


def patroni_config(spec: ClusterSpec, node: NodeSpec) -> str:
    """The YAML file Patroni reads on `node`."""
    return dump(patroni_config_dict(spec, node), header(spec))
