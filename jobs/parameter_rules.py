"""PostgreSQL parameter changes, judged before anything changes (pure: no I/O).

The rules are the server's own: a change is checked against the primary's `pg_settings` rows
(`vartype`, `unit`, `min_val`, `max_val`, `enumvals`, `context`), parsed the way PostgreSQL
parses a value in postgresql.conf (`parse_bool`, `parse_int` / `parse_real` with units,
enum labels case-insensitively). Parameters that Patroni manages itself, or that HA Center sets
for the cluster's safety, are refused with the reason.

`preview` says per parameter whether a reload is enough (contexts sighup, superuser, user,
backend, superuser-backend) or PostgreSQL must restart (postmaster), and what the job will do.
"""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# Why a parameter is not the operator's to change here; checked before the catalog.
PATRONI = "Patroni manages it itself"
HACENTER = "HA Center sets it for replication and failover to work"
PROTECTED: dict[str, str] = {
    **{
        name: PATRONI
        for name in (
            "listen_addresses",
            "port",
            "cluster_name",
            "data_directory",
            "config_file",
            "hba_file",
            "ident_file",
            "external_pid_file",
            "primary_conninfo",
            "primary_slot_name",
            "promote_trigger_file",
            "recovery_target",
            "recovery_target_action",
            "recovery_target_inclusive",
            "recovery_target_lsn",
            "recovery_target_name",
            "recovery_target_time",
            "recovery_target_timeline",
            "recovery_target_xid",
            "recovery_min_apply_delay",
            "synchronous_standby_names",
        )
    },
    # jobs.configs.patroni.patroni_dcs_settings
    **{
        name: HACENTER
        for name in (
            "wal_level",
            "hot_standby",
            "wal_log_hints",
            "max_wal_senders",
            "max_replication_slots",
            "wal_keep_size",
            "wal_retrieve_retry_interval",
            "wal_sender_timeout",
        )
    },
    "password_encryption": "HA Center keeps it at scram-sha-256 (pg_hba asks for scram)",
    # jobs.configs.patroni.postgresql_parameters (per node) and the TLS rotation job.
    "unix_socket_directories": "HA Center's jobs reach PostgreSQL through this socket",
    "archive_mode": "WAL archiving belongs to the backup configuration",
    "archive_command": "WAL archiving belongs to the backup configuration",
    "archive_library": "WAL archiving belongs to the backup configuration",
    "archive_cleanup_command": "WAL archiving belongs to the backup configuration",
    "restore_command": "WAL archiving belongs to the backup configuration",
}
# Every ssl* parameter: the cluster's TLS (certificates, rotation) sets them.
PROTECTED_PREFIXES = {"ssl": "the cluster's TLS sets it (certificates are rotated by a job)"}

# A standby refuses to run with less of these than its primary has (PostgreSQL records them in
# the WAL, and Patroni starts a standby with at least its pg_control's values): lowering one
# means the primary first, the opposite of the rolling restart this job does.
STANDBY_MINIMUMS = {
    "max_connections",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "max_worker_processes",
}
RELOAD_CONTEXTS = {"sighup", "superuser", "user", "backend", "superuser-backend"}
RESTART_CONTEXT = "postmaster"
RELOAD = "reload"
RESTART = "restart"
UNCHANGED = "unchanged"

# parse_int / parse_real's units (src/backend/utils/misc/guc.c): memory in bytes, time in ms.
MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_NUMBER = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*")
_NAME = re.compile(r"[a-z_][a-z0-9_.]*")
MAX_STRING = 1024
RESTART_PLAN = (
    "restart needed: rolling restart, standbys first, then a switchover, then the old primary"
)


@dataclass(frozen=True)
class Setting:
    """One `pg_settings` row, as the job stores it in the cluster's snapshot."""

    name: str
    vartype: str  # bool, enum, integer, real, string
    context: str
    setting: str = ""
    unit: str = ""
    min_val: str = ""
    max_val: str = ""
    enumvals: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, name: str, row: Mapping) -> "Setting":
        return cls(
            name=name,
            vartype=str(row.get("vartype") or ""),
            context=str(row.get("context") or ""),
            setting=str(row.get("setting") or ""),
            unit=str(row.get("unit") or ""),
            min_val=str(row.get("min_val") or ""),
            max_val=str(row.get("max_val") or ""),
            enumvals=tuple(row.get("enumvals") or ()),
        )


