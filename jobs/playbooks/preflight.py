"""Preflight: read-only checks of every node before setup, each a step with its verdict.

Errors (no login, no sudo, a port taken by someone else, a peer unreachable) fail the job;
shortfalls against the vendor minimums (cores, RAM, disk), an untested OS or a skewed clock
are warnings the admin may acknowledge.
"""

import shlex
import time

from django.conf import settings

from clusters.models import BackupPolicy, Cluster, Node
from jobs.configs.pgbackrest import TLS_PORT as BACKUP_PORT
from jobs.lint.generated import generated_snapshot
from jobs.lint.rules import lint
from jobs.playbooks import existing_postgres, packages, preflight_firewall
from jobs.playbooks.base import Playbook, StepContext, StepFailed, StepSpec, Verdict
from jobs.playbooks.setup import cluster_spec

# Ports each kind of node will serve once set up.
PORTS = {
    Node.Kind.DATABASE: [5432, 8008, 2379, 2380],  # PostgreSQL, Patroni REST, etcd client, peer
    Node.Kind.PROXY: [5432, 5433, 7000, 2379, 2380],  # HAProxy rw, ro, stats; witness etcd
}
# Processes that may hold those ports because an earlier setup of ours put them there
# (Patroni runs from its script, so the kernel names it "patroni", not "python3").
OUR_PROCESSES = {"postgres", "postmaster", "patroni", "etcd", "haproxy", "pgbackrest"}


def node_ports(node: Node) -> list[int]:
    """The ports `node` will serve: its kind's, and pgBackRest's TLS server's on the database
    nodes and the repository host of a cluster with backups on."""
    wanted = list(PORTS[node.kind])
    policy = BackupPolicy.objects.filter(cluster_id=node.cluster_id, enabled=True).first()
    repo = policy.repository_node() if policy else None
    if repo is not None and (node.kind == Node.Kind.DATABASE or node.pk == repo.pk):
        wanted.append(BACKUP_PORT)
    return wanted


# Only what a test has run on: Debian 12 and 13 boot in the systemd lab (tests/lab/systemd_lab.py,
# where test_fresh_servers_systemd runs a customer's day on each), and Debian 12 is this
# machine's own system, which the network-namespace lab shares.
TESTED_OS = {("debian", "12"), ("debian", "13")}
TESTED_OS_TEXT = "Debian 12 and 13"


def plan(cluster: Cluster, node: Node | None, params: dict) -> list[StepSpec]:
    """Ten checks per node, then the checks across the database nodes."""
    nodes = [node] if node else list(cluster.nodes.all())
    specs = [StepSpec(name, title, n) for n in nodes for name, title in NODE_CHECKS]
    specs.append(StepSpec("same_postgres_major", "Same PostgreSQL major on database nodes"))
    specs.append(StepSpec("config_lint", "The configuration setup will write, linted"))
    if cluster.virtual_ip and node is None and cluster.proxy_node is not None:
        specs.append(
            StepSpec("floating_address", "The floating address is free", cluster.proxy_node)
        )
    if cluster.adopt_database and node is None:
        master = existing_postgres.master_node(cluster)
        specs.append(StepSpec("existing_postgres", "The master's PostgreSQL, to take over", master))
    return specs


def ssh_login(ctx: StepContext) -> Verdict | str:
    """Log in with the pinned host key and the node's credential."""
    user, hostname = [*ctx.output("id -un; hostname"), "?", "?"][:2]
    return f"logged in as {user} on {hostname} (host key {ctx.node.host_key_fingerprint})"


def sudo(ctx: StepContext) -> Verdict | str:
    """Root, or passwordless sudo: setup installs packages and writes system files."""
    if ctx.connections.get(ctx.node).is_root:
        return "logged in as root; sudo not needed"
    result = ctx.run("true", sudo=True)
    if not result.ok:
        reason = (result.stderr_tail or ["no reason given"])[-1]
        raise StepFailed(
            f"{ctx.node.credential.username} cannot use sudo without a password "
            f"({reason}); grant NOPASSWD sudo or use root"
        )
    return f"{ctx.node.credential.username} may use sudo without a password"


