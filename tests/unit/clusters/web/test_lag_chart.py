"""The lag chart's numbers, worked out on the server so they can be tested here: byte ticks
round in binary units, time labels that fit and carry the date once, gaps where the monitor has
no sample, failover and switchover markers, the alert threshold; and the one byte formatter
the console uses everywhere (the chart's JavaScript copy included)."""

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from clusters.inventory.units import size_in_unit, size_text
from clusters.models import ClusterEvent, StatusSample
from clusters.monitoring.lag_history import lag_series
from clusters.web.lag_chart import byte_axis, chart_data, time_axis, with_gaps
from clusters.web.sparkline import sparkline_svg, sparkline_y
from tests.unit.conftest import three_node_cluster

KiB, MiB, GiB = 1024, 1024**2, 1024**3
ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (70_000, "68 KiB"),
        (223_772_447, "213 MiB"),  # the "lags 223772447 bytes"
        (16 * MiB, "16 MiB"),
        (1023.5 * KiB, "1 MiB"),  # never "1024 KiB"
        (5.25 * GiB, "5.2 GiB"),  # a tie rounds to even, as Python does
        (-2048, "-2 KiB"),
    ],
)
def test_size_text_is_binary_with_three_figures_at_most(n, text):
    assert size_text(n) == text


def test_the_chart_script_formats_bytes_exactly_as_the_server_does():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript copy is checked where it is")
    values = [0, 1, 999, 1023, 1024, 1535, 1536, 10 * KiB - 1, 70_000, 1023.5 * KiB, 12.5 * MiB]
    values += [223_772_447, 16 * MiB, 0.25 * MiB, 5.25 * GiB, 1024**5 * 2000, -2048]
    script = (
        f"require({json.dumps(str(ROOT / 'static' / 'lagchart.js'))});"
        f"console.log(JSON.stringify({json.dumps(values)}.map(globalThis.HACenterUnits.sizeText)))"
    )
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [size_text(v) for v in values]


@pytest.mark.parametrize(
    ("largest", "top", "labels"),
    [
        (0, 1024, ["0", "0.25 KiB", "0.5 KiB", "0.75 KiB", "1 KiB"]),  # idle: still an axis
        (100_000, 128 * KiB, ["0", "32 KiB", "64 KiB", "96 KiB", "128 KiB"]),  # not "97.7 KB"
        (50_000_000, 48 * MiB, ["0", "16 MiB", "32 MiB", "48 MiB"]),  # and its "47.7 MB"
        (1.1 * MiB, 1.25 * MiB, ["0", "0.25 MiB", "0.5 MiB", "0.75 MiB", "1 MiB", "1.25 MiB"]),
        (640 * KiB, 640 * KiB, ["0", "128 KiB", "256 KiB", "384 KiB", "512 KiB", "640 KiB"]),
        (3 * GiB, 3 * GiB, ["0", "1 GiB", "2 GiB", "3 GiB"]),
    ],
)
def test_byte_ticks_step_by_a_power_of_two_and_say_one_unit(largest, top, labels):
    axis = byte_axis(largest)
    step = axis["ticks"][1]
    assert step & (step - 1) == 0, "the step is a power of two"
    assert axis["top"] == top and axis["ticks"][-1] == top and axis["ticks"][0] == 0
    assert axis["labels"][: len(labels)] == labels
    assert len(axis["ticks"]) <= 7
    assert len({label.split()[-1] for label in axis["labels"][1:]}) == 1, "one unit per axis"


def test_the_threshold_comes_into_view_once_the_lag_nears_it():
    assert byte_axis(1 * MiB, threshold=16 * MiB)["top"] == 1 * MiB  # far below: real values
    near = byte_axis(5 * MiB, threshold=16 * MiB)
    assert near["top"] == 16 * MiB and "16 MiB" in near["labels"]


def test_size_in_unit_is_exact():
    assert size_in_unit(768 * KiB, 2) == "0.75 MiB" and size_in_unit(0, 3) == "0"


