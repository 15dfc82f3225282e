"""Adopt: take an existing Patroni cluster (the customer's own, not built by HA Center) under the
console's monitoring and operations, without running setup.

It reads, from each member, the running Patroni's config file (the path from its command line,
the YAML through sudo) for scope, namespace, data and bin directories, REST authentication and
etcd hosts; Patroni's dynamic settings from `GET /config`; and stores that layout on the cluster
(`Cluster.patroni_layout`, no secrets) and the passwords it learned as ClusterSecrets
(encrypted, never logged). The one change it makes on the servers is a monitoring role
(`hacenter_monitor`, member of pg_monitor) so the monitor can read each node. Then it lints the
configuration and hands the cluster to the monitor. A re-run reads everything again.
"""

import re

import psycopg2
from django.db import transaction

from clusters.inventory.services import cluster_secrets_ensure
from clusters.models import Cluster, ClusterSecret, Node
from jobs import patroni_api
from jobs.errors import JobRefused
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.layout import patroni_layout
from jobs.playbooks.lint import lint_step
from jobs.playbooks.patroni_files import find_patroni, read_config
from jobs.playbooks.setup import check_login
from jobs.playbooks.setup_postgres import members
from jobs.playbooks.sql import psql
from jobs.postgres_tls import node_tls

NAME_RE = re.compile(r"\A[a-z][a-z0-9-]{0,62}\Z")
MONITOR_USER = "hacenter_monitor"
# The dynamic settings kept in the layout for the page and the API (none of them secret).
DYNAMIC_KEYS = (
    "ttl",
    "loop_wait",
    "retry_timeout",
    "maximum_lag_on_failover",
    "synchronous_mode",
    "synchronous_mode_strict",
    "primary_start_timeout",
)


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    if cluster.origin != Cluster.Origin.ADOPTED:
        raise JobRefused(f"{cluster.name} was built by HA Center; there is nothing to adopt")
    nodes = list(cluster.nodes.all())
    return [
        *[StepSpec("check_login", "SSH login and sudo", n) for n in nodes],
        StepSpec("read_layout", "Read Patroni's configuration from the members"),
        StepSpec("monitor_role", "Monitoring role for the console"),
        StepSpec("lint", "Check the configuration"),
        StepSpec("hand_over", "Hand the cluster to the monitor"),
    ]


def _etcd_hosts(config: dict) -> list[str]:
    """etcd's client host:port list from the `etcd3` (or `etcd`) section."""
    section = config.get("etcd3") or config.get("etcd") or {}
    hosts = section.get("hosts") or section.get("host") or []
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    return [h.strip().split("://", 1)[-1] for h in hosts if isinstance(h, str) and h.strip()]


def _etcd_tls(config: dict) -> tuple[str, list[str]]:
    """How the member's Patroni reaches etcd: its protocol and (cacert, cert, key) paths, so
    the console's etcdctl connects the same way."""
    section = config.get("etcd3") or config.get("etcd") or {}
    hosts = section.get("hosts") or section.get("host") or []
    hosts = hosts.split(",") if isinstance(hosts, str) else hosts
    https = str(section.get("protocol") or "") == "https" or any(
        str(h).strip().startswith("https://") for h in hosts
    )
    files = [str(section.get(k) or "") for k in ("cacert", "cert", "key")]
    return ("https", files) if https else ("http", [])