def os_version(ctx: StepContext) -> Verdict | str:
    """Which distribution and release; anything but what HA Center is tested on is a warning."""
    info = dict(_key_value(line, "=") for line in ctx.output("cat /etc/os-release") if "=" in line)
    name = info.get("PRETTY_NAME", "unknown OS")
    ctx.facts.setdefault("os", {})[ctx.node.pk] = info
    if (info.get("ID"), info.get("VERSION_ID")) not in TESTED_OS:
        return Verdict.warn(
            f"{name}: not tested with HA Center (tested: {TESTED_OS_TEXT}); setup may work, "
            "but no test has shown it"
        )
    return name


def resources(ctx: StepContext) -> Verdict | str:
    """CPU cores, RAM and free disk for PostgreSQL's data, against the vendor minimums."""
    script = (
        "nproc; awk '/^MemTotal:/ {print $2}' /proc/meminfo; "
        "d=/var/lib/postgresql; [ -d $d ] || d=/var/lib; [ -d $d ] || d=/; "
        "df -Pk $d | awk 'NR==2 {print $4}'"
    )
    lines = ctx.output(script)
    try:
        cpus, ram_mb, disk_gb = int(lines[0]), int(lines[1]) // 1024, int(lines[2]) // 1024**2
    except (IndexError, ValueError) as exc:
        raise StepFailed(f"could not read CPU, memory and disk figures: {lines!r}") from exc
    found = f"{cpus} cores, {ram_mb / 1024:.1f} GB RAM, {disk_gb} GB free"
    short = []
    if cpus < settings.PREFLIGHT_MIN_CPUS:
        short.append(f"{settings.PREFLIGHT_MIN_CPUS} cores")
    if ram_mb < settings.PREFLIGHT_MIN_RAM_MB:
        short.append(f"{settings.PREFLIGHT_MIN_RAM_MB / 1024:g} GB RAM")
    if disk_gb < settings.PREFLIGHT_MIN_DISK_GB:
        short.append(f"{settings.PREFLIGHT_MIN_DISK_GB} GB free disk")
    if short:
        return Verdict.warn(f"{found}; below the recommended {', '.join(short)}")
    return found


def clock(ctx: StepContext) -> Verdict | str:
    """Clock skew against the console: failover timings and logs are compared across hosts."""
    before = time.time()
    lines = ctx.output("date +%s.%N")
    after = time.time()
    try:
        remote = float(lines[-1])
    except (IndexError, ValueError) as exc:
        raise StepFailed(f"could not read the node's clock: {lines!r}") from exc
    skew = remote - (before + after) / 2  # the round trip's midpoint cancels the latency
    ctx.facts.setdefault("clock_offsets", {})[ctx.node.name] = skew  # for config_lint
    text = f"clock {'ahead of' if skew >= 0 else 'behind'} the console by {abs(skew):.2f} s"
    if abs(skew) > settings.PREFLIGHT_MAX_CLOCK_SKEW_S:
        return Verdict.warn(
            f"{text} (more than {settings.PREFLIGHT_MAX_CLOCK_SKEW_S:g} s; run NTP or chrony)"
        )
    return text


SOFTWARE_SCRIPT = r"""
pg=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1)
[ -n "$pg" ] && echo "postgresql=$("$pg" --version | awk '{print $NF}')"
for p in /opt/patroni/bin/patroni "$(command -v patroni)"; do
  [ -n "$p" ] && [ -x "$p" ] || continue
  echo "patroni=$("$p" --version 2>&1 | awk '{print $NF}')"; break
done
command -v etcd >/dev/null &&
  echo "etcd=$(etcd --version 2>/dev/null | awk '/^etcd Version/ {print $3}')"
command -v haproxy >/dev/null && echo "haproxy=$(haproxy -v 2>/dev/null | awk 'NR==1 {print $3}')"
true
"""

