"""Parameter changes as the console offers them (pages and API): what the servers last reported,
a preview, and the job that applies a confirmed preview.

Nothing here talks to a server: the preview judges against the snapshot the last
`read_parameters` (or `change_parameters`) job stored on the cluster, and the job judges again
against the live primary before it changes anything.
"""

from datetime import timedelta

from django.utils import timezone

from clusters.inventory.services import InvalidInput
from clusters.models import Cluster
from jobs.models import Job
from jobs.parameter_rules import Judgement, needs_restart, preview, validate
from jobs.services import job_start

# A preview judged against an older reading asks for a fresh one first.
SNAPSHOT_MAX_AGE = timedelta(hours=24)


def parameters_current(cluster: Cluster) -> dict:
    """What the servers last reported: per node the parameters set somewhere (not a built-in
    default) with their value and whether they wait for a restart; and which do."""
    snapshot = cluster.pg_parameters or {}
    nodes = snapshot.get("nodes") or {}
    pending = sorted(
        (node, name)
        for node, values in nodes.items()
        for name, value in values.items()
        if value.get("pending_restart")
    )
    return {
        "read": cluster.pg_parameters_read,
        "primary": snapshot.get("primary"),
        "nodes": nodes,
        "pending_restart": [{"node": node, "name": name} for node, name in pending],
    }


def _judge(cluster: Cluster, requested: object) -> Judgement:
    if not isinstance(requested, dict) or not requested:
        raise InvalidInput({"parameters": ["Name at least one parameter: {name: value}."]})
    catalog = (cluster.pg_parameters or {}).get("catalog")
    read = cluster.pg_parameters_read
    if not catalog or read is None or timezone.now() - read > SNAPSHOT_MAX_AGE:
        raise InvalidInput(
            {
                "parameters": [
                    "Read the cluster's parameters first (Refresh): the last reading "
                    "is missing or older than a day."
                ]
            }
        )
    judgement = validate(catalog, requested)
    if judgement.errors:
        raise InvalidInput({name: [why] for name, why in judgement.errors.items()})
    return judgement


def parameters_preview(*, cluster: Cluster, requested: object) -> dict:
    """Each parameter's effect (reload, restart, unchanged) and the job's plan in one line;
    InvalidInput naming each refused parameter."""
    return preview(_judge(cluster, requested).changes)


def parameters_change(
    *, cluster: Cluster, requested: object, restart: bool, requested_by=None
) -> Job:
    """Start `change_parameters` for a confirmed preview. `restart` is what the operator
    confirmed: a preview that now says otherwise is refused (preview again)."""
    judgement = _judge(cluster, requested)
    if needs_restart(judgement.changes) != restart:
        said = "needs" if needs_restart(judgement.changes) else "does not need"
        raise InvalidInput(
            {"restart": [f"This change {said} a restart; preview again and confirm that."]}
        )
    wanted = {c.name: requested_value(requested, c.name) for c in judgement.changes}
    return job_start(
        cluster=cluster,
        kind="change_parameters",
        params={"parameters": wanted, "restart": restart},
        requested_by=requested_by,
    )


def requested_value(requested: dict, name: str) -> object:
    """The operator's value for `name`, whatever case they typed the name in."""
    for key, value in requested.items():
        if str(key).strip().lower() == name:
            return value
    return None


def audit_params(requested: object) -> dict:
    """Names and values for the audit trail; a value that mentions a password is hidden."""
    if not isinstance(requested, dict):
        return {}
    return {
        str(k)[:60]: "[hidden]" if "password" in str(v).lower() else str(v)[:120]
        for k, v in requested.items()
    }
