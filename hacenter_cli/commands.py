"""What each `hacenter` command asks the API and prints. Each returns the exit code."""

import sys
import time
from argparse import Namespace
from typing import Any

from hacenter_cli import render
from hacenter_cli.client import Api
from hacenter_cli.errors import CliError, Exit

# A job's terminal statuses (the API's JobStatus values) and the exit code each means.
JOB_EXIT = {
    "succeeded": Exit.OK,
    "failed": Exit.JOB_FAILED,
    "errored": Exit.JOB_FAILED,
    "canceled": Exit.JOB_FAILED,
    "lost": Exit.JOB_FAILED,
}
# While following a log, how long the console may stay unreachable (a restart, a deploy)
# before we give up: a setup runs for minutes and should not lose its follower to a blip.
FOLLOW_RETRY_S = 60


def find_cluster(api: Api, ref: str) -> dict[str, Any]:
    """The cluster's summary from the list, by name (first) or id."""
    clusters = api.get("/clusters/")
    for wanted in ("name", "id"):
        for found in clusters:
            if str(found.get(wanted)) == ref:
                return found
    names = ", ".join(sorted(str(c.get("name")) for c in clusters)) or "none"
    raise CliError(Exit.NOT_FOUND, f"no cluster {ref!r} (clusters: {names})")


def clusters(api: Api, args: Namespace) -> Exit:
    found = api.get("/clusters/")
    if args.json:
        render.emit_json(found)
    else:
        rows = [(c.get("name"), c.get("state"), c.get("primary")) for c in found]
        print(render.table(("name", "state", "primary"), rows))
    return Exit.OK


def status(api: Api, args: Namespace) -> Exit:
    detail = api.get(f"/clusters/{find_cluster(api, args.cluster)['id']}/")
    if args.json:
        render.emit_json(detail)
        return Exit.OK
    print(status_text(detail))
    return Exit.OK


def status_text(detail: dict[str, Any]) -> str:
    """The members as `patronictl list` shows them, then the proxy's endpoints and routes."""
    members = [
        (
            n.get("name"),
            n.get("address"),
            "proxy" if n.get("kind") == "proxy" else n.get("role"),
            n.get("state"),
            n.get("timeline"),
            n.get("lag_bytes"),
            n.get("lag_seconds"),
            render.when(n.get("last_seen")),
        )
        for n in detail.get("nodes", [])
    ]
    title = f"Cluster: {detail.get('name')} ({detail.get('state')})"
    headers = ("Member", "Host", "Role", "State", "TL", "Lag bytes", "Lag s", "Last seen")
    out = [render.boxed(title, headers, members)]
    if detail.get("maintenance"):
        out.append(" Maintenance mode: on (Patroni paused: no automatic failover)")
    proxy = detail.get("proxy") or {}
    endpoints = proxy.get("endpoints") or {}
    if endpoints:
        out.append(
            f"Proxy {proxy.get('address')}: read-write {endpoints.get('rw')}, "
            f"read-only {endpoints.get('ro')}"
        )
    backends = proxy.get("backends") or []
    if backends:
        rows = [
            (b.get("frontend"), b.get("backend"), b.get("node"), b.get("status"), b.get("serving"))
            for b in backends
        ]
        out.append(render.table(("frontend", "backend", "node", "status", "serving"), rows))
    elif endpoints:
        out.append("Routes: not read yet (the monitor has not read HAProxy's stats)")
    out += outlook_lines(detail.get("failover_outlook") or [])
    return "\n".join(out)


VERDICTS = {
    "would_promote": "Patroni would promote it",
    "eligible": "may take over",
    "refused": "would not take over",
    "unknown": "unknown",
}


def outlook_lines(outlook: list[dict[str, Any]]) -> list[str]:
    """ "If the primary failed now", one line per standby (older consoles send none)."""
    if not outlook:
        return []
    lines = ["If the primary failed now:"]
    for o in outlook:
        line = f"  {o.get('node')}: {VERDICTS.get(o.get('verdict'), o.get('verdict'))}"
        if o.get("reasons"):
            line += f" ({'; '.join(o['reasons'])})"
        if o.get("bytes_at_risk") is not None:
            line += f", {o['bytes_at_risk']} bytes of acknowledged writes at risk"
        lines.append(line)
    return lines


