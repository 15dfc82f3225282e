"""The API's bodies and answers about a cluster's backups (issue 22 part 1)."""

from ninja import Schema
from pydantic import Field

from clusters.web.api.schemas import BodyIn


class BackupPolicyIn(BodyIn):
    """What to change; a field left out keeps its value. A new policy starts enabled, with the
    repository on the proxy under /var/lib/pgbackrest, 2 full backups kept, a full backup
    weekly and a differential daily."""

    enabled: bool | None = None
    repo_node: str | None = Field(None, description="A node's name; empty: the proxy.")
    repo_path: str | None = None
    retention_full: int | None = Field(None, description="Full backups kept, 1–100.")
    full_every_hours: int | None = Field(None, description="0: no scheduled full backups.")
    diff_every_hours: int | None = Field(None, description="0: no scheduled differentials.")
    drill_address: str | None = Field(
        None,
        description="The restore drill's throwaway server: no member of any cluster; its host "
        "key scanned first (POST /api/v1/host-keys/scan/). Empty: no drill server.",
    )
    drill_ssh_port: int | None = Field(None, description="1–65535; 22 by default.")
    drill_credential: int | None = Field(None, description="A saved login's id for it.")
    drill_host_key_fingerprint: str | None = Field(
        None, description="The fingerprint of its scanned host key, as you checked it."
    )
    drill_database: str | None = Field(None, description="The database checked; postgres.")
    drill_tables: list[str] | None = Field(
        None, description="Tables compared (schema.table); empty: the database's 5 largest."
    )
    drill_every_hours: int | None = Field(None, description="0: no scheduled drills.")


class BackupOut(Schema):
    label: str
    type: str
    started: str | None
    finished: str | None
    duration_s: int
    size_bytes: int | None
    repo_size_bytes: int | None
    wal_start: str | None
    wal_stop: str | None
    error: bool


class ArchiverOut(Schema):
    archived_count: int | None = None
    last_archived_wal: str | None = None
    last_archived_at: str | None = None
    failed_count: int | None = None
    last_failed_wal: str | None = None
    last_failed_at: str | None = None
    last_archived_age_s: int | None = None


class BackupJobOut(Schema):
    id: int
    kind: str
    status: str
    backup_type: str | None
    created: str
    finished: str | None


class DrillServerOut(Schema):
    address: str
    ssh_port: int
    credential: int | None
    host_key_fingerprint: str


class DrillTableOut(Schema):
    table: str
    rows: int
    checksum: str
    copy_rows: int | None = None
    copy_checksum: str | None = None
    same: bool | None = None


class DrillOut(Schema):
    """One restore drill: what was restored where, how long it took, what was compared."""

    id: int
    job: int
    target_address: str
    database: str
    backup_label: str
    restore_point: str
    started: str
    restored_at: str | None
    finished: str | None
    outcome: str
    reason: str
    rto_seconds: float | None
    tables: list[DrillTableOut]


class BackupsOut(Schema):
    """The policy, what the repository said when last read, and the recent backup jobs."""

    enabled: bool
    stanza: str
    repo_node: str | None
    repo_path: str
    retention_full: int
    full_every_hours: int
    diff_every_hours: int
    encrypted: bool
    info_read: str | None
    status: str | None
    summary: str | None
    archive_min: str | None
    archive_max: str | None
    backups: list[BackupOut]
    archiver: ArchiverOut | None
    jobs: list[BackupJobOut]
    drill_server: DrillServerOut | None
    drill_database: str
    drill_tables: list[str]
    drill_every_hours: int
    drills: list[DrillOut]


REQUEST_SCHEMAS = (BackupPolicyIn,)