@dataclass(frozen=True)
class Change:
    """A validated change: what goes to Patroni, what the server will report, what it needs."""

    name: str
    value: str  # as sent to Patroni's dynamic configuration ('256MB' stays '256MB')
    expected: str  # as pg_settings.setting will read once applied ('32768' for 8kB pages)
    action: str  # RELOAD, RESTART or UNCHANGED
    context: str
    current: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "value": self.value,
            "expected": self.expected,
            "action": self.action,
            "context": self.context,
            "current": self.current,
        }


@dataclass
class Judgement:
    """The outcome of `validate`: good changes and, per refused name, why."""

    changes: list[Change] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.changes)


class InvalidValue(ValueError):
    """The value does not parse or is out of range; the message says what PostgreSQL wants."""


def protected_reason(name: str) -> str | None:
    """Why HA Center refuses to change `name`, or None."""
    if name in PROTECTED:
        return PROTECTED[name]
    for prefix, reason in PROTECTED_PREFIXES.items():
        if name.startswith(prefix):
            return reason
    return None


def _as_text(raw: object) -> str:
    """JSON values as PostgreSQL would read them: true -> on, 5 -> '5'."""
    if isinstance(raw, bool):
        return "on" if raw else "off"
    if isinstance(raw, int | float):
        return repr(raw)
    if isinstance(raw, str):
        return raw
    raise InvalidValue("give a string, a number or a boolean")


def parse_bool(text: str) -> str:
    """PostgreSQL's parse_bool: on/off, true/false, yes/no, 1/0 and unique prefixes."""
    word = text.strip().lower()
    if word in ("1", "0"):
        return "on" if word == "1" else "off"
    if len(word) >= 2 and ("on".startswith(word) or "off".startswith(word)):
        return "on" if word == "on" else ("off" if "off".startswith(word) else "")
    for spelled, meaning in (("true", "on"), ("yes", "on"), ("false", "off"), ("no", "off")):
        if word and spelled.startswith(word):
            return meaning
    raise InvalidValue("a boolean: on or off")


def _unit_factor(unit: str, base: str) -> tuple[dict[str, float], float] | None:
    """The unit table for a setting's base unit and the base unit's size in it ('8kB' -> 8192
    bytes); None when the setting has no unit."""
    match = re.fullmatch(r"(\d*)\s*([A-Za-z]+)", base or "")
    if not match:
        return None
    count = int(match.group(1) or 1)
    name = match.group(2)
    if name in MEMORY_UNITS:
        return MEMORY_UNITS, count * MEMORY_UNITS[name]
    if name in TIME_UNITS:
        return TIME_UNITS, count * TIME_UNITS[name]
    return None


def parse_number(setting: Setting, text: str) -> float:
    """The value in the setting's base unit, as parse_int / parse_real read it."""
    match = _NUMBER.fullmatch(text)
    if not match:
        raise InvalidValue(_expects(setting))
    number, unit = float(match.group(1)), match.group(2)
    if unit:
        table = _unit_factor(unit, setting.unit)
        if table is None:
            raise InvalidValue(f"{setting.name} takes no unit")
        units, base_size = table
        if unit not in units:
            raise InvalidValue(f"valid units for {setting.name} are {', '.join(units)}")
        number = number * units[unit] / base_size
    if not math.isfinite(number):
        raise InvalidValue(_expects(setting))
    if setting.vartype == "integer":
        # PostgreSQL rounds a fractional value (0.5MB, 1.5s) to the nearest base unit.
        number = float(round(number))
    low, high = _bound(setting.min_val), _bound(setting.max_val)
    if (low is not None and number < low) or (high is not None and number > high):
        unit = f" (in {setting.unit})" if setting.unit else ""
        raise InvalidValue(f"{_show(number)}{unit} is outside {setting.min_val}..{setting.max_val}")
    return number


