"""Setup's etcd steps: start each member, then prove the cluster healthy with the raft leader
on the proxy host (a failing database host that also leads etcd adds ~3 s to a failover)."""

import json
import shlex

from jobs.configs import spec as paths
from jobs.playbooks.base import StepContext, Verdict
from jobs.playbooks.daemons import Daemon, start


def etcd_daemon(spec: paths.ClusterSpec) -> Daemon:
    return Daemon(
        name=f"etcd-{spec.name}",
        argv=("/usr/bin/etcd", "--config-file", paths.etcd_config_path(spec)),
        user="etcd",
        description="etcd",
    )


def etcd_start(ctx: StepContext) -> Verdict | str:
    """Start this member; it waits for its peers by itself, so members start one after another."""
    return start(ctx, ctx.node, etcd_daemon(ctx.facts["spec"]))


def etcdctl(spec: paths.ClusterSpec, *args: str) -> str:
    endpoints = ",".join(
        f"http://{paths.host_port(m.address, paths.ETCD_CLIENT_PORT)}" for m in spec.etcd_members
    )
    return "ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout=5s " + shlex.join(
        ["--endpoints", endpoints, *args]
    )


def etcd_verify(ctx: StepContext) -> Verdict | str:
    """`etcdctl endpoint health` on every member, then move the raft leader to the proxy."""
    spec = ctx.facts["spec"]
    proxy = ctx.cluster.proxy_node

    def all_healthy() -> bool:
        result = ctx.run(etcdctl(spec, "endpoint", "health"), node=proxy, echo=False)
        return result.ok

    ctx.wait_until(all_healthy, timeout=60, what="every etcd member to report healthy")
    ctx.run(etcdctl(spec, "endpoint", "health"), node=proxy, check=True)
    status = json.loads(
        "".join(
            ctx.output(etcdctl(spec, "endpoint", "status", "-w", "json"), node=proxy, echo=False)
        )
    )
    by_id = {s["Status"]["header"]["member_id"]: s["Endpoint"] for s in status}
    leader_id = status[0]["Status"]["leader"]
    proxy_id = next(
        i for i, ep in by_id.items() if f"//{proxy.address}:" in ep or f"//[{proxy.address}]:" in ep
    )
    moved = ""
    if leader_id != proxy_id:
        leader_endpoint = by_id[leader_id]
        ctx.run(
            "ETCDCTL_API=3 etcdctl --dial-timeout=2s "
            + shlex.join(["--endpoints", leader_endpoint, "move-leader", f"{proxy_id:x}"]),
            node=proxy,
            check=True,
        )
        moved = " (moved there)"
    return f"{len(status)} members healthy; raft leader on {proxy.name}{moved}"
