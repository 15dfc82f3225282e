"""A cluster's failover drills as the page and the API show them: read from the database only
(the drill job's steps keep each result on its FailoverDrill row)."""

from clusters.models import Cluster
from jobs.models import FailoverDrill, JobStatus

RECENT_DRILLS = 20


def drill_outcome(drill: FailoverDrill) -> str:
    """The drill's outcome; "failed" too for one still "running" whose job ended otherwise
    (canceled, its worker lost) before a step could say so."""
    if drill.outcome == FailoverDrill.Outcome.RUNNING and drill.job.status in JobStatus.terminal():
        return FailoverDrill.Outcome.FAILED
    return drill.outcome


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def failover_drills_of(cluster: Cluster, limit: int = RECENT_DRILLS) -> list[dict]:
    """The cluster's last failover drills, newest first."""
    drills = FailoverDrill.objects.filter(cluster=cluster).select_related("job")[:limit]
    answer = []
    for d in drills:
        outcome = drill_outcome(d)
        answer.append(
            {
                "id": d.pk,
                "job": d.job_id,
                "started": d.started.isoformat(),
                "finished": _iso(d.finished),
                "replication": d.replication,
                "primary_before": d.primary_before,
                "primary_after": d.primary_after,
                "powered_off_at": _iso(d.powered_off_at),
                "off_confirmed_at": _iso(d.off_confirmed_at),
                "first_write_at": _iso(d.first_write_at),
                "rto_s": d.rto_s,
                "outage_s": d.outage_s,
                "acknowledged": d.acknowledged,
                "rpo_rows": d.rpo_rows,
                "outcome": outcome,
                "message": d.message or (f"job {d.job.status}" if outcome != d.outcome else ""),
            }
        )
    return answer
