"""Where the console's workers connect from, as the servers see it (Patroni's REST allowlist
and pg_hba need it): setup's Patroni step and the TLS conversion write the same file with it."""

from django.conf import settings

from jobs.playbooks.base import StepContext


def monitor_sources(ctx: StepContext) -> tuple[str, ...]:
    """The worker addresses the monitor connects from: this SSH session's source address as the
    node sees it, plus any configured ones (workers on several machines)."""
    seen = ctx.output('echo "${SSH_CLIENT%% *}"', echo=False)
    found = {a for a in seen[:1] if a} | set(settings.HACENTER_MONITOR_SOURCES)
    return tuple(sorted(found))
