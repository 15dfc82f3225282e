"""The PostgreSQL a user already runs on the master: read it, and judge whether HA Center can
take it over (Cluster.adopt_database).

Preflight shows the judgement; setup reads the server again right before the take-over and
refuses when the answer changed. Reading is one SQL query (JSON out, so no value can break the
parsing) plus the raw pg_hba/pg_ident files; judging is pure, so unit tests cover it.

Errors make a take-over unsafe (wrong major, a standby that could not hold the copy, a name
HA Center needs already taken). Warnings change behaviour the admin should know about (a
setting Patroni overrides, a pg_hba rule shadowed by the cluster's own, postgres's password
being set, another listen port).
"""

import dataclasses
import json
import shlex
from dataclasses import dataclass, field

from clusters.models import Cluster, Node
from jobs.configs import spec as paths
from jobs.configs.patroni import patroni_dcs_settings, pg_hba_lines
from jobs.configs.spec import AdoptedServer, ClusterSpec
from jobs.playbooks.base import StepContext, StepFailed
from jobs.playbooks.pg_hba_rules import rule_lines, shadowed_rules

# The roles HA Center creates on an adopted server; the server must not have them already
# (their passwords would change under an application that uses them).
HA_ROLES = (paths.REPLICATION_USER, paths.REWIND_USER, paths.MONITOR_USER)
# Settings Patroni sets itself, from its own config: never carried.
PATRONI_OWNED = frozenset(
    {
        "listen_addresses",
        "port",
        "unix_socket_directories",
        "cluster_name",
        "data_directory",
        "config_file",
        "hba_file",
        "ident_file",
        "external_pid_file",
        "synchronous_standby_names",
        "primary_conninfo",
        "primary_slot_name",
        "restore_command",
        "recovery_target",
        "recovery_target_lsn",
        "recovery_target_name",
        "recovery_target_time",
        "recovery_target_xid",
        "recovery_target_timeline",
        "recovery_target_action",
        "recovery_target_inclusive",
        "promote_trigger_file",
        "hot_standby_feedback",
    }
)
# Managed settings where the server's larger value is kept: less would break what worked.
KEEP_LARGER = frozenset({"max_wal_senders", "max_replication_slots", "wal_keep_size"})
# File settings the standbys must have too, when the server uses them.
FILE_SETTINGS = ("ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_crl_file")
# Room a standby needs beyond the copy itself: WAL kept for the slot, temp files.
DISK_MARGIN = 1.10
DISK_EXTRA_BYTES = 512 * 1024**2

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


@dataclass(frozen=True)
class DebianCluster:
    """One line of `pg_lsclusters -h`."""

    version: str
    name: str
    port: int
    status: str
    owner: str
    data_dir: str

    @property
    def unit(self) -> str:
        return f"postgresql@{self.version}-{self.name}.service"

    @property
    def config_dir(self) -> str:
        return f"/etc/postgresql/{self.version}/{self.name}"

    @property
    def online(self) -> bool:
        return self.status.split(",")[0] == "online"


def parse_lsclusters(lines: list[str]) -> list[DebianCluster]:
    """The clusters `pg_lsclusters -h` lists (lines it cannot read are skipped)."""
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[2].isdigit():
            found.append(DebianCluster(*fields[:2], int(fields[2]), *fields[3:6]))
    return found


@dataclass
class Inspection:
    """What the server said about itself; `extensions` maps each database to its extensions."""

    debian: DebianCluster
    info: dict
    hba_text: str
    ident_text: str
    extensions: dict[str, list[str]] = field(default_factory=dict)
    # The package each non-core extension comes from (dpkg -S of its control file).
    extension_packages: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, dict]:
        return self.info.get("settings") or {}

    def setting(self, name: str) -> str:
        return (self.settings.get(name) or {}).get("value", "")

    @property
    def size_bytes(self) -> int:
        """What a standby's copy takes: every database, the tablespaces and the WAL."""
        databases = sum(d["size"] for d in self.info.get("databases") or [])
        return databases + int(self.info.get("wal_bytes") or 0)

    @property
    def outside_tablespaces(self) -> list[dict]:
        """Tablespaces with a directory of their own (not pg_default/pg_global)."""
        return [t for t in self.info.get("tablespaces") or [] if t.get("location")]

    @property
    def roles(self) -> list[dict]:
        return self.info.get("roles") or []


@dataclass
class Findings:
    """The judgement: errors refuse the take-over, warnings need the admin's acknowledgement,
    facts describe the server."""

    facts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StandbyFacts:
    """What one standby has for the copy: free bytes where the data will go, and which of the
    paths the copy needs it lacks (with why)."""

    name: str
    free_bytes: int
    missing_paths: tuple[str, ...] = ()


def choose_cluster(clusters: list[DebianCluster], version: int) -> DebianCluster:
    """The one running Debian cluster to take over; StepFailed when there is none or several."""
    online = [c for c in clusters if c.online]
    if not online:
        listed = ", ".join(f"{c.version}/{c.name} {c.status}" for c in clusters) or "none"
        raise StepFailed(
            f"no running PostgreSQL on the master to take over (pg_lsclusters: {listed}); "
            "start it, or clear 'use the database already on the master'"
        )
    if len(online) > 1:
        listed = ", ".join(f"{c.version}/{c.name} on {c.port}" for c in online)
        raise StepFailed(
            f"several PostgreSQL clusters run on the master ({listed}); HA Center takes over "
            "exactly one: stop the others first"
        )
    return online[0]


