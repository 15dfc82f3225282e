"""Pages for clusters. They read the database; host-key scans go to a worker."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from clusters.access.audit import audit, mark_audited, refused, source_address
from clusters.access.reveal import cluster_connection_read
from clusters.access.roles import ADMIN, OPERATOR, VIEWER, has_role, refusal, role_required
from clusters.inventory import services
from clusters.inventory.validators import validate_ip_address
from clusters.models import Cluster, Credential, Node, NodeStatus, WizardDraft
from clusters.monitoring import lag_history
from clusters.web import actions, scans, selectors
from clusters.web.application_selectors import application_detail
from clusters.web.dashboard_cards import cluster_cards
from clusters.web.incident_selectors import events_grouped
from clusters.web.incident_views import incident_context

DEFAULT_ROWS = [("node1", "database"), ("node2", "database"), ("proxy", "proxy")]


@role_required(VIEWER)
@vary_on_headers("HX-Request")
def cluster_list(request: HttpRequest) -> HttpResponse:
    """The dashboard; its htmx poll gets the cards alone. Reads the database only."""
    rows = selectors.dashboard_rows()
    context = {"clusters": rows, "cards": cluster_cards(rows)}
    if request.htmx:
        return render(request, "clusters/htmx/dashboard.html", context)
    context["draft"] = WizardDraft.objects.filter(user=request.user).first()
    return render(request, "clusters/cluster_list.html", context)


@role_required(VIEWER)
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The cluster page: topology, nodes, lag chart, events, jobs and the actions the user's
    role may run."""
    cluster = get_object_or_404(Cluster, pk=pk)
    nodes = list(cluster.nodes.select_related("credential", "status"))
    database = [n for n in nodes if n.kind == Node.Kind.DATABASE]
    primary = next((n for n in database if _status(n).role == "primary"), None)
    standbys = [n for n in database if n is not primary]
    allowed = actions.available(request.user)
    outlook = selectors.cluster_failover_outlook(cluster)
    return render(
        request,
        "clusters/cluster_detail.html",
        {
            "cluster": cluster,
            "nodes": nodes,
            "primary": primary,
            "standbys": standbys,
            "proxy": next((n for n in nodes if n.kind == Node.Kind.PROXY), None),
            "readers": [n for n in standbys if _status(n).state == "streaming"],
            "allowed": allowed,
            "set_up": cluster.state not in (Cluster.State.NEW, Cluster.State.PROVISIONING),
            "jobs": cluster.jobs.select_related("requested_by")[:20],
            "alarms": cluster.alarms.filter(cleared__isnull=True),
            "tls": selectors.tls_detail(cluster),
            # An incident is one row of the list, its events folded under it.
            "event_rows": events_grouped(list(cluster.events.select_related("incident")[:30])),
            **incident_context(cluster),  # the incident section: story and what it shows
            "application": application_detail(cluster),
            "outlook": outlook,
            "outlook_winner": next((o for o in outlook if o["verdict"] == "would_promote"), None),
        },
    )


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
    candidates = []
    if kind == "switchover" and node is None:
        candidates = [
            n
            for n in cluster.database_nodes.select_related("status")
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
        },
    )


@role_required(VIEWER)
def cluster_lag(request: HttpRequest, pk: int) -> JsonResponse:
    """Lag history for the chart (``?range=1h`` or ``1d``), read from the database."""
    cluster = get_object_or_404(Cluster, pk=pk)
    return JsonResponse(lag_history.lag_series(cluster, request.GET.get("range", "1h")))


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
