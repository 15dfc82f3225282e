"""The REST API's request and answer schemas (Pydantic, through django-ninja), declared once:
ninja renders answers through them and generates /api/v1/openapi.json from them. Here: the
shared enumerations, request bodies, errors, credentials, clusters and tokens; the answers
about what happened (jobs, events, audit, lag) are in schemas_history, alert channels and
users in schemas_admin, subscriptions in schemas_hooks, incidents in schemas_incidents.

Enumerations are built from the models' TextChoices, so a new state or job kind appears in
the document without an edit here.

A request body is declared here once (a `BodyIn`): the document describes it from the class
(openapi.body_of) and the view validates it with the same class (plumbing.validated_body), in
strict mode. The schema checks the shape: JSON types, required fields, closed sets of values
and the bounds the views used to check by hand. What the console's pages share with the API
stays in the services (clusters.inventory.services and friends): names, addresses, ranges of
the forms, uniqueness; their field names (`nodes[1].address`) are the ones the schema uses.
"""

import enum
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import TextChoices
from ninja import Schema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WrapValidator
from pydantic_core import PydanticCustomError

from clusters.inventory import validators
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


# --- request bodies: strict, unknown fields ignored -------------------------------------------


def _unknown_fields_ignored(schema: dict[str, Any]) -> None:
    # Said in the document, for people and for generated clients: a field this API does not
    # know is ignored (as it always was), not refused.
    schema["additionalProperties"] = True
    said = "Fields not listed here are ignored."
    schema["description"] = f"{schema.get('description', '').strip()} {said}".strip()


class BodyIn(BaseModel):
    """A request body, validated in strict mode: each field must have its declared JSON type
    ("22" is no port, true is no number of days, a list is no name); no value is coerced.

    A plain pydantic model, not a ninja Schema: a Schema also reads objects' attributes (to
    answer Django models), so a text where an object belongs would pass as an object whose
    fields all take their defaults."""

    model_config = ConfigDict(
        strict=True, extra="ignore", json_schema_extra=_unknown_fields_ignored
    )