def _number(entry: dict) -> float | None:
    try:
        return float(entry.get("setting", ""))
    except ValueError:
        return None


def carried_parameters(
    settings: dict[str, dict], managed: dict[str, object]
) -> tuple[dict[str, str], list[str], list[str]]:
    """Which of the server's settings go into Patroni's config, and what changes.

    Carried: what the server's configuration files set (postgresql.conf, conf.d), except what
    Patroni sets itself and what HA Center manages. postgresql.auto.conf (ALTER SYSTEM) stays
    in the data directory and keeps working on its own. Returns (carried, overridden, errors):
    `overridden` lists the server's own choices that HA Center's values replace (warnings),
    `errors` the managed settings that ALTER SYSTEM pins, which would silently beat Patroni's.
    """
    carried: dict[str, str] = {}
    overridden, errors = [], []
    for name, entry in sorted(settings.items()):
        source, file = entry.get("source", ""), entry.get("file") or ""
        from_auto = file.endswith("postgresql.auto.conf")
        if name in managed:
            wanted = str(managed[name])
            value = entry.get("value", "")
            if source in ("default", "override") or _same(value, wanted):
                continue
            if name in KEEP_LARGER and _larger(entry, wanted):
                carried[name] = value
                continue
            if from_auto:
                errors.append(
                    f"{name} = {value} is set with ALTER SYSTEM and would override HA Center's "
                    f"{wanted}; run ALTER SYSTEM RESET {name} first"
                )
            else:
                overridden.append(f"{name} {value} → {wanted}")
            continue
        if name in PATRONI_OWNED:
            if from_auto and name in ("port", "listen_addresses", "primary_conninfo"):
                errors.append(
                    f"{name} is set with ALTER SYSTEM and would override Patroni's; run "
                    f"ALTER SYSTEM RESET {name} first"
                )
            elif name == "synchronous_standby_names" and entry.get("value"):
                overridden.append(f"synchronous_standby_names '{entry['value']}' → Patroni's")
            continue
        if source == "configuration file" and not from_auto:
            # pg_settings spells a few in mixed case (DateStyle, TimeZone); the names are
            # case-insensitive, and Patroni's config keeps one spelling per setting
            carried[name.lower()] = entry.get("value", "")
    return carried, overridden, errors


def _same(value: str, wanted: str) -> bool:
    return value.strip().lower() == wanted.strip().lower()


def _larger(entry: dict, wanted: str) -> bool:
    """Whether the server's value is above HA Center's (numbers in the setting's own unit:
    max_wal_senders in connections, wal_keep_size in MB)."""
    mine = _number(entry)
    digits = "".join(ch for ch in wanted if ch.isdigit())
    if mine is None or not digits:
        return False
    theirs = float(digits) * (1024 if wanted.upper().endswith("GB") else 1)
    return mine > theirs


