"""`hacenter`'s commands against a fake console on loopback: what they ask, print and exit with."""

import json

import pytest

from hacenter_cli.main import main
from tests.unit.cli.fake_console import TOKEN

CLUSTERS = [
    {"id": 1, "name": "pg1", "state": "healthy", "primary": "node1"},
    {"id": 7, "name": "orders", "state": "degraded", "primary": None},
]


def node(name, address, kind="database", role="replica", **status):
    return {
        "name": name,
        "address": address,
        "ssh_port": 22,
        "kind": kind,
        "credential": 1,
        "host_key_fingerprint": "SHA256:x",
        "role": role,
        "state": status.get("state", "streaming"),
        "timeline": status.get("timeline"),
        "lag_bytes": status.get("lag_bytes"),
        "lag_seconds": status.get("lag_seconds"),
        "last_seen": status.get("last_seen"),
    }


DETAIL = {
    **CLUSTERS[0],
    "maintenance": False,
    "nodes": [
        node(
            "node1",
            "198.18.0.11",
            role="primary",
            state="running",
            timeline=3,
            lag_bytes=0,
            lag_seconds=0.0,
            last_seen="2026-12-05T01:40:02.123Z",
        ),
        node(
            "node2",
            "198.18.0.12",
            timeline=3,
            lag_bytes=4096,
            lag_seconds=0.5,
            last_seen="2026-12-05T01:40:01+00:00",
        ),
        node("proxy", "198.18.0.10", kind="proxy", role="unknown", state="unknown"),
    ],
    "proxy": {
        "address": "198.18.0.10",
        "endpoints": {"rw": "198.18.0.10:5432", "ro": "198.18.0.10:5433"},
        "backends": [
            {
                "frontend": "rw",
                "backend": "primary",
                "node": "node1",
                "status": "UP",
                "haproxy_status": "UP",
                "serving": True,
            },
            {
                "frontend": "ro",
                "backend": "be_replicas",
                "node": "node2",
                "status": "UP",
                "haproxy_status": "UP",
                "serving": True,
            },
        ],
    },
}


def run(console, capsys, *argv, **env):
    code = main(list(argv), console.env(**env))
    out, err = capsys.readouterr()
    assert TOKEN not in out and TOKEN not in err
    return code, out, err