def _bound(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _show(number: float) -> str:
    return str(int(number)) if number == int(number) else repr(number)


def _expects(setting: Setting) -> str:
    kind = "an integer" if setting.vartype == "integer" else "a number"
    unit = f" (in {setting.unit}, or with a unit)" if setting.unit else ""
    return f"{kind}{unit}"


def normalize(setting: Setting, raw: object) -> str:
    """How pg_settings.setting will read once `raw` is applied; InvalidValue if it is not a
    value PostgreSQL accepts for this parameter."""
    text = _as_text(raw)
    if "\0" in text or "\n" in text or "\r" in text:
        raise InvalidValue("no line breaks or NUL bytes")
    if setting.vartype == "bool":
        return parse_bool(text)
    if setting.vartype in ("integer", "real"):
        return _show(parse_number(setting, text))
    if setting.vartype == "enum":
        wanted = text.strip().lower()
        for label in setting.enumvals:
            if label.lower() == wanted:
                return label
        raise InvalidValue(f"one of: {', '.join(setting.enumvals)}")
    if len(text) > MAX_STRING:
        raise InvalidValue(f"at most {MAX_STRING} characters")
    return text


def same_value(setting: Setting, reported: str, expected: str) -> bool:
    """Whether a node's pg_settings value is the expected one (numbers compared as numbers)."""
    if setting.vartype in ("integer", "real"):
        try:
            return math.isclose(float(reported), float(expected), rel_tol=1e-9, abs_tol=1e-9)
        except ValueError:
            return False
    if setting.vartype == "enum":
        return reported.lower() == expected.lower()
    return reported.strip() == expected.strip()


def action_for(context: str) -> str:
    if context == RESTART_CONTEXT:
        return RESTART
    if context in RELOAD_CONTEXTS:
        return RELOAD
    return ""


def validate(catalog: Mapping[str, Mapping], requested: Mapping[str, object]) -> Judgement:
    """Judge `requested` ({name: value}) against the catalog ({name: pg_settings row})."""
    judgement = Judgement()
    if not requested:
        judgement.errors["parameters"] = "name at least one parameter to change"
        return judgement
    for raw_name, raw in requested.items():
        name = str(raw_name).strip().lower()
        if not _NAME.fullmatch(name):
            judgement.errors[str(raw_name)] = "not a parameter name"
            continue
        reason = protected_reason(name)
        if reason:
            judgement.errors[name] = f"refused: {reason}"
            continue
        row = catalog.get(name)
        if row is None:
            judgement.errors[name] = "no such parameter on this server"
            continue
        setting = Setting.from_dict(name, row)
        action = action_for(setting.context)
        if not action:
            judgement.errors[name] = (
                f"cannot be changed on a running cluster (context {setting.context})"
            )
            continue
        try:
            expected = normalize(setting, raw)
        except InvalidValue as exc:
            judgement.errors[name] = f"invalid value {str(raw)[:80]!r}: {exc}"
            continue
        if _lowered(setting, expected):
            judgement.errors[name] = (
                f"lowering it (now {setting.setting}) needs the primary restarted before the "
                "standbys, which this rolling restart does not do; raise it, or lower it by hand"
            )
            continue
        if same_value(setting, setting.setting, expected):
            action = UNCHANGED
        judgement.changes.append(
            Change(
                name=name,
                value=_sent(setting, raw, expected),
                expected=expected,
                action=action,
                context=setting.context,
                current=setting.setting,
            )
        )
    return judgement


def _sent(setting: Setting, raw: object, expected: str) -> str:
    """What goes to Patroni: the operator's number with its unit ('256MB' reads better in the
    configuration than '32768'); booleans and enum labels as PostgreSQL spells them."""
    if setting.vartype in ("integer", "real"):
        return _as_text(raw).strip()
    return expected


def _lowered(setting: Setting, expected: str) -> bool:
    if setting.name not in STANDBY_MINIMUMS:
        return False
    try:
        return float(expected) < float(setting.setting)
    except ValueError:
        return False


def needs_restart(changes: list[Change]) -> bool:
    return any(c.action == RESTART for c in changes)


def preview(changes: list[Change]) -> dict:
    """What the operator confirms: each parameter's effect and the job's plan in one line."""
    restart = needs_restart(changes)
    if restart:
        plan = RESTART_PLAN
    elif any(c.action == RELOAD for c in changes):
        plan = "reload: every node takes the new values without a restart"
    else:
        plan = "nothing to do: every value is already in effect"
    return {
        "restart": restart,
        "plan": plan,
        "parameters": [c.as_dict() for c in changes],
    }


def parse_lines(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """The page's text box: one `name = value` per line (postgresql.conf style, quotes
    optional, # comments); returns the changes and, per bad line, why."""
    changes: dict[str, str] = {}
    errors: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.partition("=")
        if not sep:
            name, _, value = stripped.partition(" ")
        name, value = name.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("''", "'")
        if not name or not value:
            errors[f"line {number}"] = "write name = value"
            continue
        changes[name] = value
    return changes, errors
