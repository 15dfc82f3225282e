"""The API's bodies and answers about a node's fence device (issue 21 part 1)."""

from ninja import Schema
from pydantic import Field

from clusters.web.api.schemas import BodyIn


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


REQUEST_SCHEMAS = (FenceDeviceIn,)
