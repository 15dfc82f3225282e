"""docs/reliability.md from the chaos suite's rounds: the counting, on made-up rounds."""

from tests.chaos.report import render


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
    assert cells[1:9] == ["sync", "3", "3", "24.0", "30.0", "3", "1", "1/3"]


def test_async_loss_is_reported_but_not_a_failed_round():
    cells = row_of(
        render([round_(replication="async", missing_rows=7, fault="netcut")]),
        "the primary's network cut",
    )
    assert (cells[6], cells[8]) == ("7", "1/1")


def test_a_round_that_failed_early_counts_as_a_round_without_figures():
    failed = {"fault": "kill", "replication": "async", "round": 2, "error": "AssertionError: x"}
    cells = row_of(render([round_(fault="kill", replication="async"), failed]), "kill -9")
    assert (cells[2], cells[8]) == ("2", "1/2")
