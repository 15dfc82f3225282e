"""`hacenter incidents CLUSTER` against the fake console: the list, the open incident told
whole (timeline, next action), --json, and the API's refusals."""

import json

from tests.unit.cli.test_commands import CLUSTERS, run

OPEN = {
    "id": 12,
    "cluster": 7,
    "kind": "failover",
    "title": "failover from node1 to node2",
    "opened": "2026-12-05T01:00:05+00:00",
    "closed": None,
    "old_primary": "node1",
    "new_primary": "node2",
    "downtime_s": 21.4,
    "lost_bytes": 286856,
}
CLOSED = {
    **OPEN,
    "id": 3,
    "kind": "switchover",
    "title": "switchover from node2 to node1",
    "opened": "2026-12-01T09:00:00+00:00",
    "closed": "2026-12-01T09:02:30+00:00",
    "downtime_s": 1.2,
    "lost_bytes": 0,
}


def milestone(key, label, at=None, after=None, state="done", note=""):
    return {"key": key, "label": label, "at": at, "after_s": after, "state": state, "note": note}


STORY = {
    **OPEN,
    "timeline": [
        milestone("last_healthy", "node1 last seen healthy", "2026-12-05T01:00:00+00:00", 0.0),
        milestone(
            "promoted", "leader key expired, node2 promoted", "2026-12-05T01:00:19+00:00", 19
        ),
        milestone("old_back", "node1 back", state="not_yet"),
    ],
    "recommendation": {
        "code": "bring_back",
        "text": "Bring node1 back (power, network); it will rejoin by itself.",
        "node": "node1",
        "url": None,
        "job_kind": None,
    },
    "events": [],
}


def test_incidents_lists_newest_first_and_tells_the_open_one(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    console.on("GET", "/clusters/7/incidents/", (200, {"incidents": [OPEN, CLOSED], "next": "c2"}))
    console.on("GET", "/incidents/12/", (200, STORY))
    code, out, err = run(console, capsys, "incidents", "orders", "--limit", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["OPENED", "KIND", "TITLE", "DOWNTIME_S", "LOST_BYTES", "CLOSED"]
    assert "failover from node1 to node2" in lines[1] and lines[1].rstrip().endswith("open")
    assert "21.4" in lines[1] and "286856" in lines[1]
    assert "2026-12-01 09:02:30Z" in lines[2]
    promoted = next(line for line in lines if line.startswith("leader key expired"))
    assert promoted.split()[5:] == ["2026-12-05", "01:00:19Z", "+19", "s", "-"]
    assert "node1 back" in out and "not yet" in out
    assert out.rstrip().endswith(
        "next: Bring node1 back (power, network); it will rejoin by itself."
    )
    assert err.strip() == "more: hacenter incidents orders --cursor c2"
    asked = [s for s in console.seen if s.path.endswith("/incidents/")]
    assert asked[0].query == {"limit": ["2"]}


def test_incidents_json_is_the_page_with_the_open_story(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    console.on("GET", "/clusters/1/incidents/", (200, {"incidents": [CLOSED], "next": None}))
    code, out, _ = run(console, capsys, "incidents", "pg1", "--json")
    assert code == 0
    assert json.loads(out) == {"incidents": [CLOSED], "next": None, "open": None}


def test_incidents_of_an_unknown_cluster_exit_3_without_asking_for_incidents(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    code, out, err = run(console, capsys, "incidents", "nope")
    assert code == 3 and out == ""
    assert "no cluster 'nope'" in err
    assert not [s for s in console.seen if "incidents" in s.path]
