"""Text output: aligned tables, a boxed member table like `patronictl list`, and log lines."""

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

EMPTY = "-"


def cell(value: Any) -> str:
    """A value as a table shows it: `-` for nothing, whole numbers without a decimal point."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("\n", " ")


def when(value: Any) -> str:
    """An API time (ISO 8601) in UTC to the second: `2026-12-05 01:40:02Z`; as given if odd."""
    if not isinstance(value, str) or not value:
        return cell(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell, headers in capitals (as `kubectl get` prints)."""
    texts = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(headers)]
    lines = [[h.upper() for h in headers], *texts]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def boxed(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A table framed like `patronictl list`, the title in its top border."""
    texts = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(headers)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    head = f"+ {title} "
    top = head + rule[len(head) :] if len(head) < len(rule) else head + "+"

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    return "\n".join([top, line(headers), rule, *(line(r) for r in texts), rule])


def log_line(line: dict[str, Any]) -> str:
    """One job log line: time, host (or `console`), text; stderr marked with `!`."""
    stamp = when(line.get("ts"))[11:19] if line.get("ts") else EMPTY
    host = line.get("host") or "console"
    mark = "!" if line.get("stream") == "stderr" else " "
    return f"{stamp} {host:<8}{mark} {line.get('text', '')}"


def emit_json(value: Any, out: TextIO | None = None, *, lines: bool = False) -> None:
    """The API's JSON as is: indented for a document, one object per line for a stream."""
    out = out or sys.stdout
    out.write(json.dumps(value, ensure_ascii=False) if lines else json.dumps(value, indent=2))
    out.write("\n")
    out.flush()
