"""Setup's last steps: roles and the application database, HAProxy, and the end-to-end check."""

import csv
import io
import secrets
import urllib.request

import psycopg2
from django.utils import timezone

from clusters.models import Cluster, Node, NodeStatus
from jobs import patroni_api
from jobs.configs import spec as paths
from jobs.configs.haproxy import haproxy_config
from jobs.playbooks import daemons
from jobs.playbooks.base import StepContext, StepFailed, Verdict
from jobs.playbooks.setup_postgres import current_primary, members, wait_for_sync_standby
from jobs.playbooks.sql import psql, quote_ident, quote_literal
from jobs.playbooks.tls import tls_mark_active
from jobs.postgres_tls import proxy_tls

SAFE_PASSWORD = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _literal(password: str) -> str:
    # Generated passwords are URL-safe base64; anything else would be a bug, not a quote problem.
    if not set(password) <= SAFE_PASSWORD:
        raise StepFailed("a stored password has unexpected characters; refusing to use it")
    return quote_literal(password)


def database_roles(ctx: StepContext) -> Verdict | str:
    """The monitoring role (pg_monitor) and, when the cluster names one, the application's role
    and database. Passwords are set on every run so they always match the stored ones."""
    primary = current_primary(ctx)
    secrets_ = {s.name: s.value for s in ctx.cluster.secrets.all()}
    roles = [(paths.MONITOR_USER, secrets_["monitor"], "GRANT pg_monitor TO {role};")]
    # Every name is quoted where it enters SQL, validated or not: the Django admin once saved
    # inventory no form would accept, and a role name is where `COPY ... TO PROGRAM` would go.
    app_db, app_user = ctx.cluster.database_name, ctx.cluster.database_user
    # A role the taken-over server already had is the customer's: its password stays theirs.
    customers = set(ctx.cluster.adopted_from.get("roles") or ())
    if app_user and app_user not in customers:
        roles.append((app_user, secrets_["application"], ""))
    existing = set(psql(ctx, primary, "SELECT rolname FROM pg_roles;", echo=False))
    sql = []
    for role, password, extra in roles:
        verb = "ALTER" if role in existing else "CREATE"
        sql.append(f"{verb} ROLE {quote_ident(role)} LOGIN PASSWORD {_literal(password)};")
        if extra:
            sql.append(extra.format(role=quote_ident(role)))
    psql(ctx, primary, "\n".join(sql), echo=False)
    created = [r for r, _, _ in roles if r not in existing]
    parts = [f"roles created: {', '.join(created)}" if created else "roles already present"]
    if app_user in customers:
        parts.append(f"{app_user} kept as the taken-over server had it (password unchanged)")
    if app_db:
        query = f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(app_db)};"  # noqa: S608
        has_db = psql(ctx, primary, query, echo=False)
        if not has_db:
            create = f"CREATE DATABASE {quote_ident(app_db)} OWNER {quote_ident(app_user)};"
            psql(ctx, primary, create)
            parts.append(f"database {app_db} created, owned by {app_user}")
        else:
            parts.append(f"database {app_db} already exists")
    return "; ".join(parts) + f" (on {primary.name})"


def haproxy_daemon() -> daemons.Daemon:
    # Master-worker in the foreground: SIGUSR2 to the master reloads gracefully.
    return daemons.Daemon(
        name="haproxy",
        argv=("/usr/sbin/haproxy", "-W", "-db", "-f", paths.HAPROXY_CONFIG),
        user="root",
        description="HAProxy",
        runtime_dir="haproxy",  # the admin socket's directory
    )


def stats(ctx: StepContext, proxy: Node) -> list[dict]:
    """HAProxy's stats as CSV rows, read from the console with the stats password."""
    password = ctx.facts["spec"].secrets.haproxy_stats
    url = f"http://{paths.host_port(proxy.address, paths.STATS_PORT)}/;csv"
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, url, paths.STATS_USER, password)
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(manager))
    try:
        with opener.open(url, timeout=3) as resp:
            text = resp.read().decode().lstrip("# ")
    except OSError:
        return []
    return list(csv.DictReader(io.StringIO(text)))


def routed_writes(ctx: StepContext, proxy: Node | None = None) -> list[str]:
    """The servers `proxy`'s read-write listener sends writes to now; without `proxy`, the
    first proxy that answers (with two, one may be down)."""
    rows: list[dict] = []
    for candidate in [proxy] if proxy else ctx.cluster.proxy_nodes:
        rows = stats(ctx, candidate)
        if rows:
            break
    return [
        r["svname"]
        for r in rows
        if r.get("pxname") == "primary"
        and r.get("status", "").startswith("UP")
        and r["svname"] not in ("FRONTEND", "BACKEND")
    ]


def haproxy(ctx: StepContext) -> Verdict | str:
    """Write the config, validate it with `haproxy -c`, then start or gracefully reload; wait
    until writes route to the primary."""
    action = haproxy_apply(ctx)
    verdict = f"{action}; writes go to {haproxy_wait_for_primary(ctx)}"
    if ctx.facts["spec"].tls is not None and ctx.node.pk != ctx.cluster.proxy_node.pk:
        # The second proxy runs no etcd (whose start marks the witness): its HAProxy checks
        # Patroni over TLS now, which is all of it that speaks TLS. Unmarked, it would make the
        # next setup convert the cluster again and certificate rotation refuse it.
        tls_mark_active(ctx, ctx.node)
    return verdict


