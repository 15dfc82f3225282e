"""The API's body and answers about a cluster's failover drills (issue 21 part 6)."""

from ninja import Schema
from pydantic import Field

from clusters.web.api.schemas import BodyIn


class FailoverDrillIn(BodyIn):
    """Start a failover drill: the cluster's name typed as confirmation."""

    confirm: str = Field(
        description="The cluster's name: the drill powers the primary off through its fence device."
    )


class FailoverDrillOut(Schema):
    """One failover drill: who was primary before and after, how long writes stopped, what
    was lost."""

    id: int
    job: int
    started: str
    finished: str | None
    replication: str = Field(description="sync or async when the drill ran.")
    primary_before: str
    primary_after: str = Field(description="Empty until a standby took over.")
    powered_off_at: str | None = Field(description="When the off was sent to the device.")
    off_confirmed_at: str | None = Field(description="When the device confirmed OFF.")
    first_write_at: str | None = Field(description="The new primary's first acknowledged write.")
    rto_s: float | None = Field(
        description="Seconds from the power-off to the new primary's first acknowledged write."
    )
    outage_s: float | None = Field(
        description="The writer's gap: the old primary's last write to the new one's first."
    )
    acknowledged: int | None = Field(description="Rows the writer saw acknowledged.")
    rpo_rows: int | None = Field(description="Acknowledged rows the new primary does not hold.")
    outcome: str = Field(description="running, passed or failed.")
    message: str


class FailoverDrillsOut(Schema):
    """The cluster's last drills, newest first, and why a drill cannot start now."""

    why_not: str | None = Field(
        description="Why a drill cannot start now (null: it can, with the typed confirmation)."
    )
    drills: list[FailoverDrillOut]


REQUEST_SCHEMAS = (FailoverDrillIn,)