def judge(
    inspection: Inspection,
    *,
    spec: ClusterSpec,
    standbys: list[StandbyFacts],
    roles_ours: frozenset[str] = frozenset(),
    application_role: str = "",
) -> tuple[Findings, dict[str, str]]:
    """The judgement of a server against the cluster that will take it over, and the settings
    that will be carried into Patroni's config. `roles_ours`: HA roles an earlier take-over of
    this cluster created (a re-run finds them). `application_role`: the role the cluster names
    for the application, which setup leaves alone if the server already has it."""
    f = Findings()
    info, debian = inspection.info, inspection.debian
    major = int(info.get("version_num", 0)) // 10000
    f.facts.append(
        f"PostgreSQL {info.get('version')} cluster {debian.version}/{debian.name} on port "
        f"{debian.port}, data {debian.data_dir}, config {debian.config_dir}, unit {debian.unit}"
    )
    if major != spec.postgres_version:
        f.errors.append(
            f"the master runs PostgreSQL {major}, the cluster is set for "
            f"{spec.postgres_version}: set the cluster's version to {major} (an upgrade is not "
            "part of a take-over)"
        )
    if info.get("in_recovery"):
        f.errors.append("the master's PostgreSQL is a standby (in recovery), not a primary")
    if not paths.SAFE_PATH_RE.fullmatch(debian.data_dir):
        f.errors.append(f"the data directory {debian.data_dir!r} has characters HA Center refuses")
    data_dir_setting = inspection.setting("data_directory")
    if data_dir_setting and data_dir_setting != debian.data_dir:
        f.errors.append(
            f"pg_lsclusters says {debian.data_dir} but the server uses {data_dir_setting}"
        )
    databases = info.get("databases") or []
    f.facts.append(f"{_size(inspection.size_bytes)} to copy (databases and WAL)")
    f.facts.append(
        "databases: "
        + "; ".join(
            f"{d['name']} ({_size(d['size'])}"
            + (
                f", extensions {', '.join(inspection.extensions[d['name']])}"
                if inspection.extensions.get(d["name"])
                else ""
            )
            + ")"
            for d in databases
        )
    )
    f.facts.append(
        "wal_level {}, max_wal_senders {}, hot_standby {}, data checksums {}".format(
            inspection.setting("wal_level"),
            inspection.setting("max_wal_senders"),
            inspection.setting("hot_standby"),
            info.get("data_checksums"),
        )
    )
    f.facts.append(
        "roles: "
        + ", ".join(
            r["name"]
            + (
                f" ({', '.join(a for a in ('superuser', 'login', 'replication', 'createdb', 'createrole', 'bypassrls') if r.get(a))})"  # noqa: E501
                if any(r.get(a) for a in ("superuser", "login", "replication"))
                else ""
            )
            for r in inspection.roles
        )
    )
    taken = sorted({r["name"] for r in inspection.roles} & set(HA_ROLES) - roles_ours)
    if taken:
        f.errors.append(
            f"the server already has role(s) {', '.join(taken)}, which HA Center creates for "
            "replication, pg_rewind and monitoring; rename them first"
        )
    if application_role in {r["name"] for r in inspection.roles}:
        f.warnings.append(
            f"the application role {application_role} already exists: setup keeps it and its "
            "password as they are, so the connection strings the console hands out for it will "
            "not carry a working password (leave the application role empty to have none)"
        )
    md5 = [r["name"] for r in inspection.roles if r.get("login") and r.get("password") == "md5"]
    if md5:
        f.warnings.append(
            f"role(s) {', '.join(md5)} have MD5 password hashes; the cluster's pg_hba rules ask "
            "for scram-sha-256, so they cannot log in over the network until their passwords "
            "are set again"
        )
    f.warnings.append(
        "the postgres role's password is set to the cluster's generated one (Patroni logs in "
        "with it)"
    )
    if debian.port != paths.POSTGRES_PORT:
        f.warnings.append(
            f"the server listens on port {debian.port}; under Patroni it listens on "
            f"{paths.POSTGRES_PORT}: point local clients there"
        )
    for error in info.get("hba_errors") or []:
        f.errors.append(f"the server's pg_hba.conf has an error at line {error}")
    # Settings.
    # HA Center's own settings only: a spec that already carries this server's would count
    # every carried setting as managed (setup's second reading, right before the take-over).
    managed = patroni_dcs_settings(dataclasses.replace(spec, adopted=None))["postgresql"][
        "parameters"
    ]
    carried, overridden, errors = carried_parameters(inspection.settings, managed)
    f.errors += errors
    if overridden:
        f.warnings.append(
            "settings HA Center manages replace the server's: " + "; ".join(overridden)
        )
    f.facts.append(f"{len(carried)} settings carried into Patroni's config")
    # pg_hba and pg_ident.
    ours = pg_hba_lines(spec)
    theirs = rule_lines(inspection.hba_text)
    for line in theirs + rule_lines(inspection.ident_text):
        if "@" in line.split()[1:3] or any(tok.startswith("@") for tok in line.split()):
            f.warnings.append(
                f"the rule '{line}' reads a file relative to {debian.config_dir}; Patroni "
                "writes pg_hba.conf in the data directory, so give that file's full path"
            )
    shadowed = shadowed_rules(ours, theirs)
    if shadowed:
        f.warnings.append(
            "pg_hba rules of the server replaced by the cluster's: "
            + "; ".join(f"'{line}' → '{our}'" for line, our in shadowed)
        )
    f.facts.append(f"{len(theirs)} pg_hba rules kept after the cluster's own")
    # Extensions whose files come from a package the standbys will not get.
    others = {
        ext: pkg
        for ext, pkg in inspection.extension_packages.items()
        if pkg and pkg != f"postgresql-{spec.postgres_version}"
    }
    if others:
        f.warnings.append(
            "extensions from other packages, install them on the standbys too: "
            + ", ".join(f"{e} ({p})" for e, p in sorted(others.items()))
        )
    # Standbys.
    need = (
        int(inspection.size_bytes * DISK_MARGIN)
        + DISK_EXTRA_BYTES
        + sum(int(t.get("size") or 0) for t in inspection.outside_tablespaces)
    )
    for standby in standbys:
        if standby.free_bytes < need:
            f.errors.append(
                f"{standby.name} has {_size(standby.free_bytes)} free for the copy, which needs "
                f"about {_size(need)}"
            )
        for why in standby.missing_paths:
            f.errors.append(f"{standby.name}: {why}")
    return f, carried


def standby_paths(inspection: Inspection) -> list[tuple[str, str]]:
    """Paths each standby needs before the copy: (path, "dir" for an empty tablespace
    directory owned by postgres, "file" for a file PostgreSQL reads)."""
    wanted = [(t["location"], "dir") for t in inspection.outside_tablespaces]
    if inspection.setting("ssl") == "on":
        wanted += [(inspection.setting(s), "file") for s in FILE_SETTINGS if inspection.setting(s)]
    return wanted


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


# --- reading the servers --------------------------------------------------------------------


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
