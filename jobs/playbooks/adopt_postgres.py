"""Setup's take-over of the PostgreSQL already running on the master (Cluster.adopt_database).

Instead of Patroni initialising an empty cluster, Patroni starts on the server's own data
directory: with no cluster in etcd yet, Patroni 4.1 records the data's system identifier,
starts it, takes the leader key and promotes it (ha.py: "bootstrap, but data directory is not
empty"). Before that the take-over backs up what it changes, creates HA Center's roles, and
stops, disables and masks the distribution's unit so nothing starts that server outside
Patroni again. If anything fails before a standby copied the data, the server is put back
exactly as it was and the error says so.
"""

import dataclasses
import shlex
import time

from django.conf import settings
from django.utils import timezone

from clusters.models import Cluster, Node
from jobs import patroni_api
from jobs.configs import spec as paths
from jobs.playbooks import daemons, distro_services, existing_postgres
from jobs.playbooks.base import StepContext, StepFailed, Verdict
from jobs.playbooks.existing_postgres import psql_as_postgres
from jobs.playbooks.existing_postgres_judge import HA_ROLES
from jobs.playbooks.setup_finish import _literal
from jobs.playbooks.setup_postgres import members, patroni_daemon

BACKUP_ROOT = "/var/backups/hacenter"
# postgres's password hash, saved on the node for a rollback (never read by the console).
PASSWORD_HASH_SQL = "SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = 'postgres'"  # noqa: S105
# Files Patroni writes into a data directory it manages; moved out again on a rollback.
PATRONI_FILES = (
    "postgresql.conf",
    "postgresql.base.conf",
    "pg_hba.conf",
    "pg_ident.conf",
    "patroni.dynamic.json",
    "standby.signal",
    "recovery.signal",
)
# Patroni's own post-bootstrap grants for pg_rewind: what a non-superuser needs to read files.
REWIND_GRANTS = (
    "pg_catalog.pg_ls_dir(text, boolean, boolean)",
    "pg_catalog.pg_stat_file(text, boolean)",
    "pg_catalog.pg_read_binary_file(text)",
    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
)


def _save(cluster: Cluster, **changes) -> dict:
    """Merge `changes` into the cluster's `adopted_from` (and the in-memory copy)."""
    cluster.refresh_from_db(fields=["adopted_from"])
    adopted = {**cluster.adopted_from, **changes}
    Cluster.objects.filter(pk=cluster.pk).update(adopted_from=adopted)
    cluster.adopted_from = adopted
    return adopted


def _roles_ours(cluster: Cluster) -> frozenset[str]:
    """HA roles a completed take-over of this cluster created (a re-run finds them)."""
    if not cluster.adopted_from.get("taken_over_at"):
        return frozenset()
    return frozenset(cluster.adopted_from.get("roles_created") or ())


def adopt_inspect(ctx: StepContext) -> Verdict | str:
    """Read the master's PostgreSQL and every standby's room for a copy; refuse what preflight
    refuses; record the server (data and config directories, unit, settings carried into
    Patroni) so the Patroni configs of every node use its data directory."""
    if ctx.cluster.adopted_from.get("taken_over_at"):
        a = ctx.cluster.adopted_from
        return f"already taken over on {a['taken_over_at'][:19]} ({a['data_dir']})"
    _inspection, findings, carried = existing_postgres.read_and_judge(ctx, ctx.facts["spec"])
    for line in findings.facts + [f"warning: {w}" for w in findings.warnings]:
        ctx.log(line, host=ctx.node.name)
    if findings.errors:
        raise StepFailed("cannot take over the master's PostgreSQL: " + "; ".join(findings.errors))
    adopted = _save(ctx.cluster, **existing_postgres.record(_inspection, carried))
    # The later steps (Patroni's config above all) see the server's data directory now.
    ctx.facts["spec"] = dataclasses.replace(
        ctx.facts["spec"], adopted=existing_postgres.adopted_server(adopted)
    )
    summary = findings.facts[0]
    if findings.warnings:
        return Verdict.warn(f"{summary}; " + "; ".join(findings.warnings))
    return summary


