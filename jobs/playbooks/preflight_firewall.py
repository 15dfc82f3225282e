"""Preflight's look at the firewall a node already has: ufw, firewalld, nftables tables other than
ours, iptables rules (iptables-nft or legacy) beyond the default ACCEPT policies.

HA Center's own table (jobs.configs.firewall) only drops, so it sits beside any of these; but
one of them that drops incoming traffic by default would also drop the cluster's own ports
between members unless it allows them, and setup would then fail half-way (etcd never gets a
quorum, a standby never streams). That is a warning naming the ports; the rest is information.

The parsers are pure functions of the tools' output (unit-tested on samples); the reading is
one read-only script.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from jobs.configs.firewall import FAMILY, TABLE

# One read-only script; each tool's output follows a marker line. Legacy iptables is read only
# when its kernel tables exist (reading it otherwise would load the legacy modules).
SCRIPT = r"""
echo '@@ufw'; command -v ufw >/dev/null && ufw status verbose 2>&1
echo '@@firewalld'; command -v firewall-cmd >/dev/null && firewall-cmd --state 2>&1 &&
  firewall-cmd --list-all 2>&1
echo '@@nft'; command -v nft >/dev/null && nft -s list ruleset 2>&1
echo '@@iptables'; command -v iptables-save >/dev/null && iptables-save 2>/dev/null
  command -v ip6tables-save >/dev/null && ip6tables-save 2>/dev/null
echo '@@iptables-legacy'
if [ -s /proc/net/ip_tables_names ] && command -v iptables-legacy-save >/dev/null; then
  iptables-legacy-save 2>/dev/null
fi
true
"""
# Tables iptables-nft makes in nftables: iptables-save reports them, so they are not counted
# twice as nftables tables of someone else's.
IPTABLES_NFT_TABLES = {"filter", "nat", "mangle", "raw", "security"}
# The last rule of a chain that drops whatever the rules before it did not accept.
CATCH_ALL_DROP = re.compile(r"(counter )?(drop|reject( with .*)?)")
# Accepts that let no new TCP connection to our ports in: replies, loopback, ICMP.
NOT_A_PORT_ACCEPT = re.compile(
    r"(ct state [a-z,{} ]*(established|related)|iif(name)? \"?lo\"?|"
    r"(meta l4proto|ip protocol|ip6 nexthdr) \{? ?(icmp|ipv6-icmp|icmpv6)|icmp|icmpv6)"
)
# firewalld's service names for the cluster's ports (`firewall-cmd --get-services`).
FIREWALLD_SERVICES = {"postgresql": {5432}, "etcd-client": {2379}, "etcd-server": {2380}}


@dataclass
class Firewall:
    """One firewall found on the node: what it is, whether it drops incoming traffic by
    default, and which TCP ports it lets in (None: it allows every port from somewhere)."""

    name: str
    detail: str
    drops_by_default: bool = False
    open_ports: set[int] | None = field(default_factory=set)

    def blocked(self, ports: Iterable[int]) -> list[int]:
        """Of `ports`, those this firewall would drop (as far as its rules tell)."""
        if not self.drops_by_default or self.open_ports is None:
            return []
        return [p for p in ports if p not in self.open_ports]


def sections(output: list[str]) -> dict[str, list[str]]:
    """The script's output split at its `@@name` markers."""
    found: dict[str, list[str]] = {}
    current = None
    for line in output:
        if line.startswith("@@"):
            current = found.setdefault(line[2:].strip(), [])
        elif current is not None:
            current.append(line)
    return found


def port_numbers(text: str) -> set[int]:
    """TCP ports named in one rule: `5432`, `5432/tcp`, `2379:2380`, `2379-2380`,
    `{ 22, 5432 }`, `--dports 22,5432`. Ranges wider than 1024 ports are taken as `all`."""
    ports: set[int] = set()
    for start, end in re.findall(r"(?<![\d./])(\d{1,5})(?:\s*[:-]\s*(\d{1,5}))?(?![\d.])", text):
        low, high = int(start), int(end or start)
        if 0 < low <= high <= 65535 and high - low <= 1024:
            ports.update(range(low, high + 1))
    return ports


def parse_ufw(lines: list[str]) -> Firewall | None:
    """`ufw status verbose`: None unless active."""
    if not any(line.strip() == "Status: active" for line in lines):
        return None
    default = next((line for line in lines if line.startswith("Default:")), "")
    drops = bool(re.search(r"(deny|reject) \(incoming\)", default))
    open_ports: set[int] | None = set()
    rules = 0
    for line in lines:
        parts = re.split(r"\s{2,}", line.strip())
        if len(parts) < 3 or not parts[1].startswith("ALLOW"):
            continue
        rules += 1
        target = parts[0]
        if target.startswith("Anywhere"):
            open_ports = None  # everything from some source: ufw lets our ports through
        elif open_ports is not None and "/udp" not in target:
            open_ports |= port_numbers(target.split(" on ")[0])
    policy = "denies incoming by default" if drops else "allows incoming by default"
    return Firewall("ufw", f"ufw active, {policy}, {rules} allow rule(s)", drops, open_ports)


def parse_firewalld(lines: list[str]) -> Firewall | None:
    """`firewall-cmd --state` then `--list-all`: None unless running. firewalld's zones reject
    what they do not allow (unless the zone's target is ACCEPT)."""
    if not lines or lines[0].strip() != "running":
        return None
    values = {}
    for line in lines[1:]:
        key, sep, value = line.strip().partition(":")
        if sep:
            values[key.strip()] = value.strip()
    open_ports = {
        p for item in values.get("ports", "").split() if "/tcp" in item for p in port_numbers(item)
    }
    for service in values.get("services", "").split():
        open_ports |= FIREWALLD_SERVICES.get(service, set())
    accepts = values.get("target", "") in ("ACCEPT", "accept")
    zone = lines[1].split()[0] if len(lines) > 1 and lines[1].strip() else "default zone"
    detail = f"firewalld running (zone {zone}, services: {values.get('services', '') or 'none'})"
    return Firewall("firewalld", detail, not accepts, open_ports)


