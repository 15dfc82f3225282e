"""The application in front of the cluster follows the primary (DESIGN §5).

Setup installs, on every database node, Patroni's callback script and the sudoers rule that
lets it start and stop the application's unit (jobs.configs.application); it takes the unit
out of the boot sequence, because Patroni starts it on whichever node is primary, and then puts
the unit where it belongs now: running on the primary, stopped on the standbys. Removing the
cluster takes the script and the rule away and enables the unit at boot again if it was.
"""

import shlex

from clusters.models import Node
from jobs.configs import application as files
from jobs.playbooks import daemons, packages
from jobs.playbooks.base import StepContext, StepFailed, Verdict
from jobs.playbooks.setup_postgres import current_primary


def _unit(ctx: StepContext) -> str:
    return shlex.quote(ctx.facts["spec"].application_unit)


def unit_state(ctx: StepContext, node: Node) -> tuple[str, str]:
    """The unit's (is-enabled, is-active) words on `node`, e.g. ("disabled", "active")."""
    unit = _unit(ctx)
    lines = ctx.output(
        f"systemctl is-enabled {unit} 2>/dev/null || true; systemctl is-active {unit} || true",
        node=node,
        sudo=True,
        echo=False,
    )
    # is-enabled prints nothing for a unit systemd 252 does not know (257: "not-found").
    if len(lines) == 1:
        lines = ["not-found", *lines]
    return (lines[0] if lines else "not-found", lines[1] if len(lines) > 1 else "unknown")


def application_install(ctx: StepContext) -> Verdict | str:
    """Callback script, sudoers rule (checked by `visudo -c` before it is put in place), and the
    unit taken out of the boot sequence, its former state noted for removal."""
    spec = ctx.facts["spec"]
    unit = _unit(ctx)
    if daemons.init_system(ctx, ctx.node) != daemons.SYSTEMD:
        raise StepFailed(
            f"{ctx.node.name} does not run systemd, so {spec.application_unit} cannot follow "
            "the primary; clear the application unit or use systemd servers"
        )
    enabled, active = unit_state(ctx, ctx.node)
    if enabled == "not-found":
        raise StepFailed(
            f"{ctx.node.name} has no unit {spec.application_unit}: install the application on "
            "every database node first (systemctl cat finds nothing)"
        )
    done = [packages.install(ctx, ["sudo"])] if packages.not_installed(ctx, ["sudo"]) else []
    ctx.run("mkdir -p /usr/local/lib/hacenter /var/lib/hacenter", check=True)
    if ctx.ensure_file(files.callback_path(spec), files.callback_script(spec), mode=0o755):
        done.append("callback script written")
    sudoers = files.sudoers_path(spec)
    candidate = f"{sudoers}.new"  # a name with a dot: sudo ignores it until the rename
    if ctx.ensure_file(candidate, files.sudoers_rule(spec), mode=0o440):
        check = ctx.run(f"visudo -c -q -f {shlex.quote(candidate)}")
        if not check.ok:
            ctx.run(f"rm -f {shlex.quote(candidate)}")
            said = (check.stderr_tail or check.stdout_tail or ["?"])[-1]
            raise StepFailed(f"visudo refused the sudoers rule: {said}")
    if not ctx.run(f"cmp -s {shlex.quote(candidate)} {shlex.quote(sudoers)}", echo=False).ok:
        ctx.run(f"mv -f {shlex.quote(candidate)} {shlex.quote(sudoers)}", check=True)
        done.append("sudoers rule checked and installed")
    state = shlex.quote(files.enabled_state_path(spec))
    # Noted once: a re-run must not overwrite "enabled" with the "disabled" setup made.
    ctx.run(f"[ -e {state} ] || echo {shlex.quote(enabled)} > {state}", check=True)
    if enabled == "enabled":
        ctx.run(f"systemctl disable {unit}", check=True)
        done.append("taken out of the boot sequence (Patroni starts it on the primary)")
    elif enabled not in ("disabled", "static", "indirect"):
        done.append(f"left {enabled} at boot")
    what = "; ".join(done) if done else "already in place"
    return f"{spec.application_unit} ({active}): {what}"


def application_place(ctx: StepContext) -> Verdict | str:
    """The unit running on the primary and stopped on every standby, checked on each node.

    Patroni's callbacks keep it so from now on; this step makes it true now (a callback that
    fired before the script existed, or a unit the customer had running everywhere)."""
    spec = ctx.facts["spec"]
    unit = _unit(ctx)
    primary = current_primary(ctx)
    db_nodes = list(ctx.cluster.database_nodes.order_by("name"))
    changed = []
    for node in db_nodes:
        want = "active" if node == primary else "inactive"
        _, active = unit_state(ctx, node)
        if active == want:
            continue
        verb = "start" if node == primary else "stop"
        ctx.run(f"systemctl {verb} {unit}", node=node, check=True, timeout=60)
        changed.append(f"{verb}ed on {node.name}")
    wrong = [
        f"{node.name} is {active}"
        for node in db_nodes
        if (active := unit_state(ctx, node)[1]) != ("active" if node == primary else "inactive")
    ]
    if wrong:
        raise StepFailed(f"{spec.application_unit} is not where it belongs: {', '.join(wrong)}")
    did = f" ({', '.join(changed)})" if changed else ""
    return f"{spec.application_unit} runs on {primary.name} only{did}"


def application_release(ctx: StepContext) -> Verdict | str:
    """Remove the callback script and the sudoers rule first (so Patroni's stop during removal
    leaves the application running where it is), then enable the unit at boot again if it
    was enabled before setup."""
    spec = ctx.facts["spec"]
    unit = _unit(ctx)
    state = files.enabled_state_path(spec)
    before = ctx.output(f"cat {shlex.quote(state)} 2>/dev/null || true", sudo=True, echo=False)
    paths = [files.callback_path(spec), files.sudoers_path(spec), f"{files.sudoers_path(spec)}.new"]
    ctx.run("rm -f " + " ".join(shlex.quote(p) for p in paths), check=True)
    verdict = "callback and sudoers rule removed"
    if before and before[0] == "enabled":
        if ctx.run(f"systemctl enable {unit}").ok:
            verdict += f"; {spec.application_unit} enabled at boot again, as before setup"
        else:
            return Verdict.warn(f"{verdict}; could not enable {spec.application_unit} again")
    ctx.run(f"rm -f {shlex.quote(state)}", check=True)
    return verdict
