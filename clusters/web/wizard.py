"""The setup wizard's steps as services over a per-user draft.

Each step keeps what was typed (so going back, or coming back tomorrow, shows it again) and
validates with the same forms and validators as ``cluster_create`` and the API: the wizard adds
no rules of its own. The cluster row is created when the host keys are confirmed, because
preflight is a job on a cluster; it stays in state ``new`` (nothing touched on the servers)
until Launch starts the setup job.
"""

from collections import Counter
from collections.abc import Callable

from django.db import transaction

from clusters.inventory import forms, services
from clusters.inventory.services import InvalidInput
from clusters.inventory.virtual_ip import (
    validate_router_id,
    virtual_ip_format_problems,
    virtual_ip_problems,
)
from clusters.models import Cluster, Credential, WizardDraft
from jobs import services as job_services
from jobs.models import Job, JobStatus, StepStatus

CLUSTER_FIELDS = (
    "name",
    "postgres_version",
    "replication",
    "failover_profile",
    "client_networks",
    "database_name",
    "database_user",
    "apt_proxy",
    "adopt_database",
    "require_client_tls",
    "virtual_ip",
    "vrrp_router_id",
)
SERVER_FIELDS = ("name", "address", "ssh_port", "credential", "role")
# A row's "credential" is always the one its server uses (what the API takes). "own_credential"
# is "on" where the admin picked another than the one for every server; drafts from before the
# shared pick have no such mark (see credential_choice).
ROW_FIELDS = (*SERVER_FIELDS, "own_credential")
# What the admin picks per server, and what it means for the node.
SERVER_ROLES = (
    ("master", "Master: database, bootstraps first"),
    ("standby", "Standby: database, streams from the master"),
    (
        "proxy",
        "Proxy: HAProxy (the first also the etcd witness; a second shares the floating address)",
    ),
)
INITIAL_CLUSTER = {
    "postgres_version": "15",
    "replication": "async",
    "failover_profile": "balanced",
    "database_name": "app",
    "database_user": "app",
    "require_client_tls": "on",  # on by default: applications connect with TLS
}
INITIAL_SERVERS = [
    {"name": "node1", "role": "master", "ssh_port": "22"},
    {"name": "node2", "role": "standby", "ssh_port": "22"},
    {"name": "proxy", "role": "proxy", "ssh_port": "22"},
]


def draft_get(*, user) -> WizardDraft:
    """The user's unfinished wizard, or a new one with sensible defaults."""
    draft, _created = WizardDraft.objects.get_or_create(
        user=user,
        defaults={"cluster_fields": dict(INITIAL_CLUSTER), "servers": _initial_servers()},
    )
    return draft


def _initial_servers() -> list[dict]:
    first = Credential.objects.order_by("name").values_list("pk", flat=True).first()
    return [dict(row, credential=str(first or "")) for row in INITIAL_SERVERS]


def draft_discard(*, draft: WizardDraft) -> None:
    """Throw the wizard away, with the cluster it defined if nothing was done on its servers."""
    _forget_cluster(draft)
    draft.delete()


def _forget_cluster(draft: WizardDraft) -> None:
    """Drop the draft's not-yet-set-up cluster after an edit of steps 1 or 2: its nodes would
    pin the old servers, and its preflight checked them."""
    cluster = draft.cluster
    if cluster is not None:
        if Job.objects.filter(cluster=cluster, status__in=JobStatus.active()).exists():
            raise InvalidInput(
                {"non_field_errors": ["Preflight is still running; wait for it to end first."]}
            )
        if cluster.state == Cluster.State.NEW:
            cluster.delete()
    draft.cluster = None
    draft.preflight_job_id = None
    draft.warnings_acknowledged = False


def _networks(text: str) -> list[str]:
    return text.replace(",", " ").split()