def adopt_primary(ctx: StepContext) -> Verdict | str:
    """Take the master's PostgreSQL over: back up, create HA Center's roles, stop and mask the
    distribution's unit, start Patroni on the data directory, wait until it leads. On failure
    the server is put back as it was."""
    spec = ctx.facts["spec"]
    node = ctx.node
    current = patroni_api.leader(members(ctx))
    if current:
        daemons.start(ctx, node, patroni_daemon(spec))
        return f"the cluster already has a primary, {current['name']}; Patroni runs here too"
    adopted = ctx.cluster.adopted_from
    if adopted.get("taken_over_at"):
        # Taken over before, Patroni stopped since: it starts the data directory again.
        started = daemons.start(ctx, node, patroni_daemon(spec))
        leader = _wait_leads(ctx, node)
        return f"{started}; {node.name} is primary again on timeline {leader.get('timeline')}"
    inspection, findings, carried = existing_postgres.read_and_judge(ctx, spec)
    if findings.errors:
        raise StepFailed(
            "the master's PostgreSQL changed since it was inspected, refusing to take it over "
            "(nothing was changed): " + "; ".join(findings.errors)
        )
    now = existing_postgres.record(inspection, carried)
    changed = [
        key
        for key in ("data_dir", "sysid", "port", "parameters", "pg_hba", "pg_ident", "unit")
        if now[key] != adopted.get(key)
    ]
    if changed:
        raise StepFailed(
            f"the master's PostgreSQL changed since setup read it ({', '.join(changed)}); "
            "nothing was changed: run setup again so Patroni's config carries the new state"
        )
    backup = f"{BACKUP_ROOT}/adopt-{spec.name}-{timezone.now():%Y%m%dT%H%M%S}"
    _save(ctx.cluster, backup_dir=backup)
    _backup(ctx, node, adopted, backup)
    try:
        outcome = _take_over(ctx, node, adopted, backup)
    except Exception as exc:  # any failure: put the server back, then report both
        ctx.log(f"take-over failed ({exc}); putting the original server back", host=node.name)
        try:
            restored = rollback(ctx, node, adopted, backup)
        except Exception as again:
            raise StepFailed(
                f"take-over failed: {exc}; putting the original server back failed too: "
                f"{again}; everything changed is saved in {backup} on {node.name}"
            ) from exc
        _save(
            ctx.cluster,
            rolled_back_at=timezone.now().isoformat(),
            rollback_reason=str(exc)[:300],
        )
        raise StepFailed(
            f"take-over failed: {exc}; the original server was put back as it was ({restored})"
        ) from exc
    return outcome


def _backup(ctx: StepContext, node: Node, adopted: dict, backup: str) -> None:
    """Copy what the take-over changes: the config directory, postgresql.auto.conf, the unit's
    enablement, the data directory's file list and postgres's password hash (mode 0600, on the
    node only: it never passes through the console's log)."""
    b, data = shlex.quote(backup), shlex.quote(adopted["data_dir"])
    unit = shlex.quote(adopted["unit"])
    port = int(adopted["port"])
    ctx.run(
        f"umask 077 && mkdir -p {b} && cp -a {shlex.quote(adopted['config_dir'])} {b}/config && "
        f"cp -a {data}/postgresql.auto.conf {b}/ && ls -A {data} > {b}/data-files && "
        f"{{ systemctl is-enabled {unit} 2>/dev/null || true; }} > {b}/unit-enabled && "
        "cd / && runuser -u postgres -- psql -X -q -A -t "
        f"-p {port} -d postgres -c " + shlex.quote(PASSWORD_HASH_SQL) + f" > {b}/postgres-password",
        node=node,
        check=True,
    )
    ctx.log(f"backed up the config directory, postgresql.auto.conf and more to {backup}")


def _take_over(ctx: StepContext, node: Node, adopted: dict, backup: str) -> Verdict | str:
    spec = ctx.facts["spec"]
    port = int(adopted["port"])
    created = _create_roles(ctx, node, port, backup)
    _save(ctx.cluster, roles_created=created)
    systemd = daemons.init_system(ctx, node) == daemons.SYSTEMD
    unit = shlex.quote(adopted["unit"])
    version, name = shlex.quote(str(adopted["version"])), shlex.quote(adopted["debian_cluster"])
    start_conf = shlex.quote(f"{adopted['config_dir']}/start.conf")
    stopped_at = time.monotonic()
    # pg_ctlcluster and the boot-time generator honour start.conf; the mask stops systemd.
    keep_down = f"systemctl disable --now {unit} && systemctl mask {unit} && " if systemd else ""
    ctx.run(
        f"{keep_down}{{ pg_ctlcluster {version} {name} status >/dev/null 2>&1 && "
        f"pg_ctlcluster {version} {name} stop -m fast || true; }} && "
        f"echo manual > {start_conf}",
        node=node,
        check=True,
    )
    # Patroni renames a data directory's postgresql.conf to postgresql.base.conf, which its
    # own postgresql.conf includes; Debian keeps its config in /etc, so there is none to
    # rename (Patroni would fail on it): an empty base file, and an empty pg_ident.conf for
    # the ident_file Patroni points at, stand in. A rollback moves them out again.
    data = shlex.quote(adopted["data_dir"])
    ctx.run(
        f"for f in postgresql.base.conf pg_ident.conf; do [ -e {data}/$f ] || "
        f"install -o postgres -g postgres -m 600 /dev/null {data}/$f; done",
        node=node,
        check=True,
    )
    started = daemons.start(ctx, node, patroni_daemon(spec))
    daemon = patroni_daemon(spec)

    def accepts() -> bool:
        if not daemons.pid(ctx, node, daemon):
            raise StepFailed(f"Patroni stopped: {daemons.diagnosis(ctx, node, daemon)}")
        probe = f"pg_isready -q -h 127.0.0.1 -p {paths.POSTGRES_PORT}"
        return ctx.run(probe, node=node, echo=False).ok

    ctx.wait_until(
        accepts,
        timeout=settings.SETUP_PRIMARY_TIMEOUT_S,
        interval=0.2,
        what="PostgreSQL under Patroni to accept connections",
    )
    up_at = time.monotonic()
    leader = _wait_leads(ctx, node, interval=0.2)
    writable_at = time.monotonic()
    down_s, read_only_s = up_at - stopped_at, writable_at - up_at
    _save(
        ctx.cluster,
        taken_over_at=timezone.now().isoformat(),
        outage_s=round(down_s, 1),
        read_only_s=round(read_only_s, 1),
    )
    return Verdict.warn(
        f"{started}; took over PostgreSQL {adopted['version']}/{adopted['debian_cluster']} "
        f"({adopted['data_dir']}); {node.name} is primary on timeline {leader.get('timeline')}; "
        f"the server refused connections for {down_s:.1f} s and was read-only "
        f"{read_only_s:.1f} s more; {adopted['unit']} is masked; backup in {backup}"
    )


