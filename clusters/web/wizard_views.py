"""The setup wizard's pages: six steps over the user's draft (see ``clusters.web.wizard``).

Every step is a plain form POST (works without JavaScript, keyboard first); preflight's live
results poll with htmx. Only admins define clusters.
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from clusters.access.audit import audit
from clusters.access.roles import ADMIN, role_required
from clusters.inventory.services import InvalidInput, key_from_upload
from clusters.models import Cluster, Credential, WizardDraft
from clusters.web import scans, wizard
from jobs.errors import JobRefused

CREDENTIAL_FIELDS = ("name", "username", "private_key", "passphrase", "password")


def _admin_draft(request: HttpRequest) -> WizardDraft:
    """The user's draft; every view here is for admins only (role_required(ADMIN))."""
    return wizard.draft_get(user=request.user)


def _to(step: int) -> HttpResponse:
    return redirect("wizard-step", step=step)


@role_required(ADMIN)
def wizard_resume(request: HttpRequest) -> HttpResponse:
    """Open the wizard where the admin left it."""
    return _to(_admin_draft(request).reached)


@role_required(ADMIN)
@require_POST
def wizard_discard(request: HttpRequest) -> HttpResponse:
    draft = _admin_draft(request)
    try:
        wizard.draft_discard(draft=draft)
    except InvalidInput as exc:
        messages.error(request, " ".join(exc.field_errors.get("non_field_errors", [])))
        return _to(draft.reached)
    messages.info(request, "The unfinished setup was discarded.")
    return redirect("cluster-list")


def _posted_rows(request: HttpRequest) -> list[dict]:
    """The server rows as posted, each with the credential it uses: its own pick, else the one
    picked for every server (``credential``)."""
    try:
        count = min(int(request.POST.get("rows", "0")), 50)
    except ValueError:
        count = 0
    rows = [
        {f: request.POST.get(f"servers-{i}-{f}", "") for f in wizard.SERVER_FIELDS}
        for i in range(count)
    ]
    return wizard.rows_with_credential(rows, request.POST.get("credential", ""))


def _row_errors(errors: dict[str, list[str]], i: int) -> dict[str, list[str]]:
    """Errors of server i keyed by the wizard's field names (kind and master are its role)."""
    result: dict[str, list[str]] = {}
    for key, msgs in errors.items():
        if key.startswith(f"nodes[{i}]."):
            field = key.split(".", 1)[1]
            result.setdefault("role" if field in ("kind", "master") else field, []).extend(msgs)
    return result