SOFTWARE_NAMES = {
    "postgresql": "PostgreSQL",
    "patroni": "Patroni",
    "etcd": "etcd",
    "haproxy": "HAProxy",
}


def software(ctx: StepContext) -> Verdict | str:
    """Which of PostgreSQL, Patroni, etcd and HAProxy are installed, and their versions."""
    lines = ctx.output(SOFTWARE_SCRIPT)
    found = dict(_key_value(line, "=") for line in lines if "=" in line)
    ctx.facts.setdefault("software", {})[ctx.node.pk] = found
    parts = [f"{SOFTWARE_NAMES[k]} {found[k] or '?'}" for k in SOFTWARE_NAMES if k in found]
    missing = [SOFTWARE_NAMES[k] for k in SOFTWARE_NAMES if k not in found]
    text = ", ".join(parts) or "none of PostgreSQL, Patroni, etcd, HAProxy"
    if missing:
        text += f"; setup will install {', '.join(missing)}"
    return text


def package_sources(ctx: StepContext) -> Verdict | str:
    """Every package setup will install can be found by apt on this node (with the cluster's
    APT proxy), checked against fresh package lists fetched aside: nothing on the node changes."""
    return packages.preview(ctx, packages.wanted(cluster_spec(ctx.cluster), ctx.node))


def ports(ctx: StepContext) -> Verdict | str:
    """The ports this node will serve are free, or held by our own services from a past setup."""
    wanted = node_ports(ctx.node)
    holders: dict[int, set[str]] = {}
    # sudo: without root, ss does not name the processes of other users.
    for line in ctx.output("ss -Hltnp", sudo=True):
        port, process = listener(line)
        if port in wanted:
            holders.setdefault(port, set()).add(process)
    foreign = {p: procs - OUR_PROCESSES for p, procs in holders.items() if procs - OUR_PROCESSES}
    if foreign:
        taken = "; ".join(
            f"{p} by {', '.join(sorted(procs))}" for p, procs in sorted(foreign.items())
        )
        raise StepFailed(f"ports in use by other software: {taken}; free them before setup")
    ours = sorted(holders)
    free = [p for p in wanted if p not in holders]
    text = f"free: {', '.join(map(str, free)) or 'none'}"
    return text + (f"; already ours: {', '.join(map(str, ours))}" if ours else "")


def reachability(ctx: StepContext) -> Verdict | str:
    """This node reaches every other node on the ports the cluster will use.

    "Connection refused" counts as reachable: before setup nothing listens yet, but the host
    answered. A timeout or "no route" means a firewall or routing problem that setup would hit.
    """
    targets = [
        (peer, port)
        for peer in ctx.cluster.nodes.exclude(pk=ctx.node.pk)
        for port in node_ports(peer)
    ]
    if not targets:
        return "no other nodes in the cluster"
    timeout = int(settings.PREFLIGHT_PORT_TIMEOUT_S)
    pairs = " ".join(f"{shlex.quote(p.address)},{port}" for p, port in targets)
    script = (
        f"for t in {pairs}; do a=${{t%,*}}; p=${{t##*,}}; "
        f"out=$(timeout {timeout} bash -c 'exec 3<>/dev/tcp/'\"$a/$p\" 2>&1); "
        'echo "$a $p $? $out"; done'
    )
    lines = ctx.output(script, timeout=len(targets) * (timeout + 2) + 10)
    by_target = {}
    for line in lines:
        address, port, rc, *rest = [*line.split(" ", 3), ""]
        by_target[(address, port)] = (rc, rest[0] if rest else "")
    problems = []
    for peer, port in targets:
        rc, out = by_target.get((peer.address, str(port)), ("?", "no answer from the check"))
        if rc == "0" or "refused" in out.lower():
            continue
        why = "timed out" if rc == "124" else (out.split(":")[-1].strip() or f"exit {rc}")
        problems.append(f"{peer.name} {peer.address}:{port} ({why})")
    if problems:
        raise StepFailed(f"cannot reach {'; '.join(problems)}")
    return f"reaches {len({p.pk for p, _ in targets})} peers on {len(targets)} ports"