def says(message: str) -> WrapValidator:
    """A field's own message for any error of its value as a whole (a wrong type, a value out
    of its set or bounds), instead of the generic one; errors inside the value (one node of
    a list) keep their own messages and field names."""

    def check(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            if all(error["loc"] == () for error in exc.errors()):
                raise PydanticCustomError("invalid", message) from None
            raise

    return WrapValidator(check)


def checked_by(validator: Callable[[str], None]) -> AfterValidator:
    """A text field checked by one of clusters.inventory.validators, with its messages."""

    def check(value: str) -> str:
        try:
            validator(value)
        except DjangoValidationError as exc:
            raise PydanticCustomError("invalid", " ".join(exc.messages)) from None
        return value

    return AfterValidator(check)


PORT_RULE = "Expected a port number from 1 to 65535."


# --- errors ---------------------------------------------------------------------------------


class ErrorOut(Schema):
    """Every answer other than success: a message and, for bad input, messages by field."""

    error: str
    field_errors: dict[str, list[str]] = Field(
        description="Messages by field name (`nodes[1].address` for a nested one); empty "
        "when the error is not about one field."
    )


# --- credentials and host keys --------------------------------------------------------------


class CredentialIn(BodyIn):
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


class HostKeyScanIn(BodyIn):
    """A server whose SSH host key a worker reads: its IP address and SSH port."""

    address: Annotated[str, checked_by(validators.validate_ip_address)]
    port: Annotated[int, Field(ge=1, le=65535), says(PORT_RULE)] = 22


class HostKeyOut(Schema):
    key_type: str
    fingerprint: str


# --- clusters -------------------------------------------------------------------------------


# The ranges below (ports, versions, list lengths) are checked by the services' forms, which
# the console's pages share, together with the other fields (so one answer names every wrong
# field of a cluster): the schema says them in words.


class NodeIn(BodyIn):
    """A server of a new cluster; its fingerprint must come from a scan."""

    name: str
    address: str
    ssh_port: int = Field(22, description="1–65535.")
    credential: int = Field(description="The id of a credential.")
    host_key_fingerprint: str
    kind: NodeKind  # type: ignore[valid-type]
    master: bool | None = Field(
        None, description="Bootstrap this database node as the primary (default: the first)."
    )


class DatabaseIn(BodyIn):
    """The application database and its owner, created by setup: both, or neither."""

    name: str | None = None
    user: str | None = None


class HttpFrontendIn(BodyIn):
    """An HTTP port on the proxy sent to the application on the primary."""

    listen_port: int = Field(description="1–65535, not a port the proxy uses itself.")
    app_port: int = Field(description="1–65535.")
    check_path: str | None = Field(None, description="The application's health path.")


class ClusterIn(BodyIn):
    """A cluster to define: two or more database servers and one proxy, or two proxies (with a
    floating address, or reached through libpq's multi-host string)."""

    name: str
    replication: Replication  # type: ignore[valid-type]
    failover_profile: FailoverProfile = "balanced"  # type: ignore[valid-type,assignment]
    postgres_version: int | None = Field(None, description="13–17 (default 15).")
    sync_strict: bool = False
    nodes: Annotated[
        list[NodeIn],
        says("Give the cluster's servers: at least two database nodes and a proxy."),
    ]
    client_networks: list[str] = Field([], description="At most 50 networks in CIDR form.")
    require_client_tls: bool = True
    apt_proxy: str | None = None
    adopt_database: bool = Field(
        False, description="Take over the PostgreSQL already running on the master."
    )
    database: DatabaseIn | None = None
    http_frontends: list[HttpFrontendIn] | None = Field(None, description="At most 20.")
    application_unit: str | None = Field(
        None, description="The systemd unit of the application that runs where the primary is."
    )
    virtual_ip: str | None = Field(
        None,
        description="With two proxy nodes: the floating address clients use, with its prefix "
        "length (10.0.0.100/24); in both proxies' network, no node's own address. keepalived "
        "(VRRP) moves it to the other proxy when its holder or its HAProxy fails.",
    )
    vrrp_router_id: int | None = Field(
        None,
        description="VRRP's virtual_router_id, 1–255; by default derived from the cluster's id. "
        "Clusters sharing a network segment need different ones.",
    )


class RestApiIn(BodyIn):
    """Patroni's REST API credentials: both, or neither when it asks for none."""

    username: str = ""
    password: str = ""


class AdoptIn(BodyIn):
    """An existing Patroni cluster to adopt: its nodes (a proxy too, if any) and Patroni's REST
    credentials; the name defaults to a placeholder the adopt job replaces with the scope."""

    name: str | None = None
    nodes: Annotated[
        list[NodeIn],
        says("Give the cluster's database servers (and its proxy, if any)."),
    ]
    rest_api: RestApiIn | None = None


class ClusterSummaryOut(Schema):
    id: int
    name: str
    state: ClusterState  # type: ignore[valid-type]
    state_reasons: list[str] = Field(
        description="Why the cluster is in its state, one line each, the weightiest first, "
        "as the monitor last judged it; empty when healthy, new or being set up."
    )
    state_since: datetime | None = Field(
        description="When the current state began, as the monitor saw it; null before its "
        "first judgement and while setup owns the state (new, provisioning)."
    )
    primary: str | None


class DiskOut(Schema):
    mount: str = Field(description="Where that file system is mounted.")
    free_bytes: int
    total_bytes: int
    checked: datetime


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
    host_up_since: datetime | None = Field(
        description="Since when the server answers on its SSH port while its PostgreSQL does "
        "not (null while PostgreSQL answers, or when the server is silent too)."
    )
    disk: DiskOut | None = Field(
        description="The fullest file system under the data directory, as the disk check "
        "(every minute, over SSH) last read it; null until read, and for proxies."
    )
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


class VirtualIpOut(Schema):
    """The floating address of a cluster with two proxies (keepalived, VRRP)."""

    address: str = Field(description="With its prefix length, as keepalived adds it.")
    router_id: int = Field(description="VRRP's virtual_router_id of the cluster.")
    holder: str | None = Field(
        description="The proxy that answered on the address at the monitor's last read; null "
        "when none did or before the first read."
    )


class ProxyOut(Schema):
    address: str | None = Field(description="The first proxy's (the etcd witness's) address.")
    addresses: list[str] = Field(description="Every proxy's address, the first one first.")
    endpoints: dict[str, str]
    backends: list[BackendOut]
    virtual_ip: VirtualIpOut | None
    etcd_witness: str | None = Field(
        description="The proxy that is the third etcd member (the witness)."
    )


class FailoverOutlookOut(Schema):
    """One standby's fate if the primary died now, from the monitor's last reading."""

    node: str
    verdict: Literal["would_promote", "eligible", "refused", "unknown"] = Field(
        description="would_promote: Patroni would pick it; eligible: it may take over but "
        "another is further ahead; refused: it would not (reasons); unknown: no fresh reading."
    )
    reasons: list[str]
    bytes_at_risk: int | None = Field(
        description="Acknowledged writes it lacks (0 on the synchronous standby); null when "
        "unknown."
    )


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
    fast_failover: bool = Field(
        description="The fenced fast path is armed (docs/fast-failover.md): nodes with a "
        "tested fence device fail over within seconds, the others by Patroni's lease."
    )
    fast_failover_window_s: int = Field(
        description="At most one fast failover per this many seconds."
    )
    origin: Origin  # type: ignore[valid-type]
    patroni_layout: dict[str, Any] | None
    config_findings: list[dict[str, Any]]
    config_checked: datetime | None
    application: ApplicationOut
    nodes: list[NodeOut]
    failover_outlook: list[FailoverOutlookOut]
    proxy: ProxyOut
    virtual_ip: VirtualIpOut | None = Field(description="The same as proxy.virtual_ip.")


class JobRefOut(Schema):
    id: int
    url: str


class AdoptedOut(ClusterOut):
    job: JobRefOut


class ConnectionOut(Schema):
    read_write: str
    read_only: str
    multi_host: str
    proxies_multi_host: str | None = Field(
        description="With two proxies: both in one libpq string with "
        "target_session_attrs=read-write, for networks where VRRP is not allowed."
    )
    ca_file: str | None
    ca_url: str | None


# --- jobs -----------------------------------------------------------------------------------


class JobStartIn(BodyIn):
    """A job to start on the cluster, optionally aimed at one node (by name); null is the same
    as leaving a field out."""

    kind: Annotated[
        JobKindEnum,  # type: ignore[valid-type]
        says(f"unknown job kind; this console runs: {', '.join(JobKind.values)}."),
    ]
    node: str | None = None
    confirm: Annotated[str, says("Expected the cluster's name.")] | None = Field(
        None, description="The cluster's name (the node's, for a fence), for a removal."
    )
    force: Annotated[str, says("Expected the cluster's name.")] | None = None
    service_manager: (
        Annotated[Literal["systemd", "process"], says("Use systemd or process (or leave it out).")]
        | None
    ) = None
    full_copy: bool | None = None
    copy_from: Annotated[Literal["primary"], says("Use primary (or leave it out).")] | None = Field(
        None,
        description="A Rebuild's full copy from the primary even when the backup repository "
        "could restore the node.",
    )
    backup_type: (
        Annotated[Literal["full", "diff", "incr"], says("Use full, diff or incr.")] | None
    ) = None
    name: str | None = Field(None, description="A restore point's name (restore_point).")
    address: str | None = Field(None, description="A restore's target server (restore).")
    ssh_port: int | None = None
    credential: int | None = Field(None, description="A saved login's id for the target.")
    host_key_fingerprint: str | None = None
    target_type: (
        Annotated[Literal["name", "time", "latest"], says("Use name, time or latest.")] | None
    ) = None
    target: str | None = Field(None, description="The restore point's name or the time.")


class NewServerIn(BodyIn):
    """A server to add (`name` needed) or to put in a dead node's place (`name` and `kind`
    ignored)."""

    name: str | None = None
    kind: Literal["database", "proxy"] = Field(
        "database", description="What the added server becomes: a standby, or a second proxy."
    )
    address: str
    ssh_port: int = Field(22, description="1–65535.")
    credential: int = Field(description="The id of a credential.")
    host_key_fingerprint: str


# --- tokens ---------------------------------------------------------------------------------


class TokenIn(BodyIn):
    """A new API token: its name, how long it lasts, and whose it is."""

    name: str = Field("", description="At most 100 printable characters.")
    days: (
        Annotated[
            int,
            Field(ge=1, le=365),
            says("Give the days the token lasts as a whole number from 1 to 365."),
        ]
        | None
    ) = Field(None, description="Days it is valid (90 when absent).")
    never: Annotated[bool, says("Say true or false.")] | None = Field(
        False, description="Never expires (admins)."
    )
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


# Request bodies documented in the OpenAPI document (see NinjaApi.get_openapi_schema); the
# nested ones (NodeIn, RestApiIn, ...) come with them.
REQUEST_SCHEMAS: tuple[type[BodyIn], ...] = (
    CredentialIn,
    HostKeyScanIn,
    ClusterIn,
    AdoptIn,
    JobStartIn,
    NewServerIn,
    TokenIn,
)
