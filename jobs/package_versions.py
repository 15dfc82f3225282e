"""Debian package versions: comparing them, their upstream major, and what a minor upgrade moves.

Pure functions (no SSH, no database), so the rules a minor upgrade follows are table-tested:
compare as dpkg does (`dpkg --compare-versions`), never cross a major version, and move a node's
packages only up, to the exact version the check saw.
"""

import re
from dataclasses import dataclass

# Which leading numbers of an upstream version make its major: PostgreSQL counts one ("15.20"
# is major 15, since PostgreSQL 10), HAProxy and etcd two ("2.6.12" is the 2.6 branch, and a
# new branch changes its configuration and behaviour).
MAJOR_PARTS = {"postgresql": 1, "libpq5": 1, "haproxy": 2, "etcd": 2}


def _order(char: str) -> int:
    """dpkg's weight of one non-digit character: `~` sorts before everything, even the end."""
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's comparison of an upstream version or a revision: non-digit runs by _order, digit
    runs numerically, alternately."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def split(version: str) -> tuple[int, str, str]:
    """(epoch, upstream, revision) of a Debian version ("1:2.6.12-1+deb12u4")."""
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0), upstream, revision


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` sorts before, equal to or after `b` (dpkg's rules)."""
    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def family(package: str) -> str:
    """Which product a package belongs to: "postgresql-client-15" is postgresql."""
    if package.startswith("postgresql"):
        return "postgresql"
    if package.startswith("etcd"):
        return "etcd"
    return package


def major(package: str, version: str) -> str:
    """The upstream major of a package's version: "15" for postgresql-15 15.20-0+deb12u1,
    "2.6" for haproxy 2.6.12-1+deb12u4, "3.4" for etcd-server 3.4.23-4+b4."""
    upstream = split(version)[1]
    parts = re.findall(r"\d+", upstream)
    return ".".join(parts[: MAJOR_PARTS.get(family(package), 1)])


@dataclass(frozen=True)
class PackageState:
    """One package on one node: the version dpkg has installed and apt's candidate ("" for
    none)."""

    name: str
    installed: str
    candidate: str

    @property
    def upgradable(self) -> bool:
        """Installed, and the candidate is newer (never a downgrade)."""
        return (
            bool(self.installed and self.candidate) and compare(self.candidate, self.installed) > 0
        )

    @property
    def crosses_major(self) -> bool:
        return self.upgradable and major(self.name, self.installed) != major(
            self.name, self.candidate
        )


def parse_states(lines: list[str], wanted: list[str]) -> dict[str, PackageState]:
    """The output of `versions_script` ("name installed candidate", "-" for none), for the
    wanted packages only."""
    states = {}
    for line in lines:
        fields = line.split()
        if len(fields) != 3 or fields[0] not in wanted:
            continue
        name, installed, candidate = (f if f not in ("-", "(none)") else "" for f in fields)
        states[name] = PackageState(name, installed, candidate)
    return states


def major_changes(states: dict[str, PackageState]) -> list[str]:
    """ "haproxy 2.6 → 2.8"-style descriptions of every upgrade that would cross a major."""
    return [
        f"{s.name} {major(s.name, s.installed)} → {major(s.name, s.candidate)}"
        for s in states.values()
        if s.crosses_major
    ]


def targets(states: dict[str, PackageState]) -> dict[str, str]:
    """The packages a minor upgrade moves on a node, each to the candidate the check saw."""
    return {s.name: s.candidate for s in states.values() if s.upgradable and not s.crosses_major}


def still_to_move(installed: dict[str, str], wanted: dict[str, str]) -> dict[str, str]:
    """Of the versions a job wants, those a node does not have yet (a retry skips the rest).
    A node already past the wanted version (someone upgraded it meanwhile) is left alone."""
    return {
        name: version
        for name, version in wanted.items()
        if not installed.get(name) or compare(installed[name], version) < 0
    }


def debian_version_of_server(server_version: str) -> str:
    """The Debian package version in PostgreSQL's `server_version`:
    "15.20 (Debian 15.20-0+deb12u1)" → "15.20-0+deb12u1"; "" when it names none."""
    found = re.search(r"\((?:Debian|Ubuntu) ([^)\s]+)\)", server_version)
    return found.group(1) if found else ""
