"""Pages for clusters. They read the database; host-key scans go to a worker."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.gzip import GZipMiddleware
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from clusters.access.audit import audit, mark_audited, refused, source_address
from clusters.access.reveal import cluster_connection_read
from clusters.access.roles import ADMIN, OPERATOR, VIEWER, has_role, refusal, role_required
from clusters.inventory import services
from clusters.inventory.validators import validate_ip_address
from clusters.models import Cluster, Credential, FenceDevice, Node, NodeStatus, WizardDraft
from clusters.web import action_checks, actions, dashboard_cards, lag_chart, scans, selectors
from clusters.web.application_selectors import application_detail
from clusters.web.backups_status import backups_status
from clusters.web.failover_drills import failover_drills_of
from clusters.web.incident_selectors import events_grouped
from clusters.web.incident_views import incident_context
from clusters.web.versions_selectors import cluster_versions

DEFAULT_ROWS = [("node1", "database"), ("node2", "database"), ("proxy", "proxy")]


# The dashboard's view (cards or rows) is remembered in a cookie, so a reload keeps it.
VIEW_COOKIE = "hacenter_dashboard_view"
VIEW_COOKIE_AGE_S = 365 * 86400
# The dashboard's answers to htmx are compressed; the page itself is not. Compression next to a
# secret an attacker can probe for is BREACH: these fragments carry no CSRF token nor any
# secret, only what every viewer sees (the page carries the CSRF token, so it stays plain).
_GZIP = GZipMiddleware(lambda request: HttpResponse())


@role_required(VIEWER)
@vary_on_headers("HX-Request")
def cluster_list(request: HttpRequest) -> HttpResponse:
    """The dashboard: counts by state, then the clusters most urgent first, as cards or rows,
    filtered by state (`?state=down`) and searched by cluster, node or address (`?q=`). Its poll
    (`v`: the version the browser shows) gets 204 when nothing changed, else only the cards or
    rows that did (dashboard_cards.changed_parts). Reads the database only."""
    state = request.GET.get("state", "")
    state = state if state in selectors.TRIAGE_STATES else ""
    q = request.GET.get("q", "").strip()[:100]
    view = request.GET.get("view") or request.COOKIES.get(VIEW_COOKIE, "")
    view = view if view in dashboard_cards.VIEWS else "cards"
    rows = selectors.dashboard_rows()
    counts = dashboard_cards.triage_counts(rows)
    shown = selectors.dashboard_filter(rows, state=state, q=q)
    strip = dashboard_cards.count_strip(counts, state=state, q=q, view=view)
    listed, items = dashboard_cards.dashboard_list(shown, view=view, state=state, q=q)
    drawing = dashboard_cards.Drawing.of(view, strip, items)
    old = request.GET.get("v") if request.htmx else None
    if old == drawing.token:
        if not dashboard_cards.still_remembered(old):
            dashboard_cards.remember(drawing)
        return HttpResponse(status=204)  # htmx swaps nothing
    dashboard_cards.remember(drawing)
    poller = dashboard_cards.poller(
        token=drawing.token, state=state, q=q, view=view, shown=len(shown), total=len(rows)
    )
    if old is not None:
        parts = dashboard_cards.changed_parts(old, drawing)
        if parts is not None:
            return _gzipped(request, HttpResponse(dashboard_cards.oob(poller) + "".join(parts)))
    context = {
        "total": len(rows),
        "strip": mark_safe(strip),  # noqa: S308 - drawn by dashboard_cards, values escaped
        "listed": mark_safe(listed),  # noqa: S308 - idem
        "poller": mark_safe(poller),  # noqa: S308 - idem
        "state": state,
        "q": q,
        "view": view,
        "views": [
            (name, dashboard_cards.dashboard_url(state=state, q=q, view=name))
            for name in dashboard_cards.VIEWS
        ],
        "title": dashboard_cards.triage_title(counts),
        "favicon": dashboard_cards.triage_favicon(counts),
    }
    if old is not None:  # a poll: the order changed or its drawing is unknown here, send all
        section = render_to_string(
            "clusters/htmx/dashboard_list.html", {**context, "oob": True}, request=request
        )
        response = HttpResponse(dashboard_cards.oob(strip) + section)
    elif request.htmx:
        response = render(request, "clusters/htmx/dashboard.html", context)
    else:
        context["draft"] = WizardDraft.objects.filter(user=request.user).first()
        response = render(request, "clusters/cluster_list.html", context)
    if request.GET.get("view") == view:
        response.set_cookie(
            VIEW_COOKIE, view, max_age=VIEW_COOKIE_AGE_S, samesite="Lax", httponly=True
        )
    return _gzipped(request, response) if request.htmx else response


def _gzipped(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """The answer compressed when the browser accepts gzip (only for the dashboard's htmx
    fragments: see _GZIP)."""
    return _GZIP.process_response(request, response)


@role_required(VIEWER)
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The cluster page: topology, nodes, lag chart, events, jobs and the actions the user's
    role may run."""
    cluster = get_object_or_404(Cluster, pk=pk)
    nodes = list(cluster.nodes.select_related("credential", "status"))
    devices = {d.node_id: d for d in FenceDevice.objects.filter(node__cluster=cluster)}
    for n in nodes:
        n.fence_summary = devices.get(n.pk)  # the row's "Fence device" line
    database = [n for n in nodes if n.kind == Node.Kind.DATABASE]
    primary = next((n for n in database if _status(n).role == "primary"), None)
    standbys = [n for n in database if n is not primary]
    allowed = actions.available(request.user)
    outlook = selectors.cluster_failover_outlook(cluster)
    set_up = cluster.state not in (Cluster.State.NEW, Cluster.State.PROVISIONING)
    off, winner = _actions_off(cluster, nodes, allowed, outlook)
    return render(
        request,
        "clusters/cluster_detail.html",
        {
            "cluster": cluster,
            "why": selectors.cluster_why(cluster),
            "nodes": nodes,
            "primary": primary,
            "standbys": standbys,
            "proxy": next((n for n in nodes if n.kind == Node.Kind.PROXY), None),
            # With two: both, the first (the etcd witness) first.
            "proxies": [n for n in nodes if n.kind == Node.Kind.PROXY],
            "readers": [n for n in standbys if _status(n).state == "streaming"],
            # HAProxy sends writes to the primary (UP, or "UP 1/2" while failing checks).
            "writes_routed": primary is not None and _status(primary).proxy_status.startswith("UP"),
            "allowed": allowed,
            "set_up": set_up,
            # Operations that act on what the monitor read (switch over, rebuild, fail over…)
            # need a reading: while nothing answers, what the page shows is old, and acting on
            # it could rebuild a healthy primary the console merely cannot reach.
            "acts": set_up and cluster.state != Cluster.State.UNKNOWN,
            "jobs": cluster.jobs.select_related("requested_by")[:20],
            "alarms": cluster.alarms.filter(cleared__isnull=True),
            "tls": selectors.tls_detail(cluster),
            "versions": cluster_versions(cluster),
            "backups": backups_status(cluster),
            "failover_drills": failover_drills_of(cluster),
            # An incident is one row of the list, its events folded under it.
            "event_rows": events_grouped(list(cluster.events.select_related("incident")[:30])),
            **incident_context(cluster),  # the incident section: story and what it shows
            "application": application_detail(cluster),
            "outlook": outlook,
            "outlook_winner": winner,
            # Why each offered action cannot succeed now ({kind: reason}; node rows carry their
            # own as node.off), decided by the rules the job refuses by (action_checks).
            "off": off,
            "backup_buttons": _backup_buttons(off),
        },
    )


