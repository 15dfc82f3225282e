"""Each lint rule on a snapshot that passes and on one that fails (no network, no database)."""

from dataclasses import replace

import pytest

from jobs.configs import ClusterSpec, NodeSpec, Secrets
from jobs.lint import rules
from jobs.lint.generated import generated_snapshot
from jobs.lint.parse import haproxy_write_timing, hba_from_file_rules, hba_from_lines
from jobs.lint.rules import ConfigSnapshot, HaproxyTiming, lint

MEMBERS = {"node1": "10.0.0.11", "node2": "10.0.0.12"}
GOOD_HBA = hba_from_lines(
    [
        "local all postgres peer",
        "host replication replicator 10.0.0.11/32 scram-sha-256",
        "host replication replicator 10.0.0.12/32 scram-sha-256",
        "host all all 10.0.0.0/24 scram-sha-256",
    ]
)
GOOD = ConfigSnapshot(
    ttl=20,
    loop_wait=2,
    retry_timeout=4,
    maximum_lag_on_failover=1024 * 1024,
    members=MEMBERS,
    hba=GOOD_HBA,
    haproxy=HaproxyTiming(inter_s=1, fall=2, rise=2, shutdown_sessions=True),
    wal_bytes_per_s=100_000,
    watchdog={"node1": "automatic", "node2": "automatic"},
    watchdog_device={"node1": True, "node2": True},
    clock_offsets={"node1": 0.1, "node2": -0.2, "proxy": 0.0},
    etcd_members=(("proxy", "10.0.0.10"), ("node1", "10.0.0.11"), ("node2", "10.0.0.12")),
)


def only(rule, snapshot: ConfigSnapshot) -> list[rules.Finding]:
    return [f for f in lint(snapshot) if f.rule == rule]


def test_a_sound_configuration_has_no_findings():
    assert lint(GOOD) == []


def test_lease_timing_fails_when_a_loop_and_two_retries_outlast_the_ttl():
    assert only("lease_timing", GOOD) == []
    found = only("lease_timing", replace(GOOD, ttl=20, loop_wait=10, retry_timeout=10))
    assert [f.severity for f in found] == ["error"]
    assert "30 s is more than ttl 20 s" in found[0].message
    assert "split brain" in found[0].consequence


def test_haproxy_that_marks_down_slower_than_the_lease_is_an_error():
    slow = replace(GOOD, haproxy=HaproxyTiming(inter_s=5, fall=4, rise=2, shutdown_sessions=True))
    found = only("haproxy_timing", slow)
    assert [f.severity for f in found] == ["error", "warning"]  # 20 s down, 10 s up
    assert "20 s, not less than ttl 20 s" in found[0].message
    assert "≈ 32 s" in found[1].consequence


def test_haproxy_without_shutdown_sessions_keeps_clients_on_a_demoted_primary():
    kept = replace(GOOD, haproxy=replace(GOOD.haproxy, shutdown_sessions=False))
    found = only("haproxy_timing", kept)
    assert [f.severity for f in found] == ["warning"]
    assert "shutdown-sessions" in found[0].message


def test_maximum_lag_below_one_loop_of_wal_means_no_automatic_failover():
    busy = replace(GOOD, wal_bytes_per_s=2_000_000)  # 6 MB per 3 s loop > 1 MiB
    found = only("failover_lag", busy)
    assert [f.severity for f in found] == ["warning"]
    assert "promotes none" in found[0].consequence
    assert only("failover_lag", replace(GOOD, wal_bytes_per_s=None)) == []


def test_a_large_lag_allowance_on_a_quiet_async_cluster_names_the_possible_loss():
    quiet = replace(GOOD, wal_bytes_per_s=1_000, maximum_lag_on_failover=100 * 1024 * 1024)
    found = only("failover_lag", quiet)
    assert [f.severity for f in found] == ["info"]
    assert "lost" in found[0].consequence
    assert only("failover_lag", replace(quiet, synchronous_mode=True)) == []


def test_pg_hba_must_let_every_member_replicate():
    missing = hba_from_lines(
        [
            "host replication replicator 10.0.0.11/32 scram-sha-256",
            # "all" does not match replication connections.
            "host all all 10.0.0.0/24 scram-sha-256",
        ]
    )
    found = only("hba_replication", replace(GOOD, hba=missing))
    assert [f.severity for f in found] == ["error"]
    assert "node2" in found[0].message and "node1" not in found[0].message


def test_pg_hba_first_match_reject_blocks_replication():
    rejected = hba_from_lines(
        [
            "host replication all 10.0.0.12/32 reject",
            "host replication replicator 10.0.0.0/24 md5",
        ]
    )
    found = only("hba_replication", replace(GOOD, hba=rejected))
    assert found and "node2" in found[0].message
    network = hba_from_lines(["host replication replicator 10.0.0.0 255.255.255.0 md5"])
    assert only("hba_replication", replace(GOOD, hba=network)) == []


