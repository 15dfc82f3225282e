"""PostgreSQL with the cluster's TLS: ssl settings, pg_hba `hostssl`, and Patroni's replication
and rewind connections verifying the CA. Without a TlsSpec (clusters built before TLS) the
config is as it was."""

from dataclasses import replace
from ipaddress import ip_address, ip_network

import pytest

from jobs.configs import patroni_config, patroni_config_dict, pg_hba_lines
from jobs.configs.spec import TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE, NodeTls, TlsSpec
from jobs.playbooks.pg_hba_rules import HbaRule, shadowed_rules
from tests.unit.jobs.configs.test_configs import make_spec, yaml_load

OWN_ROLES = ("postgres", "replicator", "rewind_user", "hacenter_monitor")


def tls_spec(*, require_client_tls: bool = True, **kw):
    spec = make_spec(**kw)
    tls = TlsSpec(
        ca_certificate="CA PEM",
        nodes=tuple((n.name, NodeTls("CERT", "KEY")) for n in spec.nodes),
        require_client_tls=require_client_tls,
    )
    return replace(spec, tls=tls, monitor_sources=("192.0.2.1",))


def first_match(lines: list[str], kind: str, database: str, user: str, address: str):
    """The rule PostgreSQL picks for a TCP connection (first match), with ssl or without."""
    for line in lines:
        rule = HbaRule.parse(line)
        if rule is None or rule.kind == "local":
            continue
        if (rule.kind == "hostssl" and kind != "ssl") or (
            rule.kind == "hostnossl" and kind == "ssl"
        ):
            continue
        if database == "replication":
            if "replication" not in rule.databases:
                continue
        elif not ({"all", database} & set(rule.databases)):
            continue
        if not ({"all", user} & set(rule.users)):
            continue
        if rule.address == "all" or ip_address(address) in ip_network(rule.address):
            return rule
    return None


def test_postgresql_serves_the_node_certificate_with_tls_1_2_at_least():
    spec = tls_spec()
    parameters = patroni_config_dict(spec, spec.database_nodes[0])["postgresql"]["parameters"]
    assert parameters == {
        "unix_socket_directories": "/run/postgresql",
        "ssl": "on",
        "ssl_cert_file": TLS_CERT_FILE,
        "ssl_key_file": TLS_KEY_FILE,
        "ssl_min_protocol_version": "TLSv1.2",
    }


def test_replication_and_rewind_verify_the_other_node_against_the_ca():
    spec = tls_spec()
    auth = patroni_config_dict(spec, spec.database_nodes[0])["postgresql"]["authentication"]
    for role in ("replication", "rewind"):
        assert auth[role]["sslmode"] == "verify-full"
        assert auth[role]["sslrootcert"] == TLS_CA_FILE
    # The superuser only talks to its own node; libpq's default TLS is enough there.
    assert "sslmode" not in auth["superuser"]


def test_without_tls_the_postgresql_section_is_as_before():
    spec = make_spec()
    section = patroni_config_dict(spec, spec.database_nodes[0])["postgresql"]
    assert section["parameters"] == {"unix_socket_directories": "/run/postgresql"}
    assert all("sslmode" not in a for a in section["authentication"].values())
    lines = pg_hba_lines(spec)
    assert not [line for line in lines if line.startswith(("hostssl", "hostnossl"))]


