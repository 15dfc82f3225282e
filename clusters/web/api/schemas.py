"""The REST API's request and answer schemas (Pydantic, through django-ninja), declared once:
ninja renders answers through them and generates /api/v1/openapi.json from them.

Enumerations are built from the models' TextChoices, so a new state or job kind appears in
the document without an edit here. Request bodies are documented here but validated by the
services (clusters.inventory.services and friends), the one validation the console's pages
and the API share, whose field names (`nodes[1].address`) clients already show.
"""

import enum
from datetime import datetime
from typing import Any

from django.db.models import TextChoices
from ninja import Schema
from pydantic import Field

from clusters.models import Cluster, ClusterEvent, Credential, Node, NodeStatus
from jobs.models import JobKind, JobStatus, StepStatus


def choices_enum(name: str, choices: type[TextChoices]) -> type[enum.Enum]:
    """A string enum with the values of `choices` (its OpenAPI component is `name`)."""
    return enum.Enum(name, [(v, v) for v in choices.values], type=str)  # type: ignore[return-value]


ClusterState = choices_enum("ClusterState", Cluster.State)
Replication = choices_enum("Replication", Cluster.Replication)
FailoverProfile = choices_enum("FailoverProfile", Cluster.FailoverProfile)
Origin = choices_enum("Origin", Cluster.Origin)
NodeKind = choices_enum("NodeKind", Node.Kind)
NodeRole = choices_enum("NodeRole", NodeStatus.Role)
CredentialKind = choices_enum("CredentialKind", Credential.Kind)
JobKindEnum = choices_enum("JobKind", JobKind)
JobStatusEnum = choices_enum("JobStatus", JobStatus)
StepStatusEnum = choices_enum("StepStatus", StepStatus)
EventKind = choices_enum("EventKind", ClusterEvent.Kind)
EventSeverity = choices_enum("EventSeverity", ClusterEvent.Severity)

# Times the selectors already render as ISO 8601 text (tokens, events, the CA's expiry).
IsoTime = str


# --- errors ---------------------------------------------------------------------------------


class ErrorOut(Schema):
    """Every answer other than success: a message and, for bad input, messages by field."""

    error: str
    field_errors: dict[str, list[str]] = Field(
        description="Messages by field name (`nodes[1].address` for a nested one); empty "
        "when the error is not about one field."
    )


# --- credentials and host keys --------------------------------------------------------------


class CredentialIn(Schema):
    """A new SSH credential: a private key (with its passphrase if any) or a password."""

    name: str
    username: str
    private_key: str | None = None
    passphrase: str | None = None
    password: str | None = None


class CredentialOut(Schema):
    """A credential as answered: never its secrets."""

    id: int
    name: str
    username: str
    kind: CredentialKind  # type: ignore[valid-type]


class HostKeyScanIn(Schema):
    address: str
    port: int = 22


class HostKeyOut(Schema):
    key_type: str
    fingerprint: str


# --- clusters -------------------------------------------------------------------------------


class NodeIn(Schema):
    """A server of a new cluster; its fingerprint must come from a scan."""

    name: str
    address: str
    ssh_port: int = 22
    credential: int
    host_key_fingerprint: str
    kind: NodeKind = "database"  # type: ignore[valid-type,assignment]
    master: bool | None = None


class ClusterIn(Schema):
    """A cluster to define: two or more database servers and one proxy."""

    name: str
    replication: Replication = "async"  # type: ignore[valid-type,assignment]
    failover_profile: FailoverProfile = "balanced"  # type: ignore[valid-type,assignment]
    nodes: list[NodeIn]
    client_networks: list[str] = []
    require_client_tls: bool = True
    apt_proxy: str | None = None


class RestApiIn(Schema):
    username: str
    password: str


class AdoptIn(Schema):
    """An existing Patroni cluster to adopt: its nodes (a proxy too, if any) and Patroni's REST
    credentials; the name defaults to a placeholder the adopt job replaces with the scope."""

    name: str | None = None
    nodes: list[NodeIn]
    rest_api: RestApiIn


