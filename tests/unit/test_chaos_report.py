"""docs/reliability.md from the chaos suite's rounds: the counting, on made-up rounds."""

from tests.chaos.fast_faults import fast_promises_broken
from tests.chaos.report import kept_sections, render


def round_(fault="poweroff", replication="sync", **overrides) -> dict:
    return {
        "fault": fault,
        "replication": replication,
        "outage_s": 23.0,
        "failover": True,
        "missing_rows": 0,
        "rebuilds": 1,
        "writers": ["node1", "node2"],
        "unfinished_jobs": 0,
        **overrides,
    }


def row_of(text: str, start: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {start}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_a_split_or_a_sync_loss_is_not_ok_and_is_counted():
    text = render(
        [
            round_(outage_s=22.0),
            round_(outage_s=24.0, writers=["node1", "node2", "node1"]),
            round_(outage_s=30.0, missing_rows=3),
        ]
    )
    cells = row_of(text, "power-off of the primary host")
    assert cells[1:10] == ["sync", "3", "3", "24.0", "30.0", "3", "0", "1", "1/3"]


def test_async_loss_is_reported_but_not_a_failed_round():
    cells = row_of(
        render(
            [
                round_(replication="async", missing_rows=7, fault="netcut"),
                round_(replication="async", event_lost_bytes=192952, fault="netcut"),
                round_(replication="async", event_lost_bytes=None, fault="netcut"),
            ]
        ),
        "the primary's network cut",
    )
    assert (cells[6], cells[7], cells[9]) == ("7", "192,952", "3/3")


def test_a_round_that_failed_early_counts_as_a_round_without_figures():
    failed = {"fault": "kill", "replication": "async", "round": 2, "error": "AssertionError: x"}
    cells = row_of(render([round_(fault="kill", replication="async"), failed]), "kill -9")
    assert (cells[2], cells[9]) == ("2", "1/2")


def job_round(broken=(), **job) -> dict:
    findings = {
        "interrupted": "Configure Patroni on node1",
        "ended_as": "lost",
        "ended_after_s": 34.0,
        "retry_status": "succeeded",
        "retry_s": 12.0,
        "rerun_steps": [],
        **job,
    }
    return round_(
        fault="worker_kill_setup",
        replication="async",
        failover=False,
        rebuilds=0,
        writers=["node1"],
        outage_s=0.2,
        job=findings,
        broken=list(broken),
    )


def test_a_job_faults_broken_promise_fails_the_round_in_both_tables():
    text = render(
        [
            job_round(),
            job_round(
                broken=["steps finished before the fault ran again: [3]"],
                interrupted="Start etcd on proxy",
                killed="as the step starts",
                ended_after_s=40.0,
                rerun_steps=[3],
            ),
        ]
    )
    main, jobs = [
        row_of(part, "the Celery worker killed") for part in text.split("Faults that hit a job")
    ]
    assert main[9] == "1/2"
    assert jobs[1:] == [
        "async",
        "2",
        "Configure Patroni on node1; Start etcd on proxy (as the step starts)",
        "lost ×2 (37.0)",
        "2/2 (12.0)",
        "1",
        "1/2",
    ]


def test_no_job_table_without_job_faults():
    assert "Faults that hit a job" not in render([round_()])


def test_written_again_the_report_keeps_the_documents_own_sections():
    old = "# Reliability\n\n| table |\n\nProvenance.\n\n## TLS\n\nmeasured by hand\n"
    assert kept_sections(old) == "\n## TLS\n\nmeasured by hand\n"
    assert kept_sections("# Reliability\n\n| table |\n") == ""
    assert "## " not in render([])  # the generated part has no section of its own


def fast_round(fault="poweroff", path="fast", first=3.4, decided=None, **overrides) -> dict:
    return round_(
        fault=fault,
        path=path,
        first_write_s=first,
        decided={"acted": 1} if decided is None else decided,
        **{"two_writable": 0, **overrides},
    )


def test_the_fast_path_has_its_own_rows_with_first_write_and_decisions():
    text = render(
        [
            round_(outage_s=22.0),  # the lease path's row stays in the first table
            fast_round(first=3.0),
            fast_round(first=4.0),
            fast_round(first=9.0, decided={"declined": 2}),  # not fenced: a broken promise
            fast_round(path="fence_broken", first=21.0, decided={"declined": 3}),
        ]
    )
    main, fast = text.split("**The fenced fast path**")
    assert row_of(main, "power-off of the primary host")[2] == "1"
    assert row_of(fast, "power-off of the primary host | sync | fenced fast path")[3:] == [
        "3",
        "3",
        "2",
        "4.0",
        "9.0",
        "9.0",
        "0",
        "0",
        "0",
        "acted ×2, declined ×2",
        "",  # the made-up rounds have no agent timings
        "2/3",
    ]
    broken = row_of(fast, "power-off of the primary host | sync | fast path, fence broken")
    assert (broken[4], broken[5], broken[-3], broken[-1]) == ("1", "0", "declined ×3", "1/1")


def test_the_fast_paths_promises():
    assert fast_promises_broken(fast_round()) == []
    assert fast_promises_broken(fast_round(two_writable=2)) == [
        "two PostgreSQL servers were writable at once"
    ]
    assert fast_promises_broken(fast_round(fault="witness_cut", decided={"declined": 1})) == []
    assert fast_promises_broken(fast_round(fault="witness_cut")) == ["a node was fenced"]
    assert fast_promises_broken(fast_round(fault="primary_slow", decided={})) == []
    assert fast_promises_broken(fast_round(fault="primary_slow", decided={"acted": 2})) == [
        "fenced 2 times"
    ]
    assert fast_promises_broken(fast_round(path="fence_broken", decided={"acted": 1}))
    assert fast_promises_broken(round_()) == []  # the lease path has none of these


def test_written_again_the_report_keeps_the_rows_it_did_not_measure_again():
    first = render([round_(outage_s=22.0), round_(fault="kill", replication="async")])
    second = render([round_(outage_s=30.0), fast_round()], old=first)
    assert row_of(second, "power-off of the primary host")[4] == "30.0"  # measured again
    assert row_of(second, "kill -9 of the primary's postmaster")[1] == "async"  # kept
    lines = second.splitlines()
    assert lines.index(row_line(second, "kill -9")) < lines.index(row_line(second, "power-off"))
    assert render([], old=second) == second  # nothing measured: every row kept


def row_line(text: str, start: str) -> str:
    return next(ln for ln in text.splitlines() if ln.startswith(f"| {start}"))


def test_the_agents_timings_are_the_acted_rounds_medians():
    rounds = [
        fast_round(fast_timings_ms={"detect": 600, "fence": 500, "handover": 400}),
        fast_round(fast_timings_ms={"detect": 900, "fence": 2500, "handover": 600}),
        fast_round(fast_timings_ms={"detect": 700, "fence": 700, "handover": 500}),
        fast_round(decided={"declined": 1}),  # not acted: no timings
    ]
    row = row_of(render(rounds).split("**The fenced fast path**")[1], "power-off")
    assert row[-2] == "0.7 / 0.7 / 0.5"