def _backup_buttons(off: dict[str, str | None]) -> list[dict]:
    """The Backups section's buttons, each with why it cannot run now (None: it can). The
    schedule starts backups once the first configuration succeeded; these run one now."""
    return [
        {
            "id": "configure-backups",
            "kind": "configure_backups",
            "type": "",
            "label": "Configure backups",
            "off": off["configure_backups"],
        },
        {
            "id": "backup-full",
            "kind": "backup",
            "type": "full",
            "label": "Full backup now",
            "off": off["backup"],
        },
        {
            "id": "backup-diff",
            "kind": "backup",
            "type": "diff",
            "label": "Differential backup now",
            "off": off["backup"],
        },
    ]


def _actions_off(
    cluster: Cluster, nodes: list[Node], allowed: set[str], outlook: list[dict]
) -> tuple[dict[str, str | None], dict | None]:
    """Why each action the user may start cannot succeed now, for the cluster (returned) and
    per database node (set as ``node.off``); and the standby Patroni would promote, whose
    "Fail over" is the main action once a switchover cannot run (``node.failover_main``)."""
    facts = action_checks.facts_read(cluster, outlook)
    cluster_kinds = ("switchover", "restart", "maintenance_on", "maintenance_off", "add_node")
    off = {kind: action_checks.why_not(cluster, kind, None, facts) for kind in cluster_kinds}
    for kind in (
        "rotate_certificates",
        "minor_upgrade",
        "configure_backups",
        "backup",
        "restore_drill",
        "failover_drill",
    ):
        off[kind] = action_checks.why_not(cluster, kind, None, facts)
    off["add_proxy"] = action_checks.add_proxy_refusal(cluster, facts)
    winner = next((o for o in outlook if o["verdict"] == "would_promote"), None)
    node_kinds = ("rebuild", "switchover", "failover", "replace_node", "remove_node", "fence")
    for node in nodes:
        if node.kind == Node.Kind.PROXY:
            node.off = {
                kind: action_checks.why_not(cluster, kind, node, facts)
                for kind in ("replace_node", "remove_node")
                if kind in allowed
            }
            continue
        if node.kind != Node.Kind.DATABASE:
            continue
        node.off = {
            kind: action_checks.why_not(cluster, kind, node, facts)
            for kind in node_kinds
            if kind in allowed
        }
        node.failover_main = (
            winner is not None
            and winner["node"] == node.name
            and off["switchover"] is not None
            and node.off.get("failover") is None
        )
    return off, winner