# The port the floating address's probe knocks on: any host answers it, with sshd or a reset.
PROBE_PORT = 22
# Past ARP's three tries (a second apart) that end in "No route to host" for a free address.
PROBE_TIMEOUT_S = 5


def floating_address(ctx: StepContext) -> Verdict | str:
    """No host answers on the floating address yet: keepalived would put it on a proxy while
    another server has it, and clients would reach one or the other.

    Asked from the first proxy, in the address's own network: a TCP knock that is answered or
    refused means a host owns the address; "no route to host" (nobody answers ARP) means it is
    free. Held by one of the cluster's proxies already (setup ran), it is ours.
    """
    address = ctx.cluster.virtual_address
    for proxy in ctx.cluster.proxy_nodes:
        if any(f" {address}/" in line for line in ctx.output("ip -o addr show", node=proxy)):
            return f"{address} is on {proxy.name}: the cluster's keepalived holds it"
    target = shlex.quote(f"/dev/tcp/{address}/{PROBE_PORT}")
    lines = ctx.output(
        f"timeout {PROBE_TIMEOUT_S} bash -c 'exec 3<>'{target} 2>&1; echo \"rc=$?\"",
        timeout=PROBE_TIMEOUT_S + 10,
    )
    rc = next((ln.removeprefix("rc=") for ln in lines if ln.startswith("rc=")), "?")
    said = " ".join(ln for ln in lines if not ln.startswith("rc=")).lower()
    if rc == "0" or "refused" in said:
        raise StepFailed(
            f"{address} answers on the network (port {PROBE_PORT} "
            f"{'open' if rc == '0' else 'refused'}): another host uses it; "
            "pick a free address for the floating address"
        )
    if rc == "124":
        return Verdict.warn(
            f"{address}: no answer within {PROBE_TIMEOUT_S} s (a host that drops all traffic "
            "would look the same); make sure no server uses it"
        )
    return f"{address} is free: nobody answers for it ({said.split(':')[-1].strip() or rc})"


def existing_firewall(ctx: StepContext) -> Verdict | str:
    """A firewall the node has already (ufw, firewalld, nftables, iptables): what it is, what HA
    Center adds beside it, and a warning when it would drop the cluster's ports between nodes."""
    lines = ctx.output(preflight_firewall.SCRIPT, sudo=True, echo=False)
    wanted = node_ports(ctx.node)
    if ctx.node.kind == Node.Kind.PROXY:
        wanted += [f["listen_port"] for f in ctx.cluster.http_frontends]
    found, warnings = preflight_firewall.judge(preflight_firewall.read_firewalls(lines), wanted)
    ours = preflight_firewall.has_our_table(lines)
    if not ctx.cluster.firewall:
        plan = "the cluster's firewall is off: setup adds no table" + (
            " and removes the one of ours loaded here" if ours else ""
        )
    elif ours:
        plan = "HA Center's table inet hacenter is loaded already; setup renews it"
    else:
        plan = (
            "setup adds the table inet hacenter beside it, which only drops connections to the "
            "cluster's ports from sources that are not the nodes, the console or client networks"
        )
    text = f"{found}; {plan}"
    if warnings:
        return Verdict.warn(f"{text}; " + "; ".join(warnings))
    return text


