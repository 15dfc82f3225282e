"""Setup's last steps on a cluster with a backup policy: configure_backups' own steps
(jobs/playbooks/backups.py), so WAL is archived from the cluster's first minutes and the
admin need not remember a second job.

Setup wrote Patroni's file with the archive settings already and started PostgreSQL with
them, so nothing needs a restart: pgBackRest on the repository host and the database nodes,
then the stanza, the archive's check and the repository's info. backups.py imports setup
(its steps reuse setup's), hence the imports inside the functions.
"""

from clusters.models import BackupPolicy, Cluster
from jobs.playbooks.base import StepContext, StepSpec, Verdict


def plan_steps(cluster: Cluster) -> list[StepSpec]:
    """The steps, or none when the cluster has no policy on (or nowhere to keep backups)."""
    from jobs.playbooks import backups

    policy = BackupPolicy.objects.filter(cluster=cluster, enabled=True).first()
    repo = policy.repository_node() if policy else None
    if repo is None:
        return []
    return [*backups.host_steps(cluster, repo), *backups.check_steps(repo)]


def backup_host(ctx: StepContext) -> Verdict | str:
    """pgBackRest installed and configured, its TLS server running (backups.backup_host)."""
    from jobs.playbooks import backups

    return backups.backup_host(ctx)


def backup_stanza(ctx: StepContext) -> Verdict | str:
    """The stanza created and the archive checked (backups.backup_stanza)."""
    from jobs.playbooks import backups

    return backups.backup_stanza(ctx)


def backup_info(ctx: StepContext) -> Verdict | str:
    """The repository's info kept for the cluster page (backups.backup_info)."""
    from jobs.playbooks import backups

    return backups.backup_info(ctx)


STEPS = {"backup_host": backup_host, "backup_stanza": backup_stanza, "backup_info": backup_info}
