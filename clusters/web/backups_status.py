"""A cluster's backups as the page and the API show them: read from the database only (the
backup jobs keep what the repository said on the policy)."""

from clusters.models import BackupPolicy, Cluster
from jobs.models import Job, JobKind, JobStatus, RestoreDrill
from jobs.playbooks.backup_info import describe

RECENT_JOBS = 10
RECENT_DRILLS = 10


def backups_status(cluster: Cluster) -> dict | None:
    """The policy, the repository's last `info` and the recent backup jobs; None when the
    cluster has no policy."""
    policy = BackupPolicy.objects.filter(cluster=cluster).select_related("repo_node").first()
    if policy is None:
        return None
    info = policy.info or {}
    repo = policy.repository_node()
    jobs = Job.objects.filter(
        cluster=cluster, kind__in=[JobKind.BACKUP, JobKind.CONFIGURE_BACKUPS]
    ).order_by("-created")[:RECENT_JOBS]
    return {
        "enabled": policy.enabled,
        "stanza": policy.stanza,
        "repo_node": repo.name if repo else None,
        "repo_path": policy.repo_path,
        "retention_full": policy.retention_full,
        "full_every_hours": policy.full_every_hours,
        "diff_every_hours": policy.diff_every_hours,
        "encrypted": True,
        "info_read": policy.info_read.isoformat() if policy.info_read else None,
        "status": info.get("status"),
        "summary": describe(info) if info else None,
        "archive_min": info.get("archive_min"),
        "archive_max": info.get("archive_max"),
        "backups": info.get("backups") or [],
        "archiver": info.get("archiver") or None,
        "jobs": [
            {
                "id": j.pk,
                "kind": j.kind,
                "status": j.status,
                "backup_type": j.params.get("backup_type"),
                "created": j.created.isoformat(),
                "finished": j.finished.isoformat() if j.finished else None,
            }
            for j in jobs
        ],
        "drill_server": _drill_server(policy),
        "drill_database": policy.drill_database,
        "drill_tables": policy.drill_tables,
        "drill_every_hours": policy.drill_every_hours,
        "drills": drills_of(cluster),
    }


def _drill_server(policy: BackupPolicy) -> dict | None:
    if not policy.drill_address:
        return None
    return {
        "address": policy.drill_address,
        "ssh_port": policy.drill_ssh_port,
        "credential": policy.drill_credential_id,
        "host_key_fingerprint": policy.drill_host_key_fingerprint,
    }


def drill_outcome(drill: RestoreDrill) -> str:
    """The drill's outcome; "failed" too for one still "running" whose job ended otherwise
    (canceled, its worker lost) before a step could say so."""
    if drill.outcome == RestoreDrill.Outcome.RUNNING and drill.job.status in (JobStatus.terminal()):
        return RestoreDrill.Outcome.FAILED
    return drill.outcome


def drills_of(cluster: Cluster, limit: int = RECENT_DRILLS) -> list[dict]:
    """The cluster's last drills, newest first."""
    drills = RestoreDrill.objects.filter(cluster=cluster).select_related("job")[:limit]
    return [
        {
            "id": d.pk,
            "job": d.job_id,
            "target_address": d.target_address,
            "database": d.database,
            "backup_label": d.backup_label,
            "restore_point": d.restore_point,
            "started": d.started.isoformat(),
            "restored_at": d.restored_at.isoformat() if d.restored_at else None,
            "finished": d.finished.isoformat() if d.finished else None,
            "outcome": drill_outcome(d),
            "reason": d.reason or (f"job {d.job.status}" if drill_outcome(d) != d.outcome else ""),
            "rto_seconds": d.rto_seconds,
            "tables": d.results,
        }
        for d in drills
    ]
