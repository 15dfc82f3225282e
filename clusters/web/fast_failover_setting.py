"""Turning a cluster's fast failover on or off and setting its window (issue 21): one service
for the page and the API.

The agent lives on the witness, so a change to a cluster already set up is applied by running
setup again; the setting and that job are one transaction: a refused job (another job running)
saves nothing.
"""

from django.db import transaction

from clusters.inventory.services import InvalidInput
from clusters.models import Cluster
from jobs import services as job_services
from jobs.models import Job

# The window, in minutes: at least a minute, at most a week.
WINDOW_MINUTES = (1, 7 * 24 * 60)


def window_seconds(minutes: object) -> int:
    """The window in seconds from minutes as typed or sent; InvalidInput when out of range."""
    low, high = WINDOW_MINUTES
    text = str(minutes).strip()
    if isinstance(minutes, bool) or not text.isdigit() or not low <= int(text) <= high:
        raise InvalidInput(
            {"window_minutes": [f"Enter a whole number of minutes from {low} to {high}."]}
        )
    return int(text) * 60


def fast_failover_set(cluster: Cluster, *, enabled: bool, window_s: int, user) -> Job | None:
    """Save the setting; on a cluster already set up, start setup to apply it on the witness.
    The setup job, or None when nothing changed or the cluster is not built yet. JobRefused
    (nothing saved) when setup may not start now."""
    fields = {"fast_failover": enabled, "fast_failover_window_s": window_s}
    changed = any(getattr(cluster, k) != v for k, v in fields.items())
    set_up = cluster.state not in (Cluster.State.NEW, Cluster.State.PROVISIONING)
    with transaction.atomic():
        Cluster.objects.filter(pk=cluster.pk).update(**fields)
        cluster.refresh_from_db()
        if not (changed and set_up):
            return None
        return job_services.job_start(cluster=cluster, kind="setup", requested_by=user)
