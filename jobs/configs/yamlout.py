"""A small block-style YAML writer, so the console needs no PyYAML to write config files.

Every string value is double-quoted and escaped, so no password or name can change the
document's structure, and no value is misread by YAML 1.1 (PyYAML, which Patroni uses, reads a
bare `off` as false). The output is plain ASCII: anything else is written as an escape, which
also keeps out what YAML reads as a line break (PyYAML folds a raw U+0085 into a space) or
refuses to read at all (DEL).
"""

import re

# Keys are our own identifiers; they are written bare when YAML cannot misread them.
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# Bare words YAML 1.1 resolves to booleans or null.
_RESERVED_WORDS = frozenset({"y", "yes", "n", "no", "true", "false", "on", "off", "null"})

Value = dict[str, "Value"] | list["Value"] | str | int | bool | None


def quote(text: str) -> str:
    """`text` as a YAML double-quoted scalar that reads back exactly.

    Not `json.dumps`: it writes a character outside the BMP as a surrogate pair, which YAML
    reads as two separate characters; YAML's `\\U` escape is right.
    """
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"YAML keys must be strings here, not {type(key).__name__}: {key!r}")
    if _PLAIN_KEY.match(key) and key.lower() not in _RESERVED_WORDS:
        return key
    return quote(key)


def _scalar(value: Value) -> str:
    # bool before int: True is an int in Python.
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    if value == {}:
        return "{}"
    if value == []:
        return "[]"
    raise TypeError(f"Cannot write {type(value).__name__} {value!r} as YAML here.")


def _is_block(value: Value) -> bool:
    return isinstance(value, dict | list) and len(value) > 0


def _lines(value: Value, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if _is_block(item):
                lines.append(f"{pad}{_key(key)}:")
                lines.extend(_lines(item, indent + 2))
            else:
                lines.append(f"{pad}{_key(key)}: {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if _is_block(item):
                # The item's first line starts at indent + 2; "- " takes those two columns.
                nested = _lines(item, indent + 2)
                nested[0] = f"{pad}- {nested[0][indent + 2 :]}"
                lines.extend(nested)
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(value))
    return lines


def dump(document: dict[str, Value], header: str = "") -> str:
    """`document` as block-style YAML, after the comment line `header` if given."""
    lines = _lines(document, 0) if document else ["{}"]
    if header:
        lines.insert(0, header)
    return "\n".join(lines) + "\n"
