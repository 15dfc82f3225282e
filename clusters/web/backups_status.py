"""A cluster's backups as the page and the API show them: read from the database only (the
backup jobs keep what the repository said on the policy)."""

from clusters.models import BackupPolicy, Cluster
from jobs.models import Job, JobKind
from jobs.playbooks.backup_info import describe

RECENT_JOBS = 10


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
    }
