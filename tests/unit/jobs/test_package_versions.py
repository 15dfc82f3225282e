"""Debian version rules the minor upgrade relies on (jobs.package_versions): pure, no server."""

import pytest

from jobs.package_versions import (
    PackageState,
    compare,
    debian_version_of_server,
    major,
    major_changes,
    parse_states,
    still_to_move,
    targets,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("15.20-0+deb12u1", "15.18-0+deb12u1", 1),  # a security release
        ("15.9-0+deb12u1", "15.10-0+deb12u1", -1),  # numbers, not strings
        ("15.20-0+deb12u1", "15.20-0+deb12u1", 0),
        ("15.20-0+deb12u1+hclab1", "15.20-0+deb12u1", 1),  # a rebuild sorts after
        ("2.6.12-1+deb12u4", "2.6.12-1+deb12u3", 1),
        ("3.4.23-4+b6", "3.4.23-4+b4", 1),  # a binNMU
        ("1.0~rc1-1", "1.0-1", -1),  # tilde sorts before the release
        ("1:1.0-1", "2.0-1", 1),  # the epoch wins
        ("1.0-1", "1.0", 1),  # a revision sorts after none
        ("1.0a-1", "1.0-1", 1),
        ("1.0+dfsg-1", "1.0-1", 1),
    ],
)
def test_compare_orders_versions_as_dpkg_does(a, b, expected):
    assert compare(a, b) == expected
    assert compare(b, a) == -expected


@pytest.mark.parametrize(
    ("package", "version", "expected"),
    [
        ("postgresql-15", "15.20-0+deb12u1", "15"),
        ("postgresql-client-17", "17.6-0+deb13u1", "17"),
        ("libpq5", "15.20-0+deb12u1", "15"),
        ("haproxy", "2.6.12-1+deb12u4", "2.6"),
        ("haproxy", "2.8.3-1", "2.8"),
        ("etcd-server", "3.4.23-4+b4", "3.4"),
        ("etcd-server", "3.5.16-4", "3.5"),
    ],
)
def test_major_is_postgresqls_first_number_and_the_others_first_two(package, version, expected):
    assert major(package, version) == expected


def test_a_candidate_of_another_major_is_refused_and_not_a_target():
    states = {
        "haproxy": PackageState("haproxy", "2.6.12-1+deb12u3", "2.8.3-1"),
        "libpq5": PackageState("libpq5", "15.18-0+deb12u1", "16.4-1"),
        "etcd-server": PackageState("etcd-server", "3.4.23-4+b4", "3.4.23-4+b6"),
    }
    assert major_changes(states) == ["haproxy 2.6 → 2.8", "libpq5 15 → 16"]
    assert targets(states) == {"etcd-server": "3.4.23-4+b6"}


def test_targets_never_downgrade_nor_install_what_is_not_installed():
    states = {
        "postgresql-15": PackageState("postgresql-15", "15.20-0+deb12u1", "15.18-0+deb12u1"),
        "etcd-client": PackageState("etcd-client", "", "3.4.23-4+b4"),
        "haproxy": PackageState("haproxy", "2.6.12-1+deb12u4", ""),
        "libpq5": PackageState("libpq5", "15.18-0+deb12u1", "15.20-0+deb12u1"),
    }
    assert targets(states) == {"libpq5": "15.20-0+deb12u1"}
    assert major_changes(states) == []


def test_parse_states_reads_the_script_output_for_the_wanted_packages_only():
    lines = [
        "postgresql-15 15.18-0+deb12u1 15.20-0+deb12u1",
        "etcd-client - 3.4.23-4+b4",
        "haproxy 2.6.12-1+deb12u4 (none)",
        "python3 3.11.2-1+b1 3.11.2-1+b1",
        "garbage",
    ]
    states = parse_states(lines, ["postgresql-15", "etcd-client", "haproxy"])
    assert states["postgresql-15"].upgradable
    assert states["etcd-client"] == PackageState("etcd-client", "", "3.4.23-4+b4")
    assert states["haproxy"].candidate == ""
    assert "python3" not in states


def test_still_to_move_skips_what_a_node_already_has_or_has_past():
    new, old = "15.20-0+deb12u1", "15.18-0+deb12u1"
    wanted = {"postgresql-15": new, "libpq5": new, "haproxy": "2.6.12-1+deb12u4"}
    installed = {"postgresql-15": new, "libpq5": old, "haproxy": "2.6.13-1"}
    assert still_to_move(installed, wanted) == {"libpq5": "15.20-0+deb12u1"}
    assert still_to_move({}, {"libpq5": "1"}) == {"libpq5": "1"}


def test_the_package_version_in_postgresqls_server_version():
    assert debian_version_of_server("15.20 (Debian 15.20-0+deb12u1)") == "15.20-0+deb12u1"
    assert debian_version_of_server("16.4 (Ubuntu 16.4-1.pgdg22.04+1)") == "16.4-1.pgdg22.04+1"
    assert debian_version_of_server("15.20") == ""
