"""The REST API's answers about what happened: jobs and their logs, events, the audit trail
and the lag history (read-only, besides a job's start and cancel answers). Declared once, as in
clusters.web.api.schemas, whose enumerations they share."""

import enum
from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field

from clusters.web.api.schemas import (
    EventKind,
    EventSeverity,
    IsoTime,
    JobKindEnum,
    JobRefOut,
    JobStatusEnum,
    StepStatusEnum,
)

# --- jobs -----------------------------------------------------------------------------------


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
    incident: int | None = Field(
        None, description="The incident it belongs to (GET /api/v1/incidents/{id}/), if any."
    )


class EventPageOut(Schema):
    events: list[EventOut]
    next: str | None = Field(description="The cursor of the next page; null on the last.")


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
