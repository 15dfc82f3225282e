"""The PostgreSQL a user already runs on the master: read it (and each standby's room for the
copy) over SSH, and keep what a take-over needs (Cluster.adopt_database).

Preflight shows the judgement (existing_postgres_judge); setup reads the server again right
before the take-over and refuses when the answer changed. Reading is one SQL query (JSON out,
so no value can break the parsing) plus the raw pg_hba/pg_ident files.
"""

import json
import shlex

from clusters.models import Cluster, Node
from jobs.configs.spec import AdoptedServer, ClusterSpec
from jobs.playbooks.base import StepContext, StepFailed
from jobs.playbooks.existing_postgres_facts import (
    Inspection,
    StandbyFacts,
    choose_cluster,
    parse_lsclusters,
    standby_paths,
)
from jobs.playbooks.existing_postgres_judge import Findings, judge
from jobs.playbooks.pg_hba_rules import rule_lines

INSPECT_SQL = r"""
SELECT json_build_object(
  'version_num', current_setting('server_version_num')::int,
  'version', current_setting('server_version'),
  'sysid', (SELECT system_identifier::text FROM pg_control_system()),
  'in_recovery', pg_is_in_recovery(),
  'data_checksums', current_setting('data_checksums'),
  'settings', (SELECT json_object_agg(name, json_build_object(
      'value', current_setting(name), 'setting', setting, 'unit', unit,
      'source', source, 'file', sourcefile)) FROM pg_settings),
  'databases', (SELECT json_agg(json_build_object('name', datname,
      'size', pg_database_size(oid), 'connect', datallowconn) ORDER BY datname)
      FROM pg_database WHERE datname <> 'template0'),
  'tablespaces', (SELECT json_agg(json_build_object('name', spcname,
      'location', pg_tablespace_location(oid), 'size', pg_tablespace_size(oid)))
      FROM pg_tablespace),
  'roles', (SELECT json_agg(json_build_object('name', rolname, 'superuser', rolsuper,
      'login', rolcanlogin, 'replication', rolreplication, 'createdb', rolcreatedb,
      'createrole', rolcreaterole, 'bypassrls', rolbypassrls,
      'password', CASE WHEN rolpassword IS NULL THEN ''
                       WHEN rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram-sha-256'
                       WHEN rolpassword LIKE 'md5%' THEN 'md5' ELSE 'other' END)
      ORDER BY rolname) FROM pg_authid WHERE rolname !~ '^pg_'),
  'hba_errors', (SELECT json_agg(line_number || ': ' || error) FROM pg_hba_file_rules
      WHERE error IS NOT NULL),
  'wal_bytes', (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir())
);
"""
EXTENSIONS_SQL = "SELECT coalesce(json_agg(extname || ' ' || extversion ORDER BY extname), '[]') FROM pg_extension;"  # noqa: E501


def psql_as_postgres(
    ctx: StepContext, node: Node, port: int, sql: str, *, database: str = "postgres"
) -> list[str]:
    """SQL through the server's default socket directory as postgres (peer), on `port`."""
    command = (
        "cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 "
        f"-p {int(port)} -d {shlex.quote(database)}"
    )
    lines: list[str] = []
    result = ctx.run(command, node=node, stdin=sql.encode(), echo=False, collect=lines)
    if not result.ok:
        raise StepFailed(f"SQL failed on {node.name}: {(result.stderr_tail or ['?'])[-1]}")
    return lines


def inspect(ctx: StepContext, node: Node, version: int) -> Inspection:
    """Read the running Debian cluster on `node`: settings, databases, roles, rules, extensions."""
    clusters = parse_lsclusters(
        ctx.output("command -v pg_lsclusters >/dev/null && pg_lsclusters -h || true", node=node)
    )
    debian = choose_cluster(clusters, version)
    lines = psql_as_postgres(ctx, node, debian.port, INSPECT_SQL)
    try:
        info = json.loads("".join(lines))
    except ValueError as exc:
        raise StepFailed(f"could not read the server's description: {exc}") from None
    files = info["settings"]
    hba = files.get("hba_file", {}).get("value", "")
    ident = files.get("ident_file", {}).get("value", "")
    hba_text = "\n".join(ctx.output(f"cat {shlex.quote(hba)}", node=node, sudo=True, echo=False))
    ident_text = "\n".join(
        ctx.output(
            f"cat {shlex.quote(ident)} 2>/dev/null || true", node=node, sudo=True, echo=False
        )
    )
    inspection = Inspection(debian, info, hba_text, ident_text)
    for database in info.get("databases") or []:
        if database["connect"]:
            out = psql_as_postgres(
                ctx, node, debian.port, EXTENSIONS_SQL, database=database["name"]
            )
            inspection.extensions[database["name"]] = json.loads("".join(out) or "[]")
    names = sorted(
        {e.split()[0] for exts in inspection.extensions.values() for e in exts} - {"plpgsql"}
    )
    if names:
        share = f"/usr/share/postgresql/{int(debian.version)}/extension"
        controls = " ".join(shlex.quote(f"{share}/{n}.control") for n in names)
        for line in ctx.output(f"dpkg -S {controls} 2>/dev/null || true", node=node, echo=False):
            package, _, path = line.partition(": ")
            ext = path.rsplit("/", 1)[-1].removesuffix(".control")
            inspection.extension_packages[ext] = package.split(":")[0].split(",")[0].strip()
    return inspection