def _wait_leads(ctx: StepContext, node: Node, interval: float = 1) -> dict:
    def leads() -> dict | None:
        found = patroni_api.leader(members(ctx))
        ok = found and found["name"] == node.name and found.get("state") == "running"
        return found if ok else None

    return ctx.wait_until(
        leads,
        timeout=settings.SETUP_PRIMARY_TIMEOUT_S,
        interval=interval,
        what=f"{node.name} to hold the leader key",
    )


def _create_roles(ctx: StepContext, node: Node, port: int, backup: str) -> list[str]:
    """HA Center's replication, rewind and monitoring roles, and postgres's password; the
    application's roles are not touched. Each created role is noted in the backup first, so
    a rollback drops exactly those."""
    secrets = ctx.facts["spec"].secrets
    existing = set(psql_as_postgres(ctx, node, port, "SELECT rolname FROM pg_roles;"))
    wanted = [
        (paths.REPLICATION_USER, secrets.replication, "REPLICATION"),
        (paths.REWIND_USER, secrets.rewind, ""),
        (paths.MONITOR_USER, secrets.monitor, ""),
    ]
    created = [role for role, _, _ in wanted if role not in existing]
    if created:
        ctx.run(
            f"printf '%s\\n' {' '.join(created)} > {shlex.quote(backup)}/roles-created",
            node=node,
            check=True,
        )
    sql = []
    for role, password, extra in wanted:
        verb = "ALTER" if role in existing else "CREATE"
        sql.append(f"{verb} ROLE {role} LOGIN {extra} PASSWORD {_literal(password)};")
    sql += [f"GRANT EXECUTE ON FUNCTION {f} TO {paths.REWIND_USER};" for f in REWIND_GRANTS]
    sql.append(f"GRANT pg_monitor TO {paths.MONITOR_USER};")
    sql.append(f"ALTER ROLE {paths.SUPERUSER} PASSWORD {_literal(secrets.superuser)};")
    ctx.log(f"creating roles {', '.join(created) or '(none new)'}; setting postgres's password")
    psql_as_postgres(ctx, node, port, "\n".join(sql))
    return created


