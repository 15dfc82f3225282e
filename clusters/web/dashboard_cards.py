"""The dashboard's cluster cards as HTML, drawn in Python rather than in a template.

The dashboard redraws every card every 3 s. At 200 clusters, Django's template language spent
about 60 ms of CPU on the cards alone, and so did `format_html` (its lazy-string checks on
every argument), where the refresh's goal is 100 ms at p95 (bench/dashboard.py). These
functions write the same markup with f-strings: every value from the database goes through
`_e` (html.escape, as Django's own escape does); only the markup of the console's own
helpers (badge, times, sparkline, all built with format_html) is put in as it is.
"""

from html import escape

from django.utils.safestring import SafeString, mark_safe

from clusters.templatetags.hacenter_ui import ago, lag, sparkline, state_badge


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def cluster_cards(rows: list[dict]) -> SafeString:
    """Every cluster's card, in the order of `rows`."""
    return mark_safe("\n".join(cluster_card(row) for row in rows))  # noqa: S308 - escaped by _e


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
        f'<article class="cluster-card card card-{state}" data-cluster="{name}" '
        f'aria-labelledby="card-{pk}">\n'
        f'    <header><h2 id="card-{pk}"><a href="{url}">{name}</a></h2>'
        f"{state_badge(c['state'], c['state_label'])}</header>\n"
        f"    {body}\n  </article>"
    )


def _facts(c: dict) -> str:
    if c["primary"]:
        primary = f"<strong>{_e(c['primary'])}</strong>"
    else:
        primary = '<span class="error-text">none</span>'
    if c["maintenance"]:
        primary += ' <span class="status status-warning">maintenance: no automatic failover</span>'
    standbys = "".join(_standby(s) for s in c["standbys"]) or (
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
    return (
        '<dl class="facts">\n'
        f'      <dt>Primary</dt><dd class="primary">{primary}</dd>\n'
        f'      <dt>Standbys</dt><dd><ul class="standbys">{standbys}</ul></dd>\n'
        f"      <dt>Proxy</dt><dd>{_proxy(c['proxy_writes_to'], c['proxy_known'])}</dd>\n"
        f"      <dt>Last event</dt><dd>{event}</dd>\n"
        f"      <dt>Observed</dt><dd>{ago(c['last_checked'])}</dd>\n"
        "    </dl>"
    )


def _standby(s: dict) -> str:
    """A standby: fenced, not answering, or its state and lag; then its lag sparkline."""
    if s["fenced"]:
        state = '<strong class="error-text">fenced</strong>'
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
