"""Parameter changes are judged by the server's own rules before anything changes."""

import pytest

from jobs.parameter_rules import (
    RELOAD,
    RESTART,
    RESTART_PLAN,
    UNCHANGED,
    InvalidValue,
    Setting,
    normalize,
    parse_bool,
    parse_lines,
    preview,
    same_value,
    validate,
)

# Rows as PostgreSQL 15's pg_settings gives them.
CATALOG = {
    "shared_buffers": {
        "vartype": "integer",
        "unit": "8kB",
        "min_val": "16",
        "max_val": "1073741823",
        "context": "postmaster",
        "setting": "16384",
    },
    "work_mem": {
        "vartype": "integer",
        "unit": "kB",
        "min_val": "64",
        "max_val": "2147483647",
        "context": "user",
        "setting": "4096",
    },
    "max_connections": {
        "vartype": "integer",
        "unit": "",
        "min_val": "1",
        "max_val": "262143",
        "context": "postmaster",
        "setting": "100",
    },
    "log_min_duration_statement": {
        "vartype": "integer",
        "unit": "ms",
        "min_val": "-1",
        "max_val": "2147483647",
        "context": "superuser",
        "setting": "-1",
    },
    "checkpoint_completion_target": {
        "vartype": "real",
        "unit": "",
        "min_val": "0",
        "max_val": "1",
        "context": "sighup",
        "setting": "0.9",
    },
    "log_connections": {"vartype": "bool", "context": "superuser-backend", "setting": "off"},
    "log_statement": {
        "vartype": "enum",
        "enumvals": ["none", "ddl", "mod", "all"],
        "context": "superuser",
        "setting": "none",
    },
    "application_name": {"vartype": "string", "context": "user", "setting": ""},
    "block_size": {
        "vartype": "integer",
        "context": "internal",
        "setting": "8192",
        "min_val": "8192",
        "max_val": "8192",
    },
    "wal_level": {
        "vartype": "enum",
        "enumvals": ["minimal", "replica", "logical"],
        "context": "postmaster",
        "setting": "replica",
    },
}


def setting(name: str) -> Setting:
    return Setting.from_dict(name, CATALOG[name])


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("shared_buffers", "256MB", "32768"),  # 256 MB in 8 kB pages
        ("shared_buffers", "1GB", "131072"),
        ("shared_buffers", 20000, "20000"),  # no unit: the base unit
        ("work_mem", "0.5MB", "512"),  # fractions round to the base unit, as PostgreSQL does
        ("work_mem", "8MB", "8192"),
        ("log_min_duration_statement", "2s", "2000"),
        ("log_min_duration_statement", "1min", "60000"),
        ("log_min_duration_statement", "-1", "-1"),
        ("checkpoint_completion_target", "0.5", "0.5"),
        ("log_connections", "yes", "on"),
        ("log_connections", "OFF", "off"),
        ("log_connections", True, "on"),
        ("log_connections", "1", "on"),
        ("log_statement", "DDL", "ddl"),
        ("application_name", "a b", "a b"),
    ],
)
def test_values_parse_as_postgresql_reads_them(name, raw, expected):
    assert normalize(setting(name), raw) == expected


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("shared_buffers", "256 MiB", "valid units"),
        ("shared_buffers", "8", "outside 16..1073741823"),
        ("shared_buffers", "many", "an integer"),
        ("work_mem", "10ms", "valid units"),  # a time unit for a memory setting
        ("max_connections", "100MB", "takes no unit"),
        ("max_connections", "0", "outside"),
        ("checkpoint_completion_target", "1.5", "outside 0..1"),
        ("log_statement", "everything", "one of: none, ddl, mod, all"),
        ("log_connections", "o", "on or off"),  # ambiguous prefix
        ("application_name", "a\nb", "line breaks"),
        ("work_mem", ["1"], "a string, a number"),
    ],
)
def test_bad_values_are_refused_with_what_postgresql_wants(name, raw, message):
    with pytest.raises(InvalidValue, match=message):
        normalize(setting(name), raw)


