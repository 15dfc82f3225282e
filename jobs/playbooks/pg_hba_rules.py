"""pg_hba rules as PostgreSQL matches them: a server's rule lines, and which of a taken-over
server's rules the cluster's own rules, placed before them, would shadow (first match wins)."""

import ipaddress
from dataclasses import dataclass


def rule_lines(text: str) -> list[str]:
    """The rules of a pg_hba.conf or pg_ident.conf: no comments or blank lines, whitespace
    collapsed. A line with a quoted value is kept as written (a quote may hide a #)."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip() if '"' in raw else " ".join(raw.split("#", 1)[0].split())
        if line and not line.startswith("#"):
            rules.append(line)
    return rules


@dataclass(frozen=True)
class HbaRule:
    """The parts of one pg_hba rule that decide which connections it matches."""

    kind: str  # local, host, hostssl, hostnossl, hostgssenc, hostnogssenc
    databases: tuple[str, ...]
    users: tuple[str, ...]
    address: str  # "" for local
    method: str

    @classmethod
    def parse(cls, line: str) -> "HbaRule | None":
        fields = line.split()
        if not fields or fields[0] not in (
            "local",
            "host",
            "hostssl",
            "hostnossl",
            "hostgssenc",
            "hostnogssenc",
        ):
            return None
        if fields[0] == "local":
            if len(fields) < 4:
                return None
            return cls(
                "local", tuple(fields[1].split(",")), tuple(fields[2].split(",")), "", fields[3]
            )
        if len(fields) < 5:
            return None
        address, rest = fields[3], fields[4:]
        if "/" not in address and rest and _is_ip(address) and _is_ip(rest[0]):
            # address and netmask in two fields
            mask = ipaddress.ip_address(rest[0])
            net = ipaddress.ip_network(f"{address}/{mask}", strict=False)
            address, rest = str(net), rest[1:]
        if not rest:
            return None
        return cls(
            fields[0], tuple(fields[1].split(",")), tuple(fields[2].split(",")), address, rest[0]
        )

    def covers(self, other: "HbaRule") -> bool:
        """Every connection `other` matches, this rule matches too (so, placed first, it
        decides them all)."""
        # hostssl does not cover host; host covers every host* variant.
        return CONNECTIONS[other.kind] <= CONNECTIONS[self.kind] and self.covers_targets(other)

    def covers_targets(self, other: "HbaRule") -> bool:
        """Every database, user and address `other` matches, this rule matches too (whatever
        the connection's encryption)."""
        # "all" matches every database but replication connections (pg_hba.conf's own rule).
        if not all(
            d in self.databases or ("all" in self.databases and d != "replication")
            for d in other.databases
        ):
            return False
        if not all(u in self.users or "all" in self.users for u in other.users):
            return False
        return self.kind == "local" or _network_covers(self.address, other.address)


# Which connections each rule type matches: over the socket, or over TCP with TLS, without
# encryption, or GSSAPI-encrypted (hostnossl matches the last two).
CONNECTIONS = {
    "local": frozenset({"local"}),
    "host": frozenset({"tls", "plain", "gss"}),
    "hostssl": frozenset({"tls"}),
    "hostnossl": frozenset({"plain", "gss"}),
    "hostgssenc": frozenset({"gss"}),
    "hostnogssenc": frozenset({"tls", "plain"}),
}
ORDER = ("local", "tls", "plain", "gss")  # the order findings are looked for in


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _network_covers(mine: str, theirs: str) -> bool:
    if mine == "all":
        return True
    try:
        a, b = ipaddress.ip_network(mine, strict=False), ipaddress.ip_network(theirs, strict=False)
    except ValueError:
        return False  # host names, samehost, samenet: not comparable, so kept
    return a.version == b.version and b.subnet_of(a)  # type: ignore[arg-type]


def shadowed_rules(ours: list[str], theirs: list[str]) -> list[tuple[str, str]]:
    """The server's rules that one of the cluster's own rules (placed before them) decides
    with another method, for all or some of its connections (the cluster's `hostssl` rule
    decides the TLS ones, its `hostnossl … reject` the others): (their rule, our rule).
    Same-method overlaps change nothing."""
    parsed_ours = [(line, rule) for line in ours if (rule := HbaRule.parse(line))]
    found = []
    for line in theirs:
        rule = HbaRule.parse(line)
        if rule is None:
            continue
        for connection in [c for c in ORDER if c in CONNECTIONS[rule.kind]]:
            decider = next(
                (
                    (our_line, our_rule)
                    for our_line, our_rule in parsed_ours
                    if connection in CONNECTIONS[our_rule.kind] and our_rule.covers_targets(rule)
                ),
                None,
            )
            if decider is not None and decider[1].method != rule.method:
                found.append((line, decider[0]))
                break
    return found
