"""The dashboard's cluster cards as HTML, drawn in Python rather than in a template.

The dashboard redraws every card every 3 s. At 200 clusters, Django's template language spent
about 60 ms of CPU on the cards alone, and so did `format_html` (its lazy-string checks on
every argument), where the refresh's goal is 100 ms at p95 (bench/dashboard.py). These
functions write the same markup with f-strings: every value from the database goes through
`_e` (html.escape, as Django's own escape does); only the markup of the console's own
helpers (badge, times, sparkline, all built with format_html) is put in as it is.

Also the dashboard's other parts drawn with them: the dense rows view (one table row per
cluster), the strip of counts by state with the tab's title and favicon, and the refresh's
versions (`Drawing`, `changed_parts`: the 3-second poll gets only the cards that changed).
"""

import re
from dataclasses import dataclass
from datetime import datetime
from hashlib import blake2b
from html import escape
from urllib.parse import urlencode

from django.core.cache import cache
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone

from clusters.templatetags.hacenter_ui import ago, lag, sparkline, state_badge
from clusters.web.selectors import NEEDS_SOMEONE, TRIAGE_STATES


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def cluster_card(c: dict) -> str:
    """One cluster: its name and state, then what a new or provisioning cluster needs next,
    or the facts of a running one."""
    url, name, pk, state = _e(c["url"]), _e(c["name"]), int(c["pk"]), _e(c["state"])
    if c["state"] == "new":
        body = (
            f'<p class="empty">Defined, not set up yet. <a href="{url}">Open it</a> to run '
            "preflight and setup.</p>"
        )
    elif c["state"] == "provisioning":
        body = f'<p class="empty">Setup is running: <a href="{url}">follow its job</a>.</p>'
    else:
        body = _facts(c)
    return (
        f'<article id="cluster-{pk}" class="cluster-card card card-{state}" data-cluster="{name}" '
        f'aria-labelledby="card-{pk}">\n'
        f'    <header><h2 id="card-{pk}"><a href="{url}">{name}</a></h2>'
        f"{state_badge(c['state'], c['state_label'])}</header>\n"
        f"    {body}\n  </article>"
    )


def _facts(c: dict) -> str:
    unknown = c["state"] == "unknown"
    primary = _primary(c)
    standbys = "".join(_standby(s, unknown) for s in c["standbys"]) or (
        '<li class="error-text">none: no standby to fail over to</li>'
    )
    event = "none yet"
    if c.get("incident"):  # one story rather than its latest line
        event = (
            f'<span class="status status-critical">Incident: {_e(c["incident"])}</span> '
            f"<small>{ago(c['incident_at'])}</small>"
        )
    elif c["event"]:
        event = (
            f'<span class="status status-{_e(c["event_severity"])}">{_e(c["event"])}</span> '
            f"<small>{ago(c['event_at'])}</small>"
        )
    why = ""
    if c["reason"]:
        why = f'      <dt>Why</dt><dd class="reason">{_e(c["reason"])}</dd>\n'
    proxy = _proxy(c["proxy_writes_to"], c["proxy_known"])
    if unknown and not c["proxy_writes_to"]:
        proxy = '<span class="empty">unknown</span>'
    if unknown and c["state_since"]:
        observed = f"no answer since {ago(c['state_since'])}"
    else:
        observed = _observed(c["last_checked"])
    return (
        '<dl class="facts">\n'
        f"{why}"
        f'      <dt>Primary</dt><dd class="primary">{primary}</dd>\n'
        f'      <dt>Standbys</dt><dd><ul class="standbys">{standbys}</ul></dd>\n'
        f"      <dt>Proxy</dt><dd>{proxy}</dd>\n"
        f"      <dt>Last event</dt><dd>{event}</dd>\n"
        f"      <dt>Observed</dt><dd>{observed}</dd>\n"
        "    </dl>"
    )


# The monitor reads every cluster every few seconds: a reading this fresh is "just now". Its exact
# time would make every card differ from the one drawn 3 s before, and the refresh sends only
# the cards that differ (changed_parts).
OBSERVED_FRESH_S = 10


def _observed(when: datetime | None) -> str:
    """When the monitor last read the cluster: "just now" while fresh, else how long ago."""
    if when is not None and (timezone.now() - when).total_seconds() < OBSERVED_FRESH_S:
        return '<span title="the monitor reads every few seconds">just now</span>'
    return ago(when)