def parse_nft(lines: list[str], skip_iptables: bool) -> list[Firewall]:
    """`nft -s list ruleset`: one finding per table other than ours (and other than
    iptables-nft's when iptables already reported them). A base chain on the input hook with
    `policy drop`, or ending in a bare `drop`/`reject`, drops by default."""
    found = []
    table = None
    chain_lines: list[str] = []
    state: dict = {}

    def close_chain() -> None:
        if not chain_lines:
            return
        text = "\n".join(chain_lines)
        if "hook input" in text:
            last = chain_lines[-1]
            if "policy drop" in text or CATCH_ALL_DROP.fullmatch(last):
                state["drops"] = True
            for line in chain_lines[2:]:
                if "dport" in line and line.endswith("accept"):
                    state["open"] |= port_numbers(line.split("dport", 1)[1].rsplit("accept")[0])
                elif line.endswith("accept") and not NOT_A_PORT_ACCEPT.match(line):
                    state["any_port"] = True  # a source-wide accept: our ports may pass
        chain_lines.clear()

    for line in [*lines, "table end"]:
        stripped = line.strip()
        if stripped.startswith("table "):
            close_chain()
            if table is not None and state["keep"]:
                detail = f"nftables table {table}"
                if state["drops"]:
                    detail += " (drops incoming by default)"
                found.append(
                    Firewall(
                        "nftables",
                        detail,
                        state["drops"],
                        None if state["any_port"] else state["open"],
                    )
                )
            words = stripped.split()
            if len(words) < 3:
                table = None
                continue
            family, name = words[1], words[2]
            table = f"{family} {name}"
            ours = (family, name) == (FAMILY, TABLE)
            iptables_own = family in ("ip", "ip6") and name in IPTABLES_NFT_TABLES
            state = {
                "keep": not ours and not (skip_iptables and iptables_own),
                "drops": False,
                "open": set(),
                "any_port": False,
            }
        elif stripped.startswith("chain "):
            close_chain()
            chain_lines.append(stripped)
        elif chain_lines and stripped != "}":
            chain_lines.append(stripped)
        elif stripped == "}":
            close_chain()
    return found


def parse_iptables(lines: list[str], label: str) -> Firewall | None:
    """`iptables-save` (and ip6tables-save) output: None when every table holds only the
    default ACCEPT policies and no rule."""
    rules = [line for line in lines if line.startswith("-A ")]
    policies = [line for line in lines if line.startswith(":") and len(line.split()) >= 2]
    strict = [p for p in policies if p.split()[1] not in ("ACCEPT", "-")]
    if not rules and not strict:
        return None
    input_policy_drop = any(p.split()[0] == ":INPUT" and p.split()[1] == "DROP" for p in policies)
    input_rules = [r for r in rules if r.startswith("-A INPUT ")]
    catch_all = any(
        re.search(r"-j (DROP|REJECT)", r)
        and "--dport" not in r
        and " -s " not in r
        and "-i lo" not in r
        and "--ctstate" not in r
        and "--state" not in r
        for r in input_rules
    )
    open_ports: set[int] | None = set()
    for rule in input_rules:
        if "-j ACCEPT" not in rule:
            continue
        match = re.search(r"--dports? (\S+)", rule)
        if match and "-p udp" not in rule:
            open_ports |= port_numbers(match.group(1))  # type: ignore[operator]
        elif not match and " -s " in rule:
            open_ports = None  # a whole source accepted: our ports may pass from it
            break
    drops = input_policy_drop or catch_all
    detail = f"{label}: {len(rules)} rule(s)"
    if strict:
        detail += f", policies {', '.join(' '.join(p.split()[:2])[1:] for p in strict)}"
    return Firewall(label, detail, drops, open_ports)


def read_firewalls(output: list[str]) -> list[Firewall]:
    """Every firewall the script's output shows, ours excluded."""
    parts = sections(output)
    found: list[Firewall] = []
    for parsed in (parse_ufw(parts.get("ufw", [])), parse_firewalld(parts.get("firewalld", []))):
        if parsed:
            found.append(parsed)
    iptables = parse_iptables(parts.get("iptables", []), "iptables")
    legacy = parse_iptables(parts.get("iptables-legacy", []), "iptables-legacy")
    # ufw and firewalld write iptables/nftables rules themselves: counting those again would
    # only repeat the same firewall under another name.
    managed = bool(found)
    if not managed:
        found += [f for f in (iptables, legacy) if f]
        found += parse_nft(parts.get("nft", []), skip_iptables=iptables is not None)
    return found


def has_our_table(output: list[str]) -> bool:
    """Whether HA Center's own table is loaded (a preflight after setup)."""
    mine = f"table {FAMILY} {TABLE} {{"
    return any(line.strip() == mine for line in sections(output).get("nft", []))


def judge(firewalls: list[Firewall], ports: list[int]) -> tuple[str, list[str]]:
    """What was found (one phrase) and, for each firewall that would drop some of `ports`,
    a warning naming them."""
    if not firewalls:
        return "no other firewall found", []
    found = "found: " + "; ".join(f.detail for f in firewalls)
    warnings = []
    for fw in firewalls:
        blocked = fw.blocked(ports)
        if blocked:
            listed = ", ".join(map(str, blocked))
            warnings.append(
                f"{fw.name} would drop {listed} between the cluster's nodes: allow them from the "
                "other nodes (and the console) before setup"
            )
    return found, warnings
