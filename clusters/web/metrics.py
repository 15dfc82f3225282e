"""`/metrics`: the console's view of every cluster in Prometheus text format.

Built from the database at scrape time (what the monitor last wrote), never from the servers:
a scrape is a web request, and web requests do no network I/O. A fresh registry per scrape
holds only this snapshot, so a deleted cluster or node disappears from the next scrape
instead of lingering as a stale series, and no process-global state needs multiprocess mode.
"""

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from clusters.access.role_gate import guarded
from clusters.access.roles import ROLES
from clusters.access.tokens import active_tokens, token_used
from clusters.models import ApiToken, Cluster, ClusterEvent, Node, NodeStatus
from clusters.monitoring.health import is_up
from jobs.models import Job, JobStatus

# A node is up when the monitor heard from it within this many monitor periods: one missed
# pass is a blip, three are an outage.
UP_WITHIN_PERIODS = 3

UNAUTHORIZED = "Authentication required: send 'Authorization: Bearer <token>'.\n"


@guarded  # its own token check: any user with a role
@require_safe
@never_cache  # a scrape must always see the latest write, never a proxy's copy
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics for every cluster, for a valid API token (Bearer or Token scheme)."""
    if not _token_is_valid(request):
        # The same short answer for a missing and a wrong token: nothing to probe with.
        response = HttpResponse(UNAUTHORIZED, status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="hacenter"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(list(collect_families(now=timezone.now()))))
    # 0.0.4 rather than CONTENT_TYPE_LATEST (1.0.0): every Prometheus version parses it, and
    # our metric names are plain, so the newer format would add nothing.
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def collect_families(*, now: datetime) -> Iterator[Metric]:
    """Every metric family, from four queries whatever the number of clusters and nodes."""
    interval = float(getattr(settings, "MONITOR_INTERVAL_S", 2.0))
    fresh_since = now - timedelta(seconds=UP_WITHIN_PERIODS * interval)
    clusters = list(Cluster.objects.order_by("name"))
    # One join for every node's cluster and latest status, however many clusters there are.
    nodes = list(Node.objects.select_related("cluster", "status").order_by("cluster__name", "name"))
    jobs = dict(Job.objects.order_by().values_list("status").annotate(n=Count("id")))
    fast_decisions = (
        ClusterEvent.objects.filter(kind=ClusterEvent.Kind.FAST_FAILOVER)
        .order_by()
        .values_list("cluster__name", "details__outcome")
        .annotate(n=Count("id"))
    )

    node_up = _gauge("node_up", "1 if the monitor heard from the node recently.", ["node"])
    primary = _gauge("node_is_primary", "1 if the node is the primary.", ["node"])
    lag_bytes = _gauge(
        "replication_lag_bytes", "Bytes of WAL the standby has not replayed.", ["node"]
    )
    lag_seconds = _gauge(
        "replication_lag_seconds", "Seconds the standby's replay is behind.", ["node"]
    )
    timeline = _gauge("node_timeline", "PostgreSQL timeline of the node.", ["node"])
    proxy_up = _gauge(
        "proxy_backend_up", "1 if HAProxy has the database node UP in its backend.", ["node"]
    )
    for node in nodes:
        status = _status(node)
        labels = [node.cluster.name, node.name]
        seen = status is not None and status.last_seen is not None
        node_up.add_metric(labels, 1 if seen and status.last_seen >= fresh_since else 0)
        if node.kind != Node.Kind.DATABASE:
            continue  # the proxy host has no role, lag or backend of its own
        primary.add_metric(labels, 1 if status and status.role == NodeStatus.Role.PRIMARY else 0)
        proxy_up.add_metric(labels, 1 if status and is_up(status.proxy_status) else 0)
        # Absent rather than 0 when unknown: a 0 would read as "caught up".
        if status and status.lag_bytes is not None:
            lag_bytes.add_metric(labels, status.lag_bytes)
        if status and status.lag_seconds is not None:
            lag_seconds.add_metric(labels, status.lag_seconds)
        if status and status.timeline is not None:
            timeline.add_metric(labels, status.timeline)

    state = GaugeMetricFamily(
        "hacenter_cluster_state",
        "1 for the cluster's current state, 0 for the others.",
        labels=["cluster", "state"],
    )
    last_check = GaugeMetricFamily(
        "hacenter_last_check_timestamp_seconds",
        "Unix time of the monitor's last full read of the cluster.",
        labels=["cluster"],
    )
    for cluster in clusters:
        # Every state, so `hacenter_cluster_state{state="down"} == 1` alerts work without
        # absent() and a state change is a value change, not a series appearing.
        for value in Cluster.State.values:
            state.add_metric([cluster.name, value], 1 if cluster.state == value else 0)
        if cluster.last_checked is not None:
            last_check.add_metric([cluster.name], cluster.last_checked.timestamp())

    # A gauge despite the _total suffix: a job moves from pending to running to succeeded,
    # so the count per status goes down as well as up.
    job_count = GaugeMetricFamily(
        "hacenter_jobs_total", "Number of jobs per status.", labels=["status"]
    )
    for value in JobStatus.values:
        job_count.add_metric([value], jobs.get(value, 0))

    # A counter: decisions are only ever added (a cluster's go with it).
    fast_failover = CounterMetricFamily(
        "hacenter_fast_failover_decisions",
        "Decisions of the witness's fast-path agent, by outcome (acted, declined, withdrawn, "
        "failed).",
        labels=["cluster", "outcome"],
    )
    for cluster_name, outcome, count in fast_decisions:
        fast_failover.add_metric([cluster_name, str(outcome)], count)

    yield from (node_up, primary, lag_bytes, lag_seconds, timeline, state, proxy_up)
    yield from (job_count, last_check, fast_failover)


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"hacenter_{name}", documentation, labels=["cluster", *labels])


def _status(node: Node) -> NodeStatus | None:
    # A node the monitor never wrote about has no status row; the reverse one-to-one raises.
    try:
        return node.status
    except NodeStatus.DoesNotExist:
        return None


def _token_is_valid(request: HttpRequest) -> bool:
    """Whether the request carries the API token of an active user with a role (a viewer at
    least), as "Bearer" (what Prometheus' `authorization` setting sends) or "Token" (what the
    REST API takes)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() not in ("bearer", "token") or not token:
        return False
    # One query: the token, its user active and holding a role (any role may read metrics).
    # One query: the token active (not expired or revoked), its user active and holding a role
    # (any role may read metrics).
    found = (
        active_tokens()
        .filter(digest=ApiToken.digest_of(token), user__is_active=True)
        .filter(Q(user__is_superuser=True) | Q(user__groups__name__in=ROLES))
        .first()
    )
    if found is None:
        return False
    token_used(found)  # shows which tokens are in use, as the REST API does; once a minute
    return True


class _Snapshot(Collector):
    """Hands the registry families already built, so the registry holds one scrape only."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families