def _primary(c: dict) -> str:
    """The primary's name; while the cluster is unknown, the last one known (nobody answered:
    that is not "no primary", the console may be the one cut off)."""
    if c["primary"]:
        primary = f"<strong>{_e(c['primary'])}</strong>"
    elif c["state"] == "unknown":
        last = f" (last known: {_e(c['last_leader'])})" if c["last_leader"] else ""
        primary = f'<span class="empty">unknown{last}</span>'
    else:
        primary = '<span class="error-text">none</span>'
    if c["maintenance"]:
        primary += ' <span class="status status-warning">maintenance: no automatic failover</span>'
    return primary


def _standby(s: dict, unknown: bool = False) -> str:
    """A standby: fenced, not answering, or its state and lag; then its lag sparkline. While
    the cluster is unknown, a silent node is "no answer", not "down": the console may be the
    one cut off."""
    if s["fenced"]:
        state = '<strong class="error-text">fenced</strong>'
    elif unknown and s["role"] == "unknown":
        state = '<span class="empty">no answer</span>'
    elif s["role"] == "unknown":
        state = f'<span class="status status-failed">✖ {_e(s["state"] or "not answering")}</span>'
    else:
        state = (
            f'<span class="node-state">{_e(s["state"] or "—")}</span> '
            f'<span class="lag">{_e(lag(s["lag_bytes"], s["lag_seconds"]))}</span>'
        )
    name = _e(s["node__name"])
    return (
        f'\n        <li data-node="{name}"><span class="node-name">{name}</span>\n'
        f"          {state}\n          {sparkline(s['history'], s['node__name'])}</li>"
    )


def _proxy(writes_to: list[str], known: bool) -> str:
    """Where HAProxy sends writes: one node is right; two, or none while it reports, is not."""
    if len(writes_to) == 1:
        return f"writes → {_e(writes_to[0])}"
    if writes_to:
        return f'<strong class="error-text">writes → {_e(" and ".join(writes_to))}</strong>'
    if known:
        return '<strong class="error-text">no write backend up</strong>'
    return "—"


# The dense view: one table row per cluster, the same facts as the card without the sparklines.
ROWS_HEAD = (
    '<thead><tr><th scope="col">Cluster</th><th scope="col">State</th><th scope="col">Why</th>'
    '<th scope="col">Since</th><th scope="col">Primary</th><th scope="col">Standbys</th>'
    '<th scope="col">Proxy</th><th scope="col">Last event</th></tr></thead>'
)


def cluster_row(c: dict) -> str:
    """One cluster as a table row: name, state, its first reason, since when, primary, standbys
    with lag, where the proxy sends writes, the last event. On a phone the row stacks into a
    card (table.stack, data-label)."""
    url, name, pk, state = _e(c["url"]), _e(c["name"]), int(c["pk"]), _e(c["state"])
    setup = c["state"] in ("new", "provisioning")
    unknown = c["state"] == "unknown"
    standbys = ", ".join(_standby_cell(s, unknown) for s in c["standbys"])
    if not standbys and not setup:
        standbys = '<span class="error-text">none</span>'
    proxy = "" if setup else _proxy(c["proxy_writes_to"], c["proxy_known"])
    if unknown and not c["proxy_writes_to"]:
        proxy = '<span class="empty">unknown</span>'
    reason = _e(c["reason"]) if c["reason"] else ""
    since = ago(c["state_since"]) if c["state_since"] else ""
    if c["state"] == "new":
        reason = "Defined, not set up yet."
    elif c["state"] == "provisioning":
        reason = "Setup is running."
    return (
        f'<tr id="row-{pk}" class="row-{state}" data-cluster="{name}">'
        f'<td class="card-title" data-label="Cluster"><a href="{url}">{name}</a></td>'
        f'<td data-label="State">{state_badge(c["state"], c["state_label"])}</td>'
        f'<td class="reason" data-label="Why">{reason}</td>'
        f'<td class="since" data-label="Since">{since}</td>'
        f'<td class="primary" data-label="Primary">{"" if setup else _primary(c)}</td>'
        f'<td data-label="Standbys">{standbys}</td>'
        f'<td data-label="Proxy">{proxy}</td>'
        f'<td data-label="Last event">{_last_event(c)}</td></tr>'
    )


