"""pgBackRest's configuration file on each host of a backed-up cluster (issue 22 part 1).

Hosts talk to each other through pgBackRest's own TLS server (`pgbackrest server`, port 8432),
with the cluster's CA and node certificates, so no SSH keys are exchanged between servers:

- the repository host (the proxy by default) holds the repository, encrypted with the
  cluster's `backup_cipher` passphrase (only this host has it); it takes the backups, reaching
  each database node's pgBackRest server as `pgN-host` (pgBackRest finds the primary itself);
  its server lets each database node (certificate CN = node name) push and get WAL;
- each database node pushes WAL to the repository's server (`repo1-host`), from
  `archive_command` (jobs/configs/patroni.py), whichever node is primary; its own server lets
  the repository host in (CN = the repository host's name);
- a restore target (not a member) reaches the repository with a certificate whose CN is
  RESTORE_CLIENT_CN.

Pure text, no I/O: the playbooks (jobs/playbooks/backups.py) write it.
"""

import shlex
from dataclasses import dataclass, field

from jobs.configs.spec import POSTGRES_PORT, SOCKET_DIR, TLS_CA_FILE

CONFIG_DIR = "/etc/pgbackrest"
CONFIG_FILE = f"{CONFIG_DIR}/pgbackrest.conf"
# pgBackRest's own certificate from the cluster's CA, and its key, which only the pgBackRest
# user reads. Not the node certificate: pgBackRest 2.45 matches the host it connects to only
# against the certificate's CN and DNS names, never its IP addresses (checked: "unable to find
# hostname '127.0.0.1' in certificate common name or subject alternative names"), so this one
# carries the node's address as a DNS name too. Its CN is the node's name, which
# `tls-server-auth` lets in.
CERT_FILE = f"{CONFIG_DIR}/tls.crt"
KEY_FILE = f"{CONFIG_DIR}/tls.key"
LOG_DIR = "/var/log/pgbackrest"
TLS_PORT = 8432
# The user the repository belongs to on a host that has no PostgreSQL.
REPO_USER = "pgbackrest"
# The CN of the certificate a restore target presents to the repository.
RESTORE_CLIENT_CN = "hacenter-restore"
CIPHER_TYPE = "aes-256-cbc"


@dataclass(frozen=True)
class BackupHost:
    """A database node as pgBackRest's config names it."""

    name: str
    address: str


@dataclass(frozen=True)
class BackupLayout:
    """Where everything is: the stanza, the repository and the database nodes."""

    stanza: str
    repo_name: str
    repo_address: str
    repo_path: str
    retention_full: int
    data_dir: str
    databases: tuple[BackupHost, ...]
    cipher_pass: str = field(repr=False, default="")


def _lines(section: str, options: list[tuple[str, object]]) -> list[str]:
    return [f"[{section}]", *(f"{k}={v}" for k, v in options), ""]


def _server(auth: list[str], stanza: str) -> list[tuple[str, object]]:
    """The TLS server's options: the cluster's CA checks clients, `auth` names who may in."""
    return [
        ("tls-server-address", "*"),
        ("tls-server-port", TLS_PORT),
        ("tls-server-ca-file", TLS_CA_FILE),
        ("tls-server-cert-file", CERT_FILE),
        ("tls-server-key-file", KEY_FILE),
        *(("tls-server-auth", f"{cn}={stanza}") for cn in auth),
    ]


def _common() -> list[tuple[str, object]]:
    return [
        ("log-path", LOG_DIR),
        ("log-level-console", "info"),
        ("log-level-file", "detail"),
        ("start-fast", "y"),
    ]


