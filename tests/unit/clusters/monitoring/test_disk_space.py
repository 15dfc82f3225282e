"""The disk check's pure parts: reading `df`, picking the fuller file system, and what the
monitor's judgement makes of a nearly full data directory disk."""

from clusters.monitoring.disk_space import FileSystem, df_command, fullest, parse_df
from clusters.monitoring.health import derive_state, find_alarms
from tests.unit.clusters.monitoring.health_views import MiB, primary, standby, view

GiB = 1024 * MiB
DF = [
    "Filesystem         1-blocks       Used  Available Capacity Mounted on",
    "/dev/vda       270465425408 1000 80000000000      71% /",
    "/dev/loop3       2040373248 1900000000 140373248      94% /var/lib/postgresql",
]


def test_df_lines_become_file_systems_and_the_fuller_one_is_kept() -> None:
    found = parse_df(DF)
    assert [f.mount for f in found] == ["/", "/var/lib/postgresql"]
    assert found[1] == FileSystem("/var/lib/postgresql", 2040373248, 140373248)
    assert fullest(found).mount == "/var/lib/postgresql"
    assert fullest([]) is None
    assert parse_df(["df: /x: No such file or directory"]) == []


def test_a_mount_point_with_spaces_stays_whole() -> None:
    found = parse_df(["/dev/sdb 100 50 50 50% /srv/pg data"])
    assert found == [FileSystem("/srv/pg data", 100, 50)]


def test_the_command_quotes_the_paths() -> None:
    assert df_command("/var/lib/postgresql/15/a b") == (
        "df -P -B1 -- '/var/lib/postgresql/15/a b' '/var/lib/postgresql/15/a b/pg_wal'"
    )


def test_a_nearly_full_disk_is_a_reason_and_an_alarm_naming_the_node() -> None:
    low = view(primary(disk=("/var/lib/postgresql", 100 * MiB, 2 * GiB)), standby())
    state, reasons = derive_state(low)
    assert state == "degraded"
    assert reasons == [
        "node1's data directory disk (/var/lib/postgresql) is nearly full: 100 MiB free of "
        "2 GiB; PostgreSQL cannot grow tables nor write new WAL once it is full."
    ]
    assert "node1" in find_alarms(low)["disk_low"]


def test_a_full_disk_says_full_and_plenty_of_space_says_nothing() -> None:
    full = view(primary(), standby(disk=("/", 1 * MiB, 2 * GiB)))
    assert "node2's data directory disk (/) is full" in derive_state(full)[1][0]
    roomy = view(primary(disk=("/", 1 * GiB, 2 * GiB)), standby(disk=None))
    assert derive_state(roomy) == ("healthy", [])
    assert "disk_low" not in find_alarms(roomy)