def _standby_cell(s: dict, unknown: bool) -> str:
    """A standby in a row: its name and lag, or why there is none."""
    name = f'<span class="node-name">{_e(s["node__name"])}</span>'
    if s["fenced"]:
        return f'{name} <strong class="error-text">fenced</strong>'
    if s["role"] == "unknown":
        if unknown:
            return f'{name} <span class="empty">no answer</span>'
        return f'{name} <span class="status status-failed">✖ {_e(s["state"] or "down")}</span>'
    return f'{name} <span class="lag">{_e(lag(s["lag_bytes"], s["lag_seconds"]))}</span>'


def _last_event(c: dict) -> str:
    """The cluster's last event and when, for a row."""
    if not c["event"]:
        return ""
    return (
        f'<span class="status status-{_e(c["event_severity"])}">{_e(c["event"])}</span> '
        f"<small>{ago(c['event_at'])}</small>"
    )


# --- Triage: the counts by state, the tab title and the favicon ---------------------------------

VIEWS = ("cards", "rows")


def state_words(state: str) -> str:
    """A state in the words of the counts and the title: "failing over"."""
    return state.replace("_", " ")


def triage_counts(rows: list[dict]) -> dict[str, int]:
    """How many clusters are in each state, every state present (zero too), most urgent first."""
    counts = dict.fromkeys(TRIAGE_STATES, 0)
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return counts


def triage_title(counts: dict[str, int]) -> str:
    """The tab's title before " · HA Center": the clusters that need someone, "2 down · 1
    degraded", so a tab in the background tells the on-call operator; else "All healthy"."""
    parts = [f"{counts[s]} {state_words(s)}" for s in NEEDS_SOMEONE if counts.get(s)]
    if parts:
        return " · ".join(parts)
    return "All healthy" if any(counts.values()) else "Clusters"


def triage_favicon(counts: dict[str, int]) -> str:
    """The favicon's static file: a red dot for an outage or an election, a yellow one for
    trouble that still takes writes or a cluster the console cannot read."""
    if counts.get("down") or counts.get("failing_over"):
        return "favicon-down.svg"
    if any(counts.get(s) for s in NEEDS_SOMEONE):
        return "favicon-warn.svg"
    return "favicon.svg"


def dashboard_url(*, state: str = "", q: str = "", view: str = "", **more: str) -> str:
    """The dashboard's address with its filters, only those that are set."""
    given = {"state": state, "q": q, "view": view, **more}
    query = urlencode({name: value for name, value in given.items() if value})
    return f"{reverse('cluster-list')}?{query}" if query else reverse("cluster-list")


def count_strip(counts: dict[str, int], *, state: str, q: str, view: str) -> str:
    """The strip of counts by state at the top of the dashboard. Each count is a link that
    filters the dashboard to that state (a plain link without script; htmx swaps the dashboard
    in place); a count of zero is dim. Carries the tab title and favicon for static/dashboard.js."""
    title = f"{triage_title(counts)} · HA Center"
    every = sum(counts.values())
    links = [_count_link("", "in all", every, state == "", q=q, view=view)]
    links += [
        _count_link(s, state_words(s), n, state == s, q=q, view=view) for s, n in counts.items()
    ]
    return (
        f'<nav id="triage-counts" class="triage-counts" aria-label="Clusters by state" '
        f'data-title="{_e(title)}" data-favicon="{_e(static(triage_favicon(counts)))}" '
        'hx-target="#triage" hx-swap="outerHTML" hx-push-url="true">'
        f"{''.join(links)}</nav>"
    )


def _count_link(state: str, words: str, count: int, active: bool, *, q: str, view: str) -> str:
    url = _e(dashboard_url(state=state, q=q, view=view))
    classes = f"count count-{state or 'all'}" + (" count-zero" if not count else "")
    current = ' aria-current="true"' if active else ""
    return (
        f'<a class="{classes}" href="{url}" hx-get="{url}"{current} data-state="{state}">'
        f"<strong>{count}</strong> {_e(words)}</a>"
    )


def dashboard_list(rows: list[dict], *, view: str, state: str, q: str) -> tuple[str, dict]:
    """The clusters shown, as cards or table rows: the list's HTML and each item's HTML by its
    element id (what the refresh compares)."""
    if view == "rows":
        items = {f"row-{r['pk']}": cluster_row(r) for r in rows}
    else:
        items = {f"cluster-{r['pk']}": cluster_card(r) for r in rows}
    if not items:
        what = f"in state {state_words(state)}" if state else ""
        what += f" matching “{_e(q)}”" if q else ""
        return f'<p id="dashboard-list" class="empty">No cluster {what.strip()}.</p>', items
    body = "\n".join(items.values())
    if view == "rows":
        html = (
            '<div class="table-scroll"><table id="dashboard-list" class="cluster-rows stack">'
            f"{ROWS_HEAD}<tbody>\n{body}\n</tbody></table></div>"
        )
    else:
        html = f'<div id="dashboard-list" class="cards">\n{body}\n</div>'
    return html, items


