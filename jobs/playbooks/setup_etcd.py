"""Setup's etcd steps: start each member, then prove the cluster healthy with the raft leader
on the proxy host (a failing database host that also leads etcd adds ~3 s to a failover)."""

import json
import shlex

from clusters.models import Node
from jobs.configs import spec as paths
from jobs.configs.etcd import client_urls
from jobs.playbooks.base import StepContext, Verdict
from jobs.playbooks.daemons import Daemon, start
from jobs.playbooks.tls import tls_mark_active


def etcd_daemon(spec: paths.ClusterSpec) -> Daemon:
    return Daemon(
        name=f"etcd-{spec.name}",
        argv=("/usr/bin/etcd", "--config-file", paths.etcd_config_path(spec)),
        user="etcd",
        description="etcd",
    )


def etcd_start(ctx: StepContext) -> Verdict | str:
    """Start this member; it waits for its peers by itself, so members start one after another.
    On the proxy, whose only TLS daemon is etcd, the node speaks TLS from here on (database
    nodes once Patroni's config has TLS too: setup.patroni_configure)."""
    spec = ctx.facts["spec"]
    verdict = start(ctx, ctx.node, etcd_daemon(spec))
    if spec.tls is not None and ctx.node.kind == Node.Kind.PROXY:
        tls_mark_active(ctx, ctx.node)
    return verdict


def etcdctl_line(endpoints: str, *args: str, tls: bool, command_timeout: str = "5s") -> str:
    """An etcdctl command line (run it with sudo: the key is root's or postgres's). With `tls`
    it presents the node's certificate, which etcd's client-cert-auth demands, and verifies
    etcd's against the cluster's CA; `endpoints` must then be https URLs."""
    flags = ["--cacert", paths.TLS_CA_FILE, "--cert", paths.TLS_CERT_FILE]
    flags += ["--key", paths.TLS_KEY_FILE]
    return (
        f"ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout={command_timeout} "
        + shlex.join([*(flags if tls else []), "--endpoints", endpoints, *args])
    )


def etcdctl(spec: paths.ClusterSpec, *args: str) -> str:
    """etcdctl against every member of the cluster HA Center built."""
    return etcdctl_line(client_urls(spec), *args, tls=spec.tls is not None)


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
            etcdctl_line(leader_endpoint, "move-leader", f"{proxy_id:x}", tls=spec.tls is not None),
            node=proxy,
            check=True,
        )
        moved = " (moved there)"
    return f"{len(status)} members healthy; raft leader on {proxy.name}{moved}"