def haproxy_apply(ctx: StepContext) -> str:
    """The config on the proxy (validated first), HAProxy started or gracefully reloaded;
    says which. The TLS conversion turns its held checks back on between this and the wait."""
    spec = ctx.facts["spec"]
    candidate = paths.HAPROXY_CONFIG + ".hacenter-new"
    ctx.run("mkdir -p /run/haproxy /var/lib/haproxy", check=True)
    config = haproxy_config(spec, node=next(n for n in spec.proxies if n.name == ctx.node.name))
    ctx.connections.get(ctx.node).upload(candidate, config.encode(), mode=0o640)
    check = ctx.run(f"haproxy -c -q -f {candidate}")
    if not check.ok:
        ctx.run(f"rm -f {candidate}")
        raise StepFailed(
            f"HAProxy refused the new configuration: "
            f"{(check.stderr_tail or check.stdout_tail or ['?'])[-1]}"
        )
    same = ctx.run(f"cmp -s {candidate} {paths.HAPROXY_CONFIG}", echo=False).ok
    ctx.run(f"mv -f {candidate} {paths.HAPROXY_CONFIG}", check=True)
    daemon = haproxy_daemon()
    running = daemons.pid(ctx, ctx.node, daemon)
    if running and same:
        action = f"already configured and running (pid {running})"
    elif running:
        ctx.run(f"kill -USR2 {running}", check=True)
        action = "configuration changed; reloaded gracefully"
    else:
        action = daemons.start(ctx, ctx.node, daemon)
    return action


def haproxy_wait_for_primary(ctx: StepContext) -> str:
    """Wait until HAProxy routes writes to the primary only; its name."""
    primary = current_primary(ctx)
    # The step's own proxy (each of two has its step); the first one for steps of no node.
    proxy = ctx.node if ctx.node is not None and ctx.node.kind == Node.Kind.PROXY else None

    def routes_to_primary() -> bool:
        return routed_writes(ctx, proxy) == [primary.name]

    ctx.wait_until(
        routes_to_primary,
        timeout=30,
        interval=0.5,
        what=f"HAProxy to route writes to {primary.name} only",
    )
    return primary.name


def verify(ctx: StepContext) -> Verdict | str:
    """Write a row through proxy:5432, read it through :5433 and on every standby."""
    spec = ctx.facts["spec"]
    proxy = ctx.cluster.proxy_node
    # Clients use the floating address when there is one: so does the check.
    entry = spec.virtual_address or proxy.address
    entry_name = spec.virtual_address or proxy.name
    token = secrets.token_hex(8)
    dsn = {
        "host": entry,
        "user": paths.SUPERUSER,
        "password": spec.secrets.superuser,
        "dbname": "postgres",
        "connect_timeout": 5,
        # Through the proxy to the primary: verify-full against the cluster's CA, whose node
        # certificates name the proxy's address too.
        **proxy_tls(ctx.cluster),
    }
    with psycopg2.connect(port=paths.POSTGRES_PORT, **dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS hacenter")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS hacenter.setup_check "
            "(token text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("INSERT INTO hacenter.setup_check (token) VALUES (%s)", [token])
        cur.execute("SELECT inet_server_addr()::text")
        writer = cur.fetchone()[0]
    conn.close()
    ctx.log(f"wrote token {token} through {entry_name}:5432 (answered by {writer})")

    def visible_through_replica_port() -> bool:
        try:
            with psycopg2.connect(port=paths.REPLICA_PORT, **dsn) as c, c.cursor() as cur:
                cur.execute("SELECT 1 FROM hacenter.setup_check WHERE token = %s", [token])
                return cur.fetchone() is not None
        except psycopg2.Error:
            return False

    ctx.wait_until(
        visible_through_replica_port,
        timeout=30,
        interval=0.5,
        what="the row to be readable through port 5433",
    )
    standbys = [n for n in ctx.cluster.database_nodes if n.address != writer.split("/")[0]]
    for node in standbys:
        ctx.wait_until(
            lambda node=node: (
                psql(
                    ctx,
                    node,
                    f"SELECT 1 FROM hacenter.setup_check WHERE token = {quote_literal(token)};",  # noqa: S608
                    echo=False,
                    check=False,
                )
                == ["1"]
            ),
            timeout=30,
            interval=0.5,
            what=f"the row to reach {node.name}",
        )
    wait_for_sync_standby(ctx)
    current = members(ctx)
    node_statuses_record(cluster=ctx.cluster, members=current)
    leader = patroni_api.leader(current)
    Cluster.objects.filter(pk=ctx.cluster.pk).update(
        state=Cluster.State.HEALTHY, last_leader=leader["name"] if leader else ""
    )
    names = ", ".join(n.name for n in standbys)
    return (
        f"wrote through {entry_name}:5432, read back through :5433 and on {names}; "
        f"connect to {entry}:5432 (read-write) or :5433 (read-only)"
    )


def node_statuses_record(*, cluster: Cluster, members: list[dict]) -> None:
    """Store what Patroni's /cluster says of each member; nodes it does not list are unknown."""
    now = timezone.now()
    by_name = {m.get("name"): m for m in members}
    for node in cluster.database_nodes:
        member = by_name.get(node.name)
        lag = member.get("lag") if member else None
        defaults = {
            "role": NodeStatus.role_from_patroni(member.get("role")) if member else "unknown",
            "state": member.get("state", "") if member else "absent",
            "timeline": member.get("timeline") if member else None,
            "lag_bytes": lag if isinstance(lag, int) else None,  # Patroni says "unknown" at times
        }
        if member:
            defaults["last_seen"] = now
        NodeStatus.objects.update_or_create(node=node, defaults=defaults)
