"""The judgement of a user's running PostgreSQL before HA Center takes it over (pure logic)."""

import dataclasses

import pytest

from jobs.configs.patroni import patroni_config_dict, patroni_dcs_settings
from jobs.configs.spec import AdoptedServer, data_dir
from jobs.errors import StepFailed
from jobs.playbooks.existing_postgres import adopted_server, record
from jobs.playbooks.existing_postgres_facts import (
    DebianCluster,
    Inspection,
    StandbyFacts,
    choose_cluster,
    parse_lsclusters,
    standby_paths,
)
from jobs.playbooks.existing_postgres_judge import carried_parameters, judge
from jobs.playbooks.pg_hba_rules import HbaRule, rule_lines, shadowed_rules
from tests.unit.jobs.configs.test_configs import make_spec

DEBIAN_HBA = """
# Database administrative login by Unix domain socket
local   all             postgres                                peer

# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
local   replication     all                                     peer
host    replication     all             127.0.0.1/32            scram-sha-256
host    shop            shop            10.9.0.0/16             scram-sha-256   # app servers
"""
GiB = 1024**3


def setting(value: str, source: str = "default", file: str = "", unit=None, raw=None) -> dict:
    return {"value": value, "setting": raw if raw is not None else value, "unit": unit,
            "source": source, "file": file}  # fmt: skip


CONF = "/etc/postgresql/15/main/postgresql.conf"
CONF_D = "/etc/postgresql/15/main/conf.d/app.conf"
SNAKEOIL = "/etc/ssl/certs/ssl-cert-snakeoil.pem", "/etc/ssl/private/ssl-cert-snakeoil.key"
AUTO = "/var/lib/postgresql/15/main/postgresql.auto.conf"


def debian_settings(**extra: dict) -> dict:
    base = {
        "data_directory": setting("/var/lib/postgresql/15/main", "override"),
        "hba_file": setting("/etc/postgresql/15/main/pg_hba.conf", "override"),
        "port": setting("5432", "configuration file", CONF),
        "listen_addresses": setting("localhost"),
        "cluster_name": setting("15/main", "configuration file", CONF),
        "shared_buffers": setting("128MB", "configuration file", CONF, "8kB", "16384"),
        "max_connections": setting("100", "configuration file", CONF),
        "DateStyle": setting("ISO, MDY", "configuration file", CONF),
        "wal_level": setting("replica"),
        "max_wal_senders": setting("10"),
        "hot_standby": setting("on"),
        "wal_log_hints": setting("off"),
        "wal_keep_size": setting("0", unit="MB"),
        "ssl": setting("on", "configuration file", CONF),
        "ssl_cert_file": setting(SNAKEOIL[0], "configuration file", CONF),
        "ssl_key_file": setting(SNAKEOIL[1], "configuration file", CONF),
        "ssl_ca_file": setting(""),
        "work_mem": setting("16MB", "configuration file", CONF_D),
    }
    return base | extra


def make_inspection(**changes) -> Inspection:
    info = {
        "version_num": 150014,
        "version": "15.14 (Debian 15.14-0+deb12u1)",
        "sysid": "7412345678901234567",
        "in_recovery": False,
        "data_checksums": "off",
        "settings": debian_settings(),
        "databases": [
            {"name": "postgres", "size": 7 * 1024**2, "connect": True},
            {"name": "shop", "size": 2 * GiB, "connect": True},
            {"name": "template1", "size": 7 * 1024**2, "connect": True},
        ],
        "tablespaces": [
            {"name": "pg_default", "location": "", "size": 2 * GiB},
            {"name": "pg_global", "location": "", "size": 500_000},
        ],
        "roles": [
            {"name": "postgres", "superuser": True, "login": True, "password": ""},
            {"name": "shop", "login": True, "password": "scram-sha-256"},
        ],
        "hba_errors": None,
        "wal_bytes": 64 * 1024**2,
    } | changes
    debian = DebianCluster("15", "main", 5432, "online", "postgres", "/var/lib/postgresql/15/main")
    return Inspection(debian, info, DEBIAN_HBA, "", {"shop": ["hstore 1.8", "pg_trgm 1.6"]})


ROOMY = [StandbyFacts("node2", 50 * GiB)]


def test_lsclusters_lines_name_the_running_cluster_and_its_unit() -> None:
    found = parse_lsclusters(
        [
            "15 main 5432 online postgres /var/lib/postgresql/15/main "
            "/var/log/postgresql/postgresql-15-main.log",
            "15 old  5433 down   postgres /var/lib/postgresql/15/old /var/log/x.log",
            "garbage",
        ]
    )
    assert [c.name for c in found] == ["main", "old"]
    chosen = choose_cluster(found, 15)
    assert (chosen.unit, chosen.config_dir) == (
        "postgresql@15-main.service",
        "/etc/postgresql/15/main",
    )