def test_clusters_prints_a_table_and_sends_the_token(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    code, out, _ = run(console, capsys, "clusters")
    assert code == 0
    assert out.splitlines() == [
        "NAME    STATE     PRIMARY",
        "pg1     healthy   node1",
        "orders  degraded  -",
    ]
    assert console.seen[0].headers["Authorization"] == f"Token {TOKEN}"


def test_json_is_the_api_answer_as_is(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    console.on("GET", "/clusters/1/", (200, DETAIL))
    assert json.loads(run(console, capsys, "clusters", "--json")[1]) == CLUSTERS
    assert json.loads(run(console, capsys, "status", "pg1", "--json")[1]) == DETAIL


def test_status_shows_members_like_patronictl_and_the_proxy_routes(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    console.on("GET", "/clusters/1/", (200, DETAIL))
    code, out, _ = run(console, capsys, "status", "1")  # by id as well as by name
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("+ Cluster: pg1 (healthy) -")
    box = lines[:7]
    assert len({len(line) for line in box}) == 1  # every row of the frame lines up
    assert box[2] == box[6] and set(box[2]) == {"+", "-"}
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in box if line.startswith("|")]
    assert cells == [
        ["Member", "Host", "Role", "State", "TL", "Lag bytes", "Lag s", "Last seen"],
        ["node1", "198.18.0.11", "primary", "running", "3", "0", "0", "2026-12-05 01:40:02Z"],
        [
            "node2",
            "198.18.0.12",
            "replica",
            "streaming",
            "3",
            "4096",
            "0.5",
            "2026-12-05 01:40:01Z",
        ],
        ["proxy", "198.18.0.10", "proxy", "unknown", "-", "-", "-", "-"],
    ]
    assert "Proxy 198.18.0.10: read-write 198.18.0.10:5432, read-only 198.18.0.10:5433" in lines
    assert "rw        primary      node1  UP      yes" in lines
    assert "ro        be_replicas  node2  UP      yes" in lines


def test_status_says_when_routes_are_not_read_yet_and_maintenance(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    detail = {**DETAIL, "maintenance": True, "proxy": {**DETAIL["proxy"], "backends": []}}
    console.on("GET", "/clusters/1/", (200, detail))
    out = run(console, capsys, "status", "pg1")[1]
    assert "Maintenance mode: on" in out
    assert "Routes: not read yet" in out


def test_an_unknown_cluster_exits_3_naming_the_known_ones(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    code, out, err = run(console, capsys, "status", "nope")
    assert (code, out) == (3, "")
    assert "no cluster 'nope' (clusters: orders, pg1)" in err


def test_events_sends_filters_and_prints_newest_first_with_the_next_cursor(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    page = {
        "events": [
            {
                "id": 9,
                "at": "2026-12-05T01:00:00+00:00",
                "kind": "switchover",
                "severity": "info",
                "node": None,
                "summary": "node2 is primary",
            },
        ],
        "next": "abc",
    }
    console.on("GET", "/clusters/7/events/", (200, page))
    code, out, err = run(
        console,
        capsys,
        "events",
        "orders",
        "--kind",
        "failover",
        "--kind",
        "switchover",
        "--severity",
        "critical",
        "--limit",
        "5",
        "--since",
        "2026-01-01",
    )
    assert code == 0
    query = console.seen[-1].query
    assert query == {
        "kind": ["failover,switchover"],
        "severity": ["critical"],
        "limit": ["5"],
        "since": ["2026-01-01"],
    }
    assert out.splitlines()[1].split() == [
        "2026-12-05",
        "01:00:00Z",
        "info",
        "switchover",
        "-",
        "node2",
        "is",
        "primary",
    ]
    assert "hacenter events orders --cursor abc" in err


def test_events_with_a_bad_filter_prints_the_apis_field_errors_and_exits_4(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    refusal = {"error": "Bad filter.", "field_errors": {"kind": ["Unknown kind: nope."]}}
    console.on("GET", "/clusters/1/events/", (400, refusal))
    code, out, err = run(console, capsys, "events", "pg1", "--kind", "nope")
    assert (code, out) == (4, "")
    assert err.splitlines() == ["hacenter: Bad filter.", "  kind: Unknown kind: nope."]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["events", "pg1", "--limit", "0"],
        ["logs", "abc"],
        ["logs", "0"],
        ["status"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2_without_asking_the_console(console, capsys, argv):
    with pytest.raises(SystemExit) as exited:
        main(argv, console.env())
    assert exited.value.code == 2
    assert console.seen == []


def test_switchover_starts_the_job_and_prints_how_to_follow_it(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    console.on("POST", "/clusters/1/jobs/", (202, {"id": 42, "url": "/api/v1/jobs/42/"}))
    code, out, _ = run(console, capsys, "switchover", "pg1", "--to", "node2")
    assert code == 0
    assert console.seen[-1].body == {"kind": "switchover", "node": "node2"}
    assert out == "job 42 started: switchover on pg1 (follow it: hacenter logs 42 --follow)\n"
    code, out, _ = run(console, capsys, "switchover", "pg1", "--json")
    assert json.loads(out) == {"id": 42, "url": "/api/v1/jobs/42/"}


def test_a_refused_switchover_exits_4_with_the_apis_message(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    refusal = {
        "error": "orders is degraded; a switchover needs a healthy cluster",
        "field_errors": {},
    }
    console.on("POST", "/clusters/7/jobs/", (400, refusal))
    code, _, err = run(console, capsys, "switchover", "orders")
    assert code == 4
    assert err == "hacenter: orders is degraded; a switchover needs a healthy cluster\n"


def test_rebuild_names_the_node_and_a_full_copy(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    console.on("POST", "/clusters/1/jobs/", (202, {"id": 5, "url": "/api/v1/jobs/5/"}))
    assert run(console, capsys, "rebuild", "pg1", "node2", "--full-copy")[0] == 0
    assert console.seen[-1].body == {"kind": "rebuild", "node": "node2", "full_copy": True}
    assert run(console, capsys, "rebuild", "pg1", "node2", "--full-copy", "--from-primary")[0] == 0
    assert console.seen[-1].body["copy_from"] == "primary"


def test_rebuild_waits_for_the_job_and_exits_with_its_outcome(console, capsys):
    console.on("GET", "/clusters/", (200, CLUSTERS))
    console.on("POST", "/clusters/1/jobs/", (202, {"id": 5, "url": "/api/v1/jobs/5/"}))
    line = {
        "seq": 1,
        "ts": "2026-12-05T01:00:00Z",
        "stream": "console",
        "host": "node2",
        "text": "pg_rewind: no rewind required",
    }
    console.on("GET", "/jobs/5/log/", (200, {"lines": [line], "next": 1, "done": True}))
    console.on("GET", "/jobs/5/", (200, {"id": 5, "status": "failed", "error": "no standby"}))
    code, out, err = run(console, capsys, "rebuild", "pg1", "node2", "--wait")
    assert code == 1
    assert out == "01:00:00 node2     pg_rewind: no rewind required\n"
    assert "job 5 failed: no standby" in err
    code, out, err = run(console, capsys, "rebuild", "pg1", "node2", "--wait", "--json")
    assert code == 1 and json.loads(out) == {"id": 5, "status": "failed", "error": "no standby"}


def test_jobs_lists_a_clusters_jobs_or_every_ones_with_filters(console, capsys):
    job = {
        "id": 9,
        "kind": "rebuild",
        "cluster": 1,
        "cluster_name": "pg1",
        "node": "node1",
        "status": "failed",
        "created": "2026-12-05T01:00:00Z",
        "finished": "2026-12-05T01:02:00Z",
    }
    console.on("GET", "/clusters/", (200, CLUSTERS))
    console.on("GET", "/clusters/1/jobs/", (200, {"jobs": [job], "next": "abc"}))
    code, out, err = run(console, capsys, "jobs", "pg1", "--status", "failed", "--limit", "1")
    assert code == 0
    assert console.seen[-1].query == {"status": ["failed"], "limit": ["1"]}
    assert out.splitlines()[1].split()[:5] == ["9", "pg1", "rebuild", "node1", "failed"]
    assert err == "more: hacenter jobs pg1 --cursor abc\n"
    console.on("GET", "/jobs/", (200, {"jobs": [job], "next": None}))
    code, out, err = run(console, capsys, "jobs", "--kind", "rebuild", "--kind", "setup", "--json")
    assert code == 0 and err == ""
    assert console.seen[-1].query == {"kind": ["rebuild,setup"]}
    assert json.loads(out) == {"jobs": [job], "next": None}


def test_job_shows_its_steps_and_a_missing_job_exits_3(console, capsys):
    detail = {
        "id": 3,
        "kind": "preflight",
        "cluster": 1,
        "node": None,
        "status": "failed",
        "error": "a check failed",
        "steps": [
            {
                "position": 0,
                "name": "SSH login",
                "node": "node1",
                "status": "failed",
                "summary": "host key changed",
            }
        ],
    }
    console.on("GET", "/jobs/3/", (200, detail))
    code, out, _ = run(console, capsys, "job", "3")
    assert code == 0
    assert out.splitlines()[0] == "job 3: preflight (cluster 1), failed: a check failed"
    assert out.splitlines()[2].split() == [
        "0",
        "SSH",
        "login",
        "node1",
        "failed",
        "host",
        "key",
        "changed",
    ]
    code, _, err = run(console, capsys, "job", "4")
    assert code == 3 and err == "hacenter: Not found.\n"


def test_logs_without_follow_pages_through_what_is_there(console, capsys):
    def page(query):
        after = int(query["after"][0])
        lines = [
            {
                "seq": s,
                "ts": "2026-12-05T01:00:00Z",
                "stream": "stdout",
                "host": "node1",
                "text": f"line {s}",
            }
            for s in range(after + 1, min(after + 2, 3) + 1)
        ]
        return 200, {"lines": lines, "next": lines[-1]["seq"] if lines else after, "done": False}

    console.on("GET", "/jobs/8/log/", page)
    code, out, _ = run(console, capsys, "logs", "8")
    assert code == 0
    assert [ln.split()[-1] for ln in out.splitlines()] == ["1", "2", "3"]
    assert [s.query["after"] for s in console.seen] == [["0"], ["2"], ["3"]]


def test_events_of_every_cluster_name_each_events_cluster(console, capsys):
    event = {
        "id": 1,
        "cluster": 7,
        "at": "2026-12-05T01:00:00Z",
        "severity": "critical",
        "kind": "failover",
        "node": None,
        "summary": "failover from node1 to node2",
    }
    console.on("GET", "/events/", (200, {"events": [event], "next": None}))
    console.on("GET", "/clusters/", (200, CLUSTERS))
    code, out, _ = run(console, capsys, "events", "--severity", "critical")
    assert code == 0
    assert console.seen[0].query == {"severity": ["critical"]}
    assert out.splitlines()[1].split()[2:5] == ["orders", "critical", "failover"]


def test_status_says_who_would_take_over_if_the_primary_failed_now(console, capsys):
    detail = {
        "name": "pg1",
        "state": "healthy",
        "nodes": [],
        "failover_outlook": [
            {"node": "node2", "verdict": "would_promote", "reasons": [], "bytes_at_risk": 0},
            {
                "node": "node3",
                "verdict": "refused",
                "reasons": ["it is fenced until rebuilt"],
                "bytes_at_risk": None,
            },
        ],
    }
    console.on("GET", "/clusters/", (200, CLUSTERS))
    console.on("GET", "/clusters/1/", (200, detail))
    out = run(console, capsys, "status", "pg1")[1]
    assert out.splitlines()[-3:] == [
        "If the primary failed now:",
        "  node2: Patroni would promote it, 0 bytes of acknowledged writes at risk",
        "  node3: would not take over (it is fenced until rebuilt)",
    ]
