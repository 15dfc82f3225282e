"""The REST API's answers about incidents (clusters.web.api.incidents): a failover, switchover
or outage with its timeline, measures, events and recommended next action."""

import enum

from ninja import Schema
from pydantic import Field

from clusters.models import Incident
from clusters.web.api.schemas import IsoTime, choices_enum
from clusters.web.api.schemas_history import EventOut
from clusters.web.incident_selectors import MILESTONE_KEYS, MILESTONE_STATES, RECOMMENDATIONS

IncidentKind = choices_enum("IncidentKind", Incident.Kind)
MilestoneKey = enum.Enum("IncidentMilestoneKey", [(k, k) for k in MILESTONE_KEYS], type=str)
MilestoneState = enum.Enum("IncidentMilestoneState", [(k, k) for k in MILESTONE_STATES], type=str)
RecommendationCode = enum.Enum(
    "IncidentRecommendationCode", [(k, k) for k in RECOMMENDATIONS], type=str
)


class IncidentOut(Schema):
    """An incident as listed: what happened, when, and what it cost."""

    id: int
    cluster: int
    kind: IncidentKind  # type: ignore[valid-type]
    title: str
    opened: IsoTime
    closed: IsoTime | None = Field(description="Null while the incident is open.")
    old_primary: str | None
    new_primary: str | None
    downtime_s: float | None = Field(
        description="Seconds without writes: from the last healthy reading to the first with "
        "writes routed to the new primary (monitor readings, ± one interval); a switchover "
        "HA Center ran: its write probe's longest gap. Null until measured."
    )
    lost_bytes: int | None = Field(
        description="WAL the old primary had written (as the monitor last read it) past the "
        "new primary's promotion LSN: an upper bound on lost writes. Null until measured."
    )


class MilestoneOut(Schema):
    key: MilestoneKey  # type: ignore[valid-type]
    label: str
    at: IsoTime | None
    after_s: float | None = Field(description="Seconds since the last healthy reading.")
    state: MilestoneState = Field(  # type: ignore[valid-type]
        description="done; not_yet (the incident is open); not_recorded; not_needed."
    )
    note: str


class RecommendationOut(Schema):
    code: RecommendationCode = Field(  # type: ignore[valid-type]
        description="none: resolved, nothing to do."
    )
    text: str
    node: str | None
    url: str | None = Field(description="The console's page for the action.")
    job_kind: str | None = Field(
        description="The job that does it: POST /api/v1/clusters/{id}/jobs/ {kind, node}."
    )


class IncidentDetailOut(IncidentOut):
    timeline: list[MilestoneOut]
    recommendation: RecommendationOut
    events: list[EventOut]


class IncidentPageOut(Schema):
    incidents: list[IncidentOut]
    next: str | None = Field(description="The cursor of the next page; null on the last.")