def cluster_data(fields: dict) -> dict:
    """Step 1 as typed, in the shape ``cluster_create`` and the API take."""
    data = {
        "name": fields.get("name", "").strip(),
        "replication": fields.get("replication", ""),
        "failover_profile": fields.get("failover_profile", ""),
        "postgres_version": fields.get("postgres_version", "").strip(),
        "client_networks": _networks(fields.get("client_networks", "")),
        "apt_proxy": fields.get("apt_proxy", "").strip(),
        # A checkbox: posted as "on" when ticked, absent otherwise.
        "adopt_database": fields.get("adopt_database", "") in ("on", "true", "True", "1"),
        # Ticked by default; a draft kept from before the box existed counts as ticked.
        "require_client_tls": fields.get("require_client_tls", "on") in ("on", "true", "True", "1"),
    }
    # Two proxies: the floating address keepalived moves between them, and VRRP's router id.
    if vip := fields.get("virtual_ip", "").strip():
        data["virtual_ip"] = vip
    router_id = fields.get("vrrp_router_id", "").strip()
    if router_id:
        data["vrrp_router_id"] = int(router_id) if router_id.isdigit() else router_id
    db_name = fields.get("database_name", "").strip()
    db_user = fields.get("database_user", "").strip()
    if db_name or db_user:
        data["database"] = {"name": db_name, "user": db_user}
    return data


def wizard_cluster_save(*, draft: WizardDraft, fields: dict) -> None:
    """Keep step 1 as typed; raise InvalidInput (keys as in the API) unless it validates."""
    typed = {k: str(fields.get(k, "")) for k in CLUSTER_FIELDS}
    changed = typed != draft.cluster_fields
    if changed:
        _forget_cluster(draft)
    draft.cluster_fields = typed
    draft.save()
    if draft.cluster is not None:
        # Unchanged since the cluster was created from it (which validated it); checking
        # again would find the name taken, by that very cluster.
        return _advance(draft, WizardDraft.Step.SERVERS)
    data = cluster_data(typed)
    errors: dict[str, list[str]] = {}
    form = forms.ClusterForm(data=data)
    if not form.is_valid():
        errors.update(services.form_errors(form))
    forms.validate_client_networks(data["client_networks"], errors)
    forms.validate_database(data.get("database"), errors)
    if problems := validate_router_id(data.get("vrrp_router_id")):
        errors["vrrp_router_id"] = problems
    if data.get("virtual_ip") and (problems := virtual_ip_format_problems(data["virtual_ip"])):
        errors["virtual_ip"] = problems
    elif data.get("virtual_ip") and not errors.get("vrrp_router_id"):
        # Taken already (another cluster's address or server): said here, next to the field.
        for key, problems in services.virtual_ip_conflicts(
            data["virtual_ip"], data.get("vrrp_router_id")
        ).items():
            errors.setdefault(key, []).extend(problems)
    if errors:
        raise InvalidInput(errors)
    _advance(draft, WizardDraft.Step.SERVERS)


def _advance(draft: WizardDraft, step: int) -> None:
    draft.reached = max(draft.reached, step)
    draft.save()


def _typed_rows(rows: list[dict]) -> list[dict]:
    return [{k: str(row.get(k, "")).strip() for k in ROW_FIELDS} for row in rows]


def _servers_as_nodes(rows: list[dict]) -> list[dict]:
    """The rows without the wizard's own marks: what the cluster would be made of."""
    return [{k: str(row.get(k, "")).strip() for k in SERVER_FIELDS} for row in rows]


def rows_with_credential(rows: list[dict], shared: str) -> list[dict]:
    """Rows as posted (``credential``: the server's own pick, '' for none) with the credential
    picked once for every server filled in where a row has none of its own."""
    result = []
    for row in rows:
        own = str(row.get("credential", "")).strip()
        mine = bool(own) and own != str(shared)
        result.append(
            dict(row, credential=own if mine else str(shared), own_credential="on" if mine else "")
        )
    return result