# --- The refresh: only what changed --------------------------------------------------------------
# The dashboard's poll carries the version of what the browser shows (`v`, a hash of the strip
# and of every card or row, in order). Nothing changed: 204 and no body. Some cards changed: the
# new ones alone, swapped in by id (hx-swap-oob), with the strip if its counts moved. The order
# or the set changed, or the old version is unknown here (expired, or another process drew it):
# the whole list. The versions a browser was given are kept in the cache for REFRESH_TTL_S.

REFRESH_TTL_S = 300
TOKEN = re.compile(r"[0-9a-f]{16}")


def version(html: str) -> str:
    """A short fingerprint of some HTML (not a secret: it only tells drawings apart)."""
    return blake2b(html.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class Drawing:
    """One drawing of the dashboard as the refresh compares it: the strip of counts and each
    card or row by its element id (in the order shown), each with its version, and the version
    of the whole (`token`: the view, the strip and every item, in order)."""

    strip: str
    items: dict[str, str]
    strip_version: str
    versions: dict[str, str]
    token: str

    @classmethod
    def of(cls, view: str, strip: str, items: dict[str, str]) -> "Drawing":
        """The drawing with its versions, each computed once."""
        versions = {key: version(html) for key, html in items.items()}
        strip_version = version(strip)
        whole = [view, strip_version, *(f"{key}={v}" for key, v in versions.items())]
        return cls(strip, items, strip_version, versions, version("\n".join(whole)))


def remember(drawing: Drawing) -> None:
    """Keep what a browser is now shown, so its next poll can get only what differs."""
    kept = (drawing.strip_version, drawing.versions)
    cache.set(f"hacenter:dashboard:{drawing.token}", kept, REFRESH_TTL_S)


def still_remembered(token: str) -> bool:
    """Whether the drawing `token` is in the cache, kept there for another REFRESH_TTL_S (a
    dashboard that does not change keeps its version, and must still diff when it does)."""
    key = f"hacenter:dashboard:{token}"
    return bool(TOKEN.fullmatch(token)) and cache.touch(key, REFRESH_TTL_S)


def changed_parts(old_token: str, drawing: Drawing) -> list[str] | None:
    """What to send a browser that shows the drawing `old_token`: the changed strip and items,
    each marked to be swapped in by id; None when the whole list must go (the old drawing is
    unknown here, or the order or set of clusters changed)."""
    old = cache.get(f"hacenter:dashboard:{old_token}") if TOKEN.fullmatch(old_token) else None
    if old is None:
        return None
    old_strip, old_versions = old
    if list(old_versions) != list(drawing.versions):
        return None
    parts = [oob(drawing.strip)] if old_strip != drawing.strip_version else []
    changed = [
        oob(drawing.items[key]) for key, v in drawing.versions.items() if old_versions[key] != v
    ]
    if changed and next(iter(drawing.items)).startswith("row-"):
        # A <tr> cannot stand alone in a fragment: htmx swaps it out of a <template>.
        changed = ["<template>", *changed, "</template>"]
    return parts + changed


def oob(html: str) -> str:
    """The element, marked for htmx to swap in place of the element with the same id."""
    return re.sub(r"^\s*<([a-z]+)", r'<\1 hx-swap-oob="true"', html, count=1)


def poller(*, token: str, state: str, q: str, view: str, shown: int, total: int) -> str:
    """The line that says when the dashboard was drawn and polls every 3 s with the drawing's
    version; each answer that changes something replaces it (with the new version)."""
    url = _e(dashboard_url(state=state, q=q, view=view, v=token))
    drawn = timezone.now().strftime("%H:%M:%S")
    showing = f" Showing {shown} of {total}." if shown != total else ""
    return (
        f'<p id="dashboard-poll" class="hint refreshed" hx-get="{url}" hx-trigger="every 3s" '
        f'hx-swap="none"><span class="checked">Updated {drawn} UTC</span> · refreshes every few '
        f"seconds.{showing}</p>"
    )