def test_no_running_cluster_or_several_is_refused() -> None:
    down = DebianCluster("15", "main", 5432, "down", "postgres", "/d")
    with pytest.raises(StepFailed, match="no running PostgreSQL"):
        choose_cluster([down], 15)
    up = dataclasses.replace(down, status="online")
    with pytest.raises(StepFailed, match="several"):
        choose_cluster([up, dataclasses.replace(up, name="b", port=5433)], 15)


def test_debian_server_is_accepted_with_warnings_only() -> None:
    findings, carried = judge(make_inspection(), spec=make_spec(), standbys=ROOMY)
    assert findings.errors == []
    text = " ".join(findings.warnings)
    assert "postgres role's password" in text
    # Debian's "local all all peer" is decided by the cluster's scram rule first
    assert "'local all all peer' → 'local all all scram-sha-256'" in text
    assert "port" not in text  # same port
    assert carried["shared_buffers"] == "128MB" and carried["work_mem"] == "16MB"
    assert carried["datestyle"] == "ISO, MDY"  # lower case, as the spec's names must be
    for owned in ("port", "cluster_name", "data_directory", "hba_file", "wal_log_hints"):
        assert owned not in carried
    facts = " ".join(findings.facts)
    assert "shop (2 GiB, extensions hstore 1.8, pg_trgm 1.6)" in facts
    assert "data checksums off" in facts


def test_wrong_major_and_a_standby_server_are_errors() -> None:
    findings, _ = judge(
        make_inspection(version_num=160004, in_recovery=True), spec=make_spec(), standbys=ROOMY
    )
    assert any("runs PostgreSQL 16" in e for e in findings.errors)
    assert any("standby" in e for e in findings.errors)


def test_a_standby_too_small_for_the_copy_is_an_error() -> None:
    findings, _ = judge(make_inspection(), spec=make_spec(), standbys=[StandbyFacts("node2", GiB)])
    assert any(e.startswith("node2 has 1 GiB free") for e in findings.errors)


def test_a_tablespace_path_a_standby_lacks_is_an_error_with_the_reason() -> None:
    inspection = make_inspection(
        tablespaces=[{"name": "fast", "location": "/srv/fast", "size": GiB}]
    )
    assert ("/srv/fast", "dir") in standby_paths(inspection)
    assert ("/etc/ssl/private/ssl-cert-snakeoil.key", "file") in standby_paths(inspection)
    missing = StandbyFacts("node2", 50 * GiB, ("lacks /srv/fast, a tablespace of the server",))
    findings, _ = judge(inspection, spec=make_spec(), standbys=[missing])
    assert findings.errors == ["node2: lacks /srv/fast, a tablespace of the server"]


def test_roles_with_ha_centers_names_are_refused_unless_a_past_take_over_made_them() -> None:
    roles = [{"name": "replicator", "login": True, "replication": True, "password": "md5"}]
    findings, _ = judge(make_inspection(roles=roles), spec=make_spec(), standbys=ROOMY)
    assert any("replicator" in e for e in findings.errors)
    again, _ = judge(
        make_inspection(roles=roles),
        spec=make_spec(),
        standbys=ROOMY,
        roles_ours=frozenset({"replicator"}),
    )
    assert again.errors == []


def test_an_application_role_the_server_has_is_kept_with_a_warning() -> None:
    roles = [{"name": "app", "login": True, "password": "scram"}]
    findings, _ = judge(
        make_inspection(roles=roles), spec=make_spec(), standbys=ROOMY, application_role="app"
    )
    assert any("application role app already exists" in w for w in findings.warnings)
    other, _ = judge(
        make_inspection(roles=roles), spec=make_spec(), standbys=ROOMY, application_role="shop"
    )
    assert not any("application role" in w for w in other.warnings)


def test_md5_passwords_and_another_port_are_warnings() -> None:
    roles = [{"name": "legacy", "login": True, "password": "md5"}]
    inspection = make_inspection(roles=roles)
    inspection.debian = dataclasses.replace(inspection.debian, port=5433)
    findings, _ = judge(inspection, spec=make_spec(), standbys=ROOMY)
    text = " ".join(findings.warnings)
    assert "legacy have MD5" in text and "port 5433" in text


