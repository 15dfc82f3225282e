"""A minor upgrade's restarts and checks on one node (jobs.playbooks.upgrade): each daemon that
runs a replaced binary is restarted the way that daemon allows without an outage, then the node
proves it serves again."""

import shlex

from clusters.models import Node
from jobs import patroni_api
from jobs.playbooks import daemons, versions
from jobs.playbooks.base import StepContext, StepFailed
from jobs.playbooks.layout import patroni_layout, rest_auth
from jobs.playbooks.setup_etcd import etcd_daemon, etcd_verify
from jobs.playbooks.setup_finish import haproxy_daemon
from jobs.playbooks.setup_postgres import members, verify_streaming
from jobs.playbooks.sql import psql


def outside_patroni_script(data_dir: str) -> str:
    """Shell printing "pid directory" for each PostgreSQL postmaster (a postgres whose parent
    is not a postgres) that serves another data directory than Patroni's. Not by parent:
    Patroni starts its postmaster through a launcher that exits, so PID 1 adopts it; the
    postmaster's working directory is its data directory."""
    return (
        f"want=$(realpath -m {shlex.quote(data_dir)}); "
        "for p in $(pgrep -x postgres); do pp=$(ps -o ppid= -p $p | tr -d ' '); "
        '[ "$(ps -o comm= -p $pp)" = postgres ] && continue; '
        'd=$(readlink /proc/$p/cwd); [ "$d" = "$want" ] || echo "$p $d"; done; true'
    )


def leader_name(ctx: StepContext) -> str | None:
    """The member Patroni names leader now; None mid-change."""
    leader = patroni_api.leader(members(ctx))
    return leader["name"] if leader else None


def restart_postgres(ctx: StepContext, node: Node) -> str:
    """Patroni restarts its standby's PostgreSQL on the new binaries; then it must stream and
    catch up with the primary."""
    status, body = patroni_api.post(node, "/restart", {}, auth=rest_auth(ctx.cluster), timeout=120)
    if status != 200:
        raise StepFailed(f"Patroni on {node.name} refused to restart PostgreSQL: {status} {body}")
    ctx.log(f"Patroni: {body}", host=node.name)
    return "PostgreSQL restarted by Patroni"


def restart_etcd(ctx: StepContext, node: Node) -> str:
    """The etcd member restarts on the new binary; the others keep the quorum meanwhile."""
    daemons.restart(ctx, node, etcd_daemon(ctx.facts["spec"]))
    return "etcd member restarted"


def reload_haproxy(ctx: StepContext, node: Node) -> str:
    """SIGUSR2 to HAProxy's master: it re-executes itself (the new binary), new workers take
    new connections and the old ones finish theirs."""
    master = daemons.pid(ctx, node, haproxy_daemon())
    if not master:
        raise StepFailed(f"HAProxy does not run on {node.name}")
    ctx.run(f"kill -USR2 {master}", node=node, check=True)

    def reexecuted() -> bool:
        exe = ctx.output(f"readlink /proc/{master}/exe", node=node, echo=False, sudo=True)
        return bool(exe) and not exe[0].endswith(" (deleted)")

    ctx.wait_until(reexecuted, timeout=30, what=f"HAProxy's master on {node.name} to reload")
    return "HAProxy reloaded gracefully"


def restart_stale(ctx: StepContext, node: Node) -> list[str]:
    """Restart each daemon still running a replaced binary; what was done."""
    stale = versions.stale_binaries(ctx, node)
    done = []
    if any(path.endswith("/postgres") for path in stale):
        done.append(restart_postgres(ctx, node))
    if any(path.endswith("/etcd") for path in stale):
        done.append(restart_etcd(ctx, node))
    if any(path.endswith("/haproxy") for path in stale):
        done.append(reload_haproxy(ctx, node))
    return done


def check_node(ctx: StepContext, node: Node, restarted: list[str]) -> list[str]:
    """Proof the node serves again on the new versions: nothing stale, PostgreSQL under Patroni
    only, the standby streaming and caught up, etcd healthy."""
    facts = []
    if node.kind == Node.Kind.DATABASE:
        leader = leader_name(ctx)
        if leader is None:
            raise StepFailed("no primary at the moment")
        if leader == node.name:  # an etcd or HAProxy build only: the primary stayed
            psql(ctx, node, "SELECT 1;", echo=False)
            facts.append(f"{node.name} is still the primary and answers")
        else:
            primary = ctx.cluster.nodes.get(name=leader)
            facts.append(verify_streaming(ctx, node, primary, timeout=120))
        script = outside_patroni_script(patroni_layout(ctx.cluster).data_dir)
        outside = ctx.output(script, node=node, echo=False, sudo=True)
        if outside:
            raise StepFailed(
                f"PostgreSQL runs outside Patroni on {node.name} ({'; '.join(outside)}): "
                "the package started another cluster; stop it with pg_ctlcluster"
            )
    if any("etcd" in r for r in restarted) or node.kind == Node.Kind.PROXY:
        facts.append(f"etcd: {etcd_verify(ctx)}")
    stale = versions.stale_binaries(ctx, node)
    if stale:
        raise StepFailed(f"still running the old binary on {node.name}: {', '.join(stale)}")
    return facts