def standby_facts(ctx: StepContext, node: Node, inspection: Inspection) -> StandbyFacts:
    """Free space where the standby's copy goes, and the paths it lacks."""
    parent = inspection.debian.data_dir
    script = [
        f'd={shlex.quote(parent)}; while [ ! -d "$d" ]; do d=$(dirname "$d"); done',
        'df -Pk "$d" | awk \'NR==2 {print "free", $4}\'',
    ]
    for path, kind in standby_paths(inspection):
        q = shlex.quote(path)
        if kind == "dir":
            script.append(
                f'if [ ! -d {q} ]; then echo "missing {path}"; '
                f'elif [ -n "$(ls -A {q})" ]; then echo "notempty {path}"; '
                f'elif [ "$(stat -c %U {q})" != postgres ]; then echo "owner {path}"; fi'
            )
        elif "snakeoil" in path:
            # Debian's self-signed pair: the ssl-cert package makes one per host, and
            # postgresql-common (which setup installs) depends on it.
            script.append(
                f"if [ ! -r {q} ] && dpkg -s ssl-cert >/dev/null 2>&1; then "
                f'echo "nofile {path}"; fi'
            )
        else:
            script.append(f'[ -r {q} ] || echo "nofile {path}"')
    lines = ctx.output("\n".join(script), node=node, sudo=True, echo=False)
    free, missing = 0, []
    reasons = {
        "missing": "lacks {}, a tablespace of the server: create it, empty, owned by postgres",
        "notempty": "{} (a tablespace of the server) is not empty there; the copy needs it empty",
        "owner": "{} (a tablespace of the server) is not owned by postgres there",
        "nofile": "lacks {}, which the server's SSL settings read",
    }
    for line in lines:
        word, _, rest = line.partition(" ")
        if word == "free" and rest.isdigit():
            free = int(rest) * 1024
        elif word in reasons:
            missing.append(reasons[word].format(rest))
    return StandbyFacts(node.name, free, tuple(missing))


def master_node(cluster: Cluster) -> Node:
    """The database node set up as the first primary: the one marked master, else the first."""
    db_nodes = list(cluster.database_nodes)
    return next((n for n in db_nodes if n.bootstrap_primary), db_nodes[0])


def read_and_judge(
    ctx: StepContext, spec: ClusterSpec, roles_ours: frozenset[str] = frozenset()
) -> tuple[Inspection, Findings, dict[str, str]]:
    """Inspect the master, check every standby, judge."""
    master = master_node(ctx.cluster)
    inspection = inspect(ctx, master, spec.postgres_version)
    standbys = [
        standby_facts(ctx, n, inspection) for n in ctx.cluster.database_nodes if n != master
    ]
    findings, carried = judge(
        inspection,
        spec=spec,
        standbys=standbys,
        roles_ours=roles_ours,
        application_role=ctx.cluster.database_user,
    )
    return inspection, findings, carried


def record(inspection: Inspection, carried: dict[str, str]) -> dict:
    """What `Cluster.adopted_from` keeps of an inspection (no secrets: none were read)."""
    debian = inspection.debian
    return {
        "version": int(debian.version),
        "server_version": inspection.info.get("version"),
        "debian_cluster": debian.name,
        "data_dir": debian.data_dir,
        "config_dir": debian.config_dir,
        "unit": debian.unit,
        "port": debian.port,
        "sysid": inspection.info.get("sysid"),
        "parameters": carried,
        "pg_hba": rule_lines(inspection.hba_text),
        "pg_ident": rule_lines(inspection.ident_text),
        "databases": [d["name"] for d in inspection.info.get("databases") or []],
        # The customer's roles before the take-over: setup never changes their passwords.
        "roles": sorted(r["name"] for r in inspection.roles),
        "size_bytes": inspection.size_bytes,
    }


def adopted_server(adopted_from: dict) -> AdoptedServer | None:
    """The spec's view of an adopted server, from what `record` stored; None before any."""
    if not adopted_from.get("data_dir"):
        return None
    return AdoptedServer(
        data_dir=adopted_from["data_dir"],
        parameters=tuple(sorted((adopted_from.get("parameters") or {}).items())),
        pg_hba=tuple(adopted_from.get("pg_hba") or ()),
        pg_ident=tuple(adopted_from.get("pg_ident") or ()),
    )
