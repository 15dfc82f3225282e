"""The fast-path agent's decision lines: parsed, read by byte offset, recorded once as events."""

import json

import pytest

from clusters.models import Cluster, ClusterEvent, Incident
from clusters.monitoring.fastpath_decisions import (
    decision_parse,
    decisions_record,
    last_offset,
    lines_consumed,
    offset_keep,
    read_command,
)


def line(outcome: str = "acted", at: str = "2026-12-05T14:03:07.123Z", **extra) -> str:
    return json.dumps(
        {
            "at": at,
            "outcome": outcome,
            "primary": "node1",
            "candidate": "node2",
            "sentence": "node1 missed 5 probes and node2 could not reach it either; fenced",
            "timings_ms": {"detect": 1200, "fence": 800, "total": 2600},
            **extra,
        }
    )


def test_a_decision_line_becomes_a_decision() -> None:
    decision = decision_parse(line())
    assert decision.outcome == "acted" and decision.primary == "node1"
    assert decision.candidate == "node2" and decision.timings_ms["total"] == 2600
    assert decision.at.tzinfo is not None and decision.at.microsecond == 123000
    assert decision.summary.startswith("Fast failover acted: node1 missed")


@pytest.mark.parametrize(
    "text",
    [
        "",
        '{"outcome": "acted", "at": "2026-12-05T14:03:07Z", "prima',  # cut short
        "[1, 2]",
        line(outcome="maybe"),
        line(at="yesterday"),
        line(at="2026-12-05T14:03:07"),  # no zone: cannot be placed in time
    ],
)
def test_what_is_not_a_decision_is_none(text: str) -> None:
    assert decision_parse(text) is None


def test_timings_that_are_not_numbers_are_dropped() -> None:
    decision = decision_parse(line(timings_ms={"detect": "soon", "fence": 700.0}))
    assert decision.timings_ms == {"fence": 700}


def test_the_read_command_quotes_the_path_and_starts_after_the_offset() -> None:
    command = read_command("/var/lib/hacenter/fastpath/a b.jsonl", 120)
    assert "'/var/lib/hacenter/fastpath/a b.jsonl'" in command
    assert "tail -c +121 " in command and "stat -c %s" in command


def test_reading_moves_the_offset_past_whole_lines_only() -> None:
    first, second = line(), line(outcome="declined", at="2026-12-05T14:09:00Z")
    size = len(first) + 1 + len(second) + 1
    end, decisions = lines_consumed(size, 0, [first, second])
    assert end == size and [d.outcome for d in decisions] == ["acted", "declined"]
    # The second line still being written: it is left for the next read.
    half = second[:20]
    end, decisions = lines_consumed(len(first) + 1 + len(half), 0, [first, half])
    assert end == len(first) + 1 and len(decisions) == 1


def test_a_line_that_is_no_decision_is_passed_over_when_more_follows() -> None:
    first, second = "not json", line()
    size = len(first) + 1 + len(second) + 1
    end, decisions = lines_consumed(size, 0, [first, second])
    assert end == size and len(decisions) == 1


def test_non_ascii_sentences_count_in_bytes() -> None:
    text = line(sentence="nœud injoignable")
    end, _ = lines_consumed(10_000, 5, [text])
    assert end == 5 + len(text.encode()) + 1


@pytest.mark.django_db
class TestRecording:
    @pytest.fixture
    def cluster(self) -> Cluster:
        return Cluster.objects.create(name="pg1")

    def test_each_decision_is_an_event_once(self, cluster: Cluster) -> None:
        decisions = [decision_parse(line()), decision_parse(line(outcome="declined"))]
        assert decisions_record(cluster, decisions, 300) == 2
        assert decisions_record(cluster, decisions, 300) == 0  # the same lines read again
        events = ClusterEvent.objects.filter(cluster=cluster, kind="fast_failover")
        acted = events.get(details__outcome="acted")
        assert acted.old_primary == "node1" and acted.new_primary == "node2"
        assert acted.severity == "warning" and acted.details["timings_ms"]["fence"] == 800
        declined = events.get(details__outcome="declined")
        assert declined.new_primary == "" and declined.node == "node1"
        assert last_offset(cluster) == 300

    def test_the_offset_is_kept_when_nothing_new_was_recorded(self, cluster: Cluster) -> None:
        assert last_offset(cluster) == 0
        offset_keep(cluster, 500)  # no event yet: nothing to keep it in, read from 0 again
        assert last_offset(cluster) == 0
        decisions_record(cluster, [decision_parse(line())], 200)
        offset_keep(cluster, 900)
        assert last_offset(cluster) == 900

    def test_a_decision_joins_the_open_incident(self, cluster: Cluster) -> None:
        from django.utils import timezone

        incident = Incident.objects.create(
            cluster=cluster, kind="failover", opened=timezone.now(), title="failover of pg1"
        )
        decisions_record(cluster, [decision_parse(line(outcome="withdrawn"))], 10)
        event = ClusterEvent.objects.get(cluster=cluster, kind="fast_failover")
        assert event.incident == incident and event.severity == "critical"