def _status(node: Node):
    """The node's latest status, or an unsaved "unknown" one before the first observation."""
    try:
        return node.status
    except NodeStatus.DoesNotExist:
        return NodeStatus(node=node)


@role_required(OPERATOR)
def cluster_action_confirm(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    """Name the consequence of an operation before it starts; the form posts to job-start."""
    cluster = get_object_or_404(Cluster, pk=pk)
    action = actions.ACTIONS.get(kind)
    if action is None:
        raise Http404(f"No action {kind!r} here.")
    if not has_role(request.user, action.role):
        raise PermissionDenied(refusal(request.user, action.role))
    if kind not in actions.available(request.user):
        raise Http404(f"This console does not run {kind!r} jobs.")
    node = None
    if request.GET.get("node"):
        node = get_object_or_404(Node, cluster=cluster, name=request.GET["node"])
    if kind == "add_node":  # a new server to enter and scan first: its own page
        return redirect("node-add", pk=cluster.pk)
    if kind == "replace_node" and node is not None:
        return redirect("node-replace", pk=cluster.pk, name=node.name)
    outlook = selectors.cluster_failover_outlook(cluster)
    facts = action_checks.facts_read(cluster, outlook)
    database = list(cluster.database_nodes.select_related("status").order_by("name"))
    candidates = []
    if kind == "switchover" and node is None:
        # Each standby with the reason it cannot take the role now, shown as a disabled option.
        candidates = [
            (n, action_checks.why_not(cluster, kind, n, facts))
            for n in database
            if _status(n).role != "primary"
        ]
    return render(
        request,
        "clusters/action_confirm.html",
        {
            "cluster": cluster,
            "action": action,
            "node": node,
            "candidates": candidates,
            "consequence": actions.consequence(cluster, kind, node),
            # Decided before the click, by the rules the job refuses by: the button is disabled.
            "why_not": action_checks.why_not(cluster, kind, node, facts),
            "typed_name": actions.typed_name(cluster, kind, node),
            # The facts to weigh it by: every database node as last read, the target marked.
            "members": [(n, _status(n), _is_target(kind, n, node)) for n in database],
            "loss": actions.predicted_loss(cluster, kind, node, outlook),
            "replaced": actions.replaced(cluster, kind, node),
        },
    )


def _is_target(kind: str, member: Node, node: Node | None) -> bool:
    """Whether the confirmation acts on `member`: the named node, or for a restart without one
    the primary (whose PostgreSQL restarts)."""
    if node is not None:
        return member.pk == node.pk
    return kind == "restart" and _status(member).role == NodeStatus.Role.PRIMARY


@role_required(VIEWER)
def cluster_lag(request: HttpRequest, pk: int) -> JsonResponse:
    """Lag history for the chart (``?range=1h`` or ``1d``), read from the database, with its
    axes worked out for at most ``?ticks=N`` time labels (the chart's width decides)."""
    cluster = get_object_or_404(Cluster, pk=pk)
    ticks = request.GET.get("ticks", "")
    # A tampered count must not crash the view; lag_chart caps it anyway.
    max_ticks = int(ticks) if ticks.isdigit() else 6
    return JsonResponse(lag_chart.chart_data(cluster, request.GET.get("range", "1h"), max_ticks))


def _posted_nodes(request: HttpRequest) -> list[dict]:
    """Node rows of the cluster form, as the API's node objects."""
    rows = []
    count = request.POST.get("rows", "")
    # A tampered row count must neither crash the page nor make it loop a million times.
    count = int(count) if count.isdigit() else len(DEFAULT_ROWS)
    for i in range(min(count, settings.HACENTER_MAX_NODES + 1)):
        get = lambda field, i=i: request.POST.get(f"nodes-{i}-{field}", "").strip()  # noqa: E731
        if not any(get(f) for f in ("name", "address")):
            continue
        port = get("ssh_port") or "22"
        rows.append(
            {
                "name": get("name"),
                "address": get("address"),
                "ssh_port": int(port) if port.isdigit() else port,
                "credential": get("credential"),
                "kind": get("kind"),
                "host_key_fingerprint": get("host_key_fingerprint"),
            }
        )
    return rows


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def cluster_new(request: HttpRequest) -> HttpResponse:
    """Define a cluster in two steps: enter the servers, then confirm each scanned host key."""
    rows = [{"name": n, "kind": k, "ssh_port": 22} for n, k in DEFAULT_ROWS]
    context = {
        "credentials": Credential.objects.all(),
        "kinds": Node.Kind.choices,
        "replications": Cluster.Replication.choices,
        "profiles": Cluster.FailoverProfile.choices,
        "errors": {},
        "data": {},
    }
    if request.method == "POST":
        data = {
            "name": request.POST.get("name", "").strip(),
            "replication": request.POST.get("replication", "async"),
            "failover_profile": request.POST.get("failover_profile", "balanced"),
            "client_networks": request.POST.get("client_networks", "").split(),
            "apt_proxy": request.POST.get("apt_proxy", "").strip(),
            # A checkbox, ticked by default: posted as "on" when ticked.
            "require_client_tls": request.POST.get("require_client_tls") == "on",
            "nodes": _posted_nodes(request),
        }
        rows = data["nodes"] or rows
        if request.POST.get("action") == "scan":
            scanned = {}
            for row in rows:
                port = row["ssh_port"] if isinstance(row["ssh_port"], int) else 22
                result = _scan(row["address"], port)
                row["host_key_fingerprint"] = result.get("fingerprint", "")
                row["scan_error"] = result.get("error", "")
                if row["host_key_fingerprint"]:
                    scanned[f"{row['address']}:{port}"] = row["host_key_fingerprint"]
            failed = [row["address"] for row in rows if row.get("scan_error")]
            audit(
                request,
                action="host_key.scan",
                target="new cluster form",
                params=scanned,
                result=f"refused: {len(failed)} of {len(rows)} scans" if failed else "ok",
            )
            context["scanned"] = True
        else:
            try:
                cluster = services.cluster_create(data=data, created_by=request.user)
            except services.InvalidInput as exc:
                context["errors"] = exc.field_errors
                context["scanned"] = True
                audit(request, action="cluster.create", result=refused(exc.field_errors))
            else:
                audit(
                    request,
                    action="cluster.create",
                    target=f"cluster {cluster.name}",
                    params={"name": cluster.name, "nodes": [n["name"] for n in data["nodes"]]},
                )
                messages.success(request, f"Cluster {cluster.name} created. Run preflight next.")
                return redirect("cluster-detail", pk=cluster.pk)
        context["data"] = data
    for i, row in enumerate(rows):
        row["index"] = i
        row["errors"] = {
            key.split(".", 1)[1]: msgs
            for key, msgs in context["errors"].items()
            if key.startswith(f"nodes[{i}].")
        }
    context["rows"] = rows
    status = 400 if context["errors"] else 200
    return render(request, "clusters/cluster_new.html", context, status=status)


def _scan(address: str, port: int) -> dict:
    """A host-key scan through a worker, for a syntactically valid address only: the form must
    not make a worker connect to `$(reboot)` or a 10 KB string."""
    if not address:
        return {}
    try:
        validate_ip_address(address)
    except ValidationError as exc:
        return {"error": " ".join(exc.messages)}
    if not 1 <= port <= 65535:
        return {"error": "Expected a port number from 1 to 65535."}
    return scans.scan_via_worker(address, port)


# A password is in the answer: no cache (browser, proxy) may keep it.
@never_cache
@role_required(VIEWER)  # the service lets admins only, and audits every refusal
@require_http_methods(["POST"])
def cluster_connection(request: HttpRequest, pk: int) -> HttpResponse:
    """Reveal the application's connection strings on click: admins only, audited."""
    cluster = get_object_or_404(Cluster, pk=pk)
    try:
        strings = cluster_connection_read(
            cluster=cluster, user=request.user, source_address=source_address(request)
        )
        allowed = True
    except PermissionDenied:
        strings, allowed = None, False
    mark_audited(request)  # the service recorded the read or the refusal
    template = "clusters/htmx/connection.html" if request.htmx else "clusters/connection_page.html"
    context = {"cluster": cluster, "strings": strings, "allowed": allowed}
    return render(request, template, context, status=200 if allowed else 403)