def test_time_ticks_are_round_few_enough_and_date_the_first_tick_of_each_day():
    tz = ZoneInfo("UTC")
    end = int(datetime(2026, 12, 5, 3, 50, 36, tzinfo=UTC).timestamp())
    hour = time_axis(end - 3600, end, 6, tz)
    assert hour["labels"][0] == "03:00\n5 Dec"  # 02:50 is no tick: 15-minute steps
    assert hour["labels"][1:] == ["03:15", "03:30", "03:45"]
    day = time_axis(end - 86400, end, 6, tz)
    assert day["labels"] == ["06:00\n4 Dec", "12:00", "18:00", "00:00\n5 Dec"]
    for axis, width in ((hour, 6), (day, 6), (time_axis(end - 86400, end, 12, tz), 12)):
        assert 2 <= len(axis["ticks"]) <= width
        steps = {b - a for a, b in zip(axis["ticks"], axis["ticks"][1:], strict=False)}
        assert len(steps) == 1 and steps.pop() % 60 == 0
    narrow = time_axis(end - 3600, end, 2, tz)
    assert len(narrow["ticks"]) <= 2 and narrow["labels"][0].endswith("5 Dec")


def test_time_ticks_sit_on_the_local_clock():
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30: round hours there are half hours in UTC
    end = int(datetime(2026, 12, 5, 3, 50, tzinfo=UTC).timestamp())
    axis = time_axis(end - 86400, end, 6, kolkata)
    assert axis["labels"] == ["12:00\n4 Dec", "18:00", "00:00\n5 Dec", "06:00"]


def test_a_stretch_without_samples_becomes_a_gap_not_a_line_across_it():
    series = {"t": [0, 2, 4, 100, 102], "bytes": [[1, 2, 3, 4, 5]], "seconds": [[0.1] * 5]}
    gapped = with_gaps(series, 15)
    assert gapped["t"] == [0, 2, 4, 52, 100, 102]
    assert gapped["bytes"] == [[1, 2, 3, None, 4, 5]]
    assert gapped["seconds"][0][3] is None


@pytest.mark.django_db
def test_chart_data_marks_failovers_nulls_a_silent_node_and_spans_the_whole_range():
    cluster, nodes = three_node_cluster()
    now = timezone.now()
    for ago in range(20, 0, -2):  # every 2 s; node2 stops answering 10 s ago
        at = now - timedelta(seconds=ago)
        StatusSample.objects.create(node=nodes[0], at=at, up=True, role="primary", lag_bytes=0)
        silent = ago <= 10
        StatusSample.objects.create(
            node=nodes[1],
            at=at,
            up=not silent,
            role="replica",
            lag_bytes=None if silent else 40 * MiB,
            lag_seconds=None if silent else 1.0,
        )
    ClusterEvent.objects.create(
        cluster=cluster, kind="failover", at=now - timedelta(seconds=9), summary="node2 lost"
    )
    ClusterEvent.objects.create(  # not a change of primary: no marker
        cluster=cluster, kind="node_down", at=now - timedelta(seconds=9), summary="node2 down"
    )
    ClusterEvent.objects.create(  # before the range: no marker
        cluster=cluster, kind="switchover", at=now - timedelta(hours=2), summary="old"
    )
    data = chart_data(cluster, "1h", max_time_ticks=5)
    assert data["bytes"][1][-5:] == [None] * 5 and data["bytes"][1][0] == 40 * MiB
    assert [(e["kind"], e["summary"]) for e in data["events"]] == [("failover", "node2 lost")]
    assert data["from"] <= data["events"][0]["t"] <= data["to"]
    assert data["to"] - data["from"] == 3600 and data["to"] >= data["t"][-1]
    assert data["threshold_bytes"] == 16 * MiB and data["y"]["top"] == 40 * MiB
    assert len(data["x"]["ticks"]) <= 5


@pytest.mark.django_db
def test_lag_series_takes_the_threshold_from_the_monitors_setting(settings):
    settings.LAG_ALERT_BYTES = 4 * MiB
    cluster, _nodes = three_node_cluster()
    series = lag_series(cluster, "1h")
    assert series["threshold_bytes"] == 4 * MiB and series["events"] == []
    assert chart_data(cluster, "1h")["threshold_label"] == "alert threshold 4 MiB"


def test_sparklines_share_one_log_scale_so_70_kib_and_500_kib_differ():
    assert sparkline_y(0) == sparkline_y(1024) == 26.0 and sparkline_y(GiB) == 2.0
    assert sparkline_y(70 * KiB) - sparkline_y(500 * KiB) >= 3  # px apart, on every card
    svg = sparkline_svg([70 * KiB, 80 * KiB], "lag of node2", threshold=16 * MiB)
    assert "log scale, 1 KiB to 1 GiB" in svg and "alert threshold 16 MiB" in svg
    assert '<line class="spark-threshold"' in svg