class ClusterSummaryOut(Schema):
    id: int
    name: str
    state: ClusterState  # type: ignore[valid-type]
    primary: str | None


class NodeOut(Schema):
    name: str
    address: str
    ssh_port: int
    kind: NodeKind  # type: ignore[valid-type]
    credential: int | None
    host_key_fingerprint: str
    role: NodeRole  # type: ignore[valid-type]
    state: str = Field(description="Patroni's state of the member (running, streaming, …).")
    timeline: int | None
    lag_bytes: int | None
    lag_seconds: float | None
    last_seen: datetime | None
    fenced: bool = Field(description="Shut out by the sentinel (or a fence job) until rebuilt.")
    fence_reason: str | None


class TlsOut(Schema):
    ca_url: str
    ca_file: str
    fingerprint_sha256: str
    not_after: IsoTime
    verified: bool


class DatabaseOut(Schema):
    name: str
    user: str


class AppServerOut(Schema):
    node: str
    status: str


class FrontendOut(Schema):
    listen_port: int
    app_port: int
    check_path: str | None
    endpoint: str | None
    routes_to: list[str]
    servers: list[AppServerOut]


class ApplicationOut(Schema):
    unit: str | None
    unit_on: str | None
    frontends: list[FrontendOut]


class BackendOut(Schema):
    frontend: str
    backend: str
    node: str
    status: str
    haproxy_status: str
    serving: bool


class ProxyOut(Schema):
    address: str | None
    endpoints: dict[str, str]
    backends: list[BackendOut]


class ClusterOut(ClusterSummaryOut):
    """A cluster with its nodes and what the monitor last observed."""

    replication: Replication  # type: ignore[valid-type]
    failover_profile: FailoverProfile  # type: ignore[valid-type]
    postgres_version: int
    client_networks: list[str]
    apt_proxy: str | None
    adopt_database: bool
    adopted_from: str | None
    require_client_tls: bool
    tls: TlsOut | None
    database: DatabaseOut | None
    maintenance: bool = Field(description="Patroni paused: no automatic failover.")
    origin: Origin  # type: ignore[valid-type]
    patroni_layout: dict[str, Any] | None
    config_findings: list[dict[str, Any]]
    config_checked: datetime | None
    application: ApplicationOut
    nodes: list[NodeOut]
    proxy: ProxyOut


class JobRefOut(Schema):
    id: int
    url: str


class AdoptedOut(ClusterOut):
    job: JobRefOut


class ConnectionOut(Schema):
    read_write: str
    read_only: str
    multi_host: str
    ca_file: str | None
    ca_url: str | None


# --- jobs -----------------------------------------------------------------------------------


class JobStartIn(Schema):
    """A job to start on the cluster, optionally aimed at one node (by name)."""

    kind: JobKindEnum  # type: ignore[valid-type]
    node: str | None = None
    confirm: str | None = Field(None, description="The cluster's name, for a removal.")
    force: str | None = None
    service_manager: str | None = Field(None, description="systemd or process.")
    full_copy: bool | None = None


class NewServerIn(Schema):
    """A server to add (`name` needed) or to put in a dead node's place (`name` ignored)."""

    name: str | None = None
    address: str
    ssh_port: int = 22
    credential: int
    host_key_fingerprint: str


class NodeJobOut(JobRefOut):
    node: str


class JobCanceledOut(Schema):
    id: int
    status: JobStatusEnum  # type: ignore[valid-type]


class StepOut(Schema):
    position: int
    name: str
    node: str | None
    status: StepStatusEnum  # type: ignore[valid-type]
    summary: str
    progress: int | None
    started: datetime | None
    finished: datetime | None


class JobOut(Schema):
    id: int
    kind: JobKindEnum  # type: ignore[valid-type]
    cluster: int
    node: str | None
    status: JobStatusEnum  # type: ignore[valid-type]
    error: str
    attempt: int
    cancel_requested: bool
    created: datetime
    started: datetime | None
    finished: datetime | None
    url: str
    steps: list[StepOut]