def credential_choice(rows: list[dict]) -> tuple[str, list[str]]:
    """The credential picked for every server, and each row's own pick ('' where it uses that
    one). A draft kept from before the shared pick (no row marked either way) counts the
    credential most servers use as the shared one, the others as their own."""
    marked = any("own_credential" in row for row in rows)
    following = [r for r in rows if not (marked and r.get("own_credential") == "on")] or rows
    counts = Counter(str(r.get("credential", "")) for r in following if r.get("credential"))
    shared = counts.most_common(1)[0][0] if counts else ""
    own = []
    for row in rows:
        credential = str(row.get("credential", ""))
        mine = row.get("own_credential") == "on" if marked else credential != shared
        own.append(credential if mine and credential != shared else "")
    return shared, own


def second_proxy_name(rows: list[dict]) -> str:
    """A free name for the row "Add a second proxy" appends: proxy2, else proxy3, …"""
    taken = {str(row.get("name", "")).strip() for row in rows}
    return next(f"proxy{i}" for i in range(2, len(rows) + 3) if f"proxy{i}" not in taken)


def node_data(row: dict) -> dict:
    """One server row as typed, in the shape of the API's node objects."""
    port = row.get("ssh_port", "") or "22"
    return {
        "name": row.get("name", ""),
        "address": row.get("address", ""),
        "ssh_port": int(port) if port.isdigit() else port,
        "credential": row.get("credential", ""),
        "kind": "proxy" if row.get("role") == "proxy" else "database",
        "master": row.get("role") == "master",
    }


def wizard_servers_keep(*, draft: WizardDraft, rows: list[dict]) -> None:
    """Keep step 2 as typed without judging it (adding a row or a credential midway)."""
    typed = _typed_rows(rows)
    # Compared without the marks: a draft from before them must not lose its cluster for that.
    if _servers_as_nodes(typed) != _servers_as_nodes(draft.servers):
        _forget_cluster(draft)
        draft.reached = min(draft.reached, WizardDraft.Step.SERVERS)
    draft.servers = typed
    draft.save()


def wizard_servers_save(*, draft: WizardDraft, rows: list[dict]) -> None:
    """Keep step 2 and validate every row, then the rows together (one master, one proxy,
    unique names and addresses); raise InvalidInput with ``nodes[i].field`` keys."""
    wizard_servers_keep(draft=draft, rows=rows)
    if draft.cluster is not None:
        # Unchanged since the cluster was created (an edit drops it): its nodes hold these
        # addresses, so checking again would find each "in another cluster".
        return _advance(draft, WizardDraft.Step.HOST_KEYS)
    errors: dict[str, list[str]] = {}
    nodes = []
    for i, row in enumerate(draft.servers):
        data = node_data(row)
        form = forms.ServerForm(data=data)
        if not form.is_valid():
            errors.update(services.form_errors(form, prefix=f"nodes[{i}]."))
            continue
        nodes.append(dict(form.cleaned_data, ssh_port=form.cleaned_data["ssh_port"] or 22))
    if not draft.servers:
        errors["nodes"] = ["Give the cluster's servers: at least two database nodes and a proxy."]
    elif len(nodes) == len(draft.servers):
        forms.validate_topology(nodes, errors)
        _check_virtual_ip(draft, nodes, errors)
    if errors:
        raise InvalidInput(errors)
    _advance(draft, WizardDraft.Step.HOST_KEYS)


def _check_virtual_ip(draft: WizardDraft, nodes: list[dict], errors: dict) -> None:
    """The floating address of step 1 against the servers: in the two proxies' network, no
    server's own address, no other cluster's (said here, where the servers are typed, not at
    the host keys)."""
    vip = str(draft.cluster_fields.get("virtual_ip", "")).strip()
    if not vip:
        return
    proxies = [n["address"] for n in nodes if n["kind"] == "proxy"]
    problems = virtual_ip_problems(vip, proxies, [n["address"] for n in nodes])
    if not problems:  # taken since step 1 (another cluster defined meanwhile)
        problems = services.virtual_ip_conflicts(vip).get("virtual_ip", [])
    if problems:
        errors.setdefault("nodes", []).extend(f"Floating address: {p}" for p in problems)


