"""The apt side of a minor upgrade (jobs.playbooks.upgrade): fresh package lists, holds, the
distribution's masked units, and installing exactly the chosen versions of our packages."""

import shlex

from clusters.models import Node
from jobs.playbooks import packages
from jobs.playbooks.base import StepContext, StepFailed

# What apt may change beside the packages we move: builds of the same products that the new
# versions depend on (postgresql-common, postgresql-client-common). Anything else is refused.
SAME_PRODUCT_PREFIXES = ("postgresql-", "libpq", "etcd-", "haproxy")
# Units that must stay masked through the upgrade (setup masked them; distro_services).
DISTRO_UNITS = "postgresql@*.service haproxy.service etcd.service"


def refresh(ctx: StepContext, node: Node) -> None:
    """`apt-get update` on `node` with the cluster's APT proxy."""
    lines: list[str] = []
    result = ctx.run(
        f"apt-get {packages.apt_options(ctx.cluster)} -q update",
        node=node,
        timeout=600,
        collect=lines,
    )
    if not result.ok:
        raise StepFailed(
            f"apt-get update failed on {node.name}: "
            f"{packages.apt_failure(result.stderr_tail + lines[-5:])}"
            f"{packages.proxy_hint(ctx.cluster)}"
        )


def held(ctx: StepContext, node: Node, names: list[str]) -> list[str]:
    """Of these packages, the ones the admin holds on the node (`apt-mark hold`)."""
    lines = ctx.output("apt-mark showhold", node=node, echo=False, sudo=True)
    return sorted(set(lines) & set(names))


def held_words(held: dict[str, list[str]]) -> str:
    """The refusal for held packages, per node."""
    listed = "; ".join(f"{node}: {', '.join(names)}" for node, names in sorted(held.items()))
    return (
        f"held with apt-mark hold ({listed}): the admin keeps those versions on purpose. "
        "Unhold them (apt-mark unhold) to upgrade, then retry"
    )


def masked(ctx: StepContext, node: Node) -> set[str]:
    """The distribution's units masked on the node (postgresql@…, haproxy, etcd)."""
    lines = ctx.output(
        f"cd /etc/systemd/system 2>/dev/null && for u in {DISTRO_UNITS}; do "
        '[ "$(readlink "$u")" = /dev/null ] && echo "$u"; done; true',
        node=node,
        echo=False,
        sudo=True,
    )
    return {line for line in lines if line.endswith(".service")}


def simulate(ctx: StepContext, node: Node, install: str) -> None:
    """apt's plan for the install, refused when it would remove a package or change one that
    is not ours."""
    lines: list[str] = []
    result = ctx.run(f"apt-get -s {install}", node=node, echo=False, collect=lines)
    if not result.ok:
        raise StepFailed(
            f"apt refuses the upgrade on {node.name}: "
            f"{packages.apt_failure(result.stderr_tail + lines[-5:])}"
        )
    removed = [line.split()[1] for line in lines if line.startswith("Remv ")]
    others = [
        line.split()[1]
        for line in lines
        if line.startswith("Inst ") and not line.split()[1].startswith(SAME_PRODUCT_PREFIXES)
    ]
    if removed or others:
        raise StepFailed(
            f"refused on {node.name}: apt would "
            + "; ".join(
                part
                for part in (
                    f"remove {', '.join(removed)}" if removed else "",
                    f"also change {', '.join(others)}" if others else "",
                )
                if part
            )
            + ". Upgrade those by hand first"
        )


def install(ctx: StepContext, node: Node, todo: dict[str, str]) -> None:
    """Exactly these packages to exactly these versions; config files the admin changed are
    kept (`--force-confold`), no questions asked."""
    wanted = " ".join(shlex.quote(f"{name}={version}") for name, version in sorted(todo.items()))
    install = (
        f"{packages.apt_options(ctx.cluster)} install -y -q --only-upgrade "
        "--no-install-recommends -o Dpkg::Options::=--force-confdef "
        f"-o Dpkg::Options::=--force-confold {wanted}"
    )
    simulate(ctx, node, install)
    lines: list[str] = []
    result = ctx.run(
        f"DEBIAN_FRONTEND=noninteractive apt-get {install}",
        node=node,
        timeout=1200,
        collect=lines,
    )
    if not result.ok:
        raise StepFailed(
            f"apt-get install failed on {node.name}: "
            f"{packages.apt_failure(result.stderr_tail + lines[-5:])}"
        )