def _step1_errors(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for key, msgs in errors.items():
        field = key.split("[", 1)[0].replace("database.", "database_")
        if field == "database":
            field = "database_name"
        result.setdefault(field, []).extend(msgs)
    return result


# The servers step can create a credential: its secrets stay out of Django's error reports.
@sensitive_post_parameters(*(f"credential-{f}" for f in ("private_key", "passphrase", "password")))
@role_required(ADMIN)
@require_http_methods(["GET", "POST"])
def wizard_step(request: HttpRequest, step: int) -> HttpResponse:
    """Show or submit one step; a step beyond the furthest one reached is not open yet."""
    draft = _admin_draft(request)
    if step not in WizardDraft.Step.values or step > draft.reached:
        return _to(draft.reached)
    errors: dict[str, list[str]] = {}
    credential_errors: dict[str, list[str]] = {}
    if request.method == "POST":
        action = request.POST.get("action", "next")
        handler = STEP_HANDLERS[step]
        try:
            response = handler(request, draft, action)
        except InvalidInput as exc:
            if action == "credential":
                credential_errors = exc.field_errors
            else:
                errors = exc.field_errors
        else:
            if response is not None:
                return response
    return render(
        request, "clusters/wizard.html", _context(draft, step, errors, credential_errors, request)
    )


def _context(draft, step, errors, credential_errors, request) -> dict:
    shared_credential, own_credentials = wizard.credential_choice(draft.servers)
    rows = [
        dict(
            row,
            index=i,
            errors=_row_errors(errors, i),
            key=wizard.host_key_of(draft, row),
            own_credential=own_credentials[i],
        )
        for i, row in enumerate(draft.servers)
    ]
    return {
        "draft": draft,
        "step": step,
        "steps": WizardDraft.Step.choices,
        "fields": draft.cluster_fields,
        "field_errors": _step1_errors(errors) if step == 1 else {},
        "errors": errors,
        "loose_errors": _loose_errors(errors, step),
        "rows": rows,
        "roles": wizard.SERVER_ROLES,
        "proxy_rows": sum(1 for row in draft.servers if row.get("role") == "proxy"),
        "credentials": Credential.objects.all(),
        "shared_credential": shared_credential,
        "credential_errors": credential_errors,
        "credential_typed": {
            k: request.POST.get(f"credential-{k}", "")
            for k in ("name", "username")
            if credential_errors
        },
        "replications": Cluster.Replication.choices,
        "profiles": Cluster.FailoverProfile.choices,
        "preflight": wizard.preflight_outcome(draft) if step >= 4 else None,
        "cluster_data": wizard.cluster_data(draft.cluster_fields),
        "frontend_rows": _frontend_rows(draft, errors),
        "application_unit": draft.application.get("unit", ""),
        "application_data": wizard.application_data(draft.application),
    }


def _loose_errors(errors: dict[str, list[str]], step: int) -> list[str]:
    """Errors that no field of steps 2 and 3 shows, said at the top of the page: creating the
    cluster at the host keys re-checks step 1 too (a floating address or name another cluster
    took since)."""
    if step not in (WizardDraft.Step.SERVERS, WizardDraft.Step.HOST_KEYS):
        return []
    shown = ("non_field_errors", "nodes")
    loose = []
    for key, msgs in errors.items():
        if key in shown or (step == WizardDraft.Step.SERVERS and key.startswith("nodes[")):
            continue
        if key.startswith("nodes[") and key.endswith(".host_key_fingerprint"):
            continue
        loose.extend(f"{_error_label(key)}: {m}" for m in msgs)
    return loose


def _error_label(key: str) -> str:
    """ "nodes[1].address" -> "Server 2, address"; "virtual_ip" -> "Floating address"."""
    if key.startswith("nodes[") and "]." in key:
        index, field = key.removeprefix("nodes[").split("].", 1)
        number = int(index) + 1 if index.isdigit() else index
        return f"Server {number}, {field.replace('_', ' ')}"
    names = {"virtual_ip": "floating address", "vrrp_router_id": "VRRP router id"}
    label = names.get(key, key.replace("_", " "))
    return label[0].upper() + label[1:]


def _cluster_step(request, draft, action):
    fields = {k: request.POST.get(k, "") for k in wizard.CLUSTER_FIELDS}
    wizard.wizard_cluster_save(draft=draft, fields=fields)
    return _to(2)


def _servers_step(request, draft, action):
    rows = _posted_rows(request)
    if action == "back":
        wizard.wizard_servers_keep(draft=draft, rows=rows)
        return _to(1)
    if action in ("add", "add-proxy"):
        credential = request.POST.get("credential", "") or (rows[-1]["credential"] if rows else "")
        role = "proxy" if action == "add-proxy" else "standby"
        # A second proxy gets a name at once; a standby is named by the admin.
        name = wizard.second_proxy_name(rows) if role == "proxy" else ""
        rows.append({"name": name, "role": role, "ssh_port": "22", "credential": credential})
        wizard.wizard_servers_keep(draft=draft, rows=rows)
        return _to(2)
    if action.startswith("remove-"):
        index = action.removeprefix("remove-")
        rows = [r for i, r in enumerate(rows) if str(i) != index]
        wizard.wizard_servers_keep(draft=draft, rows=rows)
        return _to(2)
    if action == "credential":
        return _credential_create(request, draft, rows)
    wizard.wizard_servers_save(draft=draft, rows=rows)
    wizard.wizard_host_keys_scan(draft=draft, scan=scans.scan_via_worker)
    return _to(3)


def _credential_create(request, draft, rows):
    data = {k: request.POST.get(f"credential-{k}", "") for k in CREDENTIAL_FIELDS}
    upload = request.FILES.get("credential-private_key_file")
    if upload is not None and not data["private_key"]:
        data["private_key"] = key_from_upload(upload)
    credential = wizard.wizard_credential_create(draft=draft, data=data, rows=rows)
    audit(
        request,
        action="credential.create",
        target=f"credential {credential.name}",
        params={"name": credential.name, "username": credential.username, "kind": credential.kind},
    )
    messages.success(request, f"Credential {credential.name} saved (encrypted).")
    return _to(2)


def _host_keys_step(request, draft, action):
    if action == "back":
        return _to(2)
    if action == "scan":
        wizard.wizard_host_keys_scan(draft=draft, scan=scans.scan_via_worker)
        return _to(3)
    confirmed = {i for i in range(len(draft.servers)) if request.POST.get(f"confirm-{i}")}
    cluster = wizard.wizard_host_keys_confirm(draft=draft, confirmed=confirmed, user=request.user)
    audit(
        request,
        action="cluster.create",
        target=f"cluster {cluster.name}",
        params={"name": cluster.name, "wizard": True},
    )
    return _start_preflight(request, draft)


def _start_preflight(request, draft):
    try:
        job = wizard.wizard_preflight_start(draft=draft, user=request.user)
    except JobRefused as exc:
        raise InvalidInput({"non_field_errors": [str(exc)]}) from exc
    audit(
        request,
        action="job.start.preflight",
        target=f"cluster {draft.cluster.name}",
        params={"kind": "preflight", "job": job.pk},
    )
    return _to(4)


def _preflight_step(request, draft, action):
    if action == "back":
        return _to(3)
    if action == "run":
        return _start_preflight(request, draft)
    wizard.wizard_preflight_accept(draft=draft, acknowledged=bool(request.POST.get("acknowledge")))
    return _to(WizardDraft.Step.APPLICATION)


def _posted_frontends(request: HttpRequest) -> list[dict]:
    try:
        count = min(int(request.POST.get("frontends", "0")), 20)
    except ValueError:
        count = 0
    return [
        {f: request.POST.get(f"frontends-{i}-{f}", "") for f in wizard.FRONTEND_FIELDS}
        for i in range(count)
    ]


def _application_step(request, draft, action):
    rows = _posted_frontends(request)
    unit = request.POST.get("application_unit", "")
    if action == "back":
        wizard.wizard_application_keep(draft=draft, rows=rows, unit=unit)
        return _to(WizardDraft.Step.PREFLIGHT)
    if action == "add":
        rows.append({"listen_port": "", "app_port": "", "check_path": ""})
        wizard.wizard_application_keep(draft=draft, rows=rows, unit=unit)
        return _to(WizardDraft.Step.APPLICATION)
    if action.startswith("remove-"):
        index = action.removeprefix("remove-")
        rows = [r for i, r in enumerate(rows) if str(i) != index]
        wizard.wizard_application_keep(draft=draft, rows=rows, unit=unit)
        return _to(WizardDraft.Step.APPLICATION)
    wizard.wizard_application_save(draft=draft, rows=rows, unit=unit)
    return _to(WizardDraft.Step.REVIEW)


def _frontend_rows(draft: WizardDraft, errors: dict[str, list[str]]) -> list[dict]:
    """The application step's rows as typed (one empty row to start), each with its errors."""
    rows = draft.application.get("frontends") or [
        {"listen_port": "", "app_port": "", "check_path": ""}
    ]
    return [
        dict(
            row,
            index=i,
            errors=errors.get(f"http_frontends[{i}]", []),
            path_errors=errors.get(f"http_frontends[{i}].check_path", []),
        )
        for i, row in enumerate(rows)
    ]


def _review_step(request, draft, action):
    if action == "back":
        return _to(WizardDraft.Step.APPLICATION)
    cluster = draft.cluster
    try:
        job = wizard.wizard_launch(draft=draft, user=request.user)
    except JobRefused as exc:
        raise InvalidInput({"non_field_errors": [str(exc)]}) from exc
    audit(
        request,
        action="job.start.setup",
        target=f"cluster {cluster.name}",
        params={"kind": "setup", "job": job.pk, "wizard": True},
    )
    return redirect("job-detail", pk=job.pk)


STEP_HANDLERS = {
    1: _cluster_step,
    2: _servers_step,
    3: _host_keys_step,
    4: _preflight_step,
    WizardDraft.Step.APPLICATION: _application_step,
    WizardDraft.Step.REVIEW: _review_step,
}


@role_required(ADMIN)
@vary_on_headers("HX-Request")
def wizard_preflight(request: HttpRequest) -> HttpResponse:
    """Preflight's checks as they finish; the fragment stops polling once the job has ended."""
    draft = _admin_draft(request)
    if not request.htmx:
        return _to(min(draft.reached, WizardDraft.Step.PREFLIGHT))
    return render(
        request,
        "clusters/htmx/wizard_preflight.html",
        {"draft": draft, "preflight": wizard.preflight_outcome(draft), "errors": {}},
    )