def test_settings_patroni_manages_are_overridden_or_kept_when_larger() -> None:
    managed = patroni_dcs_settings(make_spec())["postgresql"]["parameters"]
    settings = debian_settings(
        wal_level=setting("minimal", "configuration file", CONF),
        max_wal_senders=setting("20", "configuration file", CONF),
        wal_keep_size=setting("1GB", "configuration file", CONF, "MB", "1024"),
        synchronous_standby_names=setting("s1", "configuration file", CONF),
    )
    carried, overridden, errors = carried_parameters(settings, managed)
    assert errors == []
    assert "wal_level minimal → replica" in overridden
    assert any(o.startswith("synchronous_standby_names") for o in overridden)
    assert carried["max_wal_senders"] == "20" and carried["wal_keep_size"] == "1GB"
    assert "wal_level" not in carried


def test_managed_settings_pinned_by_alter_system_are_errors() -> None:
    managed = patroni_dcs_settings(make_spec())["postgresql"]["parameters"]
    settings = debian_settings(
        hot_standby=setting("off", "configuration file", AUTO),
        port=setting("6543", "configuration file", AUTO),
        work_mem=setting("64MB", "configuration file", AUTO),
    )
    carried, _, errors = carried_parameters(settings, managed)
    assert any("hot_standby" in e and "ALTER SYSTEM RESET" in e for e in errors)
    assert any(e.startswith("port") for e in errors)
    assert "work_mem" not in carried  # auto.conf stays in the data directory and applies itself


def test_pg_hba_rule_coverage_follows_postgresqls_matching() -> None:
    def rule(line: str) -> HbaRule:
        parsed = HbaRule.parse(line)
        assert parsed is not None
        return parsed

    assert rule("host all all 10.0.0.0/8 scram-sha-256").covers(rule("host db u 10.1.0.0/16 md5"))
    assert rule("host all all 10.0.0.0/8 md5").covers(rule("hostssl db u 10.1.2.3/32 md5"))
    assert not rule("hostssl all all 10.0.0.0/8 md5").covers(rule("host db u 10.1.2.3/32 md5"))
    # "all" never matches replication connections
    assert not rule("local all all peer").covers(rule("local replication all peer"))
    assert not rule("host all all 10.0.0.0/8 md5").covers(rule("host all all 0.0.0.0/0 md5"))
    assert rule("host all all 10.0.0.0 255.0.0.0 md5").address == "10.0.0.0/8"
    assert not rule("host all all 10.0.0.0/8 md5").covers(rule("host all all samenet md5"))
    ours = ["local all postgres peer", "local all all scram-sha-256"]
    theirs = ["local all postgres peer", "local all all peer", "local replication all peer"]
    assert shadowed_rules(ours, theirs) == [("local all all peer", "local all all scram-sha-256")]


def test_rule_lines_drop_comments_and_collapse_spaces() -> None:
    assert rule_lines(DEBIAN_HBA)[-1] == "host shop shop 10.9.0.0/16 scram-sha-256"
    assert len(rule_lines(DEBIAN_HBA)) == 7


def test_adopted_server_threads_its_data_dir_settings_and_rules_into_patroni() -> None:
    inspection = make_inspection()
    _, carried = judge(inspection, spec=make_spec(), standbys=ROOMY)
    stored = record(inspection, carried)
    assert stored["unit"] == "postgresql@15-main.service" and stored["sysid"]
    adopted = adopted_server(stored)
    spec = dataclasses.replace(make_spec(), adopted=adopted)
    assert data_dir(spec) == "/var/lib/postgresql/15/main"
    config = patroni_config_dict(spec, spec.database_nodes[0])
    postgresql = config["postgresql"]
    assert postgresql["data_dir"] == "/var/lib/postgresql/15/main"
    hba = postgresql["pg_hba"]
    # the cluster's own rules first, the server's after them
    assert hba.index("host shop shop 10.9.0.0/16 scram-sha-256") > hba.index(
        "local all all scram-sha-256"
    )
    parameters = config["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert parameters["shared_buffers"] == "128MB" and parameters["wal_level"] == "replica"
    assert parameters["datestyle"] == "ISO, MDY"
    assert data_dir(make_spec()) == "/var/lib/postgresql/15/demo"
    # setup reads the server again with the adopted spec: the same settings are carried
    _, again = judge(inspection, spec=spec, standbys=ROOMY)
    assert again == carried
    assert adopted_server({}) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"data_dir": "relative/dir"}, "plain absolute path"),
        ({"data_dir": "/var/lib/x y"}, "plain absolute path"),
        ({"parameters": (("bad name", "1"),)}, "cannot be carried"),
        ({"pg_hba": ("local all all trust\nhost all all 0.0.0.0/0 trust",)}, "spans lines"),
    ],
)
def test_adopted_server_refuses_what_would_break_a_config(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdoptedServer(**({"data_dir": "/var/lib/postgresql/15/main"} | changes))