def rollback(ctx: StepContext, node: Node, adopted: dict, backup: str) -> str:
    """Put the original server back from `backup`: stop Patroni, move Patroni's files out of
    the data directory (into the backup), restore postgresql.auto.conf and the config
    directory, unmask and start the unit as it was, restore postgres's password, drop the
    roles the take-over created; then check the server accepts connections."""
    spec = ctx.facts["spec"]
    b, data = shlex.quote(backup), shlex.quote(adopted["data_dir"])
    config = shlex.quote(adopted["config_dir"])
    unit = shlex.quote(adopted["unit"])
    port = int(adopted["port"])
    version, name = shlex.quote(str(adopted["version"])), shlex.quote(adopted["debian_cluster"])
    pg_ctl = f"{paths.bin_dir(int(adopted['version']))}/pg_ctl"
    daemons.stop(ctx, node, patroni_daemon(spec))
    # Patroni stops PostgreSQL as it exits; one it left running is stopped here.
    ctx.run(
        f"cd / && runuser -u postgres -- {pg_ctl} -D {data} status >/dev/null 2>&1 && "
        f"runuser -u postgres -- {pg_ctl} -D {data} stop -m fast -w; true",
        node=node,
    )
    files = " ".join(PATRONI_FILES)
    ctx.run(
        f"mkdir -p {b}/patroni-files && for f in {files}; do "
        f'[ -e {data}/"$f" ] && ! grep -qxF "$f" {b}/data-files && '
        f'mv {data}/"$f" {b}/patroni-files/; done; '
        f"cp -a {b}/postgresql.auto.conf {data}/postgresql.auto.conf && "
        f"mv {config} {b}/config-after-takeover && cp -a {b}/config {config}",
        node=node,
        check=True,
    )
    systemd = daemons.init_system(ctx, node) == daemons.SYSTEMD
    if systemd:
        ctx.run(
            # Debian's generator enables the unit at runtime from start.conf (restored above);
            # only an admin's own `systemctl enable` is repeated.
            f"systemctl unmask {unit}; systemctl daemon-reload; "
            f'[ "$(cat {b}/unit-enabled)" = enabled ] && systemctl enable {unit}; '
            f"systemctl start {unit}",
            node=node,
            check=True,
        )
    else:
        ctx.run(f"pg_ctlcluster {version} {name} start", node=node, check=True)
    ctx.wait_until(
        lambda: ctx.run(f"pg_isready -q -p {port}", node=node, echo=False).ok,
        timeout=60,
        interval=0.5,
        what="the original server to accept connections",
    )
    # The hash goes from the backup file into SQL on the node; it is never printed.
    ctx.run(
        f"h=$(cat {b}/postgres-password); "
        'if [ -n "$h" ]; then printf "ALTER ROLE postgres PASSWORD \'%s\';\\n" "$h"; '
        'else echo "ALTER ROLE postgres PASSWORD NULL;"; fi | '
        f"(cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p {port} -d postgres)",
        node=node,
        check=True,
        echo=False,
    )
    dropped = ctx.output(f"cat {b}/roles-created 2>/dev/null || true", node=node, sudo=True)
    dropped = [r for r in dropped if r in HA_ROLES]
    if dropped:
        psql_as_postgres(
            ctx, node, port, "".join(f"DROP OWNED BY {r}; DROP ROLE {r};" for r in dropped)
        )
    return (
        f"{adopted['unit']} {'enabled and ' if systemd else ''}running, config and "
        f"postgresql.auto.conf restored from {backup}, roles dropped: "
        f"{', '.join(dropped) or 'none'}"
    )


def set_aside_new_cluster(ctx: StepContext) -> Verdict | str:
    """On a standby: the empty cluster Debian's package created at the adopted server's data
    directory is moved aside (never deleted), so Patroni copies the primary there; the
    distribution's unit for it is masked like the master's."""
    spec = ctx.facts["spec"]
    adopted = ctx.cluster.adopted_from
    data = paths.data_dir(spec)
    q = shlex.quote(data)
    unit = adopted.get("unit", "")
    masked = ""
    if unit and daemons.init_system(ctx, ctx.node) == daemons.SYSTEMD:
        masked = ", ".join(distro_services.mask(ctx, [unit]))
    lines = ctx.output(
        f'if [ -d {q} ] && [ -n "$(ls -A {q})" ]; then echo "sysid=$(cd / && runuser -u '
        f"postgres -- {paths.bin_dir(spec.postgres_version)}/pg_controldata {q} 2>/dev/null "
        "| awk -F': *' '/system identifier/ {print $2}')\"; fi",
        sudo=True,
    )
    found = next((line for line in lines if line.startswith("sysid=")), None)
    sysid = found.removeprefix("sysid=").strip() if found else ""
    suffix = f"; masked {masked}" if masked else ""
    if found is None:
        return f"{data} is empty or absent; Patroni copies the primary there{suffix}"
    if sysid == str(adopted.get("sysid")):
        return f"{data} already holds a copy of the primary{suffix}"
    if daemons.pid(ctx, ctx.node, patroni_daemon(spec)):
        raise StepFailed(f"Patroni runs on {data}, which is not a copy of the primary")
    pg_ctl = f"{paths.bin_dir(spec.postgres_version)}/pg_ctl"
    aside = f"{data}.hacenter-aside-{timezone.now():%Y%m%dT%H%M%S}"
    ctx.run(
        f"cd / && {{ runuser -u postgres -- {pg_ctl} -D {q} status >/dev/null 2>&1 && "
        f"runuser -u postgres -- {pg_ctl} -D {q} stop -m fast -w || true; }} && "
        f"mv {q} {shlex.quote(aside)}",
        check=True,
    )
    return f"moved the new empty cluster {data} (system id {sysid}) aside to {aside}{suffix}"
