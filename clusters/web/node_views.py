"""Pages that add a server to a running cluster or put a new server in a node's place.

Like the wizard: enter the server, let a worker read its host key, compare and confirm the
fingerprint, then the service (``node_add`` / ``node_replace``) validates everything again,
pins the key and starts the job. Admins only: these change the inventory.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from clusters.access.audit import audit
from clusters.access.roles import ADMIN, role_required
from clusters.inventory.services import InvalidInput
from clusters.models import Cluster, Credential, Node
from clusters.web import scans
from clusters.web.action_checks import add_proxy_refusal, facts_read, why_not
from jobs import node_changes
from jobs.errors import JobRefused


def _typed(request: HttpRequest, with_name: bool) -> dict:
    fields = ("address", "ssh_port", "credential") + (("name",) if with_name else ())
    typed = {f: request.POST.get(f, "").strip() for f in fields}
    if with_name and request.POST.get("node_kind") == Node.Kind.PROXY:
        typed["kind"] = Node.Kind.PROXY
    return typed


def _data(typed: dict, fingerprint: str) -> dict:
    port = typed.get("ssh_port") or "22"
    return {
        **typed,
        "ssh_port": int(port) if port.isdigit() else port,
        "host_key_fingerprint": fingerprint,
    }


def _change_page(request: HttpRequest, cluster: Cluster, node: Node | None) -> HttpResponse:
    """Shared by add (node None) and replace (the node whose server is replaced); a proxy is
    added with `?kind=proxy` (the form keeps it in a hidden field)."""
    typed = {"ssh_port": "22", "credential": str(node.credential_id) if node else ""}
    adds_proxy = node is None and Node.Kind.PROXY in (
        request.GET.get("kind"),
        request.POST.get("node_kind"),
    )
    errors: dict[str, list[str]] = {}
    key: dict = {}
    if request.method == "POST":
        typed = _typed(request, with_name=node is None)
        key, errors, confirmed = scans.host_key_step(request, typed, "confirm")
        if confirmed:
            try:
                data = _data(typed, key["fingerprint"])
                if node is None:
                    job = node_changes.node_add(
                        cluster=cluster, data=data, requested_by=request.user
                    )
                else:
                    job = node_changes.node_replace(node=node, data=data, requested_by=request.user)
            except InvalidInput as exc:
                errors = exc.field_errors
            except JobRefused as exc:  # another job runs, maintenance...: nothing changed
                errors = {"non_field_errors": [str(exc)]}
            else:
                audit(
                    request,
                    action="node.add" if node is None else "node.replace",
                    target=f"cluster {cluster.name}",
                    params={"node": job.node.name if job.node else "", "job": job.pk},
                )
                return redirect("job-detail", pk=job.pk)
    kind = "add_node" if node is None else "replace_node"
    facts = facts_read(cluster)
    # Said before the admin types a server in, not after the job is refused.
    off = add_proxy_refusal(cluster, facts) if adds_proxy else why_not(cluster, kind, node, facts)
    return render(
        request,
        "clusters/node_change.html",
        {
            "cluster": cluster,
            "node": node,
            "proxy": adds_proxy or (node is not None and node.kind == Node.Kind.PROXY),
            "witness": cluster.proxy_node,
            "off": off,
            "typed": typed,
            "key": key,
            "errors": errors,
            "credentials": Credential.objects.all(),
        },
    )


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def node_add_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _change_page(request, get_object_or_404(Cluster, pk=pk), None)


@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def node_replace_page(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    return _change_page(request, cluster, get_object_or_404(Node, cluster=cluster, name=name))