class JobSummaryOut(Schema):
    """A job in a list: what it is, where, who asked for it and how it ended (no steps)."""

    id: int
    kind: JobKindEnum  # type: ignore[valid-type]
    cluster: int
    cluster_name: str
    node: str | None
    status: JobStatusEnum  # type: ignore[valid-type]
    error: str
    attempt: int
    requested_by: str | None
    created: datetime
    started: datetime | None
    finished: datetime | None
    url: str


class JobPageOut(Schema):
    jobs: list[JobSummaryOut]
    next: str | None = Field(description="The cursor of the next page; null on the last.")


class LogLineOut(Schema):
    seq: int
    ts: datetime
    stream: str
    host: str
    text: str


class JobLogOut(Schema):
    lines: list[LogLineOut]
    next: int = Field(description="Pass as `after` for the lines that follow.")
    done: bool


# --- events ---------------------------------------------------------------------------------


class EventOut(Schema):
    id: int
    cluster: int
    at: IsoTime
    kind: EventKind  # type: ignore[valid-type]
    severity: EventSeverity  # type: ignore[valid-type]
    node: str | None
    summary: str
    old_primary: str | None
    new_primary: str | None
    downtime_s: float | None
    lost_bytes: int | None
    details: dict[str, Any]


class EventPageOut(Schema):
    events: list[EventOut]
    next: str | None = Field(description="The cursor of the next page; null on the last.")


# --- tokens ---------------------------------------------------------------------------------


class TokenIn(Schema):
    name: str = ""
    days: int | None = Field(None, description="Days it is valid (the default when absent).")
    never: bool = False
    user: str | None = Field(None, description="Another user's name (admins).")


class TokenOut(Schema):
    """A token as answered: never its key (except once, on creation) or digest."""

    id: int
    prefix: str
    name: str
    user: str
    created: IsoTime
    expires: IsoTime | None
    last_used: IsoTime | None
    revoked: IsoTime | None
    state: str


class NewTokenOut(TokenOut):
    key: str = Field(description="The token itself: shown in this answer only.")


# Request bodies documented in the OpenAPI document (see NinjaApi.get_openapi_schema).
REQUEST_SCHEMAS: tuple[type[Schema], ...] = (
    CredentialIn,
    HostKeyScanIn,
    ClusterIn,
    AdoptIn,
    JobStartIn,
    NewServerIn,
    TokenIn,
)


# --- audit and lag (read-only) --------------------------------------------------------------


class AuditEntryOut(Schema):
    """Who did what to which target, from where, and how it ended (never secrets)."""

    id: int
    at: datetime
    user: str
    action: str
    target: str
    params: dict[str, Any]
    source_address: str | None
    result: str = Field(description='"ok", or why it was refused or failed.')


class AuditPageOut(Schema):
    entries: list[AuditEntryOut]
    page: int
    pages: int
    count: int


LagRange = enum.Enum("LagRange", [("1h", "1h"), ("1d", "1d")], type=str)
LagMarkKind = enum.Enum(
    "LagMarkKind", [("failover", "failover"), ("switchover", "switchover")], type=str
)


class LagEventOut(Schema):
    """A change of primary inside the range: the chart draws a vertical line there."""

    t: int = Field(description="When the monitor saw it, Unix seconds.")
    kind: LagMarkKind  # type: ignore[valid-type]
    summary: str


class LagOut(Schema):
    """The lag chart's data: one shared time axis (Unix seconds) and, per database node, its
    lag at each time (null where it has no sample); the last hour raw, the last day the
    worst of each minute."""

    range: LagRange  # type: ignore[valid-type]
    nodes: list[str]
    t: list[int]
    bytes: list[list[int | None]]
    seconds: list[list[float | None]]
    events: list[LagEventOut] = Field(description="Failovers and switchovers, oldest first.")
    threshold_bytes: int = Field(
        description="The lag above which the monitor raises its lag event (the chart's line)."
    )
