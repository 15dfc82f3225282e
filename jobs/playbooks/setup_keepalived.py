"""Setup's floating-address step: keepalived on each of two proxies (jobs/configs/keepalived.py).

Run after HAProxy is up on the proxy, so the check keepalived starts with finds it answering.
"""

import shlex

from clusters.models import Node
from jobs.configs import keepalived as config
from jobs.configs.spec import ClusterSpec
from jobs.playbooks import daemons, distro_services
from jobs.playbooks.base import StepContext, StepFailed, Verdict


def keepalived_daemon(spec: ClusterSpec) -> daemons.Daemon:
    """keepalived's VRRP part only (`--vrrp`: no IPVS checkers, no kernel module), in the
    foreground; its own pid files apart from a distribution keepalived's. The config path comes
    last: process mode recognises the daemon by it."""
    return daemons.Daemon(
        name="keepalived",
        argv=(
            "/usr/sbin/keepalived",
            "--dont-fork",
            "--log-console",
            "--vrrp",
            "--pid=/run/hacenter-keepalived.pid",
            "--vrrp_pid=/run/hacenter-keepalived-vrrp.pid",
            "-f",
            config.keepalived_config_path(spec),
        ),
        user="root",
        description="keepalived",
    )


def interface_of(ctx: StepContext, node: Node) -> str:
    """The network interface that carries the node's address (where the floating one goes)."""
    lines = ctx.output(f"ip -o addr show to {shlex.quote(node.address)}", node=node, echo=False)
    names = [line.split()[1] for line in lines if len(line.split()) > 1]
    if not names:
        raise StepFailed(f"no interface of {node.name} carries {node.address}")
    return names[0].split("@")[0]


def holders(ctx: StepContext, spec: ClusterSpec) -> list[str]:
    """The proxies that have the floating address on an interface now."""
    found = []
    for proxy in ctx.cluster.proxy_nodes:
        probe = ctx.run(
            f"ip -o addr show to {shlex.quote(spec.virtual_address)} | grep -q .",
            node=proxy,
            echo=False,
            sudo=False,
        )
        if probe.ok:
            found.append(proxy.name)
    return found


def keepalived(ctx: StepContext) -> Verdict | str:
    """Write the check script and keepalived's config, start keepalived or reload it (SIGHUP);
    on the last proxy, wait until exactly one proxy holds the floating address."""
    spec = ctx.facts["spec"]
    node = next(n for n in spec.proxies if n.name == ctx.node.name)
    interface = interface_of(ctx, ctx.node)
    ctx.run(f"mkdir -p {config.CONFIG_DIR}", check=True)
    # Root's only: keepalived refuses a script others could change (enable_script_security).
    script_changed = ctx.ensure_file(
        config.check_script_path(spec), config.check_script(spec), mode=0o755, owner="root"
    )
    changed = ctx.ensure_file(
        config.keepalived_config_path(spec),
        config.keepalived_config(spec, node, interface),
        mode=0o644,
    )
    daemon = keepalived_daemon(spec)
    running = daemons.pid(ctx, ctx.node, daemon)
    if running and (changed or script_changed):
        ctx.run(f"kill -HUP {running}", check=True)  # keepalived re-reads its config
        action = f"configuration changed; keepalived reloaded (pid {running})"
    elif running:
        action = f"keepalived already configured and running (pid {running})"
    else:
        action = daemons.start(ctx, ctx.node, daemon)
    if ctx.node.name != spec.proxies[-1].name:
        return f"{action}; VRRP router id {spec.vrrp_router_id} on {interface}"
    held = ctx.wait_until(
        lambda: (found := holders(ctx, spec)) and len(found) == 1 and found,
        timeout=20,
        interval=0.5,
        what=f"one proxy to hold {spec.virtual_address}",
    )
    return f"{action}; {spec.virtual_address} held by {held[0]}"


def keepalived_remove(ctx: StepContext) -> Verdict | str:
    """Stop keepalived for good (it takes the floating address off as it stops) and delete its
    config and check script; the distribution's keepalived.service is unmasked, left stopped."""
    spec = ctx.facts["spec"]
    verdict = daemons.remove(ctx, ctx.node, keepalived_daemon(spec))
    files = [config.keepalived_config_path(spec), config.check_script_path(spec)]
    ctx.run(f"rm -f {' '.join(shlex.quote(f) for f in files)}", check=True)
    unmasked = distro_services.unmask(ctx, ["keepalived.service"])
    verdict += f"; {', '.join(unmasked)} unmasked (left stopped)" if unmasked else ""
    return f"{verdict}; its config removed"