def events(api: Api, args: Namespace) -> Exit:
    """Events, newest first: of one cluster, or of every cluster."""
    query = {
        "kind": ",".join(args.kind) if args.kind else None,
        "severity": ",".join(args.severity) if args.severity else None,
        "since": args.since,
        "until": args.until,
        "limit": args.limit,
        "cursor": args.cursor,
    }
    page = listed(api, args, "events", query)
    if args.json:
        render.emit_json(page)
        return Exit.OK
    found = page.get("events", [])
    # Every cluster's events say whose each one is (one more request, for the names).
    names = (
        {}
        if args.cluster or not found
        else {c.get("id"): c.get("name") for c in api.get("/clusters/")}
    )
    headers = ("at", *(() if args.cluster else ("cluster",)), "severity", "kind", "node", "summary")
    rows = [
        (
            render.when(e.get("at")),
            *(() if args.cluster else (names.get(e.get("cluster"), e.get("cluster")),)),
            e.get("severity"),
            e.get("kind"),
            e.get("node"),
            e.get("summary"),
        )
        for e in found
    ]
    print(render.table(headers, rows))
    more_hint(args, "events", page)
    return Exit.OK


def listed(api: Api, args: Namespace, what: str, query: dict[str, Any]) -> dict[str, Any]:
    """One page of `what` (events, jobs): the named cluster's, or every cluster's."""
    if args.cluster:
        return api.get(f"/clusters/{find_cluster(api, args.cluster)['id']}/{what}/", query)
    return api.get(f"/{what}/", query)


def more_hint(args: Namespace, what: str, page: dict[str, Any]) -> None:
    """How to ask for the next page, on stderr (stdout stays the table)."""
    if page.get("next"):
        again = " ".join(filter(None, ("hacenter", what, args.cluster)))
        print(f"more: {again} --cursor {page['next']}", file=sys.stderr)


def incidents(api: Api, args: Namespace) -> Exit:
    """A cluster's incidents, newest first; an open one is then told whole: its timeline (each
    milestone's time and seconds since the fault), its measures and the next action."""
    cluster = find_cluster(api, args.cluster)
    page = api.get(
        f"/clusters/{cluster['id']}/incidents/", {"limit": args.limit, "cursor": args.cursor}
    )
    found = page.get("incidents", [])
    current = next((i for i in found if i.get("closed") is None), None)
    story = api.get(f"/incidents/{current['id']}/") if current else None
    if args.json:
        render.emit_json({**page, "open": story})
        return Exit.OK
    headers = ("opened", "kind", "title", "downtime_s", "lost_bytes", "closed")
    rows = [
        (
            render.when(i.get("opened")),
            i.get("kind"),
            i.get("title"),
            i.get("downtime_s"),
            i.get("lost_bytes"),
            render.when(i.get("closed")) if i.get("closed") else "open",
        )
        for i in found
    ]
    print(render.table(headers, rows))
    if story is not None:
        print(f"\nopen: {story.get('title')}")
        steps = [
            (
                m.get("label"),
                render.when(m.get("at")) if m.get("at") else m.get("state", "").replace("_", " "),
                f"+{m['after_s']:g} s" if m.get("after_s") is not None else None,
                m.get("note"),
            )
            for m in story.get("timeline", [])
        ]
        print(render.table(("milestone", "at", "after", "note"), steps))
        print(f"next: {story.get('recommendation', {}).get('text')}")
    more_hint(args, "incidents", page)
    return Exit.OK


def jobs(api: Api, args: Namespace) -> Exit:
    """Recent jobs, newest first: of one cluster, or of every cluster."""
    query = {
        "kind": ",".join(args.kind) if args.kind else None,
        "status": ",".join(args.status) if args.status else None,
        "limit": args.limit,
        "cursor": args.cursor,
    }
    page = listed(api, args, "jobs", query)
    if args.json:
        render.emit_json(page)
        return Exit.OK
    rows = [
        (
            j.get("id"),
            j.get("cluster_name"),
            j.get("kind"),
            j.get("node"),
            j.get("status"),
            render.when(j.get("created")),
            render.when(j.get("finished")),
        )
        for j in page.get("jobs", [])
    ]
    heading = ("id", "cluster", "kind", "node", "status", "created", "finished")
    print(render.table(heading, rows))
    more_hint(args, "jobs", page)
    return Exit.OK


def job(api: Api, args: Namespace) -> Exit:
    detail = api.get(f"/jobs/{args.job}/")
    if args.json:
        render.emit_json(detail)
        return Exit.OK
    print(job_text(detail))
    return Exit.OK