def wizard_credential_create(*, draft: WizardDraft, data: dict, rows: list[dict]) -> Credential:
    """Create a credential from inside step 2 (encrypted at once, never kept in the draft) and
    pick it for every server that has none yet."""
    wizard_servers_keep(draft=draft, rows=rows)
    credential = services.credential_create(data=data)
    for row in draft.servers:
        if not row.get("credential"):
            row["credential"] = str(credential.pk)
    draft.save()
    return credential


def _where(row: dict) -> str:
    data = node_data(row)
    return f"{data['address']}:{data['ssh_port']}"


def wizard_host_keys_scan(*, draft: WizardDraft, scan: Callable[[str, int], dict]) -> None:
    """Read every server's host key through ``scan(address, port)`` (a worker does it: pages
    never talk to servers) and keep each fingerprint or error for the admin to check."""
    found = {}
    for row in draft.servers:
        data = node_data(row)
        result = scan(data["address"], data["ssh_port"])
        keep = ("fingerprint", "key_type") if "fingerprint" in result else ("error",)
        found[_where(row)] = {k: result.get(k, "") for k in keep}
    draft.host_keys = found
    draft.save()


def host_key_of(draft: WizardDraft, row: dict) -> dict:
    return draft.host_keys.get(_where(row), {})


def wizard_host_keys_confirm(*, draft: WizardDraft, confirmed: set[int], user) -> Cluster:
    """Create the cluster with every server's confirmed fingerprint pinned (trust on first
    use only after the admin compared it). Raises InvalidInput naming each unconfirmed server."""
    if draft.reached < WizardDraft.Step.HOST_KEYS:
        raise InvalidInput({"non_field_errors": ["Finish the servers step first."]})
    errors: dict[str, list[str]] = {}
    nodes = []
    for i, row in enumerate(draft.servers):
        key = host_key_of(draft, row)
        if not key.get("fingerprint"):
            errors[f"nodes[{i}].host_key_fingerprint"] = [
                key.get("error") or "Not scanned yet: scan the host keys."
            ]
        elif i not in confirmed:
            errors[f"nodes[{i}].host_key_fingerprint"] = [
                "Compare this fingerprint with the server's own, then tick the box."
            ]
        nodes.append(dict(node_data(row), host_key_fingerprint=key.get("fingerprint", "")))
    if errors:
        raise InvalidInput(errors)
    with transaction.atomic():
        if draft.cluster is not None:
            _forget_cluster(draft)  # confirmed again after a re-scan: pin the new keys
        data = dict(cluster_data(draft.cluster_fields), nodes=nodes)
        data.update(_application_if_valid(draft.application))
        cluster = services.cluster_create(data=data, created_by=user)
        draft.cluster = cluster
        draft.reached = max(draft.reached, WizardDraft.Step.PREFLIGHT)
        draft.save()
    return cluster


def wizard_preflight_start(*, draft: WizardDraft, user):
    """Start (or start again) the read-only preflight job on the draft's cluster."""
    if draft.cluster is None:
        raise InvalidInput({"non_field_errors": ["Confirm the host keys first."]})
    job = job_services.job_start(cluster=draft.cluster, kind="preflight", requested_by=user)
    draft.preflight_job_id = job.pk
    draft.warnings_acknowledged = False
    draft.save()
    return job


def preflight_outcome(draft: WizardDraft) -> dict:
    """The draft's preflight: its job and steps, and whether the wizard may go on.

    ``verdict`` is ``none`` (not run), ``running``, ``errors`` (stops the wizard),
    ``warnings`` (go on once acknowledged) or ``passed``.
    """
    job = Job.objects.filter(pk=draft.preflight_job_id, cluster=draft.cluster).first()
    if job is None:
        return {"job": None, "steps": [], "verdict": "none"}
    steps = list(job.steps.select_related("node"))
    warnings = [s for s in steps if s.status == StepStatus.WARNING]
    if not job.is_terminal:
        verdict = "running"
    elif job.status != JobStatus.SUCCEEDED:
        verdict = "errors"
    elif warnings:
        verdict = "warnings"
    else:
        verdict = "passed"
    return {"job": job, "steps": steps, "verdict": verdict, "warnings": len(warnings)}


