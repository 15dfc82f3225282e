"""The API's bodies and answers about a node's fence device (issue 21 part 1)."""

from ninja import Schema
from pydantic import Field

from clusters.web.api.schemas import BodyIn, JobRefOut


class FenceDeviceIn(BodyIn):
    """A node's fence device; a field left out keeps its value (the secret too, while the
    method stays the same)."""

    method: str | None = Field(
        None, description="redfish, ipmilan, virsh, aws, azure or gce (Debian's fence-agents)."
    )
    options: dict | None = Field(
        None,
        description="The agent's options by its stdin names: redfish ip, ipport, username, "
        "systems_uri, ssl_insecure; ipmilan ip, ipport, username, lanplus, privlvl; virsh ip, "
        "ipport, username, plug; aws region, plug, access_key; azure subscriptionId, "
        "resourceGroup, tenantId, username, plug; gce project, zone, plug.",
    )
    secret: str | None = Field(None, description="The password or key; write-only, never answered.")


class FenceTestOut(Schema):
    at: str | None
    ok: bool | None
    power: str | None
    result: str


class FenceDeviceOut(Schema):
    node: str
    method: str
    agent: str
    options: dict
    secret_set: bool
    witness: str | None = Field(description="Where the agent runs: the first proxy.")
    last_test: FenceTestOut


class FastFailoverIn(BodyIn):
    """The cluster's fast-failover setting; a change to a cluster already set up runs setup."""

    enabled: bool = Field(description="The witness's agent may fence a dead primary.")
    window_minutes: int = Field(
        60, description="At most one fast failover per this many minutes (1 to 10080)."
    )


class FastFailoverNodeOut(Schema):
    name: str
    armed: bool = Field(description="The agent may fence it: its device's last test passed.")
    why: str = Field(description="Why it keeps the lease path (empty when armed).")
    method: str | None


class FastFailoverDecisionOut(Schema):
    at: str
    outcome: str = Field(description="acted, declined, withdrawn or failed.")
    sentence: str
    timings_ms: dict


class FastFailoverOut(Schema):
    enabled: bool
    window_minutes: int
    witness: str | None = Field(description="Where the agent runs: the first proxy.")
    summary: str
    nodes: list[FastFailoverNodeOut]
    decisions: list[FastFailoverDecisionOut] = Field(description="The last ten, newest first.")
    job: JobRefOut | None = Field(
        None, description="The setup job a change started to apply it on the witness."
    )


REQUEST_SCHEMAS = (FenceDeviceIn, FastFailoverIn)
