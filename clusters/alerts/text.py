"""An event told for people: one Slack-compatible line, the typed fields a webhook carries,
and an email body. Pure functions of the event; `details` is never read (it is free-form, and
nobody promised it stays free of secrets)."""

import unicodedata
from typing import Any

from clusters.inventory.units import size_text
from clusters.models import ClusterEvent

Severity = ClusterEvent.Severity
EMOJI = {
    Severity.INFO: ":information_source:",
    Severity.WARNING: ":warning:",
    Severity.CRITICAL: ":rotating_light:",
}
TEXT_MAX_CHARS = 250  # an email subject and a chat line stay readable


def one_line(text: str, limit: int) -> str:
    """Control characters and runs of whitespace become one space; cut at `limit` with "…"."""
    cleaned = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


def _what(event: ClusterEvent) -> str:
    """What happened, from the event's typed fields; the monitor's summary sentence otherwise.

    `details` is never read: it is free-form and nobody promised it stays free of secrets.
    """
    kind = ClusterEvent.Kind
    if event.kind in (kind.FAILOVER, kind.SWITCHOVER):
        if event.old_primary and event.new_primary:
            return f"{event.kind} from {event.old_primary} to {event.new_primary}"
        if event.new_primary:
            return f"{event.kind} to {event.new_primary}"
    node_phrases = {
        kind.NODE_DOWN: "{} is down",
        kind.NODE_UP: "{} is up again",
        kind.REJOIN: "{} rejoined as a standby",
        kind.FENCED: "{} was fenced",
    }
    if event.kind in node_phrases and event.node:
        return node_phrases[event.kind].format(event.node)
    # Lag, alarms and failed jobs carry their numbers and names in the summary.
    return event.summary or event.kind.replace("_", " ")


def lost_text(event: ClusterEvent) -> str:
    """What the WAL the old primary had past the promotion point means. It is an upper bound
    on lost writes: it also holds transactions never acknowledged and records such as
    checkpoints. On a synchronous cluster Patroni promotes only the synchronous standby, so
    no acknowledged commit is in it."""
    size = size_text(event.lost_bytes or 0)
    if event.cluster.replication == event.cluster.Replication.SYNC:
        return f"{size} of unacknowledged WAL discarded"
    return f"up to {size} of writes lost"


def alert_text(event: ClusterEvent) -> str:
    """One Slack-compatible line, e.g.
    ":rotating_light: pg1: failover from node1 to node2 (writes down 23.1 s)"."""
    facts = []
    if event.downtime_s is not None:
        facts.append(f"writes down {event.downtime_s:.1f} s")
    if event.lost_bytes:
        facts.append(lost_text(event))
    line = f"{event.cluster.name}: {_what(event)}"
    if facts:
        line += f" ({', '.join(facts)})"
    emoji = EMOJI.get(event.severity, ":grey_question:")
    return one_line(f"{emoji} {line}", TEXT_MAX_CHARS)


def suppressed_note(count: int) -> str:
    return f" ({count} similar alert{'s' if count != 1 else ''} suppressed)" if count else ""


def event_fields(event: ClusterEvent) -> dict[str, Any]:
    """The event's typed fields for the webhook and the email body (never `details`)."""
    return {
        "cluster": event.cluster.name,
        "kind": event.kind,
        "severity": event.severity,
        "at": event.at.isoformat(),
        "node": event.node or None,
        "old_primary": event.old_primary or None,
        "new_primary": event.new_primary or None,
        "downtime_s": event.downtime_s,
        "lost_bytes": event.lost_bytes,
    }


def email_body(text: str, fields: dict[str, Any], summary: str = "") -> str:
    labels = [
        ("cluster", "Cluster"),
        ("kind", "Event"),
        ("severity", "Severity"),
        ("node", "Node"),
        ("old_primary", "Old primary"),
        ("new_primary", "New primary"),
        ("downtime_s", "Writes down (s)"),
        ("lost_bytes", "WAL lost (bytes)"),
        ("at", "At"),
    ]
    lines = [text, ""]
    lines += [f"{label + ':':<21}{fields[key]}" for key, label in labels if fields[key] is not None]
    if summary:
        lines.append(f"{'Summary:':<21}{one_line(summary, 300)}")
    lines += ["", "-- ", "HA Center"]
    return "\n".join(lines) + "\n"


def slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup (links, mentions); these are the three to escape."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
