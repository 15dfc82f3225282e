"""Setup's `firewall` step and its removal: HA Center's nftables table on every node.

The table (jobs.configs.firewall) limits who reaches etcd, Patroni, PostgreSQL and HAProxy; it
is written to /etc/hacenter/firewall.nft, checked with `nft -c`, loaded with `nft -f` (one
transaction) and, under systemd, loaded at every boot by `hacenter-firewall.service`. In
process mode (hosts without systemd: the network-namespace lab) it is only loaded.

The console's address as the node sees it comes from this SSH session (`$SSH_CONNECTION`),
plus `HACENTER_CONSOLE_NETWORKS` for workers on other machines, plus the monitor's sources.
"""

import ipaddress
import shlex

from django.conf import settings

from jobs.configs import firewall as fw
from jobs.configs.spec import NodeSpec
from jobs.playbooks import daemons, packages
from jobs.playbooks.base import StepContext, StepFailed, Verdict

NFT = "nft"
CANDIDATE = fw.CONFIG_PATH + ".new"
UNIT_PATH = f"/etc/systemd/system/{fw.UNIT}"
TABLE = f"{fw.FAMILY} {fw.TABLE}"
# Exit 0 when the live table is exactly what the file would load: the file is loaded into a
# private, empty network namespace and both listings compared (`-s`: without counter values).
# Comparing nft's own listings spares us re-implementing its formatting.
SAME_TABLE = (
    "want=$(unshare -n sh -c 'nft -f \"$1\" && nft -s list table {table}' sh {path}) && "
    'have=$(nft -s list table {table} 2>/dev/null) && [ -n "$want" ] && [ "$want" = "$have" ]'
)


def console_sources(ctx: StepContext) -> tuple[list[str], str]:
    """The console's addresses and networks, and where each came from (for the verdict).

    An IPv4 client seen by a dual-stack sshd reads `::ffff:a.b.c.d`; packets still arrive as
    IPv4, so the mapped address is what the table needs.
    """
    seen = ctx.output('echo "${SSH_CONNECTION%% *}"', echo=False)
    found: list[str] = []
    origin = []
    if seen and seen[0].strip():
        try:
            address = ipaddress.ip_address(seen[0].strip())
        except ValueError:
            raise StepFailed(
                f"{ctx.node.name} reports this SSH session from {seen[0].strip()!r}, which is "
                "not an address; set HACENTER_CONSOLE_NETWORKS"
            ) from None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        found.append(str(address))
        origin.append(f"{address} (this SSH session)")
    configured = [*settings.HACENTER_CONSOLE_NETWORKS, *settings.HACENTER_MONITOR_SOURCES]
    for value in configured:
        if value not in found:
            found.append(value)
    if configured:
        origin.append(f"{', '.join(configured)} (HACENTER_CONSOLE_NETWORKS, monitor sources)")
    return found, "; ".join(origin) or "none"


def _node_spec(ctx: StepContext) -> NodeSpec:
    return next(n for n in ctx.facts["spec"].nodes if n.name == ctx.node.name)


def _nft_missing(ctx: StepContext) -> bool:
    return not ctx.run(f"command -v {NFT} >/dev/null", echo=False).ok