@pytest.mark.parametrize("require_client_tls", [True, False])
def test_own_roles_and_replication_come_in_over_tls_only(require_client_tls):
    spec = tls_spec(require_client_tls=require_client_tls)
    lines = pg_hba_lines(spec)
    node, other = spec.database_nodes[0].address, spec.database_nodes[1].address
    for role in OWN_ROLES:
        for address in (node, other, spec.proxy.address, "10.20.1.1", "192.0.2.1"):
            plain = first_match(lines, "plain", "postgres", role, address)
            assert plain is None or plain.method == "reject", (role, address, plain)
    plain = first_match(lines, "plain", "replication", "replicator", other)
    assert plain is not None and plain.method == "reject"
    ssl = first_match(lines, "ssl", "replication", "replicator", other)
    assert ssl is not None and ssl.kind == "hostssl" and ssl.method == "scram-sha-256"
    ssl = first_match(lines, "ssl", "postgres", "rewind_user", other)
    assert ssl.kind == "hostssl" and ssl.method == "scram-sha-256"
    ssl = first_match(lines, "ssl", "postgres", "hacenter_monitor", "192.0.2.1")
    assert ssl.kind == "hostssl" and ssl.method == "scram-sha-256"
    # Loopback and the socket stay as they were: Patroni's local connections cross no network.
    assert "host all all 127.0.0.1/32 scram-sha-256" in lines
    assert "host replication replicator 127.0.0.1/32 scram-sha-256" in lines
    assert lines[:2] == ["local all postgres peer", "local all all scram-sha-256"]


@pytest.mark.parametrize(("require_client_tls", "plain_allowed"), [(True, False), (False, True)])
def test_clients_need_tls_when_the_cluster_requires_it(require_client_tls, plain_allowed):
    spec = tls_spec(require_client_tls=require_client_tls)
    lines = pg_hba_lines(spec)
    for address in (spec.proxy.address, "10.20.1.1", "172.16.5.9"):
        plain = first_match(lines, "plain", "app", "app", address)
        assert (plain is not None and plain.method == "scram-sha-256") is plain_allowed, address
        ssl = first_match(lines, "ssl", "app", "app", address)
        assert ssl is not None and ssl.method == "scram-sha-256"
    outsider = first_match(lines, "ssl", "app", "app", "203.0.113.5")
    assert outsider is None


def test_an_adopted_servers_own_rules_cannot_let_our_roles_in_without_tls():
    spec = tls_spec()
    adopted = ("host all all 0.0.0.0/0 md5", "host replication all 0.0.0.0/0 md5")
    lines = pg_hba_lines(spec) + list(adopted)
    for role in OWN_ROLES:
        rule = first_match(lines, "plain", "postgres", role, "10.9.9.9")
        assert rule.method == "reject"
    # The customer's own roles keep their rules.
    rule = first_match(lines, "plain", "shop", "shop", "10.9.9.9")
    assert rule.method == "md5"


@pytest.mark.parametrize(
    ("require_client_tls", "method"), [(True, "reject"), (False, "scram-sha-256")]
)
def test_a_taken_over_servers_rules_cannot_let_plain_clients_in_when_tls_is_required(
    require_client_tls, method
):
    spec = tls_spec(require_client_tls=require_client_tls)
    lines = [*pg_hba_lines(spec), "host all all 10.20.0.0/16 md5"]
    assert first_match(lines, "plain", "shop", "shop", "10.20.3.4").method == method


def test_preflight_names_the_servers_rules_our_tls_rules_decide_in_part():
    ours = pg_hba_lines(tls_spec())
    theirs = [
        "host all all 10.20.0.0/16 md5",  # clients: TLS ones get scram, plain ones are refused
        "host all postgres 10.9.0.0/16 md5",  # our superuser without TLS: refused
        "host shop shop 10.9.0.0/16 scram-sha-256",  # not ours to decide
    ]
    assert shadowed_rules(ours, theirs) == [
        ("host all all 10.20.0.0/16 md5", "hostssl all all 10.20.0.0/16 scram-sha-256"),
        (
            "host all postgres 10.9.0.0/16 md5",
            "hostnossl all,replication postgres,replicator,rewind_user,hacenter_monitor all reject",
        ),
    ]


def test_tls_config_reads_back_as_yaml():
    spec = tls_spec()
    loaded = yaml_load(patroni_config(spec, spec.database_nodes[0]))
    assert loaded["postgresql"]["parameters"]["ssl"] == "on"
    assert loaded["postgresql"]["authentication"]["replication"]["sslmode"] == "verify-full"
    assert (
        "hostnossl all,replication postgres,replicator,rewind_user,hacenter_monitor all reject"
        in (loaded["postgresql"]["pg_hba"])
    )