def repository_config(layout: BackupLayout) -> str:
    """The repository host's file: the repository (encrypted, with retention), a server that
    database nodes and restore targets reach, and every database node as a `pgN-host`."""
    glob = [
        ("repo1-path", layout.repo_path),
        ("repo1-retention-full", layout.retention_full),
        ("repo1-cipher-type", CIPHER_TYPE),
        ("repo1-cipher-pass", layout.cipher_pass),
        *_common(),
        *_server([h.name for h in layout.databases] + [RESTORE_CLIENT_CN], layout.stanza),
    ]
    stanza: list[tuple[str, object]] = []
    for i, host in enumerate(layout.databases, start=1):
        stanza += [
            (f"pg{i}-host", host.address),
            (f"pg{i}-host-type", "tls"),
            (f"pg{i}-host-port", TLS_PORT),
            (f"pg{i}-host-ca-file", TLS_CA_FILE),
            (f"pg{i}-host-cert-file", CERT_FILE),
            (f"pg{i}-host-key-file", KEY_FILE),
            (f"pg{i}-path", layout.data_dir),
            (f"pg{i}-port", POSTGRES_PORT),
            (f"pg{i}-socket-path", SOCKET_DIR),
        ]
    return (
        "\n".join([header(), *_lines("global", glob), *_lines(layout.stanza, stanza)]).rstrip()
        + "\n"
    )


def _repo_client() -> list[tuple[str, object]]:
    return [
        ("repo1-host-type", "tls"),
        ("repo1-host-port", TLS_PORT),
        ("repo1-host-ca-file", TLS_CA_FILE),
        ("repo1-host-cert-file", CERT_FILE),
        ("repo1-host-key-file", KEY_FILE),
    ]


def database_config(layout: BackupLayout) -> str:
    """A database node's file: the repository is remote (`repo1-host`), and a server lets the
    repository host in to take backups."""
    glob = [
        ("repo1-host", layout.repo_address),
        *_repo_client(),
        *_common(),
        *_server([layout.repo_name], layout.stanza),
    ]
    stanza = [
        ("pg1-path", layout.data_dir),
        ("pg1-port", POSTGRES_PORT),
        ("pg1-socket-path", SOCKET_DIR),
    ]
    return (
        "\n".join([header(), *_lines("global", glob), *_lines(layout.stanza, stanza)]).rstrip()
        + "\n"
    )


def restore_config(layout: BackupLayout, data_dir: str) -> str:
    """A restore target's file: the repository is remote; no server (nobody calls in)."""
    glob = [("repo1-host", layout.repo_address), *_repo_client(), *_common()]
    stanza = [("pg1-path", data_dir)]
    return (
        "\n".join([header(), *_lines("global", glob), *_lines(layout.stanza, stanza)]).rstrip()
        + "\n"
    )


def archive_command(stanza: str) -> str:
    """PostgreSQL's archive_command on every database node: whichever is primary pushes."""
    return f"pgbackrest --stanza={stanza} archive-push %p"


def restore_command(stanza: str) -> str:
    return f"pgbackrest --stanza={stanza} archive-get %f %p"


def replica_command(stanza: str, data_dir: str) -> str:
    """Patroni's `pgbackrest` replica method: the newest backup restored into the node's data
    directory over the repository's TLS server, with the node's own config.

    Patroni runs it without a shell (its words split like a shell's), so a `sh -c` makes the
    data directory first: pgBackRest refuses a missing one ("$PGDATA directory ... does not
    exist") and a Rebuild has just moved it aside. `--delta` reuses what a data directory left
    in place (Patroni's reinit keeps it: `keep_data`) already holds; `--type=standby` leaves a
    standby.signal so PostgreSQL never ends recovery by itself before Patroni makes it stream.
    """
    restore = (
        f"/usr/bin/pgbackrest --config={CONFIG_FILE} --stanza={shlex.quote(stanza)} "
        "--delta --type=standby restore"
    )
    script = f"install -d -m 0700 {shlex.quote(data_dir)} && exec {restore}"
    return f"/bin/sh -c {shlex.quote(script)}"


# What a data directory copied by each method says in its backup_label (backup_label.old once
# PostgreSQL has started): pgBackRest labels its backups so, pg_basebackup its own way.
RESTORE_LABEL = "LABEL: pgBackRest backup"
BASEBACKUP_LABEL = "LABEL: pg_basebackup"


def header() -> str:
    return "# Written by HA Center; changes here are overwritten by its next backup job."
