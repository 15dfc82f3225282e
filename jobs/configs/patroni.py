"""The Patroni 4.1 config file (`/etc/patroni/<cluster>.yml`) of each database node."""

from jobs.configs.application import patroni_callbacks
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
        # existing_postgres.carried_parameters decides that.
        parameters = settings["postgresql"]["parameters"]
        settings["postgresql"]["parameters"] = {**parameters, **dict(spec.adopted.parameters)}
    return settings


def pg_hba_lines(spec: ClusterSpec) -> list[str]:
    """Who may connect to PostgreSQL: the cluster's own hosts and the named client networks.

    Clients reach the database through HAProxy's TCP proxy, which hides their address, so the
    proxy's line stands for them; the client networks are for direct connections.
    """
    lines = [
        f"local all {SUPERUSER} peer",
        "local all all scram-sha-256",
        "host all all 127.0.0.1/32 scram-sha-256",
        # Patroni reads a standby's own timeline over a local replication connection before it
        # promotes it; without this line a failover stalled (seen in the freeze test).
        f"host replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256",
    ]
    databases = [host_cidr(node.address) for node in spec.database_nodes]
    lines += [f"host replication {REPLICATION_USER} {cidr} scram-sha-256" for cidr in databases]
    # Patroni connects to its own node's address as the superuser; pg_rewind to the new
    # primary's address as the rewind user.
    lines += [f"host all {SUPERUSER} {cidr} scram-sha-256" for cidr in databases]
    lines += [f"host all {REWIND_USER} {cidr} scram-sha-256" for cidr in databases]
    lines += [f"host all {MONITOR_USER} {host_cidr(a)} scram-sha-256" for a in spec.monitor_sources]
    lines.append(f"host all all {host_cidr(spec.proxy.address)} scram-sha-256")
    lines += [f"host all all {cidr} scram-sha-256" for cidr in spec.client_networks]
    return lines


def patroni_config_dict(spec: ClusterSpec, node: NodeSpec) -> dict[str, Value]:
    """The settings of `node`'s Patroni; ValueError for a node that does not run PostgreSQL."""
    if node not in spec.database_nodes:
        raise ValueError(f"{node.name} is not a database node of {spec.name}.")
    secrets = spec.secrets
    api_address = host_port(node.address, PATRONI_PORT)
    return {
        "scope": spec.name,
        "namespace": NAMESPACE,
        "name": node.name,
        "restapi": {
            "listen": api_address,
            "connect_address": api_address,
            # Patroni asks for these on the unsafe endpoints (switchover, restart, PATCH config).
            "authentication": {"username": REST_API_USER, "password": secrets.rest_api},
        },
        "etcd3": {
            "hosts": [host_port(member.address, ETCD_CLIENT_PORT) for member in spec.etcd_members]
        },
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
            "authentication": {
                "superuser": {"username": SUPERUSER, "password": secrets.superuser},
                "replication": {"username": REPLICATION_USER, "password": secrets.replication},
                "rewind": {"username": REWIND_USER, "password": secrets.rewind},
            },
            "parameters": {"unix_socket_directories": SOCKET_DIR},
            # Without a fast checkpoint a new replica waited 95 s for a spread one (DESIGN §2).
            "basebackup": [{"checkpoint": "fast"}],
            "create_replica_methods": ["basebackup"],
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