def firewall(ctx: StepContext) -> Verdict | str:
    """Load the node's table of allowed sources (see jobs.configs.firewall) and keep it across
    reboots; "already as wanted" when the live table, the file and the unit all match. With the
    cluster's firewall switched off, remove our table instead."""
    if not ctx.cluster.firewall:
        removed = remove_firewall(ctx)
        if removed:
            return f"firewall off for {ctx.cluster.name}: removed {', '.join(removed)}"
        return f"firewall off for {ctx.cluster.name}: no table of ours here"
    spec = ctx.facts["spec"]
    console, origin = console_sources(ctx)
    try:
        text = fw.firewall_config(spec, _node_spec(ctx), console)
        rules = fw.firewall_policy(spec, _node_spec(ctx), console)
    except ValueError as exc:
        raise StepFailed(f"cannot build the firewall for {ctx.node.name}: {exc}") from None
    done = [packages.install(ctx, ["nftables"])] if _nft_missing(ctx) else []
    ctx.log(f"allowed: {fw.summary(rules)}", host=ctx.node.name)
    ctx.run("mkdir -p /etc/hacenter", check=True)
    ctx.connections.get(ctx.node).upload(CANDIDATE, text.encode(), mode=0o644)
    check = ctx.run(f"{NFT} -c -f {shlex.quote(CANDIDATE)}")
    if not check.ok:
        ctx.run(f"rm -f {shlex.quote(CANDIDATE)}")
        said = (check.stderr_tail or check.stdout_tail or ["?"])[-1]
        raise StepFailed(f"nft refused the firewall for {ctx.node.name}: {said}")
    same_file = ctx.run(f"cmp -s {CANDIDATE} {fw.CONFIG_PATH}", echo=False).ok
    same_table = ctx.run(SAME_TABLE.format(table=TABLE, path=shlex.quote(CANDIDATE)), echo=False).ok
    ctx.run(f"mv -f {CANDIDATE} {fw.CONFIG_PATH}", check=True)
    ports = ", ".join(str(p) for rule in rules for p in rule.ports)
    if "@vrrp_v4" in text:  # two proxies: keepalived's adverts come from the peer only
        ports += ", VRRP"
    if not (same_file and same_table):
        ctx.run(f"{NFT} -f {fw.CONFIG_PATH}", check=True)
        done.append(f"table {TABLE} loaded ({ports} guarded)")
    if daemons.init_system(ctx, ctx.node) == daemons.SYSTEMD:
        kept = _keep_across_reboots(ctx)
        done += [kept] if kept else []
        boot = f"{fw.UNIT} loads it at boot"
    else:
        boot = "process mode: loaded now, not kept across a reboot"
    if not done:
        return f"firewall already as wanted ({ports} guarded; console {origin}; {boot})"
    return f"{'; '.join(done)}; console {origin}; {boot}"


def _keep_across_reboots(ctx: StepContext) -> str:
    """Our unit written, enabled and active; what changed, "" when nothing did.

    `systemctl start` on an inactive unit loads the file once more (same table, atomically);
    never `restart`, whose stop would delete the table for a moment.
    """
    changed = ctx.ensure_file(UNIT_PATH, fw.firewall_unit(ctx.facts["spec"]), mode=0o644)
    state = ctx.output(
        f"systemctl is-enabled {fw.UNIT} 2>/dev/null || true; "
        f"systemctl is-active {fw.UNIT} 2>/dev/null || true",
        echo=False,
    )
    if not changed and state[:2] == ["enabled", "active"]:
        return ""
    reload = "systemctl daemon-reload && " if changed else ""
    ctx.run(f"{reload}systemctl enable {fw.UNIT} && systemctl start {fw.UNIT}", check=True)
    return f"{fw.UNIT} {'written and ' if changed else ''}enabled"


def remove_firewall(ctx: StepContext) -> list[str]:
    """Take our table, unit and file away from the step's node; what was there to remove."""
    removed = []
    systemd = daemons.init_system(ctx, ctx.node) == daemons.SYSTEMD
    if systemd and ctx.run(f"test -e {UNIT_PATH}", echo=False).ok:
        # Stopping runs the unit's ExecStop, which deletes the table.
        ctx.run(
            f"systemctl disable --now {fw.UNIT} || true; rm -f {UNIT_PATH} && "
            "systemctl daemon-reload && "
            f"{{ systemctl reset-failed {fw.UNIT} 2>/dev/null || true; }}",
            check=True,
        )
        removed.append(fw.UNIT)
    present = ctx.run(
        f"command -v {NFT} >/dev/null && {NFT} list table {TABLE} >/dev/null 2>&1", echo=False
    )
    if present.ok:
        ctx.run(f"{NFT} delete table {TABLE}", check=True)
    if present.ok or fw.UNIT in removed:
        removed.insert(0, f"table {TABLE}")
    if ctx.run(f"test -e {fw.CONFIG_PATH}", echo=False).ok:
        ctx.run(f"rm -f {fw.CONFIG_PATH} {CANDIDATE}", check=True)
        removed.append(fw.CONFIG_PATH)
    return removed


def firewall_remove(ctx: StepContext) -> Verdict | str:
    """`remove_cluster`'s step: our table, its unit and its file gone from the node."""
    removed = remove_firewall(ctx)
    return f"removed {', '.join(removed)}" if removed else "no firewall of ours here"
