"""What a restore drill compares (issue 22 part 3): per table, its row count and an
order-independent checksum of its rows, read on the primary at a restore point and on the
restored copy, then compared. Pure: SQL text in, parsed rows out.

The checksum is `sum(hashtextextended(row::text, 0))`: every row's text hashed to 64 bits and
summed, so the order rows are read in (which differs between the primary and a copy) does not
matter, and a changed, missing or extra row changes it (up to a hash collision).
"""

import re

from jobs.playbooks.sql import quote_ident, quote_literal

# A table as the policy names it: "table" (schema public) or "schema.table", plain identifiers.
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_$]{0,62}"
TABLE_NAME = re.compile(rf"(?:({IDENTIFIER})\.)?({IDENTIFIER})")
DEFAULT_TABLES = 5
# How long the drill waits for its SHARE lock: a long transaction holding the tables must not
# make it queue (a queued lock blocks every later writer too); the drill fails and says so.
LOCK_TIMEOUT = "10s"

LARGEST_TABLES_SQL = r"""
SELECT n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%'
ORDER BY pg_total_relation_size(c.oid) DESC, 1
LIMIT 5;
"""


def table_name(name: str) -> str | None:
    """`name` as "schema.table" (public when it names none), or None when it is no plain
    name."""
    m = TABLE_NAME.fullmatch(name.strip()) if isinstance(name, str) else None
    if m is None:
        return None
    return f"{m.group(1) or 'public'}.{m.group(2)}"


def quoted(table: str) -> str:
    """ "schema.table" as SQL, each part quoted."""
    schema, _, name = table.partition(".")
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _count_lines(tables: list[str]) -> list[str]:
    return [
        # The table's name is quoted (quote_ident); the index is ours.
        f"SELECT 'T', {i}, count(*), coalesce(sum(hashtextextended(t::text, 0)), 0) "  # noqa: S608
        f"FROM {quoted(table)} AS t;"
        for i, table in enumerate(tables)
    ]


def snapshot_sql(tables: list[str], point: str) -> str:
    """One transaction on the primary: the tables locked against writers (SHARE: readers go
    on), counted and summed, the restore point made, commit. With writers shut out from the
    lock to the commit, the counts are exactly what a copy recovered to the point holds."""
    lines = ["BEGIN;", f"SET LOCAL lock_timeout = {quote_literal(LOCK_TIMEOUT)};"]
    if tables:
        lines.append(f"LOCK TABLE {', '.join(quoted(t) for t in tables)} IN SHARE MODE;")
    lines += _count_lines(tables)
    lines += [f"SELECT 'P', pg_create_restore_point({quote_literal(point)});", "COMMIT;"]
    return "\n".join(lines) + "\n"


def count_sql(tables: list[str]) -> str:
    """The same counts and sums on the copy (nothing writes there)."""
    return "\n".join(_count_lines(tables)) + "\n"


def parse_counts(lines: list[str], tables: list[str]) -> tuple[list[dict], str]:
    """psql's unaligned rows ("T|0|123|-456", "P|0/5000028") as per-table results and the
    restore point's LSN ("" when none); ValueError when a table's row is missing."""
    found: dict[int, dict] = {}
    lsn = ""
    for line in lines:
        parts = line.strip().split("|")
        if parts[0] == "T" and len(parts) == 4:
            index = int(parts[1])
            found[index] = {"table": tables[index], "rows": int(parts[2]), "checksum": parts[3]}
        elif parts[0] == "P" and len(parts) == 2:
            lsn = parts[1]
    missing = [t for i, t in enumerate(tables) if i not in found]
    if missing:
        raise ValueError(f"no count read for {', '.join(missing)}")
    return [found[i] for i in range(len(tables))], lsn


def compare(primary: list[dict], copy: list[dict]) -> tuple[list[dict], list[str]]:
    """The primary's results with the copy's beside them (copy_rows, copy_checksum, same), and
    a sentence for each table that differs."""
    by_table = {c["table"]: c for c in copy}
    merged, differ = [], []
    for row in primary:
        theirs = by_table.get(row["table"])
        same = theirs is not None and (theirs["rows"], theirs["checksum"]) == (
            row["rows"],
            row["checksum"],
        )
        merged.append(
            {
                **row,
                "copy_rows": theirs["rows"] if theirs else None,
                "copy_checksum": theirs["checksum"] if theirs else None,
                "same": same,
            }
        )
        if theirs is None:
            differ.append(f"{row['table']} is missing on the copy")
        elif theirs["rows"] != row["rows"]:
            differ.append(
                f"{row['table']} has {theirs['rows']} rows on the copy, {row['rows']} on the "
                "primary"
            )
        elif not same:
            differ.append(f"{row['table']} has the same {row['rows']} rows but other contents")
    return merged, differ
