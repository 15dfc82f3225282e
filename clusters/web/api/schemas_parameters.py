"""The REST API's bodies and answers for PostgreSQL parameter changes
(clusters.web.api.parameters)."""

from datetime import datetime

from ninja import Schema
from pydantic import Field

from clusters.web.api.schemas import BodyIn


class NodeParameterOut(Schema):
    setting: str | None = Field(description="As pg_settings reads it; null when not shown.")
    pending_restart: bool


class PendingRestartOut(Schema):
    node: str
    name: str


class ParametersOut(Schema):
    read: datetime | None = Field(description="When a job last read pg_settings; null: never.")
    primary: str | None
    nodes: dict[str, dict[str, NodeParameterOut]] = Field(
        description="Per node, the parameters set somewhere (not a built-in default) or "
        "waiting for a restart."
    )
    pending_restart: list[PendingRestartOut]


class ParametersIn(BodyIn):
    """Parameters to change. Without `confirm` the answer is the preview; with `confirm` and
    the preview's `restart`, the change job starts."""

    parameters: dict[str, str | int | float | bool] = Field(
        description="{name: value}; units as in postgresql.conf ('256MB', '2s')."
    )
    confirm: bool = False
    restart: bool | None = Field(
        None, description="The preview's `restart`, confirming a rolling restart (or none)."
    )


class ParameterPreviewOut(Schema):
    name: str
    value: str
    expected: str = Field(description="How pg_settings will read it once in effect.")
    action: str = Field(description="reload, restart or unchanged")
    context: str
    current: str | None


class PreviewOut(Schema):
    restart: bool
    plan: str
    parameters: list[ParameterPreviewOut]


# The bodies these endpoints validate (clusters.web.api.openapi lists them in the document).
REQUEST_SCHEMAS = (ParametersIn,)