def wizard_preflight_accept(*, draft: WizardDraft, acknowledged: bool) -> None:
    """Go on to the review once preflight passed; warnings must be acknowledged."""
    verdict = preflight_outcome(draft)["verdict"]
    if verdict in ("none", "running"):
        raise InvalidInput({"non_field_errors": ["Wait for preflight to finish."]})
    if verdict == "errors":
        raise InvalidInput(
            {"non_field_errors": ["Preflight found errors: fix them and run it again."]}
        )
    if verdict == "warnings" and not acknowledged:
        raise InvalidInput(
            {"acknowledge": ["Read the warnings and tick the box to go on despite them."]}
        )
    draft.warnings_acknowledged = verdict == "warnings"
    _advance(draft, WizardDraft.Step.APPLICATION)


# --- the application step ------------------------------------------------------------------

FRONTEND_FIELDS = ("listen_port", "app_port", "check_path")


def _port(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def application_data(typed: dict) -> dict:
    """The application step as typed, in the shape ``cluster_create`` and the API take
    (``http_frontends``, ``application_unit``); rows left wholly empty are dropped."""
    frontends = []
    for row in typed.get("frontends", []):
        if not any(row.get(k, "") for k in FRONTEND_FIELDS):
            continue
        frontend = {k: _port(row.get(k, "")) for k in ("listen_port", "app_port")}
        if row.get("check_path", ""):
            frontend["check_path"] = row["check_path"]
        frontends.append(frontend)
    return {"http_frontends": frontends, "application_unit": typed.get("unit", "")}


def _application_errors(data: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    forms.validate_http_frontends(data["http_frontends"], errors)
    forms.validate_application_unit(data["application_unit"], errors)
    return errors


def _application_if_valid(typed: dict) -> dict:
    """What the cluster is created with: the step's data once it validates, else nothing (the
    step itself tells the admin what is wrong)."""
    data = application_data(typed)
    return data if not _application_errors(data) else {}


def wizard_application_keep(*, draft: WizardDraft, rows: list[dict], unit: str) -> None:
    """Keep the application step as typed without judging it (adding or removing a row)."""
    draft.application = {
        "frontends": [{k: str(row.get(k, "")).strip() for k in FRONTEND_FIELDS} for row in rows],
        "unit": unit.strip(),
    }
    draft.save()


def wizard_application_save(*, draft: WizardDraft, rows: list[dict], unit: str) -> None:
    """Keep the application step, validate it as the API does (``http_frontends[i]…`` and
    ``application_unit`` keys in InvalidInput), and give it to the not-yet-set-up cluster.

    Optional: no frontend and no unit is valid, and the cluster then has no application."""
    if draft.reached < WizardDraft.Step.APPLICATION or draft.cluster is None:
        raise InvalidInput({"non_field_errors": ["Finish preflight first."]})
    wizard_application_keep(draft=draft, rows=rows, unit=unit)
    data = application_data(draft.application)
    errors = _application_errors(data)
    if errors:
        raise InvalidInput(errors)
    frontends = forms.validate_http_frontends(data["http_frontends"], errors)
    updated = Cluster.objects.filter(pk=draft.cluster.pk, state=Cluster.State.NEW).update(
        http_frontends=frontends, application_unit=data["application_unit"]
    )
    if not updated:
        raise InvalidInput(
            {"non_field_errors": ["The cluster is being set up already; this step is closed."]}
        )
    _advance(draft, WizardDraft.Step.REVIEW)


def wizard_launch(*, draft: WizardDraft, user):
    """Start the setup job of the reviewed cluster and close the wizard."""
    if draft.reached < WizardDraft.Step.REVIEW or draft.cluster is None:
        raise InvalidInput({"non_field_errors": ["Finish preflight first."]})
    if preflight_outcome(draft)["verdict"] not in ("passed", "warnings"):
        raise InvalidInput({"non_field_errors": ["Preflight must pass before the launch."]})
    job = job_services.job_start(cluster=draft.cluster, kind="setup", requested_by=user)
    draft.delete()
    return job
