"""Turning configuration text into what the lint rules read: HAProxy's check timings of the
write backend, and pg_hba rules (from config lines or from `pg_hba_file_rules`)."""

import itertools
import re

from jobs.lint.rules import (
    HAPROXY_DEFAULT_FALL,
    HAPROXY_DEFAULT_INTER_S,
    HAPROXY_DEFAULT_RISE,
    HaproxyTiming,
    HbaRule,
)

_SECTION_RE = re.compile(r"^(global|defaults|listen|frontend|backend|peers|resolvers)\b")
# Patroni endpoints that answer 200 only on the leader.
_PRIMARY_CHECK_RE = re.compile(
    r"(?:uri|httpchk(?:\s+\w+)?)\s+/(?:primary|master|leader|read-write)\b"
)
_TIME_RE = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s|m|h|d)?$")
_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1e-3}


def _seconds(text: str) -> float | None:
    """An HAProxy time ("1s", "500ms", bare numbers are milliseconds)."""
    match = _TIME_RE.match(text)
    return float(match.group(1)) * _UNIT_S[match.group(2)] if match else None


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """(header, body lines) of each section, comments and blank lines dropped."""
    sections: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not raw[:1].isspace() and _SECTION_RE.match(line):
            sections.append((line.strip(), []))
        elif sections:
            sections[-1][1].append(line.strip())
    return sections


def _apply(settings: dict, words: list[str]) -> None:
    """Check settings from a `default-server` or `server` line's words."""
    for key, value in itertools.pairwise(words):
        if key == "inter" and (seconds := _seconds(value)) is not None:
            settings["inter"] = seconds
        elif key in ("fall", "rise") and value.isdigit():
            settings[key] = int(value)
        elif key == "on-marked-down":
            settings["shutdown"] = value == "shutdown-sessions"


def haproxy_write_timing(text: str) -> HaproxyTiming | None:
    """The check timing of the first section that routes by Patroni's primary endpoint; None
    when no section does (a proxy that does not follow the primary)."""
    defaults: dict = {}
    for header, body in _sections(text):
        if header.startswith("defaults"):
            defaults = {}
            for line in body:
                if line.startswith("default-server "):
                    _apply(defaults, line.split()[1:])
            continue
        if not any(_PRIMARY_CHECK_RE.search(line) for line in body):
            continue
        settings = dict(defaults)
        for line in body:
            if line.startswith("default-server "):
                _apply(settings, line.split()[1:])
        server = next((line for line in body if line.startswith("server ")), None)
        if server:
            _apply(settings, server.split()[1:])
        return HaproxyTiming(
            inter_s=settings.get("inter", HAPROXY_DEFAULT_INTER_S),
            fall=settings.get("fall", HAPROXY_DEFAULT_FALL),
            rise=settings.get("rise", HAPROXY_DEFAULT_RISE),
            shutdown_sessions=settings.get("shutdown", False),
        )
    return None


def hba_from_lines(lines: list[str]) -> tuple[HbaRule, ...]:
    """pg_hba rules from config lines (`host replication replicator 10.0.0.1/32 scram-sha-256`),
    as Patroni's `postgresql.pg_hba` lists them."""
    rules = []
    for raw in lines:
        words = raw.split("#", 1)[0].split()
        if len(words) < 4:
            continue
        kind = words[0]
        if kind == "local":
            databases, users = tuple(words[1].split(",")), tuple(words[2].split(","))
            rules.append(HbaRule(kind, databases, users, "", words[3]))
            continue
        if len(words) < 5:
            continue
        address, rest = words[3], words[4:]
        # An address with a separate netmask: "10.0.0.0 255.255.255.0 md5".
        if "/" not in address and len(rest) >= 2 and re.match(r"^\d+\.\d+\.\d+\.\d+$", rest[0]):
            address = f"{address}/{rest[0]}"
            rest = rest[1:]
        rules.append(
            HbaRule(kind, tuple(words[1].split(",")), tuple(words[2].split(",")), address, rest[0])
        )
    return tuple(rules)


def hba_from_file_rules(rows: list[str]) -> tuple[HbaRule, ...]:
    """pg_hba rules from `pg_hba_file_rules`, one `type|{db,…}|{user,…}|address|netmask|method`
    row per line (psql's unaligned output); rows PostgreSQL flagged as errors are skipped,
    as PostgreSQL skips them."""
    rules = []
    for row in rows:
        parts = row.split("|")
        if len(parts) < 7 or parts[6]:
            continue
        kind, databases, users, address, netmask, method = parts[:6]
        if netmask and address:
            address = f"{address}/{netmask}"
        rules.append(
            HbaRule(
                kind,
                tuple(databases.strip("{}").split(",")),
                tuple(users.strip("{}").split(",")),
                address,
                method,
            )
        )
    return tuple(rules)
