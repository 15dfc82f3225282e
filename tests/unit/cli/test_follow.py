"""`hacenter logs JOB --follow`: lines as they come, through brief outages, exit by outcome."""

import json
import threading

import pytest

from hacenter_cli import commands
from hacenter_cli.main import main
from tests.unit.cli.fake_console import TOKEN


class Job:
    """A job whose log grows while the CLI polls it; the test releases lines one by one."""

    def __init__(self, status: str) -> None:
        self.lines: list[dict] = []
        self.status, self.final = "running", status
        self.polled = threading.Event()

    def add(self, text: str) -> None:
        seq = len(self.lines) + 1
        self.lines.append(
            {
                "seq": seq,
                "ts": f"2026-12-05T01:00:0{seq}Z",
                "stream": "stdout",
                "host": "node1",
                "text": text,
            }
        )

    def log(self, query):
        after = int(query["after"][0])
        new = [ln for ln in self.lines if ln["seq"] > after]
        self.polled.set()
        done = self.status != "running" and not new[1:]
        return 200, {"lines": new[:1], "next": new[0]["seq"] if new else after, "done": done}


@pytest.mark.parametrize(
    ("status", "code"),
    [("succeeded", 0), ("failed", 1), ("canceled", 1), ("lost", 1), ("errored", 1)],
)
def test_follow_prints_lines_as_they_come_and_exits_with_the_jobs_status(
    console, capsys, status, code
):
    job = Job(status)
    console.on("GET", "/jobs/12/log/", job.log)
    console.on("GET", "/jobs/12/", lambda q: (200, {"id": 12, "status": job.status, "error": ""}))
    result = {}
    follower = threading.Thread(
        target=lambda: result.setdefault(
            "code", main(["logs", "12", "-f", "--interval", "0.02"], console.env())
        )
    )
    follower.start()
    for text in ("first", "second", "third"):
        job.polled.clear()
        job.add(text)
        assert job.polled.wait(5)
        job.polled.clear()
        assert job.polled.wait(5)  # a poll after the line was served
    assert follower.is_alive()  # the job runs: still following
    job.status = job.final
    follower.join(10)
    assert result["code"] == code
    out, err = capsys.readouterr()
    assert [line.split()[-1] for line in out.splitlines()] == ["first", "second", "third"]
    assert err == f"job 12 {status}\n"
    afters = [int(s.query["after"][0]) for s in console.seen if s.path.endswith("/log/")]
    assert afters == sorted(afters) and afters[-1] == 3  # the cursor only moves forward


def test_follow_with_json_prints_each_line_object(console, capsys):
    job = Job("succeeded")
    job.add("only")
    job.status = "succeeded"
    console.on("GET", "/jobs/3/log/", job.log)
    console.on("GET", "/jobs/3/", (200, {"id": 3, "status": "succeeded"}))
    assert main(["logs", "3", "--follow", "--json"], console.env()) == 0
    out = capsys.readouterr().out
    assert [json.loads(line) for line in out.splitlines()] == job.lines


def test_follow_keeps_going_through_a_brief_outage(console, capsys, monkeypatch):
    answers = iter([(503, {"error": "restarting"}), (502, b"<html>bad gateway</html>")])

    def log(query):
        return next(answers, (200, {"lines": [], "next": 0, "done": True}))

    console.on("GET", "/jobs/4/log/", log)
    console.on("GET", "/jobs/4/", (200, {"id": 4, "status": "succeeded"}))
    assert main(["logs", "4", "-f", "--interval", "0.01"], console.env()) == 0
    err = capsys.readouterr().err
    assert "answered 503 restarting; retrying for 60 s" in err
    assert err.count("retrying") == 1


def test_follow_gives_up_after_a_long_outage_with_exit_5(console, capsys, monkeypatch):
    monkeypatch.setattr(commands, "FOLLOW_RETRY_S", 0.1)
    console.on("GET", "/jobs/4/log/", (503, {"error": "down"}))
    assert main(["logs", "4", "-f", "--interval", "0.02"], console.env()) == 5


def test_follow_of_a_missing_job_exits_3_at_once(console, capsys):
    assert main(["logs", "99", "--follow"], console.env()) == 3
    assert len(console.seen) == 1
    assert TOKEN not in capsys.readouterr().err