def test_units_are_case_sensitive_like_postgresql():
    with pytest.raises(InvalidValue):
        normalize(setting("shared_buffers"), "256mb")


def test_bool_prefixes():
    assert parse_bool("t") == "on"
    assert parse_bool("of") == "off"
    assert parse_bool("n") == "off"


def test_validate_splits_reload_restart_and_refusals():
    judgement = validate(
        CATALOG,
        {
            "shared_buffers": "256MB",
            "work_mem": "8MB",
            "wal_level": "logical",
            "port": "5433",
            "ssl_ciphers": "HIGH",
            "no_such_thing": "1",
            "block_size": "4096",
            "Log_Statement": "mod",
        },
    )
    actions = {c.name: c.action for c in judgement.changes}
    assert actions == {"shared_buffers": RESTART, "work_mem": RELOAD, "log_statement": RELOAD}
    assert "HA Center sets it" in judgement.errors["wal_level"]
    assert "Patroni manages it" in judgement.errors["port"]
    assert "TLS" in judgement.errors["ssl_ciphers"]
    assert judgement.errors["no_such_thing"] == "no such parameter on this server"
    assert "internal" in judgement.errors["block_size"]
    assert not judgement.ok
    sent = {c.name: c.value for c in judgement.changes}
    assert sent["shared_buffers"] == "256MB"  # the operator's spelling goes to Patroni
    assert sent["log_statement"] == "mod"


def test_archive_and_recovery_settings_are_refused_even_if_the_server_knows_them():
    catalog = {"archive_command": {"vartype": "string", "context": "sighup"}}
    assert "backup" in validate(catalog, {"archive_command": "true"}).errors["archive_command"]


def test_a_value_already_in_effect_is_unchanged():
    judgement = validate(CATALOG, {"max_connections": "100", "shared_buffers": "128MB"})
    assert [c.action for c in judgement.changes] == [UNCHANGED, UNCHANGED]
    assert preview(judgement.changes)["plan"].startswith("nothing to do")


def test_preview_says_what_happens():
    restart = preview(validate(CATALOG, {"shared_buffers": "256MB", "work_mem": "8MB"}).changes)
    assert restart["restart"] is True
    assert restart["plan"] == RESTART_PLAN
    assert "standbys first, then a switchover, then the old primary" in restart["plan"]
    reload = preview(validate(CATALOG, {"work_mem": "8MB"}).changes)
    assert reload["restart"] is False and reload["plan"].startswith("reload")
    assert reload["parameters"][0] == {
        "name": "work_mem",
        "value": "8MB",
        "expected": "8192",
        "action": RELOAD,
        "context": "user",
        "current": "4096",
    }


def test_nothing_requested_is_an_error():
    assert validate(CATALOG, {}).errors == {"parameters": "name at least one parameter to change"}


def test_same_value_compares_numbers_as_numbers():
    assert same_value(setting("checkpoint_completion_target"), "0.50", "0.5")
    assert same_value(setting("log_statement"), "DDL", "ddl")
    assert not same_value(setting("shared_buffers"), "16384", "32768")


def test_page_lines_are_postgresql_conf_style():
    changes, errors = parse_lines(
        "# memory\nshared_buffers = '256MB'\nwork_mem 8MB\n\napplication_name = 'it''s'\nbroken\n"
    )
    assert changes == {"shared_buffers": "256MB", "work_mem": "8MB", "application_name": "it's"}
    assert errors == {"line 6": "write name = value"}


def test_lowering_a_setting_standbys_need_as_much_of_is_refused():
    judgement = validate(CATALOG, {"max_connections": "80"})
    assert "needs the primary restarted before the standbys" in judgement.errors["max_connections"]
    raised = validate(CATALOG, {"max_connections": "120"})
    assert [c.action for c in raised.changes] == [RESTART]
