"""Rebuild's rejoin waits while the node makes progress and gives up once it stalls (pure logic;
the lab tests rebuild after power-off, divergence and a wiped disk)."""

from jobs.playbooks.rebuild import ActivitySampling, RejoinProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


RECOVERING = "postgres: c: startup recovering 00000001000000000000004{}"
STREAMING = "postgres: c: startup recovering 000000020000000000000050; " + (
    "postgres: c: walreceiver streaming 0/5{}000000"
)


def test_replay_moving_forward_is_progress_and_a_quiet_node_stalls():
    clock = Clock()
    progress = RejoinProgress(60, clock=clock)
    for i, segment in enumerate("ABCDE"):
        clock.now = 50.0 * (i + 1)  # 50 s per WAL segment: slow, but moving
        progress.observe(RECOVERING.format(segment))
        assert not progress.stalled()
    clock.now += 59
    progress.observe(RECOVERING.format("E"))  # the same segment: no progress
    assert not progress.stalled()
    clock.now += 1
    assert progress.stalled()


def test_pg_rewind_running_counts_as_progress_however_long():
    clock = Clock()
    progress = RejoinProgress(60, clock=clock)
    for _ in range(10):
        clock.now += 45
        progress.observe("/usr/lib/postgresql/15/bin/pg_rewind -D /var/lib/postgresql/15/c")
        assert not progress.stalled()
    clock.now += 60
    progress.observe("")
    assert progress.stalled()


def test_a_wal_receiver_that_keeps_reconnecting_without_moving_stalls():
    clock = Clock()
    progress = RejoinProgress(60, clock=clock)
    waiting = "postgres: c: startup waiting for 000000020000000000000050"
    progress.observe(STREAMING.format(1))
    for _ in range(13):  # gone, back at the same place, gone, ...: flapping, not moving
        clock.now += 5
        progress.observe(waiting)
        progress.observe(STREAMING.format(1))
    assert progress.stalled()


def test_the_log_gets_a_line_when_the_kind_of_activity_changes_not_per_position():
    progress = RejoinProgress(60)
    assert progress.observe(RECOVERING.format("A"))
    assert not progress.observe(RECOVERING.format("B"))
    assert progress.observe(STREAMING.format(1))
    assert not progress.observe(STREAMING.format(2))


def test_the_nodes_processes_are_looked_at_at_most_once_per_interval():
    clock = Clock()
    sampling = ActivitySampling(1.0, clock=clock)
    assert sampling.due()  # the first look at once
    seen = []
    for _ in range(8):  # asked every 0.25 s, as the rejoin asks whether the node streams
        clock.now += 0.25
        seen.append(sampling.due())
    assert seen == [False, False, False, True, False, False, False, True]