def _port(listen: str) -> int | None:
    tail = str(listen).rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _member_layout(ctx: StepContext, node: Node) -> tuple[dict, dict]:
    """What one member's running Patroni uses (no secrets) and the passwords it holds."""
    running = find_patroni(ctx, node)
    if not running or not running.get("config"):
        raise StepFailed(f"no Patroni with a config file runs on {node.name}")
    config = read_config(ctx, node, running["config"], [running.get("exe", "")])
    if config is None:
        raise StepFailed(f"{running['config']} on {node.name} could not be read as YAML")
    rest = config.get("restapi") or {}
    if rest.get("certfile"):
        raise StepFailed(
            f"{node.name}'s Patroni REST API uses HTTPS, which the console cannot read yet"
        )
    if _port(rest.get("listen", ":8008")) != patroni_api.PORT:
        raise StepFailed(
            f"{node.name}'s Patroni REST API listens on {rest.get('listen')}; the console reads "
            f"port {patroni_api.PORT} only"
        )
    pg = config.get("postgresql") or {}
    auth = pg.get("authentication") or {}
    if _port(pg.get("listen", ":5432")) not in (None, 5432):
        raise StepFailed(f"{node.name}'s PostgreSQL listens on {pg.get('listen')}; 5432 only")
    rest_auth = rest.get("authentication") or {}
    layout = {
        "member": str(config.get("name") or ""),
        "scope": str(config.get("scope") or ""),
        "namespace": str(config.get("namespace") or "/service/"),
        "config_path": running["config"],
        "data_dir": str(pg.get("data_dir") or ""),
        "bin_dir": str(pg.get("bin_dir") or ""),
        "config_dir": str(pg.get("config_dir") or pg.get("data_dir") or ""),
        "rest_user": str(rest_auth.get("username") or ""),
        "superuser": str((auth.get("superuser") or {}).get("username") or "postgres"),
        "replication_user": str((auth.get("replication") or {}).get("username") or ""),
        "etcd_hosts": _etcd_hosts(config),
        "etcd_protocol": _etcd_tls(config)[0],
        "etcd_tls_files": _etcd_tls(config)[1],
        "unit": running.get("unit") or "",
        # The first of unix_socket_directories: where psql finds PostgreSQL on the node.
        "socket_dir": str((pg.get("parameters") or {}).get("unix_socket_directories") or "")
        .split(",")[0]
        .strip(),
        "python": running.get("exe") or "",
    }
    secrets = {
        ClusterSecret.Name.REST_API: rest_auth.get("password"),
        ClusterSecret.Name.SUPERUSER: (auth.get("superuser") or {}).get("password"),
        ClusterSecret.Name.REPLICATION: (auth.get("replication") or {}).get("password"),
        ClusterSecret.Name.REWIND: (auth.get("rewind") or {}).get("password"),
    }
    return layout, {k: str(v) for k, v in secrets.items() if v}


def _rename(ctx: StepContext, node: Node, member: str) -> str:
    """The console's node takes its Patroni member name (the monitor matches them by name)."""
    if not member or member == node.name:
        return ""
    if not NAME_RE.fullmatch(member) or ctx.cluster.nodes.filter(name=member).exists():
        raise StepFailed(
            f"{node.name} is Patroni member {member!r}; rename the node to that (it is not a "
            "usable name here, or another node has it)"
        )
    Node.objects.filter(pk=node.pk).update(name=member)
    return f"{node.name} → {member}"


def read_layout(ctx: StepContext) -> Verdict | str:
    """Every member's running Patroni: one scope, namespace and etcd; the layout and the
    passwords stored; the cluster's fields filled from what Patroni says."""
    cluster = ctx.cluster
    found = {node: _member_layout(ctx, node) for node in cluster.database_nodes}
    layouts = [layout for layout, _ in found.values()]
    for key in ("scope", "namespace", "data_dir", "config_path"):
        values = {layout[key] for layout in layouts}
        if len(values) != 1:
            raise StepFailed(f"the members disagree on {key}: {', '.join(sorted(values))}")
    scope = layouts[0]["scope"]
    if not scope or not layouts[0]["data_dir"]:
        raise StepFailed("Patroni's configuration names no scope or no data_dir")
    renamed = [
        r for node, (layout, _) in found.items() if (r := _rename(ctx, node, layout["member"]))
    ]
    dynamic = {}
    for node in cluster.database_nodes:
        try:
            dynamic = patroni_api.config(node, timeout=3)
            _, me = patroni_api.member(node, timeout=3)
            break
        except patroni_api.PatroniUnavailable:
            continue
    else:
        raise StepFailed("no member's Patroni REST API answered")
    version = int(me.get("server_version") or 0) // 10000
    secrets: dict[str, str] = {}
    for _, learned in found.values():
        for name, value in learned.items():
            secrets.setdefault(name, value)
    layout = {k: v for k, v in layouts[0].items() if k != "member"}
    layout["dynamic"] = {k: dynamic[k] for k in DYNAMIC_KEYS if k in dynamic}
    fields = {
        "patroni_layout": layout,
        "replication": (
            Cluster.Replication.SYNC
            if dynamic.get("synchronous_mode")
            else Cluster.Replication.ASYNC
        ),
        "sync_strict": bool(dynamic.get("synchronous_mode_strict")),
    }
    if version >= 10:
        fields["postgres_version"] = version
    free = not Cluster.objects.filter(name=scope).exclude(pk=cluster.pk).exists()
    placeholder = bool((cluster.patroni_layout or {}).get("placeholder_name"))
    if placeholder and scope != cluster.name and NAME_RE.fullmatch(scope) and free:
        fields["name"] = scope
    with transaction.atomic():
        Cluster.objects.filter(pk=cluster.pk).update(**fields)
        for name, value in secrets.items():
            ClusterSecret.objects.update_or_create(
                cluster=cluster, name=name, defaults={"value": value}
            )
    cluster.refresh_from_db()
    parts = [
        f"scope {scope}, namespace {layout['namespace']}, data {layout['data_dir']}",
        f"config {layout['config_path']}",
        f"PostgreSQL {version}, {fields['replication']}",
        f"etcd {', '.join(layout['etcd_hosts']) or 'unknown'}",
        f"{len(secrets)} password(s) stored encrypted",
    ]
    if renamed:
        parts.append(f"renamed {', '.join(renamed)}")
    return "; ".join(parts)