def job_text(detail: dict[str, Any]) -> str:
    node = f" on {detail['node']}" if detail.get("node") else ""
    head = (
        f"job {detail.get('id')}: {detail.get('kind')}{node} (cluster {detail.get('cluster')}), "
        f"{detail.get('status')}"
    )
    if detail.get("error"):
        head += f": {detail['error']}"
    rows = [
        (s.get("position"), s.get("name"), s.get("node"), s.get("status"), s.get("summary"))
        for s in detail.get("steps", [])
    ]
    return "\n".join([head, render.table(("#", "step", "node", "status", "verdict"), rows)])


def switchover(api: Api, args: Namespace) -> Exit:
    body = {"kind": "switchover", **({"node": args.to} if args.to else {})}
    return _start(api, args, body)


def rebuild(api: Api, args: Namespace) -> Exit:
    body = {"kind": "rebuild", "node": args.node, **({"full_copy": True} if args.full_copy else {})}
    if args.from_primary:
        body["copy_from"] = "primary"
    return _start(api, args, body)


def _start(api: Api, args: Namespace, body: dict[str, Any]) -> Exit:
    """Start the job; with --wait, follow it (text: its log; --json: silently, then its detail)
    and exit with its outcome."""
    cluster = find_cluster(api, args.cluster)
    started = api.post(f"/clusters/{cluster['id']}/jobs/", body)
    job_id = int(started["id"])
    if not args.wait:
        if args.json:
            render.emit_json(started)
        else:
            print(
                f"job {job_id} started: {body['kind']} on {cluster['name']} "
                f"(follow it: hacenter logs {job_id} --follow)"
            )
        return Exit.OK
    if not args.json:
        print(f"job {job_id} started: {body['kind']} on {cluster['name']}", file=sys.stderr)
    return follow(
        api,
        job_id,
        interval=args.interval,
        show=None if args.json else _print_line,
        final_json=args.json,
    )


def logs(api: Api, args: Namespace) -> Exit:
    show = _print_json_line if args.json else _print_line
    if args.follow:
        return follow(api, args.job, interval=args.interval, show=show)
    after = 0
    while True:
        page = api.get(f"/jobs/{args.job}/log/", {"after": after})
        for line in page.get("lines", []):
            show(line)
        if not page.get("lines") or page.get("done"):
            return Exit.OK
        after = page["next"]


def follow(
    api: Api, job_id: int, *, interval: float, show: Any = None, final_json: bool = False
) -> Exit:
    """Poll the log with its cursor, showing lines as they come, until the log is complete
    (the job ended and every line was read); then exit with the job's outcome."""
    patient = Patient(api, interval)
    after = 0
    while True:
        page = patient.get(f"/jobs/{job_id}/log/", {"after": after})
        lines = page.get("lines", [])
        for line in lines:
            if show:
                show(line)
        after = page.get("next", after)
        if page.get("done"):
            break
        if not lines:  # a full page means more is waiting: ask again at once
            time.sleep(interval)
    detail = patient.get(f"/jobs/{job_id}/")
    outcome = JOB_EXIT.get(detail.get("status"), Exit.JOB_FAILED)
    if final_json:
        render.emit_json(detail)
    else:
        error = f": {detail['error']}" if detail.get("error") else ""
        print(f"job {job_id} {detail.get('status')}{error}", file=sys.stderr)
    return outcome


class Patient:
    """GETs that ride out a console briefly unreachable (a restart, a deploy) for up to
    FOLLOW_RETRY_S, saying so once; any other error, or a longer outage, is raised."""

    def __init__(self, api: Api, interval: float) -> None:
        self.api, self.interval = api, interval
        self.since: float | None = None  # when the console stopped answering

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        while True:
            try:
                answer = self.api.get(path, query)
            except CliError as exc:
                now = time.monotonic()
                if exc.code != Exit.UNREACHABLE:
                    raise
                if self.since is None:
                    self.since = now
                    print(
                        f"hacenter: {exc.message}; retrying for {FOLLOW_RETRY_S} s",
                        file=sys.stderr,
                    )
                elif now - self.since > FOLLOW_RETRY_S:
                    raise
                time.sleep(self.interval)
                continue
            self.since = None
            return answer


def _print_line(line: dict[str, Any]) -> None:
    print(render.log_line(line), flush=True)


def _print_json_line(line: dict[str, Any]) -> None:
    render.emit_json(line, lines=True)
