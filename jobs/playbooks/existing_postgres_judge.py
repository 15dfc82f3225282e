"""The judgement of a user's running PostgreSQL against the cluster that will take it over
(Cluster.adopt_database): pure, so unit tests cover it; existing_postgres reads the server.

Errors make a take-over unsafe (wrong major, a standby that could not hold the copy, a name
HA Center needs already taken). Warnings change behaviour the admin should know about (a
setting Patroni overrides, a pg_hba rule shadowed by the cluster's own, postgres's password
being set, another listen port).
"""

import dataclasses
from dataclasses import dataclass, field

from clusters.inventory.units import size_text
from jobs.configs import spec as paths
from jobs.configs.patroni import patroni_dcs_settings, pg_hba_lines
from jobs.configs.spec import ClusterSpec
from jobs.playbooks.existing_postgres_facts import Inspection, StandbyFacts
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
# Room a standby needs beyond the copy itself: WAL kept for the slot, temp files.
DISK_MARGIN = 1.10
DISK_EXTRA_BYTES = 512 * 1024**2


@dataclass
class Findings:
    """The judgement: errors refuse the take-over, warnings need the admin's acknowledgement,
    facts describe the server."""

    facts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


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
    f.facts.append(f"{size_text(inspection.size_bytes)} to copy (databases and WAL)")
    f.facts.append(
        "databases: "
        + "; ".join(
            f"{d['name']} ({size_text(d['size'])}"
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
                f"{standby.name} has {size_text(standby.free_bytes)} free for the copy, which "
                f"needs about {size_text(need)}"
            )
        for why in standby.missing_paths:
            f.errors.append(f"{standby.name}: {why}")
    return f, carried
