"""Byte counts for people, in one unit system everywhere: binary (1 KiB = 1024 bytes).

Binary because PostgreSQL's WAL segments (16 MiB), the lag alert threshold (16 MiB) and the
settings that limit lag are powers of two: a chart tick, an event text and a table cell then
read the same number the same way. The lag chart's JavaScript (static/lagchart.js) follows these
rules too; a unit test runs both on the same numbers.
"""

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size_text(n: int | float) -> str:
    """``512 B``, ``1.5 KiB``, ``213 MiB``: three significant figures at most, below 10 one
    decimal (dropped when it is 0), never "1024 KiB" (that is "1 MiB")."""
    sign, value, unit = "-" if n < 0 else "", float(abs(n)), 0
    while value >= 1024 and unit < len(UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{sign}{int(value)} B"
    text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
    if text == "1024" and unit < len(UNITS) - 1:  # 1023.6 KiB rounds up into the next unit
        text, unit = "1", unit + 1
    return f"{sign}{text.removesuffix('.0')} {UNITS[unit]}"


def size_in_unit(n: int | float, unit: int) -> str:
    """``n`` bytes in the given unit (an index into UNITS), exactly, with at most the decimals a
    binary fraction needs (0.25 MiB, 1.5 MiB): a chart axis says all its ticks in one unit."""
    value = n / 1024**unit
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("0", "-0") else f"{text} {UNITS[unit]}"
