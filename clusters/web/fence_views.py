"""The fence device page of a database node (issue 21 part 1): the device's method, its
options and its secret (write-only), its last test, and "Test fence device".

Anyone who may view sees it; operators test (a status query, never an off); admins change or
remove it, as they change credentials. Every change and test is audited, never the secret.
"""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from clusters.access.audit import audit, refused
from clusters.access.roles import ADMIN, OPERATOR, VIEWER, has_role, refusal, role_required
from clusters.inventory.fence_methods import METHODS
from clusters.inventory.fencing import (
    fence_device_delete,
    fence_device_set,
    fence_device_summary,
)
from clusters.inventory.services import InvalidInput
from clusters.models import Cluster, FenceDevice, Node
from jobs import services as job_services
from jobs.errors import JobRefused


def _typed_options(request: HttpRequest, method: str) -> dict:
    """The chosen method's options as the form sent them (checkboxes: present or not)."""
    typed: dict = {}
    for option in METHODS[method].options:
        key = f"opt-{option.name}"
        if option.kind == "bool":
            typed[option.name] = key in request.POST
        elif (value := request.POST.get(key, "").strip()) != "":
            typed[option.name] = int(value) if option.kind == "port" and value.isdigit() else value
    return typed


def _fields(method: str, values: dict) -> list[dict]:
    return [
        {
            "name": o.name,
            "label": o.label,
            "bool": o.kind == "bool",
            "required": o.required,
            "value": values.get(o.name, o.default if o.default is not None else ""),
        }
        for o in METHODS[method].options
    ]


@sensitive_post_parameters("secret")  # out of error reports
@role_required(VIEWER, post=OPERATOR)
@require_http_methods(["GET", "POST"])
def node_fence_page(request: HttpRequest, pk: int, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    node = get_object_or_404(Node, cluster=cluster, name=name, kind=Node.Kind.DATABASE)
    device = FenceDevice.objects.filter(node=node).first()
    target = f"node {node.name} of cluster {cluster.name}"
    errors: dict[str, list[str]] = {}
    method = request.GET.get("method") or (device.method if device else "redfish")
    if method not in METHODS:
        method = "redfish"
    values = dict(device.options) if device and device.method == method else {}
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "test":
            if device is None:
                errors["non_field_errors"] = [f"{node.name} has no fence device yet."]
            else:
                try:
                    job = job_services.job_start(
                        cluster=cluster, kind="fence_test", node=node, requested_by=request.user
                    )
                except JobRefused as exc:
                    audit(
                        request, action="fence_device.test", target=target, result=f"refused: {exc}"
                    )
                    errors["non_field_errors"] = [str(exc)]
                else:
                    audit(
                        request, action="fence_device.test", target=target, params={"job": job.pk}
                    )
                    return redirect("job-detail", pk=job.pk)
        elif not has_role(request.user, ADMIN):
            audit(request, action=f"fence_device.{action}", target=target, result="refused: admin")
            raise PermissionDenied(refusal(request.user, ADMIN))
        elif action == "delete":
            if fence_device_delete(node=node):
                audit(request, action="fence_device.delete", target=target)
            return redirect("node-fence", pk=cluster.pk, name=node.name)
        else:
            method = request.POST.get("method", method)
            method = method if method in METHODS else "redfish"
            values = _typed_options(request, method)
            data = {"method": method, "options": values}
            if secret := request.POST.get("secret", ""):
                data["secret"] = secret  # empty: keep the stored one
            try:
                device = fence_device_set(node=node, data=data)
            except InvalidInput as exc:
                errors = exc.field_errors
                audit(request, action="fence_device.set", target=target, result=refused(errors))
            else:
                audit(
                    request,
                    action="fence_device.set",
                    target=target,
                    params={
                        "method": device.method,
                        "options": device.options,
                        "secret_set": bool(device.secret),
                    },
                )
                return redirect("node-fence", pk=cluster.pk, name=node.name)
    option_errors = {k.split(".", 1)[1]: v for k, v in errors.items() if k.startswith("options.")}
    fields = _fields(method, values)
    for field in fields:
        field["errors"] = option_errors.get(field["name"], [])
    return render(
        request,
        "clusters/node_fence.html",
        {
            "cluster": cluster,
            "node": node,
            "device": fence_device_summary(device) if device else None,
            "method": method,
            "methods": [(m.name, m.title) for m in METHODS.values()],
            "method_info": METHODS[method],
            "fields": fields,
            "errors": errors,
            "witness": cluster.proxy_node,
            "same_method": device is not None and device.method == method,
        },
    )
