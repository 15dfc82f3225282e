"""The distribution's own services that would compete with the cluster's daemons.

Debian starts a service as soon as its package is installed: a PostgreSQL cluster on :5432, a
single-node etcd on localhost:2379/2380, an HAProxy with its default configuration. Left
enabled, they come back at the next boot beside ours: two HAProxies on :5432 sharing the admin
socket (maintenance through one still lets the other route to the node), an etcd whose ports
make ours fail to bind, a PostgreSQL started outside Patroni. Under systemd their units are
masked before the install, so the packages' scripts cannot start them either; `remove_cluster`
unmasks them again (stopped and disabled). Their data stays where it is.
"""

import shlex

from clusters.models import Node
from jobs.configs.spec import ClusterSpec
from jobs.playbooks import daemons
from jobs.playbooks.base import StepContext


def competing_units(spec: ClusterSpec, node: Node) -> list[str]:
    """The distribution units that would hold this node's ports or data."""
    units = ["haproxy.service"] if node.kind == Node.Kind.PROXY else []
    if spec.virtual_ip and node.kind == Node.Kind.PROXY:
        units.append("keepalived.service")  # ours runs as hacenter-keepalived.service
    if node.name in {m.name for m in spec.etcd_members}:
        units.append("etcd.service")
    return units


def mask(ctx: StepContext, units: list[str]) -> list[str]:
    """Stop, disable and mask the units (systemd only); the ones that were not masked yet."""
    if not units or daemons.init_system(ctx, ctx.node) != daemons.SYSTEMD:
        return []
    names = " ".join(shlex.quote(u) for u in units)
    state = ctx.output(
        f'for u in {names}; do echo "$u $(systemctl is-enabled $u 2>/dev/null)"; done',
        echo=False,
    )
    todo = [line.split()[0] for line in state if line.split()[1:] != ["masked"]]
    if todo:
        listed = " ".join(shlex.quote(u) for u in todo)
        # disable fails for a unit whose package is not installed yet: masking is what counts
        ctx.run(
            f"systemctl disable --now {listed} 2>/dev/null; systemctl mask {listed}", check=True
        )
    return todo


def unmask(ctx: StepContext, units: list[str]) -> list[str]:
    """Undo `mask` for the units masked to /dev/null; they stay stopped and disabled."""
    if not units or daemons.init_system(ctx, ctx.node) != daemons.SYSTEMD:
        return []
    names = " ".join(shlex.quote(u) for u in units)
    masked = [
        line
        for line in ctx.output(
            f'for u in {names}; do [ "$(readlink /etc/systemd/system/$u)" = /dev/null ] '
            '&& echo "$u"; done; true',
            echo=False,
        )
        if line in units
    ]
    if masked:
        ctx.run(f"systemctl unmask {' '.join(shlex.quote(u) for u in masked)}", check=True)
    return masked


def stop_distribution_postgres(ctx: StepContext) -> list[str]:
    """Stop Debian's PostgreSQL clusters that hold :5432 and keep them from starting again:
    `start.conf` says manual (pg_ctlcluster and the boot generator honour it) and, under
    systemd, the instance's unit is masked."""
    stopped = []
    lines = ctx.output(
        "command -v pg_lsclusters >/dev/null && pg_lsclusters -h || true", echo=False
    )
    systemd = daemons.init_system(ctx, ctx.node) == daemons.SYSTEMD
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[3] == "online" and fields[2] == "5432":
            version, name = fields[0], fields[1]
            unit = shlex.quote(f"postgresql@{version}-{name}.service")
            keep_down = f" && {{ systemctl disable --now {unit} || true; }}"
            keep_down += f" && systemctl mask {unit}"
            ctx.run(
                f"pg_ctlcluster {shlex.quote(version)} {shlex.quote(name)} stop && "
                f"echo manual > /etc/postgresql/{shlex.quote(version)}/"
                f"{shlex.quote(name)}/start.conf" + (keep_down if systemd else ""),
                check=True,
            )
            stopped.append(f"PostgreSQL {version}/{name}")
    return stopped