def test_hba_read_from_pg_hba_file_rules():
    rows = [
        "local|{all}|{postgres}|||peer|",
        "host|{replication}|{replicator}|10.0.0.11|255.255.255.255|scram-sha-256|",
        "host|{replication}|{all}|10.0.0.12|255.255.255.255|scram-sha-256|",
        "host|{replication}|{all}|bad|||invalid IP address",
    ]
    parsed = hba_from_file_rules(rows)
    assert len(parsed) == 3
    assert only("hba_replication", replace(GOOD, hba=parsed)) == []
    assert only("hba_replication", replace(GOOD, hba=parsed[:2])) != []


@pytest.mark.parametrize("strict", [False, True])
def test_synchronous_mode_with_one_standby_is_named(strict):
    assert only("synchronous_standby", GOOD) == []
    found = only(
        "synchronous_standby",
        replace(GOOD, synchronous_mode=True, synchronous_mode_strict=strict),
    )
    assert [f.severity for f in found] == ["warning"]
    assert ("writes on the primary stop" in found[0].consequence) == strict
    three = dict(MEMBERS, node3="10.0.0.13")
    assert only("synchronous_standby", replace(GOOD, synchronous_mode=True, members=three)) == []


def test_watchdog_off_everywhere_is_noted_and_required_without_device_is_an_error():
    off = replace(GOOD, watchdog={"node1": "off", "node2": "off"}, watchdog_device={})
    assert [f.severity for f in only("watchdog", off)] == ["info"]
    required = replace(
        GOOD,
        watchdog={"node1": "required", "node2": "required"},
        watchdog_device={"node1": True, "node2": False},
    )
    found = only("watchdog", required)
    assert [f.severity for f in found] == ["error"] and "node2" in found[0].message
    mixed = replace(GOOD, watchdog={"node1": "automatic", "node2": "off"})
    assert [f.severity for f in only("watchdog", mixed)] == ["warning"]


def test_clock_skew_between_nodes():
    skewed = replace(GOOD, clock_offsets={"node1": 1.5, "node2": -0.5})
    found = only("clock_skew", skewed)
    assert [f.severity for f in found] == ["warning"]
    assert "node1's clock is 2.00 s ahead of node2's" in found[0].message
    assert rules.clock_skew(skewed, max_skew_s=3.0) == []


def test_etcd_needs_an_odd_count_on_distinct_hosts():
    two = replace(GOOD, etcd_members=(("node1", "10.0.0.11"), ("node2", "10.0.0.12")))
    assert [f.severity for f in only("etcd_topology", two)] == ["error"]
    four = replace(GOOD, etcd_members=(*GOOD.etcd_members, ("node3", "10.0.0.13")))
    assert [f.severity for f in only("etcd_topology", four)] == ["warning"]
    shared = replace(
        GOOD,
        etcd_members=(("a", "10.0.0.10"), ("b", "10.0.0.10"), ("c", "10.0.0.11")),
    )
    found = only("etcd_topology", shared)
    assert [f.severity for f in found] == ["error"]
    assert "quorum is gone" in found[0].consequence


def test_haproxy_timing_parsed_from_the_config_text():
    text = """
defaults
    mode tcp
    default-server inter 3s fall 3 rise 3

listen app
    bind :80
    server a 10.0.0.1:80 check

listen postgres_rw  # the customer's own
    bind :5000
    option httpchk OPTIONS /master
    http-check expect status 200
    default-server fall 2 on-marked-down shutdown-sessions
    server n1 10.0.0.11:5432 check port 8008 inter 500ms
"""
    timing = haproxy_write_timing(text)
    assert timing == HaproxyTiming(inter_s=0.5, fall=2, rise=3, shutdown_sessions=True)
    assert haproxy_write_timing("listen x\n    server a 1.2.3.4:5 check\n") is None


def test_what_ha_center_generates_passes_every_rule_but_the_watchdog_note():
    secrets = Secrets(*(["Pw_1"] * 6))
    nodes = (
        NodeSpec("proxy", "10.0.0.10", "proxy"),
        NodeSpec("node1", "10.0.0.11", "database"),
        NodeSpec("node2", "10.0.0.12", "database"),
    )
    spec = ClusterSpec("pg1", 15, "async", False, "balanced", (), nodes, secrets)
    snapshot = generated_snapshot(spec, clock_offsets={"node1": 0.0, "node2": 0.1})
    assert snapshot.haproxy == HaproxyTiming(1.0, 2, 2, True)
    assert [(f.rule, f.severity) for f in lint(snapshot)] == [("watchdog", "info")]
    sync = replace(spec, replication="sync")
    assert ("synchronous_standby", "warning") in [
        (f.rule, f.severity) for f in lint(generated_snapshot(sync))
    ]