MONITOR_ROLE_SQL = """
DO $adopt$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN
    CREATE ROLE {user} LOGIN;
  END IF;
END
$adopt$;
ALTER ROLE {user} LOGIN PASSWORD '{password}';
GRANT pg_monitor TO {user};
"""


def monitor_role(ctx: StepContext) -> Verdict | str:
    """The role the monitor reads each node as (pg_monitor, no other rights), created on the
    primary (it replicates), then tried from the console against every node."""
    password = cluster_secrets_ensure(cluster=ctx.cluster)[ClusterSecret.Name.MONITOR]
    ctx.log_writer.redact.add(password)
    leader = patroni_api.leader(members(ctx))
    if leader is None:
        raise StepFailed("no primary right now: the monitoring role is created on the primary")
    primary = ctx.cluster.nodes.get(name=leader["name"])
    # The password is URL-safe base64 (no quote can end the literal); SQL goes through stdin.
    psql(ctx, primary, MONITOR_ROLE_SQL.format(user=MONITOR_USER, password=password), echo=False)
    refused = []
    for node in ctx.cluster.database_nodes:
        try:
            psycopg2.connect(
                host=node.address,
                port=5432,
                user=MONITOR_USER,
                password=password,
                dbname="postgres",
                connect_timeout=5,
                **node_tls(node),
            ).close()
        except psycopg2.Error as exc:
            refused.append(f"{node.name}: {str(exc).strip().splitlines()[0][:160]}")
    if refused:
        return Verdict.warn(
            f"{MONITOR_USER} created on {primary.name}, but the console cannot log in on "
            f"{'; '.join(refused)}: add a pg_hba line `host all {MONITOR_USER} <console "
            "address>/32 scram-sha-256` (in Patroni's postgresql.pg_hba)"
        )
    return (
        f"{MONITOR_USER} (pg_monitor) created on {primary.name}; the console logs in on every node"
    )


def hand_over(ctx: StepContext) -> Verdict | str:
    """From now on the monitor observes it (a new cluster is not monitored until then)."""
    Cluster.objects.filter(pk=ctx.cluster.pk, state=Cluster.State.NEW).update(
        state=Cluster.State.UNKNOWN
    )
    layout = patroni_layout(ctx.cluster)
    return (
        f"{ctx.cluster.name} is monitored; operations use {layout.config_path}, "
        f"{layout.unit or 'its Patroni service'} and namespace {layout.namespace}"
    )


PLAYBOOK = Playbook(
    kind="adopt",
    plan=plan,
    steps={
        "check_login": check_login,
        "read_layout": read_layout,
        "monitor_role": monitor_role,
        "lint": lint_step,
        "hand_over": hand_over,
    },
)
