"""Patroni's pause flag (maintenance mode), for the maintenance jobs and the TLS conversion.

In a module that imports no playbook, so setup's steps can use it too (operations imports setup).
"""

from jobs import patroni_api
from jobs.playbooks.base import StepContext, StepFailed
from jobs.playbooks.layout import rest_auth


def paused(ctx: StepContext) -> bool | None:
    """Patroni's pause flag as the first member that answers sees it (None: none answers)."""
    for node in ctx.cluster.database_nodes:
        try:
            return bool(patroni_api.cluster(node, timeout=2).get("pause"))
        except patroni_api.PatroniUnavailable:
            continue
    return None


def pause_set(ctx: StepContext, pause: bool) -> None:
    """PATCH /config on the first member that takes it, then wait until Patroni reports it.

    Any member takes PATCH /config (it writes to etcd): while paused, the primary's PostgreSQL
    may be down and no member shows as leader."""
    refusals = []
    for node in ctx.cluster.database_nodes:
        try:
            status, body = patroni_api.post(
                node, "/config", {"pause": pause}, auth=rest_auth(ctx.cluster), method="PATCH"
            )
        except patroni_api.PatroniUnavailable as exc:
            refusals.append(str(exc))
            continue
        if status == 200:
            break
        refusals.append(f"{node.name}: {status} {body}")
    else:
        raise StepFailed(f"no Patroni member took pause={pause}: {'; '.join(refusals)}")
    ctx.wait_until(
        lambda: paused(ctx) == pause, timeout=30, what=f"Patroni to report pause={pause}"
    )