def same_postgres_major(ctx: StepContext) -> Verdict | str:
    """Streaming replication needs one PostgreSQL major version on every database node."""
    installed = ctx.facts.get("software", {})
    majors = {}
    for node in ctx.cluster.database_nodes:
        version = installed.get(node.pk, {}).get("postgresql")
        if version:
            majors[node.name] = version.split(".")[0]
    wanted = str(ctx.cluster.postgres_version)
    others = {n: m for n, m in majors.items() if m != wanted}
    if others:
        listed = ", ".join(f"{n} has {m}" for n, m in sorted(others.items()))
        raise StepFailed(f"the cluster uses PostgreSQL {wanted} but {listed}")
    missing = ctx.cluster.database_nodes.count() - len(majors)
    if missing:
        return f"PostgreSQL {wanted} where installed; setup installs it on {missing} node(s)"
    return f"PostgreSQL {wanted} on every database node"


def existing_postgres_check(ctx: StepContext) -> Verdict | str:
    """The PostgreSQL setup will take over on the master (adopt_database): version, size,
    databases and extensions, tablespaces, settings, pg_hba rules, roles (names and attributes
    only), and whether each standby can hold a copy. Each finding is in the log; errors fail
    the check, behaviour changes are warnings."""
    _inspection, findings, _carried = existing_postgres.read_and_judge(
        ctx, cluster_spec(ctx.cluster)
    )
    for line in findings.facts:
        ctx.log(line, host=ctx.node.name)
    for line in findings.warnings:
        ctx.log(f"warning: {line}", host=ctx.node.name)
    if findings.errors:
        raise StepFailed("; ".join(findings.errors))
    if findings.warnings:
        return Verdict.warn(f"{findings.facts[0]}; " + "; ".join(findings.warnings))
    return findings.facts[0]


def config_lint(ctx: StepContext) -> Verdict | str:
    """The cross-component rules (jobs/lint/) over the files setup would generate, with the
    clock offsets this run measured; errors fail the check, warnings are shown."""
    spec = cluster_spec(ctx.cluster)
    offsets = ctx.facts.get("clock_offsets", {})
    findings = lint(
        generated_snapshot(spec, clock_offsets=offsets),
        max_clock_skew_s=settings.PREFLIGHT_MAX_CLOCK_SKEW_S,
    )
    for f in findings:
        ctx.log(f"{f.severity}: {f.rule}: {f.message} {f.consequence}")
    errors = [f.message for f in findings if f.severity == "error"]
    if errors:
        raise StepFailed("; ".join(errors))
    warnings = [f.message for f in findings if f.severity == "warning"]
    if warnings:
        return Verdict.warn("; ".join(warnings))
    notes = len(findings)
    return "no problem found" + (f" ({notes} note(s) in the log)" if notes else "")


def _key_value(line: str, sep: str) -> tuple[str, str]:
    key, _, value = line.partition(sep)
    return key.strip(), value.strip().strip('"')


def listener(line: str) -> tuple[int | None, str]:
    """Port and process name from one line of `ss -Hltnp`."""
    fields = line.split()
    if len(fields) < 4:
        return None, ""
    port_text = fields[3].rsplit(":", 1)[-1]
    process = line.split('(("', 1)[1].split('"', 1)[0] if '(("' in line else "unknown"
    return (int(port_text) if port_text.isdigit() else None), process


NODE_CHECKS = [
    ("ssh_login", "SSH login"),
    ("sudo", "sudo"),
    ("os_version", "OS and version"),
    ("resources", "CPU, RAM and disk"),
    ("clock", "Clock skew"),
    ("software", "Installed software"),
    ("package_sources", "Packages setup installs"),
    ("ports", "Ports free"),
    ("reachability", "Reachability of the other nodes"),
    ("firewall", "Existing firewall"),
]

PLAYBOOK = Playbook(
    kind="preflight",
    plan=plan,
    steps={
        "ssh_login": ssh_login,
        "sudo": sudo,
        "os_version": os_version,
        "resources": resources,
        "clock": clock,
        "software": software,
        "package_sources": package_sources,
        "ports": ports,
        "reachability": reachability,
        "firewall": existing_firewall,
        "same_postgres_major": same_postgres_major,
        "config_lint": config_lint,
        "floating_address": floating_address,
        "existing_postgres": existing_postgres_check,
    },
    mutating=False,
    keep_going=True,
)
