"""What `pgbackrest info --output=json` and pg_stat_archiver say, boiled down to what the
cluster page, the API and the alerts need. Pure: no I/O."""

from datetime import UTC, datetime

from clusters.inventory.units import size_text

# One line, `|`-separated: archived count, last archived WAL and when, failed count, last
# failed WAL and when, seconds since the last archive (NULL when nothing was archived yet).
ARCHIVER_SQL = (
    "SELECT concat_ws('|', archived_count, coalesce(last_archived_wal, ''), "
    "coalesce(last_archived_time::text, ''), failed_count, coalesce(last_failed_wal, ''), "
    "coalesce(last_failed_time::text, ''), "
    "coalesce(extract(epoch FROM now() - last_archived_time)::int::text, '')) "
    "FROM pg_stat_archiver;"
)


def _iso(epoch: int | None) -> str | None:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat() if epoch else None


def summarize(info: list, stanza: str) -> dict:
    """The stanza's status, archive range and backups (oldest first) from `info`'s JSON."""
    entry = next(s for s in info if s.get("name") == stanza)
    archives = entry.get("archive") or []
    backups = []
    for b in entry.get("backup") or []:
        stamp = b.get("timestamp") or {}
        size = b.get("info") or {}
        backups.append(
            {
                "label": b["label"],
                "type": b["type"],
                "started": _iso(stamp.get("start")),
                "finished": _iso(stamp.get("stop")),
                "duration_s": (stamp.get("stop") or 0) - (stamp.get("start") or 0),
                "size_bytes": size.get("size"),
                "repo_size_bytes": (size.get("repository") or {}).get("delta"),
                "wal_start": (b.get("archive") or {}).get("start"),
                "wal_stop": (b.get("archive") or {}).get("stop"),
                "error": bool(b.get("error")),
            }
        )
    status = entry.get("status") or {}
    return {
        "status": status.get("message", ""),
        "status_code": status.get("code"),
        "cipher": entry.get("cipher", ""),
        "archive_min": min((a.get("min") for a in archives if a.get("min")), default=None),
        "archive_max": max((a.get("max") for a in archives if a.get("max")), default=None),
        "backups": backups,
    }


def parse_archiver(line: str) -> dict:
    """ARCHIVER_SQL's line as a dict; {} for an empty line."""
    if not line.strip():
        return {}
    parts = (line.split("|") + [""] * 7)[:7]
    archived, last_wal, last_at, failed, failed_wal, failed_at, age = parts
    return {
        "archived_count": int(archived or 0),
        "last_archived_wal": last_wal or None,
        "last_archived_at": last_at or None,
        "failed_count": int(failed or 0),
        "last_failed_wal": failed_wal or None,
        "last_failed_at": failed_at or None,
        "last_archived_age_s": int(age) if age else None,
    }


# Newest archived WAL older than this, on a server with archive_timeout 60 s: archiving is
# stuck (a failing archive_command retries forever, and WAL piles up on the primary).
ARCHIVE_AGE_ALERT_S = 600


def archive_trouble(archiver: dict) -> str:
    """Why the archive falls behind ("" when it does not): segments wait (when the reader
    knows: "waiting") and the last attempt failed, or nothing was archived for
    ARCHIVE_AGE_ALERT_S."""
    if not archiver or archiver.get("waiting") == 0:
        return ""  # nothing waits to be archived (an idle server archives nothing for hours)
    failed_at, archived_at = archiver.get("last_failed_at"), archiver.get("last_archived_at")
    if failed_at and (not archived_at or failed_at > archived_at):
        return (
            f"archiving fails on the primary: {archiver.get('last_failed_wal')} failed at "
            f"{failed_at[:19]}, last success {archived_at[:19] if archived_at else 'never'}"
        )
    age = archiver.get("last_archived_age_s")
    if age is not None and age > ARCHIVE_AGE_ALERT_S:
        return f"the newest archived WAL is {age} s old (more than {ARCHIVE_AGE_ALERT_S} s)"
    return ""


def _size(value: int | None) -> str:
    return "?" if value is None else size_text(value)


def describe(summary: dict) -> str:
    """One line for a step's verdict and the page."""
    backups = summary.get("backups") or []
    if not backups:
        said = f"no backup yet ({summary.get('status') or 'no status'})"
    else:
        last = backups[-1]
        said = (
            f"{len(backups)} backup(s); last {last['type']} {last['label']}: "
            f"{_size(last['size_bytes'])} (repository {_size(last['repo_size_bytes'])})"
            f" in {last['duration_s']} s"
        )
    if summary.get("archive_max"):
        said += f"; WAL archive {summary['archive_min']} to {summary['archive_max']}"
    archiver = summary.get("archiver") or {}
    trouble = archive_trouble(archiver)
    if trouble:
        said += f"; {trouble}"
    elif archiver.get("failed_count"):
        # Old failures (e.g. before the stanza existed), archiving works since.
        said += f"; archiving works ({archiver['failed_count']} failed attempt(s) earlier)"
    return said
